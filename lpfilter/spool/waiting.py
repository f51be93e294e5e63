"""Words for a job that waits for its printer: since when, and who will print it.

A queued job is printed only by a process that serves its queue; when none does (no
``lpfilter watch`` runs), ``print``, ``release`` and ``requeue`` say how it will be
printed rather than leave the user waiting for nothing.
"""
from __future__ import annotations

import os
import time

from lpfilter.spool.locks import current_holder


def since_words(when: float, now: float) -> str:
    """A time for "printer unreachable since ...": the clock time, with the day if not today."""
    then = time.localtime(when)
    same_day = time.localtime(now)[:3] == then[:3]
    return time.strftime("%H:%M" if same_day else "%b %d %H:%M", then)


def visible(text: str) -> str:
    """Text for a terminal or log with its control characters shown, not obeyed."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def served(state_dir: str) -> bool:
    """Does a live process serve the queue (hold its lock) now?"""
    return current_holder(os.path.join(state_dir, "queue.lock")) is not None


def how_it_prints(queue: str) -> str:
    """What prints a queued job when nothing serves its queue now."""
    return (f"it prints when a running 'lpfilter watch', the next 'lpfilter watch --once'"
            f" or another 'lpfilter print -P {queue}' finds the printer ready")
