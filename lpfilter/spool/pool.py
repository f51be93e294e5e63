"""Printer pools (``sv=``): a queue whose jobs print on the first free of several printers.

The pool's worker is a ``QueueWorker`` whose ``run_batch`` hands the pool's due jobs, in
arrival order, to one sending thread per server queue (``ServerWorker``). A server sends
with its own entry (its ``lp=``, backend settings, filters) from the pool's spool, and
writes the outcome in the pool's ticket, log and accounting. The pool's jobs stay in the
pool's spool directory: the process holding the pool's lease is the only one handing them
out, so the claim is in memory (``Round``, spool/poolround.py), and ``process`` still checks
the ticket under the tickets lock as for any queue.

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

import threading
import time
from collections.abc import Callable

from lpfilter import logs
from lpfilter.errors import (HoldJob, LpfilterError, NotConnected, RemoveJob, in_brief)
from lpfilter.job import Job, JobState
from lpfilter.printcap import pools
from lpfilter.spool import policy, poolboard, poolshare
from lpfilter.spool.poolshare import Serialized, SharedRecords
from lpfilter.spool.outcome import Observer, WorkSummary
from lpfilter.spool.poolround import Round
from lpfilter.spool.printers import PrinterAccess
from lpfilter.spool.worker import QueueWorker
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap import Entry
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)


class PoolWorker(QueueWorker):
    """Serves a pool queue: its spool, its lease, its records; the servers send."""

    def __init__(self, entry: Entry, *, lock_dir: str, stop: threading.Event | None = None,
                 settle: float = 2.0, clock: Callable[[], float] = time.time,
                 store: SpoolStore | None = None) -> None:
        super().__init__(entry, lock_dir=lock_dir, stop=stop, settle=settle, clock=clock,
                         store=store)
        self.lock = threading.RLock()
        #: What the board says, written at most every poolboard.EVERY seconds.
        self.shown = poolboard.Board()
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
                current.stale = True
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
            if self.shown.owed:
                self.board(now=True)
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
        (then the pool's retry policy decides) or the server's program said hold or remove.
        A server lpc stopped is not one that may take it: the job would wait for it for as
        long as it stays stopped, while this one prints again."""
        everyone = {s.queue for s in self.servers
                    if s is server or not s.gate.file.read().printing_disabled}
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

    def board(self, *, now: bool = False) -> None:
        """The board status shows (which server prints which job, which fails) changed:
        rewritten at most every poolboard.EVERY seconds (``now``: as a round ends)."""
        with self.lock:
            states: list[poolboard.ServerState] = [
                {"queue": s.queue, "job": s.job, "trouble": s.trouble, "back_at": s.back_at}
                for s in self.servers]
            try:
                self.shown.put(self.store.state, states, self.store.owner, now=now)
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
        self.stamp = {"server": entry.name}  # in each job it sends (status: "on q2")
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
        """Send one of the pool's jobs (claimed, marked active, its START record naming this
        server: ``stamp``) to this server's printer."""
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
                    if job_id and not self.store.covered(job_id):  # one MARK for the next
                        self.store.mark(current.batch(job_id))
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
