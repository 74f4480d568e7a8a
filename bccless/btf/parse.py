"""The :class:`BTF` container: a lazily decoded view over a raw BTF blob.

Kernel BTF has ~130k types and tools usually need a handful of them, so
parsing does the least work that still makes every id addressable: one pass
over the type section as u32 words records where each record starts
(the length of a record follows from its kind and vlen alone).  Records are
decoded on first access (:mod:`bccless.btf.decode`) and cached.  Name lookups
decode no names at all (:mod:`bccless.btf.names`): they find where the name
starts in the string section, then the records whose ``name_off`` points
there.  For the running kernel, the record offsets and the name index are
cached on disk (:mod:`bccless.btf.indexcache`), so not even the walk is redone.

The original blob is kept, so an unmodified BTF re-encodes byte for byte
(see :mod:`bccless.btf.encode`).  Split BTF (kernel modules) keeps a
reference to its base: ids below ``start_id`` and string offsets below the
base's string length resolve there, as in libbpf.
"""
from __future__ import annotations

import sys
from operator import itemgetter

from ..errors import BTFError
from .decode import decode_record
from .names import NameIndex, NameLookup, name_offsets
from .types import Kind, Void
from .walk import HEADER_LEN, NATIVE_ORDER, RecordWords, diagnose, read_framing, walk

TYPE_CHECKING = False
if TYPE_CHECKING:   # typing costs milliseconds to import; annotations are strings
    from array import array
    from typing import Dict, List, Optional, Sequence

    from .names import OddNames
    from .types import Type

# libbpf's MAX_RESOLVE_DEPTH: bounds chains of typedefs/modifiers/arrays (and loops).
MAX_RESOLVE_DEPTH = 32

_KINDS = tuple(Kind(k) for k in range(20))
_LOW5 = bytes(b & 31 for b in range(256))
_MODS = frozenset({Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
_MODS_AND_TYPEDEF = _MODS | {Kind.TYPEDEF}
_SIZED = frozenset({Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.DATASEC,
                    Kind.FLOAT})
_PTR_SIZE = 8


class BTF(NameLookup):
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
        self._words: Sequence[int] = ()
        self._offs: List[int] = []
        self._strs = b"" if base is not None else b"\0"
        self._new_strs = bytearray()
        self._str_ids: Dict[str, int] = {}
        self._cache: Dict[int, Type] = {}
        self._replaced: Dict[int, Type] = {}
        self._added: List[Type] = []
        self._name_offs: Optional[array] = None   # name_off per parsed record
        self._packed_names: Optional[bytes] = None
        self._scans = 0                      # name lookups done without an index
        self._index: Optional[NameIndex] = None
        self._odd: Optional[OddNames] = None
        self._kind_bytes: Optional[bytes] = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data, *, base: Optional["BTF"] = None, source: str = "<bytes>",
                   index_file: Optional[str] = None) -> "BTF":
        """Index a raw BTF blob (bytes, bytearray, memoryview or mmap) without decoding it.

        ``index_file`` caches the record offsets and name index of this blob
        (see :mod:`bccless.btf.indexcache`): read when it verifies, else
        written after the walk."""
        if isinstance(data, bytearray):
            data = bytes(data)   # a mutable buffer could change under the index
        elif isinstance(data, memoryview) and data.format != "B":
            data = data.cast("B")
        order, flags, hdr_len, t0, type_len, s0, str_len = read_framing(
            data, base is not None, source)
        self = cls(base=base, source=source, order=order)
        if order == NATIVE_ORDER:
            words: Sequence[int] = memoryview(data)[t0:t0 + type_len].cast("I")
        else:
            from array import array
            words = array("I", bytes(data[t0:t0 + type_len]))
            words.byteswap()
        strs = bytes(data[s0:s0 + str_len])
        cache = index_file is not None and order == NATIVE_ORDER and base is None
        cached = None
        if cache:
            from .indexcache import read_index
            cached = read_index(index_file, bytes(data[:HEADER_LEN]), words, RecordWords())
        if cached is not None:
            offs, self._index = cached
        else:
            offs = walk(words)
            if offs is None:
                raise diagnose(words, t0, self.start_id, source)
            if cache and offs:
                from .indexcache import write_index
                self._index = NameIndex.build(name_offsets(words, offs), strs, 0)
                write_index(index_file, bytes(data[:HEADER_LEN]), offs, self._index)
        self._raw = data
        self._hdr_flags = flags
        self._hdr_tail = bytes(data[HEADER_LEN:hdr_len])
        self._type_base = t0
        self._words = words
        self._offs = offs
        self._strs = strs
        return self

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
        off = self._find_parsed_string(needle)
        if off is None:
            off = self._str_end()
            self._new_strs += needle
        self._str_ids[s] = off
        return off

    def _find_parsed_string(self, needle: bytes) -> Optional[int]:
        """Global offset of the first occurrence of ``needle`` in the parsed string
        sections (base first): a suffix of a longer string serves as well."""
        if self.base is not None:
            off = self.base._find_parsed_string(needle)
            if off is not None:
                return off
        p = self._strs.find(needle)
        return self._str_start + p if p >= 0 else None

    def _kind_table(self) -> bytes:
        """Kind number of every parsed record (as stored: replacements not applied)."""
        kb = self._kind_bytes
        if kb is None:
            from array import array
            offs, words = self._offs, self._words
            infos = array("I", itemgetter(*map((1).__add__, offs))(words) if len(offs) > 1
                          else [words[o + 1] for o in offs])
            # The kind is the low 5 bits of the info word's most significant byte.
            top = infos.tobytes()[3 if sys.byteorder == "little" else 0::4]
            kb = self._kind_bytes = top.translate(_LOW5)
        return kb

    def kinds(self) -> List[Kind]:
        """The kind of every id from 0 to ``type_count - 1`` (base ids included),
        built at C speed: for callers that would otherwise call :meth:`kind`
        for every id."""
        out = self.base.kinds() if self.base is not None else [Kind.UNKN]
        out += map(_KINDS.__getitem__, self._kind_table())
        for tid, t in self._replaced.items():
            out[tid] = t.kind
        out += [t.kind for t in self._added]
        return out

    def ids_of_kind(self, *kinds: Kind) -> List[int]:
        """Ids stored in this blob whose kind is one of ``kinds``, ascending.

        One C-level pass builds a byte per record the first time, so a caller
        that wants e.g. all structs and typedefs of vmlinux need not call
        :meth:`kind` 100k times."""
        kb = self._kind_table()
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
        return decode_record(self, tid, o)
