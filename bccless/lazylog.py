"""Module loggers that import :mod:`logging` only when something is logged.

``import logging`` costs several milliseconds (it pulls in threading,
traceback, string, weakref); a warm start of a cached BCC tool logs nothing,
so the modules on that path hold a :class:`LazyLogger` instead of a logger.
"""
from __future__ import annotations

from typing import Any, Optional


class LazyLogger:
    """Stands in for ``logging.getLogger(name)``; the real logger is made on first use."""

    __slots__ = ("_name", "_logger")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Optional[Any] = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            import logging
            self._logger = logging.getLogger(self._name)
        return getattr(self._logger, attr)
