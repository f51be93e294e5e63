"""Reading printcap files exactly as LPRng 3.8.B does.

Data flow: files (``source``) -> text stages (``grammar``) -> records and entries
(``model``) -> typed destinations (``destination``). ``load`` is the entry point.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

from lpfilter.errors import ConfigError
from lpfilter.printcap.hostmatch import HostInfo
from lpfilter.printcap.model import Entry, Printcap, Side, build_printcap
from lpfilter.printcap.source import Origin, Problem, read_entries

__all__ = ["Entry", "Origin", "Printcap", "Problem", "load", "raise_fatal"]


def load(paths: Sequence[str], *, optional: Sequence[str] = (), side: Side = "server",
         host: HostInfo | None = None) -> Printcap:
    """Read ``paths`` in order (later entries win); ``optional`` files may be missing.

    Problems are collected on ``Printcap.problems``, not raised, so checkpc can report all
    of them; callers that need a usable printcap call ``raise_fatal`` first.
    """
    problems: list[Problem] = []
    raw = []
    for path in paths:
        if path in optional and not os.path.exists(path):
            continue
        raw.extend(read_entries(path, problems))
    return build_printcap(raw, problems, side=side, host=host)


def raise_fatal(printcap: Printcap) -> None:
    """Raise the first problem that LPRng would stop on (unreadable file, bad include)."""
    for problem in printcap.problems:
        if problem.fatal:
            raise ConfigError(problem.message,
                              where=str(problem.origin) if problem.origin else None)
