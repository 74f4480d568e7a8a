"""``bccless doctor`` reports what this host can do (this-machine.md lists the truth)."""
from __future__ import annotations

import os
import subprocess
import sys


def test_doctor_table():
    res = subprocess.run([sys.executable, "-m", "bccless.cli", "doctor"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = {}
    for line in res.stdout.splitlines():
        name, rest = line[:18].strip(), line[18:]
        rows[name] = rest.split()[0]
    for available in ("kernel BTF", "tracefs", "uprobes", "USDT", "tracepoints",
                      "raw tracepoints", "tp_btf", "ring buffer", "capabilities"):
        assert rows[available] == "yes", (available, res.stdout)
    from bccless.attach.kprobe import kprobe_support
    if not kprobe_support():
        assert rows["kprobes"] == "NO"
        assert "CONFIG_KPROBES" in res.stdout
    if not os.path.exists("/sys/bus/event_source/devices/cpu"):
        assert rows["hardware PMU"] == "NO"
    assert set(rows[k] for k in rows) <= {"yes", "NO"}
    assert "fentry/fexit" in rows
