"""(d) Verifier rejections: VerifierError naming the program, the log carrying
source lines from line_info, and poisoned CO-RE relocations explained."""
from __future__ import annotations

import re

import pytest

from bccless import BPFObject
from bccless.errors import LoadError, VerifierError
from bccless.sys import bpf_consts as C


def _load_only(path: str, prog: str) -> VerifierError:
    with BPFObject.open(path) as obj:
        assert not obj.programs[prog].autoload          # SEC("?...")
        obj.programs[prog].set_autoload(True)
        with pytest.raises(VerifierError) as info:
            obj.load()
        assert obj.programs[prog].fd == -1
        return info.value


def test_null_deref_rejected_with_source_lines(compile_obj):
    err = _load_only(compile_obj("bad"), "null_deref")
    assert err.program == "null_deref"
    assert "prog 'null_deref': BPF program load failed" in str(err)
    assert err.errno == 13      # EACCES: the verifier said no
    # the kernel interleaves line_info source lines: "; <code> @ <file>:<line>"
    assert re.search(r"^; \*value \+= 1;.* @ bad\.bpf\.c:\d+$", err.log, re.M), err.log
    assert "invalid mem access 'map_value_or_null'" in err.log


def test_poisoned_core_relocation_explained(compile_obj):
    err = _load_only(compile_obj("bad"), "bad_core")
    assert err.program == "bad_core"
    assert "<invalid CO-RE relocation>" in err.log
    m = re.search(r"failed to resolve CO-RE relocation (.*)$", err.log, re.M)
    assert m, err.log
    assert "struct task_struct___missing.no_such_field_xyz" in m.group(1)
    assert "195896080" not in err.log.splitlines()[-1]


def test_unknown_section_needs_set_type(compile_obj):
    """A program whose section libbpf does not know loads once given a type."""
    with BPFObject.open(compile_obj("bad")) as obj:
        prog = obj.programs["null_deref"]
        prog.set_type(0)
        obj.load(programs=False)
        with pytest.raises(LoadError, match="missing BPF prog type"):
            prog.load()
        prog.set_type(C.BPF_PROG_TYPE_TRACEPOINT)
        with pytest.raises(VerifierError):
            prog.load()
