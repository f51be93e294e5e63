"""Who is on the other end of a server connection, and what the server may reach.

Shared by the receiving of jobs, the other requests and the listeners, so that each of them
knows a client the same way: by what the kernel says (the address of a TCP peer, the uid
of a local one), never by what the client claims.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lpfilter.printcap import Entry
    from lpfilter.spool.store import SpoolStore


@dataclass(frozen=True, slots=True)
class Peer:
    """A connected client. ``address`` is the peer's IP address as text ("" for a local
    socket); ``uid`` and ``user`` are set only for a local client, from the kernel: the
    Unix socket's peer credentials, or the owner of a TCP client's socket on this host
    (``loopuid``). ``anonymous``: a TCP client of this host whose owner the kernel does
    not show (it closed its end before it was accepted); it speaks for nobody."""

    address: str
    port: int = 0
    uid: int | None = None
    user: str | None = None
    anonymous: bool = False

    @property
    def local(self) -> bool:
        return self.uid is not None

    def __str__(self) -> str:
        if self.local and not self.address:
            return f"local user {self.user or self.uid}"
        where = f"[{self.address}]:{self.port}" if ":" in self.address else (
            f"{self.address}:{self.port}")
        if self.local:
            return f"local user {self.user or self.uid} at {where}"
        return f"{where} (owner unknown)" if self.anonymous else where


class Queues(Protocol):
    """What the server needs of the daemon: the queues it serves."""

    def find(self, name: str) -> tuple[Entry, SpoolStore] | None:
        """The served queue called ``name`` (or one of its aliases), else None."""

    def wake(self, name: str) -> None:
        """A job arrived or print-waiting-jobs was asked for: look at the queue now."""

    def names(self) -> list[str]:
        """The names of the queues served (lpc's ``all``)."""
