"""checkpc's look for job values in shell arithmetic (issue 15 review, shell form).

A shell-form command (one with ``< > | ;`` or a leading ``(``, run as ``$SHELL -c``) gets
each ``$`` token's value in an environment variable, never in its text. But bash and ksh
evaluate a variable's *value* as an arithmetic expression in ``$((...))``, ``((...))``,
``let`` and the ``-eq -ne -lt -le -gt -ge`` tests of ``[[ ... ]]``; there a value such as
``a[$(touch /tmp/x)]`` runs a command. The numeric letters (``$I $W $i $j $b $l $w $x
$y``) carry only digits, so they are safe there; every other token (the job name, title,
user, ``$*``...) is a job's text.

The look is deliberately simple, a scan of the text, not a shell parser: a token counts
as inside arithmetic when it stands between ``((`` and the next ``))``, inside
``[[ ... ]]`` holding one of those test operators, or after ``let`` up to the end of that
command (``;``, ``|``, ``&``, ``)`` or the end). It does not look at the ``shell`` key:
``/bin/sh`` is bash on many systems.
"""
from __future__ import annotations

import re

from lpfilter.printcap.keys import is_filter_key
from lpfilter.printcap.model import Option
from lpfilter.printcap.source import Problem
from lpfilter.programs import needs_shell

#: A ``$`` token as the filters room reads it (filters/dollars.py TOKEN; a test checks
#: that the two are the same): form markers, then a letter, ``*`` or ``{name}``.
TOKEN = re.compile(r"\$([0 \t\-']*)(\{[^}]*\}|[A-Za-z*])")
#: Tokens whose value is only digits (filters/command.py: numbers lpfilter makes, and the
#: indent, width and job number, dropped unless they are digits).
NUMERIC = frozenset("IWijblwxy")
#: The keys whose value may be a program run with ``$`` expansion (with is_filter_key).
PROGRAM_KEYS = frozenset({"lp", "as", "ae", "af"})
_TEST_OPERATOR = re.compile(r"\s-(eq|ne|lt|le|gt|ge)\s")
_ARITHMETIC = re.compile(r"\(\((?P<paren>.*?)\)\)|\[\[(?P<test>.*?)\]\]"
                         r"|(?:^|[\s;|&(])let\s(?P<let>[^;|&)]*)", re.S)


def _job_text(token: re.Match[str]) -> bool:
    """Can this token's value be a job's text (anything but digits)?"""
    name = token.group(2)
    if name.startswith("{"):
        inner = name[1:-1]
        return len(inner) == 1 and inner.isupper() and inner not in NUMERIC
    return name not in NUMERIC


def arithmetic_tokens(command: str) -> list[str]:
    """The tokens of a shell-form ``command`` that put a job's text into bash arithmetic,
    as written; none for a command that is not run through a shell."""
    text = command.lstrip(" \t").removeprefix("|")
    if not needs_shell(text):
        return []
    found: list[str] = []
    for match in _ARITHMETIC.finditer(text):
        if match.group("test") is not None and not _TEST_OPERATOR.search(
                f" {match.group('test')} "):
            continue
        inside = next(g for g in (match.group("paren"), match.group("test"),
                                  match.group("let")) if g is not None)
        found.extend(t.group(0) for t in TOKEN.finditer(inside) if _job_text(t))
    return found


def check_arithmetic(option: Option) -> list[Problem]:
    """checkpc's warning for a program option that puts job text into shell arithmetic."""
    key, text = option.name, option.value or ""
    if option.form != "value" or not (is_filter_key(key) or key in PROGRAM_KEYS):
        return []
    if key in PROGRAM_KEYS and not text.lstrip().startswith(("|", "/")):
        return []  # a device or file, a host%port, a line template: no shell
    tokens = arithmetic_tokens(text)
    if not tokens:
        return []
    shown = ", ".join(dict.fromkeys(tokens))
    return [Problem(option.origin, f"{key}={text}: {shown} inside shell arithmetic ($((...)),"
                    " ((...)), let, or a [[ -eq ]] test): bash and ksh evaluate a job's text"
                    " there as an expression, which runs a command a user writes in it"
                    " (a[$(cmd)]); use only the numeric $I $W $i $j $b $l $w $x $y there, or"
                    " pass the value to a program as an argument")]
