"""The errors a BCC user sees, run as real scripts: stdout stays clean, stderr
carries the diagnosis, the exception text is BCC's."""
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")


def _run(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "tool.py"
    script.write_text("from bcc import BPF\n" + textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))


def test_compile_error_names_the_user_line(tmp_path):
    out = _run(tmp_path, '''
        print("before")
        BPF(text=b"""
        BPF_HASH(h, u32, u64);
        int foo(void *ctx) {
            u32 k = 0;
            undefined_helper(k);
            return 0;
        }
        """)
    ''')
    assert out.returncode == 1
    assert out.stdout == "before\n"
    assert "<text>:5:5: error" in out.stderr and "undefined_helper" in out.stderr
    assert "    5 |     undefined_helper(k);" in out.stderr
    assert out.stderr.rstrip().endswith("Exception: Failed to compile BPF module <text>")


def test_verifier_rejection_shows_the_log(tmp_path):
    out = _run(tmp_path, '''
        b = BPF(text=b"""
        int foo(struct pt_regs *ctx) {
            u64 *p = (u64 *)(long)bpf_get_current_pid_tgid();
            return *p;
        }
        """)
        b.load_func("foo", BPF.KPROBE)
    ''')
    assert out.returncode == 1
    assert out.stdout == ""
    assert "R0 invalid mem access 'scalar'" in out.stderr
    assert "processed 2 insns" in out.stderr
    assert out.stderr.rstrip().endswith(
        "Exception: Failed to load BPF program b'foo': Permission denied")


def test_attach_kprobe_without_kernel_support(tmp_path):
    out = _run(tmp_path, '''
        b = BPF(text=b"int foo(struct pt_regs *ctx) { return 0; }")
        b.attach_kprobe(event=b.get_syscall_fnname("getppid"), fn_name="foo")
    ''')
    from bccless.attach.kprobe import kprobe_support
    if kprobe_support():
        assert out.returncode == 0, out.stderr
        return
    assert out.returncode == 1
    assert "Failed to attach BPF program foo to kprobe __x64_sys_getppid" in out.stderr
    assert "CONFIG_KPROBES" in out.stderr
