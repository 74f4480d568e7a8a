#!/usr/bin/env bash
# Idempotent set-up of a Debian 12 host (run as root): system packages, kernel
# filesystems, and a virtualenv at .venv with bccless installed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

log() { echo "setup: $*" >&2; }

pkgs=(clang-19 llvm-19 lld-19 libbpf-dev bpftool python3-venv python3-dev
      iproute2 xz-utils gcc make hyperfine postgresql-15 bpfcc-tools python3-bpfcc)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Kernel filesystems BPF tooling expects.
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true

# Debian's python3 carries USDT probes and is what real BCC uses; prefer it.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0)' 2>/dev/null; then
    log "creating .venv with $py"
    rm -rf .venv
    "$py" -m venv .venv
fi
stamp=.venv/.bccless-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing bccless into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" >&2
    touch "$stamp"
fi
# The editable install's import hook costs ~9 ms at every interpreter start;
# plain path entries give the same imports for free.
for pth in .venv/lib/python3*/site-packages/__editable__.bccless-*.pth; do
    [ -e "$pth" ] && printf '%s\n%s\n' "$here" "$here/compat" > "$pth"
done
# Byte-compile up front: start-up time is a feature, and an environment with
# PYTHONDONTWRITEBYTECODE set would otherwise recompile every module per run.
.venv/bin/python -m compileall -q bccless compat >/dev/null
# Once per kernel: vmlinux.h and the precompiled prelude, so that the first
# compile of any BCC program is quick (a no-op when they are ready).
if [ -r /sys/kernel/btf/vmlinux ]; then
    .venv/bin/bccless cache prepare >&2 || log "cache prepare failed; first compiles will be slower"
fi
log "ready: $here/.venv/bin/bccless"
