"""A journal's files opened safely: the journal and its lock live in the owner's state
folder, where root must never read or append to a file the owner planted (design §2.7).

Why a module of its own: ``journal`` (the appender) and ``checkpc`` (which looks at a
journal without taking it in, and mends a damaged one) open the same files the same way.
"""
from __future__ import annotations

import errno
import os

from lpfilter.errors import AccessError
from lpfilter.safefiles import UnsafeFile, give, refusal

__all__ = ["SAFE_FLAGS", "open_owned"]

#: How many times a creator opens a journal that is removed again each time.
TRIES = 8
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
