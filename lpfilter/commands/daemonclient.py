"""An ordinary user's commands through the print server: ``print``, ``status``, ``cancel``,
``hold``, ``release`` and ``requeue`` for a queue whose spool the user may not write.

The daemon (``lpfilter watch``) listens on a Unix socket (``$LPFILTER_SOCKET``, else
``protocols.lpdlocal.DEFAULT_SOCKET``) and knows the user from the kernel. A job goes in as LPD's
receive-job; everything else is lpfilter's own local request (``protocols.lpdlocal``),
whose JSON answer lets each command show the same lines and exit with the same status
as when the spool's owner runs it. No daemon there: one line saying so and how to start
it, exit status 5 (the user still may not use the spool).
"""
from __future__ import annotations

import _socket
import os
from collections.abc import Mapping

from lpfilter.errors import (AccessError, ConfigError, LpfilterError, NoSuchPrinter,
                             SpoolFull, UsageError)
from lpfilter.job import user_name
from lpfilter.protocols import LpdProtocolError, lpdlocal
from lpfilter.protocols.lpdlocal import client_socket_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lpfilter.spool.jobctl import Outcome, Selection
    from lpfilter.spool.queueinfo import JobData, QueueData

#: Seconds the daemon may take to accept, and between two pieces of its answer (it may
#: wait for a queue's ticket lock while a worker writes a ticket).
TIMEOUT = 60.0


class NoDaemon(AccessError):
    """The user needs the print server and none answers on its socket."""


def reachable(environ: Mapping[str, str]) -> bool:
    """Does a daemon answer on the socket (used only to decide, never to report)?"""
    try:
        connect(environ, None).close()
    except NoDaemon:
        return False
    return True


def connect(environ: Mapping[str, str], why: AccessError | None) -> _socket.socket:
    """A connection to the daemon (the caller closes it); NoDaemon (one line: ``why`` the
    daemon is needed, that none runs, and how to start it) when there is none. The C
    socket type: every method used is its own, and the ``socket`` module would cost each
    command 15-25 M instructions to import (four enums of its constants, ``selectors``)."""
    path = client_socket_path(environ)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        head = f"{why}; and" if why is not None else "lpfilter:"
        raise NoDaemon(f"{head} no print server answers on {path} ({reason}) to do it for"
                       " you: start one with 'lpfilter watch' (as root or the spool's owner),"
                       " or set LPFILTER_SOCKET to its socket",
                       queue=why.queue if why else "") from None
    return sock


def ask(environ: Mapping[str, str], request: bytes, why: AccessError | None) -> dict[str, Any]:
    """Send one local request, read the answer to the end (bounded): the result, or the
    daemon's refusal raised as the same error the command would have met itself."""
    sock = connect(environ, why)
    try:
        sock.sendall(request)
        answer = lpdlocal.parse_reply(_read_all(sock))
    except (OSError, LpdProtocolError) as exc:
        raise AccessError(f"the print server on {client_socket_path(environ)} did not"
                          f" answer properly: {exc}") from None
    finally:
        sock.close()
    if not answer["ok"]:
        raise _error(answer)
    return answer


def _read_all(sock: _socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= lpdlocal.MAX_REPLY:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _error(answer: dict[str, Any]) -> LpfilterError:
    """The daemon's refusal as the error whose exit status it has."""
    text = str(answer.get("error") or "the print server refused the request")
    kind = answer.get("kind")
    if kind == "spool_full":
        return SpoolFull(str(answer.get("directory", "")), int(answer.get("errno") or 28))
    classes: dict[Any, type[LpfilterError]] = {
        "access": AccessError, "config": ConfigError, "no_such_printer": NoSuchPrinter,
        "usage": UsageError}
    return classes.get(kind, LpfilterError)(text)


def control(environ: Mapping[str, str], queue: str, action: str, selection: Selection,
            why: AccessError, *, quiet: bool = False) -> list[Outcome]:
    """cancel, hold, release or requeue through the daemon; ``quiet`` (``-a``): a queue
    the daemon does not serve, or cannot use, has no jobs of the user."""
    from lpfilter.spool.jobctl import Outcome
    request = lpdlocal.control_request(queue, user_name(os.getuid()), action,
                                       named=tuple(sorted(selection.named)),
                                       anywhere=tuple(sorted(selection.anywhere)),
                                       every=selection.every, first=selection.first)
    try:
        answer = ask(environ, request, why)
    except (NoSuchPrinter, AccessError):
        if quiet:
            return []
        raise
    return [Outcome(int(r["number"]), str(r["kind"]), str(r["job"]), str(r["user"]),
                    str(r["said"])) for r in answer.get("results", [])]


def status(environ: Mapping[str, str], queue: str, why: AccessError) -> QueueData:
    """The queue's status as the daemon reads it."""
    answer = ask(environ, lpdlocal.control_request(queue, user_name(os.getuid()), "status"),
                 why)
    data: QueueData = answer["queue"]
    return data


def find(environ: Mapping[str, str], queue: str, origins: list[str],
         why: AccessError) -> list[JobData]:
    """The queue's jobs of these origins (``cfname:digest``, as the server records a job
    it received), without the whole queue's status; UsageError from a daemon older than
    the request (the caller then asks the status)."""
    request = lpdlocal.control_request(queue, user_name(os.getuid()), "find",
                                       origins=tuple(origins))
    jobs: list[JobData] = ask(environ, request, why)["jobs"]
    return jobs


def may_help(sd: str) -> bool:
    """Can the daemon do what this user may not do in spool ``sd``? Not for root (who may
    do everything), nor for a spool directory that does not exist (the daemon's is the
    same: that error is said as it is)."""
    if os.geteuid() == 0:
        return False
    try:
        os.stat(sd)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # behind a directory closed to this user
    return True
