"""Real, unmodified BCC tools from Debian's bpfcc-tools, run with ``bccless run``."""
import os
import subprocess
import sys

import pytest

BCCLESS = os.path.join(os.path.dirname(sys.executable), "bccless")
SYSCOUNT = "/usr/sbin/syscount-bpfcc"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
    pytest.mark.skipif(not os.path.exists(SYSCOUNT), reason="bpfcc-tools is not installed"),
]


def test_syscount_counts_a_busy_child(tmp_path):
    env = dict(os.environ, BCCLESS_CACHE=str(tmp_path / "cache"))
    os.mkdir(tmp_path / "cache", 0o700)
    busy = subprocess.Popen([sys.executable, "-c",
                             "import os, time\nend = time.time() + 30\n"
                             "while time.time() < end: os.getppid()"])
    try:
        out = subprocess.run([BCCLESS, "run", SYSCOUNT, "-p", str(busy.pid), "-d", "2"],
                             env=env, capture_output=True, text=True, timeout=120)
    finally:
        busy.kill()
        busy.wait()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("SYSCALL") and line.rstrip().endswith("COUNT") for line in lines)
    counts = {parts[0]: int(parts[1]) for parts in (l.split() for l in lines)
              if len(parts) == 2 and parts[1].isdigit()}
    assert counts.get("getppid", 0) > 1000, out.stdout
    assert lines[-1] == "Detaching..."
