"""Spool directories: are they there, private and writable, and can checkpc --fix make them so.

A queue's jobs live in its ``sd`` directory; it must exist before the first job is
written, belong to no other queue, and not be writable by others (anyone who can write
there can print as anyone or remove jobs).
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from lpfilter.printcap.datatypes import format_octal


@dataclass(frozen=True, slots=True)
class SpoolFinding:
    """One problem with a spool directory; ``fixed`` says --fix mended it."""

    path: str
    message: str
    fixed: bool = False


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
    room = _no_room(path)
    if room:
        found.append(SpoolFinding(path, room))
    elif not os.access(path, os.W_OK | os.X_OK):
        found.append(SpoolFinding(path, f"spool directory {path} is not writable by this user"
                                  f" (uid {os.getuid()}); run lpfilter as its owner or chown it"))
    return found


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
