"""A queue's hot folder as its worker sees it: complete files become jobs.

``hotfolder`` classifies the entries of a spool directory; this module remembers what a
worker needs between looks (files renamed in, whether this is the first look, what was
left for later) and turns the ready files into tickets, up to 64 at a time: one unsynced
write of their intents (spool/intents.py: what a crash before their records leaves is
settled at once), their renames into jobs/, one fsync of jobs/, their records in one write
and one fdatasync.
"""
from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable

from lpfilter import logs
from lpfilter.errors import LpfilterError, SpoolFull
from lpfilter.job import Job, user_name
from lpfilter.locks import own_start
from lpfilter.safefiles import UnsafeFile, fsync_dir
from lpfilter.spool import hotfolder
from lpfilter.spool.control import holds_new
from lpfilter.spool.intents import intent_of, job_of, take_over
from lpfilter.spool.journalformat import gone_record, intent_record
from lpfilter.spool.records import QueueRecords
from lpfilter.spool.store import SpoolStore
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lpfilter.printcap import Entry

log = logs.getLogger(__name__)

#: Hot-folder files committed together: one fsync of jobs/ and one of the journal for all.
BATCH = 64
#: A file taken in, its job not yet recorded: (the job, its data file, where it came from).
Taken = tuple[Job, str, hotfolder.Candidate]


class Intake:
    """Takes one queue's hot-folder files; the worker's thread calls ``adopt``."""

    def __init__(self, entry: Entry, store: SpoolStore, records: QueueRecords, *,
                 settle: float, clock: Callable[[], float]) -> None:
        self.entry = entry
        self.store = store
        self.records = records
        self.settle = settle
        self.clock = clock
        #: Names inotify saw renamed in: complete at once, whatever their age.
        self.moved_in: set[str] = set()
        #: The first look at the hot folder takes every file nobody has open for writing,
        #: whatever its age (a file renamed in while no watcher ran needs no settle time).
        self._fresh = True
        #: ``watch --once``: every look is a first look, files that may still be written by
        #: processes we cannot inspect are waited for until then, and those left are named.
        self.files_deadline: float | None = None
        self._waiting: dict[str, str] = {}
        #: The numbers whose intents were written since the last commit.
        self._intended: list[str] = []
        self._taker: tuple[int, float] | None = None  # this process, as intents name it
        #: The login names of the files' owners, looked up once a scan (each lookup reads
        #: /etc/passwd: two a job were a fifth of a hot-folder job's opens and reads).
        self._names: dict[int, str] = {}
        self._own = frozenset(os.path.basename(p) for p in (
            records.log_path, records.status_path, records.acct_path)
            if p and os.path.dirname(os.path.abspath(p)) == os.path.abspath(store.sd)
        ) | hotfolder.lprng_names(entry.name)

    def own(self, name: str) -> bool:
        """Is ``name`` in the spool directory one of the queue's own files (log, status,
        accounting, LPRng's)?"""
        return name in self._own

    def adopt(self) -> float | None:
        """Turn complete hot-folder files into jobs; returns when to look again at others."""
        fresh = self._fresh or self.files_deadline is not None
        found = hotfolder.scan(self.store.sd, self._own, self.moved_in, self.settle,
                               self.clock(), fresh=fresh)
        self._fresh, self._waiting, self._names = False, found.waiting, {}
        for name, reason in found.refused:
            where = hotfolder.refuse(self.store.refused_dir, os.path.join(self.store.sd, name))
            line = f"refused {visible(name)}: {reason}; {where}"
            log.warning("queue %s: %s", visible(self.entry.name), line)
            self.records.log(line)
        taken: list[Taken] = []
        try:
            for start in range(0, len(found.ready), BATCH):
                chunk = found.ready[start:start + BATCH]
                for candidate, (job_id, intent) in zip(chunk, self._intend(chunk),
                                                       strict=True):
                    one = self._take(candidate, job_id, intent)
                    if one is not None:
                        taken.append(one)
                self._commit(taken)
        except BaseException:  # a full spool: what was taken before is still recorded
            with contextlib.suppress(SpoolFull):
                self._commit(taken)
            raise
        return found.recheck_at

    def _intend(self, chunk: list[hotfolder.Candidate]) -> list[tuple[str, dict[str, Any]]]:
        """Numbers for the next files, and their intents, in one unsynced write before any
        of them is renamed (a kill before their records: spool/intents.py)."""
        if self._taker is None:
            self._taker = (os.getpid(), own_start())
        held, limit, at = holds_new(self.entry), self.entry.number("mx") * 1024, self.clock()
        numbers = self.store.next_ids(len(chunk))  # one RESERVE for the chunk, not each
        self._intended.extend(numbers)
        planned = [(job_id, intent_of(candidate, at, held=held, limit=limit,
                                      taker=self._taker))
                   for job_id, candidate in zip(numbers, chunk, strict=True)]
        self.store.note([intent_record(job_id, intent) for job_id, intent in planned])
        return planned

    def _commit(self, taken: list[Taken]) -> None:
        """The files taken so far become jobs (and ``taken`` is emptied); then the intents
        of those that did not are spent."""
        batch, taken[:] = list(taken), []
        intended, self._intended = self._intended, []
        recorded: set[str] = set()
        try:
            if batch:
                self._record(batch)
                recorded = {job.id for job, _, _ in batch}
        finally:
            self._spend(intended, recorded)

    def _spend(self, intended: list[str], recorded: set[str]) -> None:
        """A GONE for the intents of files that did not become jobs and left no data file
        (gone before their rename, refused, put back): best effort, unsynced (recovery
        spends what is left once this process is gone; one whose file is still in jobs/
        names it for recovery)."""
        stale = [job_id for job_id in intended if job_id not in recorded
                 and not os.path.lexists(self.store.data_path(job_id))]
        if stale:
            with contextlib.suppress(OSError, LpfilterError):
                self.store.note([gone_record(stale)])

    def _record(self, batch: list[Taken]) -> None:
        """Their renames made durable by one fsync of jobs/ (a durable record never names
        a rename a power cut could take back), then their records, one write and one
        fdatasync. On a full spool (or a failed sync) every file goes back where it was,
        for later, once the journal forgets the jobs (if it cannot, they stay jobs, with
        their data)."""
        jobs = [job for job, _, _ in batch]
        try:
            with self.store.room():
                fsync_dir(self.store.jobs_dir)
            self.store.write_all(jobs)
        except BaseException:
            if self.store.forget(jobs):
                for _, path, candidate in batch:
                    self._put_back(path, candidate)
            raise
        for job, _, candidate in batch:
            self.moved_in.discard(candidate.name)
            self.records.log(f"took {visible(candidate.name)} from the spool directory", job)

    def _take(self, candidate: hotfolder.Candidate, job_id: str,
              intent: dict[str, Any]) -> Taken | None:
        """One ready file: renamed to a job's data file (where nobody but the queue's owner
        can swap it), opened there and checked on the descriptor, made the owner's; its
        job is recorded by ``_commit``, with the others of the batch."""
        path = self.store.data_path(job_id)
        try:
            with self.store.room():
                os.rename(candidate.path, path)
        except FileNotFoundError:
            return None
        try:
            uid, size = take_over(self.store, job_id, path)
        except SpoolFull:  # no room for the owner's copy: the file goes back, for later
            self._put_back(path, candidate)
            raise
        except (UnsafeFile, OSError) as exc:
            reason = exc.reason if isinstance(exc, UnsafeFile) else (
                f"cannot take it (uid {os.geteuid()}): {exc.strerror}")
            where = hotfolder.refuse(self.store.refused_dir, path, candidate.name)
            if os.path.lexists(path):  # not moved: never left where recovery would take it
                kept = path.removesuffix(".data") + ".refused"
                with contextlib.suppress(OSError):
                    os.rename(path, kept)
                    where += f"; kept as {kept}"
            line = f"refused {visible(candidate.name)}: {reason}; {where}"
            log.warning("queue %s: %s", visible(self.entry.name), line)
            self.records.log(line)
            self.moved_in.discard(candidate.name)
            return None
        if uid not in self._names:
            self._names[uid] = user_name(uid)
        job = job_of(job_id, self.entry.name, intent, uid, size, user=self._names[uid])
        return job, path, candidate

    def _put_back(self, path: str, candidate: hotfolder.Candidate) -> None:
        """A file taken in that cannot become a job now (a full spool) goes back to its
        name in the hot folder, its dropper's again (root had given it to the queue's
        owner), without replacing a file dropped there meanwhile; where that name is
        taken it stays in the job folder, whose orphans are recovered later."""
        with contextlib.suppress(OSError):
            if os.geteuid() == 0:  # jobs/ is the owner's alone: the path is ours
                os.chown(path, candidate.uid, -1, follow_symlinks=False)
                os.chmod(path, stat.S_IMODE(candidate.mode))
        try:
            os.link(path, candidate.path, follow_symlinks=False)
        except FileExistsError:
            return
        except OSError:  # a link refused (protected_hardlinks): a rename, if still free
            with contextlib.suppress(OSError):
                if not os.path.lexists(candidate.path):
                    os.rename(path, candidate.path)
            return
        with contextlib.suppress(OSError):
            os.unlink(path)

    def settling(self, recheck: float | None) -> float | None:
        """``watch --once``: when to look again at a file that may still be written by a
        process we cannot inspect, if that is within the pass's settle time."""
        if self.files_deadline is None or recheck is None or recheck > self.files_deadline:
            return None
        return recheck

    def say_left(self) -> int:
        """``watch --once``: one line on stderr per hot-folder file left for a later run."""
        if self.files_deadline is None:
            return 0
        for name, reason in sorted(self._waiting.items()):
            log.warning("queue %s: left %s in %s for a later run: %s",
                        visible(self.entry.name), visible(name), visible(self.store.sd),
                        reason)
        return len(self._waiting)
