"""checkpc's look for job values in shell arithmetic (issue 15 review, shell form).

A shell-form command (one with ``< > | ;`` or a leading ``(``, run as ``$SHELL -c``) gets
each ``$`` token's value in an environment variable, never in its text. But bash and ksh
evaluate a variable's *value* as an arithmetic expression in ``$((...))``, ``$[...]``
(bash's old form), ``((...))``, ``let``, the ``-eq -ne -lt -le -gt -ge`` tests of
``[[ ... ]]``, an array's subscript (``a[$-J]=1``, ``a=([$-J]=1)``) and the value given
to an integer variable (``declare -i``, ``typeset -i``, ``local -i n=$-J``); there a value such as
``a[$(touch /tmp/x)]`` runs a command. The numeric letters (``$I $W $i $j $b $l $w $x
$y``) carry only digits, so they are safe there; every other token (the job name, title,
user, ``$*``...) is a job's text.

The look is deliberately simple, a scan of the text, not a shell parser: a token counts
as inside arithmetic when it stands between ``((`` and the next ``))``, between ``$[``
and the next ``]``, between a name's ``[`` and the next ``]`` (or a ``[`` starting a
word of a compound assignment ``name=( ... )``), inside ``[[ ... ]]``
holding one of those test operators, or after ``let`` (or ``declare``, ``typeset`` or
``local`` with an option word holding ``i``) up to the end of that command (``;``,
``|``, ``&``, ``)`` or the end). A later assignment to a variable declared integer
elsewhere is not seen. ``${a[$-J]}`` needs no look: the whole of it is lpfilter's own
``${name}`` token (a printcap value), so bash never sees that subscript. It does not
look at the ``shell`` key: ``/bin/sh`` is bash on many systems.
"""
from __future__ import annotations

import re

from lpfilter.printcap.keys import is_filter_key
from lpfilter.printcap.model import Option
from lpfilter.printcap.source import Problem
from lpfilter.programs import TOKEN, needs_shell

#: Tokens whose value is only digits (filters/command.py: numbers lpfilter makes, and the
#: indent, width and job number, dropped unless they are digits).
NUMERIC = frozenset("IWijblwxy")
#: The keys whose value may be a program run with ``$`` expansion (with is_filter_key).
PROGRAM_KEYS = frozenset({"lp", "as", "ae", "af"})
_TEST_OPERATOR = re.compile(r"\s-(eq|ne|lt|le|gt|ge)\s")
_ARITHMETIC = re.compile(r"\(\((?P<paren>.*?)\)\)|\$\[(?P<old>.*?)\]|\[\[(?P<test>.*?)\]\]"
                         r"|(?<![\w${])[A-Za-z_]\w*\[(?P<subscript>[^\]]*)\]"
                         r"|(?:^|[\s;|&(])let\s(?P<let>[^;|&)]*)"
                         r"|(?:^|[\s;|&(])(?:declare|typeset|local)(?P<options>(?:\s+[-+]\w+)+)"
                         r"\s(?P<integer>[^;|&)]*)", re.S)
_CONTEXTS = ("paren", "old", "test", "subscript", "let", "integer")
#: ``name=(`` or ``name+=(``: a compound array assignment, whose ``[...]=`` are subscripts.
_COMPOUND = re.compile(r"(?<![\w${])[A-Za-z_]\w*\+?=\(")
_WORD_SUBSCRIPT = re.compile(r"(?:^|\s)\[([^\]]*)\]")


def _compound_subscripts(text: str) -> list[str]:
    """The subscripts of compound assignments (``a=([$-J]=1 [2]=x)``): a ``[`` starting a
    word of ``name=( ... )``, up to the ``)`` that closes it; what nested ``( )`` and
    ``$( )`` hold is another command's, not the assignment's."""
    found: list[str] = []
    for start in _COMPOUND.finditer(text):
        depth, body = 1, []
        for char in text[start.end():]:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                break
            body.append(char if depth == 1 else " ")
        found += _WORD_SUBSCRIPT.findall("".join(body))
    return found


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
        if match.group("integer") is not None and "i" not in match.group("options"):
            continue  # declare without -i: a string
        inside = next(g for g in map(match.group, _CONTEXTS) if g is not None)
        found.extend(t.group(0) for t in TOKEN.finditer(inside) if _job_text(t))
    for inside in _compound_subscripts(text):
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
                    " $[...], ((...)), let, a [[ -eq ]] test, an array subscript or"
                    " declare -i): bash and ksh evaluate a job's text"
                    " there as an expression, which runs a command a user writes in it"
                    " (a[$(cmd)]); use only the numeric $I $W $i $j $b $l $w $x $y there, or"
                    " pass the value to a program as an argument")]
