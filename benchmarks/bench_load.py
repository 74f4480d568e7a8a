"""Whole-process cost of loading a typical tracing object, side by side.

Each variant runs as its own process, ``--runs`` times (median reported),
interleaved so that machine noise hits all of them alike:

* ``python -c pass``       - the interpreter's bare start-up, the floor;
* ``bccless warm``         - open + load + close with the relocation cache filled;
* ``bccless cold``         - the same without a relocation cache entry (ELF
  parse, kernel BTF parse, CO-RE relocation, BTF feature probes): a new
  object on a host where bccless has run before, so the kernel BTF's name
  index (built once per kernel, ``<cache>/btf``) is there;
* ``bccless first``        - the same with an empty cache, index included:
  the first bccless load ever on this kernel;
* ``bpftool loadall``      - libbpf 1.1 loading the same object (pins removed
  outside the timing).

Wall time is measured around the child; peak RSS is the child's maximum
resident set as ``/usr/bin/time -f %M`` reports it (the same small wrapper,
and its ~1 ms, for every variant).  Needs root.  Usage::

    python3 benchmarks/bench_load.py [OBJ.o] [--runs 9] [--python PATH]

Without OBJ, tests/data/loader/core.bpf.c (kernel-matrix Appendix D) is
compiled with clang-19 against a vmlinux.h of the running kernel.
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
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tests", "data", "loader", "core.bpf.c")
TIME = "/usr/bin/time"
LOAD_SCRIPT = ("from bccless import BPFObject\n"
               "obj = BPFObject.open({path!r})\nobj.load()\nobj.close()\n")


def build_object(workdir: str) -> str:
    """Compile the Appendix D object for the running kernel."""
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None:
        sys.exit("clang-19 is needed to build the benchmark object (or pass OBJ)")
    header = subprocess.run([sys.executable, "-m", "bccless.cli", "btf", "dump", "--format",
                             "c"], check=True, capture_output=True).stdout
    with open(os.path.join(workdir, "vmlinux.h"), "wb") as f:
        f.write(header)
    obj = os.path.join(workdir, "core.bpf.o")
    subprocess.run([clang, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
                    f"-I{workdir}", "-c", SOURCE, "-o", obj], check=True)
    return obj


def run_once(argv: Sequence[str], env: Dict[str, str],
             before: Optional[Callable[[], None]] = None,
             after: Optional[Callable[[], None]] = None) -> Tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process."""
    if before:
        before()
    # /usr/bin/time is a small C parent: a child forked from this (bigger)
    # Python process would report our RSS as its peak.
    with tempfile.NamedTemporaryFile("r") as rss_file:
        t0 = time.perf_counter()
        proc = subprocess.run([TIME, "-f", "%M", "-o", rss_file.name, *argv], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed:\n{proc.stderr.decode(errors='replace')}")
        rss_kib = int(rss_file.read().split()[-1])
    if after:
        after()
    return wall, rss_kib / 1024.0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("obj", nargs="?", help="BPF object (default: build tests' core.bpf.c)")
    ap.add_argument("--runs", type=int, default=9, help="runs per variant (median; >= 7)")
    ap.add_argument("--python", default=sys.executable, help="interpreter to measure")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("loading BPF needs root")
    work = tempfile.mkdtemp(prefix="bccless-bench-")
    try:
        obj = args.obj or build_object(work)
        cache = os.path.join(work, "cache")
        # Measure what an installed package costs: with bytecode caching on
        # (written under the work dir, not into the source tree).
        env = dict(os.environ, BCCLESS_CACHE=cache,
                   PYTHONPYCACHEPREFIX=os.path.join(work, "pycache"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        script = LOAD_SCRIPT.format(path=os.path.abspath(obj))
        pin_dir = f"/sys/fs/bpf/bccless_bench_{os.getpid()}"
        bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
        py = [args.python, "-c"]
        subprocess.run(py + [script], env=env, check=True)      # fill the caches once
        shutil.rmtree(cache)
        subprocess.run(py + [script], env=env, check=True)      # cold-path bytecode too
        subprocess.run(py + ["pass"], env=env, check=True)

        def clear_cache() -> None:
            shutil.rmtree(cache, ignore_errors=True)

        def clear_relocations() -> None:
            shutil.rmtree(os.path.join(cache, "relo"), ignore_errors=True)

        def unpin() -> None:
            shutil.rmtree(pin_dir, ignore_errors=True)

        variants = [
            ("python -c pass", py + ["pass"], None, None),
            ("bccless warm", py + [script], None, None),
            ("bccless cold", py + [script], clear_relocations, None),
            ("bccless first", py + [script], clear_cache, None),
            ("bpftool loadall", [bpftool, "prog", "loadall", obj, pin_dir], None, unpin),
        ]
        results: Dict[str, List[Tuple[float, float]]] = {name: [] for name, *_ in variants}
        for i in range(args.runs):
            for name, cmd, before, after in variants:
                if name == "bccless warm" and i == 0:
                    subprocess.run(py + [script], env=env, check=True)   # refill after cold
                results[name].append(run_once(cmd, env, before, after))
            subprocess.run(py + [script], env=env, check=True)           # warm for next round
        base = statistics.median(w for w, _ in results["python -c pass"])
        print(f"object: {obj} ({os.path.getsize(obj)} bytes), {args.runs} runs each, median")
        print(f"{'variant':<18} {'wall ms':>9} {'- python':>9} {'peak RSS MiB':>13}")
        for name, runs in results.items():
            wall = statistics.median(w for w, _ in runs)
            rss = statistics.median(r for _, r in runs)
            print(f"{name:<18} {wall * 1000:9.1f} {(wall - base) * 1000:+9.1f} {rss:13.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
