"""Room in a spool for a new job: the free space, less what transfers in progress were
promised, less the queue's ``minfree``.

A received data file's size is checked before a byte of it is read (server/receive.py),
so that a client cannot fill the disk. Checked against the free space alone, two clients
that each announce 12 MB on a file system with 20 MB free both pass and together fill it
(and then both fail). So each size that passes is promised to its transfer until its job is
queued or dropped (``Claim.release``), and the next check counts it as used. ``minfree``
is LPRng's floor (KiB left free in the spool, checked by lpd as a job arrives): ordinary
users printing through the daemon cannot take the last of the disk from everyone else,
and ``print`` by the spool's owner keeps it too (``check_floor``).
"""
from __future__ import annotations

import os
import threading


class NoRoom(Exception):
    """Not enough room: ``str()`` says how much there is and what is kept free."""


class Claim:
    """Bytes promised to one transfer on one file system; given back once (``release``)."""

    def __init__(self, ledger: Promised, device: int, size: int) -> None:
        self._ledger, self.device, self.size = ledger, device, size

    def release(self) -> None:
        if self.size:
            self._ledger.give_back(self.device, self.size)
            self.size = 0


class Promised:
    """What the daemon's transfers in progress were promised, per file system
    (thread-safe: its connection threads share one)."""

    def __init__(self) -> None:
        self._bytes: dict[int, int] = {}
        self._lock = threading.Lock()

    def take(self, path: str, size: int, keep: int = 0) -> Claim:
        """Promise ``size`` bytes on ``path``'s file system if, after it and every promise
        before it, ``keep`` bytes stay free; NoRoom if not. A file system that cannot be
        asked (statvfs fails) is not checked: its writes say so (SpoolFull)."""
        try:
            info = os.statvfs(path)
        except OSError:
            return Claim(self, 0, 0)
        device = info.f_fsid  # (the file system's id: one call tells both)
        free = info.f_bavail * info.f_frsize
        with self._lock:
            promised = self._bytes.get(device, 0)
            if size + keep > free - promised:
                raise NoRoom(_why(free, promised, keep))
            self._bytes[device] = promised + size
        return Claim(self, device, size)

    def give_back(self, device: int, size: int) -> None:
        with self._lock:
            left = self._bytes.get(device, 0) - size
            if left > 0:
                self._bytes[device] = left
            else:
                self._bytes.pop(device, None)


def _why(free: int, promised: int, keep: int) -> str:
    said = f"only {free} bytes free in the spool"
    if promised:
        said += f", {promised} of them promised to jobs being received"
    if keep:
        said += f", and minfree keeps {keep // 1024} KiB free"
    return said


def check_floor(path: str, size: int, keep: int) -> str | None:
    """For a job written without the daemon (``print`` by the spool's owner): why
    ``size`` more bytes would leave less than ``keep`` free on ``path``'s file system;
    None when they would not (or it cannot be asked)."""
    if keep <= 0:
        return None
    try:
        info = os.statvfs(path)
    except OSError:
        return None
    free = info.f_bavail * info.f_frsize
    return None if size + keep <= free else _why(free, 0, keep)
