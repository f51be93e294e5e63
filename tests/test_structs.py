"""lpfilter.structs: the record classes that replaced dataclasses on the quick commands' path
(issue 16) keep what the dataclasses gave: the same ``repr``, ``==`` field by field between
objects of one class, unhashable when mutable, hashable and unassignable when frozen.

Each is checked against the dataclass it replaced, declared here as it was.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lpfilter.backends.framing import Framing
from lpfilter.backends.settings import NO_FRAMING, SocketSettings
from lpfilter.commands.environment import PrintcapPaths
from lpfilter.printcap.destination import Ftp, Lpd
from lpfilter.printcap.entry import Entry, Option, Record
from lpfilter.printcap.hostmatch import HostInfo
from lpfilter.printcap.keys import Key
from lpfilter.printcap.source import Origin, Problem


@dataclasses.dataclass(slots=True)
class OldOption:
    key: str
    text: str
    form: str
    value: str | None
    origin: Origin
    swallowed: bool = False
    rejoined: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.key.lower()


@dataclasses.dataclass(frozen=True, slots=True)
class OldProblem:
    origin: Origin | None
    message: str
    fatal: bool = False
    note: bool = False


@dataclasses.dataclass(slots=True)
class OldEntry:
    name: str
    names: list[str]
    options: dict[str, Any]
    requested: str
    host: Any
    where: Origin
    _codes: dict[str, str] | None = dataclasses.field(default=None, repr=False)
    printcap: Any = dataclasses.field(default=None, repr=False, compare=False)


def _same_repr(new: object, old: object) -> None:
    assert repr(new).partition("(")[2] == repr(old).partition("(")[2]
    assert repr(new).partition("(")[0] == type(new).__qualname__


texts = st.text(max_size=8)
origins = st.builds(Origin, texts, st.integers(0, 9))


@given(texts, texts, st.sampled_from(["flag", "value", "number"]), st.none() | texts, origins,
       st.booleans(), st.booleans(), texts)
def test_option_is_the_dataclass_it_replaced(key: str, text: str, form: str,
                                             value: str | None, origin: Origin, swallowed: bool,
                                             rejoined: bool, name: str) -> None:
    args = (key, text, form, value, origin, swallowed, rejoined, name)
    new, old = Option(*args), OldOption(*args)
    _same_repr(new, old)
    assert [getattr(new, f.name) for f in dataclasses.fields(old)] == list(
        dataclasses.astuple(old))
    assert new == Option(*args) and new != OldOption(*args)
    assert (new == Option(key + "x", *args[1:])) is False
    assert Option(key, text, form, value, origin) == Option(*args[:5], False, False, "")
    with pytest.raises(TypeError, match="unhashable"):
        hash(new)


@given(st.none() | origins, texts, st.booleans(), st.booleans())
def test_problem_is_the_frozen_dataclass_it_replaced(origin: Origin | None, message: str,
                                                     fatal: bool, note: bool) -> None:
    new, old = Problem(origin, message, fatal, note), OldProblem(origin, message, fatal, note)
    _same_repr(new, old)
    assert hash(new) == hash(Problem(origin, message, fatal=fatal, note=note))
    assert {new, Problem(origin, message, fatal, note)} == {new}
    assert new != Problem(origin, message + "x", fatal, note)
    with pytest.raises(AttributeError, match="cannot assign to field 'fatal'"):
        new.fatal = not fatal  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del new.message  # type: ignore[misc]
    with pytest.raises(AttributeError):
        new.other = 1  # type: ignore[attr-defined]
    assert copy.copy(new) == new and copy.deepcopy(new) == new
    assert Problem(origin, message) == Problem(origin, message, False, False)


def test_entry_shows_and_compares_what_the_dataclass_did() -> None:
    host = HostInfo.fixed("h.example")
    option = Option("lp", "lp=/dev/null", "value", "/dev/null", Origin("f", 1))
    args: tuple[Any, ...] = ("q", ["q", "alias"], {"lp": option}, "alias", host, Origin("f", 1))
    new, old = Entry(*args), OldEntry(*args)
    _same_repr(new, old)
    assert Entry(*args, printcap=object()) == new  # the printcap is not compared
    assert Entry(*args, _codes={"P": "q"}) != new  # the % codes are
    new.codes()
    assert "_codes" not in repr(new) and "printcap" not in repr(new)


def test_the_frozen_records_hash_and_refuse_assignment() -> None:
    key = Key("ab", "F", False, "always print a banner")
    assert hash(key) == hash(Key("ab", "F", False, "always print a banner"))
    assert repr(key) == "Key(name='ab', type='F', default=False, meaning='always print a banner')"
    host = HostInfo.fixed("h.example")
    assert host == HostInfo.fixed("h.example") and hash(host) == hash(HostInfo.fixed("h.example"))
    assert host != HostInfo.fixed("g.example")
    paths = PrintcapPaths(("/etc/printcap",))
    assert (paths.optional, paths.source) == ((), "default")
    assert paths == PrintcapPaths(("/etc/printcap",), (), "default")
    for frozen, name in ((key, "name"), (host, "fqdn"), (paths, "paths")):
        with pytest.raises(AttributeError, match=f"cannot assign to field '{name}'"):
            setattr(frozen, name, "x")
    record = Record(["q"], [], Origin("f", 1), None)
    assert repr(record) == ("Record(names=['q'], options=[], origin=Origin(file='f', line=1),"
                            " raw=None)")
    assert record == Record(["q"], [], Origin("f", 1), None)
    assert record != Record(["p"], [], Origin("f", 1), None)


def test_an_ftp_destination_never_shows_its_password() -> None:
    ftp = Ftp("printer", 21, "PORT1", "u", "secret")
    assert repr(ftp) == "Ftp(host='printer', port=21, path='PORT1', user='u')"
    assert ftp == Ftp("printer", 21, "PORT1", "u", "secret") != Ftp("printer", 21, "PORT1", "u")
    assert ftp.kind == "ftp" and ftp.password == "secret"
    assert Lpd("q", "h") == Lpd("q", "h", 515) and hash(Lpd("q", "h")) == hash(Lpd("q", "h", 515))


def test_a_frozen_record_is_copied_with_changes_and_refuses_assignment_as_a_dataclass() -> None:
    """``replace`` is ``dataclasses.replace``; setting a field raises the frozen
    dataclass's own error, so callers catching it (or AttributeError) still do."""
    framing = Framing(b"L", b"\f", b"T")
    settings = SocketSettings("q", framing, 5.0, pjl=True, waitend="pjl", silence=0.0,
                              delay=0.0, overall=60.0, half_close=True, connect_grace=0.0,
                              connect_timeout=0.0, keepalive=False, linger=0, sync=False,
                              pagecount=False, pjl_enter=None, init=b"", ps_eoj=False)
    changed = settings.replace(framing=NO_FRAMING, waitend="none")
    assert (changed.framing, changed.waitend, changed.queue, changed.pjl) == (
        NO_FRAMING, "none", "q", True)
    assert (settings.framing, settings.waitend) == (framing, "pjl")
    assert changed == settings.replace(framing=NO_FRAMING).replace(waitend="none")
    assert repr(settings).startswith("SocketSettings(queue='q', framing=Framing(leader=b'L',")
    with pytest.raises(TypeError):
        settings.replace(colour=True)
    with pytest.raises(dataclasses.FrozenInstanceError, match="'stall'"):
        settings.stall = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del framing.leader  # type: ignore[misc]
