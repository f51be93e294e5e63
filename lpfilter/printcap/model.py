"""Printcap entries as LPRng 3.8.B resolves them: records, merging, ``tc=``, names, lookup.

A *record* is one entry as written; an *entry* is what a queue uses after the records
sharing its primary name are merged (later wins), ``tc=`` templates are expanded under
each record's own options, ``server.KEY``/``client.KEY`` are applied for our side, and
``%`` codes are expanded. Every option keeps its file:line. The rules and their sources
are in ``shared/reference/lprng-printcap.md`` §2-4.
"""
from __future__ import annotations

import datetime
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from lpfilter.errors import ConfigError, NoSuchPrinter
from lpfilter.printcap import grammar
from lpfilter.printcap.datatypes import (ascii_lower, expand_percent, globmatch, number_word,
                                         split_list)
from lpfilter.printcap.destination import URI_SCHEMES, Destination, classify
from lpfilter.printcap.hostmatch import HostInfo, local_host, oh_matches
from lpfilter.printcap.keys import KEYS, is_by_name
from lpfilter.printcap.nul import refuse_nul
from lpfilter.printcap.source import Origin, Problem

Side = Literal["server", "client"]
Value = bool | int | str | None

#: A primary name holding one of these makes LPRng drop the whole entry.
BAD_NAME_CHARS = frozenset(" \t=#@")
#: LPRng's Select_pc_info gives up past this many nested tc levels.
MAX_TC_DEPTH = 5
#: Keys that decide whether a record is used at all on this host and side.
_SELECTORS = frozenset({"server", "client", "oh"})


@dataclass(slots=True)
class Option:
    """One option as written: ``key`` keeps its spelling, ``name`` is the lower-case key.

    Treat it as read-only; it is not frozen only because a frozen dataclass is slow to build
    and a large printcap has a hundred thousand options.
    """

    key: str
    text: str
    form: str
    value: str | None
    origin: Origin
    #: Swallowed the next option through a trailing backslash (checkpc warns).
    swallowed: bool = False
    #: An ``lp=ftp://...`` split at unescaped ':' and read back as meant (checkpc warns).
    rejoined: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.key.lower()


@dataclass(slots=True)
class Record:
    """One entry as written in one place of one file."""

    names: list[str]
    options: list[Option]
    origin: Origin
    #: The assembled text with its lines, for checkpc; None when read from the parse cache.
    raw: grammar.RawEntry | None

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


def build_record(raw: grammar.RawEntry, problems: list[Problem]) -> Record | None:
    """A record from an assembled entry, or None (with a problem) where LPRng drops it."""
    parsed = grammar.parse_entry(raw.text)
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


@dataclass(slots=True)
class Entry:
    """A resolved queue: merged options (lower-case key to Option) and its names."""

    name: str
    names: list[str]
    options: dict[str, Option]
    requested: str
    host: HostInfo
    #: Where the entry's first record starts.
    where: Origin
    _codes: dict[str, str] | None = field(default=None, repr=False)

    def codes(self) -> dict[str, str]:
        """Values of the ``%`` codes, computed on first use (``%h`` needs the host)."""
        if self._codes is None:
            rp, rm = self.options.get("rp"), self.options.get("rm")
            self._codes = {
                "P": self.name, "Q": self.requested, "h": self.host.short, "H": self.host.fqdn,
                "R": (rp.value or "") if rp else "", "M": (rm.value or "") if rm else "",
                "D": datetime.date.today().isoformat(), "a": "unknown"}
        return self._codes

    def expand(self, text: str) -> str:
        return expand_percent(text, self.codes()) if "%" in text else text

    def has(self, name: str) -> bool:
        return name.lower() in self.options

    def origin(self, name: str) -> Origin | None:
        option = self.options.get(name.lower())
        return option.origin if option else None

    def get(self, name: str) -> Value:
        """The typed value of ``name``, else the LPRng default from the key table."""
        name = name.lower()
        option = self.options.get(name)
        if option is None:
            key = KEYS.get(name)
            value = key.default if key else None
        else:
            value = typed_value(option)
        return self.expand(value) if isinstance(value, str) else value

    def string(self, name: str) -> str | None:
        value = self.get(name)
        return None if value is None else str(value)

    def number(self, name: str) -> int:
        value = self.get(name)
        return int(value) if isinstance(value, (bool, int)) else number_word(value or "")

    def flag(self, name: str) -> bool:
        return bool(self.number(name))

    def destination(self) -> Destination:
        return classify(self.string("lp"), queue=self.name, rm=self.string("rm"),
                        rp=self.string("rp"),
                        default_remote_host=self.string("default_remote_host") or "localhost")

    def items(self) -> Iterator[tuple[str, Option]]:
        """Options sorted by key, as LPRng lists them."""
        return iter(sorted(self.options.items()))


class Printcap:
    """All records of the printcap files, seen from one side (lpd "server" or "client")."""

    def __init__(self, records: list[Record], *, side: Side = "server",
                 host: HostInfo | None = None, problems: list[Problem] | None = None) -> None:
        self.side = side
        self._host = host
        self.problems: list[Problem] = problems if problems is not None else []
        self.all_records = records
        self.records = [r for r in records if self._selected(r)]
        self._by_primary: dict[str, list[Record]] = {}
        #: Every usable name (lower case) to the primary (lower case) of the entry owning
        #: it, and as spelled by that entry: LPRng's names list (Build_pc_names).
        self._names: dict[str, str] = {}
        spelling: dict[str, str] = {}
        for record in self.records:
            primary = record.primary.lower()
            self._by_primary.setdefault(primary, []).append(record)
            for name in record.names:
                if usable_name(name):
                    self._names[name.lower()] = primary
                    spelling[name.lower()] = name
        #: Glob names in the order LPRng tries them: its names list is sorted by name
        #: (strcasecmp), so the first match in that order wins, not the first in the file.
        self._globs = sorted((n for n in spelling.values() if is_glob(n) and n != "*"),
                             key=lambda n: ascii_lower(n).encode("utf-8", "surrogateescape"))

    @property
    def host(self) -> HostInfo:
        if self._host is None:
            self._host = local_host()
        return self._host

    def _selected(self, record: Record) -> bool:
        """LPRng keeps a record only for its side and, with ``oh=``, only on matching hosts."""
        if not any(o.name in _SELECTORS for o in record.options):
            return True  # the common case, decided in one pass over the options
        other = "client" if self.side == "server" else "server"
        if record.flag(other) and not record.flag(self.side):
            return False
        values = record.values("oh")  # duplicate keys: the last one counts
        return not values or oh_matches(values[-1], self.host)

    def owner(self, name: str) -> str | None:
        """The primary name (lower case) that ``name`` resolves to exactly, if any."""
        return self._names.get(name.lower())

    def records_of(self, primary: str) -> list[Record]:
        return self._by_primary.get(primary.lower(), [])

    def printer_names(self) -> list[str]:
        """LPRng's printer list: the ``all`` entry's list, else primary names in first-seen order."""
        if "all" in self._names:
            return self._all_list()
        seen: set[str] = set()
        result: list[str] = []
        for record in self.records:
            primary = record.primary
            lowered = primary.lower()
            if (lowered not in seen and lowered not in ("*", "all")
                    and primary[0] not in string.punctuation):
                result.append(primary)
            seen.update(n.lower() for n in record.names)
        return result

    def _all_list(self) -> list[str]:
        """The ``all`` entry's list exactly as LPRng's Get_all_printcap_entries takes it:
        only an ``all=`` value counts (``all#x``, ``:all:`` and no value at all give the
        list ``all``), it is not %-expanded, and names no entry defines stay in it."""
        option = self.lookup("all", usable=False).options.get("all")
        if option is None or option.text[len(option.key):][:1] != "=":
            return ["all"]
        return split_list(option.text[len(option.key) + 1:])

    def queue_names(self) -> list[str]:
        """The queues "every queue" means: the printer list without glob patterns and
        without names that no entry answers to (LPRng's lpd skips those too, finding no
        spool directory for them; checkpc reports them)."""
        seen: set[str] = set()
        result: list[str] = []
        for name in self.printer_names():
            if is_glob(name) or name.lower() in seen or self.resolve(name) is None:
                continue
            seen.add(name.lower())
            result.append(name)
        return result

    def resolve(self, name: str) -> str | None:
        """The primary (lower case) ``name`` answers to, as LPRng's Select_pc_info finds it:
        an exact name or alias (any case), else the first glob name in LPRng's order that
        matches it (globmatch), else the entry named or aliased ``*``."""
        primary = self._names.get(name.lower())
        if primary is not None:
            return primary
        # lpd lowercases the queue name before the search (getqueue.c: Setup_printer),
        # which only matters to case-sensitive [] sets.
        wanted = name.lower() if self.side == "server" else name
        for pattern in self._globs:
            if globmatch(pattern, wanted):
                return self._names[pattern.lower()]
        return self._names.get("*")

    def default_printer(self) -> str | None:
        names = self.printer_names()
        return names[0] if names else None

    def lookup(self, name: str, *, usable: bool = True) -> Entry:
        """The resolved entry for ``name``: exact name or alias, then glob names, then ``*``.

        The queue is named by the entry's first record, except for an entry found through
        a wildcard whose own name is ``*`` or a pattern: that one takes the name asked for
        (LPRng Reference Manual 12.5; lpfilter-printcap(5) for patterns), in lower case on
        the server side, as lpd does. Names: every name of every merged record in
        file order, duplicates dropped only when spelled the same (Find_pc_info).
        """
        primary = self.resolve(name)
        if primary is None:
            raise NoSuchPrinter(f"no printer named '{name}' in the printcap"
                                " (lpfilter printcap --all lists them)")
        records = self.records_of(primary)
        # lpd lowercases the name asked for before anything else (Setup_printer): %Q too.
        asked = name.lower() if self.side == "server" else name
        queue = records[0].primary
        if name.lower() not in self._names and is_glob(queue):
            queue = asked
        options = self._resolve(primary, depth=0, chain=[records[0].primary])
        for option in list(options.values()):
            prefix, dot, key = option.name.partition(".")
            if dot and prefix == self.side and key:
                options[key] = Option(key, option.text[len(prefix) + 1:], option.form,
                                      option.value, option.origin)
        names: list[str] = []
        for record in records:
            names.extend(n for n in record.names if n not in names)
        entry = Entry(queue, names, options, asked, self.host, records[0].origin)
        if usable:  # a queue's values become paths, hosts, programs; the all list does not
            refuse_nul(entry)
        return entry

    def _resolve(self, primary: str, *, depth: int, chain: list[str]) -> dict[str, Option]:
        """Own options over tc templates, record by record (LPRng's Find_pc_info)."""
        result: dict[str, Option] = {}
        for record in self.records_of(primary):
            for option in record.options:
                if option.name != "tc" or not option.value:
                    continue
                for target in split_list(option.value.lower()):
                    owner = self.owner(target)
                    if owner is None:
                        raise ConfigError(f"tc entry '{target}' not found (LPRng stops with"
                                          " the same error); define it or fix the name",
                                          where=str(option.origin))
                    if depth + 1 > MAX_TC_DEPTH:
                        loop = " -> ".join(chain + [target])
                        raise ConfigError(f"tc nested deeper than {MAX_TC_DEPTH} levels ({loop});"
                                          " LPRng stops with 'tc recursion depth 6'; break the"
                                          " loop or flatten the templates",
                                          where=str(option.origin))
                    result.update(self._resolve(owner, depth=depth + 1, chain=chain + [target]))
            for option in record.options:
                if option.name != "tc":
                    result[option.name] = option
        return result

