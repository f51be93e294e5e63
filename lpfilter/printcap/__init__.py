"""Reading printcap files exactly as LPRng 3.8.B does.

Data flow: files (``source``) -> text stages (``grammar``) -> records and entries
(``model``) -> typed destinations (``destination``). ``load`` is the entry point.
"""
from __future__ import annotations

import os

from lpfilter import logs
from lpfilter.errors import ConfigError
from lpfilter.printcap.hostmatch import HostInfo
from lpfilter.printcap.model import Entry, Printcap, Record, build_record
from lpfilter.printcap.source import Origin, Problem, read_entries

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from lpfilter.printcap.cache import CachedFile
    from lpfilter.printcap.entry import Side

__all__ = ["Entry", "Origin", "Printcap", "Problem", "load", "raise_fatal"]

log = logs.getLogger(__name__)


def load(paths: Sequence[str], *, optional: Sequence[str] = (), side: Side = "server",
         host: HostInfo | None = None, cache_dir: str | None = None) -> Printcap:
    """Read ``paths`` in order (later entries win); ``optional`` files may be missing.

    Problems are collected on ``Printcap.problems``, not raised, so checkpc can report all
    of them; callers that need a usable printcap call ``raise_fatal`` first. With
    ``cache_dir``, files unchanged since their last parse are not parsed again.
    """
    problems: list[Problem] = []
    records: list[Record] = []
    for path in paths:
        if path in optional and not os.path.exists(path):
            continue
        parsed = _parse_file(path, cache_dir)
        records.extend(parsed.records)
        problems.extend(parsed.problems)
    return Printcap(records, side=side, host=host, problems=problems)


def _parse_file(path: str, cache_dir: str | None) -> CachedFile:
    """The records of one top-level file, from the parse cache when it is still valid.
    (The cache's module is imported here: lpd's filter reads its entry from
    ``PRINTCAP_ENTRY``, never from a file.)"""
    from lpfilter.printcap import cache
    if cache_dir is not None:
        cached = cache.load(cache_dir, path)
        if cached is not None:
            log.debug("printcap %s: %d entries, from the parse cache", path, len(cached.records))
            return cached
    problems: list[Problem] = []
    seen: list[str] = []
    with cache.no_gc():
        raw = read_entries(path, problems, seen)
        records = [r for r in (build_record(entry, problems) for entry in raw) if r is not None]
    log.info("printcap %s: %d entries read (%d files)", path, len(records), len(seen))
    parsed = cache.CachedFile({name: cache.stamp(name) for name in seen}, records, problems)
    if cache_dir is not None and not any(p.fatal and p.origin is None for p in problems):
        cache.store(cache_dir, path, parsed)
    return parsed


def raise_fatal(printcap: Printcap) -> None:
    """Raise the first problem that LPRng would stop on (unreadable file, bad include)."""
    for problem in printcap.problems:
        if problem.fatal:
            raise ConfigError(problem.message,
                              where=str(problem.origin) if problem.origin else None)
