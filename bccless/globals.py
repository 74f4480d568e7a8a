"""Named access to an object's global variables (``.rodata``, ``.data``, ``.bss``).

libbpf skeletons expose ``skel->rodata->var``; this is the Python equivalent.
Before load the view writes into the section's initial image (so ``.rodata``
constants can be set and then frozen by the kernel); after load it is backed
by the map's mmap, so reads and writes are live values the programs see.

Variables are located through the object's DATASEC record once, and the
result is kept as a plain *layout* (name -> offset, size, how to code it), so
a view can be rebuilt from the relocation cache without importing the BTF
parser: that keeps warm loads cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Tuple

from .errors import MapError

if TYPE_CHECKING:
    from .btf.parse import BTF

# How a variable's bytes map to a Python value.
CODE_INT, CODE_UINT, CODE_CHARS, CODE_BYTES = "int", "uint", "chars", "bytes"

# name -> (offset, size, code); code is one of the CODE_* strings.
Layout = Dict[str, Tuple[int, int, str]]


def datasec_layout(btf: "BTF", datasec_id: int) -> Layout:
    """The variables of DATASEC ``datasec_id``, with how each one is coded."""
    from .btf.types import INT_SIGNED, Kind

    layout: Layout = {}
    for v in btf[datasec_id].vars:
        var = btf[v.type]
        if var.kind != Kind.VAR:
            continue
        t = btf[btf.skip_mods_and_typedefs(var.type)]
        if t.kind == Kind.INT:
            code = CODE_INT if t.encoding & INT_SIGNED else CODE_UINT
        elif t.kind in (Kind.ENUM, Kind.ENUM64):
            code = CODE_INT if t.signed else CODE_UINT
        elif t.kind == Kind.PTR:
            code = CODE_UINT
        elif t.kind == Kind.ARRAY and _is_char(btf, t.type):
            code = CODE_CHARS
        else:
            code = CODE_BYTES
        layout[var.name] = (v.offset, v.size, code)
    return layout


def _is_char(btf: "BTF", type_id: int) -> bool:
    from .btf.types import Kind

    elem = btf[btf.skip_mods_and_typedefs(type_id)]
    return elem.kind == Kind.INT and elem.size == 1


class GlobalData:
    """A mapping-like and attribute-style view of one global data section.

    ``buf`` is anything sliceable by byte ranges: the initial image (a
    bytearray), the live map's ``mmap``, or an adapter that reads and writes
    the map element for sections the kernel cannot mmap.
    """

    def __init__(self, section: str, btf: "BTF", datasec_id: int, buf: Any,
                 read_only: bool = False) -> None:
        self._init(section, datasec_layout(btf, datasec_id), buf, read_only)

    @classmethod
    def from_layout(cls, section: str, layout: Layout, buf: Any,
                    read_only: bool = False) -> "GlobalData":
        """A view from a precomputed :func:`datasec_layout` (no BTF needed)."""
        self = cls.__new__(cls)
        self._init(section, layout, buf, read_only)
        return self

    def _init(self, section: str, layout: Layout, buf: Any, read_only: bool) -> None:
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_vars", layout)
        object.__setattr__(self, "_buf", buf)
        object.__setattr__(self, "_read_only", read_only)

    def rebind(self, buf: Any, read_only: bool) -> None:
        """Point the view at new backing memory (the live map after load)."""
        object.__setattr__(self, "_buf", buf)
        object.__setattr__(self, "_read_only", read_only)

    @property
    def section(self) -> str:
        return self._section

    @property
    def read_only(self) -> bool:
        return self._read_only

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __contains__(self, name: object) -> bool:
        return name in self._vars

    def __len__(self) -> int:
        return len(self._vars)

    def keys(self) -> List[str]:
        return list(self._vars)

    def _lookup(self, name: str) -> Tuple[int, int, str]:
        try:
            return self._vars[name]
        except KeyError:
            known = ", ".join(sorted(self._vars)) or "none"
            raise MapError(f"{self._section}: no global variable '{name}' "
                           f"(variables: {known})") from None

    def raw(self, name: str) -> bytes:
        """The variable's bytes, whatever its type."""
        off, size, _ = self._lookup(name)
        return bytes(self._buf[off:off + size])

    def __getitem__(self, name: str) -> Any:
        off, size, code = self._lookup(name)
        data = bytes(self._buf[off:off + size])
        if code == CODE_UINT or code == CODE_INT:
            return int.from_bytes(data, "little", signed=code == CODE_INT)
        if code == CODE_CHARS:
            return data.split(b"\0", 1)[0]
        return data

    def __setitem__(self, name: str, value: Any) -> None:
        off, size, code = self._lookup(name)
        if self._read_only:
            raise MapError(f"{self._section}: '{name}' is read-only after load "
                           f"(set .rodata values before load())")
        self._buf[off:off + size] = _encode(code, size, value, f"{self._section}.{name}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __repr__(self) -> str:
        return f"<GlobalData {self._section}: {', '.join(self._vars)}>"


def _encode(code: str, size: int, value: Any, what: str) -> bytes:
    if code == CODE_INT or code == CODE_UINT:
        if not isinstance(value, int):
            raise MapError(f"{what}: expected an int, got {type(value).__name__}")
        try:
            return value.to_bytes(size, "little", signed=code == CODE_INT)
        except OverflowError:
            raise MapError(f"{what}: {value} does not fit in {size} "
                           f"{'signed' if code == CODE_INT else 'unsigned'} bytes") from None
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)  # ctypes instances
    value = bytes(value)
    if len(value) > size or (len(value) != size and code != CODE_CHARS):
        raise MapError(f"{what}: expected {size} bytes, got {len(value)}")
    return value + b"\0" * (size - len(value))
