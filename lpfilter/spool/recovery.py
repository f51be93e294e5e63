"""Startup and rescan recovery of a queue's spool: what a killed process left behind.

A staged file no one holds locked was being written by a process that died (removed);
a data file in jobs/ that no job of the journal names, older than ORPHAN_AGE, was moved
there by a submission that died before its record (queued again, with a recovered name).
"""
from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from lpfilter.job import Job, JobState
from lpfilter.safefiles import UnsafeFile, open_regular, remove_unlocked

log = logging.getLogger(__name__)

#: A data file without a ticket older than this is a crashed submission (not one in flight).
ORPHAN_AGE = 60.0


if TYPE_CHECKING:  # for mypy only: typing's Protocol costs every quick command ~2 ms
    from typing import Protocol

    class SpoolStore(Protocol):
        """What recovery needs of the store (spool/store.py, which calls it)."""

        queue: str
        tmp_dir: str
        jobs_dir: str

        @property
        def owner(self) -> int: ...

        def refuse(self, path: str, reason: str) -> str: ...

        def write(self, job: Job, *, durable: bool = True) -> None: ...

        def known(self) -> set[str]: ...


def recover_orphans(store: SpoolStore, user: str) -> list[Job]:
    """Jobs for data files whose submission crashed before the job was recorded."""
    remove_unlocked(store.tmp_dir)  # staged by a process that died before its commit
    recovered: list[Job] = []
    now = time.time()
    try:
        names = os.listdir(store.jobs_dir)
    except FileNotFoundError:
        return recovered
    named = store.known()
    for name in names:
        job_id = name[:-5]
        if not name.endswith(".data") or not job_id.isdigit() or job_id in named:
            continue
        path = os.path.join(store.jobs_dir, name)
        try:
            seen = os.lstat(path)
            if now - max(seen.st_mtime, seen.st_ctime) < ORPHAN_AGE:
                continue  # may be in flight: a ticket may come yet
            fd, info = open_regular(path, store.owner)
            os.close(fd)
            if info.st_nlink > 1:  # another name elsewhere: maybe not the owner's data
                raise UnsafeFile(f"it has {info.st_nlink} hard links")
        except UnsafeFile as exc:
            store.refuse(path, exc.reason)
            continue
        except OSError:
            continue
        job = Job(job_id, store.queue, user, f"recovered-{job_id}", info.st_size,
                  info.st_mtime, state=JobState.QUEUED,
                  last_error="recovered after a crash while it was being spooled")
        store.write(job)
        log.warning("queue %s: job %s: recovered a spooled file that no job named",
                    store.queue, job_id)
        recovered.append(job)
    return recovered
