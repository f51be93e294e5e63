"""Changing jobs' states in a spool: cancel, hold, release, requeue, with the user's rights.

One place for it, below the commands and the print server alike: ``lpfilter cancel`` run by
the spool's owner and the daemon acting for a local user over its Unix socket make the
same change under the same lock and say the same words. What a caller may do is given as
``user`` and ``privileged`` (root or the spool's owner: every job), never looked up here.
"""
from __future__ import annotations

import time

from lpfilter.job import FINISHED, Job, JobState
from lpfilter.structs import FrozenStruct, Struct
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:  # (an ordinary user's cancel through the print server makes a Selection
    # and reads Outcomes: the store's, records' and lease's modules are its spool's only)
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore

ACTIONS = ("cancel", "hold", "release", "requeue")


class Selection(Struct):
    """The jobs of one queue to act on (a ``Struct``, as the dataclass it was: ``cancel``
    imports no ``dataclasses``)."""

    __slots__ = _fields = ("named", "anywhere", "every", "users", "first")
    #: Numbers named with this queue (q-000012), or plain ones without -a: must exist.
    named: set[int]
    #: Plain numbers with -a: looked for in every queue (missing here is no error).
    anywhere: set[int]
    #: Every job (of the user; of everyone for a privileged caller).
    every: bool
    #: The jobs of these users not finished (LPRng's ``lprm alice``, CUPS' ``cancel -u``).
    users: set[str]
    #: The first job not finished that the caller may change, in the queue's order (a bare
    #: ``lprm``, as LPRng's lprm and lpd take it: root's is anyone's); for ``hold`` the
    #: first queued one, for ``release`` the first held one (LPRng's lpc with no job).
    first: bool

    def __init__(self, named: set[int] | None = None, anywhere: set[int] | None = None,
                 every: bool = False, users: set[str] | None = None,
                 first: bool = False) -> None:
        """None is a new empty set (the dataclass's ``default_factory``)."""
        self.named = set() if named is None else named
        self.anywhere = set() if anywhere is None else anywhere
        self.every = every
        self.users = set() if users is None else users
        self.first = first


class Outcome(FrozenStruct):
    """What became of one job: ``kind`` is "changed" (``said`` tells how), "not_yours"
    (named, another user's: refused), "skipped" (another user's, not named: passed over
    silently) or "missing" (named, no such job)."""

    __slots__ = _fields = ("number", "kind", "job", "user", "said")
    number: int
    kind: str
    job: str
    user: str
    said: str

    def __init__(self, number: int, kind: str, job: str = "", user: str = "",
                 said: str = "") -> None:
        object.__setattr__(self, "number", number)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "job", job)
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "said", said)


def change(store: SpoolStore, records: QueueRecords, job: Job, action: str) -> str:
    """Apply ``action`` to one job (the caller holds the ticket lock); what happened."""
    if action == "cancel":
        return _cancel(store, records, job)
    if job.state == JobState.ACTIVE:
        return "being printed; only cancel can stop it"
    if action == "hold":
        if job.state != JobState.QUEUED:
            return f"not queued ({job.state})"
        job.move_to(JobState.HELD)
    elif action == "release":
        if job.state != JobState.HELD:
            return f"not held ({job.state})"
        job.move_to(JobState.QUEUED)
        job.next_try = 0.0
    else:  # requeue
        if job.state not in (JobState.FAILED, JobState.HELD) and job.state not in FINISHED:
            return f"already {job.state}"
        if not store.has_data(job):
            return "its data is gone (keep it with save_when_done / save_on_error)"
        job.move_to(JobState.QUEUED)
        job.attempts, job.next_try, job.finished = 0, 0.0, None
    # Held, released or queued again, the job starts a new wait: "printer unreachable
    # since" must not date from before (a job held last week would date it for all).
    job.unreachable_since, job.unreachable_tries = 0.0, 0
    store.write(job)
    store.clear_cancel(job.id)
    return {"hold": "held", "release": "released", "requeue": "queued again"}[action]


def _cancel(store: SpoolStore, records: QueueRecords, job: Job) -> str:
    from lpfilter.locks import process_alive
    if job.state == JobState.ACTIVE and job.worker and process_alive(*job.worker):
        store.request_cancel(job.id)
        return "being printed: its worker stops it and removes it"
    if job.state in FINISHED:
        if store.has_data(job):
            store.remove(job)
            return f"removed (it was {job.state}; its saved data is deleted)"
        return f"already {job.state}"
    job.move_to(JobState.CANCELLED)
    job.finished = job.started = time.time()
    store.remove(job)
    records.account(job, JobState.CANCELLED)
    records.log("cancelled", job)
    return "cancelled"


def _first_for(action: str, job: Job) -> bool:
    """Whether ``job`` may be a selection's ``first`` for ``action``: one it changes."""
    if action == "hold":
        return job.state is JobState.QUEUED
    if action == "release":
        return job.state is JobState.HELD
    return job.state not in FINISHED


def act(store: SpoolStore, records: QueueRecords, selection: Selection, action: str,
        user: str, privileged: bool) -> list[Outcome]:
    """Apply ``action`` to the selected jobs of one queue (``store.ensure`` done by the
    caller), as ``user``: one Outcome per job found or named, in the queue's order."""
    from lpfilter.spool.lease import served
    from lpfilter.spool.waiting import how_it_prints
    outcomes: list[Outcome] = []
    seen: set[int] = set()
    first = selection.first
    with store.tickets_locked():
        for job in store.jobs():
            number = int(job.id)
            named = number in selection.named or number in selection.anywhere
            if first and _first_for(action, job) and (privileged or job.user == user):
                first, named = False, True  # the bare lprm's job, as if it were named
            by_user = job.user in selection.users
            if not named and not by_user and not selection.every:
                continue
            if not named and job.state in FINISHED and not store.has_data(job):
                continue  # a finished ticket kept for status: nothing to do, nothing to say
            seen.add(number)
            if not privileged and job.user != user:
                kind = "not_yours" if named or by_user else "skipped"
                outcomes.append(Outcome(number, kind, job.id, job.user))
                continue
            said = change(store, records, job, action)
            if said in ("released", "queued again") and not served(store.state):
                said += (f", but no watcher serves {visible(store.queue)} now:"
                         f" {how_it_prints(visible(store.queue))}")
            outcomes.append(Outcome(number, "changed", job.id, job.user, said))
    outcomes.extend(Outcome(n, "missing") for n in sorted(selection.named - seen))
    return outcomes
