"""A worker between batches: when its idle-time flush is due, and the wait itself.

Why (issue 16): an LPD server's jobs come one at a time, so its worker went idle after
every job, and made what it wrote durable at once: an fdatasync per job, beside the
MARK's of the next batch and the receiving connection's own, which then waited for it
(one process's flushes of the journal go one after another). The idle-time flush now
comes FLUSH_DELAY after the queue went idle, and only when something waits for it (an
idle worker with nothing owed sleeps on); when the next batch comes first, its MARK's
fdatasync covers what waited. A pass (``burst``: ``watch --once``, a foreground
``print``) flushes at once. Until that flush a power cut may take back the last jobs'
outcomes: they are printed again, flagged possible duplicates, as a power cut within a
batch does (spool/marks.py); the data files of those jobs are removed only after it.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: How long a daemon's worker stays idle before it flushes what it wrote.
FLUSH_DELAY = 0.1
#: How often a one-shot pass waiting out a retry pause looks whether it must stop.
STOP_TICK = 0.2


class Idle:
    """The idle state of one worker; ``wakeup`` is set by whoever has news for it."""

    def __init__(self, clock: Callable[[], float], stop: threading.Event,
                 rescan: float) -> None:
        self.clock, self.stop, self.rescan = clock, stop, rescan
        self.wakeup = threading.Event()
        #: When the queue went idle (None: a batch ran since the last look).
        self.since: float | None = None

    def flush_due(self, *, ran: bool, burst: bool, owed: bool) -> float | None:
        """After a batch (``ran``) or a look that found nothing to send: None when the
        idle-time flush is due now (or there is none: ``ran``, or nothing is ``owed`` a
        flush: then the worker does not wake for it), else when it will be."""
        if ran or not owed:
            self.since = None
            return None
        now = self.clock()
        if self.since is None:
            self.since = now
        due = self.since + FLUSH_DELAY
        return None if burst or now >= due else due

    def pause(self, times: list[float | None], now: float, *, burst: bool) -> None:
        """Wait for the first of ``times`` (None: none; a daemon: ``rescan``), ``wakeup``,
        ``stop``."""
        deadlines = [t for t in times if t is not None]
        if not burst:
            deadlines.append(now + self.rescan)
        end = time.monotonic() + (max(0.0, min(deadlines) - now) if deadlines
                                  else self.rescan)
        # A one-shot pass (a foreground print) looks at ``stop`` every STOP_TICK: its
        # signal handler may only set that flag, and Ctrl-C must not sit out a pause.
        while not self.stop.is_set() and (left := end - time.monotonic()) > 0:
            if self.wakeup.wait(min(left, STOP_TICK) if burst else left):
                break
        self.wakeup.clear()
