"""What happens to a job after an attempt: pure decisions from the error and the printcap
(and the run of a ``send_failure_action`` program, which decides when the printcap says so).

Retry pauses follow LPRng (``connect_interval`` doubling, at most 8 times, capped by
``max_connect_interval``, plus ``connect_grace``). After ``send_try`` failed attempts,
``send_failure_action`` applies; unlike LPRng, whose default ``remove`` drops a job whose
printer stays off for a few minutes, lpfilter's default keeps the job as failed, visibly,
with the reason: a job is removed only where the printcap says so.

A printer that cannot be reached at all (connection refused, no route, no answer, a name
that does not resolve) is not the job's fault: as in CUPS, the job waits until the printer
is back, and such tries use up none of its ``send_try`` attempts unless the printcap sets
``send_try`` itself.
"""
from __future__ import annotations

import contextlib
import os
import time

from lpfilter.children import run
from lpfilter.errors import (HoldJob, JobRefused, LpfilterError, NotConnected, RemoveJob,
                             TransientError)
from lpfilter.filtercodes import FilterCode, decode
from lpfilter.filters.command import facts_for, filter_environment
from lpfilter.job import JobState
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.job import Job
    from lpfilter.printcap import Entry
    from lpfilter.spool.records import QueueRecords

#: The shortest pause between tries when send_try is 0 (no limit on attempts).
UNLIMITED_MIN_DELAY = 1.0
#: How long a send_failure_action program may run before it (and all it started) is killed.
PROGRAM_TIMEOUT = 60.0

_ACTIONS = {"succ": JobState.DONE, "success": JobState.DONE, "abort": JobState.FAILED,
            "remove": JobState.REMOVED, "hold": JobState.HELD}


class Decision(FrozenStruct):
    """The job's next state, and when to try again (for ``queued``)."""

    __slots__ = _fields = ("state", "delay", "program", "counted")
    state: JobState
    delay: float
    #: A program decides (``send_failure_action=|program``): run it with the attempt count.
    program: str | None
    #: The attempt counts against ``send_try`` (False: the printer could not be reached).
    counted: bool

    def __init__(self, state: JobState, delay: float = 0.0, program: str | None = None,
                 counted: bool = True) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "state", state)
        setattr_(self, "delay", delay)
        setattr_(self, "program", program)
        setattr_(self, "counted", counted)


def retry_delay(attempts: int, entry: Entry) -> float:
    """Pause before attempt ``attempts + 1``: interval x 2^(n-1), capped, plus the grace."""
    interval = max(0, entry.number("connect_interval"))
    cap = entry.number("max_connect_interval")
    delay = interval * 2 ** min(max(attempts - 1, 0), 8)
    if cap > 0:
        delay = min(delay, cap)
    return float(delay + max(0, entry.number("connect_grace")))


def failure_action(entry: Entry) -> Decision:
    """``send_failure_action`` as LPRng reads it, but ``hold`` (as failed) when unset."""
    if not entry.has("send_failure_action"):
        return Decision(JobState.FAILED)
    value = (entry.string("send_failure_action") or "").strip()
    if value.startswith("|"):
        return Decision(JobState.FAILED, program=value[1:].strip())
    word = value.lower()
    word = word[1:] if word.startswith("j") and word[1:] in _ACTIONS else word
    return Decision(_ACTIONS.get(word, JobState.REMOVED))


def counts_attempt(error: LpfilterError, entry: Entry) -> bool:
    """Does this failure use up one of the job's ``send_try`` attempts? Not an unreachable
    printer's, unless the printcap sets ``send_try`` (then it counts, as in LPRng)."""
    return not (isinstance(error, NotConnected) and not entry.has("send_try"))


def decide(error: LpfilterError, attempts: int, entry: Entry, *,
           unreachable_tries: int = 0) -> Decision:
    """The job's fate after ``error`` ended attempt number ``attempts`` (the
    ``unreachable_tries``-th in a row that found the printer unreachable, if one did)."""
    if not counts_attempt(error, entry):
        delay = retry_delay(max(1, unreachable_tries), entry)
        return Decision(JobState.QUEUED, max(delay, UNLIMITED_MIN_DELAY), counted=False)
    if isinstance(error, HoldJob):
        return Decision(JobState.HELD)
    if isinstance(error, RemoveJob):
        return Decision(JobState.REMOVED)
    if isinstance(error, TransientError):
        tries = entry.number("send_try")
        if tries > 0 and attempts >= tries:
            return failure_action(entry)
        delay = retry_delay(attempts, entry)
        if tries <= 0:
            # LPRng retries an unlimited send_try without any pause; against a printer that
            # stays off that is a busy loop, so lpfilter waits at least a second.
            delay = max(delay, UNLIMITED_MIN_DELAY)
        return Decision(JobState.QUEUED, delay)
    if isinstance(error, JobRefused):
        return Decision(JobState.FAILED)
    return Decision(JobState.FAILED)


def program_decision(code: int) -> JobState:
    """A send_failure_action program's exit status, read as an LPRng filter code; 0: remove."""
    return {FilterCode.JSUCC: JobState.REMOVED, FilterCode.JFAIL: JobState.QUEUED,
            FilterCode.JREMOVE: JobState.REMOVED,
            FilterCode.JHOLD: JobState.HELD}.get(decode(code), JobState.FAILED)


def run_failure_program(program: str, job: Job, records: QueueRecords, entry: Entry) -> JobState:
    """send_failure_action=|program: run as the queue's filters are (``children.run.start``:
    the queue's filter user, root only for ``ROOT``, its own session, killed with the
    watcher, recorded for the next one, its output read as bounded lines and dropped), the
    attempt count on its stdin; its exit status (an LPRng filter code) decides. Waited for
    PROGRAM_TIMEOUT at most; whatever it left running in its session is then killed."""
    command = run.program_command("send_failure_action", program,
                                  entry.string("shell") or "/bin/sh")
    sd = entry.string("sd") or "."
    facts = facts_for(entry, job, data_file="", fmt=job.print_format or "f", now=time.time())
    try:
        if not command.argv:
            raise JobRefused("names no program to run")
        running = run.start(command, stdin=None, stdout=None, cwd=sd,
                            owner=run.filter_owner(entry, sd),
                            env=filter_environment(entry, facts, inherited=os.environ),
                            messages=run.Messages())
    except (LpfilterError, OSError) as exc:
        records.log(f"send_failure_action program failed: {exc}", job)
        return JobState.FAILED
    try:
        assert running.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a line: far below a pipe's buffer
            running.process.stdin.write(f"{job.attempts}\n".encode())
        with contextlib.suppress(BrokenPipeError):
            running.process.stdin.close()
        if not running.wait_for(PROGRAM_TIMEOUT):  # never reaped before its group ends
            records.log(f"send_failure_action program {running.program} did not finish"
                        f" within {PROGRAM_TIMEOUT:g} s; it was killed", job)
            return JobState.FAILED
        return program_decision(running.wait())  # what it left running ended first
    finally:
        running.kill()  # bounded: its group ended, its output closed
