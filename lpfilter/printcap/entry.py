"""Printcap records and entries as LPRng 3.8.B reads them: options with their file:line,
typed values, one record as written, and the merged entry a queue uses.

A *record* is one entry as written; an *entry* is what a queue uses after the records sharing
its primary name are merged (``model``). The rules and their sources are in
``shared/reference/lprng-printcap.md`` §2-4.
"""
from __future__ import annotations

import time

from lpfilter.printcap.datatypes import URI_SCHEMES, expand_percent, number_word
from lpfilter.printcap.hostmatch import HostInfo, local_fqdn, local_host
from lpfilter.printcap.keys import KEYS, is_by_name
from lpfilter.printcap.source import Origin, Problem
from lpfilter.structs import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, Literal

    # the grammar and the destinations are imported when first needed: a command reading a
    # cached printcap never parses, and most never connect
    from lpfilter.printcap import grammar
    from lpfilter.printcap.destination import Destination

    Side = Literal["server", "client"]
Value = bool | int | str | None

#: A primary name holding one of these makes LPRng drop the whole entry.
BAD_NAME_CHARS = frozenset(" \t=#@")

class Option(Struct):
    """One option as written: ``key`` keeps its spelling, ``name`` is the lower-case key.

    Treat it as read-only; it is not frozen only because a frozen record is slow to build
    and a large printcap has a hundred thousand options.
    """

    __slots__ = _fields = ("key", "text", "form", "value", "origin", "swallowed", "rejoined",
                           "name")
    key: str
    text: str
    form: str
    value: str | None
    origin: Origin
    #: Swallowed the next option through a trailing backslash (checkpc warns).
    swallowed: bool
    #: An ``lp=ftp://...`` split at unescaped ':' and read back as meant (checkpc warns).
    rejoined: bool
    name: str

    def __init__(self, key: str, text: str, form: str, value: str | None, origin: Origin,
                 swallowed: bool = False, rejoined: bool = False, name: str = "") -> None:
        self.key = key
        self.text = text
        self.form = form
        self.value = value
        self.origin = origin
        self.swallowed = swallowed
        self.rejoined = rejoined
        self.name = name or key.lower()


class Record(Struct):
    """One entry as written in one place of one file."""

    __slots__ = _fields = ("names", "options", "origin", "raw")
    names: list[str]
    options: list[Option]
    origin: Origin
    #: The assembled text with its lines, for checkpc; None when read from the parse cache.
    raw: grammar.RawEntry | None

    def __init__(self, names: list[str], options: list[Option], origin: Origin,
                 raw: grammar.RawEntry | None) -> None:
        self.names = names
        self.options = options
        self.origin = origin
        self.raw = raw

    @property
    def primary(self) -> str:
        return self.names[0]

    def flag(self, name: str) -> bool:
        """A parser flag (``server``, ``client``) as LPRng tests it on the record."""
        found = [o for o in self.options if o.name == name]
        return bool(found) and _number(found[-1]) != 0

    def values(self, name: str) -> list[str]:
        return [o.value for o in self.options if o.name == name and o.value]


def usable_name(name: str) -> bool:
    """Can this name be used to look a printer up? (not with a blank, '=', '#' or '@')"""
    return not BAD_NAME_CHARS.intersection(name)


def is_glob(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def _number(option: Option) -> int:
    if option.form == "flag":
        return 1
    if option.form == "off":
        return 0
    return number_word(option.value) if option.value else 1


def typed_value(option: Option) -> Value:
    """The value of an option as LPRng types it by its key table (see datatypes)."""
    key = KEYS.get(option.name)
    if key is None:
        if option.form == "value":
            return option.value
        if option.form == "off" and is_by_name(option.name):
            return None
        return option.form == "flag"
    if key.type == "S":
        if option.form == "flag":
            return "1"
        if option.form == "off":
            return "0"
        return option.value or None
    number = _number(option)
    return number != 0 if key.type == "F" else number


def _split_lp(option: Option) -> bool:
    """Was this ``lp`` value cut short at an unescaped ':' (a URI or an IPv6 address)?"""
    value = option.value or ""
    return option.name == "lp" and option.form == "value" and value.lower() in URI_SCHEMES


def _rejoin_uri(options: list[Option]) -> list[Option]:
    """Read ``:lp=ftp://host:21/P:`` as meant, although each ':' split it into junk options
    (LPRng reads the junk; checkpc says how to escape). An unescaped IPv6 address cannot be
    read back this way: its '::' became an empty option, which LPRng drops."""
    if not any(_split_lp(o) for o in options):
        return options
    out: list[Option] = []
    i = 0
    while i < len(options):
        option = options[i]
        i += 1
        value = option.value or ""
        if _split_lp(option) and i < len(options) and options[i].text.startswith("//"):
            value += "\\:" + options[i].text
            i += 1
            while (i < len(options) and "/" not in value.split("//", 1)[1]
                   and not set("=#").intersection(options[i].text)):
                value += "\\:" + options[i].text
                i += 1
        else:
            out.append(option)
            continue
        out.append(Option(option.key, f"{option.key}={value}", "value", value, option.origin,
                          rejoined=True))
    return out


def build_record(raw: grammar.RawEntry, problems: list[Problem], *,
                 fast: bool = False) -> Record | None:
    """A record from an assembled entry, or None (with a problem) where LPRng drops it."""
    from lpfilter.printcap import grammar
    parsed = grammar.parse_entry(raw.text, fast=fast)
    origin = raw.pieces[0][1].origin
    lines = raw.lines_at([p.offset for p in parsed.options])
    options = [Option(p.key, p.text, p.form, p.value, line.origin, p.swallowed, False,
                      p.key.lower()) for p, line in zip(parsed.options, lines)]
    if not parsed.names:
        problems.append(Problem(origin, "entry without a name (it starts with ':'): LPRng"
                                " drops it; put the printer name first"))
        return None
    record = Record(parsed.names, _rejoin_uri(options), origin, raw)
    if not usable_name(record.primary):
        first = raw.pieces[0][1]
        if first.indented and set("=#@").intersection(record.primary):
            why = (f"the indented line '{first.text[:30]}' starts a new entry (indentation does"
                   " not continue one) and LPRng drops it; start the line with ':' or end the"
                   " line before with '\\'")
        else:
            lost = ", ".join(record.names[1:])
            why = (f"bad printer name '{record.primary}': a name with a blank, '=', '#' or '@'"
                   " makes LPRng drop the whole entry" + (f" and its aliases ({lost})"
                                                          if lost else "")
                   + "; use a plain name first and put the description in an alias or cm=")
        problems.append(Problem(origin, why))
        return None
    return record


class Entry(Struct):
    """A resolved queue: merged options (lower-case key to Option) and its names."""

    __slots__ = ("_codes", "_got", "_host", "name", "names", "options", "printcap", "requested",
                 "where")
    _fields = ("name", "names", "options", "requested", "host", "where", "_codes", "printcap")
    _shown = _fields[:6]
    _compared = _fields[:7]
    name: str
    names: list[str]
    options: dict[str, Option]
    requested: str
    _host: HostInfo | None
    #: Where the entry's first record starts.
    where: Origin
    _codes: dict[str, str] | None
    #: The printcap it was looked up in: a pool (``sv``) finds its server queues there.
    printcap: Any

    def __init__(self, name: str, names: list[str], options: dict[str, Option],
                 requested: str, host: HostInfo | None, where: Origin,
                 _codes: dict[str, str] | None = None, printcap: Any = None) -> None:
        self.name = name
        self.names = names
        self.options = options
        self.requested = requested
        self._host = host
        self.where = where
        self._codes = _codes
        self.printcap = printcap
        #: ``get``'s answers: an entry never changes, and a worker asks ~50 a job.
        self._got: dict[str, Value] = {}

    @property
    def host(self) -> HostInfo:
        """The host of ``%h`` and ``%H``; None given: this machine, looked up at first use
        (/etc/hosts and ``ipaddress``: 1.5 ms that most commands never need)."""
        if self._host is None:
            self._host = local_host()
        return self._host

    def fqdn(self) -> str:
        """The host's full name (``host.fqdn``, else its short one); this machine's without
        looking up its addresses (``ipaddress``) when no host was given."""
        if self._host is None:
            return local_fqdn()
        return self._host.fqdn or self._host.short

    def codes(self) -> dict[str, str]:
        """Values of the ``%`` codes, computed on first use; ``%h`` and ``%H`` (the host)
        join them when a text first asks for one (``expand``). The date from ``time``, not
        ``datetime`` (4.6 M instructions to import: ``lp=host%port`` has a ``%``)."""
        if self._codes is None:
            rp, rm = self.options.get("rp"), self.options.get("rm")
            self._codes = {
                "P": self.name, "Q": self.requested,
                "R": (rp.value or "") if rp else "", "M": (rm.value or "") if rm else "",
                "D": time.strftime("%Y-%m-%d"), "a": "unknown"}
        return self._codes

    def expand(self, text: str) -> str:
        """LPRng's ``%`` codes in ``text``. The host is looked up only for ``%h``/``%H``:
        ``lp=host%9100`` holds a ``%`` too."""
        if "%" not in text:
            return text
        codes = self.codes()
        if "h" not in codes and ("%h" in text or "%H" in text):
            codes.update(h=self.host.short, H=self.host.fqdn)
        return expand_percent(text, codes)

    def has(self, name: str) -> bool:
        return name.lower() in self.options

    def origin(self, name: str) -> Origin | None:
        option = self.options.get(name.lower())
        return option.origin if option else None

    def get(self, name: str) -> Value:
        """The typed value of ``name``, else the LPRng default from the key table."""
        try:
            return self._got[name]
        except KeyError:
            pass
        key_name = name.lower()
        option = self.options.get(key_name)
        if option is None:
            key = KEYS.get(key_name)
            value = key.default if key else None
        else:
            value = typed_value(option)
        got = self._got[name] = self.expand(value) if isinstance(value, str) else value
        return got

    def string(self, name: str) -> str | None:
        value = self.get(name)
        return None if value is None else str(value)

    def number(self, name: str) -> int:
        value = self.get(name)
        return int(value) if isinstance(value, (bool, int)) else number_word(value or "")

    def flag(self, name: str) -> bool:
        return bool(self.number(name))

    def destination(self) -> Destination:
        from lpfilter.printcap.destination import classify
        return classify(self.string("lp"), queue=self.name, rm=self.string("rm"),
                        rp=self.string("rp"),
                        default_remote_host=self.string("default_remote_host") or "localhost",
                        lpd_port=self.string("lpd_port"))

    def items(self) -> Iterator[tuple[str, Option]]:
        """Options sorted by key, as LPRng lists them."""
        return iter(sorted(self.options.items()))

    def settings(self) -> dict[str, tuple[str, str, str | None]]:
        """The options as written, without where: two readings of a queue compare equal
        when an edit elsewhere in the file only moved its lines (a reread then leaves the
        queue, and the job it prints, alone)."""
        return {name: (o.text, o.form, o.value) for name, o in self.options.items()}
