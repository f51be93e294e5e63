"""PJL and PostScript status at the byte level: commands out, replies in (pure functions).

Facts: shared/reference/printer-protocols.md §2. Anything user-controlled that goes into
a PJL line (a job name) is sanitised here, so it can never end the line, close a quoted
value or smuggle in a command. Replies end with a form feed; ``ReplyParser`` cuts them
out of the back channel with a bounded buffer, so endless garbage cannot grow memory.
"""
from __future__ import annotations

from lpfilter.structs import FrozenStruct

UEL = b"\x1b%-12345X"
EOL = b"\r\n"
#: Longest job name lpfilter puts into PJL (printers show it on their panel).
MAX_NAME = 64
#: A reply longer than this is garbage: it is dropped, not kept.
MAX_REPLY = 16 * 1024


def safe_name(text: str, limit: int = MAX_NAME) -> str:
    """A job name that is safe inside ``NAME="..."``: printable ASCII, no quote or backslash,
    no CR/LF or control bytes, bounded length. Others become '_'."""
    # (By hand, not re: an if= filter's start imports no re. One character for one, so
    # cutting first is cutting after.)
    head = text[:limit]
    if head.isascii() and head.isprintable() and '"' not in head and "\\" not in head:
        return head.strip() or "job"  # the usual name, at C speed (two a job sent)
    cleaned = "".join(c if " " <= c <= "~" and c not in '"\\' else "_"
                      for c in text[:limit]).strip()
    return cleaned or "job"


def command(line: str) -> bytes:
    """One ``@PJL`` command line; ``line`` is lpfilter's own text (callers sanitise values)."""
    if "\n" in line or "\r" in line or "\x1b" in line:
        raise ValueError("a PJL command is one line")
    return b"@PJL " + line.encode("ascii") + EOL


def job_start(name: str, *, ustatus: bool = True, enter: str | None = None) -> bytes:
    """UEL, ``@PJL JOB NAME="..."``, job status on, and optionally ENTER LANGUAGE."""
    out = UEL + b"@PJL" + EOL + command(f'JOB NAME="{safe_name(name)}"')
    if ustatus:
        out += command("USTATUS JOB=ON")
    if enter:
        language = "".join(c for c in enter if c.isascii() and c.isalnum()).upper()
        if language:
            out += command(f"ENTER LANGUAGE={language}")
    return out


def job_end(name: str, *, echo: str | None = None) -> bytes:
    """UEL ``@PJL EOJ NAME="..."`` UEL, with an ECHO cookie after it when asked."""
    out = UEL + b"@PJL" + EOL + command(f'EOJ NAME="{safe_name(name)}"')
    if echo:
        out += command(f"ECHO {safe_name(echo)}")
    return out + UEL


def echo(cookie: str) -> bytes:
    """A sync: UEL ``@PJL ECHO cookie`` UEL; the printer answers with the same cookie."""
    return UEL + b"@PJL" + EOL + command(f"ECHO {safe_name(cookie)}") + UEL


def info(category: str) -> bytes:
    """``@PJL INFO PAGECOUNT`` (or STATUS, ID) inside UELs."""
    return UEL + b"@PJL" + EOL + command(f"INFO {category.upper()}") + UEL


# --- replies --------------------------------------------------------------------------

#: PJL status codes in words (printer-protocols.md §2.5); ranges cover families.
_CODES = {10000: "power save", 10001: "ready", 10002: "ready, offline", 10003: "warming up",
          10004: "self test", 10005: "reset", 10006: "toner low", 10023: "printing",
          35078: "power save", 40000: "sleep", 40021: "door open", 40022: "paper jam",
          40600: "toner empty"}
_FAMILIES = ((41000, 41999, "paper out or wrong paper"), (42000, 42999, "paper jam"),
             (44000, 44999, "paper jam"), (30000, 30999, "attention needed"))


def code_words(code: int) -> str:
    """What a PJL status CODE means, in a sysadmin's words."""
    if 32000 <= code < 33000:
        code -= 2000  # some HP firmware reports codes offset by 2000
    if code in _CODES:
        return _CODES[code]
    for low, high, words in _FAMILIES:
        if low <= code <= high:
            return words
    return f"status code {code}"


class Reply(FrozenStruct):
    """One message from the printer.

    kind: "echo", "pagecount", "status", "job" (USTATUS JOB), "device" (USTATUS DEVICE),
    "page" (USTATUS PAGE), "id", "ps" (a PostScript %%[ ... ]%% message) or "other".
    """

    __slots__ = _fields = ("kind", "text", "fields", "value")
    kind: str
    text: str
    fields: dict[str, str]
    #: For "job": START or END; for "echo": the cookie; for "id": the model.
    value: str

    def __init__(self, kind: str, text: str, fields: dict[str, str] | None = None,
                 value: str = "") -> None:
        setattr_ = object.__setattr__
        setattr_(self, "kind", kind)
        setattr_(self, "text", text)
        setattr_(self, "fields", {} if fields is None else fields)
        setattr_(self, "value", value)

    @property
    def pages(self) -> int | None:
        raw = self.fields.get("PAGES") or self.fields.get("PAGECOUNT")
        return int(raw) if raw and raw.isdigit() else None

    @property
    def code(self) -> int | None:
        for key, raw in self.fields.items():
            if key[:4] == "CODE" and (key[4:].isdecimal() or key == "CODE") and (
                    raw.strip().isdigit()):
                return int(raw)
        return None

    def words(self) -> str:
        """The reply as a status line a person can read."""
        if self.kind == "ps":
            return self.text
        display = self.fields.get("DISPLAY", "").strip('"')
        code = self.code
        if code is not None:
            return code_words(code) + (f" ({display})" if display else "")
        if self.kind == "pagecount":
            return f"page count {self.pages}"
        if self.kind == "job":
            name = self.fields.get("NAME", "").strip('"')
            pages = "" if self.pages is None else (
                f", {self.pages} page{'' if self.pages == 1 else 's'}")
            return f"job {name} {self.value.lower()}{pages}"
        return display or self.text


#: Compiled by re's cache at its first use: only a PostScript printer's reply is searched.
_PS_MESSAGE = rb"(?s)%%\[(.{0,400}?)\]%%"


def parse_reply(block: bytes) -> Reply:
    """One form-feed-terminated PJL reply (without the form feed)."""
    text = block.replace(b"\x04", b"").replace(b"\x00", b"").decode("ascii", "replace")
    lines = [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]
    if not lines:
        return Reply("other", "")
    head = lines[0].upper()
    body = lines[1:]
    fields: dict[str, str] = {}
    bare: list[str] = []
    for line in body:
        key, eq, value = line.partition("=")
        if eq:
            fields[key.strip().upper()] = value.strip()
        else:
            bare.append(line)
    if head.startswith("@PJL ECHO"):
        return Reply("echo", text.strip(), fields, lines[0][len("@PJL ECHO"):].strip())
    if head.startswith("@PJL INFO PAGECOUNT"):
        if "PAGECOUNT" not in fields and bare and bare[0].isdigit():
            fields["PAGECOUNT"] = bare[0]
        return Reply("pagecount", text.strip(), fields)
    if head.startswith("@PJL INFO STATUS"):
        return Reply("status", text.strip(), fields)
    if head.startswith("@PJL INFO ID"):
        return Reply("id", text.strip(), fields, (bare[0] if bare else "").strip('"'))
    if head.startswith("@PJL USTATUS JOB"):
        return Reply("job", text.strip(), fields, bare[0].upper() if bare else "")
    if head.startswith("@PJL USTATUS DEVICE"):
        return Reply("device", text.strip(), fields)
    if head.startswith("@PJL USTATUS PAGE"):
        return Reply("page", text.strip(), {"PAGES": bare[0]} if bare else {})
    return Reply("other", text.strip(), fields)


class ReplyParser:
    """Cuts replies out of back-channel bytes; the buffer never exceeds ``MAX_REPLY``."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Reply]:
        self._buffer += data
        replies: list[Reply] = []
        if b"%%[" in self._buffer:  # (a PJL printer's replies need no re)
            import re
            for match in re.finditer(_PS_MESSAGE, self._buffer):
                replies.append(Reply("ps", match.group(0).decode("ascii", "replace")))
            if replies:
                self._buffer = bytearray(re.sub(_PS_MESSAGE, b"", bytes(self._buffer)))
        while True:
            end = self._buffer.find(b"\x0c")
            if end < 0:
                break
            block = bytes(self._buffer[:end])
            del self._buffer[:end + 1]
            start = block.find(b"@PJL")
            if start >= 0:
                replies.append(parse_reply(block[start:]))
        if len(self._buffer) > MAX_REPLY:
            keep = self._buffer.rfind(b"@PJL")
            keep = keep if keep >= 0 and len(self._buffer) - keep <= MAX_REPLY else len(
                self._buffer)
            del self._buffer[:keep]
        return replies
