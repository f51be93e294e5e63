"""``lp=queue@host[%port]`` and ``rm``/``rp``: forwarding a job to an LPD server (RFC 1179).

One connection per job: the receive-job request, the control file and the data file, each
acknowledged twice by the server (lpd-protocol.md §2), then close. The bytes are built by
``protocols.lpd``/``lpdcontrol``; here they are sent, every wait bounded and interruptible.
The data goes zero-copy with the Pump, once (copies are the control file's repeated print
lines). ``first_byte`` is reported before the first data byte, so only a failure after data
left can make the next try a possible duplicate: the job is the server's only after the last
acknowledgement (lpd-protocol.md §3.1).

``lpd_batch``: the jobs of a batch on one connection (the worker keeps the backend between
jobs and calls ``close`` when the queue runs dry). When is each job the server's? LPRng's
lpd commits a job whose control file came first only at the next control file or at EOF,
after its last acknowledgement: with that order a job sent on a kept connection would be
marked done while the server could still drop it. So a batch sends every job's data file
first: LPRng commits the job when its control file arrives after its data
(``Check_for_missing_files``; tests/test_lpd_batch.py sees its job ticket in the spool with
the connection still open, and the job printed after a reset) and BSD lpd renames the
control file into its spool before acknowledging it, so the control file's acknowledgement
is the job's own commit point, and only then is the job done. A close or reset between jobs
costs nothing already acknowledged; a job cut off before its control file's acknowledgement
stays queued and is sent again. A kept connection the server closed while idle is found
before any byte of the next job leaves (then one new connection is the same try). Off by
default: RFC 1179 says nothing of several jobs on one connection, and servers other than
LPRng's and BSD's (CUPS's cups-lpd, printers' own) may take only one.
"""
from __future__ import annotations

import _socket
import os
import struct
import time

from lpfilter.backends.connect import broken, on_this_host, open_connection, readable
from lpfilter.backends.request import SendRequest, SendResult
from lpfilter.backends.settings import LpdSettings
from lpfilter.backends.stream import TICK, Pump
from lpfilter.errors import ConnectionLost, JobRefused, PrinterBusy, TransientError
from lpfilter.printcap.destination import Lpd
from lpfilter.protocols import lpd, lpdcontrol

Request = SendRequest[LpdSettings]

#: After a non-zero acknowledgement: how long the server's reason may take to arrive.
REASON_WAIT = 2.0


#: SO_SNDBUF towards a server on this host (see LpdBackend._connect).
LOCAL_SEND_BUFFER = 128 * 1024


class Connection:
    """One job's connection: small writes and bounded acknowledgement reads."""

    def __init__(self, sock: _socket.socket, request: Request, where: str) -> None:
        self.sock = sock
        self.request = request
        self.where = where
        #: The first data byte was about to leave: a retry may duplicate the job.
        self.data_started = False

    def first_byte(self) -> None:
        self.data_started = True
        self.request.reporter.first_byte()

    def write(self, data: bytes) -> None:
        """A request or subcommand line, a control file, a ``\\0``: bounded by the stall
        limit, deaf to neither cancel nor shutdown; never counts as job data."""
        pump = Pump(self.sock.fileno(), interrupted=self.request.reporter.interrupted,
                    first_byte=_nothing, idle_timeout=self.request.settings.stall,
                    what=self.where)
        try:
            pump.write(data)
        finally:
            pump.close()

    def ack(self, step: str) -> None:
        """Read the server's answer to ``step``: nothing to do on ``\\0``; a refusal is
        JobRefused (permanent) or PrinterBusy (try later), with the server's reason."""
        first = self._read(1, self.request.settings.ack_timeout, step)
        if not first:
            raise ConnectionLost(f"{self.where}: the server closed the connection instead of"
                                 f" acknowledging {step}")
        if first == b"\0":
            return
        data = first + self._reason()
        answer = lpd.parse_ack(data)
        # The server's reason first: a status line shows the start of a long message.
        code = f", code {answer.code}" if answer.code >= 0 else ""
        message = (f"{self.where}: {answer.reason or 'refused'} ({answer.kind.value}{code},"
                   f" answering {step})")
        if answer.permanent:
            raise JobRefused(message)
        raise PrinterBusy(message)

    def _reason(self) -> bytes:
        """The text after a refusal: until the server closes, MAX_ACK_READ bytes or
        REASON_WAIT seconds, whichever comes first."""
        data = b""
        deadline = time.monotonic() + REASON_WAIT
        while len(data) < lpd.MAX_ACK_READ and time.monotonic() < deadline:
            try:
                more = self._read(lpd.MAX_ACK_READ - len(data), deadline - time.monotonic(),
                                  "")
            except (TransientError, OSError):
                break
            if not more:
                break
            data += more
        return data

    def _read(self, limit: int, timeout: float, step: str) -> bytes:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            self.request.check()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransientError(f"{self.where}: no acknowledgement of {step} within"
                                     f" {timeout:g} s")
            if readable(self.sock, min(TICK, left)):
                try:
                    return self.sock.recv(limit)
                except BlockingIOError:
                    continue


def _nothing() -> None:
    """Protocol lines are not job data: they never make a try a possible duplicate."""


class LpdBackend:
    """Send a job to a remote LPD queue; with ``lpd_batch``, on the connection kept from the
    previous job when it is still open."""

    def __init__(self) -> None:
        self._kept: _socket.socket | None = None

    def close(self) -> None:
        """End the kept connection with a plain close: every job sent on it was committed
        at its control file's acknowledgement, so the server's EOF loses nothing."""
        if self._kept is not None:
            self._kept.close()
            self._kept = None

    def send(self, request: Request) -> SendResult:
        destination = request.destination
        assert isinstance(destination, Lpd)
        where = destination.display()
        sock, reused = self._take(), True
        if sock is None:
            sock, reused = self._connect(request, destination), False
        conn = Connection(sock, request, where)
        finished = False
        try:
            try:
                sent = self._job(conn, destination.queue, request=not reused)
            except (ConnectionLost, OSError):
                if not reused or conn.data_started:
                    raise
                # The kept connection was cut while idle: nothing of this job left yet.
                sock.close()
                sock = conn.sock = self._connect(request, destination)
                sent = self._job(conn, destination.queue, request=True)
            finished = True
        except OSError as exc:
            raise broken(exc, where, request.sent, peer="server", unit="bytes of data") from None
        finally:
            if not finished:  # reset: a linger would block here, deaf to cancel
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            elif request.settings.batch:
                self._kept = sock
            else:
                sock.close()
        return SendResult(sent, "sent", None, f"sent: {sent} bytes to {where}, every file"
                          " acknowledged")

    def _take(self) -> _socket.socket | None:
        """The kept connection if the server has not closed it: an idle server says nothing,
        so anything readable (EOF, a stray byte) means it is done with it."""
        sock, self._kept = self._kept, None
        if sock is None:
            return None
        if readable(sock, 0):
            sock.close()
            return None
        return sock

    @staticmethod
    def _connect(request: Request, destination: Lpd) -> _socket.socket:
        sock = open_connection(destination.host, destination.port,
                               timeout=request.settings.connect_timeout,
                               interrupted=request.reporter.interrupted,
                               keepalive=request.settings.keepalive,
                               source_ports=request.settings.source_ports, busy=True)
        # Every write here ends a step the server must answer before the next one; Nagle
        # would hold the byte that ends a data file until the server's delayed ACK (40 ms
        # on Linux), which is most of a small job's time. See bench/README.md.
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        if on_this_host(sock):
            # A reader on this host copies what we queue; a small queue is still in the
            # CPU cache when it does (lpd: 0.82-0.92 s of CPU for 1 GiB against 1.07 with
            # the kernel's default; bench/README.md, LPD forwarding). The round trip is
            # microseconds, so 128 KiB never starves the link.
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, LOCAL_SEND_BUFFER)
        return sock

    def _job(self, conn: Connection, queue: str, *, request: bool) -> int:
        """The whole transfer (lpd-protocol.md §2); returns the data bytes sent. On a kept
        connection the receive-job request was made by the batch's first job."""
        settings, job = conn.request.settings, conn.request.job
        names = lpd.job_names(job.id, settings.host, job_class=job.job_class)
        fields = lpdcontrol.from_job(job, names, host=settings.host,
                                     fmt=job.print_format or settings.fmt,
                                     banner=settings.banner, queue=queue)
        control = lpdcontrol.build(fields, settings.style)
        if request:
            conn.write(lpd.receive_job(queue))
            conn.ack("the receive-job request")
        if settings.data_first:
            sent = self._data(conn, names.data(0))
            self._control(conn, control, names.control)
        else:
            self._control(conn, control, names.control)
            sent = self._data(conn, names.data(0))
        return sent

    def _control(self, conn: Connection, control: bytes, name: str) -> None:
        conn.write(lpd.file_line(lpd.Subcommand.CONTROL_FILE, len(control), name))
        conn.ack("the control file's subcommand")
        conn.write(control + b"\0")
        conn.ack("the control file")

    def _data(self, conn: Connection, name: str) -> int:
        """The data file, zero-copy; ``first_byte`` before its first byte."""
        request = conn.request
        with request.open_data() as data:
            size = os.fstat(data.fileno()).st_size
            conn.write(lpd.file_line(lpd.Subcommand.DATA_FILE, size, name))
            conn.ack("the data file's subcommand")
            pump = Pump(conn.sock.fileno(), interrupted=request.reporter.interrupted,
                        first_byte=conn.first_byte,
                        idle_timeout=request.settings.stall, what=conn.where,
                        progress=request.progress, sendfile=not on_this_host(conn.sock))
            try:
                pump.send_file(data.fileno(), size)
                sent = pump.sent
            finally:
                pump.close()
        conn.write(b"\0")
        conn.ack("the data file")
        return sent
