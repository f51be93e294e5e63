"""LPRng's lpc request over TCP, as pure functions: what LPRng's ``lpc`` sends (and
``lpfilter lpc -P q@host`` sends the same) and the print server reads.

LPRng's lpc opens one connection per request and sends ``\\x06PRINTER USER ACTION
[ARG ...]\\n`` (REQ_CONTROL, lpd-protocol.md §1), then prints whatever text the server sends
until it closes. Observed on the wire from the Debian 3.8.B ``lpc``: ``lpc stop q`` sends
``\\x06q root stop q``, ``lpc hold q 12 bob`` ``\\x06q root hold q 12 bob``, ``lpc -a stop``
``\\x06all root stop``, ``lpc -U alice stop q`` ``\\x06q alice stop q``, ``lpc reread``
``\\x06q root reread``: the queue is named first and, when given on lpc's command line,
again as the first argument. USER is what the client claims (anyone may send any name).
lpfilter's own local request (``lpdlocal``, on the Unix socket only) has the same first
byte; the server tells them apart by the socket they come on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lpfilter.protocols.lpd import MAX_LINE, LpdProtocolError

CONTROL = 6
_SEPARATORS = re.compile(rb"[ \t\v\f]+")


@dataclass(frozen=True, slots=True)
class LpcRequest:
    """A parsed lpc request: the queue it is sent for, the user the client claims, the
    action (lower case) and its arguments."""

    queue: str
    user: str
    action: str
    args: tuple[str, ...] = ()


def lpc_request(queue: str, user: str, action: str, args: tuple[str, ...] = ()) -> bytes:
    """The request line, as LPRng's lpc builds it; refused when a word cannot be carried
    (empty, white space or a control character in it) or the line is too long."""
    words = [queue, user, action, *args]
    for word in words:
        if not word or not word.isprintable() or any(c.isspace() for c in word):
            raise LpdProtocolError(f"{word!r} cannot be sent in an lpc request")
    line = bytes([CONTROL]) + " ".join(words).encode("utf-8", "surrogateescape") + b"\n"
    if len(line) > MAX_LINE:
        raise LpdProtocolError(f"an lpc request longer than {MAX_LINE} bytes")
    return line


def parse_lpc(line: bytes) -> LpcRequest:
    """An lpc request as the server reads it (with or without its LF)."""
    if len(line) > MAX_LINE:
        raise LpdProtocolError(f"a request line longer than {MAX_LINE} bytes")
    body = line.removesuffix(b"\n")
    if not body or body[0] != CONTROL:
        raise LpdProtocolError(f"not an lpc request (code 0x{body[:1].hex() or 'none'})")
    words = [w.decode("utf-8", "surrogateescape") for w in _SEPARATORS.split(body[1:]) if w]
    if any(not w.isprintable() for w in words):
        raise LpdProtocolError("an lpc request with a control character")
    if len(words) < 3:
        raise LpdProtocolError("an lpc request names the queue, the user and the action")
    queue, user, action, *args = words
    return LpcRequest(queue, user, action.lower(), tuple(args))
