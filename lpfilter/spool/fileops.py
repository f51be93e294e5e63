"""Durable file operations: atomic replace, directory fsync, and kernel-side copies.

"No job is ever lost" rests on these: a ticket or a spooled file is either the old one or
the complete new one, and it is on disk (fsync) before anyone is told it exists.
"""
from __future__ import annotations

import errno
import os

CHUNK = 1 << 20


def fsync_dir(path: str) -> None:
    """Make a rename or a new name in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: readers see the old or the new file, never half.

    ``durable`` also makes it survive a power cut (fdatasync, then the directory); without
    it the change survives a crash of the process, which is all some states need.
    """
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fdatasync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(directory)


class TooLarge(Exception):
    """The copy went past its byte limit (the printcap's mx)."""


def copy_fd(src: int, dst: int, limit: int | None = None) -> int:
    """Copy all of ``src`` to ``dst`` in the kernel where it can, in bounded chunks.

    copy_file_range lets the file system share blocks (a reflink) or copy them without
    passing through Python; sendfile and splice cover other pairs; read/write is the last
    resort. Memory stays at one chunk whatever the size. Returns the bytes copied.
    """
    total = 0
    for method in (_copy_file_range, _splice, _read_write):
        try:
            while True:
                want = CHUNK if limit is None else min(CHUNK, limit + 1 - total)
                done = method(src, dst, want)
                if done == 0:
                    return total
                total += done
                if limit is not None and total > limit:
                    raise TooLarge(total)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP,
                                 errno.EBADF, errno.ESPIPE) or total:
                raise
    return total  # pragma: no cover - _read_write never raises the errors above


def _copy_file_range(src: int, dst: int, count: int) -> int:
    return os.copy_file_range(src, dst, count)


def _splice(src: int, dst: int, count: int) -> int:
    return os.splice(src, dst, count)


def _read_write(src: int, dst: int, count: int) -> int:
    data = os.read(src, count)
    view = memoryview(data)
    while view:
        view = view[os.write(dst, view):]
    return len(data)
