"""Uploading the object's BTF: sanitized for the kernel, optional like in libbpf.

The object BTF lets the kernel check map key/value types, print source lines
in verifier logs and show typed dumps in bpftool.  None of that is needed to
run, so a kernel that refuses the blob gets a warning and a load without BTF,
func_info and line_info (core-semantics.md §1.13).
"""
from __future__ import annotations

from typing import Optional, Tuple

from . import LazyLogger

log = LazyLogger(__name__)


def prepare(btf_bytes: Optional[bytes]) -> Tuple[Optional[bytes], bool]:
    """(blob to upload to this kernel or None, whether func/line info can be sent).

    None means the kernel has no BTF support at all.  Probes BTF features
    once per process (cold path only: the result is stored in the load plan).
    """
    if btf_bytes is None:
        return None, False
    from ..sys import features

    if not features.btf():
        log.info("kernel does not support BTF, loading without it")
        return None, False
    feats = features.btf_features()
    if feats.complete():
        return btf_bytes, True
    from ..btf.parse import BTF
    from ..btf.sanitize import sanitize

    log.debug("sanitizing object BTF for the kernel: %s", feats)
    return sanitize(BTF.from_bytes(btf_bytes, source="object BTF"), feats), feats.func


def upload(blob: Optional[bytes], obj_name: str) -> int:
    """BPF_BTF_LOAD ``blob``; returns the fd, or -1 after a warning on failure."""
    if blob is None:
        return -1
    from ..sys import bpf

    try:
        return bpf.btf_load(blob)
    except OSError as exc:
        detail = getattr(exc, "log", "").strip()
        log.warning("object '%s': error loading .BTF into kernel: %s (errno %d). "
                    "BTF is optional, ignoring.%s", obj_name, exc.strerror, exc.errno,
                    f"\n{detail}" if detail else "")
        return -1
