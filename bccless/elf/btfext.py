"""Reading ``.BTF.ext``: per-section func_info, line_info and CO-RE records.

``.BTF.ext`` is a header followed by up to three subsections (func_info,
line_info, core_relo).  Each subsection starts with its record size and then
lists, per ELF code section, the section name (a ``.BTF`` string offset), a
record count and the records.  The record size is read from the file rather
than assumed so that objects from a newer compiler with longer records still
load: the known prefix is decoded and the rest skipped, as libbpf does.
Names and source lines are resolved through the object's ``.BTF`` strings.
"""
from __future__ import annotations

import struct
from typing import Callable, Dict, List, NamedTuple, Tuple

from ..errors import BcclessError, ELFError
from .records import CoreRelo, FuncInfo, LineInfo

BTF_MAGIC = 0xEB9F
_FUNC_INFO_MIN = 8
_LINE_INFO_MIN = 16
_CORE_RELO_MIN = 16


class BTFExt(NamedTuple):
    """The decoded ``.BTF.ext`` of one object, keyed by ELF code section name."""

    func_info: Dict[str, List[FuncInfo]]
    line_info: Dict[str, List[LineInfo]]
    core_relos: Dict[str, List[CoreRelo]]


class _Strings:
    """Offset -> str over the object's BTF strings, memoised (file names repeat)."""

    __slots__ = ("_lookup", "_cache", "_source")

    def __init__(self, lookup: Callable[[int], str], source: str) -> None:
        self._lookup = lookup
        self._cache: Dict[int, str] = {}
        self._source = source

    def __call__(self, off: int) -> str:
        s = self._cache.get(off)
        if s is None:
            try:
                s = self._cache[off] = self._lookup(off)
            except BcclessError as exc:
                raise ELFError(f"{self._source}: section '.BTF.ext': {exc}") from None
        return s


def _subsection(data: bytes, off: int, length: int, min_rec: int, what: str, endian: str,
                source: str) -> List[Tuple[int, int, bytes]]:
    """Split one subsection into (sec_name_off, rec_size, records blob) per section."""
    if length == 0:
        return []
    end = off + length
    if off + 4 > end or end > len(data):
        raise ELFError(f"{source}: section '.BTF.ext': {what} [{off}, {end}) outside the section "
                       f"({len(data)} bytes)")
    rec_size, = struct.unpack_from(endian + "I", data, off)
    if rec_size < min_rec or rec_size & 3:
        raise ELFError(f"{source}: section '.BTF.ext': {what} has bad record size {rec_size} "
                       f"at offset {off}")
    out = []
    pos = off + 4
    while pos < end:
        if pos + 8 > end:
            raise ELFError(f"{source}: section '.BTF.ext': {what} truncated at offset {pos}")
        name_off, num = struct.unpack_from(endian + "2I", data, pos)
        pos += 8
        if num == 0:
            raise ELFError(f"{source}: section '.BTF.ext': {what} has no records for a section "
                           f"at offset {pos - 8}")
        blob_end = pos + num * rec_size
        if blob_end > end:
            raise ELFError(f"{source}: section '.BTF.ext': {what} records at offset {pos} run past "
                           f"the subsection end {end}")
        out.append((name_off, rec_size, data[pos:blob_end]))
        pos = blob_end
    return out


def _records(blob: bytes, rec_size: int, fmt: str, min_rec: int) -> List[tuple]:
    """Decode the leading fields of each record, skipping any newer tail."""
    if rec_size == min_rec:
        return list(struct.iter_unpack(fmt, blob))
    return [struct.unpack_from(fmt, blob, i) for i in range(0, len(blob), rec_size)]


def parse_btf_ext(data: bytes, string: Callable[[int], str], *, endian: str = "<",
                  source: str = "") -> BTFExt:
    """Decode ``.BTF.ext`` ``data``; ``string`` maps a ``.BTF`` string offset to
    its text (``BTF.string``).

    ``insn_off`` values are kept in bytes, as in the file.  Raises
    :class:`ELFError` naming ``source`` and the offending offset.
    """
    if len(data) < 8:
        raise ELFError(f"{source}: section '.BTF.ext': too short ({len(data)} bytes)")
    magic, version, _flags, hdr_len = struct.unpack_from(endian + "HBBI", data, 0)
    if magic != BTF_MAGIC:
        raise ELFError(f"{source}: section '.BTF.ext': bad magic {magic:#x}")
    if version != 1:
        raise ELFError(f"{source}: section '.BTF.ext': unsupported version {version}")
    if hdr_len < 24 or hdr_len > len(data):
        raise ELFError(f"{source}: section '.BTF.ext': bad header length {hdr_len}")
    fi_off, fi_len, li_off, li_len = struct.unpack_from(endian + "4I", data, 8)
    cr_off = cr_len = 0
    if hdr_len >= 32:
        cr_off, cr_len = struct.unpack_from(endian + "2I", data, 24)
    string = _Strings(string, source)

    func_info: Dict[str, List[FuncInfo]] = {}
    for name_off, rsz, blob in _subsection(data, hdr_len + fi_off, fi_len, _FUNC_INFO_MIN,
                                              "func_info", endian, source):
        recs = _records(blob, rsz, endian + "2I", _FUNC_INFO_MIN)
        func_info.setdefault(string(name_off), []).extend(FuncInfo(o, t) for o, t in recs)

    line_info: Dict[str, List[LineInfo]] = {}
    for name_off, rsz, blob in _subsection(data, hdr_len + li_off, li_len, _LINE_INFO_MIN,
                                              "line_info", endian, source):
        recs = _records(blob, rsz, endian + "4I", _LINE_INFO_MIN)
        line_info.setdefault(string(name_off), []).extend(
            LineInfo(o, string(f), string(ln), lc >> 10, lc & 0x3FF, f, ln)
            for o, f, ln, lc in recs)

    core_relos: Dict[str, List[CoreRelo]] = {}
    for name_off, rsz, blob in _subsection(data, hdr_len + cr_off, cr_len, _CORE_RELO_MIN,
                                              "core_relo", endian, source):
        recs = _records(blob, rsz, endian + "4I", _CORE_RELO_MIN)
        core_relos.setdefault(string(name_off), []).extend(
            CoreRelo(o, t, string(a), k, a) for o, t, a, k in recs)

    return BTFExt(func_info, line_info, core_relos)
