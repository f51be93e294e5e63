"""A queue's spool directory on disk: tickets, data files, job numbers, all written safely.

Layout, inside the queue's ``sd``::

    sd/                    the hot folder: files dropped here become jobs
    sd/.lpfilter/jobs/     NNNNNN.job (the ticket, JSON) and NNNNNN.data (the bytes)
    sd/.lpfilter/tmp/      files being spooled, locked by their writer; then moved to jobs/
    sd/.lpfilter/refused/  symlinks, FIFOs and devices dropped into sd, moved aside
    sd/.lpfilter/seq       the last job number; tickets.lock guards ticket changes

A job exists once its ticket is in jobs/ (written after its data, both fsynced); a data
file without a ticket is a job interrupted while being spooled and is recovered.

``.lpfilter`` and everything in it belong to the queue's owner, the owner of ``sd``
(root when ``sd`` is root's): only the owner or root may spool or serve jobs there, root
gives what it creates to the owner, and a folder, ticket or data file of anyone else (or a
symbolic link, a FIFO...) is refused and moved aside, never read or sent. Files are opened
without following symbolic links and checked on the open descriptor.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import stat
import threading
from collections.abc import Iterator

from lpfilter.errors import NO_ROOM, AccessError, SpoolFull
from lpfilter.job import FINISHED, Job, user_name
from lpfilter.safefiles import (UnsafeFile, atomic_write, fsync_dir, give, open_lock, open_regular,
                                private_dir)
from lpfilter.spool.recovery import recover_orphans

log = logging.getLogger(__name__)

STATE_DIR = ".lpfilter"
#: A ticket's name; ``.tmp-PID-NNNNNN.job`` is one being written, not a job.
_TICKET = re.compile(r"^\d+\.job$")
#: A ticket is a few hundred bytes of JSON; more is not a ticket lpfilter wrote.
TICKET_MAX = 1 << 20
#: Write permission for group or others.
_SHARED = stat.S_IWGRP | stat.S_IWOTH


class SpoolStore:
    """The jobs of one queue, in its spool directory ``sd``."""

    def __init__(self, sd: str, queue: str) -> None:
        self.sd, self.queue = sd, queue
        self.state = os.path.join(sd, STATE_DIR)
        self.jobs_dir = os.path.join(self.state, "jobs")
        self.tmp_dir = os.path.join(self.state, "tmp")
        self.refused_dir = os.path.join(self.state, "refused")
        self._fds: dict[str, int] = {}
        self._threads = threading.RLock()  # threads share the lock files' descriptors
        self._parsed: dict[str, tuple[tuple[int, int, int], Job]] = {}
        self._owner: int | None = None
        #: Set by ``ensure``: this process (the owner or root) moves refused entries aside.
        self._tidy = False

    @property
    def owner(self) -> int:
        """The queue's owner: the owner of ``sd`` (root when ``sd`` is root's)."""
        if self._owner is None:
            self._owner = os.stat(self.sd).st_uid
        return self._owner

    # --- set-up -----------------------------------------------------------------------
    def require_dir(self) -> None:
        """A missing ``sd`` is the same error (ACCESS) for every command that meets it.
        One behind a directory closed to this user is not called missing: reading or
        writing it says so, naming it."""
        if not os.path.isdir(self.sd) and not _closed_above(self.sd):
            raise AccessError(f"queue {self.queue}: spool directory {self.sd} does not exist;"
                              " run 'lpfilter checkpc --fix' to create it", queue=self.queue)

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
                               " back to the user who runs the watcher", queue=self.queue)
        if isinstance(exc, FileNotFoundError) and not os.path.isdir(self.jobs_dir):
            return AccessError(f"queue {self.queue}: the spool directory {self.sd} (or its"
                               f" {STATE_DIR} folder) was removed while the queue was served",
                               queue=self.queue)
        return None

    def ensure(self, action: str = "print") -> None:
        """Create lpfilter's folders in ``sd`` (or check them); a missing or read-only
        ``sd``, or one that is not ours, is a clear error. ``action`` (print, watch,
        change) picks the advice."""
        self.check(action)
        for path in (self.state, self.jobs_dir, self.tmp_dir, self.refused_dir):
            self._make_dir(path)
        self._tidy = True

    def check(self, action: str = "print") -> None:
        """Whether this process may make lpfilter's folders in ``sd``: an error (AccessError,
        SpoolFull) saying why not, so a caller that only may make them need not copy it."""
        self.require_dir()
        with contextlib.suppress(OSError):
            if os.statvfs(self.sd).f_flag & os.ST_RDONLY:  # os.access says only "no"
                raise SpoolFull(self.sd, errno.EROFS, queue=self.queue)
        if not os.access(self.sd, os.W_OK | os.X_OK):
            raise AccessError(f"queue {self.queue}: you (uid {os.getuid()}) may not write the"
                              f" spool directory {self.sd}; ask its owner, or print as them",
                              queue=self.queue)
        info = os.stat(self.sd)
        self._owner = info.st_uid
        if info.st_mode & _SHARED and not info.st_mode & stat.S_ISVTX:
            raise AccessError(f"queue {self.queue}: spool directory {self.sd} may be written"
                              f" by others but has no sticky bit (mode"
                              f" {stat.S_IMODE(info.st_mode):04o}): anyone could replace"
                              " lpfilter's folder in it; make it 01777 (a shared hot folder)"
                              " or 0700", queue=self.queue)
        if os.geteuid() not in (0, info.st_uid):
            owner = f"{user_name(info.st_uid)} (uid {info.st_uid})"
            advice = (f"drop the file into {self.sd} instead: the owner's watcher takes it from"
                      " there (or wait for the print server)" if action == "print" else
                      "run it as root" if info.st_uid == 0 else
                      f"run it as {user_name(info.st_uid)} or root")
            raise AccessError(f"queue {self.queue}: spool directory {self.sd} is shared; its"
                              f" jobs belong to its owner {owner} only: {advice}",
                              queue=self.queue)

    def _make_dir(self, path: str) -> None:
        """One of lpfilter's folders: the owner's own private directory (see private_dir)."""
        private_dir(path, self.owner, f"queue {self.queue}", self.sd)

    # --- names ------------------------------------------------------------------------
    def data_path(self, job_id: str) -> str:
        return os.path.join(self.jobs_dir, f"{job_id}.data")

    def ticket_path(self, job_id: str) -> str:
        return os.path.join(self.jobs_dir, f"{job_id}.job")

    def cancel_path(self, job_id: str) -> str:
        return os.path.join(self.jobs_dir, f"{job_id}.cancel")

    @contextlib.contextmanager
    def _flock(self, name: str) -> Iterator[int]:
        """flock a small file in the state folder (its fd kept; threads sharing it queue first)."""
        with self._threads:
            fd = self._fds.get(name)
            if fd is None:
                path = os.path.join(self.state, name)
                try:
                    with self.room():
                        fd = self._fds[name] = open_lock(path, self.owner)
                except PermissionError:
                    raise AccessError(f"queue {self.queue}: you (uid {os.getuid()}) may not"
                                      f" write {path} in spool directory {self.sd}; it"
                                      " belongs to the user who runs this queue's watcher",
                                      queue=self.queue) from None
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock files kept open (a store can still be used afterwards)."""
        while self._fds:
            os.close(self._fds.popitem()[1])

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
            atomic_write(self.ticket_path(job.id), job.to_json().encode(), durable=durable,
                         owner=self.owner)

    def read(self, job_id: str) -> Job | None:
        """A job's ticket; a symbolic link, a FIFO or another user's file is refused."""
        path = self.ticket_path(job_id)
        try:
            fd, _ = open_regular(path, self.owner)
        except FileNotFoundError:
            return None
        except UnsafeFile as exc:
            self.refuse(path, exc.reason)
            return None
        except OSError as exc:
            log.warning("queue %s: job %s: unreadable ticket (%s); left in %s", self.queue,
                        job_id, exc.strerror, self.jobs_dir)
            return None
        try:
            with open(fd, "rb") as handle:
                data = handle.read(TICKET_MAX + 1)
            if len(data) > TICKET_MAX:
                raise ValueError(f"larger than {TICKET_MAX} bytes")
            job = Job.from_json(data.decode("utf-8"))
            if job.id != job_id:  # the id names the job's files: never a path of its own
                raise ValueError(f"its id {job.id!r} is not its file name")
            return job
        except (OSError, ValueError, TypeError) as exc:
            log.warning("queue %s: job %s: unreadable ticket (%s); left in %s", self.queue,
                        job_id, exc, self.jobs_dir)
            return None

    def refuse(self, path: str, reason: str) -> str:
        """A job-folder entry that lpfilter did not make: moved aside (by the owner or root),
        with one line naming it; never read or sent. Returns where it went."""
        if not self._tidy:
            log.warning("queue %s: %s: %s; not read", self.queue, path, reason)
            return "left where it is"
        from lpfilter.spool.hotfolder import refuse  # rare; its imports cost every command
        where = refuse(self.refused_dir, path)
        log.warning("queue %s: refused %s: %s; %s", self.queue, path, reason, where)
        return where

    def open_data(self, job_id: str) -> int | str:
        """A job's data file, opened for sending (the caller closes it): a regular file of
        the queue's owner, never a symbolic link or a FIFO. Otherwise why the job fails:
        a file lpfilter did not make is refused and moved aside."""
        path = self.data_path(job_id)
        try:
            return open_regular(path, self.owner)[0]
        except UnsafeFile as exc:
            return (f"its data file was refused, never sent: {exc.reason};"
                    f" {self.refuse(path, exc.reason)}")
        except OSError as exc:
            return f"cannot open its data file: {exc.strerror}"

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
        except OSError as exc:
            raise self._unreadable(exc) from None
        found: list[Job] = []
        cache: dict[str, tuple[tuple[int, int, int], Job]] = {}
        for entry in sorted(entries, key=lambda e: (len(e.name), e.name)):
            job_id = entry.name[:-4]
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._unreadable(exc) from None
            key = (info.st_ino, info.st_size, info.st_mtime_ns)
            cached = self._parsed.get(job_id)
            job = cached[1] if cached is not None and cached[0] == key else self.read(job_id)
            if job is None:
                continue
            cache[job_id] = (key, job)
            found.append(job.copy())
        self._parsed = cache
        return found

    def _unreadable(self, exc: OSError) -> AccessError:
        """The jobs cannot be listed: one line naming the spool directory (exit 5)."""
        if isinstance(exc, PermissionError):
            return AccessError(f"queue {self.queue}: you (uid {os.getuid()}) may not read the"
                               f" jobs in spool directory {self.sd}; ask its owner, or run"
                               " this as the user who runs its watcher", queue=self.queue)
        return AccessError(f"queue {self.queue}: cannot read the jobs in spool directory"
                           f" {self.sd} ({self.jobs_dir}: {exc.strerror})", queue=self.queue)

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
        """A new file in tmp/ for a job's data: (fd, path), locked till closed. Orphan
        cleanup (remove_unlocked) may take the file between its creation and our lock
        (it holds the lock only while it unlinks: we wait); once locked it cannot, so
        the name is checked to still be ours after the lock. Immediate, unlike an age
        limit: a file a killed process left is removed at the next start."""
        for attempt in range(5):
            path = os.path.join(self.tmp_dir, f"{job_id}{'-%d' % attempt if attempt else ''}"
                                ".data")
            with self.room():
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if _same_file(fd, path):
                    give(fd, self.owner)
                    return fd, path
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # removed by a cleanup before our lock: make it again
        raise AccessError(f"queue {self.queue}: staged files in {self.tmp_dir} keep"
                          " vanishing (something else removes them)", queue=self.queue)

    def remove(self, job: Job, *, keep_data: bool = False) -> None:
        """Delete a job's data (unless kept) and ticket; the ticket goes last."""
        paths = [self.cancel_path(job.id)] + ([] if keep_data else [self.data_path(job.id)])
        with self.room():
            for path in paths + [self.ticket_path(job.id)]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            fsync_dir(self.jobs_dir)

    def prune(self, keep: int, max_age: float, now: float, keep_recent: float) -> None:
        """Keep the ``keep`` newest finished tickets (and any younger than
        ``keep_recent``, or whose data is kept); ``max_age`` > 0 also drops older ones."""
        finished = sorted((j for j in self.jobs() if j.state in FINISHED),
                          key=lambda j: j.finished or 0.0, reverse=True)
        for rank, job in enumerate(finished):
            age = now - (job.finished or now)
            if age < keep_recent or self.has_data(job):
                continue
            if rank >= keep or (max_age > 0 and age > max_age):
                self.remove(job)

    def drop_data(self, job: Job) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.data_path(job.id))

    def has_data(self, job: Job) -> bool:
        return os.path.lexists(self.data_path(job.id))

    # --- cancel requests (from another process, while a job is being sent) -------------
    def request_cancel(self, job_id: str) -> None:
        with self.room():
            atomic_write(self.cancel_path(job_id), b"cancel\n", owner=self.owner)

    def clear_cancel(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.cancel_path(job_id))

    def cancel_requested(self, job_id: str) -> bool:
        return os.path.lexists(self.cancel_path(job_id))

    # --- recovery ---------------------------------------------------------------------
    def recover_orphans(self, user: str) -> list[Job]:
        """Tickets for data files whose submission crashed before the ticket was written."""
        return recover_orphans(self, user)


def _same_file(fd: int, path: str) -> bool:
    """Does ``path`` still name the open file ``fd``?"""
    try:
        seen = os.lstat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (seen.st_dev, seen.st_ino) == (mine.st_dev, mine.st_ino)


def _closed_above(path: str) -> bool:
    """Is ``path`` out of this user's sight (a directory above it closed), not missing?"""
    try:
        os.stat(path)
    except PermissionError:
        return True
    except (OSError, ValueError):
        return False
    return False
