"""The state folders of the queues a daemon cannot serve now, watched so that a queue is
tried again as soon as an administrator mends it (``mv journal journal.bad``), not only
at the next rescan (RESCAN, 30 s).

Only a name moved away, removed or moved in counts, never a write or a close: a try that
fails opens the journal itself (a close), and must not wake the next try. inotify has one
watch a folder: when the queue is served again, its own watch of the folder is this one
(the same wd, its mask replaced), and is not removed here.

The folder is the spool owner's: its names can be renamed thousands of times a second,
and each try of a damaged queue reads its whole journal (as root). So events only mark
the queue pending (one try per loop iteration at most); a queue is tried at most once
a FIRST_WAIT (doubled at each failed try on changed files, up to RESCAN; reset once it
is served); and a try is skipped while the journal and its lock are the very files the
last failed try found (same device, inode, size and mtime): a move aside, a new or
mended journal, is news; a rename of another name is not.
"""
from __future__ import annotations

import os
from collections.abc import Container

from lpfilter.errors import AccessError
from lpfilter.spool import inotify
from lpfilter.spool.journalformat import JOURNAL
from lpfilter.spool.spooldir import STATE_DIR
from lpfilter.spool.worker import RESCAN

#: The folder itself deleted or moved away: the rescan looks for it.
GONE = inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF | inotify.IN_IGNORED
EVENTS = inotify.IN_MOVED_FROM | inotify.IN_MOVED_TO | inotify.IN_DELETE | GONE
#: The files whose change may mend a queue: the journal, its lock, a compaction's file.
NAMES = (JOURNAL, JOURNAL + ".lock", JOURNAL + ".next")
#: The least time between two tries of a broken queue (doubled while it keeps failing).
FIRST_WAIT = 1.0

#: What a try of a queue found: its journal's and lock's (dev, ino, size, mtime_ns).
Stamp = tuple[tuple[int, int, int, int] | None, ...]


def stamp(sd: str) -> Stamp:
    """The journal and its lock as a try finds them (None: no such name, or no stat)."""
    found: list[tuple[int, int, int, int] | None] = []
    for name in (JOURNAL, JOURNAL + ".lock"):
        try:
            info = os.lstat(os.path.join(sd, STATE_DIR, name))
        except OSError:
            found.append(None)
            continue
        found.append((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(found)


def waits(error: BaseException) -> str:
    """What a daemon does about a queue whose journal (or its lock) it cannot use."""
    journal = os.path.join(STATE_DIR, JOURNAL)
    if not isinstance(error, AccessError) or journal not in str(error):
        return ""
    return (f"; the queue is not served until then (tried again when the journal is"
            f" moved or removed, and every {RESCAN:g} s)")


class RetryWatches:
    """wd -> the broken queue whose state folder it watches."""

    def __init__(self, notify: inotify.Inotify | None) -> None:
        self.notify = notify
        self.queues: dict[int, str] = {}
        #: Queues an event named since their last try (tried once each, when due).
        self.pending: set[str] = set()
        #: Per queue: the spool directory, the files and time of its last failed try, the
        #: wait before the next one.
        self.failures: dict[str, tuple[str, Stamp, float, float]] = {}

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
        own watch is the same (``in_use``); its waits start again from FIRST_WAIT."""
        self.pending.discard(queue)
        self.failures.pop(queue, None)
        for wd in [wd for wd, name in self.queues.items() if name == queue]:
            del self.queues[wd]
            if wd not in in_use and self.notify is not None:
                self.notify.unwatch(wd)

    def due(self, event: inotify.Event) -> None:
        """An event: its queue is tried again when ``ready`` says (not one of ours, or not
        news: nothing)."""
        queue = self.queues.get(event.watch)
        if queue is not None and event.mask & GONE:
            del self.queues[event.watch]
        elif queue is not None and event.name in NAMES:
            self.pending.add(queue)

    def failed(self, queue: str, sd: str, found: Stamp, now: float) -> None:
        """A try of the queue failed on the files ``found`` (``stamp`` before it). The wait
        doubles only when the files had changed since the last failure (someone keeps
        changing them): a rescan of the same damaged file must not slow down the try an
        administrator's move aside asks for."""
        last = self.failures.get(queue)
        wait = FIRST_WAIT if last is None else last[3] if last[1] == found else min(
            last[3] * 2, RESCAN)
        self.failures[queue] = (sd, found, now, wait)

    def timeout(self, now: float) -> float:
        """How long the loop may sleep before a pending queue is due (RESCAN if none)."""
        due = [self._after(queue) for queue in self.pending]
        return max(0.0, min(due) - now) if due else RESCAN

    def ready(self, now: float, broken: Container[str]) -> list[str]:
        """The pending queues to try now (once each): their wait is over and their files
        are not the ones their last try failed on."""
        tries = []
        for queue in sorted(self.pending):
            if queue in broken and now < self._after(queue):
                continue  # still waiting: stays pending
            self.pending.discard(queue)
            failure = self.failures.get(queue)
            if queue in broken and (failure is None or stamp(failure[0]) != failure[1]):
                tries.append(queue)
        return tries

    def _after(self, queue: str) -> float:
        failure = self.failures.get(queue)
        return failure[2] + failure[3] if failure is not None else 0.0
