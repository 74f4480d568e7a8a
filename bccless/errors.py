"""The project's exception hierarchy.

Every failure a user can cause (bad input, a kernel refusal, a missing
feature) surfaces as a subclass of :class:`BcclessError`, carrying enough
context (file, offset, program, map, field path, verifier log) to act on
without a traceback.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs milliseconds to import
    from typing import Optional


class BcclessError(Exception):
    """Base class of every error bccless raises on purpose."""


class BTFError(BcclessError):
    """Malformed, truncated or unsupported BTF.

    ``offset`` is the byte offset in the blob (or None when not applicable),
    ``source`` names the file or section the BTF came from.
    """

    def __init__(self, message: str, *, offset: Optional[int] = None,
                 source: Optional[str] = None) -> None:
        parts = []
        if source:
            parts.append(source)
        if offset is not None:
            parts.append(f"offset {offset}")
        prefix = ": ".join([", ".join(parts)]) + ": " if parts else ""
        super().__init__(prefix + message)
        self.offset = offset
        self.source = source
        self.reason = message


class ELFError(BcclessError):
    """A BPF object file that cannot be understood (bad ELF, bad section)."""


class RelocationError(BcclessError):
    """A CO-RE, subprogram, map or extern relocation that cannot be applied."""


class LoadError(BcclessError):
    """A kernel refusal while creating a map, uploading BTF or loading a program."""


class VerifierError(LoadError):
    """The verifier rejected a program; ``log`` holds the (annotated) verifier log."""

    def __init__(self, message: str, *, program: str, log: str, errno: int = 0) -> None:
        super().__init__(f"{message}\n{log}" if log else message)
        self.program = program
        self.log = log
        self.errno = errno


class AttachError(BcclessError):
    """A program could not be attached (missing kernel support, bad target)."""


class MapError(BcclessError):
    """A map operation failed or was given a key/value of the wrong shape."""


class CompileError(BcclessError):
    """clang rejected the BPF C, or the BCC dialect could not be translated."""


class CacheError(BcclessError):
    """The object cache is unsafe (permissions) or an entry failed verification."""
