"""Knowing a job sent again: a client that lost a job's final acknowledgement cannot know
whether the server has it, and sends it again (LPRng and CUPS with the same job number and
control file, lpd-protocol.md §3, §10). Queued twice, it would print twice.

Each received job leaves a key in the spool's state folder, ``.lpfilter/received/KEY``
holding its job id, where KEY is a digest of what makes a job the same (the client's
address, the user, the control file's name and bytes, the size): the check is one open,
whatever the number of jobs the queue keeps, and still works once the first job was
printed and its ticket dropped.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from lpfilter.errors import LpfilterError
from lpfilter.job import Job
from lpfilter.safefiles import UnsafeFile, atomic_write, open_lock, open_regular, private_dir

if TYPE_CHECKING:
    from lpfilter.spool.store import SpoolStore

log = logging.getLogger(__name__)

RECEIVED_DIR = "received"
#: The lock that makes "is this a job sent again?" and the job's commit one step.
RECEIVE_LOCK = "receive.lock"
#: A job that repeats one received up to this many seconds before is a client's retry
#: after a lost final acknowledgement (LPRng retries after 10 s, CUPS after 30 s, lpfilter
#: after at most max_connect_interval); an older one is queued, flagged a possible
#: duplicate: a client that writes no date in its control file (CUPS) may repeat a job
#: number and control file for a new job, and a job dropped as a duplicate would be lost.
DUPLICATE_WINDOW = 900.0
#: Keys older than this are removed (a sweep every SWEEP_EVERY job numbers).
KEEP = 86400.0
SWEEP_EVERY = 256


def key(job: Job) -> str:
    """What makes two received jobs the same, as a file name."""
    same = "\0".join((job.peer, job.user, job.origin, str(job.size)))
    return hashlib.sha256(same.encode("utf-8", "surrogateescape")).hexdigest()[:40]


class Retries:
    """The keys of one queue's received jobs."""

    def __init__(self, store: SpoolStore) -> None:
        self.store = store
        self.dir = os.path.join(store.state, RECEIVED_DIR)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Other connections wait (threads of this process too: a descriptor of its own)."""
        fd = open_lock(os.path.join(self.store.state, RECEIVE_LOCK), self.store.owner)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def earlier(self, job: Job) -> tuple[str, float] | None:
        """The id of the job ``job`` repeats and when that one came (its ticket may be gone
        already: printed, and no longer kept for status)."""
        try:
            fd, info = open_regular(os.path.join(self.dir, key(job)), self.store.owner)
        except (OSError, UnsafeFile):
            return None
        with open(fd, "rb") as handle:
            job_id = handle.read(64).decode("ascii", "replace").strip()
        return (job_id, info.st_mtime) if job_id.isdigit() else None

    def remember(self, job: Job) -> None:
        """Write the key of ``job``, once it is queued (a key names a job that was). A key
        that cannot be written costs only the recognition of a retry: logged, not raised."""
        try:
            with self.store.room():
                private_dir(self.dir, self.store.owner, f"queue {self.store.queue}",
                            self.store.sd)
                atomic_write(os.path.join(self.dir, key(job)), f"{job.id}\n".encode(),
                             durable=False, owner=self.store.owner)
            if job.id.isdigit() and int(job.id) % SWEEP_EVERY == 0:
                self.sweep(time.time())
        except (OSError, LpfilterError) as exc:
            log.warning("queue %s: job %s: cannot note it for recognising a retry (%s)",
                        self.store.queue, job.id, exc)

    def sweep(self, now: float) -> None:
        """Remove the keys older than KEEP: their jobs would be no retries any more."""
        with contextlib.suppress(FileNotFoundError), os.scandir(self.dir) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if now - info.st_mtime > KEEP:
                        os.unlink(entry.path)
