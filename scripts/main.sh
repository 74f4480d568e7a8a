#!/usr/bin/env bash
# Set everything up, then run a real, unmodified BCC tool (Debian's syscount
# from bpfcc-tools) under bccless: translated and compiled once, then loaded
# from the cache by bccless's own CO-RE loader.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/bccless run /usr/sbin/syscount-bpfcc -d 3 "$@"
