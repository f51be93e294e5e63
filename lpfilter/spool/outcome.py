"""What a worker's pass reports: its summary (and exit status), and who watches its jobs.

Kept apart from ``worker`` so the loop stays short; the watcher, ``print`` and ``demo``
read these.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from lpfilter.errors import SpoolFull
from lpfilter.spool.job import FAILED, HELD, REMOVED, Job
from lpfilter.status import ExitStatus


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
