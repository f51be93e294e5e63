"""A pool's round (spool/pool.py): the due jobs of one ``run_batch``, handed out in arrival
order to the servers' threads as each becomes free, and what came of them.

The claim is in memory: the process holding the pool's lease is the only one handing its
jobs out. A claimed job that no MARK of this process covers gets one durable MARK for it
and the next due jobs (``batch``, spool/marks.py), as a plain queue's worker writes one a
batch; a pool's jobs took the old path before, two fdatasyncs a job. The due jobs are
listed again (``refill``, a copy of every queued ticket) only when ``stale``: at a round's
start, when woken, when files were taken in or a job was put back; it was at every
job's end, and a pool of two printers took ~240 jobs/s where a plain queue takes 1,100
(bench/README.md, round 9).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from lpfilter.job import Job, JobState
from lpfilter.spool.control import print_order
from lpfilter.spool.marks import BATCH_JOBS, due_batch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap import Entry
    from lpfilter.spool.intake import Intake
    from lpfilter.spool.lpcops import Gate
    from lpfilter.spool.outcome import WorkSummary
    from lpfilter.spool.poolboard import Board
    from lpfilter.spool.store import SpoolStore

#: The dispatcher looks at stop and at servers whose rest ended at least this often.
TICK = 1.0


class Server(Protocol):
    """What a round needs of a pool's server queue (pool.ServerWorker)."""

    queue: str
    back_at: float
    gate: Gate

    def serve_round(self, current: Round) -> None:
        """Take jobs while this server is free and one is due that it has not failed."""


class Pool(Protocol):
    """What a round needs of its pool (pool.PoolWorker)."""

    queue: str
    entry: Entry
    store: SpoolStore
    intake: Intake
    gate: Gate
    shown: Board
    stop: threading.Event
    lock: threading.RLock
    clock: Callable[[], float]
    early: set[str]
    failed_by: dict[str, set[str]]

    @property
    def servers(self) -> Sequence[Server]:
        """Its server queues."""

    def board(self, *, now: bool = False) -> None:
        """Its board changed (which server prints which job)."""


class Round:
    """One ``run_batch`` of a pool: the due jobs, which are being sent, the threads."""

    def __init__(self, pool: Pool, summary: WorkSummary,
                 until: Callable[[], bool] | None) -> None:
        self.pool, self.summary, self.until = pool, summary, until
        self.cond = threading.Condition(pool.lock)
        #: Due job ids, in arrival order, that no server is sending.
        self.pending: list[str] = []
        self.flying: set[str] = set()
        self.threads: dict[str, threading.Thread] = {}
        #: When the first job that is not due yet is (None: there is none).
        self.retry_at: float | None = None
        self.stale = True  # refill before the next hand-out
        self.ran = False
        self.error: BaseException | None = None

    def run(self) -> None:
        """Start a thread for each free server that has a job to take; wait for them. Files
        dropped into the pool's spool meanwhile are taken in (a round may last long)."""
        pool = self.pool
        adopted = time.monotonic()  # serve() took them in just before
        while True:
            with self.cond:
                if self.stale or (self.retry_at is not None and pool.clock() >= self.retry_at):
                    self.refill()
                now = pool.clock()
                if self.error is None and not self.stopping():
                    for server in pool.servers:
                        if (server.queue not in self.threads and server.back_at <= now
                                and not server.gate.file.read().printing_disabled
                                and self.wants(server)):
                            self._start(server)
                if not self.threads:
                    return
                rests = [s.back_at - now for s in pool.servers if s.back_at > now]
                self.cond.wait(min([TICK, *rests]))
                if pool.shown.due():  # a change a busy round has not shown yet
                    pool.board()
            if self.error is None and time.monotonic() - adopted >= TICK:
                adopted = time.monotonic()
                try:  # this thread is serve()'s, the only one using the intake
                    pool.intake.adopt()
                    self.stale = True
                except BaseException as exc:  # noqa: BLE001 - raised by run_batch
                    self.fail(exc)

    def _start(self, server: Server) -> None:
        thread = threading.Thread(target=server.serve_round, args=(self,),
                                  name=f"pool-{self.pool.queue}-{server.queue}", daemon=True)
        self.threads[server.queue] = thread
        thread.start()

    def stopping(self) -> bool:
        """The daemon stops, the pass ends, or lpc stopped (or redirected) the pool."""
        return (self.pool.stop.is_set() or bool(self.until and self.until())
                or self.pool.gate.stopped())

    def refill(self) -> None:
        """The due jobs from the spool (jobs queued meanwhile, or put back, included); run
        when ``stale`` (see the module's docstring), and by a server that finds none left."""
        pool, self.stale = self.pool, False
        now = pool.clock()
        fifo = pool.entry.flag("fifo")
        due: list[str] = []
        self.retry_at = None
        for job in print_order(pool.store.jobs(finished=False)):
            if job.state != JobState.QUEUED or job.id in self.flying:
                continue
            if job.next_try <= now or job.id in pool.early:
                due.append(job.id)
                continue
            self.retry_at = job.next_try if self.retry_at is None else min(self.retry_at,
                                                                           job.next_try)
            if fifo:
                break  # strict order: later jobs wait for this one's retry
        self.pending = due

    def _takes(self, server: Server, job_id: str) -> bool:
        return server.queue not in self.pool.failed_by.get(job_id, ())

    def wants(self, server: Server) -> bool:
        """Is a due job waiting that this server has not failed?"""
        with self.cond:
            return any(self._takes(server, j) for j in self.pending)

    def may_go(self, server: Server) -> bool:
        """Should the server's thread take (or wait for) another job?"""
        with self.cond:
            if (self.error is not None or self.stopping() or server.back_at > self.pool.clock()
                    or server.gate.file.read().printing_disabled):
                return False
            if not self.wants(server):
                self.refill()
            return self.wants(server)

    def claim(self, server: Server) -> str | None:
        """The first due job this server may take, now its own (None: none is left)."""
        with self.cond:
            for job_id in self.pending:
                if self._takes(server, job_id):
                    self.pending.remove(job_id)
                    self.flying.add(job_id)
                    return job_id
        return None

    def batch(self, job_id: str) -> list[Job]:
        """The claimed job and the next due ones, at most a batch: what one MARK covers."""
        with self.cond:
            ids = [job_id, *self.pending[:BATCH_JOBS - 1]]
        found = [job for job in map(self.pool.store.read, ids) if job is not None]
        return due_batch(found, self.pool.clock(), self.pool.early, fifo=False)

    def done(self, job_id: str | None, state: JobState | None) -> None:
        """A claimed job's attempt ended: put back when it was, counted in the summary."""
        with self.cond:
            if job_id is None:
                return
            self.flying.discard(job_id)
            if state is not None:
                self.ran = True
                self.summary.add(state)
            if state == JobState.QUEUED:  # put back: listed again in print order (topq
                self.stale = True  # and fifo), due for another server or waiting its retry
            self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            if self.error is None:
                self.error = exc
            self.cond.notify_all()

    def ended(self, server: Server) -> None:
        with self.cond:
            self.threads.pop(server.queue, None)
            self.cond.notify_all()
