"""Small converters between printcap text and typed values, as LPRng 3.8.B does them.

Each function is pure and mirrors one C routine of LPRng, quirks included, because a
drop-in reader must read ``sh=on`` and ``mx#010`` the way lpd does (see
``shared/reference/lprng-printcap.md`` §2.3-2.5).
"""
from __future__ import annotations

#: C isspace() in the C locale: what LPRng trims.
C_SPACE = " \t\n\v\f\r"
#: The URI schemes an ``lp`` value may name (``destination.classify``); here, below both
#: the entry reader and the destinations, so reading an entry never imports the latter.
URI_SCHEMES = ("ftp", "socket", "lpd")

_TRUE_WORDS = frozenset({"yes", "true", "all", "allow"})
_FALSE_WORDS = frozenset({"no", "false", "none", "deny"})
_LIST_BLANKS = str.maketrans("\t,;", "   ")
_DIGITS = frozenset("0123456789")
_OCTAL_DIGITS = frozenset("01234567")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def c_strip(text: str) -> str:
    """Trim like LPRng: C whitespace only, never Unicode spaces."""
    return text.strip(C_SPACE)


def _strtol_span(text: str) -> tuple[int, int] | None:
    """The number C's ``strtol(text, NULL, 0)`` reads and where it stops; None when it
    reads none. (By hand, not ``re``: a quick command's ``lp=host%port`` is read here, and
    a quick command imports no ``re``.)"""
    at = len(text) - len(text.lstrip(C_SPACE))
    sign = text[at:at + 1]
    if sign in ("+", "-"):
        at += 1
    first, digits, base = text[at:at + 1], _DIGITS, 10
    if first == "0":
        if text[at + 1:at + 2] in ("x", "X") and text[at + 2:at + 3] in _HEX_DIGITS:
            at, digits, base = at + 2, _HEX_DIGITS, 16
        else:
            digits, base = _OCTAL_DIGITS, 8
    elif not first or first not in _DIGITS:
        return None
    end = at + 1
    while end < len(text) and text[end] in digits:
        end += 1
    value = int(text[at:end], base)
    return (-value if sign == "-" else value), end


def strtol(text: str) -> int:
    """C ``strtol(text, NULL, 0)``: 0x hex, leading-0 octal, junk after digits ignored, none = 0."""
    span = _strtol_span(text)
    return 0 if span is None else span[0]


def strtol_leftover(text: str) -> str:
    """What ``strtol`` ignores after the number (for checkpc's "junk ignored" warning)."""
    span = _strtol_span(text)
    return text if span is None else text[span[1]:]


def number_word(text: str) -> int:
    """LPRng's value of a number or flag given as text (Check_str_keyword, then strtol).

    ``on`` and ``off`` are not words LPRng knows: both read as 0.
    """
    word = c_strip(text).lower()
    if word in _TRUE_WORDS:
        return 1
    if word in _FALSE_WORDS:
        return 0
    return strtol(text)


def is_number_word(text: str) -> bool:
    """True when ``text`` is a number or a flag word LPRng understands with no surprise."""
    word = c_strip(text).lower()
    return word in _TRUE_WORDS or word in _FALSE_WORDS or (
        (span := _strtol_span(word)) is not None and span[1] == len(word))


def split_list(text: str) -> list[str]:
    """Split a list value (``tc``, ``oh``, ``all``) on blanks, commas and semicolons."""
    return [item for item in text.translate(_LIST_BLANKS).split(" ") if item]


def c_unescape(text: str) -> str:
    """Decode ``ld``/``tr``/``ff`` strings as LPRng's Fix_str does at print time.

    ``\\f \\r \\n \\t``, a backslash and up to three octal digits, and ``\\X`` -> ``X``.
    """
    return c_unescape_bytes(text.encode("utf-8", "surrogateescape")).decode(
        "utf-8", "surrogateescape")


_SIMPLE_ESCAPES = {ord("f"): 0x0C, ord("r"): 0x0D, ord("n"): 0x0A, ord("t"): 0x09}
_OCTAL = frozenset(b"01234567")


def c_unescape_bytes(data: bytes) -> bytes:
    """``c_unescape`` on the bytes that go to the printer (``\\377`` is the byte 0xFF)."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        ch = data[i]
        if ch != 0x5C or i + 1 == n:
            out.append(ch)
            i += 1
            continue
        nxt = data[i + 1]
        if nxt in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[nxt])
            i += 2
        elif nxt in _OCTAL:
            j = i + 1
            while j < n and j < i + 4 and data[j] in _OCTAL:
                j += 1
            out.append(int(data[i + 1:j], 8) & 0xFF)
            i = j
        else:
            out.append(nxt)
            i += 2
    return bytes(out)


def format_octal(value: int) -> str:
    """Show a permission number the way a sysadmin writes it (``0700``)."""
    return f"0{value:o}"


def expand_percent(text: str, codes: dict[str, str]) -> str:
    """LPRng's Expand_percent: ``%P``, ``%Q``... from ``codes``; any other ``%x`` and ``%%``
    stay. (By ``find``, not ``re``: a ``print`` to ``lp=host%port`` expands its value, and
    a quick command imports no ``re``.)"""
    if "%" not in text:
        return text
    out: list[str] = []
    start, last = 0, len(text) - 1
    while (at := text.find("%", start)) != -1 and at < last:  # a "%" at the end stays
        code = text[at + 1]
        out += (text[start:at], codes.get(code, "%" + code))
        start = at + 2
    out.append(text[start:])
    return "".join(out)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """C tolower() in the C locale: only A-Z change (strcasecmp's folding)."""
    return text.translate(_ASCII_LOWER)


def globmatch(pattern: str, name: str) -> bool:
    """LPRng's Globmatch (globmatch.c, glob_pattern), used on printcap names.

    Literal text compares ASCII case-insensitively; ``?`` is one character; ``*`` is any
    run, but one followed by more pattern must leave that part a character to match at;
    ``[...]`` is a set or ``a-z`` range compared case-sensitively, ``[^...]`` its negation
    (``!`` is literal); an unclosed ``[`` matches nothing.
    """
    meta = next((i for i, ch in enumerate(pattern) if ch in "*?["), -1)
    if meta < 0:
        return ascii_lower(pattern) == ascii_lower(name)
    if ascii_lower(pattern[:meta]) != ascii_lower(name[:meta]) or len(name) < meta:
        return False
    kind, rest, name = pattern[meta], pattern[meta + 1:], name[meta:]
    if kind == "?":
        return bool(name) and globmatch(rest, name[1:])
    if kind == "*":
        return not rest or any(globmatch(rest, name[i:]) for i in range(len(name)))
    close = rest.find("]")
    if close < 0 or not name:
        return False
    return _in_set(rest[:close], name[0]) and globmatch(rest[close + 1:], name[1:])


def _in_set(body: str, ch: str) -> bool:
    """One ``[...]`` of globmatch: single characters and ``a-z`` ranges, ``^`` inverts."""
    invert = body.startswith("^")
    body = body[1:] if invert else body
    found, previous, i = False, "", 0
    while not found and i < len(body):
        if previous and body[i] == "-" and i + 1 < len(body):
            found = previous <= ch <= body[i + 1]
            previous, i = "", i + 2
        else:
            previous = body[i]
            found = ch == previous
            i += 1
    return found != invert
