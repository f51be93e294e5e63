"""Knowing a job sent again: a client that lost a job's final acknowledgement cannot know
whether the server has it, and sends it again (LPRng and CUPS with the same job number and
control file, lpd-protocol.md §3, §10). Queued twice, it would print twice.

Each received job leaves a key in the spool's state folder, ``.lpfilter/received/KEY``
holding its job id, where KEY is a digest of what makes a job the same (the client's
address, the user, the control file's name and bytes, a digest of every data file taken
while it streamed in, the size): the check is one open, whatever the number of jobs the
queue keeps, and still works once the first job was printed and its ticket dropped.

Clients that write no date in the control file and repeat job numbers (CUPS wraps at
1000, Windows LPR ports and label printers' ERP systems often send a fixed one) send
new jobs whose control files are byte for byte the same: only the data tells them apart,
so a different data digest is always a new job. An exact resend (same address, control
file and data) within DUPLICATE_WINDOW is dropped, answered "received": that is the retry
the issue asks to be "recognised ... and not printed twice", and a job identical in every
byte, from the same address, with the same job number, within minutes, is a retry far
more often than a wish for a second print (which ``-#2`` asks for). Past the window it is
queued flagged possible_duplicate, never dropped.

The key is written durably (fsynced) before the final acknowledgement: a crash between
the two would otherwise lose it, and the client's retry would print twice unflagged.
Keys older than KEEP are swept at most every SWEEP_INTERVAL seconds, timed by the mtime of
a stamp file, so the folder stays bounded however job numbers are shared.
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
#: Keys older than this are removed, by a sweep at most every SWEEP_INTERVAL seconds.
KEEP = 86400.0
SWEEP_INTERVAL = 600.0
#: The stamp file (in the state folder) whose mtime is the last sweep.
SWEPT = "received.swept"


def key(job: Job) -> str:
    """What makes two received jobs the same, as a file name."""
    same = "\0".join((job.peer, job.user, job.origin, job.data_digest, str(job.size)))
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
                             durable=True, owner=self.store.owner)
            self.sweep_due(time.time())
        except (OSError, LpfilterError) as exc:
            log.warning("queue %s: job %s: cannot note it for recognising a retry (%s)",
                        self.store.queue, job.id, exc)

    def sweep_due(self, now: float) -> None:
        """Sweep when the last sweep (the stamp's mtime) is SWEEP_INTERVAL old or more; the
        stamp is touched first, so concurrent receivers (under the lock) sweep once."""
        stamp = os.path.join(self.store.state, SWEPT)
        try:
            last = os.lstat(stamp).st_mtime
        except FileNotFoundError:
            last = 0.0
        if 0 <= now - last < SWEEP_INTERVAL:
            return
        atomic_write(stamp, b"", durable=False, owner=self.store.owner)
        self.sweep(now)

    def sweep(self, now: float) -> None:
        """Remove the keys older than KEEP: their jobs would be no retries any more."""
        with contextlib.suppress(FileNotFoundError), os.scandir(self.dir) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if now - info.st_mtime > KEEP:
                        os.unlink(entry.path)
