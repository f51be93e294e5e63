"""The state folders of the queues a daemon cannot serve now, watched so that a queue is
tried again as soon as an administrator mends it (``mv journal journal.bad``), not only
at the next rescan (RESCAN, 30 s).

Only a name moved away, removed or moved in counts, never a write or a close: a try that
fails opens the journal itself (a close), and must not wake the next try. inotify has one
watch a folder: when the queue is served again, its own watch of the folder is this one
(the same wd, its mask replaced), and is not removed here.
"""
from __future__ import annotations

import os
from collections.abc import Container

from lpfilter.spool import inotify
from lpfilter.spool.journalformat import JOURNAL
from lpfilter.spool.spooldir import STATE_DIR

#: The folder itself deleted or moved away: the rescan looks for it.
GONE = inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF | inotify.IN_IGNORED
EVENTS = inotify.IN_MOVED_FROM | inotify.IN_MOVED_TO | inotify.IN_DELETE | GONE
#: The files whose change may mend a queue: the journal, its lock, a compaction's file.
NAMES = (JOURNAL, JOURNAL + ".lock", JOURNAL + ".next")


class RetryWatches:
    """wd -> the broken queue whose state folder it watches."""

    def __init__(self, notify: inotify.Inotify | None) -> None:
        self.notify = notify
        self.queues: dict[int, str] = {}

    def watch(self, queue: str, sd: str) -> None:
        """Watch a broken queue's state folder (once; not at all if it has none yet)."""
        if self.notify is None or not sd or queue in self.queues.values():
            return
        try:
            wd = self.notify.watch(os.path.join(sd, STATE_DIR), EVENTS)
        except OSError:
            return  # no state folder: the rescan looks
        self.queues[wd] = queue

    def drop(self, queue: str, in_use: Container[int]) -> None:
        """The queue is served again (or gone): its watch goes, unless the served queue's
        own watch is the same (``in_use``)."""
        for wd in [wd for wd, name in self.queues.items() if name == queue]:
            del self.queues[wd]
            if wd not in in_use and self.notify is not None:
                self.notify.unwatch(wd)

    def due(self, event: inotify.Event) -> str | None:
        """The queue to try again now, for an event (None: not one of ours, or not news)."""
        queue = self.queues.get(event.watch)
        if queue is not None and event.mask & GONE:
            del self.queues[event.watch]
            return None
        return queue if event.name in NAMES else None
