"""``Kind`` is a :class:`bccless.btf.smallenum.SmallIntEnum` (no :mod:`enum` import on
the ``btf type`` path); it must keep behaving as the ``IntEnum`` it replaced."""
from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import pytest

from bccless.btf.types import Kind


def test_members_are_unique_ints_with_names():
    assert Kind.STRUCT == 4 and isinstance(Kind.STRUCT, int)
    assert Kind(4) is Kind.STRUCT and Kind["UNION"] is Kind.UNION
    assert Kind.ENUM64.name == "ENUM64" and Kind.ENUM64.value == 19
    assert [k.value for k in Kind] == list(range(20)) and len(Kind) == 20
    assert Kind.FWD in Kind and {Kind.INT: "x"}[1] == "x"


def test_text_forms_match_intenum_311():
    assert repr(Kind.PTR) == "<Kind.PTR: 2>"
    assert str(Kind.PTR) == "2" and f"{Kind.PTR}" == "2" and f"{Kind.PTR:>3}" == "  2"


def test_bad_values_and_names_raise():
    with pytest.raises(ValueError):
        Kind(20)
    with pytest.raises(ValueError):
        Kind("STRUCT")
    with pytest.raises(KeyError):
        Kind["name"]
    with pytest.raises(AttributeError):
        Kind.STRUCT = 5


def test_copy_and_pickle_keep_identity():
    assert pickle.loads(pickle.dumps(Kind.TYPEDEF)) is Kind.TYPEDEF
    assert copy.copy(Kind.TYPEDEF) is Kind.TYPEDEF
    assert copy.deepcopy([Kind.TYPEDEF])[0] is Kind.TYPEDEF


def test_btf_import_does_not_pull_enum_or_array():
    code = ("import sys; import bccless.btf.cdump, bccless.btf.indexcache; "
            "print(sorted({'enum', 'array', 're', 'argparse'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
