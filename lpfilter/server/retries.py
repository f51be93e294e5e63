"""Knowing a job sent again: a client that lost a job's final acknowledgement cannot know
whether the server has it, and sends it again (LPRng and CUPS with the same job number and
control file, lpd-protocol.md §3, §10). Queued twice, it would print twice.

Each received job leaves a note in the spool's state folder, ``.lpfilter/received/KEY``,
where KEY is a digest of what makes a job the same on the wire (the client's address, the
user, the control file's name and bytes, the size of each data file): the check is one
open, whatever the number of jobs the queue keeps, and still works once the first job was
printed and its ticket dropped. The note holds one line per job with that key (at most
MAX_NOTED): ``ID TIME DIGEST``, DIGEST being a sha256 of the job's data as queued, or ``-``
until it is known.

Clients that write no date in the control file and repeat job numbers (CUPS wraps at
1000, Windows LPR ports and label printers' ERP systems often send a fixed one) send
new jobs whose control files are byte for byte the same: only the data tells them apart,
so different data is always a new job. An exact resend (same address, control file and
data) within DUPLICATE_WINDOW is dropped, answered "received": that is the retry the issue
asks to be "recognised ... and not printed twice", and a job identical in every byte, from
the same address, with the same job number, within minutes, is a retry far more often than
a wish for a second print (which ``-#2`` asks for). Past the window it is queued flagged
possible_duplicate, never dropped; so is a repeat whose earlier data can no longer be
compared (its digest was never noted and its data file is gone).

The data is not hashed while it arrives: at 1.5 GB/s, sha256 doubled the time a GiB took
to reach the disk (bench/README.md, LPD server). A big job's digest is taken after the
final acknowledgement, from the job's still-open file (``note_digest``), and only a repeat
(rare) hashes before it. A job of at most DIGEST_AT_ONCE bytes is hashed before its note
is written (microseconds, from the page cache), so that its note is written once, with
the digest: writing it again after the acknowledgement (a lock, a read, a new file
renamed over the note) cost more than the hash. The note itself is written durably
BEFORE the job is committed: a crash after the commit then never leaves a queued job
without its note, whose retry would print twice unflagged (a crash between the two leaves
a note naming a job that never was: its retry is queued, flagged). Notes older than KEEP
are swept at most every SWEEP_INTERVAL seconds, timed by the mtime of a stamp file, so the
folder stays bounded.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from lpfilter import logs
from lpfilter.errors import LpfilterError, SpoolFull
from lpfilter.job import Job
from lpfilter.text import visible
from lpfilter.safefiles import CHUNK, UnsafeFile, atomic_write, open_lock, open_regular, private_dir
from lpfilter.spool.journalfile import take_lock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.spool.jobdata import Source
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)

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
#: The most jobs one note remembers (a client repeating one control file for new jobs).
MAX_NOTED = 32
UNKNOWN = "-"
#: A job this small is hashed before its note is written (sha256 of 64 KiB: ~35 µs).
DIGEST_AT_ONCE = 64 << 10


@dataclass(frozen=True)
class Noted:
    """A job received before with the same key: its id, when, and its data's digest."""

    job_id: str
    when: float
    digest: str = UNKNOWN


def key(job: Job, sizes: Sequence[int]) -> str:
    """What makes two received jobs the same on the wire, as a file name (``sizes``: of each
    data file, in print-line order, so that other file boundaries are another job)."""
    same = "\0".join((job.peer, job.user, job.origin, ",".join(map(str, sizes))))
    return hashlib.sha256(same.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def file_digest(fd: int) -> str:
    """The digest of a whole file, read from its descriptor in bounded chunks (the file may
    be unlinked already: printed, and its ticket dropped)."""
    whole = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, CHUNK, offset):
        whole.update(chunk)
        offset += len(chunk)
    return whole.hexdigest()[:40]


def parse_note(text: str) -> list[Noted]:
    """The lines of a note; a damaged line is skipped (it costs a retry's recognition)."""
    noted = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        try:
            noted.append(Noted(parts[0], float(parts[1]), parts[2]))
        except ValueError:
            continue
    return noted


def format_note(noted: Sequence[Noted]) -> bytes:
    return "".join(f"{n.job_id} {n.when:.3f} {n.digest}\n"
                   for n in noted[-MAX_NOTED:]).encode("ascii")


class Retries:
    """The keys of one queue's received jobs."""

    def __init__(self, store: SpoolStore) -> None:
        self.store = store
        self.dir = os.path.join(store.state, RECEIVED_DIR)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Other connections wait (threads of this process too: a descriptor of its own)."""
        path = os.path.join(self.store.state, RECEIVE_LOCK)
        fd = open_lock(path, self.store.owner)
        try:
            take_lock(fd, path, queue=self.store.queue)
            yield
        finally:
            os.close(fd)

    def path(self, job: Job, sizes: Sequence[int]) -> str:
        return os.path.join(self.dir, key(job, sizes))

    def earlier(self, path: str) -> list[Noted]:
        """The jobs noted under a key, oldest first (their tickets may be gone already)."""
        try:
            fd, _info = open_regular(path, self.store.owner)
        except (OSError, UnsafeFile):
            return []
        with open(fd, "rb") as handle:
            return parse_note(handle.read(64 * MAX_NOTED).decode("ascii", "replace"))

    def digest_of(self, noted: Noted) -> str | None:
        """An earlier job's digest: noted, or taken now from its data file if it is still
        in the spool; None when it can no longer be known."""
        if noted.digest != UNKNOWN:
            return noted.digest
        inline = self.store.inline_bytes(noted.job_id)  # a small job's, in the journal
        if inline is not None:
            return hashlib.sha256(inline).hexdigest()[:40]
        try:
            fd, _info = open_regular(self.store.data_path(noted.job_id), self.store.owner)
        except (OSError, UnsafeFile):
            return None
        try:
            return file_digest(fd)
        finally:
            os.close(fd)

    def remember(self, path: str, noted: list[Noted], job: Job, digest: str = UNKNOWN) -> None:
        """Note ``job`` under its key, durably, before it is committed (the caller holds the
        lock). A full spool is raised (the job is not taken: "try later"); another fault
        costs only the recognition of a retry, logged."""
        try:
            with self.store.room():
                private_dir(self.dir, self.store.owner, f"queue {self.store.queue}",
                            self.store.sd)
                atomic_write(path, format_note([*noted, Noted(job.id, job.submitted,
                                                              digest)]),
                             durable=True, owner=self.store.owner)
        except SpoolFull:
            raise
        except (OSError, LpfilterError) as exc:  # costs only the recognition of a retry
            log.warning("queue %s: job %s: cannot note it for recognising a retry (%s)",
                        self.store.queue, job.id, exc)
            return
        try:
            self.sweep_due(time.time())
        except OSError as exc:
            log.warning("queue %s: cannot sweep old retry notes (%s)", self.store.queue, exc)

    def forget(self, path: str, job_id: str) -> None:
        """Take back a job's note: its commit failed (best effort; a note left names a job
        that never was, and its retry is only flagged)."""
        with contextlib.suppress(OSError, LpfilterError):
            kept = [n for n in self.earlier(path) if n.job_id != job_id]
            if kept:
                atomic_write(path, format_note(kept), durable=False, owner=self.store.owner)
            else:
                os.unlink(path)

    def note_digest(self, path: str, job_id: str, digest: str) -> None:
        """Write down a committed job's digest (not fsynced: lost in a crash, the digest is
        taken again from the data file, or the retry is flagged). Never raises."""
        try:
            with self.locked():
                noted = self.earlier(path)
                changed = [Noted(n.job_id, n.when, digest) if n.job_id == job_id else n
                           for n in noted]
                if changed != noted:
                    atomic_write(path, format_note(changed), durable=False,
                                 owner=self.store.owner)
        except (OSError, LpfilterError) as exc:
            log.warning("queue %s: job %s: cannot note its digest for recognising a retry"
                        " (%s)", self.store.queue, job_id, exc)

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

    def commit_once(self, job: Job, staged: Source, fd: int, sizes: list[int],
                    peer: object, digest: str = UNKNOWN) -> tuple[str | None, str]:
        """Commit a received job (its data staged at ``staged``, or its bytes for a small
        job, open as ``fd``; its
        ``digest`` when the caller took it already) unless it resends one received just
        before: then (that one's id, ""); else (None, the note still waiting for the job's
        digest, or "" when it has it)."""
        note = self.path(job, sizes)
        with self.locked():
            noted = self.earlier(note)
            if noted:
                if digest == UNKNOWN:  # rare: a big job repeating a key, hashed before its ack
                    digest = file_digest(fd)
                twin = self.repeated(noted, digest, job, peer)
                if twin is not None:
                    return twin, ""
            self.remember(note, noted, job, digest)
            try:
                self.store.commit(job, staged)
            except BaseException:
                self.forget(note, job.id)
                raise
        return None, note if digest == UNKNOWN else ""

    def repeated(self, noted: list[Noted], digest: str, job: Job, peer: object) -> str | None:
        """The id of the job ``job`` resends within the window; past it, or when an earlier
        job's data can no longer be compared, ``job`` is flagged a possible duplicate."""
        unknown = None
        for earlier in reversed(noted):
            theirs = self.digest_of(earlier)
            if theirs == digest and job.submitted - earlier.when <= DUPLICATE_WINDOW:
                return earlier.job_id
            if theirs == digest or (theirs is None and unknown is None):
                unknown = earlier
        if unknown is not None:
            log.warning("queue %s: job %s from %s may repeat job %s of %s: queued as a"
                        " possible duplicate", visible(self.store.queue), job.id, peer,
                        unknown.job_id, time.ctime(unknown.when))
            job.possible_duplicate = True
        return None
