"""LPRng's ``$`` tokens in a filter command line (lprng-filters.md §2, ``Fix_dollars``).

Pure text work: a filter string is cut into words (``lpfilter.programs.split_words``, the
one splitter: a word starting with a quote runs to the same quote), each word into literal
text and ``$`` tokens, and each token is replaced by what a *lookup* says its letter or
``${name}`` means. A token whose value is empty or unknown vanishes with its flag, so a
filter never sees a bare ``-X``.
"""
from __future__ import annotations

from collections.abc import Callable

from lpfilter.memo import Pattern
from lpfilter.programs import TOKEN
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

_OCTAL: re.Pattern[str] = Pattern(r"\\([0-7]{1,3})")  # type: ignore[assignment]


class Token(FrozenStruct):
    """One ``$`` token: its letter (or ``{name}``), and its form."""

    __slots__ = _fields = ("name", "apart", "bare")
    name: str
    apart: bool   # $0X or $ X: "-X" and the value as two words
    bare: bool    # $-X: the value alone

    def __init__(self, name: str, apart: bool, bare: bool) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "name", name)
        setattr_(self, "apart", apart)
        setattr_(self, "bare", bare)


#: What a token means: a value (None or "": drop the token), or a list of ready words.
Lookup = Callable[[Token], "str | list[str] | None"]


def unescape(text: str) -> str:
    """LPRng's backslashes in a filter string: ``\\r \\n \\t`` are blanks, ``\\`` and up to
    three octal digits a character; anything unprintable or blank that results is a space."""
    text = text.replace("\\r", " ").replace("\\n", " ").replace("\\t", " ")
    text = _OCTAL.sub(lambda m: chr(int(m.group(1), 8) & 0xFF), text)
    return "".join(" " if (not ch.isprintable() or ch in "\t\r\n") else ch for ch in text)


def token_of(match: re.Match[str]) -> Token:
    marks, name = match.group(1), match.group(2)
    return Token(name, apart=any(c in marks for c in "0 \t"), bare="-" in marks)


def pieces(token: Token, value: str | list[str] | None) -> list[str]:
    """The words a token becomes: a list from the lookup as it is; a value as ``-Xvalue``,
    ``-X`` and ``value`` (``$0X``), or ``value`` alone (``$-X``, ``${name}``); nothing for
    an empty or unknown value."""
    if isinstance(value, list) or not value:
        return list(value or [])
    if len(token.name) != 1 or token.bare:
        return [value]
    return ["-" + token.name, value] if token.apart else ["-" + token.name + value]


def expand_word(word: str, lookup: Lookup) -> list[str]:
    """One word with its tokens replaced: usually one word, two for ``$0X``, none when the
    word was only tokens that came out empty. Text around a token sticks to it
    (``$HOME`` is ``-H<host>OME``, as in LPRng)."""
    out: list[str] = []
    current = ""
    had_token = False
    position = 0
    for match in TOKEN.finditer(word):
        current += word[position:match.start()]
        position = match.end()
        had_token = True
        token = token_of(match)
        words = pieces(token, lookup(token))
        if not words:
            continue
        current += words[0]
        for more in words[1:]:
            out.append(current)
            current = more
    current += word[position:]
    if current or not had_token:
        out.append(current)
    return out


def expand_words(words: list[str], lookup: Lookup) -> list[str]:
    result: list[str] = []
    for word in words:
        result.extend(expand_word(word, lookup))
    return result


#: The environment variables a shell-form filter's expansions travel in (``LPF_1``...).
SHELL_VAR = "LPF_"


def _reference(names: list[str], state: str) -> str:
    """Shell text naming the variables ``names`` where the quoting state is ``state``:
    outside quotes each is one double-quoted word; inside ``"..."`` bare references, one
    word (a variable's value is never expanded again); inside ``'...'`` the same, the
    admin's quote closed and reopened around them."""
    inside = " ".join("${%s}" % name for name in names)
    if state == '"':
        return inside
    if state == "'":
        return "'\"" + inside + "\"'"
    return " ".join('"${%s}"' % name for name in names)


def expand_shell(text: str, lookup: Lookup) -> tuple[str, dict[str, str]]:
    """A shell command line whose ``$`` tokens are replaced by references to environment
    variables, and those variables' values. No value a job names (its name, title...)
    ever becomes shell text, so no quoting in it can run anything, whatever quotes the
    printcap puts around the token."""
    values: dict[str, str] = {}
    out: list[str] = []
    state = ""   # "", "'" or '"': the quote the scan is inside
    #: Enclosing command substitutions and parentheses: (what closes it, the quote state
    #: outside it). Inside ``$(...)`` or backquotes the quoting starts afresh, even within
    #: double quotes: a reference there must be quoted again.
    stack: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        match = TOKEN.match(text, i) if ch == "$" else None
        if match is not None:
            names = []
            for word in expand_word(match.group(0), lookup):
                names.append(f"{SHELL_VAR}{len(values) + 1}")
                values[names[-1]] = word
            out.append(_reference(names, state))
            i = match.end()
            continue
        step, state = _scan(text, i, state, stack)
        out.append(text[i:i + step])
        i += step
    return "".join(out), values


def _scan(text: str, i: int, state: str, stack: list[tuple[str, str]]) -> tuple[int, str]:
    """One step of ``expand_shell``'s scan at ``text[i]``: how many characters it takes
    as they are, and the quote state after them (``stack`` is updated in place)."""
    ch = text[i]
    if state == "'":
        return 1, "" if ch == "'" else state
    if ch == "\\":
        return 2, state
    if text.startswith("$(", i):
        stack.append((")", state))
        return 2, ""
    if ch == "`" and stack and stack[-1][0] == "`" and state == "":
        return 1, stack.pop()[1]
    if ch == "`":
        stack.append(("`", state))
        return 1, ""
    if state == "":
        if ch == "(":
            stack.append((")", state))
        elif ch == ")" and stack and stack[-1][0] == ")":
            return 1, stack.pop()[1]
    if ch in "'\"" and state in ("", ch):
        return 1, "" if state else ch
    return 1, state
