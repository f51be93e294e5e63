"""An attempt's outcome, written down: the job's record, the data file kept or dropped,
accounting, the queue's status and log files, and one line in the process log.

The record is durable at once unless the batch's MARK covers the job (spool/marks.py: then
it is synced with the next MARK, and the data file waits for that). The status file
(``ps``) is news, not a record: a job done or cancelled is said once per batch (the last
one, ``flush_status``), and at most every STATUS_EVERY seconds (an LPD server's jobs come
one a batch: a new file per job was a fifth of the worker's time; the worker wakes for
the last one when it is due, and a pass writes it as it ends); a failure or a hold at
once.

Kept apart from the worker, which decides what to try; this only records what happened.
A ticket that cannot be written (a full spool) waits in the backlog to be written when
there is room again, and SpoolFull is raised to the worker.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from lpfilter import logs
from lpfilter.errors import SpoolFull
from lpfilter.job import FINISHED, Job, JobState
from lpfilter.spool.accounting import Accounting
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.backends import SendResult
    from lpfilter.printcap import Entry
    from lpfilter.spool.backlog import Backlog
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)

#: While batches follow each other, the status file is rewritten at most this often.
STATUS_EVERY = 0.25


class Ledger:
    """Records the outcome of each attempt at one queue's jobs."""

    def __init__(self, entry: Entry, store: SpoolStore, records: QueueRecords,
                 backlog: Backlog, clock: Callable[[], float]) -> None:
        self.entry = entry
        self.queue = entry.name
        self.store = store
        self.records = records
        self.backlog = backlog
        self.clock = clock
        self.accounting = Accounting(entry, records, clock)
        #: The last "job N done" of the batch, not yet in the status file (a pool's
        #: servers finish jobs from their threads: under ``_said``).
        self._unsaid: str | None = None
        self._said = threading.Lock()
        self._said_at = float("-inf")

    def started(self, job: Job) -> None:
        """An attempt at ``job`` reached the printer (the accounting's ``jobstart``)."""
        self.accounting.start(job)

    def finish(self, job: Job, state: JobState, message: str, *,
               result: SendResult | None = None, delay: float = 0.0,
               attempt: bool = True) -> JobState:
        """Record the outcome of an attempt: ticket, data, accounting, log. A ticket that
        cannot be written (a full spool) waits in the backlog, and SpoolFull is raised."""
        before = job.copy()
        now = self.clock()
        job.move_to(state)
        job.worker = None
        if not attempt:
            job.attempts = max(0, job.attempts - 1)
        if result is not None:
            job.bytes_sent, job.pages, job.delivery = (result.bytes_sent, result.pages,
                                                       result.delivery)
            job.last_error = ""
            job.unreachable_since, job.unreachable_tries = 0.0, 0
        elif state != JobState.DONE:
            job.last_error = message
        job.next_try = now + delay if state == JobState.QUEUED else 0.0
        if state == JobState.QUEUED and job.send_started:
            job.possible_duplicate = True  # the next try resends what may have printed
        job.finished = now if state != JobState.QUEUED else None
        try:
            self.store.outcome(job)  # and a cancel request that came too late is spent
        except SpoolFull:
            self.backlog.add(job.id, functools.partial(
                self.finish, before, state, message, result=result, delay=delay,
                attempt=attempt))
            raise
        if state in FINISHED and not self.keeps_data(state):
            self.store.drop_data(job)
        self.accounting.end(job, state)
        if state in (JobState.DONE, JobState.CANCELLED):  # said once per batch
            with self._said:
                self._unsaid = f"job {job.id} {state}: {message}"
        elif state != JobState.QUEUED:  # news an admin needs now (a retry: worker._failed)
            self.status_now(f"job {job.id} {state}: {message}")
        duplicate = " (possible duplicate)" if job.possible_duplicate else ""
        when = f"; next try in {delay:g} s" if state == JobState.QUEUED and delay else ""
        self.records.log(f"{state}{duplicate}: {message}{when}", job)
        # The process log (a daemon's journal): one line per outcome, naming the job.
        log.info("queue %s: job %s '%s' (user %s, %d bytes): %s%s after %.2f s: %s%s",
                 visible(self.queue), job.id, visible(job.name), visible(job.user), job.size,
                 "queued again" if state == JobState.QUEUED else state, duplicate,
                 max(0.0, now - job.started) if job.started else 0.0, visible(message), when)
        return state

    def status_now(self, message: str) -> None:
        """A line for the status file now (an older one not yet written is dropped)."""
        with self._said:
            self._unsaid, self._said_at = None, self.clock()
            self.records.status(message)

    def flush_status(self, *, soon: bool = False) -> float | None:
        """The batch's last outcome into the status file (the worker: once per batch);
        ``soon``: only when the last write is STATUS_EVERY old, else it waits. Returns
        when the line that waits is due (None: none waits): the worker wakes for it."""
        with self._said:
            now = self.clock()
            if self._unsaid is None:
                return None
            if soon and 0 <= now - self._said_at < STATUS_EVERY:
                return self._said_at + STATUS_EVERY
            message, self._unsaid, self._said_at = self._unsaid, None, now
            self.records.status(message)
            return None

    def keeps_data(self, state: JobState) -> bool:
        """Whether a job finished in ``state`` keeps its data file (printcap flags)."""
        return (self.entry.flag("save_when_done") if state == JobState.DONE
                else self.entry.flag("save_on_error") if state == JobState.REMOVED else False)

    def tidy(self, jobs: list[Job]) -> None:
        """At start-up: the data of a finished job that should not keep it. A kill between
        the ticket saying done and the data's removal leaves it, and prune never removes a
        ticket whose data is there: both would stay for ever."""
        for job in jobs:
            if job.state in FINISHED and not self.keeps_data(job.state) and (
                    self.store.has_data(job)):
                self.store.drop_data(job)
                log.info("queue %s: job %s: removed the data file a stop left after the"
                         " job ended %s", visible(self.queue), job.id, job.state)
