"""What a worker's pass and a watcher's run report, and who watches a worker's jobs.

Kept apart from ``worker`` so the loop stays short; the watcher, ``print`` and ``demo``
read these. They say what happened (counts, troubles); the commands choose the exit
status from them (``lpfilter.commands.exits``).
"""
from __future__ import annotations

import time

from lpfilter import logs
from lpfilter.errors import LpfilterError, SpoolFull
from lpfilter.job import Job, JobState
from lpfilter.structs import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from lpfilter.spool.store import SpoolStore
else:  # Observer is mypy's: a cron pass (watch --once) need not import typing (~2 ms)
    Protocol = object

log = logs.getLogger(__name__)


class WorkSummary(Struct):
    """What a pass did: how many attempts ended in each state, what it left waiting.
    (A Struct, not a dataclass: dataclasses costs a cron pass ~5 ms of imports.)"""

    __slots__ = _fields = ("counts", "pending", "left", "full", "unwritten")
    counts: dict[JobState, int]
    pending: int
    #: Hot-folder files a one-shot pass left for a later run (each said on stderr).
    left: int
    #: A one-shot pass stopped because the spool could not be written.
    full: SpoolFull | None
    #: The jobs it sent whose outcome it could not write (sent again by the next run).
    unwritten: list[str]

    def __init__(self, counts: dict[JobState, int] | None = None, pending: int = 0,
                 left: int = 0, full: SpoolFull | None = None,
                 unwritten: list[str] | None = None) -> None:
        self.counts = {} if counts is None else counts
        self.pending = pending
        self.left = left
        self.full = full
        self.unwritten = [] if unwritten is None else unwritten

    def full_text(self) -> str:
        """What a pass stopped by a full spool says: the spool, and what becomes of its
        jobs (a job sent whose outcome could not be written is sent again)."""
        said = f"{self.full}; the queue's jobs stay queued for the next run"
        if self.unwritten:
            said += (f"; job {', '.join(self.unwritten)} went to the printer, but its outcome"
                     " could not be written: the next run sends it again, flagged a possible"
                     " duplicate")
        return said

    def add(self, state: JobState) -> None:
        self.counts[state] = self.counts.get(state, 0) + 1


class WatchOutcome(Struct):
    """What a watcher's run came to. A daemon stopped by a signal reports only the queues
    it could not serve (its jobs' outcomes are in the log and accounting); ``--once``
    also each queue's pass and the queues another process was serving."""

    __slots__ = _fields = ("broken", "passes", "busy")
    #: Queue name -> why it could not be started or was stopped (its spool directory
    #: missing or unwritable...).
    broken: dict[str, BaseException]
    #: --once: each queue's pass, or the error that stopped its worker.
    passes: list[WorkSummary | LpfilterError]
    #: --once: queues skipped because another process served them.
    busy: list[str]

    def __init__(self, broken: dict[str, BaseException] | None = None,
                 passes: list[WorkSummary | LpfilterError] | None = None,
                 busy: list[str] | None = None) -> None:
        self.broken = {} if broken is None else broken
        self.passes = [] if passes is None else passes
        self.busy = [] if busy is None else busy


class Observer(Protocol):
    """What a foreground ``print`` or ``demo`` shows while a job is sent."""

    def progress(self, job: Job, taken: int) -> None: ...

    def status(self, job: Job, message: str) -> None: ...

    def end(self, job: Job) -> None: ...


#: An active job's ticket gets its bytes_sent at most this often (for ``status``).
PROGRESS_EVERY = 1.0


class ProgressRecorder:
    """Puts an active job's byte count in its ticket for ``status``, at most once every
    PROGRESS_EVERY seconds and without fsync: a 1 GiB send costs a few small renames.

    ``record`` runs from the send's own checks (every chunk, and every tick while the
    printer takes nothing), so a stalled send shows what it got to."""

    def __init__(self, store: SpoolStore, job: Job) -> None:
        self.store = store
        self.job = job
        self.sent = 0
        self._written = 0
        self._at = time.monotonic()
        self._full = False

    def record(self) -> None:
        if self.sent == self._written or time.monotonic() - self._at < PROGRESS_EVERY:
            return
        self._at = time.monotonic()
        self._written = self.job.bytes_sent = self.sent
        try:
            with self.store.tickets_locked():
                self.store.write(self.job, durable=False)
        except SpoolFull as exc:  # news for status, not worth failing a send for
            if not self._full:
                log.warning("%s; the job's progress is not shown meanwhile", exc)
            self._full = True
