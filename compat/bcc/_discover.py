"""BCC's user-space discovery helpers: libraries, executables, function symbols.

Tools such as funccount and stackcount enumerate a binary's functions with a
regular expression and attach by address; these return what BCC's do (bytes
names, symbol addresses as the ELF file states them, BCC's errors).
"""
from __future__ import annotations

import os
import re
from typing import List, Optional, Set, Tuple


def _b(x) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode()


class DiscoveryMixin:
    """Static helpers of ``bcc.BPF`` that look at files, not at the kernel."""

    @staticmethod
    def find_library(libname, pid: int = 0) -> Optional[bytes]:
        """Full path of ``lib<libname>`` (via the pid's mappings or ld.so.cache), or None."""
        from bccless.attach.elfsym import find_library
        name = libname.decode() if isinstance(libname, bytes) else str(libname)
        path = find_library(name, pid if pid and pid > 0 else None)
        return path.encode() if path else None

    @staticmethod
    def find_exe(bin_path):
        """``bin_path`` if it has a directory part and is executable, else a PATH search."""
        def is_exe(p) -> bool:
            return os.path.isfile(p) and os.access(p, os.X_OK)

        if os.path.dirname(bin_path):
            return bin_path if is_exe(bin_path) else None  # as given, str or bytes
        for d in os.environ.get("PATH", "").split(os.pathsep):
            candidate = os.path.join(d.strip('"').encode(), _b(bin_path))
            if is_exe(candidate):
                return candidate
        return None

    @staticmethod
    def get_user_functions_and_addresses(name, sym_re) -> List[Tuple[bytes, int]]:
        """(name, address) of every function symbol of ``name`` whose name re.matches."""
        from bccless.attach.elfsym import elf_image, resolve_binary
        from bccless.errors import BcclessError
        pattern = re.compile(_b(sym_re))
        try:
            img = elf_image(resolve_binary(_b(name).decode()))
            symbols = sorted(img.symbols.values(), key=lambda s: s.value)
        except (BcclessError, OSError):
            raise Exception("Error %d enumerating symbols in %s" % (-1, _b(name))) from None
        return [(s.name.encode(), s.value) for s in symbols if pattern.match(s.name.encode())]

    @staticmethod
    def get_user_functions(name, sym_re) -> Set[bytes]:
        return {fn for fn, _ in DiscoveryMixin.get_user_functions_and_addresses(name, sym_re)}

    @staticmethod
    def get_user_addresses(name, sym_re) -> Set[int]:
        return {a for _, a in DiscoveryMixin.get_user_functions_and_addresses(name, sym_re)}
