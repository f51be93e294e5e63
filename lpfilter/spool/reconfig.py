"""What a printcap reread changes for the watcher (spool/watcher.py): which served queues
stop (removed, or their settings changed; an edit that only moved an entry's lines, such
as a queue added above it, changes none, so the job it prints is left alone), and the
jobs a queue leaves behind in a spool it no longer uses (said, never silently dropped).
"""
from __future__ import annotations

import time

from lpfilter.errors import LpfilterError
from lpfilter.printcap.pools import same_servers
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap import Entry
    from lpfilter.spool.serve import Served


def going(entries: dict[str, Entry], served: dict[str, Served]
          ) -> dict[str, tuple[str, str | None]]:
    """The served queues to stop, each with why (as the log says it) and what it
    leaves behind (``left_behind``)."""
    found: dict[str, tuple[str, str | None]] = {}
    for name, each in served.items():
        old, new = each.entry, entries.get(name)
        if new is None:
            found[name] = ("removed from the printcap; stopping it", left_behind(each, new))
        elif old.settings() != new.settings() or not same_servers(new, old):
            found[name] = ("changed in the printcap; restarting it", left_behind(each, new))
    return found


def stop_together(stopping: list[Served], grace: float) -> None:
    """Stop these queues' workers together, one grace for all: one after another, a
    reread stopping three busy queues took three graces, and the other queues' new jobs
    waited meanwhile (the watcher's loop does this)."""
    deadline = time.time() + grace
    for served in stopping:
        if served.thread is not None:
            served.server.stop(deadline)
    for served in stopping:
        if served.thread is not None:
            served.thread.join(max(0.0, deadline - time.time()) + 10)


def left_behind(served: Served, new: Entry | None) -> str | None:
    """A warning when the spool a queue stops using keeps jobs not finished: the queue
    is removed, or its ``sd`` changed. Nothing serves them there any more."""
    old = served.entry
    spool = old.string("sd") or ""
    if new is not None and (new.string("sd") or "") == spool:
        return None
    try:
        count = len(served.worker.store.jobs(finished=False))
    except (LpfilterError, OSError):
        return None
    if not count:
        return None
    now = ("the queue is no longer in the printcap" if new is None else
           f"its spool is now {visible(new.string('sd') or '')}")
    return (f"queue {visible(old.name)}: {count} job{'s' if count != 1 else ''} not finished"
            f" stay in {visible(spool)}, which nothing serves now ({now}); they are kept"
            " there: put the printcap's entry back to print them ('lpfilter status' with"
            " that entry lists them)")
