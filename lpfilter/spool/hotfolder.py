"""The hot folder: any regular file another program puts into a queue's ``sd`` is a job.

A file still being written is never taken: it is taken once it was renamed in, or once
it has not changed for the settle time and no process holds it open for writing. Dot
files, ``*.tmp``, ``*.part``, lpfilter's own files (log, status, accounting) and LPRng's
spool files (``hfA123``, ``dfA123host``, ``control.lp``...) are never jobs. Symbolic links,
FIFOs, devices and sockets are moved aside unopened with a logged reason: a link to
/etc/shadow must not print.
"""
from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".tmp", ".part")
#: LPRng's own spool files (job tickets, data and control files, queue control, status,
#: locks): an LPRng spool directory reused for lpfilter must not print them as jobs.
LPRNG_FILES = re.compile(r"^(?:[hcdt]f[A-Za-z]\d{3}|lpd\.lock\.)")


def lprng_names(queue: str) -> frozenset[str]:
    """The per-queue files LPRng keeps in a spool directory."""
    return frozenset(f"{kind}.{queue}" for kind in ("control", "status", "unspooler"))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file that is ready to become a job."""

    name: str
    path: str
    size: int
    mtime: float
    uid: int


@dataclass(slots=True)
class Scan:
    ready: list[Candidate]
    refused: list[tuple[str, str]]
    #: When a file that is not settled yet should be looked at again (None: no such file).
    recheck_at: float | None


def _kind(mode: int) -> str | None:
    """Why a non-regular entry is refused, or None for a regular file."""
    if stat.S_ISLNK(mode):
        return "a symbolic link (never followed)"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def scan(sd: str, own: frozenset[str], moved_in: set[str], settle: float, now: float) -> Scan:
    """Classify the entries of ``sd``: ready files (oldest first), refused ones, and when to
    look again at files still settling."""
    ready: list[Candidate] = []
    refused: list[tuple[str, str]] = []
    settling: list[Candidate] = []
    recheck_at: float | None = None
    try:
        entries = list(os.scandir(sd))
    except OSError as exc:
        log.warning("cannot read spool directory %s: %s", sd, exc.strerror)
        return Scan([], [], None)
    for entry in entries:
        name = entry.name
        if (name.startswith(".") or name.endswith(IGNORED_SUFFIXES) or name in own
                or LPRNG_FILES.match(name)):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode):
            continue
        reason = _kind(info.st_mode)
        if reason is not None:
            refused.append((name, reason))
            continue
        candidate = Candidate(name, entry.path, info.st_size, info.st_mtime, info.st_uid)
        if name in moved_in or now - info.st_mtime >= settle:
            settling.append(candidate)
        else:
            due = info.st_mtime + settle
            recheck_at = due if recheck_at is None else min(recheck_at, due)
    busy = open_for_writing({c.path for c in settling if c.name not in moved_in})
    for candidate in settling:
        if candidate.path in busy:
            due = now + settle
            recheck_at = due if recheck_at is None else min(recheck_at, due)
        else:
            ready.append(candidate)
    ready.sort(key=lambda c: (c.mtime, c.name))
    return Scan(ready, refused, recheck_at)


def open_for_writing(paths: set[str]) -> set[str]:
    """Which of ``paths`` some process has open for writing (as far as we may look)."""
    if not paths:
        return set()
    import psutil
    wanted = {os.path.realpath(p): p for p in paths}
    found: set[str] = set()
    for process in psutil.process_iter():
        try:
            files = process.open_files()
        except (psutil.Error, OSError):
            continue  # gone, or another user's process we may not inspect
        for item in files:
            flags = getattr(item, "flags", 0)
            writing = getattr(item, "mode", "r") != "r" or flags & (os.O_WRONLY | os.O_RDWR)
            if writing and item.path in wanted:
                found.add(wanted[item.path])
    return found


def refuse(sd: str, refused_dir: str, name: str, reason: str) -> None:
    """Move a refused entry (never opened, never followed) out of the hot folder."""
    target = os.path.join(refused_dir, name)
    suffix = 1
    while os.path.lexists(target) and suffix < 1000:
        target = os.path.join(refused_dir, f"{name}.{suffix}")
        suffix += 1
    try:
        os.rename(os.path.join(sd, name), target)
    except OSError as exc:
        log.warning("%s: refused %s (%s) but cannot move it away: %s", sd, name, reason,
                    exc.strerror)
        return
    log.warning("%s: refused %s: %s; moved to %s", sd, name, reason, target)
