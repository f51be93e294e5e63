"""FTP control-connection bytes (RFC 959, RFC 2428) as pure functions: commands out,
replies in.

Facts: shared/reference/printer-protocols.md §4. A command argument that came from a user
(a file name, a directory, a user name) can never end the command line: CR, LF and NUL are
refused here. ``ReplyReader`` cuts complete replies (single- and multi-line) out of the
byte stream with bounded memory, so a hostile server cannot grow it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: A reply line longer than this is not FTP (RFC 959 lines are short).
MAX_LINE = 8192
#: A multi-line reply with more lines than this is refused.
MAX_LINES = 200
#: The longest store name lpfilter makes (JetDirect shows it nowhere; keep it short).
MAX_STORE_NAME = 48

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_PASV = re.compile(rb"(?<!\d)(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})(?!\d)")
_EPSV = re.compile(r"\((.)\1\1(\d{1,5})\1\)")


class ProtocolError(ValueError):
    """Bytes that are not an FTP reply."""


class ReplyTooLong(ProtocolError):
    """A reply line (or multi-line reply) past the bounds: cut, never held whole. A server
    that ran out of something may send one; unlike bytes that are no reply at all, it is
    worth another try later."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete reply: its code and its text (lines joined by a space)."""

    code: int
    text: str

    @property
    def kind(self) -> int:
        """The first digit: 1 preliminary, 2 done, 3 more needed, 4 transient, 5 permanent."""
        return self.code // 100

    def words(self, limit: int = 160) -> str:
        """The reply for a message: printable, one line, bounded."""
        text = "".join(c if c.isprintable() else " " for c in self.text).strip()
        text = " ".join(text.split())
        if len(text) > limit:
            text = text[: limit - 3] + "..."
        return f"{self.code} {text}".rstrip()


def masked(reply: Reply, secret: str) -> Reply:
    """``reply`` with ``secret`` (the password sent) as ``***`` wherever the server echoed
    it, also as its words show it (blanks and control characters made one space)."""
    text = reply.text.replace(secret, "***")
    shown = " ".join("".join(c if c.isprintable() else " " for c in secret).split())
    if shown:
        text = " ".join(text.split()).replace(shown, "***")
    return Reply(reply.code, text)


class ReplyReader:
    """Incremental reply parser: ``feed(bytes) -> [Reply, ...]``."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._code: bytes | None = None  # inside a multi-line reply: its code
        self._lines: list[str] = []

    def feed(self, data: bytes) -> list[Reply]:
        self._buffer += data
        replies: list[Reply] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    raise ReplyTooLong("a reply line longer than %d bytes" % MAX_LINE)
                return replies
            if end > MAX_LINE:
                raise ReplyTooLong("a reply line longer than %d bytes" % MAX_LINE)
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            reply = self._line(line)
            if reply is not None:
                replies.append(reply)

    def _line(self, line: bytes) -> Reply | None:
        text = line.decode("utf-8", "replace")
        if self._code is None:
            if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in (b"", b" ", b"-"):
                raise ProtocolError(f"not an FTP reply: {text[:60]!r}")
            if line[3:4] == b"-":
                self._code, self._lines = line[:3], [text[4:]]
                return None
            return Reply(int(line[:3]), text[4:])
        if line[:3] == self._code and line[3:4] in (b" ", b""):
            code, lines = int(self._code), self._lines + [text[4:]]
            self._code, self._lines = None, []
            return Reply(code, " ".join(part.strip() for part in lines if part.strip()))
        if len(self._lines) >= MAX_LINES:
            raise ReplyTooLong("a multi-line reply that does not end (over %d lines)" % MAX_LINES)
        self._lines.append(text)
        return None


def command(verb: str, argument: str | None = None) -> bytes:
    """One command line. A user-supplied argument cannot end the line or inject another."""
    if argument is None:
        return verb.encode("ascii") + b"\r\n"
    if any(c in argument for c in "\r\n\x00"):
        raise ValueError(f"{verb}: an argument with a line break or NUL cannot be sent")
    return verb.encode("ascii") + b" " + argument.encode("utf-8", "surrogateescape") + b"\r\n"


def parse_pasv(text: str) -> tuple[str, int]:
    """The address in a ``227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)`` reply."""
    match = _PASV.search(text.encode("utf-8", "replace"))
    if not match:
        raise ProtocolError(f"no address in the PASV reply {text[:60]!r}")
    numbers = [int(n) for n in match.groups()]
    if any(n > 255 for n in numbers) or numbers[4] * 256 + numbers[5] == 0:
        raise ProtocolError(f"a bad address in the PASV reply {text[:60]!r}")
    return ".".join(str(n) for n in numbers[:4]), numbers[4] * 256 + numbers[5]


def parse_epsv(text: str) -> int:
    """The port in a ``229 Entering Extended Passive Mode (|||port|)`` reply."""
    match = _EPSV.search(text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ProtocolError(f"no port in the EPSV reply {text[:60]!r}")
    return int(match.group(2))


def port_argument(host: str, port: int) -> str:
    """``PORT h1,h2,h3,h4,p1,p2`` for an IPv4 address."""
    return ",".join(host.split(".") + [str(port >> 8), str(port & 0xFF)])


def eprt_argument(host: str, port: int) -> str:
    """``EPRT |2|host|port|`` (RFC 2428) for an IPv6 address."""
    return f"|2|{host}|{port}|"


def store_name(queue: str, job_id: str, job_name: str) -> str:
    """A unique, safe file name for ``STOR``: queue, job number and a short form of the
    job's name, letters, digits, dot, dash and underscore only."""
    base = job_name.rsplit("/", 1)[-1]
    safe = _SAFE_NAME.sub("_", base).strip("._-")
    queue_part = _SAFE_NAME.sub("_", queue).strip("._-")[:16] or "lp"
    name = f"{queue_part}-{_SAFE_NAME.sub('_', job_id)[:12]}"
    room = MAX_STORE_NAME - len(name) - 1
    return f"{name}-{safe[:room]}" if safe and room > 0 else name
