"""``bccless btf type`` stays cheap to start: only its own command module is
imported, and :mod:`logging` only with ``-v``; help still lists every command."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .helpers import DATA

HOST = str(DATA / "host-6.18.44-fc.btf.xz")
PROBE = """
import json, sys
from bccless.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
mods = sorted(m for m in sys.modules
              if m.startswith("bccless.commands.") or m in ("logging", "argparse"))
sys.stderr.write("MODULES" + json.dumps([code, mods]))
"""


def run_probe(*args: str):
    res = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True)
    code, mods = json.loads(res.stderr.rsplit("MODULES", 1)[1])
    return code, mods, res.stdout


def test_btf_type_imports_only_its_command():
    code, mods, out = run_probe("btf", "type", "pid_type", "--file", HOST)
    assert code == 0 and out.startswith("enum pid_type {")
    assert mods == ["bccless.commands.btf"]     # not even argparse: quick_parse took it


def test_other_spellings_go_through_argparse():
    code, mods, out = run_probe("btf", "type", "--file=" + HOST, "pid_type")
    assert code == 0 and out.startswith("enum pid_type {")
    assert mods == ["argparse", "bccless.commands.btf"]


@pytest.mark.parametrize("argv", [
    ["btf", "type", "task_struct"],
    ["btf", "type", "struct", "sock", "--no-offsets"],
    ["btf", "type", "--file", HOST, "enum", "pid_type"],
    ["btf", "type", "pid_type", "--file", HOST, "--no-offsets"],
    ["btf", "type", "--no-offsets", "--file", HOST, "x"],
])
def test_quick_parse_agrees_with_argparse(argv):
    from bccless.cli import build_parser
    from bccless.commands.btf import quick_parse
    quick = quick_parse(argv)
    assert quick is not None
    assert vars(quick) == vars(build_parser(argv).parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["btf", "type"], ["btf", "type", "-h"], ["btf", "type", "x", "--file"],
    ["btf", "type", "x", "--file", "--no-offsets"], ["btf", "type", "--file=f", "x"],
    ["btf", "type", "x", "--no-off"], ["btf", "type", "--", "x"], ["btf", "dump"],
    ["-v", "btf", "type", "x"],
])
def test_quick_parse_leaves_the_rest_to_argparse(argv):
    from bccless.commands.btf import quick_parse
    assert quick_parse(argv) is None


def test_verbose_still_configures_logging():
    code, mods, out = run_probe("-v", "btf", "type", "pid_type", "--file", HOST)
    assert code == 0 and out.startswith("enum pid_type {")
    assert mods == ["argparse", "bccless.commands.btf", "logging"]


def test_help_lists_every_command():
    res = subprocess.run([sys.executable, "-m", "bccless.cli", "--help"], capture_output=True,
                         text=True)
    assert res.returncode == 0
    for name in ("btf", "object", "doctor", "cache", "translate", "run"):
        assert f"    {name}" in res.stdout, name
    res = subprocess.run([sys.executable, "-m", "bccless.cli", "-h", "btf"], capture_output=True,
                         text=True)
    assert "    doctor" in res.stdout
    res = subprocess.run([sys.executable, "-m", "bccless.cli", "nosuchcommand"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "invalid choice" in res.stderr and "doctor" in res.stderr
