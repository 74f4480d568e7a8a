"""The BCC C dialect side of bccless: translation of BCC programs to CO-RE C.

``bccless.bcc.translate.translate()`` parses a BCC program with libclang and
rewrites it into a libbpf-style CO-RE program plus metadata (maps, programs,
output event types, tracepoint layouts) that the BCC drop-in layer consumes.
Importing this package is free: libclang is only loaded by ``translate()``.
"""
from __future__ import annotations

import os

# Bump whenever the translator's output for the same input changes; it is part
# of every cache key.
TRANSLATION_VERSION = 1

INCLUDE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")
COMPAT_HEADER = os.path.join(INCLUDE_DIR, "bccless_compat.h")
