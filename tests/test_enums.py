"""lpfilter.enums against the standard library's ``enum``: every lpfilter enum, and
generated ones, behave as ``enum``'s twin of the same members does."""
from __future__ import annotations

import ast
import copy
import enum
import json
import pickle
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lpfilter import enums, jsontext
from lpfilter.errors import Interruption
from lpfilter.filtercodes import FilterCode
from lpfilter.job import JobState
from lpfilter.protocols.lpd import AckKind, Request, Subcommand
from lpfilter.protocols.lpdcontrol import Style
from lpfilter.spool.journalformat import Kind
from lpfilter.status import ExitStatus

OURS = [ExitStatus, FilterCode, Kind, Request, Subcommand, AckKind, Style, Interruption,
        JobState]
PACKAGE = Path(enums.__file__).resolve().parent
#: lpfilter's base class and the standard library's.
TWIN_BASES = {enums.IntEnum: enum.IntEnum, enums.StrEnum: enum.StrEnum, enums.Enum: enum.Enum}


def twin(cls: Any) -> Any:
    """``enum``'s class of the same name and members (aliases included, in order)."""
    base = next(b for b in cls.__mro__ if b in TWIN_BASES)
    pairs = [(name, member.value) for name, member in cls.__members__.items()]
    return TWIN_BASES[base](cls.__name__, pairs, module=__name__)


def _pickled(member: Any) -> object:
    """``member`` through pickle; a class made here is found as this module's global."""
    cls = type(member)
    if cls.__module__ != __name__:
        return pickle.loads(pickle.dumps(member))
    name, scope = cls.__qualname__, globals()
    before = scope.get(name)
    scope[name] = cls
    try:
        return pickle.loads(pickle.dumps(member))
    finally:
        if before is None:
            del scope[name]
        else:
            scope[name] = before


def _outcome(call: Callable[[], object]) -> object:
    """What ``call`` returns, or its exception's type and message."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 (the error is the observation)
        return (type(exc).__name__, str(exc))


def _member(member: Any, cls: Any) -> list[object]:
    """What a member shows and does, without naming its class's identity."""
    others = list(cls)
    seen: list[object] = [
        member.name, member.value, type(member.value).__name__, str(member), repr(member),
        format(member), f"{member!s}|{member!r}", "%s" % member, bool(member),  # noqa: UP031
        hash(member) == hash(member.value), hash(member) == hash(member.name),
        member == member.value, [member == other for other in others],
        [member != other for other in others], cls(member.value) is member,
        cls(member) is member, cls[member.name] is member, member in cls,
        _pickled(member) is member, copy.copy(member) is member,
        copy.deepcopy(member) is member, isinstance(member, int), isinstance(member, str)]
    if isinstance(member, int | str):
        doubled: Any = member
        seen += [format(member, ">12"), json.dumps(member), jsontext.dumps([member]),
                 doubled + member, sorted([member, member])]
    if isinstance(member, int):
        seen += [int(member), "%d" % member, f"{member:04d}", member < 1000]  # noqa: UP031
    return seen


def behaviour(cls: Any) -> list[object]:
    """Everything the tests compare of an enum class."""
    seen: list[object] = [
        len(cls), repr(cls), [m.name for m in cls], [m.name for m in reversed(cls)],
        {name: member.name for name, member in cls.__members__.items()},
        _outcome(lambda: cls("no such value")), _outcome(lambda: cls(-424242)),
        _outcome(lambda: cls(["unhashable"])), _outcome(lambda: cls["NO_SUCH_NAME"])]
    seen += [_member(member, cls) for member in cls]
    first = next(iter(cls))
    seen.append(_outcome(lambda: setattr(cls, first.name, first.value)))
    seen.append(_outcome(lambda: delattr(cls, first.name)))
    seen.append(getattr(cls, first.name) is first)
    seen.append(_outcome(lambda: types.new_class(  # a class statement extending it
        "Sub", (cls,), exec_body=lambda body: body.__setitem__("EXTRA", first.value))))
    return seen


def _declared() -> set[tuple[str, str]]:
    """(module, class) of every class in the package whose base is lpfilter.enums' (read
    from the source, so that an enum added later is compared too)."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(base, ast.Name) and base.id in ("Enum", "IntEnum", "StrEnum")
                    for base in node.bases) and module != "lpfilter.enums":
                found.add((module, node.name))
    return found


def test_every_enum_of_lpfilter_is_compared() -> None:
    assert {(cls.__module__, cls.__qualname__) for cls in OURS} == _declared()


def test_no_module_but_enums_imports_enum() -> None:
    """An enum made with ``enum`` itself would bring its import back to every command."""
    users = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                   if path.name != "enums.py" and any(
                       line.strip().startswith(("import enum", "from enum "))
                       for line in path.read_text(encoding="utf-8").splitlines()))
    assert users == []


@pytest.mark.parametrize("cls", OURS, ids=lambda c: c.__name__)
def test_each_lpfilter_enum_behaves_as_enum_s_twin(cls: Any) -> None:
    assert behaviour(cls) == behaviour(twin(cls))


def test_lpfilter_s_enums_are_not_enum_s_at_run_time() -> None:
    """The control: the classes compared above are lpfilter's own, and a command that
    uses them never imports ``enum``."""
    assert all(not isinstance(cls, enum.EnumMeta) for cls in OURS)
    code = ("import sys\n"
            "from lpfilter.status import ExitStatus\nfrom lpfilter.job import JobState\n"
            "from lpfilter.spool.journalformat import Kind\n"
            "from lpfilter.filtercodes import FilterCode\nimport lpfilter.errors\n"
            "assert ExitStatus(3) is ExitStatus.CONFIG and JobState('held').name == 'HELD'\n"
            "print('enum' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "False"


_NAMES = st.lists(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True), min_size=1,
                  max_size=8, unique=True)


def _build(base: Any, name: str, pairs: list[tuple[str, Any]]) -> Any:
    """A class of ``base`` made as a class statement makes it."""
    return type(base)(name, (base,), {"__module__": __name__, "__qualname__": name, **dict(pairs)})


@given(names=_NAMES, data=st.data())
def test_generated_int_enums_behave_as_enum_s(names: list[str], data: st.DataObject) -> None:
    """Any members, repeated values (aliases) included."""
    values = data.draw(st.lists(st.integers(-5, 5), min_size=len(names), max_size=len(names)))
    pairs = list(zip(names, values, strict=True))
    assert behaviour(_build(enums.IntEnum, "Gen", pairs)) == \
        behaviour(enum.IntEnum("Gen", pairs, module=__name__))


@given(names=_NAMES, data=st.data())
def test_generated_str_enums_behave_as_enum_s(names: list[str], data: st.DataObject) -> None:
    values = data.draw(st.lists(st.sampled_from(["", "a", "b", "queued", "x y", "\u00e9"]),
                                min_size=len(names), max_size=len(names)))
    pairs = list(zip(names, values, strict=True))
    assert behaviour(_build(enums.StrEnum, "Gen", pairs)) == \
        behaviour(enum.StrEnum("Gen", pairs, module=__name__))


@given(names=_NAMES, data=st.data())
def test_generated_plain_enums_behave_as_enum_s(names: list[str], data: st.DataObject) -> None:
    values = data.draw(st.lists(st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b"]),
                                          st.tuples(st.integers(0, 2))),
                                min_size=len(names), max_size=len(names)))
    pairs = list(zip(names, values, strict=True))
    assert behaviour(_build(enums.Enum, "Gen", pairs)) == \
        behaviour(enum.Enum("Gen", pairs, module=__name__))


def test_a_class_body_s_methods_and_private_names_are_not_members() -> None:
    class Colour(enums.Enum):
        """A doc string."""

        RED = "r"
        _hidden = "h"

        @property
        def loud(self) -> str:
            return self.name.upper()

        def shade(self) -> str:
            return f"{self.value}!"

    assert [m.name for m in Colour] == ["RED"]
    assert Colour.RED.shade() == "r!" and Colour.RED.loud == "RED"
    assert vars(Colour)["_hidden"] == "h" and Colour.__doc__ == "A doc string."


def test_membership_answers_as_python_3_12_s_enum() -> None:
    """Python 3.11's ``enum`` raises TypeError for a non-member; 3.12's answers whether it
    is a member's value, as lpfilter's does on every version."""
    exits: Any = ExitStatus  # (typeshed's 3.11 enum takes members only)
    states: Any = JobState
    kinds: Any = Kind
    interruptions: Any = Interruption
    assert ExitStatus.OK in exits and 3 in exits and 99 not in exits
    assert "queued" in states and "printing" not in states
    assert [] not in kinds and "cancelled" in interruptions


def test_wrong_values_are_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="is not a string"):
        _build(enums.StrEnum, "Bad", [("A", 1)])
    with pytest.raises(ValueError, match="invalid literal"):
        _build(enums.IntEnum, "Bad", [("A", "x")])
