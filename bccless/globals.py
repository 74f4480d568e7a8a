"""Named access to an object's global variables (``.rodata``, ``.data``, ``.bss``).

libbpf skeletons expose ``skel->rodata->var``; this is the Python equivalent.
Before load the view writes into the section's initial image (so ``.rodata``
constants can be set and then frozen by the kernel); after load it is backed
by the map's mmap, so reads and writes are live values the programs see.
Variables are located through the object's DATASEC record, so no symbol table
is needed at run time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, Tuple, Union

from .btf.types import INT_SIGNED, Kind
from .errors import MapError

if TYPE_CHECKING:
    from .btf.parse import BTF

Buffer = Union[bytearray, memoryview]


class GlobalData:
    """A mapping-like and attribute-style view of one global data section."""

    def __init__(self, section: str, btf: "BTF", datasec_id: int, buf: Buffer,
                 read_only: bool = False) -> None:
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_btf", btf)
        object.__setattr__(self, "_buf", buf)
        object.__setattr__(self, "_read_only", read_only)
        variables: Dict[str, Tuple[int, int, int]] = {}
        for v in btf[datasec_id].vars:
            var = btf[v.type]
            if var.kind == Kind.VAR:
                variables[var.name] = (v.offset, v.size, var.type)
        object.__setattr__(self, "_vars", variables)

    def rebind(self, buf: Buffer, read_only: bool) -> None:
        """Point the view at new backing memory (the live map after load)."""
        object.__setattr__(self, "_buf", buf)
        object.__setattr__(self, "_read_only", read_only)

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __contains__(self, name: object) -> bool:
        return name in self._vars

    def __len__(self) -> int:
        return len(self._vars)

    def _lookup(self, name: str) -> Tuple[int, int, int]:
        try:
            return self._vars[name]
        except KeyError:
            known = ", ".join(sorted(self._vars)) or "none"
            raise MapError(f"{self._section}: no global variable '{name}' "
                           f"(variables: {known})") from None

    def raw(self, name: str) -> bytes:
        off, size, _ = self._lookup(name)
        return bytes(self._buf[off:off + size])

    def __getitem__(self, name: str) -> Any:
        off, size, type_id = self._lookup(name)
        data = bytes(self._buf[off:off + size])
        return _decode(self._btf, type_id, data)

    def __setitem__(self, name: str, value: Any) -> None:
        off, size, type_id = self._lookup(name)
        if self._read_only:
            raise MapError(f"{self._section}: '{name}' is read-only after load "
                           f"(set .rodata values before load())")
        data = _encode(self._btf, type_id, size, value, f"{self._section}.{name}")
        self._buf[off:off + size] = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __repr__(self) -> str:
        return f"<GlobalData {self._section}: {', '.join(self._vars)}>"


def _int_info(btf: "BTF", type_id: int):
    """(size, signed) when the type is integer-like, else None."""
    tid = btf.skip_mods_and_typedefs(type_id)
    t = btf[tid]
    if t.kind == Kind.INT:
        return t.size, bool(t.encoding & INT_SIGNED)
    if t.kind in (Kind.ENUM, Kind.ENUM64):
        return t.size, t.signed
    if t.kind == Kind.PTR:
        return 8, False
    return None


def _char_array(btf: "BTF", type_id: int) -> bool:
    t = btf[btf.skip_mods_and_typedefs(type_id)]
    if t.kind != Kind.ARRAY:
        return False
    elem = btf[btf.skip_mods_and_typedefs(t.type)]
    return elem.kind == Kind.INT and elem.size == 1


def _decode(btf: "BTF", type_id: int, data: bytes) -> Any:
    info = _int_info(btf, type_id)
    if info is not None:
        return int.from_bytes(data[:info[0]], "little", signed=info[1])
    if _char_array(btf, type_id):
        return data.split(b"\0", 1)[0]
    return data


def _encode(btf: "BTF", type_id: int, size: int, value: Any, what: str) -> bytes:
    info = _int_info(btf, type_id)
    if info is not None:
        if not isinstance(value, int):
            raise MapError(f"{what}: expected an int, got {type(value).__name__}")
        try:
            return value.to_bytes(info[0], "little", signed=info[1])
        except OverflowError:
            raise MapError(f"{what}: {value} does not fit in {info[0]} "
                           f"{'signed' if info[1] else 'unsigned'} bytes") from None
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)  # ctypes instances
    if len(value) > size or (len(value) != size and not _char_array(btf, type_id)):
        raise MapError(f"{what}: expected {size} bytes, got {len(value)}")
    return bytes(value) + b"\0" * (size - len(value))
