"""``lp=host%port``: the Socket API (HP JetDirect, AppSocket, port 9100).

One connection per job, opened only when the job is ready. Optional PJL sync (an ECHO
proves the printer and its back channel are alive before paper is used), PJL job
wrapping, PostScript ^D framing and an init string; the data goes with sendfile while
the back channel is read all the time; then the wait for completion that the Socket API
leaves to the sender: PJL ``USTATUS JOB END``, an ECHO cookie, the printer's EOF, a fixed
delay, or none, each with fallbacks and bounds. Facts: printer-protocols.md §1-2.
"""
from __future__ import annotations

import _socket
import struct
import time

from lpfilter.backends.request import SendRequest, SendResult
from lpfilter.backends.connect import broken, open_connection, readable
from lpfilter.backends.framing import Framing
from lpfilter.backends.settings import SocketSettings
from lpfilter.backends.stream import TICK, Pump, send_body, unsent
from lpfilter.errors import ConnectionLost, PrinterOffline, TransientError
from lpfilter.protocols import pjl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

Request = SendRequest[SocketSettings]

#: After the last byte and the end of the wait: how long to drain a closing connection.
DRAIN = 2.0


class Session:
    """One connection's back channel: replies parsed, new status passed on, EOF noticed."""

    def __init__(self, sock: _socket.socket, request: Request) -> None:
        self.sock = sock
        self.request = request
        self.parser = pjl.ReplyParser()
        self.eof = False
        self.reset = False
        self.ended: dict[str, int | None] = {}
        self.echoes: set[str] = set()
        self.pagecount: int | None = None
        self.last_words = ""
        self.last_heard = time.monotonic()
        self.half_closed = False

    def half_close(self) -> None:
        self.sock.shutdown(_socket.SHUT_WR)
        self.half_closed = True

    def read(self) -> bool:
        """Read what the printer sent; False once it closed its side."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return True
        except (ConnectionResetError, BrokenPipeError):
            self.eof = self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.last_heard = time.monotonic()
        for reply in self.parser.feed(data):
            self._handle(reply)
        return True

    def _handle(self, reply: pjl.Reply) -> None:
        if reply.kind == "job" and reply.value == "END":
            name = reply.fields.get("NAME", "").strip('"')
            if len(self.ended) < 64:
                self.ended[name] = reply.pages
        elif reply.kind == "echo" and len(self.echoes) < 64:
            self.echoes.add(reply.value)
        elif reply.kind == "pagecount":
            self.pagecount = reply.pages
        if reply.kind in ("status", "device", "ps", "job"):
            words = reply.words()
            if words and words != self.last_words:  # changes, not repeats
                self.last_words = words
                self.request.reporter.status(words)

    def wait(self, done: Callable[[], bool], *, silence: float, deadline: float) -> str:
        """Read until ``done()``; returns "done", "eof", "silence" or "deadline"."""
        while True:
            if done():
                return "done"
            if self.eof:
                return "eof"
            self.request.check()
            now = time.monotonic()
            if now >= deadline:
                return "deadline"
            if silence > 0 and now - self.last_heard >= silence:
                return "silence"
            if readable(self.sock, min(TICK, deadline - now)):
                self.read()

    def send(self, data: bytes) -> None:
        """A small command (sync, page count query) on the connection."""
        self.sock.setblocking(True)
        try:
            self.sock.settimeout(10)
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)


class JetDirectBackend:
    """Send a job to a raw TCP printer port."""

    def send(self, request: Request) -> SendResult:
        settings = request.settings
        host, port = request.destination.host, request.destination.port  # type: ignore[union-attr]
        _pause(settings.connect_grace, request)
        sock = open_connection(host, port, timeout=settings.connect_timeout,
                               interrupted=request.reporter.interrupted,
                               keepalive=settings.keepalive, linger=settings.linger,
                               busy=True)
        finished = False
        try:
            result = self._run(sock, request, settings, f"{host}%{port}")
            finished = True
        finally:
            if not finished:  # reset: a linger would block here, deaf to cancel and shutdown
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        return result

    def send_on(self, sock: _socket.socket, request: Request, where: str) -> SendResult:
        """The same job over a connection someone else opened and keeps (lpd's, for a data
        filter): it is never half-closed or closed here, so ``waitend=eof`` (the printer
        closing) cannot work and means ``none``."""
        settings = request.settings
        settings = settings.replace(
            half_close=False, waitend="none" if settings.waitend == "eof" else settings.waitend)
        sock.setblocking(False)
        return self._run(sock, request, settings, where)

    def _run(self, sock: _socket.socket, request: Request, settings: SocketSettings,
             where: str) -> SendResult:
        job = request.job
        session = Session(sock, request)
        name = pjl.safe_name(f"{settings.queue}-{job.id} {job.name}")
        cookie = pjl.safe_name(f"lpf-{job.id}-{int(time.time())}")
        try:
            before = self._prepare(session, settings, cookie, where)
            sent = self._stream(session, request, settings, name, cookie, where)
            delivery, pages, note = self._complete(session, settings, name, cookie, where,
                                                   before)
            _check_delivered(session, where, sent)
        except OSError as exc:
            raise broken(exc, where, request.sent) from None
        said = "confirmed by the printer" if delivery == "confirmed" else "sent"
        counted = f", {pages} pages" if pages is not None else ""
        return SendResult(sent, delivery, pages, f"{said}: {sent} bytes to {where}{counted}"
                          f"{note}")

    def _prepare(self, session: Session, settings: SocketSettings, cookie: str,
                 where: str) -> int | None:
        """Sync and the first page count, before any paper is used."""
        silence = settings.silence
        deadline = time.monotonic() + (silence if silence > 0 else 60.0)
        if settings.sync:
            session.send(pjl.echo(cookie + "-sync"))
            how = session.wait(lambda: cookie + "-sync" in session.echoes, silence=0,
                               deadline=deadline)
            if how == "eof":
                raise PrinterOffline(f"{where}: the printer closed the connection during the"
                                     " PJL ECHO sync")
            if how != "done":
                raise PrinterOffline(f"{where}: no answer to a PJL ECHO: the printer or its"
                                     " back channel is not working (sync@ turns the check off"
                                     " for one-way print servers)")
        if settings.pagecount:
            session.pagecount = None
            session.send(pjl.info("PAGECOUNT"))
            session.wait(lambda: session.pagecount is not None, silence=0, deadline=deadline)
            return session.pagecount
        return None

    def _stream(self, session: Session, request: Request, settings: SocketSettings,
                name: str, cookie: str, where: str) -> int:
        """Prologue, data (zero-copy) and epilogue, reading the back channel meanwhile."""
        frame = wrapping(settings, name, cookie)
        pump = Pump(session.sock.fileno(), interrupted=request.reporter.interrupted,
                    first_byte=request.reporter.first_byte, idle_timeout=settings.stall,
                    what=where, progress=request.progress, reader=session.read)
        try:
            if request.direct is None:  # no data filter writes to the socket itself
                sent = send_body(pump, request, frame)
            else:  # lend.py and its child's wait (1.6 M instructions) only for such a job
                from lpfilter.backends.lend import send_lent
                sent = send_lent(pump, request, frame)
        finally:
            pump.close()
        if session.eof:
            raise TransientError(f"{where}: the printer closed the connection after {sent}"
                                 " bytes, before the job ended")
        return sent

    def _complete(self, session: Session, settings: SocketSettings, name: str, cookie: str,
                  where: str, before: int | None) -> tuple[str, int | None, str]:
        """Wait for the printer to finish the job; returns (delivery, pages, note).

        First the printer must take every byte (the kernel's send queue empties; no
        progress for ``stall_timeout`` fails the try), and only then do the completion
        wait and its silence clock start. With ``eof`` the write side is shut at once (the
        printer closes when it has everything); otherwise at the very end, after the wait
        and the last page count, so that the printer can still be asked.
        """
        mode, silence, half_close = settings.waitend, settings.silence, settings.half_close
        if half_close and mode == "eof":
            session.half_close()
        _drain(session, settings.stall, where)
        session.last_heard = time.monotonic()
        deadline = time.monotonic() + settings.overall
        confirmed, how = False, ""
        if mode == "pjl":
            how = session.wait(lambda: name in session.ended, silence=silence, deadline=deadline)
            confirmed = how == "done"
        elif mode == "echo":
            how = session.wait(lambda: cookie in session.echoes, silence=silence,
                               deadline=deadline)
            confirmed = how == "done"
        elif mode == "eof":
            how = session.wait(lambda: False, silence=silence, deadline=deadline)
        elif mode == "delay":
            _pause(settings.delay, session.request)
        pages = session.ended.get(name)
        if before is not None and not session.eof and not session.half_closed:
            session.pagecount = None
            session.send(pjl.info("PAGECOUNT"))
            session.wait(lambda: session.pagecount is not None, silence=0,
                         deadline=time.monotonic() + max(silence, 5.0))
            if pages is None and session.pagecount is not None:
                pages = max(0, session.pagecount - before)
        if half_close and not session.half_closed and not session.eof:
            session.half_close()
            session.wait(lambda: False, silence=DRAIN, deadline=time.monotonic() + DRAIN)
        note = ""
        if mode in ("pjl", "echo") and not confirmed:
            note = {"eof": "; the printer closed the connection without confirming",
                    "silence": f"; no confirmation within {silence:g} s of silence",
                    "deadline": "; no confirmation before the overall time limit"}.get(how, "")
        elif mode == "eof" and how in ("silence", "deadline"):
            note = f"; the printer did not close the connection ({how})"
        return ("confirmed" if confirmed else "sent"), pages, note


def wrapping(settings: SocketSettings, name: str, cookie: str) -> Framing:
    """The bytes around the data: PJL job, init, ^D, the echo cookie, and the printcap's
    framing; used for the socket and for ``lpfilter filter`` on any output."""
    prologue = b""
    if settings.pjl:
        prologue += pjl.job_start(name, enter=settings.pjl_enter)
    prologue += settings.init
    epilogue = b""
    if settings.ps_eoj:
        prologue += b"\x04"
        epilogue += b"\x04"
    if settings.pjl:
        epilogue += pjl.job_end(name, echo=cookie if settings.waitend == "echo" else None)
    elif settings.waitend == "echo":
        epilogue += pjl.echo(cookie)
    base = settings.framing
    return Framing(prologue + base.leader, base.separator, base.trailer + epilogue)


def _drain(session: Session, stall: float, where: str) -> None:
    """Wait until the printer has taken every byte, reading its back channel meanwhile;
    a send queue that does not shrink for ``stall`` seconds fails the try.

    No event says "the send queue is empty", so it is polled: first after 2 ms, then at
    the pace the queue has been shrinking, never slower than ``TICK``, so the end of a job
    is not rounded up to a whole tick."""
    allowed = 1 if session.half_closed else 0  # an unacknowledged FIN counts one
    waiting = unsent(session.sock.fileno())
    moved = last = time.monotonic()
    pause = 0.002
    while waiting > allowed and not session.reset:
        session.request.check()
        if stall > 0 and time.monotonic() - moved > stall:
            raise TransientError(f"{where}: the printer took no data for {stall:g} s; {waiting}"
                                 " bytes of the job are still waiting for it")
        # After the printer's EOF the socket stays readable: stop selecting on it, or this
        # loop would spin while a slow printer still reads.
        if session.eof:
            time.sleep(pause)
        elif readable(session.sock, pause):
            session.read()
        now_unsent = unsent(session.sock.fileno())
        session.request.progress(session.request.sent, max(0, now_unsent - allowed))
        now = time.monotonic()
        if now_unsent < waiting:
            rate = (waiting - now_unsent) / max(now - last, 1e-6)
            pause = min(TICK, max(0.002, now_unsent / rate))  # when it should be empty
            moved = now
        else:
            pause = min(TICK, pause * 2)
        last, waiting = now, now_unsent


def _check_delivered(session: Session, where: str, sent: int) -> None:
    """A job is not done while the printer reset the connection or left bytes untaken
    (a printer that accepts and never reads: the data fitted in the socket buffers)."""
    if session.reset:  # (its kernel then drops what it had not acknowledged: unknowable)
        raise ConnectionLost(f"{where}: the printer reset the connection instead of closing"
                             " it, so whether it took the whole job is not known (it may have"
                             " printed it)")
    left = unsent(session.sock.fileno())
    if left > (1 if session.half_closed else 0):  # a FIN not yet acknowledged counts 1
        raise TransientError(f"{where}: the printer did not take the last {left} of {sent}"
                             " bytes")


def _pause(seconds: float, request: Request) -> None:
    """Sleep, still hearing cancel and shutdown."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        request.check()
        time.sleep(min(TICK, max(0.0, end - time.monotonic())))
