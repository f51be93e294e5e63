"""Startup and rescan recovery of a queue's spool: what a killed process left behind.

A staged file no one holds locked was being written by a process that died (removed).
A data file in jobs/ that no job of the journal names was moved there by a process that
died before its record: when an intent names it (a hot-folder file, spool/intents.py) and
its writer is gone, it becomes that job at once, with the file's name and its dropper;
otherwise once older than ORPHAN_AGE (a live submission may be between its rename and its
record), queued again with a recovered name, flagged a possible duplicate: whoever sent it
was never told it was taken (a ``print`` that printed no id, an LPD client never
acknowledged, which sends it again; or a resend the LPD server had recognised, killed
before it removed the file). Intents whose writer is gone and whose data
file is not there are spent. The caller holds the queue's lease (the worker's ``recover``
and its rescans).
"""
from __future__ import annotations

import os
import time

from lpfilter import logs
from lpfilter.job import Job, JobState
from lpfilter.safefiles import UnsafeFile, fsync_dir, open_regular, remove_unlocked
from lpfilter.spool.intents import recovered, writers_gone
from lpfilter.spool.journalformat import gone_record

log = logs.getLogger(__name__)

#: A data file without a ticket older than this is a crashed submission (not one in flight).
ORPHAN_AGE = 60.0


TYPE_CHECKING = False
if TYPE_CHECKING:  # for mypy only: typing's Protocol costs every quick command ~2 ms
    import contextlib
    from typing import Any, Protocol

    class SpoolStore(Protocol):
        """What recovery needs of the store (spool/store.py, which calls it)."""

        queue: str
        sd: str
        state: str
        tmp_dir: str
        jobs_dir: str

        @property
        def owner(self) -> int: ...

        def room(self) -> contextlib.AbstractContextManager[None]: ...

        def stage(self, job_id: str) -> tuple[int, str]: ...

        def refuse(self, path: str, reason: str) -> str: ...

        def write_all(self, jobs: list[Job], *, durable: bool = True) -> None: ...

        def note(self, records: list[tuple[int, bytes]]) -> None: ...

        def known(self) -> set[str]: ...

        def intents(self) -> dict[str, dict[str, Any]]: ...


def recover_orphans(store: SpoolStore, user: str) -> list[Job]:
    """Jobs for data files whose submission crashed before the job was recorded (``user``:
    theirs when nothing says whose they are); their records in one write, after one fsync
    of jobs/ (a durable record never names a rename a power cut could take back)."""
    remove_unlocked(store.tmp_dir)  # staged by a process that died before its commit
    from lpfilter.spool.notes import retire_old  # (not every command's import)
    retire_old(store.state)  # an older lpfilter's retry notes: records now (spool/notes.py)
    try:
        names = os.listdir(store.jobs_dir)
    except FileNotFoundError:
        return []
    named = store.known()
    intents = store.intents()
    gone = writers_gone(intents) if intents else set()
    jobs: list[Job] = []
    now = time.time()
    for name in names:
        job_id = name[:-5]
        if not name.endswith(".data") or not job_id.isdigit() or job_id in named:
            continue
        path = os.path.join(store.jobs_dir, name)
        intent = intents.get(job_id)
        if job_id in gone and intent is not None:
            job = recovered(store, job_id, path, intent)
        else:
            job = _orphan(store, job_id, path, now, user, intent)
        if job is not None:
            jobs.append(job)
    if jobs:
        with store.room():
            fsync_dir(store.jobs_dir)
        store.write_all(jobs)
    _spend(store, gone - named - {job.id for job in jobs})
    return jobs


def _orphan(store: SpoolStore, job_id: str, path: str, now: float, user: str,
            intent: dict[str, Any] | None) -> Job | None:
    """A data file no record names older than ORPHAN_AGE: its job (named as its intent
    says, if one does, whose writer still runs), None if it is too young or refused."""
    try:
        seen = os.lstat(path)
        if now - max(seen.st_mtime, seen.st_ctime) < ORPHAN_AGE:
            return None  # may be in flight: a ticket may come yet
        if intent is not None:
            return recovered(store, job_id, path, intent)
        fd, info = open_regular(path, store.owner)
        os.close(fd)
        if info.st_nlink > 1:  # another name elsewhere: maybe not the owner's data
            raise UnsafeFile(f"it has {info.st_nlink} hard links")
    except UnsafeFile as exc:
        store.refuse(path, exc.reason)
        return None
    except OSError:
        return None
    log.warning("queue %s: job %s: recovered a spooled file that no job named",
                store.queue, job_id)
    return Job(job_id, store.queue, user, f"recovered-{job_id}", info.st_size,
               info.st_mtime, state=JobState.QUEUED, possible_duplicate=True,
               last_error="recovered after a crash while it was being spooled (its sender"
                          " was never told it was taken, and may have sent it again)")


def _spend(store: SpoolStore, ids: set[str]) -> None:
    """One GONE for the intents of writers gone that name no data file (any more): the
    kill came before the rename, or the file was refused, or put back in the hot folder."""
    spent = sorted(job_id for job_id in ids
                   if not os.path.lexists(os.path.join(store.jobs_dir, f"{job_id}.data")))
    if spent:
        store.note([gone_record(spent)])
