"""Shared fixtures of the bcc drop-in tests: one object cache per session, the
compiled uprobe target, and a poll helper for events that arrive asynchronously."""
import os
import shutil
import subprocess
import time

import pytest

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "compat")


@pytest.fixture(autouse=True)
def _bccless_cache(tmp_path_factory, monkeypatch):
    """Every test compiles into (and warms from) the same per-session cache."""
    root = tmp_path_factory.getbasetemp() / "bccless-cache"
    root.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("BCCLESS_CACHE", str(root))


def wait_for(predicate, timeout: float = 5.0, step=None):
    """Call ``step`` (e.g. a poll) until ``predicate()`` holds or the deadline passes."""
    deadline = time.time() + timeout
    while not predicate() and time.time() < deadline:
        if step is not None:
            step()
        else:
            time.sleep(0.01)
    return predicate()


@pytest.fixture(scope="session")
def uprobe_target(tmp_path_factory):
    """tests/data/compat/uprobe_target.c built with gcc (clang-19 when gcc is absent)."""
    cc = shutil.which("gcc") or shutil.which("clang-19") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler (gcc or clang) to build the uprobe target")
    out = tmp_path_factory.mktemp("uprobe") / "uprobe_target"
    # -O0 with frame pointers: a prologue to probe at sym_off, and user stacks
    # the kernel can walk.
    subprocess.run([cc, "-O0", "-g", "-fno-omit-frame-pointer", "-o", str(out),
                    os.path.join(DATA, "uprobe_target.c")], check=True)
    return str(out)


class Target:
    """A running uprobe_target: each ``call(cmd)`` makes it run one function."""

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.pid = self.proc.pid
        assert self.proc.stdout.readline() == "ready\n"

    def call(self, cmd: str) -> int:
        self.proc.stdin.write(cmd + "\n")
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def target(uprobe_target):
    t = Target(uprobe_target)
    yield t
    t.close()


def pytest_configure(config):
    # BCC warns when given str instead of bytes; the tests use both spellings.
    config.addinivalue_line("filterwarnings", "ignore:not a bytes object:DeprecationWarning")
