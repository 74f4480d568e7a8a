#!/usr/bin/env python3
"""Start-up of whole BCC-style tools: real BCC 0.26 against the bccless drop-in.

Every variant runs the same unmodified script (benchmarks/scripts/*.py) as a
fresh process; runs are interleaved (one round runs every variant once, the
order rotating per round) so machine noise hits all alike, and the median of
``--runs`` rounds is reported.  Wall time is time.perf_counter() around the
child; "to output" is when the tool's one line reached our pipe (its work:
start, compile or load, attach, events, map read), "exit" the rest (atexit
detach, which on this kernel waits ~75 ms for RCU grace periods whoever
detaches); peak RSS is the child's own ru_maxrss (wait4's rusage, taken by
GNU time as a small parent: see run_measured).

  python -c pass     both interpreters' bare start-up (the floor)
  bcc                /usr/bin/python3 SCRIPT: BCC 0.26 compiles with its LLVM
                     against kernel headers on every start
  bccless cold       .venv/bin/python SCRIPT with an empty $BCCLESS_CACHE per run:
                     vmlinux.h generation + PCH builds + translate + clang + load
  bccless cold+vmh   as cold, the cache pre-seeded with only vmlinux.h (the
                     once-per-kernel header already generated, no PCH)
  bccless cold+prep  as cold, the cache pre-seeded with what `bccless cache
                     prepare` makes once per kernel (vmlinux.h and the PCHs):
                     a new script on a prepared host
  bccless warm       the cache populated: lookup + CO-RE load, no compiler

Both sides use Debian's /usr/bin/python3 (the venv is built from it).  Needs
root, tracefs, python3-bpfcc and kernel headers (see --setup-bcc).  Usage:

    .venv/bin/python benchmarks/bench_startup.py [--runs 7] [SCRIPT ...]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, NamedTuple, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPTS = os.path.join(HERE, "scripts")
SYS_PYTHON = "/usr/bin/python3"
VENV_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
GNU_TIME = "/usr/bin/time"
BCC_PACKAGE = "/usr/lib/python3/dist-packages/bcc/__init__.py"
TRACEFS_EVENTS = ("/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events")


def kernel_module_dir() -> str:
    return os.path.join("/lib/modules", os.uname().release)


def bcc_problems() -> List[str]:
    """What keeps real BCC from running here, each with its fix; empty if nothing.

    Probed by looking, not by running BCC: a failed BCC start costs a second
    and prints a compiler error that hides the cause."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root: loading BPF programs needs root (run with sudo)")
    if not os.path.isfile(BCC_PACKAGE):
        problems.append("BCC's Python package is missing: apt-get install -y python3-bpfcc")
    mod = kernel_module_dir()
    for link, pattern in (("build", "/usr/src/linux-headers-*-amd64"),
                          ("source", "/usr/src/linux-headers-*-common")):
        if not os.path.isdir(os.path.join(mod, link, "include")):
            problems.append(f"no kernel headers at {mod}/{link}: apt-get install -y "
                            f"linux-headers-amd64 && mkdir -p {mod} && "
                            f"ln -sf {pattern} {mod}/{link}")
    if not any(os.path.isdir(p) for p in TRACEFS_EVENTS):
        problems.append("tracefs is not mounted: mount -t tracefs nodev /sys/kernel/tracing")
    return problems


def bccless_problems() -> List[str]:
    """What keeps the bccless side from running (the venv, a compiler for cold runs)."""
    problems = []
    if not os.access(VENV_PYTHON, os.X_OK):
        problems.append(f"{VENV_PYTHON} missing: run scripts/setup.sh")
    if not os.access(GNU_TIME, os.X_OK):
        problems.append(f"{GNU_TIME} missing (measures peak RSS): apt-get install -y time")
    if not (shutil.which("clang-19") or shutil.which("clang")):
        problems.append("clang-19 missing (cold runs compile): apt-get install -y clang-19")
    return problems


def setup_bcc() -> None:
    """Install BCC and Debian's (mismatching, but compiling) headers, then link them.

    Only on request (--setup-bcc): it changes the system."""
    import glob
    pkgs = []
    if not os.path.isfile(BCC_PACKAGE):
        pkgs.append("python3-bpfcc")
    if not glob.glob("/usr/src/linux-headers-*-amd64"):
        pkgs.append("linux-headers-amd64")
    if pkgs:
        print("installing " + " ".join(pkgs), flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q"] + pkgs, check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    mod = kernel_module_dir()
    os.makedirs(mod, exist_ok=True)
    for link, pattern in (("build", "/usr/src/linux-headers-*-amd64"),
                          ("source", "/usr/src/linux-headers-*-common")):
        found = sorted(glob.glob(pattern))
        if not found:
            sys.exit(f"--setup-bcc: nothing matches {pattern} after installing headers")
        dest = os.path.join(mod, link)
        if os.path.islink(dest):
            os.unlink(dest)
        if not os.path.exists(dest):    # a real directory there is the user's: keep it
            os.symlink(found[-1], dest)
            print(f"linked {dest} -> {found[-1]}", flush=True)


def require(problems: Sequence[str]) -> None:
    """Exit with the list of fixes when anything needed is missing."""
    if problems:
        sys.stderr.write("cannot benchmark:\n" + "".join(f"  - {p}\n" for p in problems)
                         + "(benchmarks/bench_startup.py --setup-bcc installs BCC and headers)\n")
        sys.exit(2)


def byte_compile() -> None:
    """Byte-compile bccless as scripts/setup.sh does, so PYTHONDONTWRITEBYTECODE=1
    in the environment does not turn every measured start into a recompile."""
    subprocess.run([VENV_PYTHON, "-m", "compileall", "-q", os.path.join(ROOT, "bccless"),
                    os.path.join(ROOT, "compat")], check=True, stdout=subprocess.DEVNULL)


class Sample(NamedTuple):
    wall: float      # seconds, start to exit
    output: float    # seconds, start to the tool's first line of output
    rss_kib: int     # peak resident set of the child, KiB
    stdout: str


def run_measured(argv: Sequence[str], env: Dict[str, str]) -> Sample:
    """Run one child to completion: wall time, time to its output, its own peak RSS.

    The child's stdout is a pipe read here (PYTHONUNBUFFERED=1, the same for
    every variant, makes its print() reach the pipe at once), so the moment
    the tool's line arrives separates its work from its exit (atexit detach,
    which the kernel makes wait for RCU grace periods).

    Peak RSS is the child's ru_maxrss from wait4, taken by GNU time rather
    than by os.wait4 here: Linux folds the resident set of the image a child
    replaces at exec into its ru_maxrss, and a child forked from this Python
    process would carry our ~15 MiB into every figure; time(1) is ~2 MiB."""
    env = dict(env, PYTHONUNBUFFERED="1")
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.perf_counter()
        proc = subprocess.Popen([GNU_TIME, "-f", "%M", "-o", rss.name] + list(argv),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                env=env)
        chunks = []
        first = None
        fd = proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            if first is None and b"\n" in chunk:
                first = time.perf_counter()
        proc.wait()
        end = time.perf_counter()
        proc.stdout.close()
        err.seek(0)
        errors = err.read().decode(errors="replace")
        report = rss.read().split()
    text = b"".join(chunks).decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{errors}{text}")
    return Sample(end - t0, (first or end) - t0, int(report[-1]), text.strip())


class Variant:
    """One way of starting a script: interpreter and cache state, and its samples."""

    def __init__(self, label: str, python: str, cache: Optional[str] = None,
                 fresh_cache: bool = False, seed_vmlinux: Optional[str] = None,
                 seed_pch: bool = False) -> None:
        self.label = label
        self.python = python
        self.cache = cache
        self.fresh_cache = fresh_cache
        self.seed_vmlinux = seed_vmlinux
        self.seed_pch = seed_pch
        self.samples: List[Sample] = []

    def run(self, script: Optional[str], scratch: str) -> Sample:
        env = dict(os.environ)
        cache = self.cache
        if self.fresh_cache:
            cache = tempfile.mkdtemp(prefix="cache-", dir=scratch)   # mode 0700, as the cache wants
            if self.seed_vmlinux:
                # copy2 keeps mtimes, which clang checks before it uses its PCH
                shutil.copytree(self.seed_vmlinux, os.path.join(cache, "vmlinux"),
                                ignore=None if self.seed_pch else shutil.ignore_patterns("pch"))
        if cache:
            env["BCCLESS_CACHE"] = cache
        argv = [self.python] + ([script] if script else ["-c", "pass"])
        try:
            return run_measured(argv, env)
        finally:
            if self.fresh_cache:
                shutil.rmtree(cache, ignore_errors=True)


def measure(script: str, runs: int, scratch: str) -> List[Variant]:
    """All variants of one script, interleaved, after one unmeasured warm-up round."""
    warm = tempfile.mkdtemp(prefix="warm-", dir=scratch)
    first = run_measured([VENV_PYTHON, script], dict(os.environ, BCCLESS_CACHE=warm))
    vmlinux = os.path.join(warm, "vmlinux")
    if not os.path.isdir(os.path.join(vmlinux, "pch")):
        raise RuntimeError(f"{warm} has no vmlinux/pch/ after a cold run: cache layout changed?")
    variants = [
        Variant("bcc 0.26", SYS_PYTHON),
        Variant("bccless cold", VENV_PYTHON, fresh_cache=True),
        Variant("bccless cold, vmlinux.h cached", VENV_PYTHON, fresh_cache=True,
                seed_vmlinux=vmlinux),
        Variant("bccless cold, kernel prepared", VENV_PYTHON, fresh_cache=True,
                seed_vmlinux=vmlinux, seed_pch=True),
        Variant("bccless warm", VENV_PYTHON, cache=warm),
    ]
    for v in variants:   # warm-up round: page cache, BCC's first-run costs
        v.run(script, scratch)
    for i in range(runs):
        for v in variants[i % len(variants):] + variants[:i % len(variants)]:
            v.samples.append(v.run(script, scratch))
    print(f"    cold run said: {first.stdout}")
    for v in (variants[0], variants[-1]):
        print(f"    {v.label} said: {v.samples[-1].stdout}")
    return variants


def measure_floor(runs: int, scratch: str) -> List[Variant]:
    floors = [Variant("python3 -c pass (Debian)", SYS_PYTHON),
              Variant("python -c pass (.venv)", VENV_PYTHON)]
    for v in floors:
        v.run(None, scratch)
    for _ in range(runs):
        for v in floors:
            v.samples.append(v.run(None, scratch))
    return floors


def wall(v: Variant) -> float:
    return statistics.median(s.wall for s in v.samples)


def rss_mib(v: Variant) -> float:
    return statistics.median(s.rss_kib for s in v.samples) / 1024.0


def to_output(v: Variant) -> float:
    return statistics.median(s.output for s in v.samples)


def table(variants: Sequence[Variant], bcc: Optional[Variant]) -> str:
    """A Markdown table: medians of wall, of time to output and of peak RSS, with
    BCC's figure over each variant's (how many times faster than BCC)."""
    lines = ["| variant | wall | (min - max) | to output | exit | peak RSS "
             "| BCC/this wall | BCC/this to output |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for v in variants:
        walls = [s.wall for s in v.samples]
        exit_ms = statistics.median(s.wall - s.output for s in v.samples) * 1e3
        ratios = "| | |"
        if bcc is not None and v is not bcc:
            ratios = f"| {wall(bcc) / wall(v):.1f}x | {to_output(bcc) / to_output(v):.1f}x |"
        lines.append(f"| {v.label} | {wall(v) * 1e3:.0f} ms | ({min(walls) * 1e3:.0f} - "
                     f"{max(walls) * 1e3:.0f}) | {to_output(v) * 1e3:.0f} ms | {exit_ms:.0f} ms "
                     f"| {rss_mib(v):.1f} MiB {ratios}")
    return "\n".join(lines)


def default_scripts() -> List[str]:
    return sorted(os.path.join(SCRIPTS, n) for n in os.listdir(SCRIPTS)
                  if n.endswith(".py") and not n.startswith("_"))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="measured rounds (median reported)")
    ap.add_argument("--setup-bcc", action="store_true",
                    help="install python3-bpfcc and kernel headers, link them for the "
                         "running kernel, then benchmark")
    ap.add_argument("scripts", nargs="*", help="BCC-style scripts (default: benchmarks/scripts)")
    args = ap.parse_args(argv)
    if args.setup_bcc:
        setup_bcc()
    require(bcc_problems() + bccless_problems())
    byte_compile()
    scripts = [os.path.abspath(s) for s in args.scripts] or default_scripts()
    with tempfile.TemporaryDirectory(prefix="bccless-bench-") as scratch:
        print(f"## interpreter floor (median of {args.runs})\n")
        print(table(measure_floor(args.runs, scratch), None) + "\n")
        for script in scripts:
            print(f"## {os.path.relpath(script, ROOT)} (median of {args.runs}, interleaved)\n")
            variants = measure(script, args.runs, scratch)
            print("\n" + table(variants, variants[0]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
