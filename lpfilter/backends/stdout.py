"""A data filter's output: the job, wrapped as the entry says, on standard output.

Under lpd with ``lp=host%port``, standard output is lpd's connection to the printer: the
JetDirect backend runs over it (PJL wrapping, completion wait, page counts from the back
channel) but never closes or half-closes it, since lpd still writes to it afterwards.
On any other output (a device, a pipe, a file) there is no back channel: the wrapped job
is written and that is all.
"""
from __future__ import annotations

import _socket
import os
import stat

from lpfilter.backends.connect import Connection
from lpfilter.backends.jetdirect import JetDirectBackend, wrapping
from lpfilter.backends.request import SendRequest, SendResult
from lpfilter.backends.settings import SocketSettings
from lpfilter.backends.stream import Pump
from lpfilter.protocols import pjl


def send_to_stdout(request: SendRequest[SocketSettings]) -> SendResult:
    """Send the job to file descriptor 1, with the socket's settings (read from the entry
    as for ``lp=host%port``)."""
    if stat.S_ISSOCK(os.fstat(1).st_mode):
        sock = Connection(fileno=os.dup(1))  # (not socket's: its import, 15 M instructions)
        try:
            return JetDirectBackend().send_on(sock, request, peer_name(sock))
        finally:
            sock.setblocking(True)  # the file status is shared with lpd's descriptor
            sock.close()
    settings = request.settings.replace(waitend="none")
    job = request.job
    name = pjl.safe_name(f"{settings.queue}-{job.id} {job.name}")
    frame = wrapping(settings, name, "")
    with request.open_data() as data:
        pump = Pump(1, interrupted=request.reporter.interrupted,
                    first_byte=request.reporter.first_byte, idle_timeout=settings.stall,
                    what="the output", progress=request.progress)
        try:
            sent = pump.send_job(data.fileno(), os.fstat(data.fileno()).st_size, 1, frame)
        finally:
            pump.close()
    return SendResult(sent, "sent", None, f"sent: {sent} bytes to standard output")


def peer_name(sock: _socket.socket) -> str:
    """``host%port`` of the printer at the other end of lpd's connection."""
    try:
        host, port = sock.getpeername()[:2]
    except (OSError, ValueError):
        return "the printer"
    return f"{host}%{port}"
