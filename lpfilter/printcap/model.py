"""The printcap as LPRng 3.8.B resolves it: which records apply, merging, ``tc=``, names, lookup.

A *record* is one entry as written; an *entry* is what a queue uses after the records
sharing its primary name are merged (later wins), ``tc=`` templates are expanded under
each record's own options, ``server.KEY``/``client.KEY`` are applied for our side, and
``%`` codes are expanded. Every option keeps its file:line. The rules and their sources
are in ``shared/reference/lprng-printcap.md`` §2-4.
"""
from __future__ import annotations

from lpfilter.errors import ConfigError, NoSuchPrinter
from lpfilter.printcap.datatypes import ascii_lower, globmatch, split_list
from lpfilter.printcap.entry import (Entry, Option, Record, Value, build_record, is_glob,
                                     typed_value, usable_name)
from lpfilter.printcap.hostmatch import HostInfo, local_host, oh_matches
from lpfilter.printcap.nul import refuse_nul
from lpfilter.printcap.source import Problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap.entry import Side

__all__ = ["Entry", "Option", "Printcap", "Record", "Value", "build_record", "is_glob",
           "typed_value", "usable_name"]

#: ``string.punctuation`` (C's ispunct in the C locale); ``string`` itself costs a quick
#: command 0.5 ms (its Template compiles a pattern at import).
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
#: LPRng's Select_pc_info gives up past this many nested tc levels.
MAX_TC_DEPTH = 5
#: Keys that decide whether a record is used at all on this host and side.
_SELECTORS = frozenset({"server", "client", "oh"})


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
        """LPRng's printer list: the ``all`` entry's list, else primary names in first-seen
        order."""
        if "all" in self._names:
            return self._all_list()
        seen: set[str] = set()
        result: list[str] = []
        for record in self.records:
            primary = record.primary
            lowered = primary.lower()
            if (lowered not in seen and lowered not in ("*", "all")
                    and primary[0] not in _PUNCTUATION):
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

    def means_every(self, name: str | None) -> bool:
        """Does the queue name ``name`` mean every queue, as ``all`` does for LPRng's lpq,
        lprm and lpd (``lpq -Pall``)? Not where the printer list has a queue of that name."""
        return (name is not None and name.lower() == "all"
                and "all" not in (n.lower() for n in self.queue_names()))

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
        entry = Entry(queue, names, options, asked, self._host, records[0].origin)
        entry.printcap = self  # a pool's server queues are looked up here (printcap/pools.py)
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

