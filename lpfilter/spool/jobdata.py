"""A job's bytes: a data file in ``jobs/``, or, for a small job ``print`` spooled or LPD
received, a DATA record in the queue's journal (bench/JOURNAL-DESIGN.md §10).

Why inline (issue 16): on ext4 a new file costs more than its bytes. A data file is made,
fsynced and renamed per job, and ext4 looks for a free inode past the ones freed in the
last minute (``recently_deleted``): a spool that makes and removes a file per job pays
0.3-0.8 ms of kernel time per new file on this machine's disk (bench/README.md). A small
job's bytes written in the same write as its JOB record, before it, are made durable by the
same fdatasync: nothing more per job. A torn write keeps a prefix of the batch: a JOB
record is never there without the bytes before it; bytes with no JOB after them name no
job and are dropped at the next compaction.

The index keeps the bytes of jobs not finished: at most ``inline_budget()`` of them are
taken in (the memory a process holds), and none while the journal is past
``inline_journal_max()`` (half its limit: the records of jobs always have room,
spool/journallimit.py). The budget counts
the bytes held, not the journal's size: the finished jobs kept a minute (``KEEP_RECENT``)
made a busy queue's journal pass 8 MiB after ~8000 jobs, and every job then got a file.
A compaction writes them again before their job's JOB record; a finished job's go. To be
sent, they are written into a sealed memory file (``memfd``): the backends read a
descriptor as they read a data file, and nobody can change it.

Only a queue with no program that could open the data file by its name gets inline jobs:
LPRng hands filters and banner programs that name (``-e``, ``$DATAFILES``), and an
``lp=|program`` reads it too. Queues that keep the data of finished jobs
(``save_when_done``, ``save_on_error``) keep files.
"""
from __future__ import annotations

import fcntl
import os

from lpfilter.job import FINISHED, Job
from lpfilter.printcap.keys import is_filter_key
from lpfilter.safefiles import UnsafeFile, discard, fsync_dir, open_regular, write_fully
from lpfilter.spool import journallimit
from lpfilter.spool.journalformat import data_record, job_record
from lpfilter.spool.staging import stage

TYPE_CHECKING = False
if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable, Sequence
    from lpfilter.printcap import Entry
    from lpfilter.spool.jobindex import JobIndex
    from lpfilter.spool.journal import Journal

#: The largest job whose bytes go into the journal (labels, receipts, small invoices).
INLINE_MAX = 16 << 10


def inline_budget() -> int:
    """The most bytes of unfinished jobs a journal takes in (1/8 of its limit, as it is
    now: a test may lower it): memory stays bounded, and queued bytes never crowd out the
    records of the jobs themselves."""
    return journallimit.LIMIT // 8


def inline_journal_max() -> int:
    """No job is inlined while the journal is this big (half its limit), until a
    compaction shrinks it."""
    return journallimit.LIMIT // 2


#: A staged job: its data file in tmp/ (str), or its bytes to go into the journal.
Source = str | bytes


def inline_allowed(entry: Entry) -> bool:
    """May this queue's small jobs be kept inside its journal (see the module's docstring)?"""
    if entry.flag("save_when_done") or entry.flag("save_on_error"):
        return False
    if (entry.string("lp") or "").lstrip().startswith("|"):
        return False
    return not any(is_filter_key(key) and entry.string(key) for key, _ in entry.items())


class JobData:
    """SpoolStore's part for the jobs' bytes (a mixin: it uses the store's journal)."""

    queue: str
    jobs_dir: str
    tmp_dir: str
    _index: JobIndex

    if TYPE_CHECKING:  # what the store provides
        def _writer(self, *, catch_up: bool = True) -> Journal:
            ...

        def _open(self, *, write: bool = False) -> Journal | None:
            ...

        def _append(self, records: list[tuple[int, bytes]]
                    | Callable[[], list[tuple[int, bytes]] | None], *, durable: bool,
                    jobs: list[Job] | None = None) -> int:
            ...

        @property
        def owner(self) -> int:
            ...

        def room(self) -> contextlib.AbstractContextManager[None]:
            ...

        def data_path(self, job_id: str) -> str:
            ...

        def refuse(self, path: str, reason: str) -> str:
            ...

        def forget(self, jobs: list[Job], also: Sequence[tuple[int, bytes]] = ()) -> bool:
            ...

    def inline_room(self) -> int:
        """How many bytes of jobs may still go into the journal (``inline_budget``)."""
        journal = self._writer()
        return max(0, min(inline_budget() - self._index.data_held,
                          inline_journal_max() - journal.size))

    def stage(self, job_id: str) -> tuple[int, str]:
        """A new file in tmp/ for a job's data: (fd, path), locked till closed (see
        spool/staging.py)."""
        with self.room():
            return stage(self.tmp_dir, job_id, self.owner, self.queue)

    def commit(self, job: Job, staged: Source) -> None:
        self.commit_all([(job, staged)])

    def commit_all(self, staged: list[tuple[Job, Source]], *,
                   notes: Callable[[], list[tuple[int, bytes]] | None] | None = None) -> bool:
        """Move fully written data files from tmp/ into jobs/, make that durable (one fsync:
        a durable record never names a file a power cut could take back), then record the
        jobs, each after its bytes when they go into the journal, durably (one write, one
        fdatasync); if they cannot be recorded (or made durable: a full disk, SIGINT) the
        jobs are forgotten and the data files removed (never announced). ``notes`` (the
        LPD server's retry notes) is called under the journal's lock, the index caught up,
        before the jobs' records are made: the records it gives go first in the same
        write; None writes nothing, removes the data files and returns False. A commit
        that fails takes its notes back in the forgetting write (a note left would make
        the client's resend, never acknowledged, be dropped as a retry)."""
        jobs = [job for job, _ in staged]
        noted: list[tuple[int, bytes]] = []

        def records() -> list[tuple[int, bytes]] | None:
            first = [] if notes is None else notes()
            if first is None:
                return None
            noted.extend(first)
            for job, source in staged:
                if isinstance(source, bytes):
                    first.append(data_record(job.id, source))
                first.append(job_record(job))
            return first

        try:
            with self.room():
                files = False
                for job, source in staged:
                    if not isinstance(source, bytes):
                        os.replace(source, self.data_path(job.id))
                        files = True
                if files:
                    fsync_dir(self.jobs_dir)
            if self._append(records, durable=True, jobs=jobs) < 0:
                self._drop_files(jobs)
                return False
        except BaseException:
            if self.forget(jobs, also=_taken_back(noted)):
                self._drop_files(jobs)
            raise
        return True

    def open_data(self, job_id: str) -> int | str:
        """A job's bytes, opened for sending (the caller closes it): its data file, a
        regular file of the queue's owner, never a symbolic link or a FIFO; or a memory
        file holding the bytes the journal keeps. Otherwise why the job fails: a file
        lpfilter did not make is refused and moved aside."""
        inline = self.inline_bytes(job_id)
        if inline is not None:
            return _memory_file(f"lpfilter-job-{job_id}", inline)
        path = self.data_path(job_id)
        try:
            return open_regular(path, self.owner)[0]
        except UnsafeFile as exc:
            return (f"its data file was refused, never sent: {exc.reason};"
                    f" {self.refuse(path, exc.reason)}")
        except FileNotFoundError:
            return "its spooled data file is missing"
        except OSError as exc:
            return f"cannot open its data file: {exc.strerror}"

    def has_data(self, job: Job) -> bool:
        """Does the spool keep the job's bytes? (A finished job's are never in the journal:
        ``prune`` asks this of every finished job, and needs no catch-up for it.)"""
        if job.state not in FINISHED and self.inline_bytes(job.id) is not None:
            return True
        return os.path.lexists(self.data_path(job.id))

    def inline_bytes(self, job_id: str) -> bytes | None:
        """The bytes the journal keeps for a job not finished, as it says now (None: it
        keeps none)."""
        journal = self._open()
        if journal is None:  # an old spool's tickets: files only
            return None
        with journal.threads:
            return self._index.data.get(job_id)

    def _drop_files(self, jobs: list[Job]) -> None:
        with self.room():
            for job in jobs:
                discard(self.data_path(job.id))


def _taken_back(noted: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    if not noted:
        return []
    from lpfilter.spool.notes import void_of  # the LPD server's only (every command loads this)
    return [void_of(record) for record in noted]


def new_memory_file(name: str) -> int:
    """An empty file in memory (a small job received over LPD: server/staging.py)."""
    return os.memfd_create(name, os.MFD_CLOEXEC)


def _memory_file(name: str, data: bytes) -> int:
    """A file in memory holding ``data``, at its start (sendfile and splice take it),
    sealed: a filter given it as its input cannot change or cut it, as it cannot a data
    file opened for reading."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        write_fully(fd, data)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW
                    | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
