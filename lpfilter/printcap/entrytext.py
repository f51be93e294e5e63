"""The queue's settings as lpd hands them to a filter: ``PRINTCAP_ENTRY``.

lpd puts the merged entry into the environment as printcap text (names, then one
``:key=value`` per continuation line, ``%`` codes already expanded, values raw;
lprng-filters.md §4). It is read with the same reader as a printcap file, so the filter
sees exactly the keys, types and defaults lpfilter's own queues would.
"""
from __future__ import annotations

from lpfilter.errors import ConfigError
from lpfilter.printcap.model import Entry, Option, Printcap, build_record
from lpfilter.printcap.source import MAX_ENTRY_BYTES, Problem, bounded, file_lines

ORIGIN = "PRINTCAP_ENTRY"


def entry_from_text(text: str, origin: str = ORIGIN) -> Entry:
    """The first entry of ``text``; ConfigError when it holds none, or when it is longer
    than one printcap entry may be (lpd's is a few KiB; parsing a huge one would take
    long and much memory)."""
    from lpfilter.printcap import grammar
    if len(text) > MAX_ENTRY_BYTES:
        raise ConfigError(f"{origin} is {len(text)} characters long, over lpfilter's limit"
                          f" of {MAX_ENTRY_BYTES >> 20} MiB for one printcap entry; it is not"
                          " an entry lpd wrote")
    problems: list[Problem] = []
    lines = list(file_lines(origin, problems, reader=lambda _path: text))
    raws = bounded(grammar.assemble(lines), problems)
    # fast: names and options cut without pyparsing (grammar.parse_entry), the same pieces
    records = [r for r in (build_record(raw, problems, fast=True) for raw in raws)
               if r is not None]
    if not records:
        raise ConfigError(f"{origin} holds no printcap entry")
    return Printcap(records).lookup(records[0].primary)


def entry_to_text(entry: Entry) -> str:
    """The entry as lpd writes ``PRINTCAP_ENTRY``: names joined by ``|``, then one
    ``:option`` per line, ``%`` codes expanded, values otherwise raw. lpfilter's pipe
    programs get it too, so ``lp=|lpfilter filter ...`` under lpfilter's own watcher sees
    its queue's keys. A password in a URI (``lp=ftp://user:pw@host``) is hidden: no filter
    needs it (lpfilter logs in itself), and a filter's environment is readable by every
    process of its user, and logged by some filters."""
    lines = ["|".join(entry.names or [entry.name])]
    lines += [f" :{_hidden(entry, option)}" for _, option in sorted(entry.items())]
    return "\n".join(lines) + "\n"


def _hidden(entry: Entry, option: Option) -> str:
    """An option's text, a URI's password as ``***`` in any key (a mistyped one too)."""
    text = entry.expand(option.text)
    if option.form != "value" or "@" not in text or "//" not in text:
        return text
    from lpfilter.printcap.destination import redact
    value = entry.expand(option.value or "")
    hidden = redact(value)
    return text if hidden == value else f"{option.key}={hidden}"  # (escapes kept: raw)


def default_entry(name: str) -> Entry:
    """An entry with every key at its default, for a filter run without any printcap and
    for ``print -P queue@host``: made as the reader would make ``NAME:``, without the
    reader (its grammar module is 1 ms of a quick command)."""
    from lpfilter.printcap.model import Record
    from lpfilter.printcap.source import Origin
    safe = "".join(c for c in name if c.isalnum() or c in "._-") or "lp"
    return Printcap([Record([safe], [], Origin("(defaults)", 1), None)]).lookup(safe)
