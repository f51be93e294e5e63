"""Results a process computes once: what ``functools.lru_cache`` kept here (this machine's
names, the pyparsing grammar, the process's own start time), and regular expressions
compiled at their first use (``Pattern``).

Why not ``lru_cache``: ``functools`` imports ``collections`` (with ``operator``, ``keyword``
and ``reprlib``), 11 M instructions at every command's start, and those three caches were
a quick command's only reason to load either (issue 16, round 19; tests/test_startup.py
holds it so). Two threads calling at once may both compute, as with ``lru_cache``: every
function kept here gives the same result each time within its process.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")


def once(function: Callable[[], T]) -> Callable[[], T]:
    """``function``'s result, computed at the first call and then kept."""
    kept: list[T] = []

    def result() -> T:
        if not kept:
            kept.append(function())
        return kept[0]

    result.__name__, result.__doc__ = function.__name__, function.__doc__
    result.__wrapped__ = function  # type: ignore[attr-defined]
    return result


def per_process(function: Callable[[], T]) -> Callable[[], T]:
    """``function``'s result, computed again in a child made by ``fork``: a result that
    names the process (its start time) must not be inherited."""
    kept: list[tuple[int, T]] = []  # (the pid, its result), replaced whole

    def result() -> T:
        pid = os.getpid()
        if kept and kept[0][0] == pid:
            return kept[0][1]
        value = function()
        kept[:] = [(pid, value)]
        return value

    result.__name__, result.__doc__ = function.__name__, function.__doc__
    result.__wrapped__ = function  # type: ignore[attr-defined]
    return result


class Pattern:
    """A regular expression compiled at its first use, then used as the compiled pattern
    (``.match``, ``.finditer``, ``.sub``...). Why: ``re`` costs a process ~5 M
    instructions to import, and a cron pass that builds no filter command line and writes
    no accounting line uses none (issue 16, round 20; tests/test_startup.py)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __getattr__(self, name: str) -> object:
        import re
        found = getattr(re.compile(self.pattern), name)
        setattr(self, name, found)  # kept: the next use finds it without this call
        return found
