"""Putting a job into a queue: its data on disk, complete and fsynced, before anything else.

The data is copied by the kernel (copy_file_range: a reflink where the file system has
them), never read through Python; the printcap's limits (``mx`` size in KiB, ``mc``
copies) are enforced with a clear refusal. Many files (``print FILE...``) are committed
in batches of up to BATCH: each staged, the batch's files fsynced from a few threads
at once, then renamed into jobs/, one fsync of jobs/, their records in one write and one
fdatasync of the journal. A small file (INLINE_MAX) is read, not staged: its bytes go into
the journal just before its record, in the same write (spool/jobdata.py says why).
"""
from __future__ import annotations

import errno
import os
import stat
import time

from lpfilter.errors import AccessError, JobRefused, SpoolFull
from lpfilter.job import Job, JobState
from lpfilter.printcap.hostmatch import host_name
from lpfilter.safefiles import TooLarge, copy_fd, discard, standard_input
from lpfilter.spool.control import ControlFile, admit, holds_new
from lpfilter.spool.jobdata import INLINE_MAX, Source, inline_allowed
from lpfilter.spool.joboptions import JobOptions as JobOptions  # (see there)
from lpfilter.spool.joboptions import check_copies as check_copies

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from lpfilter.printcap import Entry
    from lpfilter.spool.store import SpoolStore

#: Files of one ``print`` committed together (one flush of jobs/ and of the journal).
BATCH = 64
#: Threads that fsync a batch's data files.
SYNC_THREADS = 8
#: A staged job: the job, its staged data file (its descriptor, locked) or its bytes (-1).
Staged = tuple[Job, Source, int]


def _open_source(path: str | None) -> tuple[int, str, int | None]:
    """(fd, display name, size if known) of a file to print, or of standard input."""
    if path is None or path == "-":
        return standard_input(), "(standard input)", None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise AccessError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AccessError(f"{path}: is a directory, not a file to print") from None
    except PermissionError:
        raise AccessError(f"{path}: you may not read this file") from None
    except OSError as exc:
        raise AccessError(f"{path}: cannot open: {exc.strerror}") from None
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        os.close(fd)
        raise AccessError(f"{path}: is a directory, not a file to print")
    return fd, path, info.st_size if stat.S_ISREG(info.st_mode) else None


def submit(entry: Entry, store: SpoolStore, path: str | None, options: JobOptions) -> Job:
    """Spool one file (None: standard input) as a job of ``entry``'s queue."""
    (job,) = _commit(store, [_stage(_Spooling(entry, store, 1), path, options)])
    return job


def submit_all(entry: Entry, store: SpoolStore, paths: Sequence[str | None],
               options: JobOptions, *, control: ControlFile | None = None) -> Iterator[Job]:
    """Spool many files, yielding each job once it is on disk, a batch at a time; a file
    refused stops the rest, after the ones before it are spooled (as one by one).
    ``control``: the caller's view of the queue's lpc state, if it has one."""
    spooling = _Spooling(entry, store, len(paths), control)
    batch: list[Staged] = []
    try:
        for path in paths:
            batch.append(_stage(spooling, path, options))
            if len(batch) >= BATCH:
                yield from _commit(store, batch)
    except BaseException:
        yield from _commit(store, batch)
        raise
    yield from _commit(store, batch)


class _Spooling:
    """What a ``print`` of many files looks up once, not once a file (a third of its time
    for 1000 files, bench/README.md): this host's name, the queue's lpc state (read again
    only when its file changed) and job numbers, reserved a batch at a time by one record."""

    def __init__(self, entry: Entry, store: SpoolStore, count: int,
                 control: ControlFile | None = None) -> None:
        self.entry, self.store, self.left = entry, store, count
        self.host = host_name()
        self.control = control or ControlFile.of(entry)
        self._ids: list[str] = []
        #: How many bytes may still go into the journal (0: none; see spool/jobdata.py).
        self.inline_left = store.inline_room() if inline_allowed(entry) else 0

    def next_id(self) -> str:
        if not self._ids:  # (a file refused after it leaves the rest of a batch's unused)
            self._ids = self.store.next_ids(max(1, min(self.left, BATCH)))
        self.left -= 1
        return self._ids.pop(0)


def _commit(store: SpoolStore, batch: list[Staged]) -> list[Job]:
    """The staged jobs into the queue (``batch`` emptied), their data made durable first;
    their staged files stay locked until then (see SpoolStore.stage)."""
    staged, batch[:] = list(batch), []
    try:
        if staged:
            try:
                _sync_all(store, [fd for _, _, fd in staged if fd >= 0])
            except BaseException:  # none of them is spooled: no staged file stays behind
                for _, path, _ in staged:
                    if isinstance(path, str):
                        discard(path)
                raise
            store.commit_all([(job, source) for job, source, _ in staged])
    finally:
        for _, _, fd in staged:
            if fd >= 0:
                os.close(fd)
    return [job for job, _, _ in staged]


def _sync_all(store: SpoolStore, fds: list[int]) -> None:
    """fsync every staged file, from SYNC_THREADS threads at once: the file system commits
    concurrent syncs together (64 new files of 1 KiB: 12 ms one after another, 6 ms from
    8 threads, on this machine's disk)."""
    if len(fds) < 3:
        with store.room():
            for fd in fds:
                os.fsync(fd)
        return
    errors: list[OSError] = []

    def sync(part: list[int]) -> None:
        try:
            for fd in part:
                os.fsync(fd)
        except OSError as exc:
            errors.append(exc)

    import threading  # (only here: 0.7 ms of every print's start)
    threads = [threading.Thread(target=sync, args=(fds[i::SYNC_THREADS],), daemon=True)
               for i in range(min(SYNC_THREADS, len(fds)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        with store.room():  # a full disk: SpoolFull, as a sync in this thread would be
            raise errors[0]


def _stage(spooling: _Spooling, path: str | None, options: JobOptions) -> Staged:
    """One file copied into tmp/ (or read, when small), its job made (not yet in the
    queue, nor synced)."""
    entry = spooling.entry
    check_copies(entry, options.copies)
    control = spooling.control.read()
    admit(entry, control)  # lpc disable
    limit_kib = entry.number("mx")
    limit = limit_kib * 1024 if limit_kib > 0 else None
    src, shown, size = _open_source(path)
    too_big = JobRefused(f"{shown}: larger than queue {entry.name}'s limit of {limit_kib} KiB"
                         " (mx in the printcap)", queue=entry.name)
    try:
        if size is not None and limit is not None and size > limit:
            raise too_big
        if size == 0:
            raise JobRefused(f"{shown}: empty file; nothing to print", queue=entry.name)
        _keep_floor(spooling, size or 0)
        job_id = spooling.next_id()
        source, fd, copied = _take(spooling, job_id, src, size, limit, too_big)
        if copied == 0:
            if fd >= 0:
                _drop_staged(fd, source)
            raise JobRefused(f"{shown}: empty; nothing to print", queue=entry.name)
    finally:
        if path is not None and path != "-":
            os.close(src)
    name, file_name = options.names(path)
    job = Job(job_id, entry.name, options.user, name, copied, time.time(),
              title=options.title, copies=options.copies, host=spooling.host,
              job_class=options.job_class, no_banner=options.no_banner,
              print_format=options.print_format,
              extra=options.extra(file_name),
              state=JobState.HELD if options.hold or holds_new(entry, control)
              else JobState.QUEUED)
    return job, source, fd


def _keep_floor(spooling: _Spooling, size: int) -> None:
    """The queue's minfree, as LPRng's lpd keeps it for every job (spool/room.py)."""
    keep = spooling.entry.number("minfree")
    if keep > 0:
        from lpfilter.spool.room import check_floor
        short = check_floor(spooling.store.tmp_dir, size, keep * 1024)
        if short:
            raise SpoolFull(spooling.store.sd, errno.ENOSPC, queue=spooling.entry.name,
                            floor=short)


def _take(spooling: _Spooling, job_id: str, src: int, size: int | None, limit: int | None,
          too_big: JobRefused) -> tuple[Source, int, int]:
    """A file's bytes: (its bytes, -1, their length) when it is small enough to go into
    the journal, else (the staged file, its descriptor, the bytes copied)."""
    if size is not None and size <= min(INLINE_MAX, spooling.inline_left):
        data = _read_at_most(src, INLINE_MAX + 1)
        if len(data) <= INLINE_MAX:  # (else it grew since: staged after all)
            if limit is not None and len(data) > limit:
                raise too_big
            spooling.inline_left -= len(data)
            return data, -1, len(data)
        os.lseek(src, 0, os.SEEK_SET)
    store = spooling.store
    fd, staged = store.stage(job_id)
    try:
        try:
            with store.room():
                copied = copy_fd(src, fd, limit)
        except TooLarge:
            raise too_big from None
    except BaseException:
        _drop_staged(fd, staged)
        raise
    return staged, fd, copied


def _drop_staged(fd: int, staged: Source) -> None:
    os.close(fd)
    if isinstance(staged, str):
        discard(staged)


def _read_at_most(fd: int, count: int) -> bytes:
    """Up to ``count`` bytes of a file, to its end."""
    parts, left = [], count
    while left > 0:
        part = os.read(fd, left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)
