"""A started program's output: the thread that reads it into status lines (``Reader``)
and the queue those lines wait in until the job's thread says them (``Messages``).
"""
from __future__ import annotations

import collections
import contextlib
import os
import select
import threading
import time
from collections.abc import Callable

from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: A filter's stderr line longer than this is cut (a status line, not a document).
LINE_LIMIT = 500


#: Status lines waiting to be said, the newest kept; older ones are counted, not kept.
QUEUE_LINES = 100
#: Lines said at most per ``SAY_INTERVAL``: a chattering filter cannot turn the job's
#: status file and log into a copy of its stderr, nor starve the printer's connection.
SAY_LINES = 5
SAY_INTERVAL = 1.0


class Messages:
    """Status lines from the filters' stderr, queued by their reader threads and passed on
    by the thread that talks to the job (``drain``): one job's reporter is never called
    from two threads. Bounded in memory (``QUEUE_LINES``) and in what is said
    (``SAY_LINES`` a second, the newest, and how many more there were)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: collections.deque[str] = collections.deque(maxlen=QUEUE_LINES)
        self._dropped = 0
        self._said_at: float | None = None

    def put(self, line: str) -> None:
        with self._lock:
            if len(self._lines) == QUEUE_LINES:
                self._dropped += 1
            self._lines.append(line)

    def drain(self, say: Any, *, flush: bool = False) -> None:
        """Pass the newest queued lines to ``say`` (a reporter's ``status``), after a line
        saying how many were passed over; at most once a ``SAY_INTERVAL`` unless
        ``flush`` (the attempt's end)."""
        now = time.monotonic()
        if not flush and self._said_at is not None and now - self._said_at < SAY_INTERVAL:
            return
        with self._lock:
            lines = list(self._lines)[-SAY_LINES:]
            passed = self._dropped + len(self._lines) - len(lines)
            self._lines.clear()
            self._dropped = 0
        if not lines:
            return
        self._said_at = now
        if passed:
            say(f"... {passed} more filter message line{'s' if passed != 1 else ''}"
                " not shown")
        for line in lines:
            say(line)


#: After the program's exit (and its group's end), how long its output may take to reach
#: its end before the reader is stopped: only a process outside its group (one that made
#: a session of its own) can still hold it open.
READ_GRACE = 1.0


class Reader:
    """The thread reading a program's output pipe, line by line, into status lines. It
    owns the descriptor (closed when it ends) and waits in poll(2) on it and on a pipe of
    its own, so ``finish`` can stop it at once: no close ever waits for a blocked read."""

    def __init__(self, fd: int, said: Callable[[str], None], *, name: str) -> None:
        self.fd = fd
        self.said = said
        try:
            self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        except OSError:
            os.close(fd)  # it owns the descriptor from the start
            raise
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name,
                                        daemon=True)
        try:
            self._thread.start()
        except BaseException:  # no thread (no memory, no task left): nothing kept open
            for own in (fd, self._wake_r, self._wake_w):
                os.close(own)
            raise

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        pending = b""
        try:
            while True:
                ready = dict(poller.poll())
                if self._wake_r in ready:  # stopped: what is left is not waited for
                    break
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                pending = self._lines(pending + chunk)
            if pending:
                self._say(pending)
        except OSError:  # nothing more to read
            pass
        finally:
            os.close(self.fd)
            os.close(self._wake_r)

    def _lines(self, data: bytes) -> bytes:
        """Say every whole line (a longer one cut into LINE_LIMIT pieces); the rest."""
        while True:
            end = data.find(b"\n", 0, LINE_LIMIT)
            if end < 0 and len(data) < LINE_LIMIT:
                return data
            cut = end + 1 if end >= 0 else LINE_LIMIT
            self._say(data[:cut])
            data = data[cut:]

    def _say(self, raw: bytes) -> None:
        self.said(visible(raw.decode("utf-8", "replace").strip()))

    def finish(self) -> None:
        """Read what is there until the end (READ_GRACE at most), then stop; bounded."""
        self._thread.join(timeout=READ_GRACE)
        with self._lock:
            if self._wake_w < 0:
                return
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
            self._thread.join(timeout=5)
            os.close(self._wake_w)
            self._wake_w = -1
