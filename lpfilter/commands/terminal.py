"""What a person at a terminal sees while ``print`` or ``demo`` sends a job: a progress bar
(bytes the printer has taken, rate, time left) for any job that takes more than about a
second, and the printer's status lines. Nothing at all when standard error is not a
terminal (cron, scripts, pipes)."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from lpfilter.job import Job

#: A job sent faster than this (seconds) shows no bar: it would only flicker.
BAR_AFTER = 1.0
_REDRAW = 0.1


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover


class TerminalObserver:
    """Draws the bar and the status lines on ``stream``; ``force`` draws even off a terminal
    (``demo``, whose whole point is to show them), ``after`` is how long a send goes on
    before its bar appears.

    The counts it gets are what the printer has taken, not what lpfilter has written (a
    small job fits in the socket's buffers at once), and the bar is taken away only by
    ``end``, which the worker calls when the backend is done with the job: so the bar stays
    until the printer has taken the last byte."""

    def __init__(self, stream: TextIO, *, force: bool = False, after: float = BAR_AFTER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.enabled = force or self.tty
        self.after = after
        self.clock = clock
        self._start: dict[str, float] = {}
        self._drawn = 0.0
        self._tenths: dict[str, int] = {}
        self._bar_visible = False

    def _emit(self, text: str) -> None:
        """Write and flush; a terminal that went away (closed, hung up) must not fail the
        job being sent."""
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(text)
            self.stream.flush()

    def _clear(self) -> None:
        if self._bar_visible:
            self._emit("\r\x1b[K" if self.tty else "\n")
            self._bar_visible = False

    def status(self, job: Job, message: str) -> None:
        if not self.enabled:
            return
        self._clear()
        self._emit(f"lpfilter: {visible(job.queue)}-{job.id}: printer: {visible(message)}\n")

    def progress(self, job: Job, taken: int) -> None:
        """The printer has taken ``taken`` bytes of ``job`` (framing included)."""
        if not self.enabled:
            return
        total = job.size * max(1, job.copies)
        now = self.clock()
        start = self._start.setdefault(job.id, now)
        if now - start < self.after:
            return
        tty = self.tty
        if tty and now - self._drawn < _REDRAW and taken < total:
            return
        taken = min(taken, total)
        tenth = min(10, int(10 * taken / total)) if total else 10
        if not tty and self._tenths.get(job.id, -1) >= tenth:
            return  # off a terminal: one line per tenth, not a flood
        self._tenths[job.id] = tenth
        self._drawn = now
        done = taken / total if total else 1.0
        rate = taken / (now - start) if now > start else 0.0
        left = f", {(total - taken) / rate:.0f} s left" if rate and taken < total else ""
        bar = "#" * int(done * 30)
        self._emit(f"\r[{bar:<30}] {done:4.0%} {_size(taken)} of {_size(total)},"
                   f" {_size(rate)}/s{left}\x1b[K" if tty else
                   f"[{bar:<30}] {done:4.0%} {_size(taken)} of {_size(total)}\n")
        self._bar_visible = tty

    def end(self, job: Job) -> None:
        """The backend is done with ``job`` (sent, failed or interrupted): no bar any more."""
        self._start.pop(job.id, None)
        self._tenths.pop(job.id, None)
        self._clear()

    def close(self) -> None:
        self._clear()
