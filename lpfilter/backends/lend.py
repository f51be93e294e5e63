"""Lending the backend's own descriptor to a data filter, as LPRng's lpd does: the
filter's fd 1 is the printer's TCP socket or the ``lp`` file itself (lprng-filters.md §3),
so no thread of lpfilter copies its output (``bench/README.md``, spool_filter_bench).

lpfilter writes its own pieces (PJL and framing, ``ld``, banners, separators, ``tr``)
through the backend's ``Pump`` between filter runs. While a filter runs the descriptor is
blocking (a filter given a non-blocking stdout gets EAGAIN: ``cat`` fails) and no thread
of lpfilter reads or writes it: the printer's back channel waits in the kernel's receive
buffer and is read after the run. The sending thread waits for the filter's exit and
meanwhile hears cancel and shutdown every ``TICK`` and measures what reached the
descriptor: for a TCP socket the bytes the printer acknowledged plus its send queue
(TCP_INFO ``tcpi_bytes_acked`` and SIOCOUTQ), for a file its size. That count is the
send's progress and its byte count; when it does not move for the stall limit the filter
is killed and the try fails. Anything else (a character device, whose writes nobody can
count) keeps the pipe: ``lend_meter`` says None.
"""
from __future__ import annotations

import _socket
import os
import stat
import struct
import time
from collections.abc import Callable

from lpfilter.backends.stream import TICK, Pump, send_body, unsent
from lpfilter.children.exitwait import ExitWait
from lpfilter.errors import ConnectionLost, JobInterrupted, TransientError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lpfilter.backends.framing import Framing
    from lpfilter.backends.request import SendRequest

#: (bytes that reached the descriptor since an arbitrary start, bytes of them the
#: printer has not taken yet).
Meter = Callable[[], tuple[int, int]]

#: ``struct tcp_info``'s ``tcpi_bytes_acked`` (Linux 4.1 and later): a u64 at this offset.
_BYTES_ACKED = 120
_TCP_INFO_SIZE = 256
#: Reads of a moving connection's counters before the last one is taken as it is.
_TRIES = 16
#: TCP states in which the connection still carries data to the printer.
_TCP_ESTABLISHED, _TCP_CLOSE_WAIT = 1, 8


def _tcp_info(fd: int) -> bytes:
    sock = _socket.socket(fileno=os.dup(fd))  # (the C type: no socket module; see connect)
    try:
        return sock.getsockopt(_socket.IPPROTO_TCP, _socket.TCP_INFO, _TCP_INFO_SIZE)
    finally:
        sock.close()


def lend_meter(fd: int) -> Meter | None:
    """How to count what a filter writes to ``fd``, or None when it cannot be counted
    (then the filter writes to a pipe, as before)."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return lambda: (os.fstat(fd).st_size, 0)
    if not stat.S_ISSOCK(mode):
        return None
    try:
        if len(_tcp_info(fd)) < _BYTES_ACKED + 8:
            return None
    except OSError:  # not a TCP socket
        return None

    def acked() -> int:
        return int(struct.unpack_from("Q", _tcp_info(fd), _BYTES_ACKED)[0])

    def written() -> tuple[int, int]:
        # Two system calls: an acknowledgement between them would count its bytes twice,
        # so the send queue is read between two equal answers of the acknowledged count.
        before = acked()
        for _ in range(_TRIES):
            waiting = unsent(fd)
            after = acked()
            if after == before:
                break
            before = after
        return before + waiting, waiting
    return written


class Outlet:
    """The descriptor a data filter writes to directly; lpfilter's own bytes go through
    the backend's ``pump`` (non-blocking, interruptible, reading the back channel)."""

    def __init__(self, pump: Pump, meter: Meter) -> None:
        self.pump = pump
        self.meter = meter
        self.fd = pump.dst

    def write(self, data: bytes) -> None:
        if data:
            self.pump.write(data)

    def copy_file(self, src: int) -> None:
        """A file as it is (a job with banners and no data filter)."""
        self.pump.send_file(src, os.fstat(src).st_size)

    def lend(self) -> Lent:
        """The descriptor blocking for a filter's run (``with outlet.lend():``); counted
        into the send after it."""
        return Lent(self)

    def wait(self, pid: int, what: str) -> None:
        """Until process ``pid`` (a child, not reaped here) has exited; raises on cancel,
        shutdown, or nothing reaching the printer for the stall limit (the caller kills
        the process). Progress is told every tick."""
        pump, stall = self.pump, self.pump.idle_timeout
        base, start = pump.sent, self.meter()
        last, moved = start, time.monotonic()
        with ExitWait(pid) as waiting:
            while not waiting.within(TICK):
                reason = pump.interrupted()
                if reason is not None:
                    raise JobInterrupted(reason)
                now = self.meter()
                pump.sent = base + max(0, now[0] - start[0])
                pump.report()
                if now != last:
                    last, moved = now, time.monotonic()
                elif stall > 0 and time.monotonic() - moved > stall:
                    if now[1]:
                        raise TransientError(f"{pump.what}: the printer took no data for"
                                             f" {stall:g} s")
                    raise TransientError(f"{what} wrote nothing for {stall:g} s"
                                         " (stall_timeout)")

    def check(self) -> None:
        """After a filter failed: if the printer's side went away (a reset: the filter got
        EPIPE or SIGPIPE), that is the reason, a transient one, not the filter's status."""
        if not stat.S_ISSOCK(os.fstat(self.fd).st_mode):
            return
        try:
            state = _tcp_info(self.fd)[0]
        except OSError:
            return
        if state not in (_TCP_ESTABLISHED, _TCP_CLOSE_WAIT):
            raise ConnectionLost(f"{self.pump.what}: the printer reset the connection"
                                 f" after {self.pump.sent} bytes")


class Lent:
    """An Outlet's descriptor lent to a filter: blocking meanwhile, and what reached the
    printer counted into the send afterwards. The job may be printed from ``__enter__``
    on: the reporter hears the first byte then. (A class, not contextlib's decorator:
    lpd's filter would import contextlib for this alone, 2.7 M instructions a start.)"""

    def __init__(self, outlet: Outlet) -> None:
        self.outlet = outlet
        self.base = self.start = 0

    def __enter__(self) -> None:
        outlet = self.outlet
        outlet.pump.starting()
        self.base, self.start = outlet.pump.sent, outlet.meter()[0]
        os.set_blocking(outlet.fd, True)

    def __exit__(self, *_exc: object) -> None:
        outlet = self.outlet
        os.set_blocking(outlet.fd, False)
        outlet.pump.sent = self.base + max(0, outlet.meter()[0] - self.start)


def send_lent(pump: Pump, request: SendRequest[Any], frame: Framing) -> int:
    """``send_body`` for a backend that owns its descriptor (socket, device): a filtered
    job that can write to it (``request.direct``) does so where its writes can be counted;
    otherwise the filters' pipe is streamed. Returns bytes sent."""
    direct = request.direct
    if direct is None:
        return send_body(pump, request, frame)
    meter = lend_meter(pump.dst)
    if meter is None:
        direct.start()
        return send_body(pump, request, frame)
    if frame.leader:
        pump.write(frame.leader)
    direct.write_to(Outlet(pump, meter))
    if frame.trailer:
        pump.write(frame.trailer)
    return pump.sent
