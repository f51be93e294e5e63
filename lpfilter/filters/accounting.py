"""LPRng's accounting lines and targets (lprng-filters.md §8; lprng-printcap.md: af, as,
ae, la, ar, create_files). Pure (but for the warning of an ``af`` that can name no
target): which target ``af`` names (printcap/acctarget.py reads it), whether ``as``/``ae``
is a program, and the line a template gives for a job.

A template's ``$`` tokens are written in LPRng's quoted form, ``'-Xvalue'``, each where
it stands; a token with no value leaves nothing (the blanks around it stay, as in lpd's
``'-Pq1'  '-b18'``). A value never carries a quote, a newline or a control character
into the line: a job's name is user text, and accounting scripts split on quotes.
"""
from __future__ import annotations

from lpfilter import logs
from lpfilter.errors import ConfigError
from lpfilter.filters.command import JobFacts, letter_value, raw_value
from lpfilter.filters.dollars import pieces, token_of
from lpfilter.printcap import acctarget
from lpfilter.printcap.acctarget import FORMATS, Target, parse_target
from lpfilter.printcap.entry import Entry
from lpfilter.programs import TOKEN
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

log = logs.getLogger(__name__)

__all__ = ["FORMATS", "Target", "accounting_format", "is_program", "line", "target", "wanted"]
#: The longest value written into a line (a job name may be 1000 characters).
_MAX_VALUE = 200


def target(entry: Entry) -> Target | None:
    """The queue's ``af`` target, None when it is unset (or ``af@``, LPRng's ``0``...
    which is a file named 0 to LPRng; lpfilter takes only an empty value as none). A
    ``host%port`` whose port is out of range is refused, never taken for a file of that
    name: None, and a warning naming af's file:line (accounting never stops a queue;
    checkpc reports it too)."""
    try:
        return parse_target(entry.string("af") or "")
    except ConfigError as exc:
        where = entry.origin("af")
        log.warning("queue %s: %s%s", visible(entry.name), f"{where}: " if where else "",
                    visible(exc.message))
        return None


def accounting_format(entry: Entry) -> str:
    """``lprng`` (the default) or ``keyvalue`` (lpfilter's own line, as before 15); a
    value lpfilter does not know is lprng (checkpc says so)."""
    return acctarget.accounting_format(entry.string("accounting_format"))


def is_program(template: str) -> bool:
    """An ``as``/``ae`` value starting with ``|`` or ``/`` is run, not written."""
    return template.lstrip()[:1] in ("|", "/")


def wanted(entry: Entry) -> bool:
    """``la`` (local accounting) for a queue that prints, ``ar`` for one forwarding over
    LPD, as lpd decides."""
    forwarding = entry.destination().kind == "lpd"
    return entry.flag("ar" if forwarding else "la")


def _quoted(word: str) -> str:
    return "'" + visible(word).replace("'", "_")[:_MAX_VALUE + 2] + "'"


def line(template: str, entry: Entry, facts: JobFacts) -> str:
    """The line ``template`` (``as`` or ``ae``) gives for a job, newline included."""
    def one(match: re.Match[str]) -> str:
        token = token_of(match)
        if token.name == "*":
            return ""
        if token.name.startswith("{"):
            inner = token.name[1:-1]
            value: str | list[str] | None = (
                letter_value(entry, facts, inner, "accounting")
                if len(inner) == 1 and inner.isupper() else raw_value(entry, inner))
        else:
            value = letter_value(entry, facts, token.name, "accounting")
        return " ".join(_quoted(w) for w in pieces(token, value))
    text = TOKEN.sub(one, template)
    return visible(text).rstrip() + "\n"

