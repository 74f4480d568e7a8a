"""The CO-RE relocation driver: candidate search, matching, ambiguity rules,
patching, as libbpf's ``bpf_object__relocate_core`` and
``bpf_core_calc_relo_insn`` do it.

One :class:`CoreRelocator` serves one object against one target kernel: the
candidate lists it builds (per local root type) are shared by all programs of
the object and pruned as relocations prove candidates structurally wrong,
which is both what libbpf does and what keeps a second access to the same
struct cheap.
"""
from __future__ import annotations

import errno
import logging
from typing import TYPE_CHECKING, Callable, Dict, List, NamedTuple, Optional, Tuple

from ..btf.types import essential_name
from ..elf.records import CoreRelo
from ..errors import BTFError, RelocationError
from .calc import RelocResult, calc_relo
from .compat import kinds_core_compat
from .kinds import CoreRelocationError, RelocKind, kind_name
from .patch import patch_insn
from .spec import CoreSpec, format_spec, kind_str, parse_spec, spec_match, spec_path

if TYPE_CHECKING:
    from ..btf.parse import BTF

log = logging.getLogger("bccless.core")


class CoreResult(NamedTuple):
    """What one relocation did.

    ``insn_idx`` is in instructions from the start of the code section passed
    to :meth:`CoreRelocator.relocate`; ``local_spec``/``target_spec`` are
    libbpf's spec texts (``<byte_off> [2] struct task_struct.tgid (0:59 @
    offset 2404)``), ``target_spec`` None when no candidate matched;
    ``orig_value`` is the value computed from the local BTF (what the compiler
    put in), ``new_value`` the value written; ``description`` is the libbpf
    log text for the patch ('patched insn #7 (LDX/ST/STX) off 2404 -> 2500').
    """

    insn_idx: int
    relo: CoreRelo
    kind_name: str
    local_spec: str
    target_spec: Optional[str]
    orig_value: int
    new_value: int
    poisoned: bool
    description: str


class _Cand(NamedTuple):
    btf: "BTF"
    type_id: int
    where: str  # 'vmlinux' or a module name, for logs


class CoreRelocator:
    """Relocates CO-RE records of one object (``local_btf``) against a target.

    ``module_btfs`` is called at most once, and only when a local type has no
    candidate at all in ``target_btf`` (libbpf never looks at modules when
    vmlinux has the type, and never when a custom target BTF is used: pass
    None then).  ``target_desc`` names the target in error messages, e.g.
    'vmlinux 6.18.44' or a BTF file path.
    """

    def __init__(self, local_btf: "BTF", target_btf: "BTF",
                 module_btfs: Optional[Callable[[], List["BTF"]]] = None,
                 target_desc: str = "vmlinux", *, big_endian: bool = False) -> None:
        self.local_btf = local_btf
        self.target_btf = target_btf
        self.target_desc = target_desc
        self.big_endian = big_endian
        self._module_loader = module_btfs
        self._modules: Optional[List["BTF"]] = None
        self._cands: Dict[int, List[_Cand]] = {}

    # -- candidate search -------------------------------------------------

    def _scan(self, btf: "BTF", where: str, local_id: int, local_t, first_id: int,
              out: List[_Cand]) -> None:
        lkind = local_t.kind
        for tid in btf.find_essential(essential_name(local_t.name)):
            if tid < first_id:
                continue
            t = btf[tid]
            if not t.name or not kinds_core_compat(t.kind, lkind):
                continue
            log.debug("CO-RE relocating [%d] %s %s: found target candidate [%d] %s %s in [%s]",
                      local_id, kind_str(lkind), local_t.name, tid, kind_str(t.kind), t.name,
                      where)
            out.append(_Cand(btf, tid, where))

    def _module_list(self) -> List["BTF"]:
        if self._modules is None:
            self._modules = list(self._module_loader()) if self._module_loader else []
        return self._modules

    def candidates(self, local_id: int) -> List[_Cand]:
        """Target candidates for a local root type: same essential name and a
        core-compatible kind, vmlinux first, modules only if vmlinux has none.
        Cached (and later pruned) per local id."""
        cands = self._cands.get(local_id)
        if cands is not None:
            return cands
        local_t = self.local_btf[local_id]
        cands = []
        self._scan(self.target_btf, "vmlinux", local_id, local_t, 1, cands)
        if not cands and self._module_loader is not None:
            base_cnt = self.target_btf.type_count
            for mod in self._module_list():
                self._scan(mod, getattr(mod, "name", None) or "module", local_id, local_t,
                           base_cnt, cands)
        self._cands[local_id] = cands
        return cands

    # -- one relocation ---------------------------------------------------

    def _fail(self, prog: str, relo_idx: int, reason: str, context: str,
              code: int = errno.EINVAL) -> CoreRelocationError:
        err = CoreRelocationError(
            f"prog '{prog}': relo #{relo_idx}: {reason} ({context}, kernel {self.target_desc})",
            code)
        log.warning("%s", err)
        return err

    def _resolve(self, prog: str, relo_idx: int, relo: CoreRelo, insn_idx: int
                 ) -> Tuple[CoreSpec, Optional[CoreSpec], RelocResult]:
        lbtf = self.local_btf
        kind = relo.kind
        try:
            local_t = lbtf[relo.type_id]
        except (IndexError, KeyError, BTFError):
            raise self._fail(prog, relo_idx, f"local type [{relo.type_id}] not found",
                             f"access '{relo.access_str}'") from None
        type_text = f"[{relo.type_id}] {kind_str(local_t.kind)} {local_t.name or '<anon>'}"
        if kind != RelocKind.TYPE_ID_LOCAL and not local_t.name:
            raise self._fail(prog, relo_idx,
                             f"<{kind_name(kind)}> ({kind}) relocation doesn't support "
                             "anonymous types", type_text, errno.EOPNOTSUPP)
        try:
            local = parse_spec(lbtf, relo.type_id, relo.access_str, kind, prog)
        except CoreRelocationError as exc:
            raise self._fail(prog, relo_idx,
                             f"parsing {type_text} + {relo.access_str} failed: {exc.reason}",
                             type_text, exc.errno) from None
        debug = log.isEnabledFor(logging.DEBUG)
        if debug:
            log.debug("prog '%s': relo #%d: %s", prog, relo_idx, format_spec(local))
        if kind == RelocKind.TYPE_ID_LOCAL:
            res = RelocResult()
            res.validate = False
            res.orig_val = res.new_val = relo.type_id
            return local, None, res
        context = spec_path(local)
        cands = self.candidates(relo.type_id)
        chosen: Optional[CoreSpec] = None
        result: Optional[RelocResult] = None
        kept: List[_Cand] = []
        for i, cand in enumerate(cands):
            try:
                matched, cspec = spec_match(local, cand.btf, cand.type_id)
            except CoreRelocationError as exc:
                raise self._fail(prog, relo_idx,
                                 f"error matching candidate #{i} [{cand.type_id}] in "
                                 f"{cand.where}: {exc.reason}", context, exc.errno) from None
            if debug:
                log.debug("prog '%s': relo #%d: %s candidate #%d %s", prog, relo_idx,
                          "matching" if matched else "non-matching", i, format_spec(cspec))
            if not matched:
                continue
            try:
                cres = calc_relo(kind, insn_idx, local, cspec, self.big_endian)
            except CoreRelocationError as exc:
                raise self._fail(prog, relo_idx, exc.reason, context, exc.errno) from None
            if result is None:
                chosen, result = cspec, cres
            elif cspec.bit_offset != chosen.bit_offset:  # type: ignore[union-attr]
                raise self._fail(prog, relo_idx,
                                 f"field offset ambiguity: {cspec.bit_offset} != "
                                 f"{chosen.bit_offset}", context)  # type: ignore[union-attr]
            elif cres.poison != result.poison or cres.new_val != result.new_val:
                raise self._fail(
                    prog, relo_idx,
                    f"relocation decision ambiguity: "
                    f"{'failure' if cres.poison else 'success'} {cres.new_val} != "
                    f"{'failure' if result.poison else 'success'} {result.new_val}", context)
            kept.append(cand)
        if kept:
            cands[:] = kept  # prune structurally non-matching candidates for later relos
            return local, chosen, result  # type: ignore[return-value]
        log.debug("prog '%s': relo #%d: no matching targets found", prog, relo_idx)
        try:
            return local, None, calc_relo(kind, insn_idx, local, None, self.big_endian)
        except CoreRelocationError as exc:
            raise self._fail(prog, relo_idx, exc.reason, context, exc.errno) from None

    def relocate(self, prog_name: str, insns: bytearray, relos: List[CoreRelo],
                 first_relo_idx: int = 0) -> List[CoreResult]:
        """Apply ``relos`` to ``insns`` (one ELF code section, patched in place).

        Relocation numbers in messages start at ``first_relo_idx`` and follow
        the list order, as libbpf numbers records within a section.  Raises
        :class:`RelocationError` on hard errors (nothing later is patched).
        """
        out: List[CoreResult] = []
        n_insns = len(insns) // 8
        for n, relo in enumerate(relos):
            relo_idx = first_relo_idx + n
            if relo.insn_off % 8 or relo.insn_off // 8 >= n_insns:
                raise self._fail(prog_name, relo_idx,
                                 f"insn offset {relo.insn_off} is not an instruction of the "
                                 f"section ({n_insns} insns)", f"type [{relo.type_id}]")
            insn_idx = relo.insn_off // 8
            local, targ, res = self._resolve(prog_name, relo_idx, relo, insn_idx)
            try:
                poisoned, text = patch_insn(insns, insn_idx, res, self.big_endian)
            except CoreRelocationError as exc:
                raise self._fail(prog_name, relo_idx,
                                 f"failed to patch insn #{insn_idx}: {exc.reason}",
                                 spec_path(local), exc.errno) from None
            if poisoned and not res.poison:
                log.warning("prog '%s': relo #%d: %s", prog_name, relo_idx, text)
            else:
                log.debug("prog '%s': relo #%d: %s", prog_name, relo_idx, text)
            out.append(CoreResult(insn_idx, relo, kind_name(relo.kind), format_spec(local),
                                  format_spec(targ) if targ is not None else None,
                                  res.orig_val, res.new_val, poisoned,
                                  f"relo #{relo_idx}: {text}"))
        return out


__all__ = ["CoreRelocator", "CoreResult", "RelocationError"]
