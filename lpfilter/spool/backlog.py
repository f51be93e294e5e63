"""A worker's answer to a spool it cannot write (full, over quota, read-only).

Such a spool is an expected condition: the daemon says so once, keeps the queue waiting and
tries again at each rescan (or event), and says once when it can write again. Ticket
changes that could not be written (a job's outcome) are kept here and written first.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from lpfilter import logs
from lpfilter.errors import SpoolFull

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading

log = logs.getLogger(__name__)

#: How long a one-shot pass that sent a job but could not write its outcome tries to write
#: it before it stops (seconds): else the next run sends the job again.
PATIENCE = 5.0


class Backlog:
    """Ticket writes waiting for room, and whether the queue's trouble was said."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.pending: dict[str, Callable[[], object]] = {}
        self.said: SpoolFull | None = None
        #: Called whenever the spool could be written (the lease's name_again: a lease
        #: taken on a full disk names its holder once it can).
        self.on_room: Callable[[], None] | None = None

    def add(self, job_id: str, retry: Callable[[], object]) -> None:
        """Write this job's change later (``retry`` adds itself again if it fails)."""
        self.pending[job_id] = retry

    def flush(self) -> None:
        """Write what waited, oldest first; SpoolFull when there is still no room."""
        for job_id, retry in list(self.pending.items()):
            del self.pending[job_id]
            retry()

    def written_within(self, stop: threading.Event, clock: Callable[[], float],
                       patience: float = PATIENCE) -> bool:
        """Write what waits, trying for ``patience`` seconds; False when there is still no
        room (or nothing waits, or ``stop`` is set). For a one-shot pass that sent a job
        and could not write its outcome: stopped, it would leave the job to be sent again by
        the next run (a daemon keeps it until it can). Plain sleeps, no wait on ``stop``: a
        signal handler of this thread may set it."""
        deadline = clock() + patience
        while self.pending and not stop.is_set():
            try:
                self.flush()
                return True
            except SpoolFull:
                if clock() >= deadline:
                    return False
                time.sleep(0.2)
        return False

    def full(self, error: SpoolFull, every: float) -> None:
        """Say once (per spell) that the queue waits for its spool directory."""
        if self.said is None:
            log.error("%s; its jobs stay queued and are tried again every %g s", error, every)
        self.said = error

    def room(self) -> None:
        if self.on_room is not None:
            self.on_room()
        if self.said is not None:
            log.warning("queue %s: the spool directory %s can be written again; serving the"
                        " queue", self.queue, self.said.directory)
        self.said = None
