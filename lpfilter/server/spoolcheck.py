"""The spool's set-up checks, once per queue per daemon instead of once per connection.

``SpoolStore.ensure`` makes or checks lpfilter's folders in a queue's ``sd`` (its mode,
its owner, the sticky bit of a shared one, each private folder's owner and mode, moved
aside when planted): about fourteen system calls, four of them ``mkdir``. A daemon
receiving a job a connection paid them on every connection, for folders that had not
changed. ``SpoolChecks`` remembers, per spool, what the folders looked like when they
last passed: ``sd``'s device, inode, mode and owner, and the state folder's inode, mode,
owner, ctime and mtime (which change when an entry in it is made, removed or replaced,
so a removed ``tmp/`` or ``jobs/``, or a state folder replaced, is noticed). Two
``stat`` calls tell whether the checks must run again; when anything differs they run in
full, with today's errors, and their pass is remembered only when nothing changed while
they ran (the first connection, which makes the folders, is not remembered: the next
one checks them again). An operation that still fails for want of a folder (an
operator's ``rm`` between two looks) makes the spool be checked in full next time
(``forget``).

The same object carries what the daemon's transfers in progress were promised of each
file system (``room``, spool/room.py), since every connection of the daemon shares it.
"""
from __future__ import annotations

import os
import threading

from lpfilter.spool.room import Promised

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.spool.store import SpoolStore

Mark = tuple[int, ...]


def mark(store: SpoolStore) -> Mark | None:
    """What ``store``'s folders look like now (None: one of them cannot be looked at)."""
    try:
        sd = os.stat(store.sd)
        state = os.lstat(store.state)
    except OSError:
        return None
    return (sd.st_dev, sd.st_ino, sd.st_mode, sd.st_uid, sd.st_gid,
            state.st_ino, state.st_mode, state.st_uid, state.st_ctime_ns, state.st_mtime_ns)


class SpoolChecks:
    """The spools whose set-up checks passed, with what they looked like then (thread-safe:
    a daemon's connection threads share one)."""

    def __init__(self) -> None:
        self._passed: dict[str, Mark] = {}
        self._lock = threading.Lock()
        #: Bytes promised to the jobs being received, per file system.
        self.room = Promised()

    def ensure(self, store: SpoolStore, action: str = "watch") -> None:
        """``store.ensure(action)`` unless the spool passed it and has not changed since;
        its errors as they are."""
        now = mark(store)
        with self._lock:
            if now is not None and self._passed.get(store.sd) == now:
                return
        store.ensure(action)
        if now is not None and mark(store) == now:  # nothing changed while it looked
            with self._lock:
                self._passed[store.sd] = now

    def forget(self, store: SpoolStore) -> None:
        """An operation failed on the spool: check it in full next time."""
        with self._lock:
            self._passed.pop(store.sd, None)
