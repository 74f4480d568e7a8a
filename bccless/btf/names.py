"""Finding parsed BTF records by name without decoding their names.

A record's name is an offset into the string section, so "which records are
called X" splits into two questions answered at C speed:

1. where does the string X start?  A search of the string section for
   ``NUL X NUL``: only matches at string starts count, so ``u32`` does not
   stop at every ``__u32`` and ``s_u32`` on the way;
2. which records have that ``name_off``?  Either a search of the packed
   name offsets (no set-up: the first few lookups), or two bisections in the
   records sorted by name offset (:class:`NameIndex`, built once, and small
   enough to cache on disk with the kernel's record offsets).

Records whose ``name_off`` is not the start of one of this blob's own
strings (a suffix of another string, or a string of the base BTF for split
BTF) are the "odd" ones; there are none in kernel BTF, so they are simply
decoded once and looked up in a dict.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import itemgetter

from .types import essential_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from array import array
    from typing import Callable, Dict, Iterable, List, Optional, Sequence

    from .types import Kind


def name_offsets(words: Sequence[int], offs: Sequence[int]) -> array:
    """The ``name_off`` word of every record (record ``i`` starts at word ``offs[i]``)."""
    # Imported here: :mod:`array` imports collections.abc, ~1.5 ms that a cached
    # kernel index (all memoryviews) never needs.
    from array import array
    if len(offs) == 1:
        return array("I", (words[offs[0]],))
    return array("I", itemgetter(*offs)(words) if offs else ())


def string_starts(strs: bytes, text: bytes, str_start: int, unique: bool = False) -> List[int]:
    """Global offsets of the strings of ``strs`` equal to ``text``, ascending
    (``unique``: ``strs`` holds no duplicate strings, so stop at the first)."""
    if strs.startswith(text + b"\0"):
        if unique:
            return [str_start]
        out = [str_start]
    else:
        out = []
    needle = b"\0" + text + b"\0"
    find = strs.find
    p = find(needle)
    while p >= 0:
        if unique:
            return [str_start + p + 1]
        out.append(str_start + p + 1)
        p = find(needle, p + 1)
    return out


def flavor_starts(strs: bytes, ess: str, str_start: int) -> List[int]:
    """Global offsets of the strings of ``strs`` whose essential name is ``ess``
    (the string itself if it is its own essential name, and ``ess___flavor``)."""
    encoded = ess.encode("utf-8", "surrogateescape")
    out = string_starts(strs, encoded, str_start) if essential_name(ess) == ess else []
    prefix = encoded + b"___"
    needle = b"\0" + prefix
    find = strs.find
    starts = [0] if strs.startswith(prefix) else []
    p = find(needle)
    while p >= 0:
        starts.append(p + 1)
        p = find(needle, p + 1)
    for start in starts:
        text = strs[start:strs.index(0, start)].decode("utf-8", "surrogateescape")
        if essential_name(text) == ess:
            out.append(str_start + start)
    return sorted(out) if len(out) > 1 else out


def odd_positions(name_offs: array, strs: bytes, str_start: int) -> List[int]:
    """Positions in ``name_offs`` whose offset is not the start of a string of ``strs``."""
    distinct = set(name_offs)
    end = str_start + len(strs)
    if min(distinct, default=str_start) >= str_start and max(distinct, default=0) < end:
        odd, inner = [], distinct      # the usual case: every name in this blob's strings
    else:
        odd = [o for o in distinct if not str_start <= o < end]
        inner = distinct.difference(odd)
    # The byte before a string start is NUL (offset 0 maps to strs[-1], a NUL too).
    before = bytes(map(strs.__getitem__, map((-1 - str_start).__add__, inner)))
    if before.count(0) != len(before):
        odd += [o for o, b in zip(inner, before) if b]
    if not odd:
        return []
    wanted = set(odd)
    return [i for i, o in enumerate(name_offs) if o in wanted]


def has_unique_strings(strs: bytes) -> bool:
    """True when no two strings of ``strs`` are equal (empty strings aside), so a
    name has one offset and equal names are equal offsets."""
    parts = strs.split(b"\0")
    empty = parts.count(b"")
    return len(set(parts)) == len(parts) - empty + (1 if empty else 0)


# A lookup without an index costs a search of the string section plus one of the
# packed name offsets (~0.3 ms on vmlinux); the index costs ~40 ms once.  Past this
# many lookups the caller is clearly doing many, so the index is built.
SCANS_BEFORE_INDEX = 24


class NameIndex:
    """Record positions sorted by ``name_off``: the persistent part of name lookup.

    ``order[j]`` is a record position, ``keys[j]`` its name offset, ascending
    (positions ascending within one offset); ``odd`` lists the positions whose
    name is not one of this blob's string starts; ``unique`` says the string
    section holds no duplicates (then equal names mean equal offsets)."""

    __slots__ = ("order", "keys", "odd", "unique")

    def __init__(self, order: array, keys: array, odd: array, unique: bool) -> None:
        self.order = order
        self.keys = keys
        self.odd = odd
        self.unique = unique

    @classmethod
    def build(cls, name_offs: array, strs: bytes, str_start: int,
              odd: Optional[Iterable[int]] = None) -> "NameIndex":
        """Index ``name_offs`` (one per record) over the string section ``strs``
        (``odd``: the :func:`odd_positions`, when already known)."""
        from array import array
        order = array("I", sorted(range(len(name_offs)), key=name_offs.__getitem__))
        keys = array("I", [name_offs[order[0]]] if len(order) == 1 else
                     itemgetter(*order)(name_offs) if order else ())
        odd = array("I", odd_positions(name_offs, strs, str_start) if odd is None else odd)
        return cls(order, keys, odd, has_unique_strings(strs))

    def at(self, off: int) -> List[int]:
        """Positions of the records with name offset ``off``, ascending."""
        keys = self.keys
        lo = bisect_left(keys, off)
        hi = bisect_right(keys, off, lo)
        return self.order[lo:hi].tolist()


class OddNames:
    """Name -> positions for the odd records, decoded once on first use."""

    def __init__(self, positions: Iterable[int], name_of: Callable[[int], str]) -> None:
        self.positions = list(positions)
        self._exact: Dict[str, List[int]] = {}
        for i in self.positions:
            self._exact.setdefault(name_of(i), []).append(i)
        self._essential: Dict[str, List[int]] | None = None

    def exact(self, name: str) -> List[int]:
        return self._exact.get(name, [])

    def essential(self, ess: str) -> List[int]:
        table = self._essential
        if table is None:
            table = self._essential = {}
            for name, positions in self._exact.items():
                table.setdefault(essential_name(name), []).extend(positions)
        return table.get(ess, [])


def scan_at(packed: bytes, off: int) -> List[int]:
    """Positions holding ``off`` in ``packed`` (native u32 name offsets), ascending."""
    from array import array
    needle = array("I", (off,)).tobytes()
    find = packed.find
    out: List[int] = []
    p = find(needle)
    while p >= 0:
        if p & 3:
            p = find(needle, p + 1)
        else:
            out.append(p >> 2)
            p = find(needle, p + 4)
    return out


def _contains(sorted_seq: Sequence[int], value: int) -> bool:
    j = bisect_left(sorted_seq, value)
    return j < len(sorted_seq) and sorted_seq[j] == value


class NameLookup:
    """The name lookups of :class:`bccless.btf.parse.BTF` (a mixin: it works on
    the container's record offsets, strings, base, replaced and added types)."""

    def find(self, name: str, kind: Optional[Kind] = None) -> List[int]:
        """Ids whose name is exactly ``name`` (of ``kind`` if given), ascending, base first."""
        return self._lookup(name, kind, False)

    def find_essential(self, name: str, kind: Optional[Kind] = None) -> List[int]:
        """Ids whose essential name (flavor suffix ``___x`` cut) is ``name``, ascending."""
        return self._lookup(name, kind, True)

    def _lookup(self, name: str, kind: Optional[Kind], essential: bool,
                known_off: Optional[int] = None) -> List[int]:
        """Ids named ``name``: base, parsed, replaced and added records.
        ``known_off`` is the one string offset of ``name`` in this blob, if known."""
        out = self.base._lookup(name, kind, essential) if self.base is not None else []
        if essential:
            def match(n: str) -> bool:
                return essential_name(n) == name
        else:
            def match(n: str) -> bool:
                return n == name
        own = self._parsed_named(name, essential, known_off) if self._offs else []
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

    def find_same_name(self, type_id: int) -> List[int]:
        """``find(name(type_id))``, without searching the string section when the
        name index shows that equal names are equal string offsets (kernel BTF).

        Callers of this method name many types (one per type they print), so
        it builds the name index at once rather than after a few scans."""
        i = type_id - self.start_id
        index = self._index
        if index is None and 0 <= i < len(self._offs):
            index = self._build_index()
        if index is not None and index.unique and 0 <= i < len(self._offs) \
                and type_id not in self._replaced and not _contains(index.odd, i):
            return self._lookup(self.name(type_id), None, False, self._words[self._offs[i]])
        return self.find(self.name(type_id))

    def _build_index(self) -> NameIndex:
        known = self._odd.positions if self._odd is not None else None
        index = self._index = NameIndex.build(self._name_offsets(), self._strs,
                                              self._str_start, known)
        return index

    def _parsed_named(self, name: str, essential: bool, known_off: Optional[int]) -> List[int]:
        """Parsed ids whose raw name matches: name offsets found by searching the
        packed name offsets for the first few lookups, then by bisecting the name
        index (built once; loaded from disk for the kernel)."""
        index = self._index
        if index is None:
            self._scans += 1
            if self._scans > SCANS_BEFORE_INDEX:
                index = self._build_index()
        if known_off is not None:
            starts = [known_off]
        elif essential:
            starts = flavor_starts(self._strs, name, self._str_start)
        else:
            starts = string_starts(self._strs, name.encode("utf-8", "surrogateescape"),
                                   self._str_start, index is not None and index.unique)
        if index is not None:
            at = index.at
        else:
            packed = self._packed_names
            if packed is None:
                packed = self._packed_names = self._name_offsets().tobytes()
            def at(off: int) -> List[int]:
                return scan_at(packed, off)
        positions: List[int] = []
        for off in starts:
            positions.extend(at(off))
        odd = self._odd_names()
        extra = odd.essential(name) if essential else odd.exact(name)
        if extra:
            positions.extend(extra)
            positions.sort()
        elif len(starts) > 1:
            positions.sort()
        start = self.start_id
        return [start + p for p in positions]

    def _name_offsets(self) -> array:
        names = self._name_offs
        if names is None:
            names = self._name_offs = name_offsets(self._words, self._offs)
        return names

    def _odd_names(self) -> OddNames:
        """The records whose name is not one of this blob's string starts, by name."""
        odd = self._odd
        if odd is None:
            positions = (self._index.odd if self._index is not None else
                         odd_positions(self._name_offsets(), self._strs, self._str_start))
            words, offs, start = self._words, self._offs, self.start_id
            odd = self._odd = OddNames(
                positions, lambda p: self._string_for(words[offs[p]], start + p))
        return odd
