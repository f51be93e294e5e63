"""A journal's files opened safely: the journal and its lock live in the owner's state
folder, where root must never read or append to a file the owner planted (design §2.7).

Why a module of its own: ``journal`` (the appender) and ``checkpc`` (which looks at a
journal without taking it in, and mends a damaged one) open the same files the same way.
``Held`` is the appender's hold of the lock (``Journal.locked``).
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from lpfilter.errors import AccessError, LockHeld
from lpfilter.safefiles import UnsafeFile, give, refusal
from lpfilter.text import visible

__all__ = ["SAFE_FLAGS", "Held", "held", "open_fresh", "open_owned", "take_lock"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _thread
    from collections.abc import Callable
    from typing import Protocol

    class Journal(Protocol):
        """What ``Held`` uses of a ``journal.Journal`` (whose module imports this one)."""

        path: str
        queue: str
        writable: bool
        holding: bool
        threads: _thread.RLock
        _lock_fd: int
        gone: Callable[[OSError], BaseException | None] | None

        def catch_up(self, *, cut: bool = False, info: os.stat_result | None = None) -> None:
            ...

#: How many times a creator opens a journal that is removed again each time.
TRIES = 8
#: The longest a process waits for a journal's lock. Its holders keep it for milliseconds
#: (a compaction of a full journal, a second or two); one that keeps it longer is stuck
#: (stopped with Ctrl-Z in the middle of a ``print``, or hung): said, not waited for.
LOCK_WAIT = 60.0
#: The pauses between looks at a held lock grow from the first to the last: a holder lets
#: go within a millisecond as a rule, and the worker and a ``print`` take turns at it.
LOCK_POLL = (0.0001, 0.02)
#: /proc/locks is read this far at most, to name a stuck holder.
LOCKS_MAX = 1 << 20
#: Never follow a link, never block on a FIFO, never leak into a child.
SAFE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_owned(path: str, owner: int, flags: int, *, create: bool = True) -> int:
    """Open (or create, with ``create``) ``path`` without following a link; a regular file
    of ``owner`` with one link, checked on the descriptor (UnsafeFile otherwise, its reason
    naming the file). Only a file this call created is given to the owner. A file removed
    while it is opened (an administrator moving the journal aside) is no refusal: a
    creator tries again (a bounded number of times), a reader gets FileNotFoundError."""
    for _ in range(TRIES):
        fd = _open_once(path, owner, flags, create=create)
        if fd >= 0:
            return fd
    raise AccessError(f"{path}: removed each time it was opened ({TRIES} tries); stop"
                      " whatever removes it")


def open_fresh(path: str, owner: int, flags: int, *, queue: str = "") -> int:
    """A new file at ``path`` (a compacted journal's): one a compaction killed half-way
    left is removed first (unlink follows nothing); anything there that unlink cannot
    remove (a directory someone planted) is refused in one line."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        words = f"queue {queue}: " if queue else ""
        raise AccessError(f"{words}{path}: cannot be removed ({exc.strerror}: not a file"
                          " lpfilter made); remove it, so the journal can be compacted",
                          queue=queue) from None
    return open_owned(path, owner, flags)


def _open_once(path: str, owner: int, flags: int, *, create: bool) -> int:
    """One try of ``open_owned``: -1 when the file was removed under it (try again)."""
    fd = -1
    if create:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            give(fd, owner)
        except FileExistsError:
            pass
    if fd < 0:
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            if create:
                return -1  # it was there a moment ago: removed between the two opens
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafeFile(f"{path}: a symbolic link (never followed)") from None
            if exc.errno == errno.ENXIO:
                raise UnsafeFile(f"{path}: a socket") from None
            if exc.errno == errno.EISDIR:
                raise UnsafeFile(f"{path}: a directory") from None
            raise
    info = os.fstat(fd)
    if info.st_nlink == 0 and refusal(info, owner) is None:  # removed since it was opened
        os.close(fd)
        if create:
            return -1
        raise FileNotFoundError(errno.ENOENT, "removed while it was opened", path)
    reason = refusal(info, owner) or (
        f"it has {info.st_nlink} hard links" if info.st_nlink != 1 else None)
    if reason is not None:
        os.close(fd)
        raise UnsafeFile(f"{path}: {reason}")
    return fd


def take_lock(fd: int, path: str, *, queue: str = "", wait: float | None = None) -> None:
    """flock(LOCK_EX) on ``fd`` (the lock file ``path``), waited for at most ``wait``
    seconds (LOCK_WAIT): a blocking flock would wait forever for a stuck holder, and a
    daemon serving the queue would stop without a word. LockHeld then, naming the holder.
    (The journal's lock, and the LPD receiver's, in the same state folder.)"""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    wait = LOCK_WAIT if wait is None else wait
    deadline = time.monotonic() + wait
    pause, longest = LOCK_POLL
    while True:
        time.sleep(pause)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
        pause = min(longest, pause * 2)
    owner = f"queue {queue}: " if queue else ""
    raise LockHeld(f"{owner}the lock {path} has been held for {wait:g} s by another"
                   f" process{_holder(fd)}; nothing was changed: if that process is stuck"
                   " (stopped, or hung), end it and try again", queue=queue)


def held(path: str) -> bool:
    """Does another process hold the lock file ``path`` now (a look, no wait: the daemon
    tries a queue given up on a stuck lock again only once it is let go)? Opened
    read-only, never following a link or blocking; anything but a regular file: no."""
    try:
        fd = os.open(path, os.O_RDONLY | SAFE_FLAGS)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False  # (closing the descriptor lets it go)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """`` (pid N, NAME)``: who holds the flock on ``fd``'s file, from /proc/locks ("" when
    it cannot be told). The name is the holder's own text: made visible."""
    info = os.fstat(fd)
    inode = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks", "rb") as locks:
            text = locks.read(LOCKS_MAX).decode("ascii", "replace")
    except OSError:
        return ""
    for line in text.splitlines():
        fields = line.split()
        if "->" not in fields and len(fields) > 5 and fields[1] == "FLOCK" \
                and fields[5] == inode and fields[4].isdigit():
            pid = fields[4]
            try:
                with open(f"/proc/{pid}/comm", "rb") as comm:
                    name = comm.read(64).decode("utf-8", "replace").strip()
            except OSError:
                return f" (pid {pid})"
            return f" (pid {pid}, {visible(name)})"
    return ""


class Held:
    """``Journal.locked``: threads take turns; the outermost hold takes the file lock and
    catches up. (A class: contextlib costs every quick command 2.7 M instructions.)"""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.outermost = False

    def __enter__(self) -> None:
        journal = self.journal
        if not journal.writable:
            raise RuntimeError("Journal.locked on a read-only journal")
        journal.threads.acquire()
        try:
            if journal.holding:
                return
            take_lock(journal._lock_fd, journal.path + ".lock", queue=journal.queue)
            self.outermost = True
            journal.catch_up(cut=True)
            journal.holding = True
        except BaseException as exc:
            self.__exit__()
            said = journal.gone(exc) if isinstance(exc, OSError) and journal.gone else None
            if said is None:
                raise
            raise said from None

    def __exit__(self, *_exc: object) -> None:
        journal = self.journal
        try:
            if self.outermost:
                self.outermost = False
                journal.holding = False
                fcntl.flock(journal._lock_fd, fcntl.LOCK_UN)
        finally:
            journal.threads.release()
