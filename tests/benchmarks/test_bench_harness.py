"""The side-by-side benchmark harness measures what it claims to measure.

The timing/RSS plumbing is checked against children whose cost is known; the
BCC-style scripts and the event worker are run through the bccless drop-in
against the real kernel and must report correct kernel-side values (a
wrong task_struct offset or a lost/duplicated event would show here).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks")
sys.path.insert(0, BENCH)

import bench_events_bcc as events  # noqa: E402
import bench_startup as startup  # noqa: E402

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")


def test_peak_rss_is_the_childs_own():
    # 64 MiB touched by the child; the harness (parent) stays far below that.
    sample = startup.run_measured(
        [sys.executable, "-c", "b = bytearray(64 << 20); print(len(b))"], dict(os.environ))
    assert sample.stdout == str(64 << 20)
    assert sample.rss_kib >= 64 << 10
    small = startup.run_measured([sys.executable, "-c", "pass"], dict(os.environ))
    assert small.rss_kib < sample.rss_kib - (60 << 10)


def test_time_to_output_excludes_the_exit():
    code = "import atexit, time; atexit.register(time.sleep, 0.3); print('ready')"
    sample = startup.run_measured([sys.executable, "-c", code], dict(os.environ))
    assert sample.stdout == "ready"
    assert sample.wall >= 0.3
    assert sample.wall - sample.output >= 0.25
    assert sample.output < sample.wall


def test_failing_child_raises_with_its_stderr():
    with pytest.raises(RuntimeError, match="boom"):
        startup.run_measured([sys.executable, "-c", "import sys; sys.exit('boom')"],
                             dict(os.environ))


def test_missing_headers_are_reported_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(startup, "kernel_module_dir", lambda: str(tmp_path))
    problems = startup.bcc_problems()
    headers = [p for p in problems if "no kernel headers" in p]
    assert len(headers) == 2
    assert f"ln -sf /usr/src/linux-headers-*-amd64 {tmp_path}/build" in headers[0]
    assert f"ln -sf /usr/src/linux-headers-*-common {tmp_path}/source" in headers[1]


def test_require_exits_2_and_lists_fixes(capsys):
    with pytest.raises(SystemExit) as exc:
        startup.require(["first fix", "second fix"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "  - first fix\n  - second fix\n" in err and "--setup-bcc" in err


def test_program_text_per_channel_is_stable():
    perf = events.program_text("perf", 64)
    ring = events.program_text("ringbuf", 64)
    assert "BPF_PERF_OUTPUT(events);" in perf and "perf_submit(args, &ev, sizeof(ev))" in perf
    assert "BPF_RINGBUF_OUTPUT(events, 64);" in ring and "ringbuf_output(&ev" in ring
    for text in (perf, ring):
        assert "OUTPUT_DECL" not in text and "SUBMIT" not in text and "PAGES" not in text
    # the text does not depend on the generator's pid, so the cache hits across runs
    assert events.program_text("perf", 64) == perf


def _venv_env(cache) -> dict:
    return dict(os.environ, BCCLESS_CACHE=str(cache))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-cache")
    root.chmod(0o700)
    return root


@needs_root
@pytest.mark.parametrize("script", ["parent_tgid.py", "getppid_count.py"])
def test_scripts_report_correct_kernel_values_under_bccless(script, cache):
    path = os.path.join(BENCH, "scripts", script)
    for _ in range(2):   # cold, then warm from the cache
        out = subprocess.run([startup.VENV_PYTHON, path], capture_output=True, text=True,
                             env=_venv_env(cache), timeout=120)
        assert out.returncode == 0, out.stderr
        line = out.stdout.strip()
        assert "(correct" in line and "WRONG" not in line, line


@needs_root
@pytest.mark.parametrize("channel", ["perf", "ringbuf"])
def test_event_worker_counts_every_event(channel, cache, tmp_path):
    generator = events.build_generator(str(tmp_path))
    n = 5000
    out = subprocess.run([startup.VENV_PYTHON, events.__file__, "--worker", channel, "-n", str(n),
                          "--pages", "256", "--generator", generator],
                         capture_output=True, text=True, env=_venv_env(cache), timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # 5000 records fit a 1 MiB ring: nothing may be lost, nothing counted twice
    assert result["submitted"] == n and result["lost"] == 0
    assert result["delivered"] == n
    assert result["events_per_s"] == pytest.approx(n / result["seconds"])
