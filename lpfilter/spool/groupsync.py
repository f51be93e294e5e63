"""Group commit among one process's threads: one fdatasync for all the threads waiting.

The journal (journal.py) appends under its lock and makes records durable outside it, so
threads that committed at about the same time (an LPD server's connections, a worker and a
receiver) share one flush: the first to ask flushes for everything appended so far, the
others wait for it, and those who came after it started wait for the next one.

A waiting thread needs ``threading.Condition``, which is made on the first wait, on this
object's plain lock: importing threading costs a quick command (``print``, ``status``)
0.7 ms of its start, and a single-threaded command never waits.
"""
from __future__ import annotations

import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    import threading


class GroupSync:
    """How far one file is durable, and the one flush under way."""

    def __init__(self) -> None:
        #: Guards ``_syncing`` and ``synced``.
        self._mutex = _thread.allocate_lock()
        self._cond: threading.Condition | None = None
        self._syncing = False
        #: Everything before this LSN is durable.
        self.synced = 0

    def sync_to(self, end: int, flush: Callable[[], int]) -> None:
        """Return once everything before ``end`` is durable. One thread calls ``flush``
        (which makes what was appended so far durable, and returns up to where) for all;
        a failed flush raises in the thread that made it, and the next one tries again."""
        with self._mutex:
            while self.synced < end:
                if self._syncing:
                    self._wait()
                    continue
                self._syncing = True
                self._mutex.release()
                try:
                    target = flush()
                finally:
                    self._mutex.acquire()
                    self._syncing = False
                    self._notify()
                self.synced = max(self.synced, target)

    def paused(self) -> Paused:
        """No flush runs meanwhile (``with group.paused():``; the one under way ends
        first): the journal swaps its descriptor, whose closed number could be another
        file's by then."""
        return Paused(self)

    def _pause(self) -> None:
        with self._mutex:
            while self._syncing:
                self._wait()
            self._syncing = True

    def _resume(self) -> None:
        with self._mutex:
            self._syncing = False
            self._notify()

    def _wait(self) -> None:
        """(Holding the lock) wait until the flushing thread says it is done."""
        if self._cond is None:
            import threading
            self._cond = threading.Condition(self._mutex)
        self._cond.wait()

    def _notify(self) -> None:
        """(Holding the lock) wake the threads waiting for this flush, if one ever waited."""
        if self._cond is not None:
            self._cond.notify_all()


class Paused:
    """``GroupSync.paused``. (A class, not contextlib's decorator: contextlib costs every
    quick command 2.7 M instructions to import.)"""

    __slots__ = ("group",)

    def __init__(self, group: GroupSync) -> None:
        self.group = group

    def __enter__(self) -> None:
        self.group._pause()

    def __exit__(self, *_exc: object) -> None:
        self.group._resume()
