"""The hot folder's intents: a file about to become a job is named in the journal before its
rename, so that a crash before the job's record is settled at once, with the file's name.

``Intake`` (spool/intake.py) takes a hot-folder file by renaming it to ``jobs/<id>.data``
and records the job later, with the rest of its batch (one fsync of jobs/ and one fdatasync
of the journal for up to 64 files). A kill in between used to leave data files that no
record named: taken in again only after ORPHAN_AGE (a live submission may be between its
rename and its record), as ``recovered-<id>`` of the watcher's user. So before the renames
of a batch, one unsynced write appends an INTENT per file (``Kind.INTENT``): the job's
number, the file's name, its dropper's uid and size, when it was taken, the queue's hold
and size limit then, and who takes it (pid and process start time). The replay keeps the
intents aside (``JobIndex.intents``) until a JOB or GONE names their job.

Recovery (spool/recovery.py) runs in the queue's lease holder, the only process that takes
its hot folder. A data file that an intent names whose writer is no longer running (an
earlier lease holder's: no rename of it can still be in flight) becomes its job at once,
with the file's name and the dropper as its user, checked as the intake checks a file
(``take_over``). An intent of a writer gone whose data file is not there is spent with a
GONE record: the kill came before the rename, or the file was refused or put back. An
intent of a running process (this one) waits for the orphan rule, as a file without one.

A power cut may keep any part of it: the intent without the rename (no data file: the file
is in the hot folder again and is taken under a new number; the intent is spent), the
rename without the intent (the orphan rule: a recovered name, after ORPHAN_AGE), or both.
An intent is untrusted input like every record (bounded and typed by the replay; its name
made visible before it is logged); the file it names is checked on its descriptor.
"""
from __future__ import annotations

import os

from lpfilter import logs
from lpfilter.job import Job, JobState, user_name
from lpfilter.locks import process_alive
from lpfilter.safefiles import UnsafeFile, copy_fd, open_regular
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing's Protocol costs every quick command ~2 ms: for mypy only
    import contextlib
    from typing import Any, Protocol

    from lpfilter.spool.hotfolder import Candidate
    from lpfilter.spool.jobindex import JobIndex
    from lpfilter.spool.journal import Journal

    class _Store(Protocol):
        """What taking a file needs of the store (spool/store.py)."""

        queue: str
        sd: str

        @property
        def owner(self) -> int: ...

        def room(self) -> contextlib.AbstractContextManager[None]: ...

        def stage(self, job_id: str) -> tuple[int, str]: ...

        def refuse(self, path: str, reason: str) -> str: ...

    class _Host(Protocol):
        """What ``IntentLog`` uses of the store it is a base of."""

        _index: JobIndex

        def _append(self, records: list[tuple[int, bytes]], *, durable: bool) -> int: ...

        def _open(self, *, write: bool = False) -> Journal | None: ...

log = logs.getLogger(__name__)

#: Why a job was taken in by recovery rather than by the intake that renamed its file.
RECOVERED = "recovered after a crash while it was taken from the hot folder"


class IntentLog:
    """A base of ``SpoolStore`` (store.py is at its size limit): the journal's side of the
    intents, for the intake and recovery."""

    def note(self: _Host, records: list[tuple[int, bytes]]) -> None:
        """Records a SIGKILL keeps and a power cut may not (intents, and the GONE that
        spends them): unsynced, as the replay copes with either."""
        self._append(records, durable=False)

    def intents(self: _Host) -> dict[str, dict[str, Any]]:
        """The intents no JOB or GONE record has spent: job id -> the INTENT's fields."""
        journal = self._open()
        if journal is None:  # an old spool this process may not write: none
            return {}
        with journal.threads:
            return dict(self._index.intents)


def intent_of(candidate: Candidate, at: float, *, held: bool, limit: int,
              taker: tuple[int, float]) -> dict[str, Any]:
    """What an INTENT says of a hot-folder file (``JobIndex`` checks the same fields)."""
    return {"name": candidate.name, "uid": candidate.uid, "size": candidate.size, "at": at,
            "pid": taker[0], "start": taker[1], "held": held, "limit": limit}


def job_of(job_id: str, queue: str, intent: dict[str, Any], uid: int, size: int, *,
           user: str | None = None) -> Job:
    """The job a file taken from the hot folder becomes (by the intake, or by recovery):
    held if the queue held new jobs, failed (kept, with the reason) if larger than its mx.
    ``user``: the login name of ``uid``, when the caller looked it up already."""
    limit = intent["limit"]
    too_big = 0 < limit < size
    job = Job(job_id, queue, user_name(uid) if user is None else user, intent["name"], size,
              intent["at"], source="hotfolder", state=JobState.FAILED if too_big else
              JobState.HELD if intent["held"] else JobState.QUEUED)
    if too_big:
        job.finished = intent["at"]
        job.last_error = (f"larger than the queue's limit of {limit // 1024} KiB (mx in"
                          " the printcap)")
    return job


def take_over(store: _Store, job_id: str, path: str) -> tuple[int, int]:
    """Check a file taken in (UnsafeFile if it must not be read for its dropper) and
    make it the queue owner's: root gives it to them, the owner's watcher copies a
    file of another user (in the kernel; the copy replaces it atomically). Returns
    the uid of the file's owner before (the job's user) and the size."""
    from lpfilter.spool.hotfolder import dropped_reason  # its imports cost every command

    fd, info = open_regular(path)
    try:
        reason = dropped_reason(info, os.stat(store.sd))
        if reason is not None:
            raise UnsafeFile(reason)
        owner = store.owner
        if info.st_uid == owner:
            return info.st_uid, info.st_size
        if os.geteuid() == 0:  # its only name is in jobs/ now (one link, checked)
            os.fchown(fd, owner, -1)
            os.fchmod(fd, 0o600)
            return info.st_uid, info.st_size
        copy, staged = store.stage(job_id)
        try:
            with store.room():
                size = copy_fd(fd, copy)
                os.fsync(copy)
                os.replace(staged, path)
        except BaseException:
            try:
                os.unlink(staged)
            except OSError:
                pass
            raise
        finally:
            os.close(copy)
        return info.st_uid, size
    finally:
        os.close(fd)


def writers_gone(intents: dict[str, dict[str, Any]]) -> set[str]:
    """The intents whose writer is no longer running (pid and start time: a pid alone may
    have been given to another process): none of their renames can still be in flight."""
    running: dict[tuple[int, float], bool] = {}
    gone = set()
    for job_id, intent in intents.items():
        taker = (intent["pid"], intent["start"])
        if taker not in running:
            running[taker] = process_alive(*taker)
        if not running[taker]:
            gone.add(job_id)
    return gone


def recovered(store: _Store, job_id: str, path: str, intent: dict[str, Any]) -> Job | None:
    """The job of a data file an intent names, its writer gone, checked and made the
    owner's as the intake would have (None: refused and moved aside, or unreadable now:
    looked at again later). Its user is the dropper: the owner of the file, or the one the
    intent names when the file was already made the owner's."""
    try:
        uid, size = take_over(store, job_id, path)
    except UnsafeFile as exc:
        store.refuse(path, f"{exc.reason} (taken from the hot folder as"
                           f" {visible(intent['name'])})")
        return None
    except OSError:
        return None
    job = job_of(job_id, store.queue, intent, intent["uid"] if uid == store.owner else uid,
                 size)
    job.last_error = job.last_error or RECOVERED
    log.warning("queue %s: job %s: %s %s", visible(store.queue), job_id,
                visible(intent["name"]), RECOVERED)
    return job
