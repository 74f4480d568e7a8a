"""Source-range rewriting that keeps the user's line numbers.

The translator never edits C text by pattern: it records :class:`Edit` objects
on byte ranges of the user's source (found from libclang cursor extents) and
renders them here.  Edits may nest (an implicit probe read inside the key of a
map ``increment``); an edit's replacement is built from the *rendered* text of
sub-ranges, so inner edits are applied first.  Every replacement is padded with
the newlines its range removed, so user line N stays translated line N (plus a
constant prologue), which keeps clang's ``#line``-mapped diagnostics, BTF line
info and the translator's line map trivially correct.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List

from ..errors import CompileError

Render = Callable[[int, int], str]


@dataclass
class Edit:
    """Replace ``text[start:end]`` by ``build(render)``.

    ``build`` receives a ``render(start, end)`` callable giving the rewritten
    text of any sub-range (with nested edits applied).  An insertion has
    ``start == end``; ``order`` sorts insertions at the same offset.
    """

    start: int
    end: int
    build: Callable[[Render], str]
    order: int = 0


def replace_with(start: int, end: int, text: str, order: int = 0) -> Edit:
    """An edit with a fixed replacement text."""
    return Edit(start, end, lambda _render: text, order)


def insert_at(offset: int, text: str, order: int = 0) -> Edit:
    """An insertion of fixed text at ``offset``."""
    return Edit(offset, offset, lambda _render: text, order)


class Rewriter:
    """Collects edits on one source text and renders the rewritten text."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.edits: List[Edit] = []

    def add(self, edit: Edit) -> None:
        self.edits.append(edit)

    def render(self) -> str:
        ordered = sorted(self.edits, key=lambda e: (e.start, e.start != e.end,
                                                   -(e.end - e.start), e.order))
        return self._render(ordered, 0, len(self.text))

    def _render(self, ordered: List[Edit], start: int, end: int) -> str:
        text = self.text
        out: List[str] = []
        pos = start
        for edit in ordered:
            if edit.start < start or edit.end > end:
                continue
            if edit.start == start and edit.end == end and edit.start != edit.end \
                    and (start, end) == self._active:
                continue  # the edit being built asks for its own range
            if edit.start < pos:
                if edit.end > pos:
                    line = text.count("\n", 0, edit.start) + 1
                    raise CompileError(f"{self.filename}:{line}: overlapping rewrites "
                                       "(construct too complex for the BCC translator)")
                continue
            out.append(text[pos:edit.start])
            outer, self._active = self._active, (edit.start, edit.end)
            try:
                built = edit.build(lambda s, e: self._render(ordered, s, e))
            finally:
                self._active = outer
            removed = text.count("\n", edit.start, edit.end)
            added = built.count("\n")
            if added > removed:
                line = text.count("\n", 0, edit.start) + 1
                raise CompileError(f"{self.filename}:{line}: internal error: rewrite adds lines")
            out.append(built + "\n" * (removed - added))
            pos = edit.end
        out.append(text[pos:end])
        return "".join(out)

    _active = (-1, -1)
