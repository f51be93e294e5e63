"""What a worker hears of one job's send (spool/worker.py's ``JobReporter``): kept apart
so the worker stays short."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lpfilter.errors import Interruption, SpoolFull
from lpfilter.spool.outcome import Observer, ProgressRecorder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from lpfilter.job import Job
    from lpfilter.spool.ledger import Ledger
    from lpfilter.spool.store import SpoolStore
else:  # Sender is mypy's: typing costs a cron pass ~2 ms
    Protocol = object


class Sender(Protocol):
    """What a reporter needs of its worker (spool/worker.py's ``QueueWorker``)."""

    @property
    def store(self) -> SpoolStore: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def stop(self) -> threading.Event: ...

    @property
    def stop_deadline(self) -> float | None: ...

    @property
    def observer(self) -> Observer | None: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    def _status(self, job: Job, message: str) -> None: ...


#: How long a send's answer to "was a cancel asked for?" holds: a small job's send asks
#: three times within a millisecond (connecting, sending, waiting for the printer's
#: close), and each look is a catch-up of the journal (an fstat). The first ask always
#: looks; a long send asks every TICK, far apart.
CANCEL_LOOK = 0.002


class JobReporter:
    """What a worker hears of one job's send: cancel and shutdown, the "maybe sent" mark,
    progress (the ticket, for status, and the observer) and the printer's status lines."""

    def __init__(self, worker: Sender, job: Job) -> None:
        self.worker = worker
        self.job = job
        self.recorder = ProgressRecorder(worker.store, job)
        self._looked = -CANCEL_LOOK  # (never: the first ask looks)

    def interrupted(self) -> Interruption | None:
        self.recorder.record()
        worker = self.worker
        now = time.monotonic()
        if now - self._looked >= CANCEL_LOOK:
            self._looked = now
            asked = worker.store.stop_requested(self.job.id)
            if asked is not None:
                return Interruption.ABORTED if asked else Interruption.CANCELLED
        if (worker.stop.is_set() and worker.stop_deadline is not None
                and worker.clock() >= worker.stop_deadline):
            return Interruption.SHUTDOWN
        return None

    def first_byte(self) -> None:
        """"Maybe sent", before the first byte leaves: durable already when the batch's
        MARK covers the job (a FIRST record, unsynced), else a durable JOB record."""
        job = self.job
        started, job.send_started = job.send_started, True
        try:
            self.worker.store.first_byte(job)
        except SpoolFull:
            job.send_started = started  # no byte may leave without this mark
            raise
        self.worker.ledger.started(job)  # connected: LPRng's jobstart accounting line

    def progress(self, taken: int) -> None:
        self.recorder.sent = taken
        if self.worker.observer is not None:
            self.worker.observer.progress(self.job, taken)

    def status(self, message: str) -> None:
        self.worker._status(self.job, message)
