"""Which exit status each outcome gets: the one place where errors and what the spool
reports become the exit statuses of ``lpfilter.status`` (``man/lpfilter.1``, EXIT STATUS).

Below the command edge nothing picks a status: errors say what went wrong (their class
and attributes), the spool says what happened (a pass's counts, the queues it could not
serve and why), and the commands ask here what that means to a caller.
"""
from __future__ import annotations

from lpfilter.errors import (AccessError, ConfigError, HoldJob, JobRefused, LockHeld,
                             LpfilterError, NoSuchPrinter, RemoveJob, SpoolFull, UsageError)
from lpfilter.status import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:  # the job's module (a dataclass, json) is imported by the verdicts on
    # jobs: every command imports this module through the command edge
    from collections.abc import Iterable
    from lpfilter.job import JobState
    from lpfilter.spool.outcome import WatchOutcome, WorkSummary

#: An error's exit status is that of the first of its classes (in method resolution order)
#: found here; an error of none of them is a plain failure (1).
ERRORS: dict[type[LpfilterError], ExitStatus] = {
    UsageError: ExitStatus.USAGE,
    ConfigError: ExitStatus.CONFIG,
    NoSuchPrinter: ExitStatus.NO_SUCH_PRINTER,
    AccessError: ExitStatus.ACCESS,
    SpoolFull: ExitStatus.SPOOL_FULL,
    LockHeld: ExitStatus.QUEUE_BUSY,
    JobRefused: ExitStatus.JOB_FAILED,
    HoldJob: ExitStatus.JOB_HELD,
    RemoveJob: ExitStatus.JOB_FAILED,
}

#: From best to worst, for a command that ran many things (``watch``): the worst wins; a
#: status not listed is worse than all of these.
SEVERITY = [ExitStatus.OK, ExitStatus.QUEUE_BUSY, ExitStatus.JOB_PENDING, ExitStatus.JOB_HELD,
            ExitStatus.JOB_FAILED, ExitStatus.SPOOL_FULL, ExitStatus.ACCESS, ExitStatus.CONFIG]


def for_error(error: LpfilterError) -> ExitStatus:
    """The exit status of a command ended (or a queue stopped) by ``error``."""
    for kind in type(error).__mro__:
        status = ERRORS.get(kind)
        if status is not None:
            return status
    return ExitStatus.FAILURE


def for_queue_trouble(error: BaseException) -> ExitStatus:
    """A queue that could not be served: its error's status; an unexpected exception
    (a printcap entry the spool cannot use) counts as a printcap error."""
    return for_error(error) if isinstance(error, LpfilterError) else ExitStatus.CONFIG


def for_pass(summary: WorkSummary) -> ExitStatus:
    """A one-shot pass over a queue: did every job it tried print?"""
    from lpfilter.job import JobState
    if summary.full is not None:
        return ExitStatus.SPOOL_FULL
    if summary.counts.get(JobState.FAILED) or summary.counts.get(JobState.REMOVED):
        return ExitStatus.JOB_FAILED
    if summary.counts.get(JobState.HELD):
        return ExitStatus.JOB_HELD
    if summary.pending or summary.left:
        return ExitStatus.JOB_PENDING
    return ExitStatus.OK


def for_job(state: JobState) -> ExitStatus:
    """A job ``print`` waited for: printed, still queued, held, or failed (or gone)."""
    from lpfilter.job import JobState
    return {JobState.DONE: ExitStatus.OK, JobState.QUEUED: ExitStatus.JOB_PENDING,
            JobState.HELD: ExitStatus.JOB_HELD}.get(state, ExitStatus.JOB_FAILED)


def for_watch(outcome: WatchOutcome) -> ExitStatus:
    """``watch``: the worst of its queues' troubles and (``--once``) of its passes."""
    statuses = [for_error(p) if isinstance(p, LpfilterError) else for_pass(p)
                for p in outcome.passes]
    statuses.extend(for_queue_trouble(why) for why in outcome.broken.values())
    if outcome.busy:
        statuses.append(ExitStatus.QUEUE_BUSY)
    return worst(statuses)


def worst(statuses: Iterable[ExitStatus]) -> ExitStatus:
    """The worst of ``statuses`` by SEVERITY (OK when there are none)."""
    return max(statuses, default=ExitStatus.OK, key=_severity)


def _severity(status: ExitStatus) -> int:
    return SEVERITY.index(status) if status in SEVERITY else len(SEVERITY)
