"""Values of ``__kconfig`` externs: ``CONFIG_*`` options and libbpf's virtual
``LINUX_*`` externs, written into the image of the object's ``.kconfig`` map.

Sources, in libbpf's order: caller-provided Kconfig text first; for options it
did not set, ``/boot/config-$(uname -r)``, else ``/proc/config.gz`` (plain text
or gzip).  Lines that do not start with ``CONFIG_`` are ignored, so
``# CONFIG_X is not set`` leaves ``X`` unset (zero if weak, an error if
strong).  The virtual externs describe the *target* kernel:
``LINUX_KERNEL_VERSION`` (Ubuntu ``/proc/version_signature``, Debian
``uname -v``, else ``uname -r``), ``LINUX_HAS_SYSCALL_WRAPPER`` and
``LINUX_HAS_BPF_COOKIE``.  For offline relocation against a foreign kernel
the caller passes them in :class:`KernelFacts` instead.
"""
from __future__ import annotations

import gzip
import logging
import os
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

from ..elf.spec import ExternSpec
from ..errors import RelocationError

log = logging.getLogger(__name__)

TRI_NO, TRI_YES, TRI_MODULE = 0, 1, 2


def kernel_version_code(major: int, minor: int, patch: int) -> int:
    """``KERNEL_VERSION(a, b, c)`` with the patch level clamped to 255, as the
    kernel's own macro does since 4.9.256/4.14.218 overflowed it."""
    return (major << 16) + (minor << 8) + min(patch, 255)


_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def running_kernel_version(release: Optional[str] = None, version: Optional[str] = None,
                           signature_path: str = "/proc/version_signature") -> int:
    """``LINUX_VERSION_CODE`` of the running kernel, libbpf's rules.

    Distribution kernels report an ABI string in ``uname -r`` (Debian
    ``6.1.0-56-amd64`` is really 6.1.192), so the real version is taken from
    Ubuntu's ``/proc/version_signature`` or the ``Debian X.Y.Z`` token of
    ``uname -v`` when present.  Returns 0 when nothing parses.
    """
    try:
        with open(signature_path, encoding="ascii", errors="replace") as f:
            fields = f.read().split()
        m = _VERSION_RE.match(fields[2]) if len(fields) >= 3 else None
        if m:
            return kernel_version_code(*map(int, m.groups()))
    except OSError:
        pass
    if release is None or version is None:
        uts = os.uname()
        release = uts.release if release is None else release
        version = uts.version if version is None else version
    pos = version.find("Debian ")
    if pos >= 0:
        m = _VERSION_RE.match(version, pos + len("Debian "))
        if m:
            return kernel_version_code(*map(int, m.groups()))
    m = _VERSION_RE.match(release)
    return kernel_version_code(*map(int, m.groups())) if m else 0


@dataclass
class KernelFacts:
    """What the virtual ``LINUX_*`` externs report.  ``None`` means "probe":
    the linker asks the target BTF (see :func:`bccless.link.linker.link`)."""

    kernel_version: Optional[int] = None
    has_syscall_wrapper: Optional[bool] = None
    has_bpf_cookie: Optional[bool] = None


def read_system_kconfig(release: Optional[str] = None) -> Optional[str]:
    """Kconfig text of the running kernel, or None when neither
    ``/boot/config-<release>`` nor ``/proc/config.gz`` can be read."""
    release = release or os.uname().release
    for path in (f"/boot/config-{release}", "/proc/config.gz"):
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8", errors="replace")
    return None


def _set_num(ext: ExternSpec, image: bytearray, value: int) -> None:
    if ext.kcfg_type not in ("int", "char", "bool"):
        raise RelocationError(f"extern (kcfg) '{ext.name}': value '{value}' implies "
                              "integer, char, or boolean type")
    if ext.kcfg_type == "bool" and value > 1:
        raise RelocationError(f"extern (kcfg) '{ext.name}': value '{value}' isn't boolean compatible")
    bits = ext.kcfg_size * 8
    value &= (1 << 64) - 1
    if ext.kcfg_size != 8:
        fits = ((value + (1 << (bits - 1))) & ((1 << 64) - 1)) < (1 << bits) if ext.kcfg_signed \
            else (value >> bits) == 0
        if not fits:
            raise RelocationError(f"extern (kcfg) '{ext.name}': value '{value}' doesn't fit "
                                  f"in {ext.kcfg_size} bytes")
    if ext.kcfg_size not in (1, 2, 4, 8):
        raise RelocationError(f"extern (kcfg) '{ext.name}': unsupported size {ext.kcfg_size}")
    image[ext.data_off:ext.data_off + ext.kcfg_size] = (value & ((1 << bits) - 1)).to_bytes(
        ext.kcfg_size, "little")


def _set_tristate(ext: ExternSpec, image: bytearray, letter: str) -> None:
    if ext.kcfg_type == "bool":
        if letter == "m":
            raise RelocationError(f"extern (kcfg) '{ext.name}': value '{letter}' implies "
                                  "tristate or char type")
        value = 1 if letter == "y" else 0
    elif ext.kcfg_type == "tristate":
        value = {"y": TRI_YES, "m": TRI_MODULE, "n": TRI_NO}[letter]
    elif ext.kcfg_type == "char":
        value = ord(letter)
    else:
        raise RelocationError(f"extern (kcfg) '{ext.name}': value '{letter}' implies bool, "
                              "tristate, or char type")
    image[ext.data_off:ext.data_off + ext.kcfg_size] = value.to_bytes(ext.kcfg_size, "little")


def _set_string(ext: ExternSpec, image: bytearray, value: str) -> None:
    if ext.kcfg_type != "char_arr":
        raise RelocationError(f"extern (kcfg) '{ext.name}': value '{value}' implies char array type")
    if len(value) < 2 or not value.endswith('"'):
        raise RelocationError(f"extern (kcfg) '{ext.name}': invalid string config '{value}'")
    data = value[1:-1].encode()
    if len(data) >= ext.kcfg_size:
        log.warning("extern (kcfg) '%s': long string '%s' of (%d bytes) truncated to %d bytes",
                    ext.name, value, len(data), ext.kcfg_size - 1)
        data = data[:ext.kcfg_size - 1]
    image[ext.data_off:ext.data_off + len(data) + 1] = data + b"\0"


def _parse_int(ext: ExternSpec, text: str) -> int:
    """``strtoull(text, NULL, 0)`` that must consume the whole string."""
    body = text[1:] if text[:1] in "+-" else text
    try:
        if body[:2].lower() == "0x":
            num = int(body[2:], 16)
        elif body.startswith("0") and len(body) > 1:
            num = int(body[1:], 8)
        else:
            num = int(body, 10)
    except ValueError:
        raise RelocationError(f"extern (kcfg) '{ext.name}': value '{text}' isn't a valid integer")
    return -num if text.startswith("-") else num


def apply_kconfig_text(text: str, externs: Dict[str, ExternSpec], image: bytearray,
                       done: set, source: str) -> None:
    """Set every still-unset extern named by a ``CONFIG_X=value`` line."""
    for line in text.splitlines():
        if not line.startswith("CONFIG_"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise RelocationError(f"{source}: failed to parse '{line}': no separator")
        if not value:
            raise RelocationError(f"{source}: failed to parse '{line}': no value")
        ext = externs.get(name)
        if ext is None or name in done:
            continue
        if value[0] in "ynm":
            _set_tristate(ext, image, value[0])
        elif value[0] == '"':
            _set_string(ext, image, value)
        else:
            if ext.kcfg_type not in ("int", "char"):
                raise RelocationError(f"extern (kcfg) '{name}': value '{value}' implies integer type")
            _set_num(ext, image, _parse_int(ext, value))
        done.add(name)
        log.debug("extern (kcfg) '%s': set to %s", name, value)


def build_kconfig_image(externs: Iterable[ExternSpec], size: int, facts: KernelFacts,
                        kconfig_text: Optional[str] = None,
                        system_kconfig: Optional[str] = None,
                        read_system: bool = True) -> bytearray:
    """Fill the ``.kconfig`` map value for ``externs`` (``.kconfig`` ones only).

    ``facts`` must already be resolved (no ``None`` left for externs that
    need it).  ``system_kconfig`` is the running kernel's text when the caller
    already has it; with ``read_system`` False the system files are never
    consulted (offline relocation for another kernel).
    """
    kcfg = [e for e in externs if e.sec == ".kconfig"]
    image = bytearray(size)
    done: set = set()
    config_exts: Dict[str, ExternSpec] = {}
    for ext in kcfg:
        if ext.name.startswith("CONFIG_"):
            config_exts[ext.name] = ext
            continue
        if ext.name == "LINUX_KERNEL_VERSION":
            if not facts.kernel_version:
                raise RelocationError(f"extern (kcfg) '{ext.name}': failed to get kernel version")
            value = facts.kernel_version
        elif ext.name == "LINUX_HAS_BPF_COOKIE":
            value = int(bool(facts.has_bpf_cookie))
        elif ext.name == "LINUX_HAS_SYSCALL_WRAPPER":
            value = int(bool(facts.has_syscall_wrapper))
        elif ext.name.startswith("LINUX_") and ext.weak:
            continue
        else:
            raise RelocationError(f"extern (kcfg) '{ext.name}': unrecognized virtual extern")
        _set_num(ext, image, value)
        done.add(ext.name)
        log.debug("extern (kcfg) '%s': set to 0x%x", ext.name, value)
    if config_exts and kconfig_text:
        apply_kconfig_text(kconfig_text, config_exts, image, done, "in-memory Kconfig")
    if any(n not in done for n in config_exts):
        text = system_kconfig
        if text is None and read_system:
            text = read_system_kconfig()
            if text is None:
                raise RelocationError("failed to open system Kconfig")
        if text is not None:
            apply_kconfig_text(text, config_exts, image, done, "system Kconfig")
    unresolved: List[str] = [e.name for e in kcfg if e.name not in done]
    for name in unresolved:
        ext = next(e for e in kcfg if e.name == name)
        if not ext.weak:
            raise RelocationError(f"extern '{name}' (strong): not resolved")
        log.debug("extern '%s' (weak): not resolved, defaulting to zero", name)
    return image
