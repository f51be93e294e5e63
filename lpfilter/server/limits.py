"""How many connections the print server serves: per class of socket and per client.

Two classes, each with its own limit, so that one cannot starve the other: ``tcp``
(network clients, ``--max-connections``) and ``local`` (the Unix socket, MAX_LOCAL). Within
a class one client (a TCP address, or a local uid) holds at most a quarter of the class's
slots, so that one host or one user holding slow connections leaves room for the others.
A log line said for each refused client is said at most once a minute per client, with a
count of those passed over, so that a flood of refusals cannot flood the journal.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

#: The Unix socket's limit (local users' print, status, cancel).
MAX_LOCAL = 64
#: A client may hold at most this share of its class's slots (at least one).
CLIENT_SHARE = 4
#: One log line per client per this many seconds.
LOG_INTERVAL = 60.0

Client = tuple[str, object]


def per_client(limit: int) -> int:
    """The slots one client may hold of a class with ``limit``."""
    return max(1, limit // CLIENT_SHARE)


class Slots:
    """The connections in service, counted per class and per client (thread-safe)."""

    def __init__(self, limits: dict[str, int]) -> None:
        self.limits = dict(limits)
        self.serving = Counter(dict.fromkeys(limits, 0))
        self._clients: Counter[Client] = Counter()
        self._lock = threading.Lock()

    def full(self, klass: str) -> bool:
        return self.serving[klass] >= self.limits[klass]

    @property
    def total(self) -> int:
        return sum(self.serving.values())

    def take(self, klass: str, client: Client) -> bool:
        """A slot for ``client`` in ``klass``; False when the class or the client's share
        is used up."""
        with self._lock:
            if (self.serving[klass] >= self.limits[klass]
                    or self._clients[client] >= per_client(self.limits[klass])):
                return False
            self.serving[klass] += 1
            self._clients[client] += 1
            return True

    def give_back(self, klass: str, client: Client) -> None:
        with self._lock:
            self.serving[klass] -= 1
            self._clients[client] -= 1
            if self._clients[client] <= 0:
                del self._clients[client]


class Throttle:
    """Says a line about a client at most once per ``interval``, with how many were
    passed over since; bounded in memory (old clients are forgotten)."""

    MAX_KEYS = 4096

    def __init__(self, interval: float = LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._seen: dict[object, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def passed_over(self, key: object) -> int | None:
        """None when the line is not to be said now; else how many lines about ``key``
        were passed over before this one."""
        now = self.clock()
        with self._lock:
            last, skipped = self._seen.get(key, (now - self.interval, 0))
            if now - last < self.interval:
                self._seen[key] = (last, skipped + 1)
                return None
            if len(self._seen) >= self.MAX_KEYS:
                self._seen = {k: v for k, v in self._seen.items()
                              if now - v[0] < self.interval}
                if len(self._seen) >= self.MAX_KEYS:
                    self._seen.clear()
            self._seen[key] = (now, 0)
            return skipped
