"""LPD (RFC 1179) request lines, acknowledgements, job file names and status text, as pure
functions for both ends: lpfilter's LPD client backend and its LPD server.

Facts: shared/reference/lpd-protocol.md (cited as "lpd-protocol.md §n"). Nothing here
touches a socket: callers read bounded amounts and hand the bytes in. An operand that came
from a user or a printcap (a queue, a user, a job number) can never end a request line or
add one: it is refused here, and so is a received line that is too long or holds a NUL.
The control file is in ``lpdcontrol``.

A client's ``status`` and ``cancel`` of a print server's queue load this module: its
records are ``FrozenStruct``s and its names are read with ``str`` methods, not dataclasses
(with ``inspect``, 52 M instructions to import) and ``re``.
"""
from __future__ import annotations

from lpfilter.enums import Enum, IntEnum
from lpfilter.protocols import MAX_LINE as MAX_LINE  # (both defined there: see its docstring)
from lpfilter.protocols import LpdProtocolError as LpdProtocolError
from lpfilter.structs import FrozenStruct
from lpfilter.text import visible

#: The LPD port (RFC §3.1); LPRng's ``lpd_port``.
DEFAULT_PORT = 515
#: Longest server reason kept from a non-zero acknowledgement, in characters; the backend
#: reads at most MAX_ACK_READ bytes after the octet (LPRng sends up to three lines, §3).
MAX_REASON = 300
MAX_ACK_READ = 4 * MAX_REASON
#: A status reply made safe to show: at most this many lines of this many characters.
MAX_STATUS_LINES = 500
MAX_STATUS_LINE = 300
#: The largest size a file subcommand may announce: CUPS's "unknown size" 999999999999
#: (lpd-protocol.md §2) is the longest count a real client sends.
MAX_COUNT = 999_999_999_999
#: Data files in one job: LPRng's ``max_datafiles`` (lpd-protocol.md §4), letters A-Z, a-z.
DATA_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: The host part of a job file name: LPRng writes its full host name; CUPS cuts it at 15
#: (lpd-protocol.md §5). 31 is the RFC's bound for ``H``, which every server takes.
MAX_NAME_HOST = 31
#: The longest job file name taken: room for any fully qualified host name a client
#: writes in practice (LPRng writes its FQDN); a 200-character name is hostile, refused.
MAX_FILE_NAME = 128

_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: What a host part of a file name may hold (lpd-protocol.md §5).
_NAME_HOST_OK = _ASCII_LETTERS | frozenset("0123456789.-")
#: What may follow a job file name's number: its host part (RFC §7).
_FILE_NAME_TAIL = _NAME_HOST_OK | frozenset("_")


class Request(IntEnum):
    """The first octet of a request line (RFC §5, lpd-protocol.md §1)."""

    PRINT_WAITING = 1
    RECEIVE_JOB = 2
    SHORT_STATUS = 3
    LONG_STATUS = 4
    REMOVE = 5


_REQUEST_CODES = frozenset(code.value for code in Request)


class Subcommand(IntEnum):
    """The first octet of a line inside a job transfer (RFC §6, lpd-protocol.md §2)."""

    ABORT = 1
    CONTROL_FILE = 2
    DATA_FILE = 3


class RequestLine(FrozenStruct):
    """A parsed request: for REMOVE the first operand is the agent (RFC §5.5)."""

    __slots__ = _fields = ("code", "queue", "operands")
    code: Request
    queue: str
    operands: tuple[str, ...]

    def __init__(self, code: Request, queue: str, operands: tuple[str, ...] = ()) -> None:
        self._assign(locals())

    @property
    def agent(self) -> str:
        return self.operands[0] if self.code is Request.REMOVE else ""

    @property
    def items(self) -> tuple[str, ...]:
        """User names and job numbers the request is limited to (RFC §5.3-5.5)."""
        return self.operands[1:] if self.code is Request.REMOVE else self.operands


def _operand(value: str, what: str) -> bytes:
    """One operand: not empty, no white space or control character (it would split or end
    the line, RFC §3.1)."""
    if not value:
        raise LpdProtocolError(f"an empty {what} cannot be sent")
    if not value.isprintable() or any(c.isspace() for c in value):
        raise LpdProtocolError(f"the {what} '{visible(value)}' holds white space or a control"
                               " character, which LPD cannot carry")
    return value.encode("utf-8", "surrogateescape")


def request(code: Request, queue: str, operands: tuple[str, ...] = ()) -> bytes:
    """One request line; refused when an operand cannot be carried or it is too long."""
    if code is Request.REMOVE and not operands:
        raise LpdProtocolError("a remove request names its agent (RFC §5.5)")
    words = [_operand(queue, "queue name")]
    what = "agent" if code is Request.REMOVE else "user or job"
    words += [_operand(o, what if i == 0 else "user or job") for i, o in enumerate(operands)]
    line = bytes([code]) + b" ".join(words) + b"\n"
    if len(line) > MAX_LINE:
        raise LpdProtocolError(f"a request longer than {MAX_LINE} bytes (too many operands)")
    return line


def print_waiting(queue: str) -> bytes:
    """``\\x01queue\\n``: start printing (RFC §5.1); LPRng answers one NUL."""
    return request(Request.PRINT_WAITING, queue)


def receive_job(queue: str) -> bytes:
    """``\\x02queue\\n``: the start of a job transfer (RFC §5.2)."""
    return request(Request.RECEIVE_JOB, queue)


def status(queue: str, items: tuple[str, ...] = (), *, long: bool = False) -> bytes:
    """Short (``lpq -s``) or long (``lpq``) status, limited to users/jobs (RFC §5.3, §5.4);
    LPRng's lpq asks for the long form by default (lpd-protocol.md §7.1)."""
    return request(Request.LONG_STATUS if long else Request.SHORT_STATUS, queue, items)


def remove(queue: str, agent: str, items: tuple[str, ...] = ()) -> bytes:
    """Remove jobs (RFC §5.5). LPRng's lprm sends no ``-``: an empty list means the
    agent's jobs (lpd-protocol.md §7.1)."""
    return request(Request.REMOVE, queue, (agent, *items))


def _text_line(line: bytes, what: str) -> bytes:
    """A received line without its LF, refused when too long or holding a NUL/CR/LF."""
    if len(line) > MAX_LINE:
        raise LpdProtocolError(f"{what} longer than {MAX_LINE} bytes")
    if line.endswith(b"\n"):
        line = line[:-1]
    if any(b in line for b in (0, 10, 13)):
        raise LpdProtocolError(f"{what} holding a NUL, CR or LF")
    return line


def parse_request(line: bytes) -> RequestLine:
    """A request line as a server reads it (with or without its LF): bounded, every
    operand printable, the code one of RFC §5's."""
    body = _text_line(line, "a request line")
    if not body or body[0] not in _REQUEST_CODES:
        raise LpdProtocolError(f"not an LPD request (code 0x{body[:1].hex() or 'none'})")
    # RFC §3.1: operands are separated by SP, HT, VT or FF; split() also cuts at CR and
    # LF, which _text_line refused.
    words = [w.decode("utf-8", "surrogateescape") for w in body[1:].split()]
    if any(not w.isprintable() for w in words):
        raise LpdProtocolError("a request with a control character")
    code = Request(body[0])
    if not words:
        raise LpdProtocolError("a request without a queue name")
    if code is Request.REMOVE and len(words) < 2:
        raise LpdProtocolError("a remove request without an agent")
    return RequestLine(code, words[0], tuple(words[1:]))


# --- inside a job transfer ---------------------------------------------------------------
class FileLine(FrozenStruct):
    """A ``\\x02``/``\\x03`` subcommand: the file that follows, ``size`` bytes (0 for a data
    file: until the client closes, lpd-protocol.md §2)."""

    __slots__ = _fields = ("code", "size", "name")
    code: Subcommand
    size: int
    name: str

    def __init__(self, code: Subcommand, size: int, name: str) -> None:
        self._assign(locals())


def abort_job() -> bytes:
    """``\\x01\\n``: drop what this connection sent so far (RFC §6.1)."""
    return b"\x01\n"


def file_line(code: Subcommand, size: int, name: str) -> bytes:
    """The line announcing a control (RFC §6.2) or data file (RFC §6.3)."""
    if code is Subcommand.ABORT or not 0 <= size <= MAX_COUNT:
        raise LpdProtocolError(f"no file subcommand {code!r} of {size} bytes")
    check_file_name(name)
    return b"%c%d %s\n" % (code, size, name.encode("ascii"))


def parse_subcommand(line: bytes) -> FileLine | None:
    """A line inside a job transfer; None for abort. The file name is checked as a server
    must (no path, lpd-protocol.md §9): a server still stores files under its own names."""
    body = _text_line(line, "a subcommand line")
    if body == b"\x01":
        return None
    if not body or body[0] not in (Subcommand.CONTROL_FILE, Subcommand.DATA_FILE):
        raise LpdProtocolError(f"not an LPD subcommand (code 0x{body[:1].hex() or 'none'})")
    count, _, name = body[1:].partition(b" ")
    if not count.isdigit() or int(count) > MAX_COUNT:
        raise LpdProtocolError(f"a bad file size '{visible(count.decode('latin-1'))}'")
    text = name.decode("latin-1")
    check_file_name(text)
    if body[0] == Subcommand.CONTROL_FILE and int(count) == 0:
        raise LpdProtocolError("a control file of size 0 (only a data file may stream)")
    return FileLine(Subcommand(body[0]), int(count), text)


def _file_name_parts(name: str) -> tuple[str, str] | None:
    """The number and host part of a job file name (``cf`` or ``df``, a letter, 3 to 6
    digits, as many as there are up to 6, then ``[A-Za-z0-9._-]*``, all ASCII), or None."""
    head = name[3:9]  # up to 6 digits: the number; what follows is the host part
    end = 3 + len(head) - len(head.lstrip("0123456789"))
    if name[:2] not in ("cf", "df") or name[2:3] not in _ASCII_LETTERS or end < 6 or \
            not _FILE_NAME_TAIL.issuperset(name[end:]):
        return None
    return name[3:end], name[end:]


def check_file_name(name: str) -> None:
    """A job file name as RFC §7 writes it (``cfA123host``, ``dfB123host``): anything
    else, a ``/`` or ``..`` above all, is refused (BSD refuses ``/``, lpd-protocol.md §5)."""
    if len(name) > MAX_FILE_NAME or _file_name_parts(name) is None or ".." in name:
        raise LpdProtocolError(f"a bad job file name '{visible(name)[:80]}'")


def file_job(name: str) -> tuple[int, str]:
    """The job number and host part of a checked job file name (``cfA634localhost``:
    634, ``localhost``): what a server compares to know a job sent again."""
    check_file_name(name)
    parts = _file_name_parts(name)
    assert parts is not None
    return int(parts[0]), parts[1]


# --- job numbers and file names -----------------------------------------------------------
class JobNames(FrozenStruct):
    """The number and file names of one job on the wire (RFC §7, lpd-protocol.md §5).

    ``digits`` 3 is what RFC 1179, BSD, CUPS and LPRng by default write and every server
    accepts; 6 is LPRng's ``longnumber`` form, for LPRng servers only. ``letter`` is the
    ``cf`` name's priority letter: ``A`` everywhere, LPRng writes the class's (``cfZ``).
    """

    __slots__ = _fields = ("number", "host", "digits", "letter")
    number: int
    host: str
    digits: int
    letter: str

    def __init__(self, number: int, host: str, digits: int = 3, letter: str = "A") -> None:
        self._assign(locals())

    @property
    def control(self) -> str:
        return f"cf{self.letter}{self.number:0{self.digits}d}{self.host}"

    def data(self, index: int) -> str:
        """The ``index``-th data file (0: ``dfA``); LPRng takes 52 (lpd-protocol.md §4)."""
        if not 0 <= index < len(DATA_LETTERS):
            raise LpdProtocolError(f"a job has at most {len(DATA_LETTERS)} data files")
        return f"df{DATA_LETTERS[index]}{self.number:0{self.digits}d}{self.host}"


def job_number(job_id: str, digits: int = 3) -> int:
    """lpfilter's job id (six digits, more when the queue grows) cut to the wire's digits;
    an id without digits (never made by lpfilter) gets a stable number from its text."""
    if digits not in (3, 6):
        raise LpdProtocolError("LPD job numbers have 3 (RFC 1179) or 6 (LPRng) digits")
    if job_id.isascii() and job_id.isdigit():
        number = int(job_id)
    else:
        from zlib import crc32  # (an extension module to load: only for such an id)
        number = crc32(job_id.encode("utf-8", "surrogateescape"))
    return number % (1000 if digits == 3 else 1_000_000)


def name_host(host: str, limit: int = MAX_NAME_HOST) -> str:
    """The host part of a file name: letters, digits, dot and dash (anything else would
    be a path or a separator to some server; never ``..``), at most ``limit`` characters.
    LPRng writes its full host name and LPRng and BSD servers take it; pass 15 to cut it
    as CUPS does for old servers with short file names."""
    host = "".join([c if c in _NAME_HOST_OK else "_" for c in host[:limit]])
    while ".." in host:  # a run of dots becomes one
        host = host.replace("..", ".")
    return host.strip(".") or "localhost"


def job_names(job_id: str, host: str, *, digits: int = 3, job_class: str = "") -> JobNames:
    """The names a job's files get; with a class, its first letter as LPRng uses it."""
    first = job_class[:1].upper()
    letter = first if first.isascii() and first.isalpha() else "A"
    return JobNames(job_number(job_id, digits), name_host(host), digits, letter)


# --- acknowledgements ---------------------------------------------------------------------
class AckKind(Enum):
    """What a non-zero acknowledgement means (LPRng's names, lpd-protocol.md §3)."""

    OK = "ok"
    #: 1, ACK_STOP_Q: no spooling to that queue (disabled, unknown, not allowed): someone
    #: must change something at the server.
    STOP_QUEUE = "queue refused"
    #: 2, ACK_RETRY: over a size limit, no disk space, spooling disabled: try later.
    RETRY = "try later"
    #: 3, ACK_FAIL: this job is bad.
    FAIL = "job refused"
    #: BSD's refusal at connect time: a text line, no code (host or port not allowed).
    REFUSED = "connection refused"
    #: Any other octet: the RFC says only "failure"; LPRng and CUPS retry.
    OTHER = "failure"


_KINDS = {0: AckKind.OK, 1: AckKind.STOP_QUEUE, 2: AckKind.RETRY, 3: AckKind.FAIL}
#: Kinds that will not get better by waiting.
PERMANENT = frozenset({AckKind.STOP_QUEUE, AckKind.FAIL, AckKind.REFUSED})


class Ack(FrozenStruct):
    """An acknowledgement: its code (-1 for a BSD text refusal) and the server's reason."""

    __slots__ = _fields = ("code", "kind", "reason")
    code: int
    kind: AckKind
    reason: str

    def __init__(self, code: int, kind: AckKind, reason: str = "") -> None:
        self._assign(locals())

    @property
    def ok(self) -> bool:
        return self.kind is AckKind.OK

    @property
    def permanent(self) -> bool:
        return self.kind in PERMANENT

    def words(self) -> str:
        """One line for a status or log: the code's meaning and the server's reason."""
        head = self.kind.value if self.code < 0 else f"{self.kind.value} (code {self.code})"
        return f"{head}: {self.reason}" if self.reason else head


def parse_ack(data: bytes) -> Ack:
    """The octet and any text after it (the caller reads a bounded amount). LPRng sends a
    reason after a non-zero octet; BSD sends only text, ``lpd [@host]: ...`` (§3)."""
    if not data:
        raise LpdProtocolError("the server closed without an acknowledgement")
    code = data[0]
    if 0x20 <= code < 0x7F:  # text, no code: BSD's fhosterr
        return Ack(-1, AckKind.REFUSED, reason_text(data))
    return Ack(code, _KINDS.get(code, AckKind.OTHER), reason_text(data[1:]))


def reason_text(data: bytes, limit: int = MAX_REASON) -> str:
    """A server's reason as one bounded, visible line (its lines joined by spaces)."""
    text = data[:MAX_ACK_READ].decode("utf-8", "replace")
    text = " ".join(visible(line.strip()) for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def ack(code: int, reason: str = "") -> bytes:
    """What a server sends: one octet, then (LPRng's habit) a reason line if not 0."""
    if not 0 <= code <= 255:
        raise LpdProtocolError(f"no acknowledgement code {code}")
    if code == 0 or not reason:
        return bytes([code])
    line = reason_text(reason.encode("utf-8", "surrogateescape"))
    return bytes([code]) + line.encode("utf-8", "surrogateescape") + b"\n"


# --- status replies -----------------------------------------------------------------------
def status_lines(data: bytes, *, max_lines: int = MAX_STATUS_LINES,
                 max_line: int = MAX_STATUS_LINE) -> list[str]:
    """A status or remove reply (free text, lpd-protocol.md §7.2) safe for a terminal:
    control characters visible, lines cut at ``max_line``, at most ``max_lines`` (the
    last then says how many were left out). Never parsed for meaning (§8)."""
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    shown = [_cut(visible(line.removesuffix("\r")), max_line) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        shown[-1] = _cut(f"... ({len(lines) - max_lines + 1} more lines)", max_line)
    return shown


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."
