"""The records on a cron pass's way (``watch --once``) that were dataclasses until issue 16's
round 11 are lpfilter.structs classes now, so that a pass imports neither dataclasses (with
inspect, ast and dis) nor typing: each keeps what its dataclass gave. Checked against the
dataclass it replaced, declared here as it was: the same fields in the same order with the
same defaults, the same ``repr``, ``==`` field by field, a hash and no assignment when
frozen, none when not, and a fresh mutable default for each object.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any

import pytest

from lpfilter.children.run import FilterCommand
from lpfilter.filters.command import JobFacts
from lpfilter.filters.dollars import Token
from lpfilter.job import JobState
from lpfilter.printcap.acctarget import Target
from lpfilter.spool.hotfolder import Candidate, Scan, Writers
from lpfilter.spool.inotify import Event
from lpfilter.spool.outcome import WatchOutcome, WorkSummary
from lpfilter.spool.policy import Decision
from lpfilter.spool.serve import Foreground
from lpfilter.structs import Struct



@dataclasses.dataclass(frozen=True, slots=True)
class OldEvent:
    watch: int
    mask: int
    name: str


@dataclasses.dataclass(slots=True)
class OldForeground:
    left_to_daemon: bool = False
    summary: Any = None
    interrupted: bool = False
    waited_on: str = ""


@dataclasses.dataclass(frozen=True)
class OldFilterCommand:
    key: str
    argv: list[str]
    as_root: bool
    shell: bool
    env: Mapping[str, str] = field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class OldToken:
    name: str
    apart: bool
    bare: bool


@dataclasses.dataclass(frozen=True)
class OldJobFacts:
    queue: str
    spool_dir: str
    job_number: str
    user: str
    host: str
    job_name: str
    title: str
    job_class: str
    file_name: str
    data_file: str
    control_file: str
    size: int
    fmt: str
    copies: int
    indent: str = ""
    width: str = ""
    account: str = ""
    control_lines: Mapping[str, str] = field(default_factory=dict)
    now: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class OldDecision:
    state: JobState
    delay: float = 0.0
    program: str | None = None
    counted: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class OldCandidate:
    name: str
    path: str
    size: int
    mtime: float
    uid: int
    mode: int = 0o600


@dataclasses.dataclass(slots=True)
class OldScan:
    ready: list[Any]
    refused: list[tuple[str, str]]
    recheck_at: float | None
    waiting: dict[str, str] = field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class OldWriters:
    holders: dict[str, list[str]] = field(default_factory=dict)
    hidden: list[frozenset[int]] = field(default_factory=list)
    others_unseen: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class OldTarget:
    kind: str
    value: str
    port: int = 0


@dataclasses.dataclass(slots=True)
class OldWorkSummary:
    counts: dict[JobState, int] = field(default_factory=dict)
    pending: int = 0
    left: int = 0
    full: Any = None
    unwritten: list[str] = field(default_factory=list)


@dataclasses.dataclass(slots=True)
class OldWatchOutcome:
    broken: dict[str, BaseException] = field(default_factory=dict)
    passes: list[Any] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


FACTS = ("q", "/sd", "7", "u", "h", "name", "title", "A", "f.txt", "dfA007h", "cfA007h", 12,
         "f", 1)
#: (new class, the dataclass it replaced, the required arguments, every argument)
CASES: list[tuple[type[Struct], type, tuple[Any, ...], tuple[Any, ...]]] = [
    (Event, OldEvent, (1, 2, "a"), (1, 2, "a")),
    (Foreground, OldForeground, (), (True, None, True, "served by pid 1 (print)")),
    (FilterCommand, OldFilterCommand, ("lp", ["x"], False, True),
     ("lp", ["x"], False, True, {"LPF_1": "v"})),
    (Token, OldToken, ("P", True, False), ("P", True, False)),
    (JobFacts, OldJobFacts, FACTS, (*FACTS, "2", "80", "acct", {"L": "u"}, 3.5)),
    (Decision, OldDecision, (JobState.QUEUED,), (JobState.FAILED, 2.5, "/bin/x", False)),
    (Candidate, OldCandidate, ("n", "/p", 3, 1.5, 0), ("n", "/p", 3, 1.5, 0, 0o644)),
    (Scan, OldScan, ([], [("a", "b")], None), ([], [], 2.0, {"f": "open"})),
    (Writers, OldWriters, (), ({"f": ["1"]}, [frozenset({0})], True)),
    (Target, OldTarget, ("file", "acct"), ("host", "h", 9)),
    (WorkSummary, OldWorkSummary, (), ({JobState.DONE: 1}, 2, 3, None, ["000001"])),
    (WatchOutcome, OldWatchOutcome, (), ({"q": OSError()}, [], ["r"])),
]


def _same_repr(new: object, old: object) -> None:
    assert repr(new).partition("(")[2] == repr(old).partition("(")[2]


@pytest.mark.parametrize(("new", "old", "required", "every"), CASES,
                         ids=[case[0].__name__ for case in CASES])
def test_each_is_the_dataclass_it_replaced(new: Callable[..., Any], old: type,
                                           required: tuple[Any, ...],
                                           every: tuple[Any, ...]) -> None:
    names = [f.name for f in dataclasses.fields(old)]
    assert list(new._fields) == names  # type: ignore[attr-defined]
    for args in (required, every):
        made, was = new(*args), old(*args)
        assert [getattr(made, n) for n in names] == [getattr(was, n) for n in names]
        _same_repr(made, was)
        assert made == new(*args) and made != was
        assert new(**dict(zip(names, args))) == made
    frozen = old.__dataclass_params__.frozen  # type: ignore[attr-defined]
    made = new(*every)
    if frozen:
        with pytest.raises(AttributeError):
            setattr(made, names[0], every[0])
        if all(isinstance(getattr(made, n), (str, int, float, bool, type(None), JobState))
               for n in names):
            assert hash(made) == hash(new(*every))
    else:
        with pytest.raises(TypeError, match="unhashable"):
            hash(made)
    mutable = [n for n in names if isinstance(getattr(new(*required), n), (dict, list))
               and n not in dict(zip(names, required))]
    for name in mutable:  # a default dict or list is each object's own
        assert getattr(new(*required), name) is not getattr(new(*required), name)
