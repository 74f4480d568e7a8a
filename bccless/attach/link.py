"""The handle every attach function returns.

Attachments come in several shapes: a BPF link fd (the kernel detaches when
it is closed), a perf event fd with a program set on it, a perf fd plus a
legacy tracefs entry, or a netlink/setsockopt attachment that only an
explicit reverse operation undoes.  :class:`Link` hides the difference: it
owns fds and "undo" steps, releases them in the right order exactly once, and
is registered with :mod:`bccless.cleanup` so that exit and SIGINT/SIGTERM
release it too.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from .. import cleanup
from ..lazylog import LazyLogger

log = LazyLogger(__name__)

Undo = Callable[[], None]


class Link:
    """An attached program.

    ``fd`` is the fd that represents the attachment (a BPF link fd when
    ``bpf_link`` is true, else a perf event or socket fd, or -1).  ``fds`` are
    closed, and ``undo`` steps run, in reverse order of acquisition on
    :meth:`close`.  Use as a context manager for scoped attachments.
    """

    def __init__(self, kind: str, target: str, *, fd: int = -1, bpf_link: bool = False,
                 fds: Sequence[int] = (), undo: Sequence[Any] = (), prog_name: str = "") -> None:
        self.kind = kind
        self.target = target
        self.prog_name = prog_name
        self.fd = fd
        self.bpf_link = bpf_link
        # Steps in acquisition order: ints are fds to close, others are callables or
        # objects with close() (legacy tracefs events, sockets).
        self._steps: List[Any] = list(undo) + list(fds)
        if fd >= 0 and fd not in fds:
            self._steps.append(fd)
        self._closed = False
        cleanup.register(self)

    def add(self, step: Any) -> None:
        """Take ownership of one more fd/undo step, released before the earlier ones."""
        self._steps.append(step)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Detach: release everything this link owns, newest first.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        cleanup.unregister(self)
        errors = []
        for step in reversed(self._steps):
            try:
                release(step)
            except OSError as exc:
                errors.append(exc)
        self._steps.clear()
        self.fd = -1
        if errors:
            log.warning("detaching %s: %s", self, "; ".join(str(e) for e in errors))

    detach = close

    def info(self) -> Dict[str, Any]:
        """The kernel's bpf_link_info for BPF links (``obj_get_info_by_fd``)."""
        if not self.bpf_link or self.fd < 0:
            raise ValueError(f"{self} is not a BPF link")
        from ..sys import bpf

        return bpf.obj_get_info_by_fd(self.fd, "link")

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self.fd}"
        prog = f" {self.prog_name}" if self.prog_name else ""
        return f"<Link {self.kind}{prog} -> {self.target} {state}>"


class MultiLink:
    """Several links made by one request (a USDT probe with many sites, per-CPU perf events)."""

    def __init__(self, links: Sequence[Link]) -> None:
        self.links = list(links)

    def close(self) -> None:
        for link in reversed(self.links):
            link.close()

    detach = close

    @property
    def closed(self) -> bool:
        return all(link.closed for link in self.links)

    def __enter__(self) -> "MultiLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self):
        return iter(self.links)

    def __len__(self) -> int:
        return len(self.links)


def release(step: Any) -> None:
    """Undo one acquisition: close an fd, call a callable, or close() an object."""
    if isinstance(step, int):
        os.close(step)
    elif callable(step):
        step()
    else:
        step.close()


def close_on_error(fds: Sequence[Optional[int]]) -> None:
    """Close fds acquired before a later step of an attach failed."""
    for fd in fds:
        if fd is not None and fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
