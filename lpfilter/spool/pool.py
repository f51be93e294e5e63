"""Printer pools (``sv=``): a queue whose jobs print on the first free of several printers.

The pool's worker is a ``QueueWorker`` whose ``run_batch`` hands the pool's due jobs, in
arrival order, to one sending thread per server queue (``ServerWorker``). A server sends
with its own entry (its ``lp=``, backend settings, filters) from the pool's spool, and
writes the outcome in the pool's ticket, log and accounting. The pool's jobs stay in the
pool's spool directory: the process holding the pool's lease is the only one handing them
out, so the claim is in memory (``Round``), and ``process`` still checks the ticket under
the tickets lock as for any queue.

*Free* means: the server's printer lock (``PrinterAccess``, shared with the server
queue's own worker and with any queue printing there) can be taken, and the server is not
resting after a failure. A server whose printer is busy waits for its lock while the others
take the jobs; it claims a job only once it holds the lock, so no job waits on a busy
printer while another is free.

A failure on one server (refused, unreachable, a reset, a refusal of the job) is that
printer's: the job goes back to the pool at once, the attempt is not counted, another
server takes it, and the failing server rests (``connect_interval`` doubling, at least a
second, as the queue's own retries) before it takes another job. Only when every server
has failed the job does the pool's own retry policy (``send_try``,
``send_failure_action``...) decide, once for that round of failures. A job a server's
program asks to hold or remove (exit codes) is held or removed at once.
"""
from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable

from lpfilter import logs
from lpfilter.errors import (HoldJob, LpfilterError, NotConnected, RemoveJob, SpoolFull,
                             in_brief)
from lpfilter.job import Job, JobState
from lpfilter.printcap import pools
from lpfilter.spool import policy, poolboard, poolshare
from lpfilter.spool.control import print_order
from lpfilter.spool.poolshare import Serialized, SharedRecords
from lpfilter.spool.outcome import Observer, WorkSummary
from lpfilter.spool.printers import PrinterAccess
from lpfilter.spool.worker import QueueWorker
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lpfilter.printcap import Entry
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)

#: The dispatcher looks at stop and at servers whose rest ended at least this often.
TICK = 1.0


def make_worker(entry: Entry, *, lock_dir: str, settle: float = 2.0,
                store: SpoolStore | None = None) -> QueueWorker:
    """The worker for a queue: a pool's for a queue with ``sv=``, else the plain one."""
    if pools.is_pool(entry):
        return PoolWorker(entry, lock_dir=lock_dir, settle=settle, store=store)
    return QueueWorker(entry, lock_dir=lock_dir, settle=settle, store=store)


class PoolWorker(QueueWorker):
    """Serves a pool queue: its spool, its lease, its records; the servers send."""

    def __init__(self, entry: Entry, **options: Any) -> None:  # QueueWorker's
        super().__init__(entry, **options)
        self.lock = threading.RLock()
        self.records = self.ledger.records = self.intake.records = SharedRecords(entry)
        members, self.problems = pools.servers(entry)
        for problem in self.problems:
            log.error("pool %s: %s", visible(entry.name), visible(problem))
        self.servers = [ServerWorker(self, member) for member in members]
        #: Job id -> the servers that failed it since its last counted attempt.
        self.failed_by: dict[str, set[str]] = {}
        self.round: Round | None = None

    def wake(self, moved_in: str | None = None) -> None:
        super().wake(moved_in)
        current = self.round
        if current is not None:  # a new job: an idle server may take it now
            with current.cond:
                current.cond.notify_all()

    def run_batch(self, summary: WorkSummary,
                  until: Callable[[], bool] | None = None) -> tuple[bool, float | None]:
        """Hand the due jobs to the free servers until none is left that a free server may
        take. Returns (an attempt ended, when to look again)."""
        current = self.round = Round(self, summary, until)
        for server in self.servers:
            server.early = self.early  # serve() makes a new set for each pass
        try:
            current.run()
        finally:
            self.round = None
        if current.error is not None:
            raise current.error
        if current.ran:
            self.prune()
        now = self.clock()
        resting = [s.back_at for s in self.servers if s.back_at > now]
        retry_at = current.retry_at
        if current.pending and resting:
            retry_at = min(resting) if retry_at is None else min(retry_at, *resting)
        if current.pending and not current.ran:
            self._say_stuck(resting)
        return current.ran, retry_at

    def _say_stuck(self, resting: list[float]) -> None:
        """Due jobs that no server can take now: say why in the pool's status."""
        self.records.status(poolboard.stuck(self.queue, [(s.queue, s.trouble) for s in
                                                         self.servers], self.problems, resting))

    def recover(self) -> None:
        """What the servers' sends left running first (their records are in their spools)."""
        for server in self.servers:
            poolshare.end_left_running(server.entry)
        super().recover()

    def server_failed(self, server: ServerWorker, job: Job, exc: LpfilterError,
                      delay: float) -> JobState:
        """A server failed ``job``: another server takes it, unless each one has failed it
        (then the pool's retry policy decides) or the server's program said hold or remove."""
        everyone = {s.queue for s in self.servers}
        with self.lock:
            tried = self.failed_by.setdefault(job.id, set())
            tried.add(server.queue)
            last = tried >= everyone or isinstance(exc, (HoldJob, RemoveJob))
            if last:
                del self.failed_by[job.id]
        self.board()
        if last:
            return self._everyone_failed(job, exc)
        self._status(job, f"{server.queue}: {in_brief(exc)}, not used for {delay:g} s;"
                     " the pool's other printers take its jobs")
        return self.ledger.finish(job, JobState.QUEUED, f"{server.queue}: {exc.message};"
                                  " another printer of the pool takes it", attempt=False)

    def _everyone_failed(self, job: Job, exc: LpfilterError) -> JobState:
        """Each server failed the job (or one's program decided): the pool's own policy
        decides, as for a queue's attempt; an unreachable printer counts as for a queue."""
        now = self.clock()
        if isinstance(exc, NotConnected):
            job.unreachable_tries += 1
            job.unreachable_since = job.unreachable_since or now
        else:
            job.unreachable_since, job.unreachable_tries = 0.0, 0
        decision = policy.decide(exc, job.attempts, self.entry,
                                 unreachable_tries=job.unreachable_tries)
        state = decision.state
        if decision.program:
            state = policy.run_failure_program(decision.program, job, self.records, self.entry)
        message = exc.message
        if len(self.servers) > 1 and not isinstance(exc, (HoldJob, RemoveJob)):
            troubles = "; ".join(f"{s.queue}: {s.trouble}" for s in self.servers if s.trouble)
            message = f"every printer of pool {self.queue} failed it ({troubles})"
        if state == JobState.QUEUED:
            self._status(job, f"{message}; next try in {decision.delay:g} s")
        return self.ledger.finish(job, state, message, delay=decision.delay,
                                  attempt=decision.counted)

    def _status(self, job: Job, message: str) -> None:
        with self.lock:  # servers' threads: one status line (and observer call) at a time
            super()._status(job, message)

    def board(self) -> None:
        """Rewrite the board status shows (which server prints which job, which fails)."""
        with self.lock:
            states: list[poolboard.ServerState] = [
                {"queue": s.queue, "job": s.job, "trouble": s.trouble, "back_at": s.back_at}
                for s in self.servers]
            try:
                poolboard.write(self.store.state, states, self.store.owner)
            except OSError as exc:  # news only: a full disk must not stop the pool
                log.debug("pool %s: board not written: %s", self.queue, exc)

    def close(self) -> None:
        for server in self.servers:
            server.printers.close()
        super().close()


class ServerWorker(QueueWorker):
    """One server queue of a pool: its entry decides where and how a job is sent; the
    pool's spool, ticket lock, ledger and records keep the job."""

    def __init__(self, pool: PoolWorker, entry: Entry) -> None:
        super().__init__(entry, lock_dir=pool.lock_dir, stop=pool.stop, clock=pool.clock)
        self.pool = pool
        self.store, self.records, self.ledger = pool.store, pool.records, pool.ledger
        self.backlog, self.intake = pool.backlog, pool.intake
        self.printers = PrinterAccess(pool.lock_dir, f"pool {pool.queue} on {entry.name}")
        #: Failures in a row, what the last one was, and until when it rests.
        self.failures, self.trouble, self.back_at = 0, "", 0.0
        #: The pool's job it is sending now.
        self.job = ""

    # The pool's stop deadline and observer are the server's (set on the pool).
    @property
    def stop_deadline(self) -> float | None:
        return self.pool.stop_deadline

    @stop_deadline.setter
    def stop_deadline(self, value: float | None) -> None:
        pass

    @property
    def observer(self) -> Observer | None:
        watcher = self.pool.observer
        return None if watcher is None else Serialized(watcher, self.pool.lock)

    @observer.setter
    def observer(self, value: Observer | None) -> None:
        pass

    def _status(self, job: Job, message: str) -> None:
        self.pool._status(job, f"{self.queue}: {message}")

    def _send(self, job: Job, data_fd: int) -> JobState:
        """Send one of the pool's jobs (claimed, marked active) to this server's printer;
        the ticket says which server prints it."""
        job.extra = {**job.extra, "server": self.queue}
        try:
            with self.store.tickets_locked():
                self.store.write(job, durable=False)
        except SpoolFull:  # news for status only; the send's own marks say what matters
            log.debug("pool %s: job %s: which server prints it is not written", self.pool.queue,
                      job.id)
        self.job, failures = job.id, self.failures
        self.pool.board()
        try:
            state = super()._send(job, data_fd)
        finally:
            self.job = ""
        if state == JobState.DONE and self.failures == failures:  # the printer works
            self.failures, self.trouble, self.back_at = 0, "", 0.0
        self.pool.board()
        return state

    def _failed(self, job: Job, exc: LpfilterError) -> JobState:
        """This printer failed the job: it rests, the pool decides where the job goes."""
        self.failures += 1
        delay = max(policy.UNLIMITED_MIN_DELAY, policy.retry_delay(self.failures, self.entry))
        self.back_at = self.clock() + delay
        brief = f"{exc.host}: {exc.trouble}" if isinstance(exc, NotConnected) else exc.message
        self.trouble = visible(brief)[:200]
        return self.pool.server_failed(self, job, exc, delay)

    def serve_round(self, current: Round) -> None:
        """Take jobs while this server is free and one is due that it has not failed."""
        try:
            while current.may_go(self):
                device = self.printers.lock(self.printers.target(self.entry),
                                            lambda: self.stop.is_set() or not current.wants(self))
                if device is None:
                    break
                job_id, state = current.claim(self), None
                try:
                    job = self.store.read(job_id) if job_id else None
                    state = self.process(job) if job is not None else None
                finally:
                    device.release(keep_open=True)
                    current.done(job_id, state)
        except BaseException as exc:  # noqa: BLE001 - the dispatcher raises it (a full spool)
            current.fail(exc)
        finally:
            self.printers.close_backends()  # an idle server keeps no session open
            current.ended(self)


class Round:
    """One ``run_batch`` of a pool: the due jobs, which are being sent, the threads."""

    def __init__(self, pool: PoolWorker, summary: WorkSummary,
                 until: Callable[[], bool] | None) -> None:
        self.pool = pool
        self.summary = summary
        self.until = until
        self.cond = threading.Condition(pool.lock)
        #: Due job ids, in arrival order, that no server is sending.
        self.pending: list[str] = []
        self.flying: set[str] = set()
        self.threads: dict[str, threading.Thread] = {}
        #: When the first job that is not due yet is (None: there is none).
        self.retry_at: float | None = None
        self.ran = False
        self.error: BaseException | None = None

    def run(self) -> None:
        """Start a thread for each free server that has a job to take; wait for them. Files
        dropped into the pool's spool meanwhile are taken in (a round may last long)."""
        pool = self.pool
        adopted = time.monotonic()  # serve() took them in just before
        while True:
            with self.cond:
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
            if self.error is None and time.monotonic() - adopted >= TICK:
                adopted = time.monotonic()
                try:  # this thread is serve()'s, the only one using the intake
                    pool.intake.adopt()
                except BaseException as exc:  # noqa: BLE001 - raised by run_batch
                    self.fail(exc)

    def _start(self, server: ServerWorker) -> None:
        thread = threading.Thread(target=server.serve_round, args=(self,),
                                  name=f"pool-{self.pool.queue}-{server.queue}", daemon=True)
        self.threads[server.queue] = thread
        thread.start()

    def stopping(self) -> bool:
        """The daemon stops, the pass ends, or lpc stopped (or redirected) the pool."""
        return (self.pool.stop.is_set() or bool(self.until and self.until())
                or self.pool.gate.stopped())

    def refill(self) -> None:
        """The due jobs from the spool (jobs queued meanwhile, or put back, included)."""
        pool = self.pool
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

    def _takes(self, server: ServerWorker, job_id: str) -> bool:
        return server.queue not in self.pool.failed_by.get(job_id, ())

    def wants(self, server: ServerWorker) -> bool:
        """Is a due job waiting that this server has not failed?"""
        with self.cond:
            return any(self._takes(server, j) for j in self.pending)

    def may_go(self, server: ServerWorker) -> bool:
        """Should the server's thread take (or wait for) another job?"""
        with self.cond:
            if (self.error is not None or self.stopping() or server.back_at > self.pool.clock()
                    or server.gate.file.read().printing_disabled):
                return False
            if not self.wants(server):
                self.refill()
            return self.wants(server)

    def claim(self, server: ServerWorker) -> str | None:
        """The first due job this server may take, now its own (None: none is left)."""
        with self.cond:
            for job_id in self.pending:
                if self._takes(server, job_id):
                    self.pending.remove(job_id)
                    self.flying.add(job_id)
                    return job_id
        return None

    def done(self, job_id: str | None, state: JobState | None) -> None:
        """A claimed job's attempt ended: put back when it was, counted in the summary."""
        with self.cond:
            if job_id is None:
                return
            self.flying.discard(job_id)
            if state is not None:
                self.ran = True
                self.summary.add(state)
            again = self.pool.store.read(job_id) if state == JobState.QUEUED else None
            if (again is not None and again.state == JobState.QUEUED
                    and again.next_try <= self.pool.clock()):  # another server takes it
                bisect.insort(self.pending, job_id, key=lambda j: (len(j), j))
            self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            if self.error is None:
                self.error = exc
            self.cond.notify_all()

    def ended(self, server: ServerWorker) -> None:
        with self.cond:
            self.threads.pop(server.queue, None)
            self.cond.notify_all()
