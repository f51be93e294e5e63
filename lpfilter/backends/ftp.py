"""``lp=ftp://[user[:password]@]host[:port]/[path]``: HP JetDirect FTP printing.

Per job: (a session: connect, log in, ``CWD`` to the port directory), ``TYPE I``, a data
connection (passive, or active by ``ftp_active`` or when passive is refused), ``STOR``
under a unique safe name, the data with sendfile, end of data by closing the connection,
then the server's ``226``: the print server has every byte (FTP has no back channel, so
"sent" is all it can mean). A session is reused for the next job of a batch unless it sat
idle for ``ftp_idle`` seconds (JetDirect cuts idle sessions at 270 or 900 s); the worker
closes it (``QUIT``) when the queue runs dry. No more than ``ftp_sessions`` control
connections to one server exist across all lpfilter processes (see ``ftpsession``).
Facts: printer-protocols.md §4.
"""
from __future__ import annotations

import _socket
import socket
import time

from lpfilter import logs
from lpfilter.backends.request import SendResult
from lpfilter.backends.connect import open_connection, readable
from lpfilter.backends.ftpsession import Control, Request, Session, failure, open_session
from lpfilter.backends.stream import TICK, Pump, send_body, unsent
from lpfilter.errors import ConnectionLost, JobRefused, LpfilterError, TransientError
from lpfilter.protocols import ftp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap.destination import Ftp

log = logs.getLogger(__name__)


class FtpBackend:
    """Sends jobs to an FTP print server, keeping one session open across a batch."""

    def __init__(self) -> None:
        self._session: Session | None = None

    def close(self) -> None:
        """End the kept session politely (``QUIT``) and free its slot."""
        if self._session is not None:
            self._session.quit()
            self._session = None

    def send(self, request: Request) -> SendResult:
        destination: Ftp = request.destination  # type: ignore[assignment]
        key = _key(request)
        session = self._reusable(request, key)
        reused = session is not None
        if session is None:
            session = open_session(request, destination, key)
        session.interrupted = request.reporter.interrupted
        try:
            try:
                session.command("TYPE", "I", step="TYPE I", expect=(2,))
            except TransientError:
                if not reused:
                    raise
                # The server cut the kept session (its idle limit): no byte of this job
                # went out, so a fresh session is simply the same try.
                log.info("%s: the kept session was closed by the server; reconnecting",
                         session.where)
                session.abort()
                session = open_session(request, destination, key)
                session.command("TYPE", "I", step="TYPE I", expect=(2,))
            result = _store(session, request)
        except BaseException:
            session.abort()
            self._session = None
            raise
        session.last_used = time.monotonic()
        self._session = session
        return result

    def _reusable(self, request: Request, key: str) -> Session | None:
        """The kept session, if it is for this server and login and not idle too long."""
        session, self._session = self._session, None
        if session is None:
            return None
        idle_limit = request.settings.idle
        if (session.key != key or idle_limit <= 0
                or time.monotonic() - session.last_used >= idle_limit):
            session.quit()
            return None
        return session


def _key(request: Request) -> str:
    settings = request.settings
    return "\0".join((request.destination.display(), settings.user, settings.password_file))


def _store(session: Session, request: Request) -> SendResult:
    """One file: data connection, ``STOR``, the bytes, and the server's final reply."""
    settings, job = request.settings, request.job
    name = ftp.store_name(settings.queue, job.id, job.name)
    started = time.monotonic()
    data = _open_data(session, request)
    try:
        reply = session.command("STOR", name, step=f"STOR {name}", expect=(1,))
        if isinstance(data, _Listener):  # active mode: the server connects to us now
            data = _accept(data, session, request)
        stall = settings.stall
        pump = Pump(data.fileno(), interrupted=request.reporter.interrupted,
                    first_byte=request.reporter.first_byte, idle_timeout=stall,
                    what=session.where, progress=request.progress)
        try:
            sent = send_body(pump, request, settings.framing)
        except OSError as exc:
            raise _dropped(session, request, exc) from None
        finally:
            pump.close()
        try:
            data.shutdown(socket.SHUT_WR)  # stream mode: end of file is the end of the data
        except OSError:
            pass  # the server closed first: its reply says whether it had everything
        reply = _final_reply(session, request, data, stall)
    finally:
        data.close()
    if reply.kind != 2:
        raise failure(reply, session.where, f"STOR {name} (after {request.sent} bytes)")
    seconds = time.monotonic() - started
    return SendResult(sent, "sent", None,
                      f"sent: {sent} bytes to {session.where} as {name} in {seconds:.1f} s"
                      f" (server: {reply.words(60)})")


class _Listener(socket.socket):
    """Active mode's listening socket, until the server connects to it."""


def _open_data(session: Session, request: Request) -> _socket.socket:
    """A data connection (passive) or a listening socket announced with PORT/EPRT (active);
    passive refused, by reply or by connection, turns the session to active mode."""
    if session.passive:
        six = session.control.sock.family == socket.AF_INET6
        reply = session.command("EPSV" if six else "PASV", step="PASV", expect=(2, 5))
        if reply.kind == 2:
            try:
                port = ftp.parse_epsv(reply.text) if six else ftp.parse_pasv(reply.text)[1]
            except ftp.ProtocolError as exc:
                raise TransientError(f"{session.where}: {exc}") from None
            # The server's own address, whatever the reply says (no FTP bounce).
            host = session.control.sock.getpeername()[0]
            try:
                return open_connection(host, port, timeout=session.connect_timeout,
                                       interrupted=request.reporter.interrupted,
                                       keepalive=session.keepalive, linger=0)
            except TransientError as exc:
                reason = f"the passive data connection failed ({exc.message})"
        else:
            reason = f"passive mode refused ({reply.words(60)})"
        session.passive = False
        request.reporter.status(f"{reason}; using active mode")
        log.info("%s: %s; using active mode", session.where, reason)
    return _listen(session)


def _listen(session: Session) -> socket.socket:
    local = session.control.sock.getsockname()
    family = session.control.sock.family
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.bind((local[0], 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        if family == socket.AF_INET6:
            session.command("EPRT", ftp.eprt_argument(local[0], port), step="EPRT",
                            expect=(2,))
        else:
            session.command("PORT", ftp.port_argument(local[0], port), step="PORT",
                            expect=(2,))
    except BaseException:
        listener.close()
        raise
    marked = _Listener(fileno=listener.detach())
    marked.setblocking(False)
    return marked


def _accept(listener: socket.socket, session: Session, request: Request) -> socket.socket:
    """Active mode: wait (interruptibly) for the server's data connection, from the
    control connection's peer only: whoever else connects first to the listening port
    (another host, a local user reading it from /proc/net/tcp) would take the job's data."""
    wait = session.connect_timeout if session.connect_timeout > 0 else 60.0
    deadline = time.monotonic() + wait
    server = _host_of(session.control.sock.getpeername()[0])
    try:
        while True:
            request.check()
            if time.monotonic() >= deadline:
                raise TransientError(f"{session.where}: the server did not open the active"
                                     " data connection")
            if readable(listener, TICK):
                conn, peer = listener.accept()
                if _host_of(peer[0]) != server:
                    log.warning("%s: refused a data connection from %s: not the server's"
                                " address", session.where, peer[0])
                    conn.close()
                    continue
                conn.setblocking(False)
                return conn
    finally:
        listener.close()


def _host_of(address: str) -> str:
    """An address as compared here: an IPv4-mapped IPv6 address as IPv4, no zone."""
    address = address.split("%", 1)[0].lower()
    return address.removeprefix("::ffff:") if address.count(".") == 3 else address


def _dropped(session: Session, request: Request, exc: OSError) -> LpfilterError:
    """The data connection broke during the transfer: the server's words if it said any."""
    reply = session.control.poll(wait=2.0)
    said = f"; the server said {reply.words(80)!r}" if reply is not None else ""
    if reply is not None and reply.kind == 5:
        return JobRefused(f"{session.where}: the server refused the data after"
                          f" {request.sent} bytes{said}")
    return ConnectionLost(f"{session.where}: the data connection was dropped after"
                          f" {request.sent} bytes ({exc.strerror or exc}){said}")


def _final_reply(session: Session, request: Request, data: _socket.socket,
                 stall: float) -> ftp.Reply:
    """The reply after the data: its wait is bounded by ``stall`` seconds without the
    server taking bytes, counted from the last byte it took."""
    waiting = unsent(data.fileno())

    def progressed() -> bool:
        nonlocal waiting
        now = unsent(data.fileno())
        request.progress(request.sent, now)
        moved, waiting = now < waiting, now
        return moved

    control: Control = session.control
    return control.reply(stall, step="the end of the transfer", progress=progressed,
                         interrupted=request.reporter.interrupted)
