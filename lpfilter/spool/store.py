"""A queue's jobs, kept in its spool directory: one journal of records, and data files.

Layout, inside the queue's ``sd``::

    sd/                        the hot folder: files dropped here become jobs
    sd/.lpfilter/journal       the jobs: append-only records (spool/journal.py); the truth
    sd/.lpfilter/journal.lock  held by the one process appending
    sd/.lpfilter/jobs/         NNNNNN.data: each job's bytes (a small job's: in the journal)
    sd/.lpfilter/tmp/          files being spooled, locked by their writer; then moved to jobs/
    sd/.lpfilter/refused/      symlinks, FIFOs and devices dropped into sd, moved aside

Why a journal (issue 16, bench/JOURNAL-DESIGN.md, figures in spool/journal.py): a ticket
file per job, rewritten at every change, cost a new file and two flushes a durable step.
A change is now a record appended to one file: ``durable=False`` survives SIGKILL (the
page cache is the file), ``durable`` waits for an fdatasync covering every record so far
(group commit); ``read``/``jobs`` answer from an index caught up by an fstat. Its size is
bounded (spool/journallimit.py): compacted in time, an append past the limit refused.

Phase 1 keeps ``SpoolStore``'s interface (a JOB record is a ticket's JSON); hot-folder
scans and ``print FILE...`` commit in batches; phase 2 (spool/marks.py) the worker's sends:
one durable MARK per batch, a finished job's data removed once its outcome is durable.
A small job (``print``, LPD) keeps its bytes in the journal (spool/jobdata.py). Not yet:
the wake socket (JOURNAL-DESIGN.md §2.6). Old spools are upgraded at the first
writable open (spool/tickets.py); the lease holder compacts in ``prune``. A data file no
record names was being spooled when its writer died and is recovered (spool/recovery.py).

``.lpfilter`` and everything in it belong to the queue's owner, the owner of ``sd``
(root when ``sd`` is root's): only the owner or root may spool or serve jobs there, root
gives what it creates to the owner, and a journal, lock or data file of anyone else (or a
symbolic link, a FIFO, a hard link) is refused, never read or sent; a record is untrusted
input (spool/jobindex.py). Files are opened without following symbolic links and checked
on the open descriptor. A process that may not write the state folder (a read-only file
system) opens the journal read-only, or reads an old spool's tickets, and creates nothing.
"""
from __future__ import annotations

import _thread
import errno
import os

from lpfilter import logs
from lpfilter.errors import AccessError, LpfilterError
from lpfilter.job import FINISHED, Job
from lpfilter.safefiles import UnsafeFile
from lpfilter.spool import journallimit, tickets
from lpfilter.spool.intents import IntentLog
from lpfilter.spool.jobdata import JobData
from lpfilter.spool.jobindex import ID_MAX, JobIndex
from lpfilter.spool.journalformat import gone_record, job_record, reserve_record
from lpfilter.spool.journal import Journal
from lpfilter.spool.journallimit import JournalFull
from lpfilter.spool.marks import BatchMarks
from lpfilter.spool.recovery import recover_orphans
from lpfilter.spool.spooldir import STATE_DIR, SpoolDir

__all__ = ["STATE_DIR", "SpoolStore"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    import contextlib
    from lpfilter.spool.notes import Noted

log = logs.getLogger(__name__)

#: Journal records, as they are appended: (kind, payload).
Records = list[tuple[int, bytes]]


class SpoolStore(IntentLog, SpoolDir, BatchMarks, JobData):
    """The jobs of one queue, in its spool directory ``sd``."""

    def __init__(self, sd: str, queue: str, *, shared: bool = False) -> None:
        super().__init__(sd, queue)
        self.shared = shared  # a daemon's worker's, its connections' too: one replay
        self._threads = _thread.RLock()  # (threading: 0.7 ms of a quick command)
        self._journal: Journal | None = None
        self._index = JobIndex(queue)
        self._init_marks()

    # --- the journal --------------------------------------------------------------------
    def _open(self, *, write: bool = False) -> Journal | None:
        """The journal, caught up; read-write (old tickets taken in) when this process may
        write the state folder. None: there is none and it may not make one (old tickets)."""
        journal = self._journal
        if journal is None or not (journal.writable or not write):
            with self._threads:  # one thread opens it; the others use what it opened
                journal = self._journal
                if journal is None or not (journal.writable or not write):
                    return self._open_new(write)
        try:  # not under self._threads: a holder of the journal's lock may wait for it
            journal.catch_up()  # (lock order: journal, then store)
        except FileNotFoundError as exc:  # removed with its folder: the one line for that
            raise self.explain(exc) or exc from None
        return journal

    def _open_new(self, write: bool) -> Journal | None:
        """Open the journal (under self._threads): see _open."""
        old, self._journal = self._journal, None  # a read-only one, to open read-write
        if old is not None:
            old.close()
        writable = os.access(self.state, os.W_OK | os.X_OK)
        if not writable and write:
            if not os.path.isdir(self.state):  # removed under us: see explain()
                raise FileNotFoundError(errno.ENOENT, "no such directory", self.state)
            raise self._may_not_write(self.journal_path)
        if not writable and not self._journal_seen():
            return None
        index = JobIndex(self.queue)
        try:
            with self.room():
                journal = Journal(self.state, self.owner, index.apply, index.reset,
                                  writable=writable, queue=self.queue,
                                  on_records=index.apply_all)
        except FileNotFoundError:
            if write:
                raise
            return None
        except UnsafeFile as exc:
            raise AccessError(f"queue {self.queue}: {exc.reason}; not used: remove it"
                              " (lpfilter makes a new one; the data files in jobs/ no"
                              " record names are taken in again as jobs)",
                              queue=self.queue) from None
        except PermissionError as exc:
            raise self._may_not_write(exc.filename or self.journal_path) from None
        journal.gone = self.explain  # its lock taken after the spool was removed
        self._journal, self._index, self._tidy = journal, index, self._tidy or writable
        if writable and (journal.end == 0 or tickets.left_behind(self.state)):
            self._upgrade(journal)
        return journal

    def _writer(self, *, catch_up: bool = True) -> Journal:
        """The journal, writable; not ``catch_up``: an open one as it is, for a caller
        that takes its lock at once (which catches up) or needs only what this process
        appended (a catch-up is an fstat: three holds and a data file's removal a sent job,
        5 % of its instructions)."""
        journal = self._journal
        if catch_up or journal is None or not journal.writable:
            journal = self._open(write=True)
        assert journal is not None and journal.writable
        return journal

    def _upgrade(self, journal: Journal) -> None:
        """The spool's old form (ticket files, ``seq``, cancel files) into records, durably,
        then the files go (spool/tickets.py). Under the lock: one process does it. Only
        numbers above what the journal knows are taken in, so an upgrade a kill stopped
        between the commit and the removal never brings back an older job."""
        with journal.locked():
            known = self._index.last_id
            seed = tickets.seed_number(self.state, self.owner) if journal.end == 0 else 0
            taken = tickets.taken_in(self.state, self.owner, self.queue, self.refuse, known)
            records = [reserve_record(seed)] if seed > known else []
            if taken is None and not records:
                return  # a new spool: nothing to take in
            end = journal.append_all((taken.records if taken else []) + records)
            with self.room():
                journal.sync_to(end)
                if taken is not None:
                    tickets.remove_old(self.state, self.jobs_dir, taken.read)
        if records:
            log.info("queue %s: a new journal %s: job numbers go on after %d, the highest"
                     " the spool still shows", self.queue, self.journal_path, seed)
        if taken is not None:
            log.info("queue %s: %d ticket files taken into the journal %s", self.queue,
                     len(taken.jobs), self.journal_path)

    def _append(self, records: Records | Callable[[], Records | None], *, durable: bool,
                jobs: list[Job] | None = None) -> int:
        """Records in one write under the lock; ``durable``: and synced (group commit:
        outside the lock unless the caller holds it). Returns the journal's end after.
        ``jobs``: those the first JOB records were made of (the index takes copies of
        them back, not decoding the bytes it was given: ~15 µs a record). ``records`` may
        be a call made under the lock (the index caught up) that makes them; when it
        gives None nothing is written, and -1 is returned."""
        journal = self._writer(catch_up=False)
        with journal.locked(), self.room():
            made = records() if callable(records) else records
            if made is None:
                return -1
            self._fit(journal, made)
            self._index.expect(made, jobs or [])
            try:
                end = journal.append_all(made)
            finally:
                self._index.made.clear()
        if durable:
            with self.room():
                journal.sync_to(end)
        return end

    def _fit(self, journal: Journal, records: list[tuple[int, bytes]]) -> None:
        """Under the lock, before an append: compact first when the journal would pass 3/4
        of its limit (and a compaction gains something); refuse an append that would still
        pass it, before writing (a journal lpfilter wrote is always readable)."""
        adding = journallimit.weight(records)
        if journallimit.crowded(journal.size, adding) and (
                journal.size - self._index.live_size() > journallimit.LIMIT // 16):
            self.compact()
        if journallimit.too_big(journal.size, adding, records):
            raise JournalFull(self.journal_path, queue=self.queue)

    def close(self, *, final: bool = False) -> None:
        """Close the journal (a later use opens it again); a ``shared`` store keeps it for
        its other users unless ``final`` (its owner is done: from then on, close closes)."""
        with self._threads:
            self.shared = self.shared and not final
            if self.shared:
                return
            journal, self._journal = self._journal, None
        if journal is not None:
            with journal.threads:  # no thread reads or appends through it (lock order:
                journal.close()  # journal, then store: not under self._threads)

    def tickets_locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold while reading and rewriting a job, so two processes never interleave: the
        journal's lock, re-entrant for this process's threads, with a catch-up on entry."""
        return self._writer(catch_up=False).locked()

    def noted(self, key: str) -> list[Noted]:
        """The LPD server's retry notes under ``key`` that count (spool/notes.py), as the
        journal says now (under ``tickets_locked``: as it says when the caller appends)."""
        journal = self._writer()
        with journal.threads:
            return self._index.notes.lookup(key)

    def add_notes(self, records: list[tuple[int, bytes]]) -> None:
        """Retry notes appended, not synced (a digest noted after the acknowledgement, a
        note taken back)."""
        self._append(records, durable=False)

    def sync(self) -> None:
        """Every record the journal holds made durable, whoever appended it."""
        journal = self._writer()
        with self.room():
            journal.sync_to(journal.end)

    def next_id(self) -> str:
        """The next job number (``next_ids``, one)."""
        return self.next_ids(1)[0]

    def next_ids(self, count: int) -> list[str]:
        """The next ``count`` job numbers of this queue (six digits, more when it grows):
        after any the journal knows, reserved by one record (not synced: a number a
        durable record used is never given again, and a data file's name is never taken)."""
        journal = self._writer(catch_up=False)
        with journal.locked(), self.room():
            numbers: list[int] = []
            number = self._index.last_id
            while len(numbers) < count:
                number += 1
                if not os.path.lexists(self.data_path(f"{number:06d}")):
                    numbers.append(number)  # (else a data file a crash left before its record)
            if number > ID_MAX:
                raise AccessError(
                    f"queue {self.queue}: the journal {self.journal_path} names a job"
                    f" {self._index.last_id}: no job number is left after it (12 digits);"
                    " run lpfilter checkpc, or move the journal aside (the data files in"
                    " jobs/ are then taken in again as jobs)", queue=self.queue)
            self._fit(journal, [reserve_record(number)])
            journal.append([reserve_record(number)])
        return [f"{n:06d}" for n in numbers]

    # --- jobs -------------------------------------------------------------------------
    def write(self, job: Job, *, durable: bool = True) -> None:
        """Record the job (a JOB record); ``durable`` (the default) also survives a power
        cut, else it survives SIGKILL (the page cache is the file)."""
        self.write_all([job], durable=durable)

    def write_all(self, jobs: list[Job], *, durable: bool = True) -> None:
        """Record many jobs: one write, one fdatasync (a hot-folder scan's batch)."""
        self._append([job_record(job) for job in jobs], durable=durable, jobs=jobs)

    def read(self, job_id: str) -> Job | None:
        """A job as the journal says (a copy), or None."""
        journal = self._open()
        if journal is None:
            return self._legacy().get(job_id)
        with journal.threads:
            job = self._index.jobs.get(job_id)
            return None if job is None else job.copy()

    def jobs(self, *, finished: bool = True, where: Callable[[Job], bool] | None = None
             ) -> list[Job]:
        """Every job in arrival order, copied (change and ``write``); ``where``: those it picks;
        ``finished=False``: no finished one (a worker's burst would copy each kept one per job)."""
        try:
            journal = self._open()
        except PermissionError as exc:
            raise self._unreadable(exc) from None
        if journal is None:
            legacy = [j for j in self._legacy().values() if finished or j.state not in FINISHED]
            return legacy if where is None else list(filter(where, legacy))
        with journal.threads:  # (picked before they are copied)
            chosen = self._index.jobs.values() if finished else self._index.open_jobs()
            jobs = sorted(chosen if where is None else filter(where, chosen),
                          key=lambda j: (len(j.id), j.id))
            return [job.copy() for job in jobs]

    def _legacy(self) -> dict[str, Job]:
        """A spool this process may not write, not yet upgraded: its ticket files."""
        try:
            if not os.path.isdir(self.jobs_dir):
                return {}
            found = tickets.read_all(self.jobs_dir, self.owner, self.queue, self.refuse)
        except OSError as exc:
            raise self._unreadable(exc) from None
        return {job.id: job for job in found}

    def known(self) -> set[str]:
        """The ids the journal names (orphan recovery: data that no job names)."""
        journal = self._open()
        if journal is None:
            return set(self._legacy())
        with journal.threads:
            return set(self._index.jobs)

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

    def forget(self, jobs: list[Job], also: Sequence[tuple[int, bytes]] = ()) -> bool:
        """After a commit failed (its records may be in the file, not synced): GONE for
        those of ``jobs`` the journal names, so no job is left whose data the caller then
        removes, with ``also`` in the same write when it names any (what the commit wrote
        beside them is taken back with them, or not at all). False: it could not be
        written (keep the data: the jobs stay, whole)."""
        journal = self._writer()
        try:
            with journal.locked():
                named = [job.id for job in jobs if job.id in self._index.jobs]
                end = journal.append([gone_record(named), *also]) if named else 0
        except (OSError, LpfilterError) as exc:
            log.warning("queue %s: jobs %s recorded, not forgotten (%s): kept, with their"
                        " data", self.queue, " ".join(j.id for j in jobs), exc)
            return False
        try:  # the caller re-raises
            journal.sync_to(end)  # best effort: its failure is what the caller reports
        except (OSError, KeyboardInterrupt):
            pass
        return True

    def remove(self, job: Job, *, keep_data: bool = False) -> None:
        """Delete a job's data (unless kept), then its record (a GONE record, durable: the
        data goes first, so a job never comes back as an orphan)."""
        self._drop([job], keep_data=keep_data)

    def _drop(self, jobs: list[Job], *, keep_data: bool = False) -> None:
        if not keep_data:
            self._drop_files(jobs)
        self._append([gone_record([job.id for job in jobs])], durable=True)

    # --- recovery ---------------------------------------------------------------------
    def recover_orphans(self, user: str) -> list[Job]:
        """Jobs for data files whose submission crashed before the job was recorded."""
        return recover_orphans(self, user)
