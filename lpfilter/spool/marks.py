"""The worker's batches in the journal (issue 16 phase 2; bench/JOURNAL-DESIGN.md §2.4-2.5).

Why: each sent job cost two fdatasyncs of its own (the durable "maybe sent" mark before
its first byte, and the durable outcome), which capped a worker at ~500 jobs/s on disk.
Now the worker commits ONE durable MARK naming the next up-to-64 due jobs (with the boot
id) before sending any of them; a job this process marked in this boot ("covered") then
writes a START record, a FIRST record and its outcome (a JOB record, which spends the
mark in the replay) without a sync: the MARK made "maybe sent" durable in advance, and a
power cut, which loses unsynced records, changes the boot id, so the recovery
(``settle_marks``, ``settle``) flags every job a mark of another boot still
covers (a pool's round marks its batches too: spool/poolround.py). A job no mark of ours
covers (a mark an ``lpc`` JOB record spent) keeps the old durable path: a JOB record at the
start, a durable JOB record before the first byte, a durable outcome.

A finished job's data file goes only once its outcome is durable (else a power cut could
bring back a queued job whose data is gone): ``drop_data`` keeps it in a list until a sync
covers the journal's end at that time (the next MARK, or ``flush`` when the pass ends,
the worker goes idle or closes). ``prune`` never drops a job whose data file is still
there, and ``Ledger.tidy`` removes what a stop left.

A mixin of ``SpoolStore`` (store.py stays under the module size limit): it uses the
store's journal, index and appends. The cancel requests live here too: they are what a
send asks about as it goes; and the lease holder's housekeeping, ``prune`` (finished
jobs dropped, never one whose data file is there) and ``compact``.
"""
from __future__ import annotations

import os

from lpfilter import logs
from lpfilter.job import FINISHED, Job, JobState
from lpfilter.safefiles import discard
from lpfilter.spool import journalformat, journallimit
from lpfilter.spool.jobindex import JobIndex
from lpfilter.spool.journalformat import (cancel_record, first_record, job_record, mark_record,
                                          start_record)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import contextlib
    import threading

    from lpfilter.spool.journal import Journal

log = logs.getLogger(__name__)

#: A MARK names at most this many jobs...
BATCH_JOBS = 64
#: ...and at most this much of their data (at least one job).
BATCH_BYTES = 8 << 20


def settle(index: JobIndex, boot: str) -> list[Job]:
    """After a crash: the jobs to write back (as JOB records), requeued and flagged as
    spool/jobindex.py's docstring says. Every job a MARK still covers is written back, so its
    mark is spent (a later power cut must not flag a job that was never sent)."""
    changed: list[Job] = []
    for job in index.jobs.values():
        other_boot = job.id in index.marked and index.marked[job.id] != boot
        if job.state != JobState.ACTIVE and job.id not in index.marked:
            continue
        fixed = job.copy()
        if fixed.state == JobState.ACTIVE:
            fixed.move_to(JobState.QUEUED)
            fixed.worker = None
            fixed.last_error = "interrupted: lpfilter stopped while sending it"
        if fixed.send_started or other_boot:
            fixed.send_started = True
            fixed.possible_duplicate = True
        changed.append(fixed)
    return changed


def due_batch(order: list[Job], now: float, early: set[str], *, fifo: bool) -> list[Job]:
    """The jobs a worker's loop would send next, from ``order`` (print order, starting
    with the job about to be sent), by the loop's rules: queued, due (or ``early``);
    ``fifo`` stops at the first one not due. At most BATCH_JOBS jobs or BATCH_BYTES."""
    batch: list[Job] = []
    size = 0
    for job in order:
        if job.state != JobState.QUEUED:
            continue
        if job.next_try > now and job.id not in early:
            if fifo:
                break
            continue
        if batch and (len(batch) >= BATCH_JOBS or size + max(job.size, 0) > BATCH_BYTES):
            break
        batch.append(job)
        size += max(job.size, 0)
    return batch


class BatchMarks:
    """SpoolStore's part for the worker's batches: marks, the records of a covered send,
    the recovery by boot id, and data removals waiting for a sync."""

    queue: str
    jobs_dir: str
    _index: JobIndex
    _threads: threading.RLock

    if TYPE_CHECKING:  # what the store provides
        def _writer(self, *, catch_up: bool = True) -> Journal:
            ...

        def _append(self, records: list[tuple[int, bytes]], *, durable: bool,
                    jobs: list[Job] | None = None) -> int:
            ...

        def _fit(self, journal: Journal, records: list[tuple[int, bytes]]) -> None:
            ...

        def room(self) -> contextlib.AbstractContextManager[None]:
            ...

        def write(self, job: Job, *, durable: bool = True) -> None:
            ...

        def _open(self, *, write: bool = False) -> Journal | None:
            ...

        def data_path(self, job_id: str) -> str:
            ...

        def tickets_locked(self) -> contextlib.AbstractContextManager[None]:
            ...

        def has_data(self, job: Job) -> bool:
            ...

        def _drop(self, jobs: list[Job], *, keep_data: bool = False) -> None:
            ...

    def _init_marks(self) -> None:
        self._boot: str | None = None
        #: Jobs this process marked (a mark counts only while the replay still has it).
        self._marked: set[str] = set()
        #: Data files to remove once the journal is durable up to the LSN beside each.
        self._removals: list[tuple[int, str]] = []
        #: The journal's end after this process's last unsynced worker record.
        self._owed = 0
        #: The last outcome written: its job and the journal's end after it.
        self._ended = ("", 0)

    def boot(self) -> str:
        """This boot's id, read once per store (a power cut makes another)."""
        if self._boot is None:
            self._boot = journalformat.boot_id()
        return self._boot

    def covered(self, job_id: str) -> bool:
        """Is ``job_id`` in a MARK this process wrote in this boot, not spent since? (Under
        the journal's lock for an answer that holds; a hint otherwise.)"""
        return job_id in self._marked and self._index.marked.get(job_id) == self.boot()

    def mark(self, jobs: list[Job]) -> None:
        """One durable MARK naming the ``jobs`` still queued: "maybe sent" for all of them,
        before any byte of one leaves. Its fdatasync also covers the outcomes written
        before it, whose data files then go."""
        journal = self._writer(catch_up=False)
        with journal.locked(), self.room():
            ids = [job.id for job in jobs if (known := self._index.jobs.get(job.id))
                   is not None and known.state == JobState.QUEUED]
            if not ids:
                return
            records = [mark_record(ids, self.boot())]
            self._fit(journal, records)
            end = journal.append(records)
        self._sync(journal, end)  # a MARK whose sync failed covers nothing: the next pass
        self._marked.update(ids)  # writes another before any byte leaves

    def start(self, job: Job, pid: int, since: float) -> None:
        """The attempt began (``job`` is active): a START record when covered, else its JOB
        record; not synced either way (after a power cut "queued" is right: no byte left)."""
        with self.tickets_locked():
            if self.covered(job.id):
                self._owe(self._append([start_record(job, pid, since)], durable=False))
            else:
                self.write(job, durable=False)

    def first_byte(self, job: Job) -> None:
        """Its first byte leaves next (``job.send_started`` set): covered, a FIRST record,
        not synced (the MARK is durable); else its JOB record, durably, first."""
        with self.tickets_locked():
            if self.covered(job.id):
                self._owe(self._append([first_record(job)], durable=False))
            else:
                self.write(job)

    def outcome(self, job: Job) -> None:
        """An attempt's outcome (a JOB record: it spends the mark): covered, not synced
        (its data file waits in ``drop_data`` for a sync); else durably, as before."""
        with self.tickets_locked():
            covered = self.covered(job.id)
            self._marked.discard(job.id)
            end = self._append([job_record(job)], durable=not covered, jobs=[job])
            if covered:
                self._owe(end)
            with self._threads:
                self._ended = (job.id, end)
            self.clear_cancel(job.id)  # a request that came too late is spent

    def settle_marks(self) -> list[tuple[Job, Job]]:
        """After a crash (the lease holder, before sending): the active jobs requeued and
        the marks settled by boot id (``settle``), written back in one write and
        one fdatasync, which spends every mark. Returns (before, after) of each."""
        journal = self._writer(catch_up=False)
        with journal.locked(), self.room():
            changed = settle(self._index, self.boot())
            before = [self._index.jobs[job.id].copy() for job in changed]
            if not changed:
                return []
            records = [job_record(job) for job in changed]
            self._fit(journal, records)
            end = journal.append_all(records)
            journal.sync_to(end)
        self._marked.clear()
        return list(zip(before, changed, strict=True))

    # --- data files removed once their outcome is durable ---------------------------------
    def drop_data(self, job: Job) -> None:
        """A finished job's data file: removed now when its outcome (else every record
        read so far) is durable, else at the next sync that covers it (``mark``,
        ``flush``)."""
        journal = self._writer(catch_up=False)  # its outcome: appended here, or read
        # before the caller chose the job (Ledger.tidy): ``end`` covers it either way
        with self._threads:
            end = self._ended[1] if self._ended[0] == job.id else journal.end
            if journal.synced < end:
                self._removals.append((end, job.id))
                return
        self._unlink([job.id])

    def flush_owed(self) -> bool:
        """Has ``flush`` anything to do: records this process wrote that no flush covers
        yet, or data files waiting for one?"""
        with self._threads:
            if self._removals:
                return True
            owed = self._owed
        return owed > 0 and owed > self._writer().synced

    def flush(self) -> int:
        """The pass ends, the worker goes idle or closes: one fdatasync when this process
        wrote records not yet durable or data files wait for one, then they go. Returns
        how many went (the worker then prunes: ``prune`` passes over a job with data)."""
        with self._threads:
            end = max([self._owed, *(at for at, _ in self._removals)])
        journal = self._writer() if end else None
        if journal is not None and (end > journal.synced or self._removals):
            return self._sync(journal, end)
        return 0

    def _sync(self, journal: Journal, end: int) -> int:
        """``sync_to(end)``, then remove the data files whose outcome it made durable."""
        with self.room():
            journal.sync_to(end)
        with self._threads:
            done = [job_id for at, job_id in self._removals if at <= journal.synced]
            self._removals = [(at, j) for at, j in self._removals if at > journal.synced]
            if self._owed <= journal.synced:
                self._owed = 0
        self._unlink(done)
        return len(done)

    def _owe(self, end: int) -> None:
        with self._threads:
            self._owed = max(self._owed, end)

    def _unlink(self, ids: list[str]) -> None:
        with self.room():
            for job_id in ids:
                discard(self.data_path(job_id))

    # --- cancel requests (from another process, while a job is being sent) -------------
    def request_cancel(self, job_id: str, *, requeue: bool = False) -> None:
        """Ask the job's worker to stop its send: to cancel it, or (``requeue``, lpc
        abort) to put it back in the queue."""
        self._append([cancel_record(job_id, True, requeue)], durable=True)

    def clear_cancel(self, job_id: str) -> None:
        """A cancel request spent (only written when one is set)."""
        journal = self._writer(catch_up=False)
        with journal.locked():
            if job_id in self._index.cancels:
                self._append([cancel_record(job_id, False)], durable=False)

    def cancel_requested(self, job_id: str) -> bool:
        """Is the job, about to be sent, to be cancelled? (Under its ticket lock.) A
        request to put it back is spent here: it is in the queue already."""
        asked = self.stop_requested(job_id)
        if asked:
            self.clear_cancel(job_id)
        return asked is False

    def stop_requested(self, job_id: str) -> bool | None:
        """Is the job's send to stop: None no, False to cancel it, True to put it back
        (lpc abort). Asked often during a send: an fstat, a catch-up only when the
        journal grew."""
        journal = self._open()
        if journal is None:
            named = os.path.lexists(os.path.join(self.jobs_dir, f"{job_id}.cancel"))
            return False if named else None
        with journal.threads:
            return self._index.cancels.get(job_id)

    # --- the lease holder's housekeeping (design §2.9) ----------------------------------
    def prune(self, keep: int, max_age: float, now: float, keep_recent: float, *,
              recent_max: int | None = None, eager: bool = False) -> None:
        """Keep the ``keep`` newest finished jobs (and any whose data is kept, or younger
        than ``keep_recent``: of those nobody may wait for, the ``recent_max`` newest);
        ``max_age`` > 0 also drops older ones: one GONE record and one sync for all. Then
        the journal is compacted when it has grown big (§2.9; sooner when ``eager``:
        journallimit.compact_due)."""
        journal = self._writer()
        with journal.threads:
            finished = sorted((j for j in self._index.jobs.values() if j.state in FINISHED),
                              key=lambda j: j.finished or 0.0, reverse=True)
        drop, unawaited = [], 0
        for rank, job in enumerate(finished):
            age = now - (job.finished or now)
            young = age < keep_recent
            if young and (recent_max is None or job.awaited):
                continue  # (has_data, an lstat, only for the others)
            if self.has_data(job):
                continue
            if young:
                unawaited += 1
                if unawaited <= (recent_max or 0):
                    continue
            if rank >= keep or (max_age > 0 and age > max_age):
                drop.append(job)
        if drop:  # (has_data found no data file for any of them: none to unlink)
            self._drop(drop, keep_data=True)
        with journal.threads:  # (the receivers' threads change the index meanwhile)
            due = journallimit.compact_due(journal.size, self._index.live_size(),
                                           self._index.dead_data(), eager=eager,
                                           notes=self._index.notes_size())
        if due:
            self.compact()

    def compact(self) -> None:
        """The journal rewritten as one record per job kept (the last number in its HEAD),
        replacing the old one (design §2.9); the lease holder does it, in ``prune``."""
        journal = self._writer()
        with journal.locked(), self.room():
            head, records = self._index.compacted(len(self._index.jobs))
            before = journal.size
            journal.compact(records, head)
        log.info("queue %s: journal compacted from %d to %d bytes", self.queue, before,
                 journal.size)
