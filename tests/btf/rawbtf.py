"""A BTF blob writer for tests, independent of bccless.btf.encode.

Records are written word by word from the uapi layout, so a parser test
checks bccless against the format itself, not against its own encoder."""
from __future__ import annotations

import struct
from typing import Dict, List, Sequence, Tuple

KIND = {"INT": 1, "PTR": 2, "ARRAY": 3, "STRUCT": 4, "UNION": 5, "ENUM": 6, "FWD": 7,
        "TYPEDEF": 8, "VOLATILE": 9, "CONST": 10, "RESTRICT": 11, "FUNC": 12,
        "FUNC_PROTO": 13, "VAR": 14, "DATASEC": 15, "FLOAT": 16, "DECL_TAG": 17,
        "TYPE_TAG": 18, "ENUM64": 19}


class RawBTF:
    """Append records with :meth:`rec`; ``blob()`` gives the encoded BTF."""

    def __init__(self, first_id: int = 1, strings: bytes = b"\0", str_start: int = 0) -> None:
        self.records: List[List[int]] = []
        self.strs = bytearray(strings)
        self.str_start = str_start
        self._interned: Dict[str, int] = {}
        self.next_id = first_id

    def s(self, text: str) -> int:
        if not text:
            return 0
        if text not in self._interned:
            self._interned[text] = self.str_start + len(self.strs)
            self.strs += text.encode() + b"\0"
        return self._interned[text]

    def rec(self, kind: str, name: str, size_or_type: int, vlen: int = 0, kflag: int = 0,
            extra: Sequence[int] = ()) -> int:
        info = (kflag << 31) | (KIND[kind] << 24) | vlen
        self.records.append([self.s(name), info, size_or_type, *[w & 0xFFFFFFFF for w in extra]])
        self.next_id += 1
        return self.next_id - 1

    def type_bytes(self, order: str = "<") -> bytes:
        words = [w for r in self.records for w in r]
        return struct.pack(f"{order}{len(words)}I", *words)

    def blob(self, order: str = "<", hdr_tail: bytes = b"") -> bytes:
        types = self.type_bytes(order)
        hdr_len = 24 + len(hdr_tail)
        hdr = struct.pack(order + "HBBIIIII", 0xEB9F, 1, 0, hdr_len, 0, len(types),
                          len(types), len(self.strs))
        return hdr + hdr_tail + types + bytes(self.strs)


def members(raw: RawBTF, items: Sequence[Tuple[str, int, int]]) -> List[int]:
    """Member words (name, type, offset word) for STRUCT/UNION."""
    return [w for name, tid, off in items for w in (raw.s(name), tid, off)]
