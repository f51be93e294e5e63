"""One queue's worker: take jobs in order, send each through its backend, record the outcome.

The daemon loop and the one-shot pass (``watch --once``, a foreground ``print``) are the
same code, as in rq's ``Worker.work(burst=True)``: ``serve(burst=True)`` returns when
nothing is left to do now instead of waiting for more. The caller holds the queue's lease
(``spool/serve.py``'s ``QueueServer`` takes it, and lets it go after).
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from lpfilter import logs
from lpfilter.backends import SendRequest
from lpfilter.children import run
from lpfilter.errors import (Interruption, JobInterrupted, LpfilterError, NotConnected, SpoolFull,
                             in_brief)
from lpfilter.job import Job, JobState, user_name
from lpfilter.locks import own_start
from lpfilter.printcap.destination import printer_address
from lpfilter.spool import policy
from lpfilter.spool.backlog import Backlog
from lpfilter.spool.control import print_order
from lpfilter.spool.idle import Idle
from lpfilter.spool.intake import Intake
from lpfilter.spool.ledger import Ledger
from lpfilter.spool.lpcops import Gate, settle_moves
from lpfilter.spool.marks import due_batch
from lpfilter.spool.outcome import Observer, WorkSummary
from lpfilter.spool.printers import PrinterAccess
from lpfilter.spool.records import QueueRecords
from lpfilter.spool.reporter import JobReporter
from lpfilter.spool.store import SpoolStore
from lpfilter.spool.waiting import say_pending, since_words

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.backends.settings import SendSettings
    from lpfilter.printcap import Entry

log = logs.getLogger(__name__)

#: A daemon rescans this often even without events (a safety net for missed events).
RESCAN = 30.0
#: Finished tickets younger than this are kept for ``print --wait`` whatever done_jobs says;
#: of those nobody may wait for (``Job.awaited``), the RECENT_MAX newest (bench/README.md:
#: 18,000 read by each status, round 9; 100 were 8 % of a print loop's instructions, 14).
KEEP_RECENT, RECENT_MAX = 60.0, 10
#: How often a worker prunes at most, in seconds (a prune sorts the finished tickets kept).
PRUNE_EVERY = 1.0


class QueueWorker:
    """Serves one queue. Another thread may call ``wake`` (events) or set ``stop``."""

    def __init__(self, entry: Entry, *, lock_dir: str, stop: threading.Event | None = None,
                 settle: float = 2.0, clock: Callable[[], float] = time.time,
                 store: SpoolStore | None = None) -> None:
        self.entry, self.queue = entry, entry.name
        self.lent = store is not None  # a foreground print's, lent: one replay for both
        self.store = store or SpoolStore(entry.string("sd") or "", entry.name, shared=True)
        self.records, self.lock_dir = QueueRecords(entry), lock_dir
        self.stop = stop or threading.Event()
        #: Set with ``stop`` on shutdown: a running send goes on until this time, then is
        #: interrupted and put back (None: it may finish).
        self.stop_deadline: float | None = None
        self.clock = clock
        self.intake = Intake(entry, self.store, self.records, settle=settle, clock=clock)
        #: Queued jobs this pass tries once even before their retry pause ends.
        self.early: set[str] = set()
        self.idle = Idle(clock, self.stop, RESCAN)  # between batches (spool/idle.py)
        self.printers = PrinterAccess(lock_dir, f"queue {self.queue}")
        #: The printer could not be reached: when it is tried again. No other job is
        #: tried before (each would wait out a connect timeout), as CUPS stops a queue
        #: whose printer is away. None: it answered, or was not tried yet.
        self.away: float | None = None
        self._pruned_at, self._prune_owed = float("-inf"), False
        #: Serving as a daemon (not one pass): the journal is compacted sooner (prune).
        self.daemon = False
        #: Watching its jobs (a progress bar), from its thread: progress(job, taken),
        #: status(job, message), end(job) (the printer took all, or the try ended).
        self.observer: Observer | None = None
        #: What each attempt writes into its job's ``extra`` (a pool's server: its name).
        self.stamp: dict[str, str] = {}
        self._me = (os.getpid(), own_start())
        self.backlog = Backlog(self.queue)
        self.ledger = Ledger(entry, self.store, self.records, self.backlog, clock)
        self.gate = Gate(self.store, self.records, entry)  # lpc stop, redirect

    def news(self, folder: str, name: str) -> bool:
        """Is an event about ``name`` in the spool directory (``folder`` "spool") or the
        job folder ("jobs") worth a look? Not lpfilter's own writes: a temporary file
        (a ticket being written; on a full disk each failed try would wake the worker
        again at once), the queue's log, status or accounting file, a dot file."""
        if folder == "jobs":
            return not name.startswith(".tmp-")
        return not name.startswith(".") and not self.intake.own(name)

    def wake(self, moved_in: str | None = None) -> None:
        """Something changed in the spool (an event, a signal): look again now."""
        if moved_in:
            self.intake.moved_in.add(moved_in)
        self.idle.wakeup.set()

    # --- the loop ---------------------------------------------------------------------
    def serve(self, *, burst: bool, wait_retries: bool = False,
              until: Callable[[], bool] | None = None, every_job: bool = False,
              give_up: float | None = None) -> WorkSummary:
        """Process jobs until stopped; with ``burst``, until nothing can be done now
        (``wait_retries``: also wait out retry pauses, but none that ends after
        ``give_up``; ``until``: stop when it is true; ``every_job``: try each queued job
        once whatever its retry pause says, as a cron run is the retry interval)."""
        summary, recovered = self._begin(burst=burst, every_job=every_job)
        next_recovery = self.clock() + RESCAN
        while not self.stop.is_set() and not (until and until()):
            try:
                if not recovered:
                    self.recover()
                    recovered, summary.full = True, None
                self.backlog.flush()
                recheck = self.intake.adopt()
                ran, retry_at = self.run_batch(summary, until)
                flush_at = self.idle.flush_due(ran=ran, burst=burst,
                                               owed=self.store.flush_owed())
                if (not ran and flush_at is None and self.store.flush()) or self._prune_owed:
                    self._prune_soon()  # idle: records durable, data gone: those jobs may go
                if self.clock() >= next_recovery:
                    self.store.recover_orphans(user_name(os.getuid()))
                    settle_moves(self.store, self.records)
                    next_recovery = self.clock() + RESCAN
            except OSError as exc:  # the spool directory removed, or made unwritable
                raise self.store.explain(exc) or exc from None
            except SpoolFull as exc:  # nothing was half-made; the jobs wait
                if burst:
                    if self.backlog.written_within(self.stop, self.clock):
                        continue  # a sent job's outcome written after all: go on
                    summary.full, summary.unwritten = exc, sorted(self.backlog.pending)
                    break
                self._sync_only()  # finished jobs' data waiting for a sync: room freed
                self.backlog.full(exc, RESCAN)
                ran, retry_at, recheck, flush_at = False, None, None, None
            else:
                self.backlog.room()
            status_at = self.ledger.flush_status(soon=True)  # the batch's last message
            if ran:
                continue
            now = self.clock()
            self.printers.close_backends()  # nothing to send now: hold no idle session
            if burst and (not wait_retries or retry_at is None
                          or (give_up is not None and retry_at > give_up)):
                recheck, retry_at = self.intake.settling(recheck), None
                if recheck is None:
                    break
            prune_at = self._pruned_at + PRUNE_EVERY if self._prune_owed else None
            self.idle.pause([retry_at, recheck, prune_at, status_at, flush_at], now,
                            burst=burst)
        return self._end_pass(summary, every_job=every_job)

    def _begin(self, *, burst: bool, every_job: bool) -> tuple[WorkSummary, bool]:
        """A pass's start: the spool checked, what a crash left recovered (a full spool:
        tried again in the loop); the summary, and whether the recovery is done."""
        self.store.ensure("watch")
        os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)
        summary, recovered = WorkSummary(), True
        self.daemon = not burst
        try:
            self.recover()
        except SpoolFull as exc:  # tried again in the loop, where a full spool waits
            recovered, summary.full = False, exc if burst else None
        except OSError as exc:  # removed since ensure() (rm -rf): as the loop says it
            raise self.store.explain(exc) or exc from None
        self.early = ({j.id for j in self.store.jobs(finished=False)
                       if j.state == JobState.QUEUED} if every_job else set())
        self.away = None
        return summary, recovered

    def _sync_only(self) -> None:
        """A pass the full spool keeps aborting (the backlog first) never gets to the idle
        ``flush``: without this sync the data files waiting for it would stay on the full
        disk (its own failure is the same full spool, said by the caller)."""
        try:
            self.store.flush()
        except (OSError, LpfilterError) as exc:
            log.debug("queue %s: journal not synced on a full spool: %s", self.queue, exc)

    def _end_pass(self, summary: WorkSummary, *, every_job: bool) -> WorkSummary:
        """What the pass leaves: its queued jobs counted (and named, for cron), files closed."""
        pending = [job for job in self.store.jobs(finished=False)
                   if job.state == JobState.QUEUED]
        summary.pending = len(pending)
        summary.left = self.intake.say_left()
        if every_job and summary.full is None:  # else the one line about the spool says it
            say_pending(pending, fifo=self.entry.flag("fifo"))
        if self._prune_owed:  # housekeeping: a full or removed spool is said elsewhere
            try:
                self.prune()
            except (OSError, LpfilterError) as exc:
                log.debug("queue %s: not pruned at the end of the pass: %s", self.queue, exc)
        self.close()
        return summary

    def recover(self) -> None:
        """After a crash or SIGKILL: an active job goes back to the queue, flagged as a
        possible duplicate when bytes may already have reached the printer; after a power
        cut (another boot) so is every job a mark still names (its FIRST may be lost)."""
        run.end_orphans(self.entry, self.store.sd)  # what its filters left: before a send
        # One write and one fdatasync for all: active jobs requeued, marks settled by boot
        # id (spool/marks.py): a mark of another boot may have lost a FIRST.
        for before, job in self.store.settle_marks():
            if before.state == JobState.ACTIVE:
                flag = " (possible duplicate: bytes had reached the printer)" * job.send_started
                self.records.log(f"requeued after an interrupted send{flag}", job)
            elif job.possible_duplicate and not before.possible_duplicate:
                self.records.log("requeued after a power cut during its batch (possible"
                                 " duplicate: bytes may have reached the printer)", job)
        self.store.recover_orphans(user_name(os.getuid()))
        self.ledger.tidy(self.store.jobs())  # a finished job's data a kill left behind
        settle_moves(self.store, self.records)  # an lpc move a crash interrupted

    def run_batch(self, summary: WorkSummary,
                  until: Callable[[], bool] | None = None) -> tuple[bool, float | None]:
        """Send the jobs that are due, in arrival order. Returns (sent any, next retry)."""
        if self.stop.is_set() or (until and until()) or self.gate.stopped():
            return False, None  # before the listing: every job received wakes a stopped queue
        now, fifo, ran = self.clock(), self.entry.flag("fifo"), False
        retry_at: float | None = None
        order = print_order(self.store.jobs(finished=False))
        for at, job in enumerate(order):
            if job.state != JobState.QUEUED:  # finished tickets are kept: many, passed over
                continue
            if self.stop.is_set() or (until and until()) or self.gate.stopped():
                break
            if self.away is not None and now < self.away:  # no answer: the others wait
                retry_at = self.away if retry_at is None else min(retry_at, self.away)
                break
            self.away = None  # the pause is over: the printer is tried again
            if job.next_try > now and job.id not in self.early:
                retry_at = job.next_try if retry_at is None else min(retry_at, job.next_try)
                if fifo:
                    break  # strict order: later jobs wait for this one
                continue
            if not self.store.covered(job.id):  # one durable MARK for the next due jobs
                self.ledger.flush_status(soon=True)
                self.store.mark(due_batch(order[at:], now, self.early, fifo=fifo))
            state = self.process(job)
            if state is None:
                continue
            ran = True
            summary.add(state)
            if state == JobState.QUEUED:
                again = self.store.read(job.id)
                if again is not None:
                    retry_at = again.next_try if retry_at is None else min(retry_at,
                                                                           again.next_try)
                if fifo:
                    break
        if ran:
            self._prune_soon()
        return ran, retry_at

    # --- one job ----------------------------------------------------------------------
    def process(self, job: Job) -> JobState | None:
        """One attempt at one job; returns its new state (None: it was not ours to send)."""
        with self.store.tickets_locked():
            current = self.store.read(job.id)
            if current is None or current.state != JobState.QUEUED or (
                    current.next_try > self.clock() and job.id not in self.early):
                return None
            self.early.discard(job.id)
            job = current
            if self.store.cancel_requested(job.id):
                return self.ledger.finish(job, JobState.CANCELLED, "cancelled")
            data_fd = self.store.open_data(job.id)  # the backend reads this, not the path
            if isinstance(data_fd, str):
                return self.ledger.finish(job, JobState.FAILED, data_fd)
            if job.size == 0:
                os.close(data_fd)
                return self.ledger.finish(job, JobState.FAILED, "empty file; nothing to print")
            job.attempts += 1
            job.move_to(JobState.ACTIVE)
            job.bytes_sent = 0  # this attempt's, as the send goes (status shows it)
            job.worker, job.started = self._me, self.clock()
            job.extra = {**job.extra, **self.stamp} if self.stamp else job.extra
            if job.send_started:
                job.possible_duplicate = True
            try:
                # Not fsynced: after a power cut "queued" is right, as nothing was sent
                # yet; the batch's MARK made "maybe sent" durable (else first_byte will).
                self.store.start(job, *self._me)
            except BaseException:  # a full spool: nothing was sent, the ticket says queued
                os.close(data_fd)
                raise
        try:
            return self._send(job, data_fd)
        finally:
            os.close(data_fd)

    def _send(self, job: Job, data_fd: int) -> JobState:
        """Send a job (marked active) from its checked data file; returns its new state."""
        destination = self.printers.target(self.entry)
        device = self.printers.lock(destination, self.stop.is_set)
        if device is None:
            return self.ledger.finish(job, JobState.QUEUED, "not sent: lpfilter is stopping",
                                      attempt=False)
        request: SendRequest[SendSettings] | None = None
        try:  # the settings too: a value that cannot be read fails the job, as a send would
            settings = self.printers.settings(destination, self.entry)
            request = SendRequest(job, self.store.data_path(job.id), destination, settings,
                                  JobReporter(self, job), lock_dir=self.lock_dir, data_fd=data_fd)
            from lpfilter.filters.send import send_job  # (a pass that sends nothing: not)
            result = send_job(self.entry, request, self.printers.backend(destination))
            request.progress(result.bytes_sent)  # done: the printer took every byte
        except SpoolFull as exc:  # the "maybe sent" mark could not be written: not sent
            self.ledger.finish(job, JobState.QUEUED, f"not sent: {exc}", attempt=False)
            raise
        except JobInterrupted as exc:
            job.bytes_sent = 0 if request is None else request.sent
            if exc.reason is Interruption.CANCELLED:
                return self.ledger.finish(job, JobState.CANCELLED, "cancelled while printing")
            return self.ledger.finish(job, JobState.QUEUED,
                                      f"interrupted ({exc}); it will be sent again",
                                      attempt=False)
        except LpfilterError as exc:
            job.bytes_sent = 0 if request is None else request.sent
            return self._failed(job, exc.about(queue=self.queue, job_id=job.id,
                                               host=printer_address(destination)))
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the job
            job.bytes_sent = 0 if request is None else request.sent
            log.exception("%s: job %s: internal error", self.queue, job.id)
            return self.ledger.finish(job, JobState.FAILED,
                                      f"internal error: {type(exc).__name__}: {exc}")
        finally:
            device.release(keep_open=True)
            if self.observer is not None:
                self.observer.end(job)
        return self.ledger.finish(job, JobState.DONE, result.message, result=result)

    def _failed(self, job: Job, exc: LpfilterError) -> JobState:
        """A failed attempt, as the policy decides. A printer that could not be reached is
        remembered since when (across attempts, in the ticket) and, unless the printcap
        sets send_try, the try is not counted: the job waits for the printer."""
        if isinstance(exc, NotConnected):
            job.unreachable_tries += 1
            # Since when the printer is away: this job's first try, or an earlier one's.
            job.unreachable_since = job.unreachable_since or min(
                (j.unreachable_since for j in self.store.jobs(finished=False)
                 if j.state == JobState.QUEUED and j.unreachable_since), default=self.clock())
            since = f"{exc.trouble} since {since_words(job.unreachable_since, self.clock())}"
            message, news = f"{since}: {exc.message}", f"{exc.host}: {since}, next try in"
        else:
            job.unreachable_since, job.unreachable_tries = 0.0, 0
            message, news = exc.message, f"{in_brief(exc)}, retrying in"
        decision = policy.decide(exc, job.attempts, self.entry,
                                 unreachable_tries=job.unreachable_tries)
        state = decision.state
        if decision.program:
            state = policy.run_failure_program(decision.program, job, self.records, self.entry)
        if state == JobState.QUEUED:
            self._status(job, f"{news} {decision.delay:g} s")
        if isinstance(exc, NotConnected):
            # Its other jobs wait for this try: each would wait out a connect timeout,
            # and rounds of them would never end while the printer stays away.
            self.away = self.clock() + decision.delay
        return self.ledger.finish(job, state, message, delay=decision.delay,
                           attempt=decision.counted)

    def close(self) -> None:
        """Close the files and sessions a worker keeps open between jobs (what it wrote
        made durable first, and the data files waiting for that removed)."""
        self.printers.close()
        self.ledger.flush_status()
        try:
            self.store.flush()
        except (OSError, LpfilterError) as exc:  # Ledger.tidy removes them at the next start
            log.warning("queue %s: journal not synced at close: %s", self.queue, exc)
        self.store.close(final=not self.lent)
        self.records.close()

    def _status(self, job: Job, message: str) -> None:
        """A status line from the printer (or about it): ps file, log of changes, observer."""
        self.ledger.status_now(message)
        self.records.log(f"printer: {message}", job)
        if self.observer is not None:
            self.observer.status(job, message)

    def prune(self) -> None:
        """Keep ``done_jobs`` finished tickets (and the young ones: KEEP_RECENT)."""
        self.store.prune(max(0, self.entry.number("done_jobs")),
                         self.entry.number("done_jobs_max_age"), self.clock(), KEEP_RECENT,
                         recent_max=RECENT_MAX, eager=self.daemon)
        self._pruned_at, self._prune_owed = self.clock(), False

    def _prune_soon(self) -> None:
        """Prune now, or PRUNE_EVERY after the last prune (a deadline of the pause; at the
        end of a pass): in a trickle the worker is idle, and flushes, after each job."""
        self._prune_owed = True
        if self.clock() - self._pruned_at >= PRUNE_EVERY:
            self.prune()
