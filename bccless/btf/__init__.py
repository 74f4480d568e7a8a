"""BTF: parse, index, look up, build and encode BPF Type Format blobs.

``from bccless.btf import BTF, load_kernel_btf`` is cheap: the record classes
and the parser are small, and ELF/xz/mmap support is imported only when used.
"""
from __future__ import annotations

from .parse import BTF
from .sources import list_module_btfs, load_kernel_btf, load_module_btf
from .types import (
    COMPOSITE_KINDS, ENUM_KINDS, FUNC_EXTERN, FUNC_GLOBAL, FUNC_STATIC, INT_BOOL, INT_CHAR,
    INT_SIGNED, KIND_CLASSES, MODIFIER_KINDS, VAR_GLOBAL_ALLOCATED, VAR_GLOBAL_EXTERN,
    VAR_STATIC, Array, Composite, Const, Datasec, DeclTag, Enum, Enum64, EnumValue, Float, Func,
    FuncProto, Fwd, Int, Kind, Member, Modifier, Param, Ptr, Restrict, Struct, Type, Typedef,
    TypeTag, Union, Var, VarSecInfo, Void, Volatile, essential_name,
)

__all__ = [
    "BTF", "load_kernel_btf", "load_module_btf", "list_module_btfs",
    "COMPOSITE_KINDS", "ENUM_KINDS", "FUNC_EXTERN", "FUNC_GLOBAL", "FUNC_STATIC", "INT_BOOL",
    "INT_CHAR", "INT_SIGNED", "KIND_CLASSES", "MODIFIER_KINDS", "VAR_GLOBAL_ALLOCATED",
    "VAR_GLOBAL_EXTERN", "VAR_STATIC", "Array", "Composite", "Const", "Datasec", "DeclTag",
    "Enum", "Enum64", "EnumValue", "Float", "Func", "FuncProto", "Fwd", "Int", "Kind", "Member",
    "Modifier", "Param", "Ptr", "Restrict", "Struct", "Type", "Typedef", "TypeTag", "Union",
    "Var", "VarSecInfo", "Void", "Volatile", "essential_name",
]
