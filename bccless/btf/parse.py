"""The :class:`BTF` container: a lazily decoded view over a raw BTF blob.

Kernel BTF has ~130k types and tools usually need a handful of them, so
parsing does the least work that still makes every id addressable: one pass
over the type section as u32 words records where each record starts
(the length of a record follows from its kind and vlen alone).  Records are
decoded on first access and cached.  The first name lookups decode no names
at all: they search the string section for the wanted bytes and then look
for records whose ``name_off`` points there; only a caller that keeps looking
names up gets a full name index, built with C-level loops.

The original blob is kept, so an unmodified BTF re-encodes byte for byte
(see :mod:`bccless.btf.encode`).  Split BTF (kernel modules) keeps a
reference to its base: ids below ``start_id`` and string offsets below the
base's string length resolve there, as in libbpf.
"""
from __future__ import annotations

import struct
import sys
from array import array
from itertools import accumulate
from operator import itemgetter
from typing import Callable, Dict, List, Optional, Sequence

from ..errors import BTFError
from .types import (
    Array, Const, DeclTag, Enum, Enum64, EnumValue, Float, Func, FuncProto, Fwd, Int, Kind,
    Member, Param, Ptr, Restrict, Struct, Type, Typedef, TypeTag, Union, Var, VarSecInfo,
    Datasec, Void, Volatile, essential_name,
)

HEADER_LEN = 24
NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"
BTF_VERSION = 1
# libbpf's MAX_RESOLVE_DEPTH: bounds chains of typedefs/modifiers/arrays (and loops).
MAX_RESOLVE_DEPTH = 32

# Record length in u32 words = _HEAD_WORDS[kind] + vlen * _ITEM_WORDS[kind].  Unknown
# kinds get a length that always overruns the section, so the fast walk needs no
# per-record check and falls through to _diagnose() on any malformed input.
_BAD = 1 << 40
_HEAD_WORDS = tuple(
    _BAD if k == 0 or k > 19 else 3 + {Kind.INT: 1, Kind.ARRAY: 3, Kind.VAR: 1, Kind.DECL_TAG: 1}.get(k, 0)
    for k in range(32))
_ITEM_WORDS = tuple(
    {Kind.STRUCT: 3, Kind.UNION: 3, Kind.ENUM: 2, Kind.FUNC_PROTO: 2, Kind.DATASEC: 3,
     Kind.ENUM64: 3}.get(k, 0) for k in range(32))
_KINDS = tuple(Kind(k) for k in range(20))
_MODS = frozenset({Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
_MODS_AND_TYPEDEF = _MODS | {Kind.TYPEDEF}
_SIZED = frozenset({Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.DATASEC,
                    Kind.FLOAT})
_PTR_SIZE = 8
# A lookup without an index costs a search of the string section plus a scan of the
# name_off list (~0.5 ms on vmlinux); the index costs ~30 ms once.  Past this many
# lookups the caller is clearly doing many, so the index is built.
_SCANS_BEFORE_INDEX = 24


class _RecordWords(dict):
    """info word -> record length in words, filled on demand.

    Kernel BTF has ~300 distinct info words, so one dict lookup per record is
    cheaper than decoding kind and vlen each time."""

    def __missing__(self, info: int) -> int:
        k = info >> 24 & 31
        length = self[info] = _HEAD_WORDS[k] + (info & 0xFFFF) * _ITEM_WORDS[k]
        return length


def _walk(words: Sequence[int], n: int) -> Optional[List[int]]:
    """Word index of every record, or None if the section is malformed."""
    offs: List[int] = []
    app = offs.append
    lengths = _RecordWords()
    i = 0
    try:
        while i < n:
            app(i)
            i += lengths[words[i + 1]]
    except IndexError:
        return None
    return offs if i == n else None


class BTF:
    """One BTF blob (a base, or split BTF on top of ``base``); see the module doc."""

    def __init__(self, *, base: Optional["BTF"] = None, source: str = "<new>",
                 order: str = NATIVE_ORDER) -> None:
        self.base = base
        self.source = source
        self.start_id = base.type_count if base is not None else 1
        self._str_start = base._str_end() if base is not None else 0
        self._order = order
        self._raw: Optional[object] = None   # the parsed blob, for exact re-encoding
        self._hdr_flags = 0
        self._hdr_tail = b""                 # header bytes past the 24 we understand
        self._type_base = HEADER_LEN         # byte offset of the type section in the blob
        self._words: Sequence[int] = array("I")
        self._offs: List[int] = []
        self._strs = b"" if base is not None else b"\0"
        self._new_strs = bytearray()
        self._str_ids: Dict[str, int] = {}
        self._cache: Dict[int, Type] = {}
        self._replaced: Dict[int, Type] = {}
        self._added: List[Type] = []
        self._name_offs: Optional[List[int]] = None
        self._scans = 0                      # name lookups done without an index
        self._keys: List[bytes] = []         # name bytes per parsed record, once indexed
        self._first_by_name: Optional[Dict[bytes, int]] = None
        self._last_by_name: Dict[bytes, int] = {}
        self._flavor_map: Optional[Dict[str, List[bytes]]] = None
        self._kind_bytes: Optional[bytes] = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data, *, base: Optional["BTF"] = None, source: str = "<bytes>") -> "BTF":
        """Index a raw BTF blob (bytes, bytearray, memoryview or mmap) without decoding it."""
        if isinstance(data, bytearray):
            data = bytes(data)   # a mutable buffer could change under the index
        elif isinstance(data, memoryview) and data.format != "B":
            data = data.cast("B")
        n = len(data)

        def fail(msg: str, off: int) -> BTFError:
            return BTFError(msg, offset=off, source=source)

        if n < HEADER_LEN:
            raise fail(f"BTF is {n} bytes, shorter than the {HEADER_LEN}-byte header", 0)
        magic = bytes(data[0:2])
        if magic == b"\x9f\xeb":
            order = "<"
        elif magic == b"\xeb\x9f":
            order = ">"
        else:
            raise fail(f"bad magic 0x{magic.hex()}, expected BTF magic 0xeb9f", 0)
        _, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
            order + "HBBIIIII", data, 0)
        if version != BTF_VERSION:
            raise fail(f"unsupported BTF version {version}, expected {BTF_VERSION}", 2)
        if hdr_len < HEADER_LEN or hdr_len > n:
            raise fail(f"header length {hdr_len} is not within [{HEADER_LEN}, {n}] "
                       f"(blob size)", 4)
        avail = n - hdr_len
        if type_off % 4 or type_len % 4:
            raise fail(f"type section offset {type_off} / length {type_len} is not a "
                       f"multiple of 4", 8)
        if type_off + type_len > avail:
            raise fail(f"type section [{type_off}, {type_off + type_len}) runs past the "
                       f"{avail} data bytes after the header", 8)
        if str_off + str_len > avail:
            raise fail(f"string section [{str_off}, {str_off + str_len}) runs past the "
                       f"{avail} data bytes after the header", 16)
        if type_off + type_len > str_off:
            raise fail(f"type section [{type_off}, {type_off + type_len}) must end before "
                       f"the string section at {str_off}", 16)
        s0 = hdr_len + str_off
        strs = bytes(data[s0:s0 + str_len])
        if str_len or base is None:
            if not str_len or strs[-1] != 0:
                raise fail("string section is empty or does not end with a NUL byte",
                           s0 + max(str_len - 1, 0))
            if base is None and strs[0] != 0:
                raise fail("string section does not start with an empty string "
                           "(split BTF parsed without its base?)", s0)
        self = cls(base=base, source=source, order=order)
        t0 = hdr_len + type_off
        if order == NATIVE_ORDER:
            words: Sequence[int] = memoryview(data)[t0:t0 + type_len].cast("I")
        else:
            words = array("I", bytes(data[t0:t0 + type_len]))
            words.byteswap()
        offs = _walk(words, len(words))
        if offs is None:
            self._words, self._type_base = words, t0
            self._diagnose()
        self._raw = data
        self._hdr_flags = flags
        self._hdr_tail = bytes(data[HEADER_LEN:hdr_len])
        self._type_base = t0
        self._words = words
        self._offs = offs
        self._strs = strs
        return self

    def _diagnose(self) -> None:
        """Find why the fast walk failed and raise a BTFError that says so."""
        words, n, i, tid = self._words, len(self._words), 0, self.start_id
        while i < n:
            at = self._type_base + 4 * i
            if i + 3 > n:
                raise BTFError(f"type [{tid}]: record header needs 12 bytes, only {4 * (n - i)}"
                               f" left in the type section", offset=at, source=self.source)
            info = words[i + 1]
            k, vlen = info >> 24 & 31, info & 0xFFFF
            if _HEAD_WORDS[k] == _BAD:
                raise BTFError(f"type [{tid}]: unknown BTF kind {k} (info 0x{info:08x}), "
                               f"expected 1..19", offset=at + 4, source=self.source)
            length = _HEAD_WORDS[k] + vlen * _ITEM_WORDS[k]
            if i + length > n:
                raise BTFError(f"type [{tid}] {_KINDS[k].name} with vlen {vlen} needs "
                               f"{4 * length} bytes, only {4 * (n - i)} left in the type "
                               f"section", offset=at, source=self.source)
            i += length
            tid += 1
        raise BTFError("type section walk failed", offset=self._type_base, source=self.source)

    @classmethod
    def from_file(cls, path: str, *, base: Optional["BTF"] = None) -> "BTF":
        """A raw BTF file (``.xz`` compressed transparently; plain files are mmapped)."""
        from .sources import read_blob
        return cls.from_bytes(read_blob(path), base=base, source=path)

    @classmethod
    def from_elf(cls, path_or_data, *, base: Optional["BTF"] = None) -> "BTF":
        """The ``.BTF`` section of an ELF object (a path, or the file's bytes)."""
        from .sources import elf_btf_section
        data, source = elf_btf_section(path_or_data)
        return cls.from_bytes(data, base=base, source=source)

    @classmethod
    def new(cls, base: Optional["BTF"] = None) -> "BTF":
        """An empty BTF to build with :meth:`add` (split on top of ``base`` if given)."""
        return cls(base=base)

    # -- ids and records ----------------------------------------------------------------
    @property
    def type_count(self) -> int:
        return self.start_id + len(self._offs) + len(self._added)

    def __len__(self) -> int:
        return self.type_count

    def ids(self) -> range:
        """The ids stored in this blob (not the base's)."""
        return range(self.start_id, self.type_count)

    def _bad_id(self, type_id: int) -> BTFError:
        return BTFError(f"type id {type_id} out of range: valid ids are 0..{self.type_count - 1}",
                        source=self.source)

    def __getitem__(self, type_id: int) -> Type:
        t = self._cache.get(type_id)
        if t is not None:
            return t
        i = type_id - self.start_id
        if i >= 0:
            np = len(self._offs)
            if i < np:
                t = self._cache[type_id] = self._decode(type_id, self._offs[i])
                return t
            if i - np < len(self._added):
                return self._added[i - np]
            raise self._bad_id(type_id)
        if type_id == 0:
            return Void()
        if type_id < 0 or self.base is None:
            raise self._bad_id(type_id)
        return self.base[type_id]

    def kind(self, type_id: int) -> Kind:
        """The kind of ``type_id``, read from the raw record without decoding it."""
        i = type_id - self.start_id
        if i >= 0:
            if i < len(self._offs):
                if self._replaced and type_id in self._replaced:
                    return self._replaced[type_id].kind
                return _KINDS[self._words[self._offs[i] + 1] >> 24 & 31]
            return self[type_id].kind
        if type_id == 0:
            return Kind.UNKN
        if type_id < 0 or self.base is None:
            raise self._bad_id(type_id)
        return self.base.kind(type_id)

    def name(self, type_id: int) -> str:
        """The name of ``type_id`` ('' if anonymous) without decoding the record."""
        i = type_id - self.start_id
        if i >= 0 and i < len(self._offs) and type_id not in self._replaced:
            return self._string_for(self._words[self._offs[i]], type_id)
        return self[type_id].name

    def _own(self, type_id: int) -> Optional[int]:
        """Word index of a parsed, not replaced record of this blob, else None."""
        i = type_id - self.start_id
        if 0 <= i < len(self._offs) and type_id not in self._replaced:
            return self._offs[i]
        return None

    # -- strings ------------------------------------------------------------------------
    def _str_end(self) -> int:
        return self._str_start + len(self._strs) + len(self._new_strs)

    def string(self, offset: int) -> str:
        """The NUL-terminated string at ``offset`` of the (base + own) string section."""
        local = offset - self._str_start
        if local < 0:
            if self.base is not None and offset >= 0:
                return self.base.string(offset)
        else:
            strs = self._strs
            if local < len(strs):
                return strs[local:strs.index(0, local)].decode("utf-8", "surrogateescape")
            local -= len(strs)
            new = self._new_strs
            if local < len(new):
                return new[local:new.index(0, local)].decode("utf-8", "surrogateescape")
        raise BTFError(f"string offset {offset} out of range: string section ends at "
                       f"{self._str_end()}", source=self.source)

    def _string_for(self, offset: int, type_id: int) -> str:
        try:
            return self.string(offset)
        except BTFError as exc:
            raise BTFError(f"type [{type_id}]: {exc.reason}", offset=self._record_offset(type_id),
                           source=self.source) from None

    def _record_offset(self, type_id: int) -> Optional[int]:
        i = type_id - self.start_id
        return self._type_base + 4 * self._offs[i] if 0 <= i < len(self._offs) else None

    def add_string(self, s: str) -> int:
        """Intern ``s``, reusing an existing copy (in the base too) when there is one."""
        if not s:
            return 0
        off = self._str_ids.get(s)
        if off is not None:
            return off
        needle = s.encode("utf-8", "surrogateescape") + b"\0"
        # Every string added so far is in _str_ids, so only parsed sections are searched.
        found = self._find_bytes(needle, first_only=True, parsed_only=True)
        if found:
            off = found[0]
        else:
            off = self._str_end()
            self._new_strs += needle
        self._str_ids[s] = off
        return off

    def _find_bytes(self, needle: bytes, first_only: bool = False,
                    parsed_only: bool = False) -> List[int]:
        """Global string offsets at which ``needle`` occurs (base first, ascending)."""
        out = (self.base._find_bytes(needle, first_only, parsed_only)
               if self.base is not None else [])
        start = self._str_start
        for blob in (self._strs,) if parsed_only else (self._strs, self._new_strs):
            if first_only and out:
                return out
            p = blob.find(needle)
            while p >= 0:
                out.append(start + p)
                if first_only:
                    return out
                p = blob.find(needle, p + 1)
            start += len(blob)
        return out

    # -- lookup by name -----------------------------------------------------------------
    def find(self, name: str, kind: Optional[Kind] = None) -> List[int]:
        """Ids whose name is exactly ``name`` (of ``kind`` if given), ascending, base first."""
        return self._lookup(name, kind, False)

    def find_essential(self, name: str, kind: Optional[Kind] = None) -> List[int]:
        """Ids whose essential name (flavor suffix ``___x`` cut) is ``name``, ascending."""
        return self._lookup(name, kind, True)

    def _lookup(self, name: str, kind: Optional[Kind], essential: bool) -> List[int]:
        out = self.base._lookup(name, kind, essential) if self.base is not None else []
        if essential:
            def match(n: str) -> bool:
                return essential_name(n) == name
        else:
            def match(n: str) -> bool:
                return n == name
        own = self._parsed_named(name, essential, match) if self._offs else []
        replaced = self._replaced
        if replaced:
            own = [i for i in own if i not in replaced]
            own.extend(i for i, t in replaced.items() if match(t.name))
        first_added = self.start_id + len(self._offs)
        own.extend(first_added + j for j, t in enumerate(self._added) if match(t.name))
        if own:
            own.sort()
            if kind is not None:
                own = [i for i in own if self.kind(i) == kind]
            out.extend(own)
        return out

    def _parsed_named(self, name: str, essential: bool, match: Callable[[str], bool]) -> List[int]:
        """Parsed ids whose raw name matches, by string search for the first few
        lookups, then through an index of all names (cheaper for many lookups)."""
        if self._first_by_name is None:
            self._scans += 1
            if self._scans <= _SCANS_BEFORE_INDEX:
                return self._scan_named(name, essential, match)
            self._build_name_index()
        encoded = name.encode("utf-8", "surrogateescape")
        keys = [encoded] if not essential or essential_name(name) == name else []
        if essential:
            keys += self._flavors().get(name, ())
        out: List[int] = []
        for key in keys:
            out.extend(self._ids_named(key))
        return sorted(out) if len(keys) > 1 else out

    def _scan_named(self, name: str, essential: bool, match: Callable[[str], bool]) -> List[int]:
        if not name:
            return [i for i in range(self.start_id, self.start_id + len(self._offs))
                    if match(self.name(i))]
        encoded = name.encode("utf-8", "surrogateescape")
        if essential:
            # A name with essential name ``name`` starts with it: its string offset is an
            # occurrence of those bytes followed by NUL or "___".
            n = len(name)
            offsets = []
            for off in self._find_bytes(encoded):
                text = self.string(off)
                if (len(text) == n or text[n:n + 3] == "___") and match(text):
                    offsets.append(off)
        else:
            offsets = self._find_bytes(encoded + b"\0")
        out: List[int] = []
        for off in offsets:
            out.extend(self._scan(self._name_offsets(), off, 0))
        return sorted(out) if len(offsets) > 1 else out

    def _name_offsets(self) -> List[int]:
        names = self._name_offs
        if names is None:
            offs, words = self._offs, self._words
            names = self._name_offs = ([words[offs[0]]] if len(offs) == 1 else
                                       list(itemgetter(*offs)(words)))
        return names

    def _scan(self, seq: list, value: object, lo: int, hi: Optional[int] = None) -> List[int]:
        """Ids of the positions in ``seq[lo:hi]`` holding ``value`` (C-speed index())."""
        hi = len(seq) if hi is None else hi
        index, start, out = seq.index, self.start_id, []
        try:
            j = index(value, lo, hi)
            while True:
                out.append(start + j)
                j = index(value, j + 1, hi)
        except ValueError:
            return out

    def _build_name_index(self) -> None:
        """Name bytes of every parsed record, and first/last position of each name.

        Built with C-level loops only: the string section split at NULs gives
        the bytes at every string start; the rare name_off that points into the
        middle of a string (or into the base's strings) is decoded on its own."""
        names = self._name_offsets()
        parts = self._strs.split(b"\0")
        by_off = dict(zip(accumulate(map((1).__add__, map(len, parts)), initial=self._str_start),
                          parts))
        keys = list(map(by_off.get, names))
        if None in keys:
            j = keys.index(None)
            try:
                while True:
                    keys[j] = self.string(names[j]).encode("utf-8", "surrogateescape")
                    j = keys.index(None, j + 1)
            except ValueError:
                pass
        positions = range(len(keys))
        self._keys = keys
        self._last_by_name = dict(zip(keys, positions))
        self._first_by_name = dict(zip(reversed(keys), reversed(positions)))

    def _ids_named(self, key: bytes) -> List[int]:
        j = self._first_by_name.get(key)  # type: ignore[union-attr]
        if j is None:
            return []
        last = self._last_by_name[key]  # type: ignore[index]
        if j == last:
            return [self.start_id + j]
        return self._scan(self._keys, key, j, last + 1)

    def _flavors(self) -> Dict[str, List[bytes]]:
        """essential name -> names with a flavor suffix (``foo___v2``), from the index."""
        flavors = self._flavor_map
        if flavors is None:
            flavors = self._flavor_map = {}
            for key in self._first_by_name:  # type: ignore[union-attr]
                if b"___" in key:
                    text = key.decode("utf-8", "surrogateescape")
                    ess = essential_name(text)
                    if ess != text:
                        flavors.setdefault(ess, []).append(key)
        return flavors

    def ids_of_kind(self, *kinds: Kind) -> List[int]:
        """Ids stored in this blob whose kind is one of ``kinds``, ascending.

        One C-level pass builds a byte per record the first time, so a caller
        that wants e.g. all structs and typedefs of vmlinux need not call
        :meth:`kind` 100k times."""
        kb = self._kind_bytes
        if kb is None:
            offs, words = self._offs, self._words
            infos = (itemgetter(*map((1).__add__, offs))(words) if len(offs) > 1 else
                     [words[o + 1] for o in offs])
            kb = self._kind_bytes = bytes(info >> 24 & 31 for info in infos)
        out: List[int] = []
        start = self.start_id
        for k in set(kinds):
            needle = bytes((k,))
            find = kb.find
            p = find(needle)
            while p >= 0:
                out.append(start + p)
                p = find(needle, p + 1)
        replaced = self._replaced
        if replaced:
            out = [i for i in out if i not in replaced]
            out.extend(i for i, t in replaced.items() if t.kind in kinds)
        first_added = start + len(self._offs)
        out.extend(first_added + j for j, t in enumerate(self._added) if t.kind in kinds)
        if len(kinds) > 1 or replaced:
            out.sort()
        return out

    # -- type graph helpers ---------------------------------------------------------------
    def skip_mods(self, type_id: int) -> int:
        """Follow const/volatile/restrict/type-tag to the first other type."""
        return self._skip(type_id, _MODS)

    def skip_mods_and_typedefs(self, type_id: int) -> int:
        """Follow modifiers and typedefs to the first other type (libbpf's helper)."""
        return self._skip(type_id, _MODS_AND_TYPEDEF)

    def _skip(self, type_id: int, kinds: frozenset) -> int:
        for _ in range(MAX_RESOLVE_DEPTH):
            if self.kind(type_id) not in kinds:
                return type_id
            type_id = self._ref(type_id)
        raise BTFError(f"type [{type_id}]: modifier/typedef chain deeper than "
                       f"{MAX_RESOLVE_DEPTH} (a loop?)", source=self.source)

    def _ref(self, type_id: int) -> int:
        """The ``type`` field of a reference-kind record, without decoding it."""
        o = self._own(type_id)
        if o is None:
            return self[type_id].type  # type: ignore[attr-defined]
        ref = self._words[o + 2]
        if ref >= self.type_count:
            self[type_id]  # decoding raises the detailed out-of-range error
        return ref

    def resolve_size(self, type_id: int) -> int:
        """Byte size of ``type_id`` through typedefs, modifiers, vars and arrays (libbpf's
        btf__resolve_size); a pointer is 8 bytes."""
        first, nelems = type_id, 1
        for _ in range(MAX_RESOLVE_DEPTH):
            k = self.kind(type_id)
            if k in _SIZED:
                o = self._own(type_id)
                size = self._words[o + 2] if o is not None else self[type_id].size  # type: ignore
                return nelems * size
            if k == Kind.PTR:
                return nelems * _PTR_SIZE
            if k == Kind.ARRAY:
                arr = self[type_id]
                nelems *= arr.nelems  # type: ignore[attr-defined]
                type_id = arr.type  # type: ignore[attr-defined]
            elif k in _MODS_AND_TYPEDEF or k in (Kind.VAR, Kind.DECL_TAG):
                type_id = self._ref(type_id)
            else:
                raise BTFError(f"cannot resolve the size of type [{first}]: reached "
                               f"{k.name} [{type_id}], which has no size", source=self.source)
        raise BTFError(f"cannot resolve the size of type [{first}]: chain deeper than "
                       f"{MAX_RESOLVE_DEPTH}", source=self.source)

    # -- building -------------------------------------------------------------------------
    def add(self, t: Type) -> int:
        """Append ``t`` and return its id; its names are interned at once."""
        from .encode import intern_names
        intern_names(self, t)
        self._added.append(t)
        return self.type_count - 1

    def replace(self, type_id: int, t: Type) -> None:
        """Put ``t`` in place of the record ``type_id`` of this blob."""
        i = type_id - self.start_id
        np = len(self._offs)
        if i < 0 or i >= np + len(self._added):
            raise BTFError(f"cannot replace type id {type_id}: this blob holds ids "
                           f"{self.start_id}..{self.type_count - 1}", source=self.source)
        from .encode import intern_names
        intern_names(self, t)
        if i < np:
            self._cache[type_id] = self._replaced[type_id] = t
        else:
            self._added[i - np] = t

    def encode(self) -> bytes:
        """Header + types + strings; the original bytes if nothing changed."""
        from .encode import encode_btf
        return encode_btf(self)

    def __repr__(self) -> str:
        split = f", base={self.base.source!r}" if self.base is not None else ""
        return f"<BTF {self.source!r}: ids {self.start_id}..{self.type_count - 1}{split}>"

    # -- decoding ---------------------------------------------------------------------------
    def _decode(self, tid: int, o: int) -> Type:
        """Build the record object for the raw record at word index ``o``."""
        w = self._words
        info, st = w[o + 1], w[o + 2]
        k, vlen, kflag = info >> 24 & 31, info & 0xFFFF, bool(info >> 31)
        name = self._string_for(w[o], tid)
        limit = self.type_count
        s = self._string_for

        def ref(x: int) -> int:
            if x >= limit:
                raise BTFError(f"type [{tid}] {_KINDS[k].name} '{name}' refers to type id {x}, "
                               f"expected < {limit}", offset=self._type_base + 4 * o,
                               source=self.source)
            return x

        if k == Kind.STRUCT or k == Kind.UNION:
            members = []
            for j in range(o + 3, o + 3 + 3 * vlen, 3):
                off = w[j + 2]
                if kflag:
                    members.append(Member(s(w[j], tid), ref(w[j + 1]), off & 0xFFFFFF, off >> 24))
                else:
                    members.append(Member(s(w[j], tid), ref(w[j + 1]), off))
            return (Struct if k == Kind.STRUCT else Union)(name, st, members, kflag)
        if k in _MODS_AND_TYPEDEF or k == Kind.PTR:
            if k == Kind.TYPEDEF:
                return Typedef(name, ref(st))
            if k == Kind.PTR:
                return Ptr(ref(st), name)
            if k == Kind.TYPE_TAG:
                return TypeTag(name, ref(st), kflag)
            return {Kind.CONST: Const, Kind.VOLATILE: Volatile,
                    Kind.RESTRICT: Restrict}[k](ref(st), name)
        if k == Kind.FUNC_PROTO:
            params = [Param(s(w[j], tid), ref(w[j + 1])) for j in range(o + 3, o + 3 + 2 * vlen, 2)]
            return FuncProto(ref(st), params, name)
        if k == Kind.FUNC:
            return Func(name, ref(st), vlen)
        if k == Kind.INT:
            x = w[o + 3]
            return Int(name, st, x >> 24 & 0xF, x >> 16 & 0xFF, x & 0xFF)
        if k == Kind.ARRAY:
            return Array(ref(w[o + 3]), ref(w[o + 4]), w[o + 5], name)
        if k == Kind.ENUM:
            values = []
            for j in range(o + 3, o + 3 + 2 * vlen, 2):
                v = w[j + 1]
                values.append(EnumValue(s(w[j], tid), v - (1 << 32) if kflag and v >> 31 else v))
            return Enum(name, st, values, kflag)
        if k == Kind.ENUM64:
            values = []
            for j in range(o + 3, o + 3 + 3 * vlen, 3):
                v = w[j + 2] << 32 | w[j + 1]
                values.append(EnumValue(s(w[j], tid), v - (1 << 64) if kflag and v >> 63 else v))
            return Enum64(name, st, values, kflag)
        if k == Kind.FWD:
            return Fwd(name, kflag)
        if k == Kind.VAR:
            return Var(name, ref(st), w[o + 3])
        if k == Kind.DATASEC:
            return Datasec(name, st, [VarSecInfo(ref(w[j]), w[j + 1], w[j + 2])
                                      for j in range(o + 3, o + 3 + 3 * vlen, 3)])
        if k == Kind.FLOAT:
            return Float(name, st)
        # DECL_TAG: the only kind left, the walk admitted no unknown kind.
        idx = w[o + 3]
        return DeclTag(name, ref(st), idx - (1 << 32) if idx >> 31 else idx, kflag)
