"""Process-wide registry of kernel resources that must not outlive the tool.

Most attachments die with their file descriptor, but some do not: legacy
tracefs probe entries (kprobe_events/uprobe_events lines), netlink XDP and tc
attachments stay until removed.  Everything that attaches registers here and
is released on ``close()``, at interpreter exit, or when SIGINT/SIGTERM would
otherwise kill the process without running ``atexit``.

Objects are held strongly: like BCC, an attachment lives until it is closed
or the process ends, not until the caller drops the handle.
"""
from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import Any, Callable, Dict, Optional, Protocol

from .lazylog import LazyLogger

log = LazyLogger(__name__)


class Closeable(Protocol):
    def close(self) -> None: ...


class Registry:
    """Resources in registration order; ``close_all`` releases them newest first."""

    def __init__(self) -> None:
        self._items: Dict[int, Closeable] = {}
        self._lock = threading.RLock()
        self._owner = os.getpid()
        self._atexit = False

    def register(self, obj: Closeable) -> None:
        with self._lock:
            if os.getpid() != self._owner:  # a forked child starts with its own, empty registry
                self._items.clear()
                self._owner = os.getpid()
            self._items[id(obj)] = obj
            if not self._atexit:
                atexit.register(self.close_all)
                self._atexit = True

    def unregister(self, obj: Closeable) -> None:
        with self._lock:
            self._items.pop(id(obj), None)

    def __len__(self) -> int:
        return len(self._items)

    def close_all(self) -> None:
        """Close everything registered by this process; failures are logged, not raised.

        A forked child inherits the parent's list but must not tear down the
        parent's probes (tracefs entries are global), so it only forgets them.
        """
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
            if os.getpid() != self._owner:
                return
        for obj in reversed(items):
            try:
                obj.close()
            except Exception as exc:  # clean-up must go on with the rest
                log.warning("clean-up of %r failed: %s", obj, exc)


registry = Registry()
register = registry.register
unregister = registry.unregister
close_all = registry.close_all

_installed: Dict[int, Any] = {}


def install_signal_handlers(signals: tuple = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Make SIGINT/SIGTERM release registered resources before the process dies.

    A previously installed Python handler (including the default one that
    raises KeyboardInterrupt) is chained to unchanged: if it ends the process,
    ``atexit`` cleans up; if it returns, the program goes on and keeps its
    probes.  Where the signal would kill the process outright (SIG_DFL), we
    clean up and then die by the same signal, so the exit status is still
    128+signo (130 for SIGINT, 143 for SIGTERM).  Ignored signals stay ignored.
    Only the main thread can install handlers; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in signals:
        if sig in _installed:
            continue
        prev = signal.getsignal(sig)
        if prev == signal.SIG_IGN:
            continue
        _installed[sig] = prev
        signal.signal(sig, _make_handler(sig, prev))


def _make_handler(sig: int, prev: Any) -> Callable[[int, Optional[Any]], None]:
    def handler(signo: int, frame: Optional[Any]) -> None:
        if callable(prev):
            prev(signo, frame)
            return
        close_all()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        signal.signal(signo, signal.SIG_DFL)
        os.kill(os.getpid(), signo)
    return handler
