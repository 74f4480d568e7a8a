"""The loader: from an object file to live kernel objects, through a cacheable plan.

Two paths meet in a :class:`~bccless.load.plan.LoadPlan`:

* cold (:func:`build_plan`, :func:`link_into`): parse the ELF file, relocate
  with the linker against kernel BTF, resolve BTF attach targets, sanitize
  the object BTF for this kernel; the plan then goes to the relocation cache;
* warm: the plan comes straight from the cache (:mod:`.relocache`).

Either way the kernel side is the same: upload BTF (:mod:`.btf_upload`),
create maps (:mod:`.maps`), load programs (:mod:`.programs`).  The public
face of all this is :class:`bccless.object.BPFObject`.  Heavy modules
(pyelftools, the BTF parser, the linker) are only imported on the cold path.
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Dict, Iterable, Optional, Set, Tuple

from ..errors import LoadError, RelocationError
from .plan import LoadPlan

if TYPE_CHECKING:
    from ..btf.parse import BTF
    from ..elf.spec import ObjectSpec



class LazyLogger:
    """A logger that imports :mod:`logging` only when a record could be emitted.

    ``import logging`` costs about 4 ms, a fifth of a warm load.  Until some
    code imports it, nothing can have configured logging either, so DEBUG and
    INFO records would be dropped by the default WARNING level: they are
    dropped here without the import.  Warnings always go through logging.
    """

    __slots__ = ("_name", "_logger")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger = None

    def _get(self):
        if self._logger is None:
            import logging

            self._logger = logging.getLogger(self._name)
        return self._logger

    def debug(self, msg: str, *args: object) -> None:
        if self._logger is not None or "logging" in sys.modules:
            self._get().debug(msg, *args)

    def info(self, msg: str, *args: object) -> None:
        if self._logger is not None or "logging" in sys.modules:
            self._get().info(msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        self._get().warning(msg, *args)


log = LazyLogger(__name__)


def build_plan(source, name: Optional[str]) -> Tuple["ObjectSpec", LoadPlan]:
    """Parse the object (a path or bytes) and describe it as a plan, unlinked."""
    from ..elf.object import open_object_spec

    spec = open_object_spec(source, name)
    return spec, LoadPlan.from_spec(spec)


def _needs_kernel_btf(spec: "ObjectSpec") -> bool:
    """libbpf's obj_needs_vmlinux_btf: CO-RE, typed ksyms, BTF-attached programs,
    plus kconfig externs whose values come from kernel BTF (syscall wrapper)."""
    return (any(spec.core_relos.values()) or bool(spec.externs)
            or any(p.attach_btf for p in spec.programs if not p.is_subprog))


def _custom_btf(path: str) -> "BTF":
    from ..btf.parse import BTF

    with open(path, "rb") as f:
        elf = f.read(4) == b"\x7fELF"
    return BTF.from_elf(path) if elf else BTF.from_file(path)


def link_into(plan: LoadPlan, spec: "ObjectSpec", wanted: Iterable[str], *,
              kconfig: Optional[str] = None, btf_custom_path: Optional[str] = None) -> None:
    """Relocate programs of ``spec`` for this kernel and record them in ``plan``.

    Every entry program is linked when possible, so that later loads with
    another autoload set, or programs loaded one at a time, stay warm; if
    some program cannot be relocated, only ``wanted`` ones are (as libbpf,
    which never relocates programs it does not load).
    """
    from ..link.linker import link
    from . import btf_upload, kernel

    wanted = set(wanted)
    entries = [p.name for p in spec.programs if not p.is_subprog]
    target = ksym_btf = None
    module_btfs = kernel.module_btfs
    desc = f"vmlinux {os.uname().release}"
    if btf_custom_path:
        target, desc, module_btfs = _custom_btf(btf_custom_path), btf_custom_path, list
        if any(e.sec == ".ksyms" for e in spec.externs):
            ksym_btf = kernel.kernel_btf()
    elif _needs_kernel_btf(spec):
        target = kernel.kernel_btf()
    kw = dict(module_btfs=module_btfs, kconfig=kconfig, ksym_btf=ksym_btf, target_desc=desc)
    try:
        linked = link(spec, target, programs=entries, **kw)
    except RelocationError as exc:
        if wanted >= set(entries):
            raise
        log.debug("linking every program failed (%s); linking %s only", exc, sorted(wanted))
        linked = link(spec, target, programs=sorted(wanted), **kw)
    attach_ids: Dict[str, Tuple[int, str]] = {}
    for lp in linked.programs:
        p = lp.spec
        if p is not None and p.attach_btf:
            try:
                attach_ids[lp.name] = kernel.resolve_attach_btf_id(
                    p.name, p.expected_attach_type, p.attach_target)
            except LoadError:
                if p.name in wanted:
                    raise
    plan.add_linked(linked, attach_ids)
    if plan.btf_upload is None:
        plan.btf_upload, plan.btf_func = btf_upload.prepare(plan.btf)
    if any(e.sec == ".ksyms" and e.typeless and not e.is_func for e in spec.externs):
        plan.boot_id = kernel.boot_id()  # kallsyms addresses are per boot


def missing(plan: LoadPlan, wanted: Set[str]) -> Set[str]:
    """Programs of ``wanted`` the plan has no relocated code for."""
    return {n for n in wanted if n not in plan.linked}
