"""checkpc's look at the program command lines of ``lp=|`` and the filter keys: a
destination given to ``lpfilter filter`` there is in the program's arguments, which every
local user can read (/proc/PID/cmdline), so a password in it is a problem, and an
unescaped URI is cut by LPRng at each ':'. Messages never show the password."""
from __future__ import annotations

from lpfilter.printcap.datatypes import URI_SCHEMES
from lpfilter.printcap.destination import Ftp, classify, password_on_command_line, redact
from lpfilter.printcap.keys import is_filter_key
from lpfilter.printcap.model import Option, Record
from lpfilter.printcap.source import Problem


def _error(option: Option, message: str) -> Problem:
    return Problem(option.origin, message, fatal=True)


#: lpfilter's options before its command that take a value (``--printcap FILE``, ``-P q``).
_GLOBAL_WITH_VALUE = ("--printcap", "-P")


def filter_arguments(command: str) -> list[str] | None:
    """The words after ``filter`` in ``[|]/path/lpfilter [options] filter ...``; None when
    the command is not lpfilter's filter."""
    words = command.lstrip(" \t").removeprefix("|").split()
    while words and (words[0] in ("-$", "$-") or words[0].upper() == "ROOT"):
        words.pop(0)
    if not words or words[0].rsplit("/", 1)[-1] != "lpfilter":
        return None
    rest = words[1:]
    while rest and rest[0] != "filter" and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in _GLOBAL_WITH_VALUE else rest[1:]
    return rest[1:] if rest and rest[0] == "filter" else None


def check_command_password(option: Option) -> list[Problem]:
    """``lp=|lpfilter filter ftp://user:password@...`` (or an if=/of=... filter): the
    password would be in the program's arguments, which every local user can read."""
    if option.form != "value" or not option.value:
        return []
    if option.name != "lp" and not is_filter_key(option.name):
        return []
    if option.name == "lp" and not option.value.lstrip().startswith("|"):
        return []
    arguments = filter_arguments(option.value)
    if not arguments or arguments[0].startswith("-"):
        return []  # no destination: the entry's lp (and its password file) is used
    found = classify(arguments[0], queue="")
    if not isinstance(found, Ftp) or not found.password:
        return []
    shown = option.value.replace(arguments[0], found.display(), 1).strip()
    return [_error(option, password_on_command_line(f"{option.name}={shown}"))]


def cut_command_uris(record: Record) -> tuple[list[Problem], set[int]]:
    """``lp=|/usr/bin/lpfilter filter ftp://user:pw@host/P`` with its colons unescaped:
    LPRng cuts it at each ':', so lpd runs the program with ``ftp`` as its destination and
    the rest becomes junk options. Said once here, with the password masked, rather than
    as unknown keys that would show it; returns the junk options' indexes too."""
    found: list[Problem] = []
    junk: set[int] = set()
    options = record.options
    for i, option in enumerate(options):
        if option.form != "value" or not option.value or i + 1 >= len(options):
            continue
        if not is_filter_key(option.name) and not (
                option.name == "lp" and option.value.lstrip().startswith("|")):
            continue
        scheme = (option.value.split() or [""])[-1]
        if len(option.value.split()) < 2 or scheme.lower() not in URI_SCHEMES or not (
                options[i + 1].text.startswith("//")):
            continue
        uri, j = scheme, i + 1
        while j < len(options) and (j == i + 1 or "/" not in uri.split("//", 1)[1]) and (
                j == i + 1 or not set("=#").intersection(options[j].text)):
            uri += ":" + options[j].text
            junk.add(j)
            j += 1
        head = option.value[:len(option.value) - len(scheme)]
        written = redact(head + uri.replace(":", "\\:"))
        found.append(_error(option, f"{option.name}={redact(head + uri)}: every unescaped ':'"
                            " ends a printcap option, so lpd runs the program with"
                            f" '{scheme}' as its destination and reads the rest as junk"
                            f" options; escape each ':' of the URI: {option.name}={written}"))
        destination = classify(uri, queue="")
        if isinstance(destination, Ftp) and destination.password:
            found.append(_error(option, password_on_command_line(
                f"{option.name}={redact(head + uri)}")))
    return found, junk
