"""Compile once, run anywhere: a bundle exported here runs where clang is absent.

The script is compiled into cache A, exported, imported into an empty cache
B, and run again with PATH emptied so no clang can be found: it must load
from the bundle, never import libclang (nor logging: the warm path logs
nothing and skips its import cost), and still count real events.
"""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")

SCRIPT = r'''
import os, sys
from bcc import BPF
b = BPF(text=b"""
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}
""")
for _ in range(3):
    os.getppid()
c = b["counts"]
print(c[c.Key(os.getpid())].value, "clang.cindex" in sys.modules, "subprocess" in sys.modules,
      "logging" in sys.modules)
'''

BCCLESS = os.path.join(os.path.dirname(sys.executable), "bccless")


def _run_script(tmp_path, cache, path_env=None):
    script = tmp_path / "count.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, BCCLESS_CACHE=str(cache))
    if path_env is not None:
        env["PATH"] = path_env
        env.pop("BCCLESS_CLANG", None)
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_bundle_runs_without_a_compiler(tmp_path):
    cache_a, cache_b, empty = tmp_path / "a", tmp_path / "b", tmp_path / "empty-path"
    for d in (cache_a, cache_b, empty):
        d.mkdir(mode=0o700)
    assert _run_script(tmp_path, cache_a) == ["3", "True", "True", "True"]  # cold: translated, compiled
    # warm in the same cache: no libclang, no compiler process
    assert _run_script(tmp_path, cache_a) == ["3", "False", "False", "False"]
    bundle = tmp_path / "tools.bundle"
    subprocess.run([BCCLESS, "cache", "--dir", str(cache_a), "export", str(bundle)], check=True)
    subprocess.run([BCCLESS, "cache", "--dir", str(cache_b), "import", str(bundle)], check=True)
    # (a first load on this host relocates the object, which may log: logging is not checked)
    assert _run_script(tmp_path, cache_b, path_env=str(empty))[:3] == ["3", "False", "False"]


def test_without_bundle_and_without_clang_the_error_is_clear(tmp_path):
    cache, empty = tmp_path / "c", tmp_path / "empty-path"
    cache.mkdir(mode=0o700)
    empty.mkdir()
    script = tmp_path / "count.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, BCCLESS_CACHE=str(cache), PATH=str(empty))
    env.pop("BCCLESS_CLANG", None)
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0
    assert "clang" in out.stderr
