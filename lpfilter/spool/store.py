"""A queue's spool directory on disk: tickets, data files, job numbers, all written safely.

Layout, inside the queue's ``sd``::

    sd/                    the hot folder: files dropped here become jobs
    sd/.lpfilter/jobs/     NNNNNN.job (the ticket, JSON) and NNNNNN.data (the bytes)
    sd/.lpfilter/tmp/      files being spooled; renamed into jobs/ when complete
    sd/.lpfilter/refused/  symlinks, FIFOs and devices dropped into sd, moved aside
    sd/.lpfilter/seq       the last job number; tickets.lock guards ticket changes

A job exists once its ticket is in jobs/ (written after its data, both fsynced); a data
file without a ticket is a job interrupted while being spooled and is recovered.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator

from lpfilter.errors import NO_ROOM, AccessError, SpoolFull
from lpfilter.spool.fileops import atomic_write, fsync_dir
from lpfilter.spool.job import QUEUED, Job

log = logging.getLogger(__name__)

STATE_DIR = ".lpfilter"
#: A data file without a ticket older than this is a crashed submission (not one in flight).
ORPHAN_AGE = 60.0
#: An active job's ticket gets its bytes_sent at most this often (for ``status``).
PROGRESS_EVERY = 1.0
#: A ticket's name; ``.tmp-PID-NNNNNN.job`` is one being written, not a job.
_TICKET = re.compile(r"^\d+\.job$")


class SpoolStore:
    """The jobs of one queue, in its spool directory ``sd``."""

    def __init__(self, sd: str, queue: str) -> None:
        self.sd = sd
        self.queue = queue
        self.state = os.path.join(sd, STATE_DIR)
        self.jobs_dir = os.path.join(self.state, "jobs")
        self.tmp_dir = os.path.join(self.state, "tmp")
        self.refused_dir = os.path.join(self.state, "refused")
        self._fds: dict[str, int] = {}
        self._parsed: dict[str, tuple[tuple[int, int, int], Job]] = {}

    # --- set-up -----------------------------------------------------------------------
    def require_dir(self) -> None:
        """A missing ``sd`` is the same error (ACCESS) for every command that meets it."""
        if not os.path.isdir(self.sd):
            raise AccessError(f"queue {self.queue}: spool directory {self.sd} does not exist;"
                              " run 'lpfilter checkpc --fix' to create it")

    @contextlib.contextmanager
    def room(self) -> Iterator[None]:
        """Writes in the spool: a full, over-quota or read-only file system is SpoolFull,
        naming ``sd`` and what to do (an expected condition, not an internal error)."""
        try:
            yield
        except OSError as exc:
            if exc.errno in NO_ROOM:
                raise SpoolFull(self.sd, exc.errno, queue=self.queue) from exc
            raise

    def explain(self, exc: OSError) -> AccessError | None:
        """An OSError met while serving the queue, as the one-line error it is when the
        spool directory was removed or made unwritable under a watcher (None: another)."""
        if isinstance(exc, PermissionError):
            return AccessError(f"queue {self.queue}: you (uid {os.getuid()}) may no longer"
                               f" write {exc.filename or self.sd}; give the spool directory"
                               " back to the user who runs the watcher")
        if isinstance(exc, FileNotFoundError) and not os.path.isdir(self.jobs_dir):
            return AccessError(f"queue {self.queue}: the spool directory {self.sd} (or its"
                               f" {STATE_DIR} folder) was removed while the queue was served")
        return None

    def ensure(self) -> None:
        """Create lpfilter's folders in ``sd``; a missing or read-only ``sd`` is a clear error."""
        self.require_dir()
        with contextlib.suppress(OSError):
            if os.statvfs(self.sd).f_flag & os.ST_RDONLY:  # os.access says only "no"
                raise SpoolFull(self.sd, errno.EROFS, queue=self.queue)
        if not os.access(self.sd, os.W_OK | os.X_OK):
            raise AccessError(f"queue {self.queue}: you (uid {os.getuid()}) may not write the"
                              f" spool directory {self.sd}; ask its owner, or print as them")
        for path in (self.state, self.jobs_dir, self.tmp_dir, self.refused_dir):
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                if exc.errno in NO_ROOM:
                    raise SpoolFull(self.sd, exc.errno, queue=self.queue) from exc
                raise AccessError(f"queue {self.queue}: cannot create {path}:"
                                  f" {exc.strerror}") from exc
            if not os.access(path, os.W_OK | os.X_OK):
                raise AccessError(f"queue {self.queue}: you (uid {os.getuid()}) may not write"
                                  f" {path}; it belongs to the user who runs this queue's"
                                  " watcher: print as that user")

    # --- names ------------------------------------------------------------------------
    def data_path(self, job_id: str) -> str:
        return os.path.join(self.jobs_dir, f"{job_id}.data")

    def ticket_path(self, job_id: str) -> str:
        return os.path.join(self.jobs_dir, f"{job_id}.job")

    def cancel_path(self, job_id: str) -> str:
        return os.path.join(self.jobs_dir, f"{job_id}.cancel")

    @contextlib.contextmanager
    def _flock(self, name: str) -> Iterator[int]:
        """flock a small file in the state folder; its descriptor stays open for reuse."""
        fd = self._fds.get(name)
        if fd is None:
            with self.room():
                fd = os.open(os.path.join(self.state, name), os.O_RDWR | os.O_CREAT, 0o600)
            self._fds[name] = fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock files kept open (a store can still be used afterwards)."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def tickets_locked(self) -> contextlib.AbstractContextManager[int]:
        """Hold while reading and rewriting a ticket, so two processes never interleave."""
        return self._flock("tickets.lock")

    def next_id(self) -> str:
        """The next job number of this queue (six digits, more when it grows)."""
        with self._flock("seq") as fd, self.room():
            raw = os.pread(fd, 32, 0).strip()
            number = int(raw) + 1 if raw.isdigit() else 1
            data = str(number).encode().ljust(len(raw))  # rewritten in place: no new block
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        return f"{number:06d}"

    # --- tickets ----------------------------------------------------------------------
    def write(self, job: Job, *, durable: bool = True) -> None:
        """Store the ticket atomically; ``durable`` (the default) also survives a power cut."""
        with self.room():
            atomic_write(self.ticket_path(job.id), job.to_json().encode(), durable=durable)

    def read(self, job_id: str) -> Job | None:
        try:
            with open(self.ticket_path(job_id), encoding="utf-8") as handle:
                return Job.from_json(handle.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("queue %s: job %s: unreadable ticket (%s); left in %s", self.queue,
                        job_id, exc, self.jobs_dir)
            return None

    def jobs(self) -> list[Job]:
        """Every job with a readable ticket, in arrival order (copies: change and ``write``).

        A ticket is parsed again only when its file changed (tickets are replaced, never
        edited in place, so inode, size and mtime tell): a queue keeps many finished
        tickets, and a watcher lists them on every pass.
        """
        try:
            entries = [e for e in os.scandir(self.jobs_dir) if _TICKET.match(e.name)]
        except FileNotFoundError:
            return []
        found: list[Job] = []
        cache: dict[str, tuple[tuple[int, int, int], Job]] = {}
        for entry in sorted(entries, key=lambda e: (len(e.name), e.name)):
            job_id = entry.name[:-4]
            try:
                info = entry.stat()
            except FileNotFoundError:
                continue
            key = (info.st_ino, info.st_size, info.st_mtime_ns)
            cached = self._parsed.get(job_id)
            job = cached[1] if cached is not None and cached[0] == key else self.read(job_id)
            if job is None:
                continue
            cache[job_id] = (key, job)
            found.append(dataclasses.replace(job))
        self._parsed = cache
        return found

    def commit(self, job: Job, staged: str) -> None:
        """Move a fully written data file from tmp/ into jobs/ and write its ticket; if the
        ticket cannot be written the data file is removed (the job was never announced)."""
        with self.room():
            os.replace(staged, self.data_path(job.id))
        try:
            self.write(job)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.data_path(job.id))
            raise

    def stage(self, job_id: str) -> tuple[int, str]:
        """A new file in tmp/ for a job's data: (fd, path)."""
        path = os.path.join(self.tmp_dir, f"{job_id}.data")
        with self.room():
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), path

    def remove(self, job: Job, *, keep_data: bool = False) -> None:
        """Delete a job's data (unless kept) and ticket; the ticket goes last."""
        paths = [self.cancel_path(job.id)] + ([] if keep_data else [self.data_path(job.id)])
        with self.room():
            for path in paths + [self.ticket_path(job.id)]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            fsync_dir(self.jobs_dir)

    def drop_data(self, job: Job) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.data_path(job.id))

    def has_data(self, job: Job) -> bool:
        return os.path.exists(self.data_path(job.id))

    # --- cancel requests (from another process, while a job is being sent) -------------
    def request_cancel(self, job_id: str) -> None:
        with self.room():
            atomic_write(self.cancel_path(job_id), b"cancel\n")

    def clear_cancel(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.cancel_path(job_id))

    def cancel_requested(self, job_id: str) -> bool:
        return os.path.exists(self.cancel_path(job_id))

    # --- recovery ---------------------------------------------------------------------
    def recover_orphans(self, user: str) -> list[Job]:
        """Tickets for data files whose submission crashed before the ticket was written."""
        recovered: list[Job] = []
        now = time.time()
        try:
            names = os.listdir(self.jobs_dir)
        except FileNotFoundError:
            return recovered
        tickets = {n[:-4] for n in names if _TICKET.match(n)}
        for name in names:
            job_id = name[:-5]
            if not name.endswith(".data") or not job_id.isdigit() or job_id in tickets:
                continue
            path = os.path.join(self.jobs_dir, name)
            try:
                info = os.stat(path)
            except FileNotFoundError:
                continue
            if now - max(info.st_mtime, info.st_ctime) < ORPHAN_AGE:
                continue
            job = Job(job_id, self.queue, user, f"recovered-{job_id}", info.st_size,
                      info.st_mtime, state=QUEUED, last_error="recovered after a crash while"
                      " it was being spooled")
            self.write(job)
            log.warning("queue %s: job %s: recovered a spooled file that had no ticket",
                        self.queue, job_id)
            recovered.append(job)
        return recovered


class ProgressRecorder:
    """Puts an active job's byte count in its ticket for ``status``, at most once every
    PROGRESS_EVERY seconds and without fsync: a 1 GiB send costs a few small renames.

    ``record`` runs from the send's own checks (every chunk, and every tick while the
    printer takes nothing), so a stalled send shows what it got to."""

    def __init__(self, store: SpoolStore, job: Job) -> None:
        self.store = store
        self.job = job
        self.sent = 0
        self._written = 0
        self._at = time.monotonic()
        self._full = False

    def record(self) -> None:
        if self.sent == self._written or time.monotonic() - self._at < PROGRESS_EVERY:
            return
        self._at = time.monotonic()
        self._written = self.job.bytes_sent = self.sent
        try:
            with self.store.tickets_locked():
                self.store.write(self.job, durable=False)
        except SpoolFull as exc:  # news for status, not worth failing a send for
            if not self._full:
                log.warning("%s; the job's progress is not shown meanwhile", exc)
            self._full = True
