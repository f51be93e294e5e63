"""The job's and the spool's records as lpfilter.structs classes (issue 16, start-up round 3):
``Job``, ``JobOptions``, ``QueueControl``, ``Selection`` and ``Outcome`` keep what their
dataclasses gave, and the ticket's text is byte for byte what the dataclass wrote.

Each is checked against the dataclass it replaced, declared here as it was; the ticket's
``to_json``/``from_json`` of the dataclass are here as they were (over its ``fields``).
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lpfilter import job as jobmodule
from lpfilter.job import Job, JobState
from lpfilter.spool.control import QueueControl
from lpfilter.spool.jobctl import Outcome, Selection
from lpfilter.spool.submit import JobOptions


@dataclass(slots=True)
class OldJob:
    id: str
    queue: str
    user: str
    name: str
    size: int
    submitted: float
    title: str = ""
    copies: int = 1
    host: str = ""
    job_class: str = ""
    no_banner: bool = False
    source: str = "print"
    state: JobState = JobState.QUEUED
    attempts: int = 0
    next_try: float = 0.0
    last_error: str = ""
    unreachable_since: float = 0.0
    unreachable_tries: int = 0
    worker: tuple[int, float] | None = None
    send_started: bool = False
    possible_duplicate: bool = False
    bytes_sent: int = 0
    pages: int | None = None
    started: float | None = None
    finished: float | None = None
    delivery: str = ""
    peer: str = ""
    origin: str = ""
    print_format: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.state, JobState):
            try:
                self.state = JobState(self.state)
            except ValueError:
                raise ValueError(f"unknown job state {self.state!r}") from None


_LPD_ONLY = frozenset({"peer", "origin", "print_format"})


def old_to_dict(job: OldJob) -> dict[str, Any]:
    data = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)
            if f.name not in _LPD_ONLY or getattr(job, f.name)}
    if data["worker"] is not None:
        data["worker"] = list(data["worker"])
    return data


def old_to_json(job: OldJob) -> str:
    data = old_to_dict(job)
    text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    if not text.isascii() and re.search(jobmodule._SURROGATE, text):
        text = json.dumps(data, sort_keys=True)
    return text + "\n"


def old_from_json(text: str) -> OldJob:
    data = json.loads(text)
    names = {f.name for f in dataclasses.fields(OldJob)}
    known = {k: v for k, v in data.items() if k in names}
    extra = {k: v for k, v in data.items() if k not in names}
    if isinstance(known.get("worker"), list):
        known["worker"] = tuple(known["worker"])
    job = OldJob(**known)
    job.extra.update(extra)
    return job


#: Names as a ticket may hold them: any text, and bytes that were not UTF-8 (surrogates).
texts = st.text(max_size=6) | st.sampled_from(["caf\udce9", "\udcff", "é", "日本"])
floats = st.floats(allow_nan=False, allow_infinity=False)
values = st.none() | st.booleans() | st.integers() | floats | texts
jobs_args = st.tuples(
    texts, texts, texts, texts, st.integers(0), floats,  # id ... submitted
    texts, st.integers(1, 99), texts, texts, st.booleans(), texts,  # title ... source
    st.sampled_from(list(JobState)), st.integers(0, 9), floats, texts,  # state ... last_error
    floats, st.integers(0, 9), st.none() | st.tuples(st.integers(1), floats),  # ... worker
    st.booleans(), st.booleans(), st.integers(0), st.none() | st.integers(0),  # ... pages
    st.none() | floats, st.none() | floats, texts, texts, texts, texts,  # started ... format
    st.dictionaries(texts, values, max_size=3))  # extra


def _fields(record: object, names: tuple[str, ...]) -> list[Any]:
    return [getattr(record, name) for name in names]


@given(jobs_args)
def test_a_job_is_the_dataclass_it_replaced_and_writes_the_same_ticket(
        args: tuple[Any, ...]) -> None:
    new, old = Job(*args), OldJob(*args)
    names = tuple(f.name for f in dataclasses.fields(OldJob))
    assert Job._fields == names == jobmodule._FIELDS
    assert _fields(new, names) == _fields(old, names)
    assert repr(new).partition("(")[2] == repr(old).partition("(")[2]
    assert list(new.to_dict().items()) == list(old_to_dict(old).items())  # status --json
    text = new.to_json()
    assert text == old_to_json(old)
    text.encode()  # a ticket is UTF-8
    again = Job.from_json(text)
    assert again == new and again is not new
    assert _fields(again, names) == _fields(old_from_json(text), names)
    assert again.to_json() == text
    copied = new.copy()
    assert copied == new and copied is not new and copied.extra is new.extra
    with pytest.raises(TypeError, match="unhashable"):
        hash(new)


def test_a_job_s_defaults_unknown_keys_and_states_are_the_dataclass_s() -> None:
    names = tuple(f.name for f in dataclasses.fields(OldJob))
    base = ("7", "q", "ann", "doc", 10, 1.5)
    new, old = Job(*base), OldJob(*base)
    assert _fields(new, names) == _fields(old, names)
    assert new.to_json() == old_to_json(old)
    assert Job(*base).extra is not new.extra  # each its own dict
    assert new == Job(*base) and new != Job(*base, copies=2)
    assert Job(*base, state="held").state is JobState.HELD
    with pytest.raises(ValueError, match="unknown job state 'lost'"):
        Job(*base, state="lost")
    ticket = json.loads(new.to_json())
    ticket["later"] = [1, "x"]
    read = Job.from_json(json.dumps(ticket))
    assert read.extra == {"later": [1, "x"]} == old_from_json(json.dumps(ticket)).extra
    with pytest.raises(AttributeError):
        new.colour = "red"  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class OldQueueControl:
    printing_disabled: bool = False
    spooling_disabled: bool = False
    hold_all: bool = False
    redirect: str = ""
    redirect_sd: str = ""
    unreadable: str = ""


@dataclass(frozen=True, slots=True)
class OldJobOptions:
    user: str
    name: str | None = None
    title: str = ""
    copies: int = 1
    hold: bool = False
    job_class: str = ""
    no_banner: bool = False
    print_format: str = ""
    no_wait: bool = False  # (round 10: print --no-wait, a field the dataclass would have)
    lines: tuple[tuple[str, str], ...] = ()  # (print -Z, -w, -i: the same)


@dataclass
class OldSelection:
    named: set[int] = field(default_factory=set)
    anywhere: set[int] = field(default_factory=set)
    every: bool = False
    users: set[str] = field(default_factory=set)  # (lprm alice: a field it would have)
    first: bool = False  # (a bare lprm: the same)


@dataclass(frozen=True, slots=True)
class OldOutcome:
    number: int
    kind: str
    job: str = ""
    user: str = ""
    said: str = ""


def _frozen_as_before(new: Any, old: Any) -> None:
    assert repr(new).partition("(")[2] == repr(old).partition("(")[2]
    assert new.to_dict() == dataclasses.asdict(old)
    assert list(new.to_dict()) == [f.name for f in dataclasses.fields(old)]
    assert new == type(new)(**dataclasses.asdict(old)) and new != old
    assert hash(new) == hash(type(new)(**dataclasses.asdict(old)))
    name = type(new)._fields[0]
    with pytest.raises(dataclasses.FrozenInstanceError, match=f"'{name}'"):
        setattr(new, name, None)


@given(st.tuples(st.booleans(), st.booleans(), st.booleans(), texts, texts, texts))
def test_queue_control_is_the_frozen_dataclass_it_replaced(args: tuple[Any, ...]) -> None:
    new, old = QueueControl(*args), OldQueueControl(*args)
    _frozen_as_before(new, old)
    assert QueueControl.from_dict({**new.to_dict(), "later": 1}) == new
    assert new.replace(hold_all=not args[2]).to_dict() == dataclasses.asdict(
        dataclasses.replace(old, hold_all=not args[2]))
    assert QueueControl() == QueueControl(False, False, False, "", "", "")


@given(st.tuples(texts, st.none() | texts, texts, st.integers(1, 9), st.booleans(), texts,
                 st.booleans(), texts, st.booleans(),
                 st.lists(st.tuples(st.sampled_from("ZWI"), texts), max_size=3).map(tuple)))
def test_job_options_are_the_frozen_dataclass_they_replaced(args: tuple[Any, ...]) -> None:
    _frozen_as_before(JobOptions(*args), OldJobOptions(*args))
    assert JobOptions(args[0]).to_dict() == dataclasses.asdict(OldJobOptions(args[0]))


@given(st.tuples(st.integers(0), texts, texts, texts, texts))
def test_an_outcome_is_the_frozen_dataclass_it_replaced(args: tuple[Any, ...]) -> None:
    _frozen_as_before(Outcome(*args), OldOutcome(*args))
    assert Outcome(args[0], args[1]).to_dict() == dataclasses.asdict(OldOutcome(*args[:2]))


@given(st.sets(st.integers(0)), st.sets(st.integers(0)), st.booleans())
def test_a_selection_is_the_dataclass_it_replaced(named: set[int], anywhere: set[int],
                                                  every: bool) -> None:
    new, old = Selection(named, anywhere, every), OldSelection(named, anywhere, every)
    assert repr(new).partition("(")[2] == repr(old).partition("(")[2]
    assert new == Selection(set(named), set(anywhere), every)
    assert new != Selection(named | {-1}, anywhere, every)
    empty = Selection()
    assert (empty.named, empty.anywhere, empty.every, empty.users) == (set(), set(), False,
                                                                        set())
    assert empty.named is not Selection().named  # each its own set
    assert empty.users is not Selection().users
    new.every = not every  # mutable, as the dataclass
    with pytest.raises(TypeError, match="unhashable"):
        hash(new)


def test_origin_is_the_named_tuple_it_was() -> None:
    """printcap.source.Origin, a named tuple written out (typing.NamedTuple compiled its
    annotations at import, collections.namedtuple needs collections), shows, compares,
    copies and pickles as before."""
    import copy
    import pickle

    from lpfilter.printcap.source import Origin
    origin = Origin("f", 1)
    assert (repr(origin), str(origin), origin._fields) == ("Origin(file='f', line=1)", "f:1",
                                                          ("file", "line"))
    assert origin == ("f", 1) and hash(origin) == hash(("f", 1)) and origin[1] == 1
    assert (origin.file, origin.line, tuple(origin), len(origin)) == ("f", 1, ("f", 1), 2)
    assert sorted([Origin("g", 1), Origin("f", 9), origin]) == [("f", 1), ("f", 9), ("g", 1)]
    assert Origin(file="f", line=1) == origin and origin._replace(line=2) == Origin("f", 2)
    for again in (pickle.loads(pickle.dumps(origin)), copy.deepcopy(origin)):  # noqa: S301
        assert again == origin and type(again) is Origin
    with pytest.raises(AttributeError):
        origin.column = 3  # type: ignore[attr-defined]
