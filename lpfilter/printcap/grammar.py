"""The printcap grammar: text in, names and options out. It knows nothing of files.

LPRng 3.8.B reads a printcap in stages (``shared/reference/lprng-printcap.md`` §1-2):
physical lines (cut at newline, form feed, ^D and ^T; trimmed; comments and blank lines
dropped), ``include`` lines, entries assembled from continuation lines, and each entry
cut into names and options. This module does those text stages; ``source`` feeds it
files and ``model`` gives the pieces meaning.
"""
from __future__ import annotations

from lpfilter.memo import once
from lpfilter.printcap.datatypes import C_SPACE
from lpfilter.structs import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    import pyparsing as pp
    from typing import Any

# The text is cut by hand, not by ``re``: lpd's filter reads ``PRINTCAP_ENTRY`` here at
# every job's start, and importing ``re`` would be the most of it (tests/test_without_re.py
# compares each cut with the pattern it replaced). LPRng ends a physical line at a form
# feed, ^D and ^T too: the first two become the third, which then cuts.
_LINE_ENDS = str.maketrans("\f\x14", "\x04\x04")
_INCLUDE_BLANKS = str.maketrans("\t,;:", "    ")
#: One option, as the pyparsing grammar reads it (``cut_options`` cuts the same): a ':'
#: and the text up to the next ':' that is not right after a backslash.
OPTION = r":(?:[^:]|(?<=\\):)*"


@once
def _grammar() -> tuple[pp.ParserElement, pp.ParserElement]:
    """Build the pyparsing grammar on first use: importing pyparsing costs ~50 ms, and a
    command served from the parse cache never needs it."""
    import pyparsing as pp

    # An entry is its names, up to the first ':', then its options. The option block is
    # one token (a token per option made a 10,000-entry file take twice as long to read);
    # parse_entry cuts it with cut_options, as OPTION would cut it.
    names = pp.Regex(r"[^:]*")
    options = pp.Regex(f"(?:{OPTION})*")
    entry = names + options + pp.StringEnd()
    entry.leave_whitespace()
    entry.parse_with_tabs()
    entry.streamline()
    # "include" is the first word of the line, in any letter case; file names follow,
    # separated by blanks, commas, semicolons or colons.
    include = (pp.Regex(r"(?i)include(?=[ \t]|$)") + pp.Regex(r".*")("files"))
    include.leave_whitespace()
    include.parse_with_tabs()
    return entry, include


# An option's key ends at a blank or at one of = # @ (LPRng's Option_value_sep).
_KEY_ENDS = " \t=#@"


class Line(Struct):
    """One trimmed, non-comment physical line; ``origin`` is whatever the caller attached."""

    __slots__ = _fields = ("text", "origin", "indented", "after_gap")
    text: str
    origin: Any
    #: The line had leading blanks (indentation never continues an entry in LPRng).
    indented: bool
    #: Blank or comment lines were dropped right before this one.
    after_gap: bool

    def __init__(self, text: str, origin: Any, indented: bool = False,
                 after_gap: bool = False) -> None:
        self.text = text
        self.origin = origin
        self.indented = indented
        self.after_gap = after_gap


class RawEntry(Struct):
    """The text of one entry as LPRng assembles it, with where each piece came from."""

    __slots__ = _fields = ("text", "pieces")
    text: str
    #: (offset in ``text``, Line) for every physical line joined into the entry.
    pieces: list[tuple[int, Line]]

    def __init__(self, text: str, pieces: list[tuple[int, Line]] | None = None) -> None:
        self.text = text
        self.pieces = [] if pieces is None else pieces

    def lines_at(self, offsets: list[int]) -> list[Line]:
        """The physical line holding each of ``offsets`` (ascending, as options come), in
        one walk over the entry's lines."""
        pieces = self.pieces
        found: list[Line] = []
        index, last = 0, len(pieces) - 1
        for offset in offsets:
            while index < last and pieces[index + 1][0] <= offset:
                index += 1
            found.append(pieces[index][1])
        return found


class ParsedOption(Struct):
    """One option: its trimmed text, its key, and where in the entry text it starts."""

    __slots__ = _fields = ("offset", "text", "key", "form", "value", "swallowed")
    offset: int
    text: str
    key: str
    #: How the value is written: "flag" (``key``), "off" (``key@``) or "value".
    form: str
    #: The value text for the "value" form (``""`` for ``key=``), else None.
    value: str | None
    #: The option swallowed the next one through a trailing backslash.
    swallowed: bool

    def __init__(self, offset: int, text: str, key: str, form: str,
                 value: str | None, swallowed: bool = False) -> None:
        self.offset = offset
        self.text = text
        self.key = key
        self.form = form
        self.value = value
        self.swallowed = swallowed


class ParsedEntry(Struct):
    """Names (non-empty, trimmed, as written) and options of one entry."""

    __slots__ = _fields = ("names", "options")

    def __init__(self, names: list[str], options: list[ParsedOption]) -> None:
        self.names = names
        self.options = options


def physical_lines(text: str, origin: Any = None) -> list[Line]:
    """Cut ``text`` into LPRng's physical lines; ``origin(lineno)`` labels each one.

    Line numbers count newlines only, as an editor shows them, even though form feed,
    ^D and ^T also end a line for LPRng.
    """
    lines: list[Line] = []
    gap = False
    cuts = "\f" in text or "\x04" in text or "\x14" in text  # (translate is slow: rare)
    for lineno, newline_piece in enumerate(text.split("\n"), start=1):
        pieces = (newline_piece.translate(_LINE_ENDS).split("\x04") if cuts
                  else (newline_piece,))
        for piece in pieces:
            trimmed = piece.strip(C_SPACE)
            if not trimmed or trimmed[0] == "#":
                gap = True
                continue
            where = origin(lineno) if origin is not None else lineno
            lines.append(Line(trimmed, where, piece[:1] in (" ", "\t"), gap))
            gap = False
    return lines


def include_files(line: str) -> list[str] | None:
    """The files an ``include`` line names, or None when the line is no include."""
    if line[:7].lower() != "include":
        return None
    import pyparsing as pp
    try:
        result = _grammar()[1].parse_string(line, parse_all=True)
    except pp.ParseException:
        return None
    return [name for name in result["files"].translate(_INCLUDE_BLANKS).split(" ") if name]


def assemble(lines: list[Line]) -> list[RawEntry]:
    """Join continuation lines into entries, as LPRng's Build_printcap_info does.

    A line continues the entry when it starts with ':' or '|', or when the line before
    ended in a backslash (whatever this one starts with). Pieces are joined by one space.
    """
    entries: list[RawEntry] = []
    current: RawEntry | None = None
    # The text is joined once per entry, at the end: adding each line to a growing string
    # copied it every time, and an entry of 200,000 continuation lines took minutes.
    parts: list[str] = []
    length = 0
    for line in lines:
        text = line.text
        continues = current is not None and (text[0] in ":|" or parts[-1].endswith("\\"))
        if continues:
            assert current is not None
            if parts[-1].endswith("\\"):
                parts[-1] = parts[-1][:-1]
                length -= 1
            parts.append(" ")
            current.pieces.append((length + 1, line))
            parts.append(text)
            length += 1 + len(text)
        else:
            if current is not None:
                current.text = "".join(parts)
            current = RawEntry("", [(0, line)])
            parts, length = [text], len(text)
            entries.append(current)
    if current is not None:
        current.text = "".join(parts)
    for entry in entries:
        if entry.text.endswith("\\"):
            entry.text = entry.text[:-1]
    return entries


def option_form(rest: str) -> tuple[str, str | None]:
    """Read what follows a key: ("flag", None), ("off", None) or ("value", text)."""
    head = rest.lstrip(" \t")
    if not head:
        return "flag", None
    if head[0] == "@":
        return "off", None
    return "value", head.lstrip(" \t=#@")


def option_key(text: str) -> str:
    """An option's key: its text up to a blank or one of ``= # @`` (a key is a few
    characters: looking at each is quicker than five searches of the whole text)."""
    for at, char in enumerate(text):
        if char in _KEY_ENDS:
            return text[:at]
    return text


def cut_options(text: str) -> list[tuple[int, str]]:
    """Each option of ``text`` with where it starts: a ':' and the text up to the next ':'
    that is not right after a backslash (LPRng looks at one character only, so ``\\\\:``
    is escaped too)."""
    found: list[tuple[int, str]] = []
    start = at = text.find(":")
    if start == -1:
        return found
    while (at := text.find(":", at + 1)) != -1:
        if text[at - 1] != "\\":
            found.append((start, text[start:at]))
            start = at
    found.append((start, text[start:]))
    return found


def _option(offset: int, text: str) -> ParsedOption:
    key = option_key(text)
    form, value = option_form(text[len(key):])
    return ParsedOption(offset, text, key, form, value)


def option_sort_key(text: str) -> bytes:
    """The order LPRng's Split(sort=1) puts options in: by key, ASCII case folded, stable."""
    return option_key(text).encode("utf-8", "surrogateescape").lower()


def parse_entry(text: str, *, fast: bool = False) -> ParsedEntry:
    """Cut an assembled entry into names and options, with LPRng's two splitting passes.

    LPRng (linelist.c, Build_pc_names) splits the options, trims them, drops empty ones,
    sorts them by key and joins them again with ':'; Find_pc_info splits that once more.
    So an option whose trimmed text ends in a backslash escapes the ':' after it and
    swallows the option that follows it *in key order*, not in the file. Options keep
    the file's order here; offsets point into ``text``.

    ``fast`` cuts names from options at the first ':', without importing pyparsing (about
    35 ms, more than the rest of a filter's start-up): for ``PRINTCAP_ENTRY``, which lpd
    hands every filter it starts. The grammar's entry rule (names, then options, then the
    end) takes any text whole, and cuts it there too (tests/test_startup.py checks
    both give the same pieces, on every entry of the corpus and on generated text).
    """
    if fast:
        names_text, colon, rest = text.partition(":")
        options_text = colon + rest
    else:
        # StringEnd in the grammar already demands all of the text; parse_all would only
        # double the cost of each call.
        names_text, options_text = _grammar()[0].parse_string(text)
    names = [name.strip(C_SPACE) for name in names_text.split("|")]
    base = len(names_text)
    pieces: list[tuple[int, str]] = []
    for start, option in cut_options(options_text):
        body = option[1:]
        stripped = body.lstrip(C_SPACE)
        piece = stripped.rstrip(C_SPACE)
        if piece:
            pieces.append((base + start + 1 + len(body) - len(stripped), piece))
    texts, swallowed = _join_escaped(pieces)
    options: list[ParsedOption] = []
    for index, (offset, _piece) in enumerate(pieces):
        if index in texts:
            options.append(_option(offset, texts[index]))
            options[-1].swallowed = index in swallowed
    return ParsedEntry([name for name in names if name], options)


def _join_escaped(pieces: list[tuple[int, str]]) -> tuple[dict[int, str], set[int]]:
    """LPRng's rejoin and second split: each option (by index) that survives with its
    final text, and the indexes of those that swallowed the next one in key order."""
    texts = {index: piece for index, (_offset, piece) in enumerate(pieces)}
    if not any(piece.endswith("\\") for _offset, piece in pieces):
        return texts, set()  # the common case: nothing to join, no sort needed
    order = sorted(range(len(pieces)), key=lambda i: option_sort_key(pieces[i][1]))
    swallowed: set[int] = set()
    head: int | None = None
    for index in order:
        if head is not None:
            texts[head] += ":" + texts.pop(index)
            swallowed.add(head)
        else:
            head = index
        if not texts[head].endswith("\\"):
            head = None
    return texts, swallowed
