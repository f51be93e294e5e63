"""One client's connection, as the print server reads it: bounded in every way.

A client may be hostile or broken: every line has a length limit, and every unit (a line,
a control file, each MiB of a data file, an answer) must pass within ``idle_timeout``
seconds of its start, so a client that sends a byte now and then is cut like a silent one.
Data goes straight to a file descriptor through one buffer, so memory stays flat whatever
the job's size. The daemon's shutdown is heard at once through its StopPipe (within
``TICK`` seconds when a Wire has only the flag). Nothing here knows the LPD protocol
beyond "lines end with LF".
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import cast

from lpfilter.errors import PermanentError

TICK = 0.2
CHUNK = 1 << 20
#: While a file arrives, its written pages are handed to the disk every this many bytes
#: (sync_file_range), so the fsync before the final acknowledgement waits for the tail
#: only, not for the whole job at once.
WRITEBACK = 16 << 20
_SYNC_FILE_RANGE_WRITE = 2
READ, WRITE = select.POLLIN, select.POLLOUT


class ClientError(PermanentError):
    """The client broke the protocol, went silent or left; ``reason`` is one line for the
    log (the client's text in it has its control characters made visible by the caller)."""


class LineTooLong(ClientError):
    """A line past its limit: the rest of it is never read. ``head``: its first byte (a
    request's code, so that the client can be answered)."""

    def __init__(self, message: str, head: bytes = b"") -> None:
        super().__init__(message)
        self.head = head


class TooMuch(ClientError):
    """More bytes than the limit given to ``Wire.into`` (the client may still be sending)."""


class StopPipe:
    """The daemon's stop as a descriptor every connection's selector waits on with its
    socket: an idle connection sleeps until data, its deadline or ``fire`` (never read, so
    it stays readable for all of them), instead of waking every TICK to look at a flag."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._lock = threading.Lock()

    def fileno(self) -> int:
        return self._r

    def fire(self) -> None:
        with self._lock:
            if self._w >= 0:
                os.write(self._w, b"\0")
                os.close(self._w)  # fired once: the read end stays readable
                self._w = -1

    def close(self) -> None:
        """After every connection ended (a Wire still waiting would see EOF: readable)."""
        self.fire()
        os.close(self._r)


class Wire:
    """Reads and writes of one accepted connection (made non-blocking here)."""

    def __init__(self, sock: socket.socket, *, idle_timeout: float,
                 stop: threading.Event | None = None,
                 stop_pipe: StopPipe | None = None) -> None:
        """``stop_pipe``, when given, fires with ``stop`` (whoever sets it fires it):
        waits then take no tick; without it ``stop`` is looked at every TICK."""
        self.sock = sock
        self.idle_timeout = idle_timeout
        self.stop = stop or threading.Event()
        self._stop_pipe = stop_pipe
        self.received = 0
        self._pending = bytearray()  # read past a line's end, not yet consumed
        self._buffer: bytearray | None = None
        self._deadline = 0.0
        sock.setblocking(False)
        # poll, not epoll: no descriptor of its own (an epoll cost a connection five
        # system calls: create, two registrations, a change, close), and one or two fds.
        self._fd = sock.fileno()
        self._poll = select.poll()
        self._events = READ
        self._poll.register(self._fd, READ)
        if stop_pipe is not None:
            self._poll.register(stop_pipe.fileno(), READ)

    def close(self) -> None:
        """Nothing to release (kept for the callers: a Wire is closed with its socket)."""

    def drain(self, limit: int = 65536) -> None:
        """Read what the client sent already, without waiting: closed with unread bytes,
        the socket would reset the connection, and the client lose the answer just sent."""
        with contextlib.suppress(OSError):
            self.sock.recv(limit, socket.MSG_DONTWAIT)

    def _start(self) -> None:
        """A new unit begins: it has ``idle_timeout`` seconds."""
        self._deadline = time.monotonic() + self.idle_timeout

    def _wait(self, events: int) -> None:
        """Until the socket is ready for ``events``; ClientError once the unit's time is
        up, or when the daemon stops."""
        if events != self._events:
            self._poll.modify(self._fd, events)
            self._events = events
        deadline = self._deadline
        while not self.stop.is_set():
            left = max(0.0, deadline - time.monotonic())
            ready = self._poll.poll(math.ceil(1000 * (left if self._stop_pipe
                                                      else min(TICK, left))))
            if any(fd == self._fd for fd, _ in ready):
                return
            if self._stop_pipe is not None and ready:
                break  # fired: the daemon stops
            if time.monotonic() >= deadline:
                raise ClientError(f"the client took more than {self.idle_timeout:g} s"
                                  " (a line, a control file, or a MiB of data)")
        raise ClientError("the server is shutting down")

    def _quickack(self) -> None:
        """Acknowledge at once what was read. An LPD client writes a file, then the one
        byte ``\\0`` that ends it, and waits for our answer; its Nagle holds that byte until
        the file is acknowledged, and Linux would delay that ACK by 40 ms (its quick-ack
        mode does not last, so it is asked again after every read). LPRng's lpd pays the
        40 ms on every job; bench/README.md, LPD server."""
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass

    def _recv(self, size: int) -> bytes:
        while True:
            self._wait(READ)
            try:
                data = self.sock.recv(size)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                raise ClientError(f"the connection broke ({exc.strerror})") from None
            self.received += len(data)
            self._quickack()
            return data

    def line(self, limit: int) -> bytes | None:
        """One line without its LF; None when the client closed before sending any byte of
        it (the normal end of a connection). A longer line, or an end in mid-line, is a
        ClientError: the rest of such a line is never read."""
        self._start()
        while True:
            end = self._pending.find(b"\n")
            if end >= 0:
                if end > limit:
                    raise LineTooLong(f"a line longer than {limit} bytes", bytes(self._pending[:1]))
                line = bytes(self._pending[:end])
                del self._pending[:end + 1]
                return line
            if len(self._pending) > limit:
                raise LineTooLong(f"a line longer than {limit} bytes", bytes(self._pending[:1]))
            data = self._recv(max(limit + 1 - len(self._pending), 1))
            if not data:
                if self._pending:
                    raise ClientError("the client closed the connection in the middle of a line")
                return None
            self._pending += data

    def exact(self, size: int) -> bytes:
        """``size`` bytes held in memory: only for what has a small limit (a control file)."""
        self._start()
        out = bytearray()
        while len(out) < size:
            if self._pending:
                take = min(size - len(out), len(self._pending))
                out += self._pending[:take]
                del self._pending[:take]
                continue
            data = self._recv(min(CHUNK, size - len(out)))
            if not data:
                raise ClientError(f"the client closed the connection after {len(out)} of"
                                  f" {size} bytes")
            out += data
        return bytes(out)

    def octet(self) -> bytes:
        """One byte, or b"" when the client closed before it: a file's closing NUL, which
        a streaming client (CUPS ``mode=stream``) leaves out before it closes."""
        self._start()
        if not self._pending:
            self._pending += self._recv(4096)
        if not self._pending:
            return b""
        first = bytes(self._pending[:1])
        del self._pending[:1]
        return first

    def into(self, fd: int, size: int | None, limit: int | None = None) -> int:
        """Copy ``size`` bytes (None: to the end of the connection) into ``fd``, streamed
        through one buffer; ClientError at an early end, or beyond ``limit`` bytes."""
        done = 0
        if self._pending:
            take = len(self._pending) if size is None else min(size, len(self._pending))
            first = memoryview(bytes(self._pending[:take]))
            done = self._write_all(fd, first, done, limit)
            del self._pending[:take]
        # A small file gets a buffer of its size: a MiB zeroed for a 1 KiB job was a third
        # of a received job's CPU. A bigger buffer made once is kept for the connection.
        want = CHUNK if size is None else max(1, min(CHUNK, size - done))
        if self._buffer is None or len(self._buffer) < want:
            self._buffer = bytearray(want)
        view = memoryview(self._buffer)
        filled = CHUNK  # bytes since the current unit began: a new one every CHUNK
        flush_at = done + WRITEBACK
        while size is None or done < size:
            if done >= flush_at:
                start_writeback(fd)
                flush_at = done + WRITEBACK
            if filled >= CHUNK:
                self._start()
                filled = 0
            want = min(CHUNK - filled, len(view))
            if size is not None:
                want = min(want, size - done)
            got = self._recv_into(view[:want])
            filled += got
            if got == 0:
                if size is None:
                    return done
                raise ClientError(f"the client closed the connection after {done} of"
                                  f" {size} bytes of a file")
            done = self._write_all(fd, view[:got], done, limit)
        return done

    def _recv_into(self, view: memoryview) -> int:
        while True:
            self._wait(READ)
            try:
                got = self.sock.recv_into(view)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                raise ClientError(f"the connection broke ({exc.strerror})") from None
            self.received += got
            self._quickack()
            return got

    @staticmethod
    def _write_all(fd: int, view: memoryview, done: int, limit: int | None) -> int:
        if limit is not None and done + len(view) > limit:
            raise TooMuch(f"more than the {limit} bytes allowed")
        while view:
            written = os.write(fd, view)
            view = view[written:]
            done += written
        return done

    def send(self, data: bytes) -> None:
        """All of ``data``; a client that stops reading is cut after ``idle_timeout``."""
        view = memoryview(data)
        self._start()
        while view:
            if self.stop.is_set():
                raise ClientError("the server is shutting down")
            try:  # first: an answer fits the socket's buffer; waiting for room (two
                # epoll_ctl and an epoll_wait per answer) is for a client that stops reading
                view = view[self.sock.send(view):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                raise ClientError(f"the connection broke ({exc.strerror})") from None
            self._wait(WRITE)


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range(2) (Linux), or None where there is none: the standard
    library has no binding, and the fsync that follows keeps the promise either way."""
    import ctypes  # only a daemon receiving a job needs it: no command pays its import

    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", function)


def start_writeback(fd: int) -> None:
    """Start writing ``fd``'s dirty pages to disk without waiting for them; a file
    system or kernel that cannot is simply left to the later fsync."""
    function = _sync_file_range()
    if function is not None:
        function(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)
