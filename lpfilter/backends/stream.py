"""Streaming a job to a file descriptor: zero-copy, bounded memory, always interruptible.

The data goes with sendfile(2) from the spooled file straight to the destination; the
destination is non-blocking and waited on with a timeout, so a stalled printer or a
program that stops reading never hangs the worker: cancel and shutdown are heard within
``TICK`` seconds, and ``idle_timeout`` ends a send that makes no progress.
"""
from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
import struct
import termios
import time

from lpfilter.backends.framing import Framing
from lpfilter.errors import Interruption, JobInterrupted, TransientError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from lpfilter.backends.request import SendRequest, StreamSource

TICK = 0.2
CHUNK = 1 << 20
#: After a stream's producer is done (every filter ended, and what they left that
#: carries their mark), how long its pipe may stay open and silent: only a process out of
#: lpfilter's reach can hold it, and the try fails rather than wait for it for ever.
HELD_GRACE = 2.0
#: Progress is told at most this often: asking the kernel what the printer has not taken
#: yet costs a system call, a small job's whole send is shorter, and no one reads faster.
REPORT_EVERY = 0.1
#: sendfile(2) refuses some pairs (an O_APPEND file, some devices): copy through a buffer.
_NO_SENDFILE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EOPNOTSUPP})


def unsent(sock: int) -> int:
    """Bytes the kernel still holds for the peer of socket ``sock`` (not sent, or not
    acknowledged): zero means the printer has taken everything."""
    try:
        raw = fcntl.ioctl(sock, termios.TIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])


def waiting_query(fd: int) -> int | None:
    """The ioctl that tells how many bytes written to ``fd`` its reader has not taken yet:
    TIOCOUTQ for a socket or a terminal, FIONREAD for a pipe; None for anything else."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISSOCK(mode) or stat.S_ISCHR(mode):
        return termios.TIOCOUTQ
    if stat.S_ISFIFO(mode):
        return termios.FIONREAD
    return None


class Pump:
    """Sends framing and ``copies`` of a file to ``dst`` (a non-blocking fd)."""

    def __init__(self, dst: int, *, interrupted: Callable[[], Interruption | None],
                 first_byte: Callable[[], None], idle_timeout: float = 0.0,
                 what: str = "the printer",
                 progress: Callable[[int, int], None] | None = None,
                 reader: Callable[[], bool] | None = None, sendfile: bool = True) -> None:
        """``reader`` is called whenever ``dst`` has bytes to read (a printer's back channel
        must be read while sending, or it can lock up); it returns False at EOF.
        ``progress(sent, waiting)`` hears of every write and of every wait for the printer:
        the bytes sent, and how many of them the printer has not taken yet."""
        self.dst = dst
        self.interrupted = interrupted
        self.first_byte = first_byte
        self.idle_timeout = idle_timeout
        self.what = what
        self.progress = progress
        self.reader = reader
        self.use_sendfile = sendfile
        self._buffer: bytearray | None = None
        self._held = (-1, 0, 0)  # (src, from, to): file bytes in the buffer not yet sent
        self.sent = 0
        self._waiting = waiting_query(dst) if progress is not None else None
        self._report_at = time.monotonic() + REPORT_EVERY
        self._taken = 0
        # poll, not an epoll: no descriptor of its own to make, register and close per
        # job (a socket printer's job is one connection); a regular file is always ready.
        self._poll = select.poll()
        self._poll.register(dst, select.POLLOUT | (select.POLLIN if reader else 0))
        self._started = False

    def close(self) -> None:
        """Nothing to release (poll holds no descriptor); kept for the backends."""

    def _ready(self, timeout: float) -> tuple[bool, bool]:
        """(writable, readable) within ``timeout`` seconds; an error or hang-up is both
        (the next write or read says what it is)."""
        writable = readable = False
        # (milliseconds as a float: poll rounds them up, and no math module is loaded)
        for _fd, mask in self._poll.poll(timeout * 1000):
            trouble = mask & (select.POLLERR | select.POLLHUP | select.POLLNVAL)
            writable = writable or bool(mask & select.POLLOUT or trouble)
            readable = readable or bool(mask & select.POLLIN or trouble)
        return writable, readable

    def _stop_reading(self) -> None:
        """EOF on the printer's back channel: stop listening to it."""
        self._poll.modify(self.dst, select.POLLOUT)
        self.reader = None

    def report(self) -> None:
        """Tell ``progress`` what was sent and what the printer has not taken yet. The
        kernel is asked that at most every REPORT_EVERY seconds; in between, what it took
        is the last answer (never more than it took). The backend's own wait for the last
        byte, and the worker on success, tell the end."""
        if self.progress is None:
            return
        if self._waiting is not None and time.monotonic() >= self._report_at:
            self._report_at = time.monotonic() + REPORT_EVERY
            try:
                raw = fcntl.ioctl(self.dst, self._waiting, struct.pack("i", 0))
                self._taken = self.sent - min(self.sent, max(0, int(struct.unpack("i", raw)[0])))
            except OSError:  # not a terminal after all (/dev/null): nothing to ask
                self._waiting = None
        if self._waiting is None:
            self._taken = self.sent  # a file or device: what was written was taken
        self.progress(self.sent, self.sent - self._taken)

    def _wait_writable(self) -> None:
        deadline = time.monotonic() + self.idle_timeout if self.idle_timeout > 0 else None
        while True:
            reason = self.interrupted()
            if reason is not None:
                raise JobInterrupted(reason)
            writable, readable = self._ready(TICK)
            if readable and self.reader is not None and not self.reader():
                self._stop_reading()
            if writable:
                return
            self.report()  # the printer may be taking what waits in the buffers
            if deadline is not None and time.monotonic() > deadline:
                raise TransientError(f"{self.what} took no data for {self.idle_timeout:g} s")

    def starting(self) -> None:
        """Right before a byte may leave (the first time): the reporter's ``first_byte``."""
        self._before_write()

    def _before_write(self) -> None:
        if not self._started:
            self._started = True
            self.first_byte()

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            self._wait_writable()
            self._before_write()
            try:
                done = os.write(self.dst, view)
            except BlockingIOError:
                continue
            self.sent += done
            view = view[done:]
            self.report()

    def send_file(self, src: int, size: int) -> None:
        """sendfile(2) from ``src`` (from offset 0) in chunks; through one buffer where it is
        refused or the caller chose a copy (``sendfile=False``)."""
        offset = 0
        use_sendfile = self.use_sendfile
        self._held = (-1, 0, 0)
        while offset < size:
            self._wait_writable()
            self._before_write()
            try:
                if use_sendfile:
                    done = os.sendfile(self.dst, src, offset, min(CHUNK, size - offset))
                else:
                    done = self._copy(src, offset, min(CHUNK, size - offset))
            except BlockingIOError:
                continue
            except OSError as exc:
                if use_sendfile and offset == 0 and exc.errno in _NO_SENDFILE:
                    use_sendfile = False
                    continue
                raise
            if done == 0:
                raise TransientError("the spooled file ended early (it changed while printing)")
            offset += done
            self.sent += done
            self.report()

    def _copy(self, src: int, offset: int, count: int) -> int:
        """One piece through a buffer kept for the whole send; 0 at the file's end. What
        a write could not take stays in the buffer for the next call, never read twice
        (a small send buffer takes a fraction of each piece)."""
        if self._buffer is None:
            self._buffer = bytearray(CHUNK)
        held_src, held_from, held_to = self._held
        if held_src != src or not held_from <= offset < held_to:
            got = os.preadv(src, [memoryview(self._buffer)[:count]], offset)
            if not got:
                return 0
            held_src, held_from, held_to = self._held = (src, offset, offset + got)
        return os.write(self.dst, memoryview(self._buffer)[offset - held_from:
                                                          held_to - held_from])

    def send_stream(self, source: StreamSource) -> None:
        """Copy a pipe (a filter's output) to its end, then ``source.finish()``: splice(2)
        where the kernel moves pipe pages to ``dst`` itself, else through the one buffer.
        A source silent for ``idle_timeout`` fails the try like a printer taking nothing."""
        use_splice = self.use_sendfile and hasattr(os, "splice")
        waiter = select.poll()  # (poll(2), as Pump's: no epoll made and closed per job)
        waiter.register(source.fd, select.POLLIN)
        while True:
            self._wait_source(waiter, source)
            if use_splice:
                self._wait_writable()
                self._before_write()
            try:
                if use_splice:
                    done = os.splice(source.fd, self.dst, CHUNK,
                                     flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)
                else:
                    done = self._pipe_copy(source.fd)
            except BlockingIOError:
                continue
            except OSError as exc:
                if use_splice and exc.errno in _NO_SENDFILE:
                    use_splice = False
                    continue
                raise
            if done == 0:
                source.finish()
                return
            if use_splice:
                self.sent += done
                self.report()

    def _wait_source(self, waiter: select.poll, source: StreamSource) -> None:
        """Wait until the pipe has bytes (or its end), hearing cancel and shutdown and
        reading the printer's back channel meanwhile."""
        deadline = time.monotonic() + self.idle_timeout if self.idle_timeout > 0 else None
        produced: float | None = None
        while not waiter.poll(0):
            if produced is None and source.produced():
                produced = time.monotonic()
            elif produced is not None and time.monotonic() - produced > HELD_GRACE:
                source.finish()  # the producer is done: its own failure comes first
                from lpfilter.children.orphans import GONE_WAIT  # (only a filter's job)
                raise TransientError(f"{source.what} ended, but a process it left running"
                                     " still holds its output open (one lpfilter cannot end:"
                                     " it dropped LPFILTER_FILTER_MARK from its environment,"
                                     " changed its user or made itself non-dumpable, or it"
                                     f" did not end within {GONE_WAIT:g} s of SIGKILL); the"
                                     " job is tried again")
            reason = self.interrupted()
            if reason is not None:
                raise JobInterrupted(reason)
            if self.reader is not None:
                self._wait_writable_or_read(TICK / 4)
            if waiter.poll(TICK * 1000):
                return
            self.report()
            if deadline is not None and time.monotonic() > deadline:
                raise TransientError(f"{source.what} wrote nothing for {self.idle_timeout:g} s"
                                     " (stall_timeout)")

    def _wait_writable_or_read(self, timeout: float) -> None:
        """Read what the printer says while the source is silent."""
        if self.reader is None:
            return
        _writable, readable = self._ready(timeout)
        if readable and self.reader is not None and not self.reader():
            self._stop_reading()

    def _pipe_copy(self, src: int) -> int:
        """One read from the pipe, written out whole; 0 at its end."""
        if self._buffer is None:
            self._buffer = bytearray(CHUNK)
        got = os.readv(src, [self._buffer])
        if got:
            self.write(memoryview(self._buffer)[:got])
        return got

    def send_job(self, src: int, size: int, copies: int, frame: Framing) -> int:
        """Leader, the copies with separators between them, trailer. Returns bytes sent."""
        if frame.leader:
            self.write(frame.leader)
        for copy in range(max(1, copies)):
            if copy and frame.separator:
                self.write(frame.separator)
            self.send_file(src, size)
        if frame.trailer:
            self.write(frame.trailer)
        return self.sent


def send_body(pump: Pump, request: SendRequest[Any], frame: Framing) -> int:
    """What every byte-stream backend sends: ``frame`` around the spooled file's copies,
    or around a filter's stream (``request.source``, copies and all). Returns bytes sent."""
    source = request.source
    if source is None and request.data_fd is not None:
        # The spool's checked descriptor as it is: sendfile(2) and preadv(2) take their own
        # offsets, so neither a copy of it nor its position matters (a file object of a
        # copy cost 7 system calls a job).
        fd = request.data_fd
        return pump.send_job(fd, os.fstat(fd).st_size, request.job.copies, frame)
    if source is None:
        with request.open_data() as data:
            return pump.send_job(data.fileno(), os.fstat(data.fileno()).st_size,
                                 request.job.copies, frame)
    if frame.leader:
        pump.write(frame.leader)
    pump.send_stream(source)
    if frame.trailer:
        pump.write(frame.trailer)
    return pump.sent
