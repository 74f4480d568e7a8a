"""A BTF blob's framing: header checks and the walk that finds every record.

Everything here works on raw words and offsets, before any record is
decoded.  The walk is the one per-record Python loop a parse cannot avoid
(unless :mod:`bccless.btf.indexcache` has its result), so it does nothing
but add record lengths; when it fails, :func:`diagnose` walks again slowly
to say where and why.
"""
from __future__ import annotations

import struct
import sys

from ..errors import BTFError
from .types import Kind

TYPE_CHECKING = False
if TYPE_CHECKING:   # typing costs milliseconds to import; annotations are strings
    from typing import List, Optional, Sequence, Tuple

HEADER_LEN = 24
NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"
BTF_VERSION = 1

# Record length in u32 words = _HEAD_WORDS[kind] + vlen * _ITEM_WORDS[kind].  Unknown
# kinds get a length that always overruns the section, so the fast walk needs no
# per-record check and falls through to diagnose() on any malformed input.
_BAD = 1 << 40
_HEAD_WORDS = tuple(
    _BAD if k == 0 or k > 19 else
    3 + {Kind.INT: 1, Kind.ARRAY: 3, Kind.VAR: 1, Kind.DECL_TAG: 1}.get(k, 0)
    for k in range(32))
_ITEM_WORDS = tuple(
    {Kind.STRUCT: 3, Kind.UNION: 3, Kind.ENUM: 2, Kind.FUNC_PROTO: 2, Kind.DATASEC: 3,
     Kind.ENUM64: 3}.get(k, 0) for k in range(32))


def read_framing(data, split: bool, source: str) -> Tuple[str, int, int, int, int, int, int]:
    """Check the header of blob ``data`` (``split``: BTF on top of a base) and
    return where its sections are: (byte order, flags, header length, type
    section start, type section length, string section start, string section
    length), offsets from the start of the blob.  Raises BTFError saying what
    is wrong."""
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
    if str_len or not split:
        if not str_len or data[s0 + str_len - 1] != 0:
            raise fail("string section is empty or does not end with a NUL byte",
                       s0 + max(str_len - 1, 0))
        if not split and data[s0] != 0:
            raise fail("string section does not start with an empty string "
                       "(split BTF parsed without its base?)", s0)
    return order, flags, hdr_len, hdr_len + type_off, type_len, s0, str_len


class RecordWords(dict):
    """info word -> record length in words, filled on demand.

    Kernel BTF has ~300 distinct info words, so one dict lookup per record is
    cheaper than decoding kind and vlen each time."""

    def __missing__(self, info: int) -> int:
        k = info >> 24 & 31
        length = self[info] = _HEAD_WORDS[k] + (info & 0xFFFF) * _ITEM_WORDS[k]
        return length


def walk(words: Sequence[int]) -> Optional[List[int]]:
    """Word index of every record, or None if the section is malformed."""
    offs: List[int] = []
    app = offs.append
    lengths = RecordWords()
    n = len(words)
    i = 0
    try:
        while i < n:
            app(i)
            i += lengths[words[i + 1]]
    except IndexError:
        return None
    return offs if i == n else None


def diagnose(words: Sequence[int], type_start: int, first_id: int, source: str) -> BTFError:
    """Why :func:`walk` failed on ``words`` (the type section at byte
    ``type_start`` of the blob, first record ``first_id``), as an error to raise."""
    n, i, tid = len(words), 0, first_id
    while i < n:
        at = type_start + 4 * i
        if i + 3 > n:
            return BTFError(f"type [{tid}]: record header needs 12 bytes, only {4 * (n - i)}"
                            f" left in the type section", offset=at, source=source)
        info = words[i + 1]
        k, vlen = info >> 24 & 31, info & 0xFFFF
        if _HEAD_WORDS[k] == _BAD:
            return BTFError(f"type [{tid}]: unknown BTF kind {k} (info 0x{info:08x}), "
                            f"expected 1..19", offset=at + 4, source=source)
        length = _HEAD_WORDS[k] + vlen * _ITEM_WORDS[k]
        if i + length > n:
            return BTFError(f"type [{tid}] {Kind(k).name} with vlen {vlen} needs "
                            f"{4 * length} bytes, only {4 * (n - i)} left in the type "
                            f"section", offset=at, source=source)
        i += length
        tid += 1
    return BTFError("type section walk failed", offset=type_start, source=source)
