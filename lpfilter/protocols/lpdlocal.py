"""lpfilter's own LPD request for local users: job control and full status over the Unix
socket, as pure functions for the client (``lpfilter hold`` run by an ordinary user) and
the print server.

The request has the form of LPRng's control request (the one its ``lpc`` sends, code
``\\x06``, lpd-protocol.md §1): ``\\x06QUEUE USER ACTION [OPERAND ...]\\n``. ``USER`` is
what the client says it is; the server never believes it (it takes the kernel's peer
credentials) and takes the request on the Unix socket only. ACTION is ``cancel``, ``hold``,
``release`` or ``requeue`` with operands ``N`` (job N of the queue: an error if it is
missing), ``~N`` (job N if it is in this queue: ``-a`` looks in every queue), ``all``
(every job of the user) and ``first`` (the first job the user may change: a bare
``lprm``), or ``status`` or ``reread`` (``lpc reread``) without operands,
or ``find`` with the origins of jobs (``cfA123host:DIGEST``, as the server records a job
it received): the jobs an ordinary user's ``print`` sent, without the whole queue's
status (a queue keeping 400 finished jobs answered status in 14 ms, 190 KB).
Code 6 from a TCP peer is LPRng's lpc request instead (``protocols.lpdlpc``).

The answer is one JSON object and then the server closes: ``{"ok": true, ...}`` with the
action's result (``find``: ``"jobs"``, those of the origins the queue has), or
``{"ok": false, "kind": ..., "error": ...}`` (``kind`` names the
error's family: access, config, no_such_printer, usage, spool_full, refused). It is
JSON, not LPD's free text, so that the client shows the same lines and exits with the
same status as the spool's owner running the command.
"""
from __future__ import annotations

from lpfilter import jsontext
from lpfilter.protocols import MAX_LINE, LpdProtocolError
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

#: Where the daemon listens for local users when root runs it (server/local.py), and where
#: a client looks unless ``$LPFILTER_SOCKET`` says otherwise.
DEFAULT_SOCKET = "/run/lpfilter/lpfilter.sock"

#: LPRng's REQ_CONTROL (lp.h): the request code of lpc's requests.
CONTROL = 6
JOB_ACTIONS = ("cancel", "hold", "release", "requeue")
#: ``reread``: the daemon rereads the printcap (lpc reread by a spool owner who may not
#: signal the daemon's process).
ACTIONS = (*JOB_ACTIONS, "status", "reread", "find")
#: The most of an answer a client reads: a queue's status with thousands of tickets.
MAX_REPLY = 16 * 1024 * 1024
#: The control file line of ``print --hold`` sent by a local user: the server holds the
#: job as it queues it (O is none of the lines RFC 1179, BSD, LPRng or CUPS write,
#: lpd-protocol.md §4; from a TCP peer the line means nothing).
HOLD_LINE = ("O", "hold")
#: Error kinds an answer may carry.
KINDS = ("access", "config", "no_such_printer", "usage", "spool_full", "refused")

#: The server's patterns (``parse_control``): ``re`` is imported there, not by a client.
_SEPARATORS = rb"[ \t\v\f]+"
_OPERAND = r"all|first|~?[0-9]{1,9}"


def client_socket_path(environ: Mapping[str, str]) -> str:
    """Where a client looks for the daemon: ``$LPFILTER_SOCKET``, else DEFAULT_SOCKET."""
    return environ.get("LPFILTER_SOCKET") or DEFAULT_SOCKET


class ControlRequest(FrozenStruct):  # (not a dataclass: an ordinary user's print imports this)
    """A parsed local request: the queue, the user the client claims, the action and the
    jobs: ``named`` must exist, ``anywhere`` may be missing, ``every`` is ``all``,
    ``first`` is ``first``."""

    __slots__ = _fields = ("queue", "user", "action", "named", "anywhere", "every", "origins",
                           "first")
    queue: str
    user: str
    action: str
    named: frozenset[int]
    anywhere: frozenset[int]
    every: bool
    #: ``find``: the origins asked for.
    origins: tuple[str, ...]
    first: bool

    def __init__(self, queue: str, user: str, action: str,
                 named: frozenset[int] = frozenset(), anywhere: frozenset[int] = frozenset(),
                 every: bool = False, origins: tuple[str, ...] = (),
                 first: bool = False) -> None:
        self._assign(locals())


def _word(value: str, what: str) -> bytes:
    if not value or not value.isprintable() or any(c.isspace() for c in value):
        raise LpdProtocolError(f"the {what} {value!r} cannot be sent in a request")
    return value.encode("utf-8", "surrogateescape")


def control_request(queue: str, user: str, action: str, *, named: tuple[int, ...] = (),
                    anywhere: tuple[int, ...] = (), every: bool = False,
                    origins: tuple[str, ...] = (), first: bool = False) -> bytes:
    """The request line; refused when a word cannot be carried or it is too long."""
    if action not in ACTIONS:
        raise LpdProtocolError(f"no local action {action!r}")
    operands = [str(n) for n in named] + [f"~{n}" for n in anywhere] + (["all"] if every
                                                                        else [])
    operands += ["first"] if first else []
    if action in ("status", "reread", "find") and operands:
        raise LpdProtocolError(f"{action} takes no job operands")
    _check_origins(action, origins)
    operands += origins
    words = [_word(queue, "queue name"), _word(user, "user name"), action.encode()]
    words += [o.encode() for o in operands]
    line = bytes([CONTROL]) + b" ".join(words) + b"\n"
    if len(line) > MAX_LINE:
        raise LpdProtocolError(f"a request longer than {MAX_LINE} bytes (name fewer jobs at"
                               " once)")
    return line


def parse_control(line: bytes) -> ControlRequest:
    """A local request as the server reads it (with or without its LF)."""
    import re
    if len(line) > MAX_LINE:
        raise LpdProtocolError(f"a request line longer than {MAX_LINE} bytes")
    body = line.removesuffix(b"\n")
    if not body or body[0] != CONTROL:
        raise LpdProtocolError(f"not a local request (code 0x{body[:1].hex() or 'none'})")
    words = [w.decode("utf-8", "surrogateescape") for w in re.split(_SEPARATORS, body[1:]) if w]
    if any(not w.isprintable() for w in words):
        raise LpdProtocolError("a request with a control character")
    if len(words) < 3:
        raise LpdProtocolError("a local request names the queue, the user and the action")
    queue, user, action, *operands = words
    if action not in ACTIONS:
        raise LpdProtocolError(f"no local action {action[:40]!r} (one of {', '.join(ACTIONS)})")
    if action == "find":
        return _find_request(queue, user, operands)
    bad = [o for o in operands if not re.fullmatch(_OPERAND, o, re.ASCII)]
    if bad or (action in ("status", "reread") and operands):
        raise LpdProtocolError(f"a bad operand {(bad or operands)[0][:40]!r} for {action}")
    return ControlRequest(queue, user, action,
                          frozenset(int(o) for o in operands if o[0].isdigit()),
                          frozenset(int(o[1:]) for o in operands if o[0] == "~"),
                          "all" in operands, first="first" in operands)


def _check_origins(action: str, origins: Sequence[str]) -> None:
    """``find`` names one or more origins, each printable ASCII without a space, at most
    200 characters (compared as they are, never used as a path); no other action any."""
    if action != "find":
        if origins:
            raise LpdProtocolError(f"{action} takes no origins")
        return
    if not origins:
        raise LpdProtocolError("find names at least one origin")
    for origin in origins:
        if not (0 < len(origin) <= 200 and origin.isascii() and origin.isprintable()
                and " " not in origin):
            raise LpdProtocolError(f"a bad origin {origin[:40]!r} for find")


def _find_request(queue: str, user: str, operands: list[str]) -> ControlRequest:
    _check_origins("find", operands)
    return ControlRequest(queue, user, "find", origins=tuple(dict.fromkeys(operands)))


def reply(answer: dict[str, Any]) -> bytes:
    """The server's answer: one JSON object (text made ASCII), one line."""
    import json  # (the server's: a client only reads answers)
    return json.dumps(answer, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def bounded_reply(answer: dict[str, Any]) -> bytes:
    """The answer, or, when it would be longer than a client reads (MAX_REPLY), an error
    saying so: the server never sends more than that."""
    data = reply(answer)
    if len(data) <= MAX_REPLY:
        return data
    return error_reply("refused", f"the answer would be {len(data)} bytes, more than the"
                                  f" {MAX_REPLY} a client reads; ask about fewer jobs")


def error_reply(kind: str, error: str, **extra: Any) -> bytes:
    if kind not in KINDS:
        raise LpdProtocolError(f"no error kind {kind!r}")
    return reply({"ok": False, "kind": kind, "error": error, **extra})


def parse_reply(data: bytes) -> dict[str, Any]:
    """The answer as the client reads it (at most MAX_REPLY bytes): a JSON object with
    ``ok``, else LpdProtocolError."""
    if len(data) > MAX_REPLY:
        raise LpdProtocolError(f"an answer longer than {MAX_REPLY} bytes")
    try:
        answer = jsontext.loads(data.decode("utf-8"))
    except ValueError:  # not UTF-8, not JSON, or nested too deeply
        raise LpdProtocolError("an answer that is not lpfilter's (not JSON)") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise LpdProtocolError("an answer that is not lpfilter's (no \"ok\")")
    return answer
