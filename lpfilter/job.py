"""A job's ticket: what lpfilter knows about one job, as a small JSON file beside its data.

Pure data and conversions; ``store`` reads and writes tickets. The ticket is the job's
truth: a crash leaves it on disk, and the next start reads what state the job was in.
"""
from __future__ import annotations

import pwd

from lpfilter.enums import StrEnum
from lpfilter.errors import ImpossibleTransition
from lpfilter.structs import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class JobState(StrEnum):
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


class Job(Struct):
    """One job. Times are seconds since the epoch (float).

    A ``Struct`` (what ``@dataclass(slots=True)`` gave it: ``==`` field by field, its
    ``repr``, unhashable) written out, so that a quick command imports no ``dataclasses``
    (issue 16). ``_fields`` is the ticket's keys, in this order."""

    __slots__ = _fields = (
        "id", "queue", "user", "name", "size", "submitted", "title", "copies", "host",
        "job_class", "no_banner", "source", "state", "attempts", "next_try", "last_error",
        "unreachable_since", "unreachable_tries", "worker", "send_started",
        "possible_duplicate", "bytes_sent", "pages", "started", "finished", "delivery", "peer",
        "origin", "print_format", "extra")
    id: str
    queue: str
    user: str
    name: str
    size: int
    submitted: float
    title: str
    copies: int
    host: str
    #: LPRng's job class (lpr -C); lpfilter keeps it but does not act on it.
    job_class: str
    #: lpr -h: the user asked for no banner page (the control file had no L line).
    no_banner: bool
    #: "print" (lpfilter print), "hotfolder" (a file dropped into the spool directory) or
    #: "lpd" (received by the print server).
    source: str
    #: Changed only through ``move_to``.
    state: JobState
    attempts: int
    #: Not before this time (backoff after a transient failure).
    next_try: float
    last_error: str
    #: Since when no connection to the printer could be opened (0: it could, last time), and
    #: how many tries in a row found it so: status says since when, the pause grows with
    #: the tries, and such tries are not counted in ``attempts`` unless send_try is set.
    unreachable_since: float
    unreachable_tries: int
    #: pid and process start time of the worker sending it, while active.
    worker: tuple[int, float] | None
    #: Bytes may have reached the printer in an attempt that did not finish.
    send_started: bool
    possible_duplicate: bool
    bytes_sent: int
    pages: int | None
    started: float | None
    finished: float | None
    #: Where the printer said it took the job ("sent") or confirmed it ("confirmed").
    delivery: str
    #: A job received over LPD: the client's IP address ("" for a local client), on which
    #: the server's rights rest (a remote user may remove only jobs from its own address).
    peer: str
    #: A job received over LPD: its number on the wire and a digest of its control file, so
    #: that a client resending it after a lost final acknowledgement is recognised.
    origin: str
    #: A job received over LPD: the print format letter of its print lines (f, l, p, o...).
    print_format: str
    extra: dict[str, Any]

    def __init__(self, id: str, queue: str, user: str, name: str,
                 size: int, submitted: float, title: str = "", copies: int = 1,
                 host: str = "", job_class: str = "", no_banner: bool = False,
                 source: str = "print", state: JobState | str = JobState.QUEUED,
                 attempts: int = 0, next_try: float = 0.0, last_error: str = "",
                 unreachable_since: float = 0.0, unreachable_tries: int = 0,
                 worker: tuple[int, float] | None = None, send_started: bool = False,
                 possible_duplicate: bool = False, bytes_sent: int = 0,
                 pages: int | None = None, started: float | None = None,
                 finished: float | None = None, delivery: str = "", peer: str = "",
                 origin: str = "", print_format: str = "",
                 extra: dict[str, Any] | None = None) -> None:
        """A ticket (or a caller) may give the state's value: the job holds a JobState.
        ``extra`` None is a new empty dict (the dataclass's ``default_factory``)."""
        self.id = id
        self.queue = queue
        self.user = user
        self.name = name
        self.size = size
        self.submitted = submitted
        self.title = title
        self.copies = copies
        self.host = host
        self.job_class = job_class
        self.no_banner = no_banner
        self.source = source
        if not isinstance(state, JobState):
            try:
                state = JobState(state)
            except ValueError:
                raise ValueError(f"unknown job state {state!r}") from None
        self.state = state
        self.attempts = attempts
        self.next_try = next_try
        self.last_error = last_error
        self.unreachable_since = unreachable_since
        self.unreachable_tries = unreachable_tries
        self.worker = worker
        self.send_started = send_started
        self.possible_duplicate = possible_duplicate
        self.bytes_sent = bytes_sent
        self.pages = pages
        self.started = started
        self.finished = finished
        self.delivery = delivery
        self.peer = peer
        self.origin = origin
        self.print_format = print_format
        self.extra = {} if extra is None else extra

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def awaited(self) -> bool:
        """May a process on this machine wait to read how the job ended? ``print`` reads
        its own jobs' ends (not ``print --no-wait``: ``extra["no_wait"]``), and a client of
        the print server's local socket asks for them (``print --wait``); nobody can ask
        about a job from another host or the hot folder."""
        if self.source == "print":
            return not self.extra.get("no_wait")
        return self.source == "lpd" and not self.peer

    def move_to(self, state: JobState) -> None:
        """Change the job's state: the only way it changes, so that a transition that can
        never happen (see TRANSITIONS) is caught where it is attempted, not on disk later."""
        if state not in TRANSITIONS[self.state]:
            raise ImpossibleTransition(self.id, self.queue, self.state, state)
        self.state = state

    def copy(self) -> Job:
        """A shallow copy (as dataclasses.replace made). Every field is named here, not
        set by ``setattr`` in a loop over ``_fields``: a third of the cost (0.7 against
        2.5 us), and the store copies every ticket it lists, many times a second on a busy
        queue (test_structs_spool compares a copy's every field)."""
        return Job(self.id, self.queue, self.user, self.name, self.size, self.submitted,
                   self.title, self.copies, self.host, self.job_class, self.no_banner,
                   self.source, self.state, self.attempts, self.next_try, self.last_error,
                   self.unreachable_since, self.unreachable_tries, self.worker,
                   self.send_started, self.possible_duplicate, self.bytes_sent, self.pages,
                   self.started, self.finished, self.delivery, self.peer, self.origin,
                   self.print_format, self.extra)

    def to_dict(self) -> dict[str, Any]:
        """The ticket as plain data (what ``status --json`` shows)."""
        data = {name: getattr(self, name) for name in _FIELDS
                if name not in _LPD_ONLY or getattr(self, name)}
        if data["worker"] is not None:
            data["worker"] = list(data["worker"])
        return data

    def to_json(self) -> str:
        """The ticket's text, UTF-8 encodable: bytes that were not UTF-8 in a name (kept
        as surrogates, from argv or a control file) are written as JSON escapes, which
        read back as the same characters."""
        from lpfilter import jsontext  # (at its first use: lpd's filter never writes a Job)
        data = self.to_dict()
        text = jsontext.dumps(data, sort_keys=True, ensure_ascii=False)
        if not text.isascii() and _has_surrogate(text):  # isascii: C speed, the usual case
            text = jsontext.dumps(data, sort_keys=True)
        return text + "\n"

    @classmethod
    def from_json(cls, text: str) -> Job:
        """A ticket from its JSON; unknown keys (a newer lpfilter's) are kept in ``extra``.
        (Every command replays its queue's journal through this: the unknown keys are
        found by a set difference and the state by a dict, not by ``JobState()``. The keys
        become the fields' own names first: ``__init__`` matches a keyword by identity
        before it compares text, and a key json made matched each of 31 parameters by text,
        more than json's own parse of the ticket.)"""
        from lpfilter import jsontext  # (see to_json; an imported module costs 0.1 us here)
        data = jsontext.loads(text)
        if type(data) is not dict:
            raise ValueError("a ticket is a JSON object")
        data = {_NAMES.get(key, key): value for key, value in data.items()}
        extra = None if data.keys() <= _FIELD_SET else {
            key: data.pop(key) for key in data.keys() - _FIELD_SET}
        state = data.get("state")
        if type(state) is str and state in _STATES:
            data["state"] = _STATES[state]
        if type(data.get("worker")) is list:
            data["worker"] = tuple(data["worker"])
        job = cls(**data)  # an unknown state is a ValueError
        job.extra.update(extra or ())  # (an "extra" that is no object: AttributeError)
        return job


#: A lone surrogate: a byte of a name that was not UTF-8 (``os.fsdecode``'s escape). A
#: pattern, compiled by ``re`` at its first use: compiling it costs every command 0.25 ms,
#: and only a name that is not ASCII is searched.
_SURROGATE = "[\ud800-\udfff]"


def _has_surrogate(text: str) -> bool:
    import re  # (only for text that is not ASCII: a quick command imports no re)
    return re.search(_SURROGATE, text) is not None


#: The ticket's keys, in the order of ``Job``'s fields (the dataclass's ``fields``).
_FIELDS = Job._fields
_FIELD_SET = frozenset(_FIELDS)
#: Each field's name -> that name as ``__init__``'s parameter is (interned: one object).
_NAMES = {name: name for name in _FIELDS}
#: A state's value -> the state.
_STATES = {state.value: state for state in JobState}
#: Fields only a job received over LPD sets: written only when set, so that the tickets of
#: other jobs stay byte for byte what earlier versions wrote (and read).
_LPD_ONLY = frozenset({"peer", "origin", "print_format"})


def user_name(uid: int) -> str:
    """The login name of ``uid`` (the number itself when it has none)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
