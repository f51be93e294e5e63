"""The queue lease: one process at a time serves a queue, and everyone can see which.

The lease is the queue's lock file, ``sd/.lpfilter/queue.lock``, held with flock(2) (see
``lpfilter.locks``): the kernel lets it go when its holder dies, even by SIGKILL, and the
holder's pid, start time and purpose ("watch", "watch --once", "print") are written in
it. ``watch``, ``watch --once`` and a foreground ``print`` take it before they serve;
``status``, ``release`` and ``requeue`` look at it to say who serves the queue, always in
the words of ``served_by``.
"""
from __future__ import annotations

import os
import time

from lpfilter.locks import Holder, ProcessLock, current_holder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from lpfilter.spool.store import SpoolStore

#: The lease's file, in the queue's state folder (``sd/.lpfilter``).
LEASE_FILE = "queue.lock"


def lease_path(state_dir: str) -> str:
    """Where the lease of the queue whose state folder is ``state_dir`` lives."""
    return os.path.join(state_dir, LEASE_FILE)


def holder_of(state_dir: str) -> Holder | None:
    """The live process that serves the queue now, or None."""
    return current_holder(lease_path(state_dir))


def served(state_dir: str) -> bool:
    """Does a live process serve the queue (hold its lease) now?"""
    return holder_of(state_dir) is not None


def served_by(pid: int, purpose: str, since: float | None = None) -> str:
    """The one wording of who serves a queue: "served by pid N (watch)", and with
    ``since`` the clock time it took the queue ("served by pid N (watch, since 10:04:31)")."""
    when = "" if since is None else f", since {time.strftime('%H:%M:%S', time.localtime(since))}"
    return f"served by pid {pid} ({purpose}{when})"


def holder_words(holder: Holder | None, *, since: bool = False) -> str:
    """``served_by`` for a holder; "served by another process" when the lease names
    nobody (a holder on a full disk could not write its name in it)."""
    if holder is None:
        return "served by another process"
    return served_by(holder.pid, holder.purpose, holder.since if since else None)


class QueueLease:
    """The right to serve one queue, taken by this process for ``purpose``."""

    def __init__(self, state_dir: str, purpose: str, owner: int | None = None) -> None:
        #: The lease file belongs to the queue's owner (root gives it to them).
        self._lock = ProcessLock(lease_path(state_dir), purpose, owner)

    @classmethod
    def of(cls, store: SpoolStore, purpose: str) -> QueueLease:
        """The lease of ``store``'s queue."""
        return cls(store.state, purpose, store.owner)

    @property
    def path(self) -> str:
        return self._lock.path

    @property
    def purpose(self) -> str:
        return self._lock.purpose

    def take(self, *, timeout: float = 0.0, stop: Callable[[], bool] | None = None) -> bool:
        """Take the lease if nobody holds it; wait up to ``timeout`` seconds for it
        (looking at ``stop`` meanwhile). True when this process holds it (already did too)."""
        return self._lock.acquire(timeout=timeout, stop=stop)

    def release(self) -> None:
        """Let the lease go (nothing when not held): a waiting process may take it now."""
        self._lock.release()

    def name_again(self) -> None:
        """Name this process in the lease, if a full disk kept its name out when it took it."""
        self._lock.name_again()

    def holder(self) -> Holder | None:
        """Who holds the lease now (this process too), or None."""
        return current_holder(self.path)
