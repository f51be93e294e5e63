"""Spool files opened safely and written durably: no symbolic link followed, no FIFO or
device opened, type and owner checked on the open descriptor; atomic replace, directory
fsync, and kernel-side copies.

"No job is ever lost" rests on these: a ticket or a spooled file is either the old one or
the complete new one, and it is on disk (fsync) before anyone is told it exists. They are
on the ground floor because the spool, the locks and the printcap reader all use them.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from lpfilter import logs
from lpfilter.errors import NO_ROOM, AccessError, SpoolFull

log = logs.getLogger(__name__)

CHUNK = 1 << 20
#: How a spool file is opened for reading: a symbolic link is never followed, a FIFO never
#: blocks the open, a terminal never becomes the controlling one.
SAFE_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UnsafeFile(AccessError):
    """A spool entry lpfilter did not make (a symbolic link, a FIFO, another user's file):
    refused and moved aside, never read or sent. ``reason`` says why, for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISLNK(mode):
        return "a symbolic link (never followed)"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def open_regular(path: str, owner: int | None = None) -> tuple[int, os.stat_result]:
    """Open a spool file for reading without following a symbolic link or blocking on a
    FIFO, and check what was opened on the descriptor itself (no lstat-then-open race):
    a regular file, of ``owner`` when given. Raises UnsafeFile, or OSError
    (FileNotFoundError...) when there is nothing to open."""
    try:
        fd = os.open(path, SAFE_OPEN)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile("a symbolic link (never followed)") from None
        if exc.errno == errno.ENXIO:
            raise UnsafeFile("a socket") from None
        raise
    info = os.fstat(fd)
    reason = refusal(info, owner)
    if reason is not None:
        os.close(fd)
        raise UnsafeFile(reason)
    return fd, info


def refusal(info: os.stat_result, owner: int | None) -> str | None:
    """Why an opened spool file is not one to use (not regular, or not ``owner``'s), or None."""
    if not stat.S_ISREG(info.st_mode):
        return kind_of(info.st_mode)
    if owner is not None and info.st_uid != owner:
        return f"owned by uid {info.st_uid}, not by the queue's owner (uid {owner})"
    return None


def standard_input() -> int:
    """Standard input's descriptor, for a ``print`` of ``-`` or of no file. A process
    started with it closed (``<&-``: Python's ``sys.stdin`` is then None) gets one line,
    never an internal error."""
    import sys
    if sys.stdin is None:
        raise AccessError("standard input is closed: name the files to print, or give it"
                          " the job; nothing was printed")
    return sys.stdin.fileno()


def discard(path: str) -> None:
    """Remove ``path``; one already gone is no error. (Not ``contextlib.suppress``: the
    quick commands do not import contextlib, 2.7 M instructions.)"""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def fsync_dir(path: str) -> None:
    """Make a rename or a new name in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_new(directory: str, name: str, mode: int = 0o600,
               owner: int | None = None) -> tuple[int, str]:
    """A new file in ``directory`` named after ``name`` with a random part: (fd, path).
    ``owner``: root gives the file to the queue's owner."""
    fd, tmp = create_unique(directory, f".tmp-{os.getpid()}-", f"-{name}", mode)
    if owner is not None:
        give(fd, owner)
    return fd, tmp


def create_unique(directory: str, prefix: str, suffix: str = "",
                  mode: int = 0o600) -> tuple[int, str]:
    """A new file ``prefix``, a random part, ``suffix`` in ``directory``, open for writing:
    (fd, path). O_EXCL: a name someone planted (a symbolic link to /etc/passwd) is never
    opened. (tempfile.mkstemp's promise, without the ~4 ms its imports cost a filter that
    lpd starts for every job: shutil with its compression modules, random.)"""
    for _ in range(100):
        path = os.path.join(directory, f"{prefix}{os.urandom(4).hex()}{suffix}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                           | os.O_CLOEXEC, mode), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", directory)


def open_lock(path: str, owner: int | None, mode: int = 0o600) -> int:
    """Open (or create) a lock file for reading and writing: never through a symbolic link,
    never blocked by a FIFO; a regular file, of ``owner`` when given. Only a file this
    call created is given to the owner: root never chowns a file someone planted (a hard
    link to /etc/shadow)."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    for _ in range(10):
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            try:
                fd = os.open(path, flags)
            except FileNotFoundError:
                continue  # removed meanwhile: create it
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                raise AccessError(f"{path}: a symbolic link, not a lock file lpfilter made"
                                  " (never followed); remove it") from None
        else:
            if owner is not None:
                give(fd, owner)
        break
    else:
        raise AccessError(f"{path}: keeps disappearing; cannot open this lock file")
    info = os.fstat(fd)
    if refusal(info, owner) is not None:
        os.close(fd)
        what = "a regular file" if stat.S_ISREG(info.st_mode) else kind_of(info.st_mode)
        raise AccessError(f"{path}: {what} of uid {info.st_uid}, not a lock file lpfilter"
                          " made; remove it")
    return fd


def give(fd: int, owner: int) -> None:
    """Root makes what it creates in a queue's folder the queue owner's (who else runs
    that queue's watcher); nobody else can, nor needs to."""
    if os.geteuid() == 0 and owner != 0 and os.fstat(fd).st_uid != owner:
        os.fchown(fd, owner, -1)


def atomic_write(path: str, data: bytes, mode: int = 0o600, *, durable: bool = True,
                 owner: int | None = None) -> None:
    """Replace ``path`` with ``data``: readers see the old or the new file, never half.

    ``durable`` also makes it survive a power cut (fdatasync, then the directory); without
    it the change survives a crash of the process, which is all some states need. A
    symbolic link at ``path`` is replaced, never followed.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = create_new(directory, os.path.basename(path), mode, owner)
    try:
        write_fully(fd, data)
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


def remove_unlocked(directory: str) -> list[str]:
    """Remove the regular files of ``directory`` that no open descriptor holds locked
    (flock): files whose writer died before it finished with them (a writer locks its
    file from creation until it has renamed or removed it). Returns their paths."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        try:
            fd = os.open(entry.path, SAFE_OPEN)
        except OSError:
            continue  # gone meanwhile, or a symbolic link: not a file of a writer
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(entry.path)
        except OSError:
            continue  # locked: still being written (or removed by its writer meanwhile)
        finally:
            os.close(fd)
        removed.append(entry.path)
        log.warning("removed %s: left by a process that ended before it had finished with"
                    " it (a job being spooled or received: no one was told of that job)",
                    entry.path)
    return removed


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


def write_fully(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd`` (a write may take less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _splice(src: int, dst: int, count: int) -> int:
    return os.splice(src, dst, count)


def _read_write(src: int, dst: int, count: int) -> int:
    data = os.read(src, count)
    write_fully(dst, data)
    return len(data)


#: How long ``private_dir`` tries to make its folder while something else keeps taking its
#: name (a user of a shared spool racing it with a link they make and remove in a loop),
#: seconds: each try, a few milliseconds apart at random, is a race they must win.
PRIVATE_DIR_PATIENCE = 2.0


def private_dir(path: str, owner: int, who: str, sd: str) -> None:
    """Create ``path`` (0700, given to ``owner`` when this call made it) or check it: a
    folder that is not ``owner``'s own private directory (another owner, writable by
    others, a link or no directory at all) is moved aside, with a logged line, and made
    again. ``who`` ("queue q") and ``sd`` name it in messages. In a shared (sticky) spool
    nobody can remove the folder once it is made, so it is tried again while the name is
    taken and freed under it (``PRIVATE_DIR_PATIENCE``)."""
    deadline = time.monotonic() + PRIVATE_DIR_PATIENCE
    tries = 0
    while tries < 2 or time.monotonic() < deadline:  # (twice at least, whatever the clock)
        if tries:
            time.sleep((1 + os.urandom(1)[0] % 16) / 1000)  # 1-16 ms: not in step with a loop
        tries += 1
        created = False
        try:
            os.mkdir(path, 0o700)
            created = True
        except FileExistsError:
            pass
        except FileNotFoundError:
            raise  # the folder it goes in is gone (rm -rf): the caller's one line says so
        except OSError as exc:
            if exc.errno in NO_ROOM:
                raise SpoolFull(sd, exc.errno, queue=who.removeprefix("queue ")) from exc
            raise AccessError(f"{who}: cannot create {path}: {exc.strerror}") from exc
        try:
            reason = _not_private(path, owner, created)
        except FileNotFoundError:
            continue  # gone while it was looked at: the name is free again
        if reason is None:
            return
        # A random part: in a shared spool a user could plant a directory at a name
        # known in advance, and the move aside (so the queue) would fail.
        aside = (f"{path}.refused-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
                 f"-{os.urandom(4).hex()}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise AccessError(f"{who}: {path} is {reason} and cannot be moved aside:"
                              f" {exc.strerror}") from exc
        log.warning("%s: refused %s: %s; moved to %s", who, path, reason, aside)
    raise AccessError(f"{who}: cannot make {path}: something in {sd} keeps taking its name"
                      f" ({tries} tries); see who writes there")


def _not_private(path: str, owner: int, created: bool) -> str | None:
    """Why ``path`` is not ``owner``'s private directory (None: it is), looked at through
    a descriptor opened without following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return kind_of(os.lstat(path).st_mode)
    try:
        if created:  # never one someone else made: that is refused
            give(fd, owner)
        found = os.fstat(fd)
    finally:
        os.close(fd)
    if found.st_uid != owner:
        return f"owned by uid {found.st_uid}, not by the queue's owner (uid {owner})"
    if found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by others (mode {stat.S_IMODE(found.st_mode):04o})"
    return None


def same_file(fd: int, path: str) -> bool:
    """Does ``path`` still name the open file ``fd`` (not removed or replaced since)?"""
    try:
        seen = os.lstat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (seen.st_dev, seen.st_ino) == (mine.st_dev, mine.st_ino)
