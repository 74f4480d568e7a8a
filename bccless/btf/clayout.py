"""Record layout: make clang lay a struct/union out exactly as BTF says.

BTF records sizes and member bit offsets but not alignment, nor the
attributes (``packed``, ``aligned(N)``, unnamed bit-fields) that produced
them.  Printing members in order and hoping the compiler lands on the same
offsets fails where the kernel used those attributes.  So each record is
re-laid out here with clang's rules for LP64 targets (x86_64 and bpf agree):

* a non-bit-field member goes at the next multiple of its alignment;
* a named bit-field goes at the current bit unless it would straddle a
  storage unit of its declared type, then at the next unit; unnamed
  bit-fields follow the same placement but, per the SysV ABI, do not add to
  the record's alignment (which makes them ideal explicit padding);
* in a packed record every member is placed at the current bit;
* the size is the end rounded up to the record's alignment.

Where the natural layout disagrees with BTF the plan fixes it, preferring the
explanation the kernel source most likely had: a gap that rounding up to a
larger power of two explains exactly becomes ``aligned(N)`` on the member
(``____cacheline_aligned`` members) or on the record (tail gap); other gaps
become unnamed bit-field padding; a member placed before its natural offset,
or a size that is not a multiple of the alignment, makes the record packed.
Every alignment this module reports is the one clang will compute for the
emitted C, so records containing records stay exact too.
"""
from __future__ import annotations

from .types import Kind

TYPE_CHECKING = False
if TYPE_CHECKING:   # typing costs milliseconds to import; annotations are strings
    from typing import Dict, List, Optional


def _debug(msg: str, *args: object) -> None:
    """Log at debug level; :mod:`logging` is imported only when there is something
    to log, since printing one type must not pay for it."""
    import logging
    logging.getLogger(__name__).debug(msg, *args)

_PAD_UNITS = ((64, "long"), (32, "int"), (16, "short"), (8, "char"))
# Larger than any alignment a kernel type uses (page alignment is 4096).
_MAX_ALIGN = 1 << 16


def _round_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def padding(start: int, end: int) -> List[str]:
    """Unnamed bit-fields that move the layout cursor from bit ``start`` to
    bit ``end`` without changing the record's alignment.

    Each piece is chosen so that it cannot straddle its type's storage unit:
    sub-byte pieces use ``char``, byte-aligned ones the widest type whose
    alignment ``start`` already satisfies.  That keeps placement identical in
    packed and non-packed records.
    """
    out: List[str] = []
    pos = start
    while pos < end:
        rem = end - pos
        if pos % 8 or rem < 8:
            bits = min(rem, 8 - pos % 8)
            out.append(f"char: {bits}")
            pos += bits
            continue
        for unit, ctype in _PAD_UNITS:
            if pos % unit == 0 and rem >= unit:
                out.append(f"{ctype}: {unit}")
                pos += unit
                break
    return out


class RecordPlan:
    """How to print one struct/union so that clang reproduces its BTF layout.

    ``pads[i]``: padding bit-fields printed before member ``i``;
    ``member_align[i]``: ``aligned(N)`` for member ``i``; ``tail``: padding
    after the last member (for a union, wrapped in an anonymous struct);
    ``align_attr``: ``aligned(N)`` on the record (0: none); ``align``: the
    alignment clang will give the printed record; ``exact``: False when no
    plan reproduces the BTF (then the output is best effort).
    """

    __slots__ = ("packed", "align", "align_attr", "pads", "member_align", "tail", "exact")

    def __init__(self, packed: bool) -> None:
        self.packed = packed
        self.align = 1
        self.align_attr = 0
        self.pads: Dict[int, List[str]] = {}
        self.member_align: Dict[int, int] = {}
        self.tail: List[str] = []
        self.exact = True

    def attributes(self) -> str:
        """The record's trailing attribute text ('' when none)."""
        attrs = []
        if self.packed:
            attrs.append("packed")
        if self.align_attr:
            attrs.append(f"aligned({self.align_attr})")
        return f" __attribute__(({', '.join(attrs)}))" if attrs else ""


class Layout:
    """Alignment and layout plans for the types of one BTF, computed lazily
    (a single-type lookup only pays for the records it touches)."""

    def __init__(self, btf, ptr_size: int = 0) -> None:
        self._btf = btf
        self._align: Dict[int, int] = {}
        self._size: Dict[int, int] = {}
        self._plans: Dict[int, RecordPlan] = {}
        self._busy: set = set()
        self.ptr_size = ptr_size or self._guess_ptr_size()

    def _guess_ptr_size(self) -> int:
        """BTF has no pointer size; like libbpf, take it from ``long``."""
        btf = self._btf
        for name in ("long int", "long unsigned int", "unsigned long", "long"):
            for tid in btf.find(name, Kind.INT):
                size = btf[tid].size
                if size in (4, 8):
                    return size
        return 8

    def size(self, tid: int) -> int:
        size = self._size.get(tid)
        if size is None:
            size = self._size[tid] = self._btf.resolve_size(tid)
        return size

    def align(self, tid: int) -> int:
        """Alignment clang gives type ``tid`` as it is printed."""
        cached = self._align.get(tid)
        if cached is not None:
            return cached
        btf = self._btf
        orig = tid
        while True:
            k = btf.kind(tid) if tid else Kind.UNKN
            if k in (Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG):
                tid = btf[tid].type
            elif k == Kind.ARRAY:
                tid = btf[tid].type
            else:
                break
        if k in (Kind.STRUCT, Kind.UNION):
            result = self.plan(tid).align
        elif k == Kind.PTR:
            result = self.ptr_size
        elif k in (Kind.INT, Kind.FLOAT, Kind.ENUM, Kind.ENUM64):
            size = btf[tid].size
            result = size if size & (size - 1) == 0 and size else min(16, 1 << size.bit_length())
        else:
            result = 1
        self._align[orig] = result
        return result

    def plan(self, tid: int) -> RecordPlan:
        """The (memoised) layout plan of STRUCT/UNION ``tid``."""
        plan = self._plans.get(tid)
        if plan is not None:
            return plan
        if tid in self._busy:
            # Only malformed BTF nests a record in itself by value.
            _debug("type [%d] contains itself by value", tid)
            fallback = RecordPlan(False)
            fallback.exact = False
            return fallback
        self._busy.add(tid)
        try:
            record = self._btf[tid]
            union = self._btf.kind(tid) == Kind.UNION
            plan = (self._attempt(record, union, packed=False)
                    or self._attempt(record, union, packed=True))
            if plan is None:
                _debug("type [%d] %r: no C layout reproduces its BTF layout", tid, record.name)
                plan = RecordPlan(True)
                plan.exact = False
        finally:
            self._busy.discard(tid)
        self._plans[tid] = plan
        return plan

    def _attempt(self, record, union: bool, packed: bool) -> Optional[RecordPlan]:
        plan = RecordPlan(packed)
        total = record.size * 8
        if union:
            end = self._place_union(record, plan)
        else:
            end = self._place_struct(record, plan)
        if end is None:
            return None
        return plan if self._finish(plan, end, total, union) else None

    def _place_struct(self, record, plan: RecordPlan) -> Optional[int]:
        packed = plan.packed
        pos = 0
        rec_align = 8
        for i, m in enumerate(record.members):
            off = m.bit_offset
            width = m.bitfield_size
            tsize = self.size(m.type) * 8
            talign = self.align(m.type) * 8
            if width:
                if packed or (pos % talign) + width <= tsize:
                    natural = pos
                else:
                    natural = _round_up(pos, talign)
                if natural > off:
                    return None
                if natural < off:
                    if not packed and (off % talign) + width > tsize:
                        return None
                    plan.pads[i] = padding(pos, off)
                pos = off + width
                if m.name and not packed:
                    rec_align = max(rec_align, talign)
                continue
            malign = 8 if packed else talign
            natural = _round_up(pos, malign)
            if natural > off:
                return None
            if natural < off:
                over = 0 if packed else self._over_align(pos, off, malign, record.size, m, tsize)
                if over:
                    plan.member_align[i] = over // 8
                    malign = over
                elif off % malign:
                    return None
                else:
                    plan.pads[i] = padding(pos, off)
            pos = off + tsize
            if not packed:
                rec_align = max(rec_align, malign)
        plan.align = rec_align // 8
        return pos

    @staticmethod
    def _over_align(pos: int, off: int, malign: int, rec_size: int, member, tsize: int) -> int:
        """The alignment (bits) that would carry a member from ``pos`` to
        ``off`` by itself, or 0.  It must also divide the record size (an
        aligned member aligns its record), and for an anonymous member, whose
        attribute lands on its type, the member's size."""
        align = malign * 2
        while align <= _MAX_ALIGN * 8:
            placed = _round_up(pos, align)
            if placed == off:
                if (rec_size * 8) % align or (not member.name and tsize % align):
                    return 0
                return align
            if placed > off:
                return 0
            align *= 2
        return 0

    def _place_union(self, record, plan: RecordPlan) -> Optional[int]:
        packed = plan.packed
        end = 0
        rec_align = 8
        for m in record.members:
            if m.bit_offset:
                return None
            width = m.bitfield_size
            talign = self.align(m.type) * 8
            end = max(end, width or self.size(m.type) * 8)
            if not packed and (m.name or not width):
                rec_align = max(rec_align, talign)
        plan.align = rec_align // 8
        return end

    def _finish(self, plan: RecordPlan, end: int, total: int, union: bool) -> bool:
        """Match the record's size: round up, or add aligned(N) / tail padding."""
        align_bits = plan.align * 8
        natural = _round_up(end, align_bits)
        if natural == total:
            return True
        if natural > total:
            return False
        align = align_bits * 2
        while align <= _MAX_ALIGN * 8:
            rounded = _round_up(end, align)
            if rounded == total:
                plan.align_attr = plan.align = align // 8
                return True
            if rounded > total:
                break
            align *= 2
        if total % align_bits:
            return False
        plan.tail = padding(end if not union else 0, total)
        return True
