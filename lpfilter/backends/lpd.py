"""``lp=queue@host[%port]`` and ``rm``/``rp``: forwarding a job to an LPD server (RFC 1179).

One connection per job: the receive-job request, the control file and the data file, each
acknowledged twice by the server (lpd-protocol.md §2), then close. The bytes are built by
``protocols.lpd``/``lpdcontrol``; here they are sent, every wait bounded and interruptible.
The data goes zero-copy with the Pump, once (copies are the control file's repeated print
lines). ``first_byte`` is reported before the first data byte, so only a failure after data
left can make the next try a possible duplicate: the job is the server's only after the last
acknowledgement (lpd-protocol.md §3.1).
"""
from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time

from lpfilter.backends.connect import open_connection
from lpfilter.backends.request import SendRequest, SendResult
from lpfilter.backends.settings import LpdSettings
from lpfilter.backends.stream import TICK, Pump
from lpfilter.errors import ConnectionLost, JobRefused, PrinterBusy, TransientError
from lpfilter.printcap.destination import Lpd
from lpfilter.protocols import lpd, lpdcontrol

Request = SendRequest[LpdSettings]

#: After a non-zero acknowledgement: how long the server's reason may take to arrive.
REASON_WAIT = 2.0


class Connection:
    """One job's connection: small writes and bounded acknowledgement reads."""

    def __init__(self, sock: socket.socket, request: Request, where: str) -> None:
        self.sock = sock
        self.request = request
        self.where = where

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
            ready, _, _ = select.select([self.sock], [], [], min(TICK, left))
            if ready:
                try:
                    return self.sock.recv(limit)
                except BlockingIOError:
                    continue


def _nothing() -> None:
    """Protocol lines are not job data: they never make a try a possible duplicate."""


class LpdBackend:
    """Send a job to a remote LPD queue."""

    def send(self, request: Request) -> SendResult:
        destination = request.destination
        assert isinstance(destination, Lpd)
        where = destination.display()
        sock = open_connection(destination.host, destination.port,
                               timeout=request.settings.connect_timeout,
                               interrupted=request.reporter.interrupted,
                               keepalive=request.settings.keepalive)
        finished = False
        try:
            sent = self._job(Connection(sock, request, where), destination.queue)
            finished = True
        except OSError as exc:
            if exc.errno in (errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE):
                raise ConnectionLost(f"{where}: the server reset the connection after"
                                     f" {request.sent} bytes of data") from None
            raise TransientError(f"{where}: {exc.strerror or exc} after {request.sent}"
                                 " bytes of data") from None
        finally:
            if not finished:  # reset: a linger would block here, deaf to cancel
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        return SendResult(sent, "sent", None, f"sent: {sent} bytes to {where}, every file"
                          " acknowledged")

    def _job(self, conn: Connection, queue: str) -> int:
        """The whole transfer (lpd-protocol.md §2); returns the data bytes sent."""
        request = conn.request
        settings, job = request.settings, request.job
        names = lpd.job_names(job.id, settings.host, job_class=job.job_class)
        fields = lpdcontrol.from_job(job, names, host=settings.host, fmt=settings.fmt,
                                     banner=settings.banner, queue=queue)
        control = lpdcontrol.build(fields, settings.style)
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
                        first_byte=request.reporter.first_byte,
                        idle_timeout=request.settings.stall, what=conn.where,
                        progress=request.progress)
            try:
                pump.send_file(data.fileno(), size)
                sent = pump.sent
            finally:
                pump.close()
        conn.write(b"\0")
        conn.ack("the data file")
        return sent
