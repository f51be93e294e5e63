"""An FTP print server session: its control connection, login and host-wide slot.

Every wait (greeting, reply, slot) polls with ``TICK`` so cancel and shutdown are heard,
and is bounded. Replies map to lpfilter's errors as ftplib maps them to its own (4xx
transient, 5xx permanent), with one line naming the server, the step and its words. A
slot is one of ``ftp_sessions`` lock files per server in the lock directory, held with
flock for as long as the control connection is open: the kernel frees a dead holder's
slot, and psutil names the live holders while a job waits for one.
"""
from __future__ import annotations

import _socket
import os
import time
from collections.abc import Callable

from lpfilter import logs
from lpfilter.backends.request import SendRequest
from lpfilter.backends.connect import open_connection, readable
from lpfilter.backends.ftpauth import credentials
from lpfilter.backends.settings import FtpSettings
from lpfilter.backends.stream import TICK
from lpfilter.digest import sha256_hex
from lpfilter.errors import (Interruption, JobInterrupted, JobRefused, LpfilterError, PrinterBusy,
                             TransientError)
from lpfilter.locks import POLL, ProcessLock, current_holder
from lpfilter.protocols import ftp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap.destination import Ftp

Request = SendRequest[FtpSettings]

log = logs.getLogger(__name__)

#: A reply wait with no ``stall_timeout`` still ends after this long.
LONGEST_WAIT = 3600.0


def failure(reply: ftp.Reply, where: str, step: str) -> LpfilterError:
    """The error for an unwanted reply: 421 busy, 4xx transient, 5xx permanent."""
    words = reply.words()
    if reply.code == 421:
        return PrinterBusy(f"{where}: {step}: the print server refused the session ({words}):"
                           " all its sessions are in use, or it is closing")
    if reply.kind == 4:
        return TransientError(f"{where}: {step}: {words}")
    if reply.code == 530:
        return JobRefused(f"{where}: {step}: login refused ({words}); give the right user and"
                          " password in lp, ftp_user and ftp_password_file, or ~/.netrc")
    if reply.code == 550 and step.startswith("CWD"):
        return JobRefused(f"{where}: {step}: {words}; the print server has no such directory:"
                          " fix the path in lp")
    if reply.kind == 5:
        return JobRefused(f"{where}: {step} refused: {words}")
    return TransientError(f"{where}: {step}: unexpected reply {words}")


class Control:
    """The control connection: command lines out, complete replies in."""

    def __init__(self, sock: _socket.socket, where: str) -> None:
        self.sock = sock
        self.where = where
        self._reader = ftp.ReplyReader()
        self._replies: list[ftp.Reply] = []
        self.eof = False
        #: The password sent (PASS): a server that echoes it in a reply ('530 Login
        #: incorrect: you said ...', or a last word after a broken data connection) must
        #: not put it in an error, the log or status: every reply is masked as it comes.
        self.secret = ""

    def send(self, line: bytes) -> None:
        self.sock.setblocking(True)
        try:
            self.sock.settimeout(30)
            self.sock.sendall(line)
        except OSError as exc:
            raise TransientError(f"{self.where}: the control connection failed"
                                 f" ({exc.strerror or exc})") from None
        finally:
            self.sock.setblocking(False)

    def _read(self) -> None:
        try:
            data = self.sock.recv(8192)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return
        try:
            self._replies.extend(ftp.masked(reply, self.secret) if self.secret else reply
                                 for reply in self._reader.feed(data))
        except ftp.ReplyTooLong as exc:
            # Cut at the bound, never held whole; the server may be out of something
            # (disk, memory): the job waits for a later try, as for any 4xx.
            self.eof = True
            raise TransientError(f"{self.where}: the server sent {exc}; the reply was cut"
                                 " and the job is tried again later") from None
        except ftp.ProtocolError as exc:
            raise JobRefused(f"{self.where}: this is not an FTP server ({exc}); check the"
                             " host and port in lp") from None

    def poll(self, wait: float = 0.0) -> ftp.Reply | None:
        """The next reply if one comes within ``wait`` seconds (for a server's last words)."""
        end = time.monotonic() + wait
        while not self._replies and not self.eof:
            left = end - time.monotonic()
            if readable(self.sock, min(TICK, left)):
                try:
                    self._read()
                except LpfilterError:  # not FTP, or a reply past the bounds
                    return None
            elif left <= 0:
                break
        return self._replies.pop(0) if self._replies else None

    def reply(self, limit: float, *, step: str, interrupted: Callable[[], Interruption | None],
              progress: Callable[[], bool] | None = None) -> ftp.Reply:
        """The next complete reply; ``limit`` seconds without one (counted again whenever
        ``progress()`` is true) fail the try."""
        limit = limit if limit > 0 else LONGEST_WAIT
        deadline = time.monotonic() + limit
        while not self._replies:
            if self.eof:
                raise TransientError(f"{self.where}: the server closed the control"
                                     f" connection during {step}")
            reason = interrupted()
            if reason is not None:
                raise JobInterrupted(reason)
            now = time.monotonic()
            if progress is not None and progress():
                deadline = now + limit
            if now >= deadline:
                raise TransientError(f"{self.where}: no reply to {step} within {limit:g} s")
            if readable(self.sock, min(TICK, deadline - now)):
                self._read()
        return self._replies.pop(0)  # (each masked as it came: _read)

    def final(self, limit: float, *, step: str,
              interrupted: Callable[[], Interruption | None],
              preliminary: bool = False) -> ftp.Reply:
        """The first reply that is not preliminary (1xx; with ``preliminary`` the first of
        any kind), all within ``limit`` seconds: a server sending 1xx after 1xx ('150 still
        thinking') must not hold the job, and a slot of the server, for good."""
        limit = limit if limit > 0 else LONGEST_WAIT
        deadline = time.monotonic() + limit
        only = TransientError(f"{self.where}: only preliminary replies to {step} for"
                              f" {limit:g} s")
        waiting = False  # (a preliminary reply came: the time is up for want of another)
        while True:
            try:
                reply = self.reply(max(0.001, deadline - time.monotonic()), step=step,
                                   interrupted=interrupted)
            except TransientError:
                if waiting and time.monotonic() >= deadline:
                    raise only from None
                raise
            log.debug("%s: < %s", self.where, reply.words())
            if reply.kind != 1 or preliminary:
                return reply
            waiting = True
            if time.monotonic() >= deadline:
                raise only

    def close(self) -> None:
        self.sock.close()


class Session:
    """A logged-in control connection holding one of the server's slots."""

    def __init__(self, control: Control, slot: ProcessLock, *, key: str, passive: bool,
                 connect_timeout: float, reply_timeout: float, keepalive: bool,
                 interrupted: Callable[[], Interruption | None]) -> None:
        self.control = control
        self.slot = slot
        self.where = control.where
        self.key = key
        self.passive = passive
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self.keepalive = keepalive
        #: The current job's cancel/shutdown check (a kept session serves several jobs).
        self.interrupted = interrupted
        self.last_used = time.monotonic()

    def command(self, verb: str, argument: str | None = None, *, step: str,
                expect: tuple[int, ...]) -> ftp.Reply:
        """Send a command; the first non-preliminary reply (or a 1xx if ``expect`` has 1)
        must be of a kind in ``expect``."""
        try:
            line = ftp.command(verb, argument)
        except ValueError as exc:
            raise JobRefused(f"{self.where}: {exc}") from None
        log.debug("%s: > %s", self.where, "PASS ***" if verb == "PASS" else
                  line.decode("utf-8", "replace").rstrip())
        if verb == "PASS" and argument:
            self.control.secret = argument
        self.control.send(line)
        reply = self.control.final(self.reply_timeout, step=step, interrupted=self.interrupted,
                                   preliminary=1 in expect)
        if reply.kind not in expect:
            raise failure(reply, self.where, step)
        return reply

    def quit(self) -> None:
        """``QUIT``, a short wait for the goodbye, close, free the slot."""
        try:
            self.control.send(ftp.command("QUIT"))
            self.control.poll(wait=2.0)
        except LpfilterError:
            pass
        self.abort()

    def abort(self) -> None:
        """Close at once (after a failure the session is in an unknown state)."""
        self.control.close()
        self.slot.release()


def slot_paths(lock_dir: str, host: str, port: int, count: int) -> list[str]:
    """The lock files of one server's session slots (by address, not by directory)."""
    server = f"{host.lower()}:{port}"
    digest = sha256_hex(server.encode("utf-8", "surrogateescape"))[:16]
    safe = "".join(c if c.isalnum() else "_" for c in server)[:40]
    return [os.path.join(lock_dir, f"ftp-{safe}-{digest}-slot{n}.lock") for n in range(count)]


def take_slot(request: Request, destination: Ftp, where: str) -> ProcessLock:
    """One of the server's ``ftp_sessions`` slots (in the caller's lock directory); waits
    (interruptibly) while all are taken, saying once who holds them."""
    if not request.lock_dir:
        raise ValueError("an FTP send needs the caller's lock directory (SendRequest.lock_dir)")
    count = request.settings.sessions
    paths = slot_paths(request.lock_dir, destination.host, destination.port, count)
    locks = [ProcessLock(path, f"FTP session to {where} for queue {request.settings.queue}")
             for path in paths]
    told = False
    try:
        while True:
            for lock in locks:
                if lock.acquire(timeout=0):
                    locks.remove(lock)
                    return lock
            request.check()
            if not told:
                told = True
                holders = [h for h in map(current_holder, paths) if h is not None]
                pids = ", ".join(str(h.pid) for h in holders) or "processes just ending"
                request.reporter.status(f"waiting for an FTP session to {where}: all"
                                        f" {count} are in use (pids {pids})")
            time.sleep(POLL * 2)
    finally:
        for lock in locks:
            lock.release()


def open_session(request: Request, destination: Ftp, key: str) -> Session:
    """Slot, connection, greeting, login and ``CWD``: a session ready for jobs."""
    settings, interrupted = request.settings, request.reporter.interrupted
    where = destination.display()
    login = credentials(destination, settings)
    slot = take_slot(request, destination, where)
    control: Control | None = None
    try:
        sock = open_connection(destination.host, destination.port,
                               timeout=settings.connect_timeout, interrupted=interrupted,
                               keepalive=settings.keepalive, linger=0)
        control = Control(sock, where)
        session = Session(control, slot, key=key, passive=not settings.active,
                          connect_timeout=settings.connect_timeout,
                          reply_timeout=settings.stall, keepalive=settings.keepalive,
                          interrupted=interrupted)
        greeting = control.final(session.reply_timeout, step="the greeting",  # (120: ready
                                 interrupted=interrupted)  # in a few minutes, at most so long)
        if greeting.kind != 2:
            raise failure(greeting, where, "connect")
        step = f"login as {login.user}"
        reply = session.command("USER", login.user, step=step, expect=(2, 3))
        if reply.kind == 3:
            reply = session.command("PASS", login.password, step=step, expect=(2, 3))
            if reply.kind == 3:
                raise JobRefused(f"{where}: {step}: the server wants an account (ACCT),"
                                 " which lpfilter does not send")
        if destination.path:
            session.command("CWD", destination.path, step=f"CWD {destination.path}",
                            expect=(2,))
        log.info("%s: logged in as %s (%s)", where, login.user, login.source)
        return session
    except BaseException:
        if control is not None:
            control.close()
        slot.release()
        raise
