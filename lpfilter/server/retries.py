"""Knowing a job sent again: a client that lost a job's final acknowledgement cannot know
whether the server has it, and sends it again (LPRng and CUPS with the same job number and
control file, lpd-protocol.md §3, §10). Queued twice, it would print twice.

Each received job is noted in its queue's journal under a KEY, a digest of what makes a
job the same on the wire (the client's address, the user, the control file's name and
bytes, the size of each data file): a NOTE record written in the job's own write, just
before its JOB record (spool/notes.py), with DIGEST, a sha256 of the job's data as queued,
or ``-`` until it is known. The same fdatasync makes both durable: a crash never leaves a
queued job without its note (its retry would print twice, unflagged), and a note counts
only once its job's record follows it (a note of a job never acknowledged would make the
client's resend be dropped: a lost job). The check and the commit are one step under the
journal's lock, the notes looked up in the index the process keeps (no file opened), and
still there once the first job was printed and its record dropped. Up to MAX_NOTED jobs
per key are kept, NOTES_MAX in all; a compaction keeps those younger than a day.

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
final acknowledgement, from the job's still-open file, and noted by a NOTE record not
synced (``note_digest``: lost in a crash, the digest is taken again from the data file,
or the retry is flagged); only a repeat (rare) hashes before it, outside the journal's
lock. A job of at most DIGEST_AT_ONCE bytes is hashed before its note is written
(microseconds, from the page cache), so that its note is written once, with the digest.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence

from lpfilter import logs
from lpfilter.errors import LpfilterError
from lpfilter.job import Job
from lpfilter.safefiles import CHUNK, UnsafeFile, open_regular
from lpfilter.spool.notes import SEEN, UNKNOWN, Noted, note_record
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.spool.jobdata import Source
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)

#: A job that repeats one received up to this many seconds before is a client's retry
#: after a lost final acknowledgement (LPRng retries after 10 s, CUPS after 30 s, lpfilter
#: after at most max_connect_interval); an older one is queued, flagged a possible
#: duplicate: a client that writes no date in its control file (CUPS) may repeat a job
#: number and control file for a new job, and a job dropped as a duplicate would be lost.
DUPLICATE_WINDOW = 900.0
#: A job this small is hashed before its note is written (sha256 of 64 KiB: ~35 µs).
DIGEST_AT_ONCE = 64 << 10


def key(job: Job, sizes: Sequence[int]) -> str:
    """What makes two received jobs the same on the wire (``sizes``: of each data file, in
    print-line order, so that other file boundaries are another job)."""
    same = "\0".join((job.peer, job.user, job.origin, ",".join(map(str, sizes))))
    return hashlib.sha256(same.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def file_digest(fd: int) -> str:
    """The digest of a whole file, read from its descriptor in bounded chunks (the file may
    be unlinked already: printed, and its record dropped)."""
    whole = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, CHUNK, offset):
        whole.update(chunk)
        offset += len(chunk)
    return whole.hexdigest()[:40]


class Retries:
    """The notes of one queue's received jobs."""

    def __init__(self, store: SpoolStore) -> None:
        self.store = store

    def digest_of(self, noted: Noted) -> str | None:
        """An earlier job's digest: noted, or taken now from its bytes if the spool still
        has them; None when it can no longer be known."""
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

    def commit_once(self, job: Job, staged: Source, fd: int, sizes: list[int],
                    peer: object, digest: str = UNKNOWN) -> tuple[str | None, str]:
        """Commit a received job (its data staged at ``staged``, or its bytes for a small
        job, open as ``fd``; its ``digest`` when the caller took it already) with its note,
        unless it resends one received just before: then (that one's id, ""); else (None,
        the key whose note still waits for the job's digest, or "" when it has it)."""
        note = key(job, sizes)
        if digest == UNKNOWN and self.store.noted(note):  # a big job repeating a key
            digest = file_digest(fd)  # (rare): hashed outside the journal's lock
        twin: list[str] = []

        def first() -> list[tuple[int, bytes]] | None:  # under the journal's lock
            nonlocal digest
            noted = self.store.noted(note)
            if noted and digest == UNKNOWN:  # noted meanwhile, by another connection
                digest = file_digest(fd)
            earlier = self.repeated(noted, digest, job, peer) if noted else None
            if earlier is not None:
                twin.append(earlier)
                return None
            return [note_record(note, Noted(job.id, job.submitted, digest))]

        if not self.store.commit_all([(job, staged)], notes=first):
            self.store.sync()  # the earlier job durable before its resend is answered
            return twin[0], ""
        return None, note if digest == UNKNOWN else ""

    def note_digest(self, note: str, job: Job, digest: str) -> None:
        """Write down a committed job's digest (not synced: lost in a crash, the digest is
        taken again from the data file, or the retry is flagged). Never raises."""
        try:
            self.store.add_notes([note_record(note, Noted(job.id, job.submitted, digest),
                                              SEEN)])
        except (OSError, LpfilterError) as exc:
            log.warning("queue %s: job %s: cannot note its digest for recognising a retry"
                        " (%s)", self.store.queue, job.id, exc)

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
