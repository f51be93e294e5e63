"""checkpc's look at the programs a queue runs: filters (``if``, ``of``, ``xf``, ``filter``,
banners ``bp``/``bs``/``be``), ``lp=|program`` and the accounting pipes (``af``, ``as``,
``ae`` written ``|program``).

A program that is not there, not a file or not executable fails every job that needs it,
and only when one arrives; LPRng's checkpc says so beforehand (``cannot stat 'if' filter
...``, ``does not have execute perms``), and so does this. Only an absolute path run
without a shell is looked at: a shell command line's program is the shell's to find, and
a relative one is reported by the printcap checks.
"""
from __future__ import annotations

import os
import stat

from lpfilter.errors import LpfilterError
from lpfilter.printcap.keys import is_filter_key
from lpfilter.programs import needs_shell, strip_prefixes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap import Entry, Printcap, Problem
    from lpfilter.printcap.model import Option

#: Keys whose value runs a program only when it starts with ``|``.
_PIPE_KEYS = ("lp", "af", "as", "ae")


def program_problems(printcap: Printcap) -> list[Problem]:
    """One line per program the queues would run that cannot be run, each said once
    (a template's filter shared by many queues too)."""
    found: dict[str, Problem] = {}
    for name in printcap.queue_names():
        try:
            entry = printcap.lookup(name)
        except LpfilterError:
            continue  # the printcap checks report it
        for key, option in entry.items():
            problem = _problem(entry, key, option)
            if problem is not None:
                found.setdefault(str(problem), problem)
    return list(found.values())


def _program(entry: Entry, key: str, option: Option) -> str | None:
    """The absolute path the option runs without a shell, if any."""
    if option.form != "value" or not option.value:
        return None
    text = entry.expand(option.value)
    if key in _PIPE_KEYS:
        if not text.lstrip().startswith("|"):
            return None
    elif not is_filter_key(key):
        return None
    rest = strip_prefixes(text)[0]
    words = rest.split()
    if not words or needs_shell(rest) or not words[0].startswith("/") or "$" in words[0]:
        return None
    return words[0]


def _problem(entry: Entry, key: str, option: Option) -> Problem | None:
    from lpfilter.printcap import Problem
    from lpfilter.text import visible
    program = _program(entry, key, option)
    if program is None:
        return None
    pipe = "|" if key in _PIPE_KEYS else ""
    shown = f"{option.key}={pipe}{visible(program)}"
    fails = ("no accounting is done (each job's try is logged)" if key in _PIPE_KEYS[1:]
             else "the jobs that need it fail")
    try:
        info = os.stat(program)  # (a program reached through a link is run through it)
    except OSError as exc:
        if isinstance(exc, PermissionError):
            return Problem(option.origin, f"{shown}: cannot be looked at by this user"
                           f" ({exc.strerror}); run checkpc as the user the queue's programs"
                           " run as", note=True)
        return Problem(option.origin, f"{shown}: no such program ({exc.strerror}): {fails};"
                       " install it or correct the path")
    if not stat.S_ISREG(info.st_mode):
        return Problem(option.origin, f"{shown}: not a file, so it cannot be run: {fails};"
                       " correct the path")
    if not info.st_mode & 0o111:
        return Problem(option.origin, f"{shown}: not executable (mode"
                       f" {stat.S_IMODE(info.st_mode):04o}): {fails}; chmod a+x"
                       f" {visible(program)}")
    return None
