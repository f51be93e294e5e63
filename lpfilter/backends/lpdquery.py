"""Asking an LPD server about its queue (RFC 1179 §5.3-5.5): status, short or long, and
removing jobs, as LPRng's lpq and lprm do.

The reply is free text that the server ends by closing the connection (lpd-protocol.md
§7.2). It comes from another host, so it is read bounded in bytes (MAX_REPLY: past it the
rest is left unread and the lines say "(reply cut ...)") and in time (each read waits at
most ``timeout``, the whole reply at most ``total``), and it is handed back only as lines
made safe for a terminal (``status_lines``): never parsed for meaning.

A connection that cannot be opened raises what ``connect.open_connection`` raises: a
NotConnected error (ConnectRefused, Unreachable, NameNotFound) carrying ``host%port``.
"""
from __future__ import annotations

import _socket
import time

from lpfilter.backends.connect import open_connection
from lpfilter.errors import ConnectionLost, PrinterOffline
from lpfilter.protocols import lpd

#: The most of a reply read: LPRng's long status of 500 jobs is about 50 KiB.
MAX_REPLY = 1024 * 1024
#: One read's size.
CHUNK = 64 * 1024
#: The whole reply may take this many times the per-read timeout.
TOTAL_FACTOR = 3


def remote_status(host: str, port: int, queue: str, *, long: bool,
                  items: tuple[str, ...] = (), timeout: float,
                  total: float | None = None) -> list[str]:
    """The server's status of ``queue`` (limited to users/job numbers ``items``), as
    lines safe to show; ``long`` asks for lpq's long form, else ``lpq -s``'s."""
    return _ask(host, port, lpd.status(queue, items, long=long), timeout, total)


def remote_remove(host: str, port: int, queue: str, agent: str,
                  items: tuple[str, ...] = (), *, timeout: float,
                  total: float | None = None) -> list[str]:
    """Ask the server to remove ``items`` (job numbers, user names, ``all``) of ``queue``
    on behalf of ``agent``; no items means the agent's jobs, as LPRng's lprm sends it.
    Returns the server's answer as lines safe to show."""
    return _ask(host, port, lpd.remove(queue, agent, items), timeout, total)


def remote_control(host: str, port: int, request: bytes, *, timeout: float) -> list[str]:
    """Send an lpc request (``protocols.lpdlpc``) and return the server's answer as lines
    safe to show, as LPRng's lpc prints it."""
    return _ask(host, port, request, timeout, None)


def _ask(host: str, port: int, request: bytes, timeout: float,
         total: float | None) -> list[str]:
    """Send one request line and read the answer until the server closes (bounded)."""
    where = f"{host}%{port}"
    sock = open_connection(host, port, timeout=timeout, interrupted=lambda: None,
                           keepalive=False, linger=0)
    with sock:
        sock.settimeout(timeout)
        try:
            sock.sendall(request)
        except OSError as exc:
            raise ConnectionLost(f"{where}: the connection was lost while sending the"
                                 f" request ({exc.strerror or exc})", host=where) from None
        data, note = read_reply(sock, timeout,
                                total if total is not None else TOTAL_FACTOR * timeout)
    if not data and note:
        lost = note.startswith("(the connection was lost")
        error = ConnectionLost if lost else PrinterOffline
        raise error(f"{where}: {note.strip('()')}", host=where)
    lines = lpd.status_lines(data)
    return [*lines, note] if note else lines


def read_reply(sock: _socket.socket, timeout: float, total: float,
               limit: int = MAX_REPLY) -> tuple[bytes, str]:
    """Everything the server sends until it closes, at most ``limit`` bytes, each read
    waiting at most ``timeout`` seconds and all of them ``total``; and a note ("" when
    the server closed in time) saying why the reading stopped otherwise."""
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + total
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            if not chunks:
                return b"", f"(no answer within {total:g} s)"
            return b"".join(chunks), f"(reply cut: no end within {total:g} s)"
        sock.settimeout(min(timeout, left))
        try:
            chunk = sock.recv(min(CHUNK, limit + 1 - size))
        except TimeoutError:
            if left <= timeout:
                continue  # the overall deadline: said above
            if not chunks:
                return b"", f"(no answer within {timeout:g} s)"
            return b"".join(chunks), f"(reply cut: nothing more within {timeout:g} s)"
        except OSError as exc:
            return b"".join(chunks), f"(the connection was lost: {exc.strerror or exc})"
        if not chunk:
            return b"".join(chunks), ""
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], f"(reply cut: more than {limit} bytes)"
