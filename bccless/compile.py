"""The clang driver and the compile-once pipeline for BCC programs.

:func:`build` is what the BCC drop-in layer calls with a program's final text
(after its Python-side templating).  A warm start costs a few file reads and
hashes: the *source key* (text, cflags, file name, translator version and
compat header, target arch) finds a source alias in the cache, which names the
*object key* (translated text, cflags, clang version, translator version,
target arch, headers) of a verified entry.  libclang and clang are only
touched on a miss.  Tracepoint ``args`` layouts are kernel-specific, so the
alias records each format file's digest and a warm start re-checks them.
"""
from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence

from .bcc import COMPAT_HEADER, TRANSLATION_VERSION
from .cache import CorruptEntry, ObjectCache, content_key
from .errors import CacheError, CompileError
from .lazylog import LazyLogger

if TYPE_CHECKING:
    from .pch import ClangPCH


log = LazyLogger(__name__)    # the warm path never logs

KERNEL_BTF = "/sys/kernel/btf/vmlinux"
_ARCHES = {"x86_64": "x86", "i686": "x86", "aarch64": "arm64", "armv7l": "arm", "s390x": "s390",
           "ppc64le": "powerpc", "ppc64": "powerpc", "mips64": "mips", "riscv64": "riscv",
           "loongarch64": "loongarch"}
_LIBBPF_HEADERS = ("bpf_helpers.h", "bpf_helper_defs.h", "bpf_tracing.h", "bpf_core_read.h",
                   "bpf_endian.h")
_DIAG = r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|note|fatal error): "
_clang_versions: Dict[str, str] = {}

CLANG_FLAGS = ("-g", "-O2", "-target", "bpf", "-D__BPF_TRACING__", "-nostdinc",
               "-fno-color-diagnostics", "-fno-caret-diagnostics", "-fno-stack-protector",
               "-Wno-unused-value", "-Wno-pointer-sign", "-Wno-compare-distinct-pointer-types",
               "-Wno-gnu-variable-sized-type-not-at-end", "-Wno-address-of-packed-member",
               "-Wno-tautological-compare", "-Wno-unknown-warning-option", "-Wno-int-conversion",
               "-Wno-unused-variable")


def target_arch() -> str:
    """The __TARGET_ARCH_<arch> suffix for this host."""
    machine = os.environ.get("ARCH") or os.uname().machine
    return _ARCHES.get(machine, machine)


def find_clang() -> str:
    """$BCCLESS_CLANG, else ``clang`` on PATH, else the highest ``clang-N`` on PATH."""
    import shutil
    env = os.environ.get("BCCLESS_CLANG")
    if env:
        found = shutil.which(env)
        if not found:
            raise CompileError(f"BCCLESS_CLANG={env}: not an executable")
        return found
    found = shutil.which("clang")
    if found:
        return found
    best = (-1, "")
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            suffix = name[len("clang-"):] if name.startswith("clang-") else ""
            if suffix.isdigit() and int(suffix) > best[0] and os.access(os.path.join(directory, name), os.X_OK):
                best = (int(suffix), os.path.join(directory, name))
    if not best[1]:
        raise CompileError("no clang found (set BCCLESS_CLANG, or install clang); a compiler is "
                           "only needed when an object is not in the cache")
    return best[1]


def clang_version(clang: str) -> str:
    """First line of ``clang --version`` (part of the object key)."""
    if clang not in _clang_versions:
        import subprocess
        out = subprocess.run([clang, "--version"], capture_output=True, text=True, check=False)
        _clang_versions[clang] = (out.stdout.splitlines() or ["unknown"])[0].strip()
    return _clang_versions[clang]


def libbpf_include_dir() -> str:
    """A directory holding ``bpf/bpf_helpers.h`` (libbpf-dev), for compiling only."""
    candidates = [os.environ.get("BCCLESS_LIBBPF_INCLUDE", ""), "/usr/include", "/usr/local/include"]
    for directory in candidates:
        if directory and os.path.isfile(os.path.join(directory, "bpf", "bpf_helpers.h")):
            return directory
    raise CompileError("libbpf headers not found (install libbpf-dev, or set "
                       "BCCLESS_LIBBPF_INCLUDE to the directory containing bpf/bpf_helpers.h)")


def _file_digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def vmlinux_header(cache: Optional[ObjectCache] = None) -> str:
    """Path of a vmlinux.h for the running kernel, generated once per kernel BTF.

    $BCCLESS_VMLINUX_H overrides (a header prepared elsewhere)."""
    env = os.environ.get("BCCLESS_VMLINUX_H")
    if env:
        if not os.path.isfile(env):
            raise CompileError(f"BCCLESS_VMLINUX_H={env}: no such file")
        return env
    try:
        with open(KERNEL_BTF, "rb") as fh:
            blob = fh.read()
    except OSError as exc:
        raise CompileError(f"{KERNEL_BTF}: cannot read kernel BTF ({exc}); bccless needs a "
                           "kernel built with CONFIG_DEBUG_INFO_BTF") from exc
    cache = cache or ObjectCache()
    digest = hashlib.sha256(blob).hexdigest()[:32]
    path = os.path.join(cache.root, "vmlinux", digest, "vmlinux.h")
    if os.path.isfile(path):
        try:
            cache._check_dirs(path)
            cache._check(path, os.stat(path))
            cache._touch(os.path.dirname(path))     # for prune; not the header: clang checks its mtime
            return path
        except CacheError as exc:
            # What root compiles against must be as trusted as the objects it loads.
            log.warning("%s; generating it again", exc)
    from .btf.cdump import write_c_header
    from .btf.parse import BTF
    parts: List[str] = []
    write_c_header(BTF.from_bytes(blob, source=KERNEL_BTF), parts.append)
    cache._write(path, "".join(parts).encode())
    log.info("generated %s from %s", path, KERNEL_BTF)
    return path


def prepare(cache: Optional[ObjectCache] = None) -> Dict[str, Optional[str]]:
    """Make this kernel's compile prelude ready: vmlinux.h and both PCHs.

    What the first cold build on a kernel would otherwise do (about a second),
    done ahead, e.g. at install: every later cold build then starts from the
    PCHs.  Returns the paths; a PCH that could not be built is None (builds
    still work, only slower)."""
    from .bcc.translate import precompile_prelude
    from .pch import ClangPCH, Prelude
    cache = cache or ObjectCache()
    clang = find_clang()
    vmlinux_h = os.path.realpath(vmlinux_header(cache))
    prelude = Prelude(cache, vmlinux_h, _headers_digest(libbpf_include_dir()))
    clang_pch = ClangPCH(prelude, clang, clang_version(clang), compile_flags(vmlinux_h))
    libclang_path = precompile_prelude(prelude)     # while clang builds its own
    return {"vmlinux.h": vmlinux_h, "clang": clang_pch.ready(), "libclang": libclang_path}


def _headers_digest(include_dir: str) -> str:
    h = hashlib.sha256(_file_digest(COMPAT_HEADER).encode())
    for name in _LIBBPF_HEADERS:
        path = os.path.join(include_dir, "bpf", name)
        if os.path.isfile(path):
            h.update(_file_digest(path).encode())
    return h.hexdigest()


def source_key(text: str, cflags: Sequence[str], filename: str) -> str:
    """Key of a BCC source as given (warm-path lookup, no translation needed)."""
    return content_key("bccless-source", TRANSLATION_VERSION, target_arch(), _file_digest(COMPAT_HEADER),
                text, list(cflags), filename)


def object_key(translated: str, cflags: Sequence[str], clang_ver: str, headers: str) -> str:
    """Key of a compiled object: what clang saw and which clang it was."""
    return content_key("bccless-object", TRANSLATION_VERSION, target_arch(), translated, list(cflags),
                clang_ver, headers)


def compile_flags(vmlinux_h: str) -> List[str]:
    """clang's flags for translated text, shared by the compile and the prelude's PCH."""
    return [*CLANG_FLAGS, f"-D__TARGET_ARCH_{target_arch()}",
            "-I", os.path.dirname(os.path.abspath(vmlinux_h)), "-I", os.path.dirname(COMPAT_HEADER),
            "-I", libbpf_include_dir()]


def compile_c(source: str, *, cflags: Sequence[str] = (), filename: str = "<text>",
              vmlinux_h: Optional[str] = None, clang: Optional[str] = None,
              user_text: Optional[str] = None, pch: Optional[ClangPCH] = None) -> bytes:
    """Compile translated CO-RE C to a BPF object; diagnostics name the user's lines.

    With ``pch`` (a ready :class:`bccless.pch.ClangPCH`) clang reads the prelude
    from its PCH; if that compile fails the plain one decides, and a PCH that
    failed where the plain compile succeeded is discarded (rebuilt next time)."""
    import subprocess
    import tempfile
    clang = clang or find_clang()
    vmlinux_h = vmlinux_h or vmlinux_header()
    with tempfile.TemporaryDirectory(prefix="bccless-cc-") as tmp:
        src_path = os.path.join(tmp, "bccless_main.c")
        obj_path = os.path.join(tmp, "out.o")
        with open(src_path, "w", encoding="utf-8") as fh:
            fh.write(source)
        # Keep the temporary directory out of the debug info: same input, same object.
        cmd = [clang, *compile_flags(vmlinux_h), f"-ffile-prefix-map={tmp}=/bccless",
               "-fdebug-compilation-dir=/bccless"]
        if os.path.isfile(filename):
            cmd += ["-I", os.path.dirname(os.path.abspath(filename))]
        cmd += [*cflags, "-c", src_path, "-o", obj_path]
        proc = None
        if pch is not None:
            proc = subprocess.run(cmd[:1] + pch.use_flags() + cmd[1:], capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0:
                log.info("compile with the precompiled prelude failed; without it: %s",
                            proc.stderr.strip())
        if proc is None or proc.returncode != 0:
            failed_with_pch = proc is not None
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if failed_with_pch and proc.returncode == 0:
                pch.discard()
        if proc.returncode != 0:
            raise CompileError(map_diagnostics(proc.stderr, filename, user_text))
        if proc.stderr.strip():
            log.debug("clang: %s", proc.stderr.strip())
        with open(obj_path, "rb") as fh:
            return fh.read()


def map_diagnostics(stderr: str, filename: str, user_text: Optional[str]) -> str:
    """clang's errors (and their notes), each followed by the user's source line."""
    import re
    diag = re.compile(_DIAG)
    lines = user_text.split("\n") if user_text is not None else []
    out: List[str] = []
    keep = False
    for line in stderr.splitlines():
        m = diag.match(line)
        if m:
            keep = m.group("sev") != "warning"
            if not keep:
                continue
            out.append(line)
            lineno = int(m.group("line"))
            if m.group("file") == filename and 0 < lineno <= len(lines):
                out.append(f"{lineno:5d} | {lines[lineno - 1]}")
        elif keep and line.strip() and not line.endswith("generated."):
            out.append(line)
    return "\n".join(out) or stderr.strip() or "clang failed without a message"


class Built:
    """A compiled BCC program: the object and its metadata, from the cache or fresh."""

    __slots__ = ("key", "object", "metadata", "from_cache")

    def __init__(self, key: str, obj: bytes, metadata: dict, from_cache: bool) -> None:
        self.key = key
        self.object = obj
        self.metadata = metadata
        self.from_cache = from_cache


def _formats_match(alias: dict, reader: Optional[Callable[[str, str], str]]) -> bool:
    if not alias.get("tracepoints"):
        return True
    from .bcc.tpformat import format_digest, read_format
    for tp in alias["tracepoints"]:
        try:
            text = (reader or read_format)(tp["category"], tp["event"])
        except CompileError:
            return False
        if format_digest(text) != tp["format_sha256"]:
            return False
    return True


def build(text: str, *, cflags: Sequence[str] = (), filename: str = "<text>",
          cache: Optional[ObjectCache] = None,
          tracepoint_formats: Optional[Callable[[str, str], str]] = None,
          vmlinux_h: Optional[str] = None) -> Built:
    """The compiled object of a BCC program, compiling (once) only on a cache miss.

    A corrupt or tampered entry is never used: it is rebuilt when a compiler is
    available, otherwise :class:`CacheError` is raised."""
    cache = cache or ObjectCache()
    skey = source_key(text, cflags, filename)
    alias = None
    try:
        alias = cache.get_alias(skey)
    except CorruptEntry as exc:
        log.warning("%s; rebuilding", exc)
    if alias and _formats_match(alias, tracepoint_formats):
        try:
            entry = cache.get(alias["object_key"])
        except CorruptEntry as exc:
            entry = None
            _require_compiler(exc)
            log.warning("%s; rebuilding", exc)
        if entry is not None:
            return Built(entry.key, entry.object, entry.metadata, True)
    elif alias:
        log.info("tracepoint formats changed since %s was built; rebuilding", filename)
    return _build_cold(text, cflags, filename, cache, skey, tracepoint_formats, vmlinux_h)


def _require_compiler(exc: CacheError) -> None:
    try:
        find_clang()
    except CompileError:
        raise CacheError(f"{exc}; no compiler available to rebuild it") from exc


def _build_cold(text: str, cflags: Sequence[str], filename: str, cache: ObjectCache, skey: str,
                reader: Optional[Callable[[str, str], str]], vmlinux_h: Optional[str]) -> Built:
    from .bcc.translate import translate
    from .pch import ClangPCH, Prelude
    clang = find_clang()
    vmlinux_h = os.path.realpath(vmlinux_h or vmlinux_header(cache))
    headers = _headers_digest(libbpf_include_dir())
    # User cflags may change what the prelude means (-D, -I): those builds go without PCH.
    prelude = None if cflags else Prelude(cache, vmlinux_h, headers)
    # clang precompiles the prelude (if needed) while libclang translates.
    clang_pch = ClangPCH(prelude, clang, clang_version(clang), compile_flags(vmlinux_h)) \
        if prelude is not None else None
    try:
        tr = translate(text, cflags=cflags, filename=filename, tracepoint_formats=reader,
                       vmlinux_h=vmlinux_h, prelude=prelude)
    except Exception:
        if clang_pch is not None:
            clang_pch.ready()       # finish (and keep) the PCH, leave no process behind
        raise
    okey = object_key(tr.text, cflags, clang_version(clang), headers)
    meta = tr.metadata()
    entry = None
    try:
        entry = cache.get(okey)
    except CorruptEntry as exc:
        log.warning("%s; rebuilding", exc)
    pch_ready = clang_pch is not None and clang_pch.ready() is not None
    if entry is None:
        obj = compile_c(tr.text, cflags=cflags, filename=filename, vmlinux_h=vmlinux_h,
                        clang=clang, user_text=text, pch=clang_pch if pch_ready else None)
        try:
            entry = cache.put(okey, obj, meta)
        except PermissionError as exc:
            log.warning("cannot write the object cache (%s); continuing uncached", exc)
            return Built(okey, obj, meta, False)
    try:
        cache.put_alias(skey, okey, {"filename": filename, "tracepoints": [
            {"category": t.category, "event": t.event, "format_sha256": t.format_sha256}
            for t in tr.tracepoints]})
    except PermissionError as exc:
        log.warning("cannot write the object cache (%s)", exc)
    return Built(okey, entry.object, entry.metadata, False)
