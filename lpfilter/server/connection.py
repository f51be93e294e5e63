"""One client connection of the print server: its request line, read bounded, dispatched.

RFC 1179 §5: ``\\1`` print waiting jobs, ``\\2`` receive a job, ``\\3``/``\\4`` short and
long status, ``\\5`` remove; ``\\6`` from a TCP client is LPRng's lpc request
(``lpcserver``). A line starting with another byte is lpfilter's own request for a
client on the Unix socket (hold, release, requeue: ``local.serve_local_request``) and
refused for a network one. A status or remove request for the queue ``all`` is
answered for every queue served, as LPRng's lpd does (``lpq -Pall``). Everything a
client does wrong (a bad line, an unknown queue, silence, a dropped connection) is one
log line with its control characters made visible and an answer where the protocol has
one, never an exception: the daemon serves on.
"""
from __future__ import annotations

import socket
import threading

from lpfilter import logs
from lpfilter.errors import LpfilterError
from lpfilter.protocols import lpd
from lpfilter.protocols.lpd import LpdProtocolError, Request, RequestLine
from lpfilter.server.peer import Peer, Queues
from lpfilter.server.spoolcheck import SpoolChecks
from lpfilter.server.wire import ClientError, LineTooLong, StopPipe, Wire
from lpfilter.spool.lease import holder_of, holder_words
from lpfilter.spool.records import QueueRecords
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.job import Job
    from lpfilter.printcap import Entry
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)


def serve_connection(sock: socket.socket, peer: Peer, queues: Queues, *,
                     idle_timeout: float, stop: threading.Event,
                     stop_pipe: StopPipe | None = None,
                     checks: SpoolChecks | None = None) -> None:
    """Serve one connection to its end; the caller closes ``sock`` (``stop_pipe``: the
    listener's, fired with ``stop``, so that waits need no tick; ``checks``: its spool
    checks, made once per queue)."""
    wire = Wire(sock, idle_timeout=idle_timeout, stop=stop, stop_pipe=stop_pipe)
    try:
        line = wire.line(lpd.MAX_LINE)
        if line is None:
            log.debug("%s: closed without a request", peer)
            return
        _dispatch(wire, line, peer, queues, checks or SpoolChecks())
    except LineTooLong as exc:
        log.warning("%s: %s", peer, visible(str(exc)))
        _answer_too_long(wire, exc.head)
    except (ClientError, LpdProtocolError) as exc:
        log.warning("%s: %s", peer, visible(str(exc)))
    except LpfilterError as exc:  # the spool: full disk, a queue's directory gone...
        log.error("%s: %s", peer, visible(str(exc)))
        _answer_quietly(wire, lpd.ack(2, "the server cannot take it now; try later"))
    except OSError as exc:
        log.error("%s: %s", peer, visible(str(exc)))
    finally:
        wire.close()


def _answer_too_long(wire: Wire, code: bytes) -> None:
    """A request line past RFC 1179's bound, answered where its code has an answer: a job
    LPRng's "malformed" (1), a status or remove request a line of text."""
    said = f"a request line longer than {lpd.MAX_LINE} bytes"
    answer = {b"\x02": lpd.ack(1, said), b"\x03": f"{said}\n".encode(),
              b"\x04": f"{said}\n".encode(), b"\x05": f"{said}\n".encode()}.get(code)
    if answer:
        _answer_quietly(wire, answer)
        wire.drain()


def _answer_quietly(wire: Wire, data: bytes) -> None:
    """An error answer to a client that may be gone already."""
    try:
        wire.send(data)
    except ClientError:
        pass


def _dispatch(wire: Wire, line: bytes, peer: Peer, queues: Queues,
              checks: SpoolChecks) -> None:
    """The request line's answer: lpfilter's own requests only for a local peer, a bad
    line or an unknown queue answered and logged here, so that ``_serve`` meets only a
    well-formed request for a served queue (whose store it must not keep open)."""
    if line[:1] == b"\x06" and peer.address:  # LPRng's lpc over TCP (server/lpcserver.py)
        from lpfilter.server.lpcserver import serve_lpc
        serve_lpc(wire, line, peer, queues)
        return
    if line[:1] not in (b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"):
        if peer.local:
            from lpfilter.server.local import serve_local_request
            serve_local_request(wire, line, peer, queues)
            return
        log.warning("%s: refused a request that is not LPD: '%s'", peer,
                    visible(line[:80].decode("latin-1")))
        wire.send(lpd.ack(1, "not an LPD request (RFC 1179 codes 1-5 only)"))
        return
    try:
        request = lpd.parse_request(line)
    except LpdProtocolError as exc:
        log.warning("%s: refused a bad request line: %s", peer, visible(str(exc)))
        wire.send(lpd.ack(1, str(exc)))
        return
    found = queues.find(request.queue)
    if found is None and request.queue.lower() == ALL and request.code in _EVERY:
        _every_queue(wire, request, peer, queues, checks)
        return
    if found is None:
        log.warning("%s: %s for a queue not served here: %s", peer, _WHAT[request.code],
                    visible(request.queue))
        wire.send(_no_queue(request))
        return
    _serve_closing(wire, request, peer, queues, found, checks)


def _serve_closing(wire: Wire, request: RequestLine, peer: Peer, queues: Queues,
                   found: tuple[Entry, SpoolStore], checks: SpoolChecks) -> None:
    """``_serve`` for the queue ``found``, whose store is closed after."""
    entry, store = found
    try:
        _serve(wire, request, peer, queues, entry, store, checks)
    finally:
        store.close()


#: The queue name that means every queue served, as LPRng's lpd takes it in a status or
#: remove request (``lpq -Pall``, ``lprm -Pall``), unless a queue has that name.
ALL = "all"
_EVERY = (Request.SHORT_STATUS, Request.LONG_STATUS, Request.REMOVE)


def _every_queue(wire: Wire, request: RequestLine, peer: Peer, queues: Queues,
                 checks: SpoolChecks) -> None:
    """A status or remove request for ``all``: each served queue's answer in turn, as
    LPRng's lpd gives it (one queue's answer is bounded; so is the number of queues)."""
    for name in queues.names():
        found = queues.find(name)
        if found is not None:  # (else retired since the names were read)
            _serve_closing(wire, request, peer, queues, found, checks)


_WHAT = {Request.PRINT_WAITING: "print-waiting-jobs", Request.RECEIVE_JOB: "a job",
         Request.SHORT_STATUS: "status", Request.LONG_STATUS: "status",
         Request.REMOVE: "remove"}


def _no_queue(request: RequestLine) -> bytes:
    """The answer for a queue this server does not serve: an acknowledgement where the
    client waits for one, else a status-style text line (lpd-protocol.md §7.2)."""
    why = f"no queue '{visible(request.queue)}' is served here"
    if request.code in (Request.PRINT_WAITING, Request.RECEIVE_JOB):
        return lpd.ack(1, why)
    return f"Printer: {visible(request.queue)} - ERROR: {why}\n".encode(
        "utf-8", "surrogateescape")


def _serve(wire: Wire, request: RequestLine, peer: Peer, queues: Queues,
           entry: Entry, store: SpoolStore, checks: SpoolChecks) -> None:
    """One RFC 1179 request for a served queue; each answer is sent before anything the
    client waits for next (a job's first \\0 before its subcommands are read)."""
    code = request.code
    if code is Request.PRINT_WAITING:
        queues.wake(entry.name)
        wire.send(b"\0")
    elif code is Request.RECEIVE_JOB:
        from lpfilter.server.receive import receive_job

        def queued(job: Job) -> None:  # each job prints while the connection goes on
            log.info("%s: received job %s-%s (%s, %d bytes, user %s)", peer,
                     visible(entry.name), job.id, visible(job.name), job.size,
                     visible(job.user))
            queues.wake(entry.name)

        wire.send(b"\0")
        receive_job(wire, entry, store, peer, committed=queued, checks=checks)
    elif code in (Request.SHORT_STATUS, Request.LONG_STATUS):
        wire.send(_status(request, entry, store).encode("utf-8", "surrogateescape"))
    else:
        from lpfilter.server.remove import remove_jobs
        text = remove_jobs(entry, store, peer, request.agent, request.items)
        wire.send(text.encode("utf-8", "surrogateescape"))


def _status(request: RequestLine, entry: Entry, store: SpoolStore) -> str:
    from lpfilter.server.status import long_status, short_status
    if request.code is Request.SHORT_STATUS:
        return short_status(entry, store, request.items)
    holder = holder_of(store.state)
    served_by = holder_words(holder, since=True) if holder else "no server active"
    message = QueueRecords(entry).last_status()
    return long_status(entry, store, request.items, served_by=served_by, message=message)
