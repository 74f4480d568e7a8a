"""BPF_PROG_LOAD of one relocated program, with libbpf's attributes and messages.

The linker left map *indexes* in ld_imm64 instructions; here they become the
fds of the maps just created, module BTF fds go where typed ksyms and kfunc
calls need them, and the program is loaded with its name, license,
kern_version, expected attach type, BTF attach target, func/line info and
flags.  A refusal raises :class:`VerifierError` naming the program, with the
verifier log (which interleaves source lines when line_info was sent) and
poisoned CO-RE relocations explained in libbpf's words.
"""
from __future__ import annotations

import os
from errno import EPERM
from typing import Dict, List, Sequence

from ..errors import LoadError, VerifierError
from .plan import LinkedProg


_F_SLEEPABLE, _F_XDP_HAS_FRAGS = 0x10, 0x20
_SEC_XDP_FRAGS = 1 << 4     # bccless.elf.sections.SEC_XDP_FRAGS


def patch_fds(lp: LinkedProg, map_fds: Sequence[int],
              module_fds: Dict[str, int]) -> bytearray:
    """The program's instructions with map and module BTF fds written in."""
    insns = bytearray(lp.insns)
    for idx, map_idx in lp.map_refs:
        fd = map_fds[map_idx]
        if fd < 0:
            raise LoadError(f"prog '{lp.name}': insn #{idx} references a map (#{map_idx}) "
                            f"that wasn't created")
        insns[idx * 8 + 4:idx * 8 + 8] = fd.to_bytes(4, "little", signed=True)
    for idx, module in lp.btf_obj_refs:
        off = (idx + 1) * 8 + 4
        insns[off:off + 4] = module_fds[module].to_bytes(4, "little", signed=True)
    return insns


class ProgramLoad:
    """Everything about one program that BPF_PROG_LOAD needs and the caller may
    have changed after open (type, attach type, target, flags)."""

    __slots__ = ("name", "sec_name", "prog_type", "expected_attach_type", "attach_btf_id",
                 "attach_btf_module", "attach_prog_fd", "flags", "license", "kern_version")

    def __init__(self, name: str, sec_name: str, prog_type: int, expected_attach_type: int,
                 license: str, kern_version: int, *, attach_btf_id: int = 0,
                 attach_btf_module: str = "", attach_prog_fd: int = 0, flags: int = 0) -> None:
        self.name = name
        self.sec_name = sec_name
        self.prog_type = prog_type
        self.expected_attach_type = expected_attach_type
        self.license = license
        self.kern_version = kern_version
        self.attach_btf_id = attach_btf_id
        self.attach_btf_module = attach_btf_module
        self.attach_prog_fd = attach_prog_fd
        self.flags = flags


def prog_flags(sleepable: bool, sec_flags: int) -> int:
    return (_F_SLEEPABLE if sleepable else 0) | (
        _F_XDP_HAS_FRAGS if sec_flags & _SEC_XDP_FRAGS else 0)


def load_program(req: ProgramLoad, lp: LinkedProg, map_fds: Sequence[int], btf_fd: int,
                 fd_array_modules: List[str], *, ext_info: bool = True,
                 log_level: int = 0) -> tuple:
    """Load one program; returns (fd, final instructions, verifier log).

    ``ext_info`` False keeps func_info/line_info out (kernels without BTF FUNC).
    """
    from ..sys import bpf

    if not req.prog_type:
        raise LoadError(f"prog '{req.name}': missing BPF prog type, check ELF section name "
                        f"'{req.sec_name}' (or call set_type() before load)")
    opened: List[int] = []
    try:
        module_fds = _module_fds(lp, req, fd_array_modules, opened)
        insns = patch_fds(lp, map_fds, module_fds)
        kw = {}
        if btf_fd >= 0 and ext_info and lp.func_info:
            kw.update(prog_btf_fd=btf_fd, func_info=lp.func_info, func_info_rec_size=8)
            if lp.line_info:
                kw.update(line_info=lp.line_info, line_info_rec_size=16)
        if fd_array_modules:
            kw["fd_array"] = [0] + [module_fds[m] for m in fd_array_modules]
        if req.attach_btf_module:
            kw["attach_btf_obj_fd"] = module_fds[req.attach_btf_module]
        elif req.attach_prog_fd:
            kw["attach_prog_fd"] = req.attach_prog_fd
        try:
            fd, vlog = bpf.prog_load(
                req.prog_type, bytes(insns), req.license, name=req.name,
                expected_attach_type=req.expected_attach_type,
                attach_btf_id=req.attach_btf_id, prog_flags=req.flags,
                kern_version=req.kern_version, log_level=log_level, **kw)
        except bpf.ProgLoadError as exc:
            raise _verifier_error(req, lp, exc) from None
        except OSError as exc:
            raise LoadError(f"prog '{req.name}': BPF program load failed: {exc}") from None
    finally:
        for fd_ in opened:
            os.close(fd_)
    return fd, insns, vlog


def _module_fds(lp: LinkedProg, req: ProgramLoad, fd_array_modules: List[str],
                opened: List[int]) -> Dict[str, int]:
    """Open the BTF object of every kernel module the program refers to."""
    names = set(fd_array_modules) | {m for _, m in lp.btf_obj_refs}
    if req.attach_btf_module:
        names.add(req.attach_btf_module)
    if not names:
        return {}
    from .kernel import module_btf_fd

    fds: Dict[str, int] = {}
    for name in sorted(names):
        fds[name] = module_btf_fd(name)
        opened.append(fds[name])
    return fds


def _verifier_error(req: ProgramLoad, lp: LinkedProg, exc) -> VerifierError:
    text = exc.log or ""
    if lp.poisoned and text:
        from ..core.logfix import fixup_verifier_log

        text = fixup_verifier_log(text, {i: _Poison(s) for i, s in lp.poisoned.items()})
    reason = f"{exc.strerror} (errno {exc.errno})"
    if exc.errno == EPERM and not text.strip():
        reason += (": needs root or CAP_BPF+CAP_PERFMON, or this kernel refuses this program "
                   "type/attach target (e.g. fentry/LSM without BPF trampolines)")
    return VerifierError(f"prog '{req.name}': BPF program load failed: {reason}",
                         program=req.name, log=text, errno=exc.errno)


class _Poison:
    """What :func:`fixup_verifier_log` reads of a CO-RE result (its local spec)."""

    __slots__ = ("local_spec",)

    def __init__(self, local_spec: str) -> None:
        self.local_spec = local_spec

