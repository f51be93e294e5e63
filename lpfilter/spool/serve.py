"""Serving a queue from this process: take its lease, run its worker, let the lease go.

``watch`` (a thread per queue), ``watch --once`` and a foreground ``print`` serve a queue
with the same code, as rq's ``Worker.work(burst=True)`` is its daemon's: a ``QueueServer``
holds the queue's lease while ``QueueWorker.serve`` runs (with ``burst``, until nothing can
be done now) and lets it go after. ``serve_in_foreground`` is ``print``'s way in: it
serves the queue itself when no other process does, and waits while a one-shot one ends.
"""
from __future__ import annotations

import signal
import time
from collections.abc import Callable

from lpfilter import logs
from lpfilter.job import JobState
from lpfilter.spool.lease import QueueLease, holder_words
from lpfilter.spool.outcome import WorkSummary
from lpfilter.structs import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading

    from lpfilter.errors import LpfilterError
    from lpfilter.printcap import Entry
    from lpfilter.spool.outcome import Observer
    from lpfilter.spool.store import SpoolStore
    from lpfilter.spool.worker import QueueWorker

log = logs.getLogger(__name__)

#: How often ``print`` looks at its jobs while another process serves their queue.
POLL = 0.1
#: Lease purposes of processes that end by themselves: a ``print`` waits for them (for
#: its jobs to be final, or to serve the queue itself), not only for a daemon.
ONE_SHOT = ("watch --once", "print")


def make_worker(entry: Entry, *, lock_dir: str, settle: float = 2.0,
                store: SpoolStore | None = None) -> QueueWorker:
    """The worker for a queue: a pool's for a queue with ``sv=``, else the plain one (a
    print left to a daemon loads neither, a plain queue's pass no pool module)."""
    from lpfilter.printcap import pools
    if pools.is_pool(entry):
        from lpfilter.spool.pool import PoolWorker
        return PoolWorker(entry, lock_dir=lock_dir, settle=settle, store=store)
    from lpfilter.spool.worker import QueueWorker
    return QueueWorker(entry, lock_dir=lock_dir, settle=settle, store=store)


class QueueServer:
    """One queue served by this process: its lease, and the worker that runs while it
    is held. ``watch`` stops it from its main thread; a signal handler only ``interrupt``s."""

    def __init__(self, entry: Entry, lease: QueueLease, *, lock_dir: str,
                 settle: float = 2.0, store: SpoolStore | None = None) -> None:
        self.entry = entry
        self.lease = lease
        self.worker = make_worker(entry, lock_dir=lock_dir, settle=settle, store=store)
        self.worker.backlog.on_room = lease.name_again  # (a lease taken on a full disk)

    def take(self) -> bool:
        """Take the queue's lease now if nobody holds it."""
        return self.lease.take()

    def release(self) -> None:
        self.lease.release()

    def serve(self, *, burst: bool, wait_retries: bool = False,
              until: Callable[[], bool] | None = None, every_job: bool = False,
              give_up: float | None = None, look_again: bool = False) -> WorkSummary:
        """Serve the queue, its lease taken (see ``QueueWorker.serve`` for the rest), and
        let the lease go. ``look_again`` (a foreground print): after letting go, take it
        again and serve while a queued job is due: another print may have queued one
        while we held the lease, and left it to us. On an error, or a pass ended by a full
        spool, the lease stays held: the caller says why, then ``release``s it, so a
        successor finds the reason said."""
        summary = self.worker.serve(burst=burst, wait_retries=wait_retries, until=until,
                                    every_job=every_job, give_up=give_up)
        if summary.full is not None:
            return summary
        self.lease.release()
        while (look_again and summary.full is None and not self.worker.stop.is_set()
               and self.worker.away is None and (give_up is None or time.time() < give_up)
               and _due(self.worker.store) and not self.worker.gate.stopped()
               and self.take()):
            again = self.worker.serve(burst=True)
            self.lease.release()
            if not again.counts and again.full is None:
                break  # nothing could be sent (fifo: a job ahead waits out its pause)
            summary = again
        self.worker.store.close()  # what ``_due`` opened again after the pass closed it
        return summary

    def stop(self, deadline: float) -> None:
        """Stop taking jobs; a running send goes on until ``deadline``, then is put back."""
        self.worker.stop_deadline = deadline
        self.worker.stop.set()
        self.worker.wake()

    def interrupt(self, signum: int = 0, frame: object = None) -> None:
        """Ctrl-C or SIGTERM in the foreground: stop now, a running send put back. A
        signal handler: it only sets flags, which a one-shot pass looks at every STOP_TICK."""
        self.worker.stop_deadline = time.time()
        self.worker.stop.set()


class Served(Struct):
    """A queue a watcher (spool/watcher.py) runs, or waits to run while another process
    has it."""

    __slots__ = _fields = ("entry", "server", "thread", "summary", "watches", "error")
    entry: Entry
    server: QueueServer
    thread: threading.Thread | None
    summary: WorkSummary
    watches: list[int]
    #: Why the worker stopped, when its spool went away or became unwritable.
    error: LpfilterError | None

    def __init__(self, entry: Entry, server: QueueServer) -> None:
        self.entry, self.server = entry, server
        self.thread, self.error = None, None
        self.summary, self.watches = WorkSummary(), []

    @property
    def worker(self) -> QueueWorker:
        return self.server.worker


class Foreground(Struct):
    """How a foreground ``print``'s serving ended."""

    __slots__ = _fields = ("left_to_daemon", "summary", "interrupted", "waited_on")
    #: A daemon serves the queue: it prints the jobs, and nothing was waited for.
    left_to_daemon: bool
    #: What this process's own serving did (None: another process served the jobs).
    summary: WorkSummary | None
    #: Ctrl-C or SIGTERM ended it.
    interrupted: bool
    #: Another one-shot process served the queue longer than the patience ("served by
    #: pid N (print)"): the jobs stay queued to it.
    waited_on: str

    def __init__(self, left_to_daemon: bool = False, summary: WorkSummary | None = None,
                 interrupted: bool = False, waited_on: str = "") -> None:
        self.left_to_daemon = left_to_daemon
        self.summary = summary
        self.interrupted = interrupted
        self.waited_on = waited_on


def serve_in_foreground(entry: Entry, store: SpoolStore, ids: list[str], *, lock_dir: str,
                        wait: bool, patience: Callable[[], float | None],
                        observer: Observer | None = None) -> Foreground:
    """``print``: serve the queue until the jobs ``ids`` are final, or leave them to the
    daemon that serves it. A one-shot process (``watch --once``, another ``print``) that
    holds the queue is waited for when ``wait`` asks for the final states (or it may be
    ending its last pass): until the jobs are final, or it lets go and we serve them.
    ``patience``: how long retry pauses are waited out (None: no bound, for ``--wait``),
    asked once the queue is ours (a bad setting is said only when it is used)."""
    lease = QueueLease.of(store, "print")
    while not lease.take():
        holder = lease.holder()
        log.info("queue %s is %s; the job is queued there", entry.name, holder_words(holder))
        if not wait and not (holder is not None and holder.purpose in ONE_SHOT):
            return Foreground(left_to_daemon=True)  # a daemon: it prints the job
        after = None if wait else patience()  # (a stopped print must not hold us for good)
        waited = _wait_for(store, ids, lease, None if after is None else time.time() + after)
        if waited is not None:  # final, or left queued to it (print says so: exit 8)
            return Foreground(waited_on="" if waited else holder_words(lease.holder()))
        # Whoever served the queue went away with our jobs unfinished: serve it ourselves.
    # The print's own store, lent: the worker reads the journal the print just wrote
    # through the same replay, and the print its jobs' ends (bench/README.md, round 9).
    server = QueueServer(entry, lease, lock_dir=lock_dir, store=store)
    server.worker.observer = observer
    after = patience()
    give_up = None if after is None else time.time() + after
    previous = {s: signal.signal(s, server.interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = server.serve(burst=True, wait_retries=True, give_up=give_up,
                               until=AllFinal(store, ids), look_again=True)
    finally:
        server.release()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return Foreground(summary=summary, interrupted=server.worker.stop.is_set())


def _due(store: SpoolStore) -> bool:
    """Is a queued job ready to be sent now?"""
    now = time.time()
    return any(job.state == JobState.QUEUED and job.next_try <= now
               for job in store.jobs(finished=False))


class AllFinal:
    """Are all of a ``print``'s jobs final? Asked before each job the worker sends: a job
    found final is not read again, and the look stops at the first that is not (they are
    sent in order). It read every job each time: 1000 jobs, a million reads, 8.7 s of a
    1000-file ``print``'s 9 (bench/README.md)."""

    def __init__(self, store: SpoolStore, ids: list[str]) -> None:
        self.store, self.ids, self.seen = store, ids, 0

    def __call__(self) -> bool:
        while self.seen < len(self.ids):
            job = self.store.read(self.ids[self.seen])
            if job is not None and not job.final:
                return False
            self.seen += 1
        return True


def _wait_for(store: SpoolStore, ids: list[str], lease: QueueLease,
              give_up: float | None) -> bool | None:
    """Wait while another process prints the jobs: True once each is final; False when
    ``give_up`` (a time) passes first, the jobs left queued to it; None as soon as nobody
    serves the queue any more (one that died must not leave us waiting: serve it)."""
    polls, all_final = 0, AllFinal(store, ids)
    while not all_final():
        if give_up is not None and time.time() >= give_up:
            return False
        time.sleep(POLL)
        polls += 1
        if polls % 10 == 0 and lease.holder() is None:
            return True if all_final() else None
    return True
