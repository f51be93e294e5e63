"""Spool directories: are they there, private and writable, and can checkpc --fix make them so.

A queue's jobs live in its ``sd`` directory; it must exist before the first job is
written, belong to no other queue, and not be writable by others (anyone who can write
there can print as anyone or remove jobs). One that others may write must be sticky
(01777): it is then a shared hot folder, and only its owner (or root) spools jobs there.
"""
from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass

from lpfilter.printcap.datatypes import format_octal


@dataclass(frozen=True, slots=True)
class SpoolFinding:
    """One problem with a spool directory; ``fixed`` says --fix mended it."""

    path: str
    message: str
    fixed: bool = False
    #: Worth knowing, not a problem (checkpc shows it and still exits 0).
    note: bool = False


def check_spool_dir(path: str, mode: int, *, fix: bool = False) -> list[SpoolFinding]:
    """Check (and with ``fix`` create or chmod) one spool directory that should have ``mode``."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if not fix:
            return [SpoolFinding(path, f"spool directory {path} does not exist; run"
                                 f" 'lpfilter checkpc --fix' to create it (mode"
                                 f" {format_octal(mode)})")]
        try:
            os.makedirs(path, mode=mode)
            os.chmod(path, mode)
        except OSError as exc:
            return [SpoolFinding(path, f"cannot create spool directory {path}: {exc.strerror}")]
        return [SpoolFinding(path, f"created spool directory {path} (mode {format_octal(mode)})",
                             fixed=True)]
    except OSError as exc:
        return [SpoolFinding(path, f"cannot examine spool directory {path}: {exc.strerror}")]
    if not stat.S_ISDIR(info.st_mode):
        return [SpoolFinding(path, f"spool directory {path} is not a directory; move it away"
                             " or change sd")]
    found: list[SpoolFinding] = []
    actual = stat.S_IMODE(info.st_mode)
    if actual != mode:
        wrong = (f"spool directory {path} has mode {format_octal(actual)}, not"
                 f" {format_octal(mode)} (spool_dir_perms)")
        if fix:
            try:
                os.chmod(path, mode)
                found.append(SpoolFinding(path, wrong + "; changed", fixed=True))
            except OSError as exc:
                found.append(SpoolFinding(path, wrong + f"; cannot change it: {exc.strerror}"))
        else:
            found.append(SpoolFinding(path, wrong + "; 'lpfilter checkpc --fix' changes it"))
    found.extend(_shared(path, os.stat(path)))
    room = _no_room(path)
    if room:
        found.append(SpoolFinding(path, room))
    elif not os.access(path, os.W_OK | os.X_OK):
        found.append(SpoolFinding(path, f"spool directory {path} is not writable by this user"
                                  f" (uid {os.getuid()}); run lpfilter as its owner or chown it"))
    return found


def _shared(path: str, info: os.stat_result) -> list[SpoolFinding]:
    """A spool directory others may write: a hot folder for other users (their print goes
    through the owner's print server), and only when sticky."""
    mode = stat.S_IMODE(info.st_mode)
    if not mode & (stat.S_IWGRP | stat.S_IWOTH):
        return []
    if not mode & stat.S_ISVTX:
        return [SpoolFinding(path, f"spool directory {path} may be written by others but has"
                             f" no sticky bit (mode {format_octal(mode)}): anyone could replace"
                             " lpfilter's folder in it, so print and watch refuse it; make it"
                             " 01777 (a shared hot folder) or 0700")]
    try:
        owner = f"{pwd.getpwuid(info.st_uid).pw_name} (uid {info.st_uid})"
    except KeyError:
        owner = f"uid {info.st_uid}"
    return [SpoolFinding(path, f"spool directory {path} is shared (mode {format_octal(mode)}):"
                         " other users may drop files into it (a hot folder), which the"
                         f" watcher of its owner {owner} takes; 'lpfilter print' by other"
                         " users goes through that watcher's print server (refused, exit 5,"
                         " when none answers)", note=True)]


def _no_room(path: str) -> str | None:
    """A spool on a read-only or full file system (commands meeting it exit 10)."""
    try:
        info = os.statvfs(path)
    except OSError:
        return None
    if info.f_flag & os.ST_RDONLY:
        return (f"spool directory {path} is on a read-only file system: no job can be"
                " queued or sent; remount it read-write (or move sd)")
    free = info.f_bfree if os.geteuid() == 0 else info.f_bavail
    if info.f_blocks and free == 0:
        return (f"spool directory {path} is on a full file system: no job can be queued,"
                f" and queued jobs wait; free space there (df {path})")
    return None
