"""Attach a loaded program where its SEC() name says (libbpf's auto-attach).

libbpf gives each SEC() prefix an attach function; a program whose section
names a target (``tracepoint/syscalls/sys_enter_openat``,
``kprobe/do_unlinkat``, ``tp_btf/sched_switch``, ``uprobe/bin:func``)
is attached by :meth:`BPFObject.attach`, one whose section has no target
(``xdp``, ``tc``, bare ``kprobe``) is left for the caller, like libbpf's
``bpf_object__attach_skeleton`` does.  The mechanics live in
:mod:`bccless.attach`; this module only parses section targets.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

from ..errors import AttachError


def _split_offset(spec: str) -> Tuple[str, int]:
    """'func+0x10' -> ('func', 16)."""
    name, plus, off = spec.partition("+")
    if not plus:
        return spec, 0
    try:
        return name, int(off, 0)
    except ValueError:
        raise AttachError(f"bad offset in '{spec}'") from None


def _tracepoint(fd: int, target: str, prog: Any) -> Any:
    from ..attach import attach_tracepoint

    return attach_tracepoint(fd, target, prog_name=prog.name)


def _raw_tp(fd: int, target: str, prog: Any) -> Any:
    from ..attach import attach_raw_tracepoint

    return attach_raw_tracepoint(fd, target, prog_name=prog.name)


def _btf(fd: int, target: str, prog: Any) -> Any:
    from ..attach import attach_btf

    return attach_btf(fd, prog.expected_attach_type, target=target, prog_name=prog.name)


def _iter(fd: int, target: str, prog: Any) -> Any:
    from ..attach import attach_iter

    return attach_iter(fd, target=target, prog_name=prog.name)


def _kprobe(retprobe: bool) -> Callable[[int, str, Any], Any]:
    def attach(fd: int, target: str, prog: Any) -> Any:
        from ..attach import attach_kprobe

        func, off = _split_offset(target)
        return attach_kprobe(fd, func, off, retprobe=retprobe, prog_name=prog.name)
    return attach


def _ksyscall(retprobe: bool) -> Callable[[int, str, Any], Any]:
    def attach(fd: int, target: str, prog: Any) -> Any:
        from ..attach import attach_ksyscall

        return attach_ksyscall(fd, target, retprobe=retprobe, prog_name=prog.name)
    return attach


def _uprobe(retprobe: bool) -> Callable[[int, str, Any], Any]:
    def attach(fd: int, target: str, prog: Any) -> Any:
        from ..attach import attach_uprobe

        binary, colon, func = target.partition(":")
        if not colon or not binary or not func:
            raise AttachError(f"prog '{prog.name}': uprobe section target '{target}' is not "
                              f"of the form <binary>:<function>[+offset]")
        sym, off = _split_offset(func)
        return attach_uprobe(fd, binary, sym, sym_off=off, retprobe=retprobe,
                             prog_name=prog.name)
    return attach


def _usdt(fd: int, target: str, prog: Any) -> Any:
    from ..attach import attach_usdt

    parts = target.split(":")
    if len(parts) != 3 or not all(parts):
        raise AttachError(f"prog '{prog.name}': usdt section target '{target}' is not of the "
                          f"form <binary>:<provider>:<name>")
    return attach_usdt(fd, parts[0], parts[1], parts[2], prog_name=prog.name)


# SEC() table entry (without '+') -> attach function
_BY_PREFIX: Dict[str, Callable[[int, str, Any], Any]] = {
    "tracepoint": _tracepoint, "tp": _tracepoint,
    "raw_tracepoint": _raw_tp, "raw_tp": _raw_tp, "raw_tp.s": _raw_tp,
    "raw_tracepoint.s": _raw_tp, "raw_tracepoint.w": _raw_tp, "raw_tp.w": _raw_tp,
    "tp_btf": _btf, "fentry": _btf, "fexit": _btf, "fmod_ret": _btf, "lsm": _btf,
    "fentry.s": _btf, "fexit.s": _btf, "fmod_ret.s": _btf, "lsm.s": _btf,
    "iter": _iter, "iter.s": _iter,
    "kprobe": _kprobe(False), "kretprobe": _kprobe(True),
    "ksyscall": _ksyscall(False), "kretsyscall": _ksyscall(True),
    "uprobe": _uprobe(False), "uretprobe": _uprobe(True),
    "uprobe.s": _uprobe(False), "uretprobe.s": _uprobe(True),
    "usdt": _usdt, "usdt.s": _usdt,
}
def auto_attach_fn(sec_prefix: str, target: str) -> Optional[Callable[[int, str, Any], Any]]:
    """The attach function for a program of this SEC() kind and target, or None
    when the section does not say where to attach."""
    if not target:
        return None
    return _BY_PREFIX.get(sec_prefix.rstrip("+/"))
