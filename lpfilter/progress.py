"""What a person at a terminal sees while ``print`` or ``demo`` sends a job: a progress bar
(bytes, rate, time left) for large jobs, and the printer's status lines. Nothing at all
when standard error is not a terminal (cron, scripts, pipes)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from lpfilter.spool.job import Job

#: Jobs smaller than this print too fast for a bar to mean anything.
BAR_MIN = 4 * 1024 * 1024
_REDRAW = 0.1


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover


class TerminalObserver:
    """Draws the bar and the status lines on ``stream``; ``force`` draws even off a terminal
    (``demo``, whose whole point is to show them)."""

    def __init__(self, stream: TextIO, *, force: bool = False, bar_min: int = BAR_MIN) -> None:
        self.stream = stream
        self.enabled = force or stream.isatty()
        self.bar_min = bar_min
        self._start: dict[str, float] = {}
        self._drawn = 0.0
        self._tenths: dict[str, int] = {}
        self._bar_visible = False

    def _clear(self) -> None:
        if self._bar_visible:
            self.stream.write("\r\x1b[K" if self.stream.isatty() else "\n")
            self._bar_visible = False

    def status(self, job: Job, message: str) -> None:
        if not self.enabled:
            return
        self._clear()
        self.stream.write(f"lpfilter: {job.queue}-{job.id}: printer: {message}\n")
        self.stream.flush()

    def progress(self, job: Job, sent: int) -> None:
        total = job.size * max(1, job.copies)
        if not self.enabled or total < self.bar_min:
            return
        now = time.monotonic()
        start = self._start.setdefault(job.id, now)
        tty = self.stream.isatty()
        if tty and now - self._drawn < _REDRAW and sent < total:
            return
        tenth = min(10, int(10 * sent / total)) if total else 10
        if not tty and self._tenths.get(job.id, -1) >= tenth:
            return  # off a terminal: one line per tenth, not a flood
        self._tenths[job.id] = tenth
        self._drawn = now
        done = min(1.0, sent / total) if total else 1.0
        rate = sent / (now - start) if now > start else 0.0
        left = f", {max(0.0, (total - sent) / rate):.0f} s left" if rate and sent < total else ""
        bar = "#" * int(done * 30)
        self.stream.write(f"\r[{bar:<30}] {done:4.0%} {_size(sent)} of {_size(total)},"
                          f" {_size(rate)}/s{left}\x1b[K" if self.stream.isatty() else
                          f"[{bar:<30}] {done:4.0%} {_size(sent)} of {_size(total)}\n")
        self._bar_visible = self.stream.isatty()
        if sent >= total:
            self._clear()
        self.stream.flush()

    def close(self) -> None:
        self._clear()
