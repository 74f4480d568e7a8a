"""Verifier log rewrite for reachable poisoned CO-RE instructions."""
from __future__ import annotations

from bccless.core.logfix import fixup_verifier_log
from bccless.core.relocate import CoreResult
from bccless.elf.records import CoreRelo

SPEC = "<byte_off> [5] struct foo.bar (0:3 @ offset 24)"
RES = CoreResult(7, CoreRelo(56, 5, "0:3", 0), "byte_off", SPEC, None, 24, 0, True,
                 "relo #0: substituting insn #7 w/ invalid insn")

LOG = ("func#0 @0\n"
       "0: R1=ctx() R10=fp0\n"
       "; x = p->bar; @ a.c:7\n"
       "7: (85) call unknown#195896080\n"
       "invalid func unknown#195896080\n"
       "processed 8 insns (limit 1000000) max_states_per_insn 0 total_states 0\n")


def test_rewrites_poisoned_call():
    out = fixup_verifier_log(LOG, {7: RES})
    assert out == ("func#0 @0\n"
                   "0: R1=ctx() R10=fp0\n"
                   "; x = p->bar; @ a.c:7\n"
                   "7: <invalid CO-RE relocation>\n"
                   f"failed to resolve CO-RE relocation {SPEC}\n"
                   "processed 8 insns (limit 1000000) max_states_per_insn 0 total_states 0\n")


def test_unknown_insn_or_other_error_left_alone():
    assert fixup_verifier_log(LOG, {8: RES}) == LOG
    other = LOG.replace("195896080", "12")
    assert fixup_verifier_log(other, {7: RES}) == other
    assert fixup_verifier_log("", {7: RES}) == ""


def test_only_the_tail_is_scanned():
    far = LOG.replace("processed", "\n".join(["x"] * 12) + "\nprocessed")
    assert fixup_verifier_log(far, {7: RES}) == far
