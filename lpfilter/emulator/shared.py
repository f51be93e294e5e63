"""What the emulators share: how a printer misbehaves, what it records of each job and
each event, and the loopback rule; also what a connection needs of the printer it serves,
so that ``connection`` need not import ``jetdirect`` (which imports it)."""
from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

#: How long one poll waits (seconds).
TICK = 0.05


@dataclass
class Behaviour:
    """How the printer (mis)behaves; read afresh for each connection."""

    #: Pages per job; None: form feeds in the job's data, at least 1 (0 for an empty job).
    pages: int | None = None
    #: Reset the connection (SO_LINGER 0, RST) after this many bytes.
    reset_after: int | None = None
    #: Close the connection (FIN) after this many bytes; 0 = accept and close at once.
    close_after: int | None = None
    #: Accept, then never read: the client's sends block (a busy print-server box).
    stall: bool = False
    #: Never send USTATUS JOB END.
    no_end: bool = False
    #: Seconds between EOJ and its USTATUS JOB END (the printer is printing).
    end_delay: float = 0.0
    #: Close at once when the client half-closes, dropping pending replies (apple/cups#2325).
    close_on_half_close: bool = False
    #: Read at most this many bytes per second.
    slow: int | None = None
    #: Send random non-PJL bytes (no form feed, no '@') on the back channel, up to a limit.
    garbage: bool = False
    garbage_limit: int = 1 << 20


@dataclass(frozen=True, slots=True)
class Event:
    """One thing the printer saw or did (for tests and the command's log)."""

    when: float
    job: int
    #: listening closed refusing open pjl overlong reply eof dropped close
    kind: str
    detail: str = ""


@dataclass
class JobRecord:
    """One connection: where its bytes went and what the printer made of them."""

    number: int
    peer: str
    path: Path | None
    size: int = 0
    pages: int = 0
    names: list[str] = field(default_factory=list)
    ended: str = ""


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class Host(Protocol):
    """The printer a ``Connection`` serves: its settings, counters, lock and log."""

    behaviour: Behaviour
    idle_timeout: float
    pagecount: int
    model: str
    _cond: threading.Condition

    def stopping(self) -> bool:
        """Has the printer been asked to stop?"""

    def note(self, job: int, kind: str, detail: str = "") -> None:
        """Record one event of ``job``."""
