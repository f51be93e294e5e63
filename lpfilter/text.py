"""Text that reaches a terminal or a log: never an encoding error, never a control
character obeyed. On the ground floor, so every layer may use it without reaching up."""
from __future__ import annotations

#: Compiled by ``re`` at its first use (only text that is not ASCII is searched, and only
#: then is ``re`` imported: a quick command's text is ASCII).
_ESCAPED_BYTE = "[\udc80-\udcff]"


def printable(text: str) -> str:
    """Text safe for any output: bytes that were not UTF-8 (kept by surrogateescape) shown
    as ISO-8859-1 characters (the likeliest encoding of an old printcap), never a
    UnicodeEncodeError."""
    if text.isascii():
        return text
    import re
    return re.sub(_ESCAPED_BYTE, lambda m: chr(ord(m.group()) - 0xDC00), text)


def visible(text: str) -> str:
    """User text (a job or file name, a program's message) for a log or terminal: as
    ``printable``, with control characters (ESC, newline, DEL, C1...) shown as escapes."""
    text = printable(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)
