""".BTF.ext: func_info, line_info and CO-RE records, from clang and hand-built blobs."""
from __future__ import annotations

import struct

import pytest

from bccless.btf.types import Kind
from bccless.elf.btfext import parse_btf_ext
from bccless.elf.object import open_object_spec
from bccless.elf.records import CoreRelo, FuncInfo, LineInfo
from bccless.errors import ELFError

from elf_build import DATA


@pytest.fixture(scope="module")
def spec(full_obj):
    return open_object_spec(full_obj)


def test_func_info_names_programs(spec):
    by_sec = {}
    for p in spec.programs:
        by_sec.setdefault(p.sec_name, {})[p.sec_insn_off * 8] = p.name
    assert set(spec.func_info) == set(by_sec)
    for sec, infos in spec.func_info.items():
        assert [fi.insn_off for fi in infos] == sorted(by_sec[sec])
        for fi in infos:
            assert spec.btf.kind(fi.type_id) == Kind.FUNC
            assert spec.btf.name(fi.type_id) == by_sec[sec][fi.insn_off]


def test_line_info_matches_source(spec):
    src = (DATA / "full.bpf.c").read_text().splitlines()
    total = 0
    for sec, lines in spec.line_info.items():
        size = len(spec.section_insns[sec])
        offs = [li.insn_off for li in lines]
        assert offs == sorted(offs) and offs[-1] < size and all(o % 8 == 0 for o in offs)
        for li in lines:
            assert li.file_name == str(DATA / "full.bpf.c")
            assert li.line == src[li.line_num - 1], li
            assert 0 <= li.line_col <= len(li.line.expandtabs(1)) + 1
            total += 1
    assert total == 46
    # the first record of each program points at its body's first statement
    xdp = spec.line_info["xdp"]
    assert (xdp[0].insn_off, xdp[0].line.strip()) == (0, "return XDP_DROP;")
    assert (xdp[1].insn_off, xdp[1].line.strip()) == (16, "bpf_tail_call(ctx, &jmp, 1);")


def test_core_relos(build):
    s = open_object_spec(build("core.bpf.c"))
    relos = s.core_relos["raw_tp/sys_enter"]
    got = [(r.access_str, r.kind, s.btf.name(r.type_id)) for r in relos]
    assert got == [("0:1", 0, "thing"), ("0:2:0", 2, "thing"), ("0:0", 1, "thing"),
                   ("0", 8, "thing"), ("0", 9, "thing"), ("1", 11, "colour")]
    insns = s.section_insns["raw_tp/sys_enter"]
    for r in relos:
        assert r.insn_off % 8 == 0 and r.insn_off < len(insns)
        assert s.btf.string(r.access_str_off) == r.access_str
    # FIELD_BYTE_OFFSET of thing.b is 8 in the compiled code (an ALU/LD imm or offset)
    assert s.btf.kind(relos[-1].type_id) in (Kind.ENUM, Kind.ENUM64)


# ---- hand-built blobs ------------------------------------------------------------------

STRS = b"\0sec_a\0file.c\0int x = 1;\0sec_b\0" + b"0:1\0"
OFF = {s: STRS.index(s.encode() + b"\0") for s in ("sec_a", "file.c", "int x = 1;", "sec_b",
                                                      "0:1")}


def string(off: int) -> str:
    return STRS[off:STRS.index(b"\0", off)].decode()


def blob(fi_rec=8, li_rec=16, cr_rec=16, hdr_len=32, magic=0xEB9F, num_override=None):
    def sub(rec, sections):
        out = struct.pack("<I", rec)
        for name, recs in sections:
            out += struct.pack("<II", OFF[name], len(recs) if num_override is None
                               else num_override)
            for r in recs:
                out += struct.pack(f"<{len(r)}I", *r) + b"\xee" * (rec - 4 * len(r))
        return out
    fi = sub(fi_rec, [("sec_a", [(0, 3), (40, 4)]), ("sec_b", [(0, 5)])])
    li = sub(li_rec, [("sec_a", [(8, OFF["file.c"], OFF["int x = 1;"], (12 << 10) | 7)])])
    cr = sub(cr_rec, [("sec_b", [(16, 2, OFF["0:1"], 0)])])
    body = fi + li + cr
    hdr = struct.pack("<HBBIIIIIII", magic, 1, 0, hdr_len, 0, len(fi), len(fi), len(li),
                      len(fi) + len(li), len(cr))[:hdr_len]
    return hdr + body


@pytest.mark.parametrize("sizes", [(8, 16, 16), (12, 20, 24)])
def test_parse_known_and_longer_records(sizes):
    ext = parse_btf_ext(blob(*sizes), string, source="t.o")
    assert ext.func_info == {"sec_a": [FuncInfo(0, 3), FuncInfo(40, 4)],
                             "sec_b": [FuncInfo(0, 5)]}
    assert ext.line_info == {"sec_a": [LineInfo(8, "file.c", "int x = 1;", 12, 7,
                                                OFF["file.c"], OFF["int x = 1;"])]}
    assert ext.core_relos == {"sec_b": [CoreRelo(16, 2, "0:1", 0, OFF["0:1"])]}


def test_header_without_core_relo_section():
    data = blob(hdr_len=24)
    # a 24-byte header has no core_relo fields; the trailing bytes are ignored
    ext = parse_btf_ext(data, string, source="t.o")
    assert ext.core_relos == {} and len(ext.func_info["sec_a"]) == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(magic=0x1234), "bad magic 0x1234"),
    (dict(fi_rec=4), "func_info has bad record size 4"),
    (dict(li_rec=18), "line_info has bad record size 18"),
    (dict(num_override=0), "func_info has no records"),
    (dict(num_override=1000), "func_info records at offset"),
])
def test_errors(kwargs, message):
    with pytest.raises(ELFError, match=f"t.o: section '.BTF.ext': {message}"):
        parse_btf_ext(blob(**kwargs), string, source="t.o")


def test_truncated():
    data = blob()
    with pytest.raises(ELFError, match="outside the section"):
        parse_btf_ext(data[:40], string, source="t.o")
    with pytest.raises(ELFError, match="too short"):
        parse_btf_ext(data[:6], string, source="t.o")


def test_bad_string_offset():
    def bad(off: int) -> str:
        raise ELFError(f"string offset {off} out of range")
    with pytest.raises(ELFError, match=r"'\.BTF\.ext': string offset \d+ out of range"):
        parse_btf_ext(blob(), bad, source="t.o")
