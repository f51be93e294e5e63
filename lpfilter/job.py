"""A job's ticket: what lpfilter knows about one job, as a small JSON file beside its data.

Pure data and conversions; ``store`` reads and writes tickets. The ticket is the job's
truth: a crash leaves it on disk, and the next start reads what state the job was in.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import pwd
import re
from dataclasses import dataclass, field
from typing import Any

from lpfilter.errors import ImpossibleTransition


class JobState(enum.StrEnum):
    """Where a job is. The values are what tickets on disk say (and ``status`` shows)."""

    QUEUED = "queued"
    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"
    HELD = "held"
    REMOVED = "removed"
    CANCELLED = "cancelled"


#: The one place a job's state may go from each state, and who moves it there. Anything
#: else is a bug (ImpossibleTransition): a job must never go, say, from done to active.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # The worker takes it; hold; cancel (or the worker finding a cancel request); the
    # worker failing it before any send (data missing, empty, unreadable).
    JobState.QUEUED: frozenset({JobState.ACTIVE, JobState.HELD, JobState.CANCELLED,
                                JobState.FAILED}),
    # An attempt's outcome (queued again: a retry, an interrupted send, a stopping
    # worker, or recovery after the worker died); cancel of a dead worker's job.
    JobState.ACTIVE: frozenset({JobState.QUEUED, JobState.DONE, JobState.FAILED,
                                JobState.HELD, JobState.REMOVED, JobState.CANCELLED}),
    # release or requeue; cancel.
    JobState.HELD: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    # requeue; cancel.
    JobState.FAILED: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    # requeue, when the data was kept (save_when_done, save_on_error).
    JobState.DONE: frozenset({JobState.QUEUED}),
    JobState.REMOVED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
}

STATES = tuple(JobState)
#: A job in one of these states will not be sent again unless someone requeues it.
FINAL = frozenset({JobState.DONE, JobState.FAILED, JobState.HELD, JobState.REMOVED,
                   JobState.CANCELLED})
#: Finished for good: data may be removed, the ticket is kept only for status (done_jobs).
FINISHED = frozenset({JobState.DONE, JobState.REMOVED, JobState.CANCELLED})


@dataclass(slots=True)
class Job:
    """One job. Times are seconds since the epoch (float)."""

    id: str
    queue: str
    user: str
    name: str
    size: int
    submitted: float
    title: str = ""
    copies: int = 1
    host: str = ""
    #: LPRng's job class (lpr -C); lpfilter keeps it but does not act on it.
    job_class: str = ""
    #: lpr -h: the user asked for no banner page (the control file had no L line).
    no_banner: bool = False
    #: "print" (lpfilter print), "hotfolder" (a file dropped into the spool directory) or
    #: "lpd" (received by the print server).
    source: str = "print"
    #: Changed only through ``move_to``.
    state: JobState = JobState.QUEUED
    attempts: int = 0
    #: Not before this time (backoff after a transient failure).
    next_try: float = 0.0
    last_error: str = ""
    #: Since when no connection to the printer could be opened (0: it could, last time), and
    #: how many tries in a row found it so: status says since when, the pause grows with
    #: the tries, and such tries are not counted in ``attempts`` unless send_try is set.
    unreachable_since: float = 0.0
    unreachable_tries: int = 0
    #: pid and process start time of the worker sending it, while active.
    worker: tuple[int, float] | None = None
    #: Bytes may have reached the printer in an attempt that did not finish.
    send_started: bool = False
    possible_duplicate: bool = False
    bytes_sent: int = 0
    pages: int | None = None
    started: float | None = None
    finished: float | None = None
    #: Where the printer said it took the job ("sent") or confirmed it ("confirmed").
    delivery: str = ""
    #: A job received over LPD: the client's IP address ("" for a local client), on which
    #: the server's rights rest (a remote user may remove only jobs from its own address).
    peer: str = ""
    #: A job received over LPD: its number on the wire and a digest of its control file, so
    #: that a client resending it after a lost final acknowledgement is recognised.
    origin: str = ""
    #: A job received over LPD: the print format letter of its print lines (f, l, p, o...).
    print_format: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """A ticket (or a caller) gives the state's value: the job holds a JobState."""
        if not isinstance(self.state, JobState):
            try:
                self.state = JobState(self.state)
            except ValueError:
                raise ValueError(f"unknown job state {self.state!r}") from None

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def move_to(self, state: JobState) -> None:
        """Change the job's state: the only way it changes, so that a transition that can
        never happen (see TRANSITIONS) is caught where it is attempted, not on disk later."""
        if state not in TRANSITIONS[self.state]:
            raise ImpossibleTransition(self.id, self.queue, self.state, state)
        self.state = state

    def copy(self) -> Job:
        """A shallow copy (as dataclasses.replace makes, at a fifth of its cost: the
        worker copies every ticket it lists, many times a second on a busy queue)."""
        other = object.__new__(Job)
        for name in _NAMES:
            setattr(other, name, getattr(self, name))
        return other

    def to_dict(self) -> dict[str, Any]:
        """The ticket as plain data (what ``status --json`` shows)."""
        data = {f.name: getattr(self, f.name) for f in _FIELDS
                if f.name not in _LPD_ONLY or getattr(self, f.name)}
        if data["worker"] is not None:
            data["worker"] = list(data["worker"])
        return data

    def to_json(self) -> str:
        """The ticket's text, UTF-8 encodable: bytes that were not UTF-8 in a name (kept
        as surrogates, from argv or a control file) are written as JSON escapes, which
        read back as the same characters."""
        data = self.to_dict()
        text = json.dumps(data, sort_keys=True, ensure_ascii=False)
        if not text.isascii() and _SURROGATE.search(text):  # isascii: C speed, the usual case
            text = json.dumps(data, sort_keys=True)
        return text + "\n"

    @classmethod
    def from_json(cls, text: str) -> Job:
        """A ticket from its JSON; unknown keys (a newer lpfilter's) are kept in ``extra``."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a ticket is a JSON object")
        names = {f.name for f in _FIELDS}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        if isinstance(known.get("worker"), list):
            known["worker"] = tuple(known["worker"])
        job = cls(**known)  # an unknown state is a ValueError
        job.extra.update(extra)
        return job


#: A lone surrogate: a byte of a name that was not UTF-8 (``os.fsdecode``'s escape).
_SURROGATE = re.compile("[\ud800-\udfff]")
_FIELDS = dataclasses.fields(Job)
_NAMES = tuple(f.name for f in _FIELDS)
#: Fields only a job received over LPD sets: written only when set, so that the tickets of
#: other jobs stay byte for byte what earlier versions wrote (and read).
_LPD_ONLY = frozenset({"peer", "origin", "print_format"})


def user_name(uid: int) -> str:
    """The login name of ``uid`` (the number itself when it has none)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
