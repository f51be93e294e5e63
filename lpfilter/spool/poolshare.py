"""What the sending threads of a pool's servers share: the pool's records (log, status,
accounting) and the observer of a foreground ``print`` (its progress bar), each used by
one thread at a time where that matters; and what they left running (``end_left_running``)."""
from __future__ import annotations

import threading

from lpfilter import logs
from lpfilter.children import run
from lpfilter.errors import LpfilterError
from lpfilter.safefiles import private_dir
from lpfilter.spool.records import QueueRecords
from lpfilter.spool.store import SpoolStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.job import Job
    from lpfilter.printcap import Entry
    from lpfilter.spool.outcome import Observer

log = logs.getLogger(__name__)


def end_left_running(server: Entry) -> None:
    """A pool's takeover, before its first round: end what a dead watcher's sends on the
    server queue ``server`` left running. A server's filters (and ``lp=|`` program) run in
    that queue's spool as its filter user, so their records (``children.orphans``) are in
    that spool's state folder, made here when the queue was never watched (else no record
    is written: only PR_SET_PDEATHSIG would end a filter, not what it started). Only where
    this process could serve that queue itself (SpoolStore.check: root or the spool's owner,
    a shared spool sticky): anywhere else it would be refused and moved aside."""
    sd = server.string("sd") or ""
    if not sd:
        return
    store = SpoolStore(sd, server.name)
    try:
        store.check("watch")
        private_dir(store.state, store.owner, f"queue {server.name}", sd)
    except (OSError, LpfilterError) as exc:
        log.debug("queue %s: no state folder for its filters' records: %s", server.name, exc)
    run.end_orphans(server, sd)


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
