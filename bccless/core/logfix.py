"""Making a verifier rejection caused by a poisoned CO-RE relocation readable.

A reachable poisoned instruction makes the verifier end its log with
``N: (85) call unknown#195896080`` / ``invalid func unknown#195896080``, which
says nothing about the field that was missing.  Like libbpf's
``fixup_verifier_log``, we look at the last lines of the log and replace that
pair by the relocation that failed, in libbpf's words, so users can search
for the message they would get from libbpf.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Dict

if TYPE_CHECKING:
    from .relocate import CoreResult

_SCAN_LINES = 10  # libbpf only looks at the tail of the log
_INVALID = "invalid func unknown#195896080"
_CALL = re.compile(r"(\d+): \(\d+\) call unknown#195896080\b")


def fixup_verifier_log(log: str, poisoned: Dict[int, "CoreResult"]) -> str:
    """Rewrite the tail of ``log`` if it reports a poisoned CO-RE instruction.

    ``poisoned`` maps final (program-relative) instruction indices to the
    relocation that poisoned them.  The log is returned unchanged when the
    pattern is absent or names an instruction not in ``poisoned``.
    """
    lines = log.splitlines(keepends=True)
    stop = max(len(lines) - _SCAN_LINES, 0)
    for i in range(len(lines) - 1, stop - 1, -1):
        if lines[i].rstrip("\n") != _INVALID:
            continue
        if i == 0:
            continue
        m = _CALL.match(lines[i - 1])
        if not m:
            return log
        res = poisoned.get(int(m.group(1)))
        if res is None:
            return log
        idx = m.group(1)
        patch = (f"{idx}: <invalid CO-RE relocation>\n"
                 f"failed to resolve CO-RE relocation {res.local_spec}\n")
        return "".join(lines[:i - 1]) + patch + "".join(lines[i + 1:])
    return log
