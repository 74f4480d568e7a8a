"""Histogram rendering with BCC's exact output format.

Tools' users diff and parse these tables, so widths, star rounding and the
rules for which rows appear follow BCC 0.26 to the character.
"""
from __future__ import annotations

from time import strftime
from typing import Callable, Dict, List, Optional

STARS_MAX = 40
LOG2_INDEX_MAX = 65
LINEAR_INDEX_MAX = 1025


def _stars(val: int, val_max: int, width: int) -> str:
    if val_max == 0:
        return ""
    text = "*" * min(width, int(width * val / val_max))
    if val > val_max:
        text = text[:-1] + "+"
    return text


def _extent(vals: List[int]):
    """(last index with a non-zero value or -1, largest value)."""
    idx_max = -1
    for i, v in enumerate(vals):
        if v > 0:
            idx_max = i
    return idx_max, max(vals, default=0)


def print_log2(vals: List[int], val_type: str, strip_leading_zero) -> None:
    idx_max, val_max = _extent(vals)
    if idx_max <= 32:
        header = "     %-19s : count     distribution"
        body = "%10d -> %-10d : %-8d |%-*s|"
        stars = STARS_MAX
    else:
        header = "               %-29s : count     distribution"
        body = "%20d -> %-20d : %-8d |%-*s|"
        stars = int(STARS_MAX / 2)
    if idx_max > 0:
        print(header % val_type)
    for i in range(1, idx_max + 1):
        low = (1 << i) >> 1
        high = (1 << i) - 1
        if low == high:
            low -= 1
        val = vals[i]
        if strip_leading_zero:
            if val:
                print(body % (low, high, val, stars, _stars(val, val_max, stars)))
                strip_leading_zero = False
        else:
            print(body % (low, high, val, stars, _stars(val, val_max, stars)))


def print_linear(vals: List[int], val_type: str, strip_leading_zero) -> None:
    idx_max, val_max = _extent(vals)
    header = "     %-13s : count     distribution"
    body = "        %-10d : %-8d |%-*s|"
    stars = STARS_MAX
    if idx_max >= 0:
        print(header % val_type)
    for i in range(0, idx_max + 1):
        val = vals[i]
        if strip_leading_zero:
            if val:
                print(body % (i, val, stars, _stars(val, val_max, stars)))
                strip_leading_zero = False
        else:
            print(body % (i, val, stars, _stars(val, val_max, stars)))


def json_hist(vals: List[int], val_type: str) -> Dict:
    hist_list = []
    max_nonzero_idx = 0
    for i, v in enumerate(vals):
        if v != 0:
            max_nonzero_idx = i
    index = 1
    prev = 0
    for i in range(1, max_nonzero_idx + 1):
        index = index * 2
        hist_list.append({"interval-start": prev, "interval-end": int(index) - 1,
                          "count": int(vals[i])})
        prev = index
    return {"ts": strftime("%Y-%m-%d %H:%M:%S"), "val_type": val_type, "data": hist_list}


def decode_struct_buckets(items, index_max: int, bucket_fn: Optional[Callable],
                          bucket_sort_fn: Optional[Callable]):
    """Group (key struct, leaf) pairs by the key's first field.

    The slot is field 1, or field 2 when field 1 is BCC's ``__pad_1`` padding
    and the key has exactly three fields.
    """
    vals: Dict = {}
    buckets: List = []
    for k, v in items:
        fields = type(k)._fields_
        bucket = getattr(k, fields[0][0])
        slot_field = fields[1][0]
        if slot_field == "__pad_1" and len(fields) == 3:
            slot_field = fields[2][0]
        slot = getattr(k, slot_field)
        if bucket_fn:
            bucket = bucket_fn(bucket)
        if bucket not in vals:
            buckets.append(bucket)
            vals[bucket] = [0] * index_max
        if slot < index_max:
            vals[bucket][slot] = v.value
    if bucket_sort_fn:
        buckets = bucket_sort_fn(buckets)
    return buckets, vals

