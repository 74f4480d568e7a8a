"""Questions BCC tools ask about the running kernel's types, answered from BTF.

``BPF.kernel_struct_has_field`` and ``kernel_enum_has_val`` pick code paths
in many tools (e.g. batch map operations); they answer 1, 0, or -1 when the
type or the kernel BTF is missing, as BCC does.
"""
from __future__ import annotations

from ..btf import BTF, Kind, load_kernel_btf
from ..errors import BTFError

_KERNEL: "BTF | None" = None


def _kernel() -> "BTF | None":
    global _KERNEL
    if _KERNEL is None:
        try:
            _KERNEL = load_kernel_btf()
        except BTFError:
            return None
    return _KERNEL


def _has_member(btf: BTF, type_id: int, field: str, depth: int = 0) -> bool:
    t = btf[btf.skip_mods_and_typedefs(type_id)]
    if t.kind not in (Kind.STRUCT, Kind.UNION) or depth > 32:
        return False
    for m in t.members:
        if m.name == field:
            return True
        if not m.name and _has_member(btf, m.type, field, depth + 1):
            return True
    return False


def struct_has_field(struct_name: str, field_name: str) -> int:
    btf = _kernel()
    if btf is None:
        return -1
    ids = btf.find(struct_name, Kind.STRUCT) or btf.find(struct_name, Kind.UNION)
    if not ids:
        return -1
    return 1 if _has_member(btf, ids[0], field_name) else 0


def enum_has_value(enum_name: str, value_name: str) -> int:
    btf = _kernel()
    if btf is None:
        return -1
    if enum_name:
        ids = btf.find(enum_name, Kind.ENUM) + btf.find(enum_name, Kind.ENUM64)
    else:
        ids = [i for i in btf.ids() if btf.kind(i) in (Kind.ENUM, Kind.ENUM64)
               and not btf.name(i)]
    if not ids:
        return -1
    for tid in ids:
        if any(v.name == value_name for v in btf[tid].values):
            return 1
    return 0
