"""What a worker's pass reports: its summary (and exit status), and who watches its jobs.

Kept apart from ``worker`` so the loop stays short; the watcher, ``print`` and ``demo``
read these.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from lpfilter.errors import SpoolFull
from lpfilter.job import FAILED, HELD, REMOVED, Job
from lpfilter.status import ExitStatus

if TYPE_CHECKING:
    from lpfilter.spool.store import SpoolStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WorkSummary:
    """What a pass did; its exit status says whether every job printed."""

    counts: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    #: Hot-folder files a one-shot pass left for a later run (each said on stderr).
    left: int = 0
    #: A one-shot pass stopped because the spool could not be written.
    full: SpoolFull | None = None

    def add(self, state: str) -> None:
        self.counts[state] = self.counts.get(state, 0) + 1

    def status(self) -> ExitStatus:
        if self.full is not None:
            return ExitStatus.SPOOL_FULL
        if self.counts.get(FAILED) or self.counts.get(REMOVED):
            return ExitStatus.JOB_FAILED
        if self.counts.get(HELD):
            return ExitStatus.JOB_HELD
        if self.pending or self.left:
            return ExitStatus.JOB_PENDING
        return ExitStatus.OK


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
