"""Words for a job that waits for its printer: since when, and who will print it.

A queued job is printed only by a process that serves its queue; when none does (no
``lpfilter watch`` runs), ``print``, ``release`` and ``requeue`` say how it will be
printed rather than leave the user waiting for nothing.
"""
from __future__ import annotations

import time

from lpfilter import logs
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from lpfilter.job import Job

log = logs.getLogger(__name__)


def since_words(when: float, now: float) -> str:
    """A time for "printer unreachable since ...": the clock time, with the day if not today."""
    then = time.localtime(when)
    same_day = time.localtime(now)[:3] == then[:3]
    return time.strftime("%H:%M" if same_day else "%b %d %H:%M", then)


def how_it_prints(queue: str) -> str:
    """What prints a queued job when nothing serves its queue now."""
    return (f"it prints when a running 'lpfilter watch', the next 'lpfilter watch --once'"
            f" or another 'lpfilter print -P {queue}' finds the printer ready")


def say_pending(jobs: Iterable[Job], *, fifo: bool) -> None:
    """``watch --once``: one line per job it leaves queued, with the reason (a cron user
    must not believe a job printed because the run ended)."""
    untried = "waits its turn behind the jobs before it (fifo)" if fifo else "not tried yet"
    for job in jobs:
        log.warning("%s-%s: still queued (%s); the next watch --once or a running watch"
                    " tries it again", visible(job.queue), job.id,
                    visible(job.last_error or untried))
