"""What the sending threads of a pool's servers share: the pool's records (log, status,
accounting) and the observer of a foreground ``print`` (its progress bar), each used by
one thread at a time where that matters."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from lpfilter.spool.records import QueueRecords

if TYPE_CHECKING:
    from lpfilter.job import Job
    from lpfilter.printcap import Entry
    from lpfilter.spool.outcome import Observer


class SharedRecords(QueueRecords):
    """The pool's records, written by several servers' threads: the log file, opened on
    its first line, is opened once. (A leaf lock: nothing is taken while it is held.)"""

    def __init__(self, entry: Entry) -> None:
        super().__init__(entry)
        self._log_lock = threading.Lock()

    def log(self, message: str, job: Job | None = None) -> None:
        with self._log_lock:
            super().log(message, job)


class Serialized:
    """An observer (a foreground print's progress bar) told by one server at a time."""

    def __init__(self, observer: Observer, lock: threading.RLock) -> None:
        self.observer = observer
        self.lock = lock

    def progress(self, job: Job, taken: int) -> None:
        with self.lock:
            self.observer.progress(job, taken)

    def status(self, job: Job, message: str) -> None:
        with self.lock:
            self.observer.status(job, message)

    def end(self, job: Job) -> None:
        with self.lock:
            self.observer.end(job)
