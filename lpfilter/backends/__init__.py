"""Backends: how a job's bytes reach a printer, one per ``lp=`` form.

Every backend has the same tiny interface: ``send(request) -> SendResult``, raising
``TransientError`` (try again later), ``JobRefused``/``HoldJob``/``RemoveJob`` (this job is
done trying) or ``JobInterrupted`` (stopped on purpose). The registry maps a destination
kind to its backend class and imports it only when a job needs it.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Protocol

from lpfilter.errors import JobRefused

if TYPE_CHECKING:
    from lpfilter.printcap import Entry
    from lpfilter.printcap.destination import Destination
    from lpfilter.job import Job


@dataclass(slots=True)
class SendRequest:
    """Everything a backend needs for one attempt at one job."""

    job: Job
    data_path: str
    entry: Entry
    destination: Destination
    #: Returns why the send must stop now ("cancelled", "shutdown"), or None to go on.
    interrupted: Callable[[], str | None]
    #: Called once, right before the first byte leaves: makes "maybe printed" durable.
    first_byte: Callable[[], None]
    #: Status lines from the printer or program (shown by status, written to ps/lf).
    status: Callable[[str], None] = field(default=lambda message: None)
    #: Bytes that left so far in this attempt (kept up to date by the backend's Pump), so a
    #: failed attempt is accounted with what it sent.
    sent: int = 0
    #: Called with the bytes the printer (or program) has taken so far: those sent less
    #: those still waiting in the system's buffers. Backends pass ``progress`` to their Pump.
    on_progress: Callable[[int], None] | None = None
    #: Apply the printcap's framing (ld, tr, ff, fo, fq, sf). ``lpfilter filter`` turns it
    #: off: under lpd, lpd frames the job (and runs a filter once per copy).
    framed: bool = True
    #: Where host-wide locks live (printer locks, FTP session slots); "": the default.
    lock_dir: str = ""
    #: The data file as the spool opened and checked it (a regular file of the queue's
    #: owner, reached without following a symbolic link); None: open ``data_path``.
    data_fd: int | None = None

    def open_data(self) -> BinaryIO:
        """The job's bytes, from the descriptor the spool checked: never the path again,
        which could name something else by now."""
        if self.data_fd is None:
            return open(self.data_path, "rb")
        fd = os.dup(self.data_fd)
        os.lseek(fd, 0, os.SEEK_SET)
        return os.fdopen(fd, "rb")

    def progress(self, sent: int, waiting: int = 0) -> None:
        """``sent`` bytes left lpfilter, ``waiting`` of them not yet taken by the printer
        (still in a socket's send queue or a pipe)."""
        self.sent = sent
        if self.on_progress is not None:
            self.on_progress(max(0, sent - waiting))


@dataclass(slots=True)
class SendResult:
    """What a successful send achieved."""

    bytes_sent: int
    #: "sent" (the device or program took it) or "confirmed" (the printer said it printed).
    delivery: str = "sent"
    pages: int | None = None
    message: str = ""


class Backend(Protocol):
    """The one interface every backend implements. A backend may also have ``close()``:
    the worker keeps it across a batch of jobs (an FTP session stays open) and calls
    ``close()`` when the queue runs dry."""

    def send(self, request: SendRequest) -> SendResult: ...


_REGISTRY: dict[str, str] = {
    "device": "lpfilter.backends.device:DeviceBackend",
    "pipe": "lpfilter.backends.pipe:PipeBackend",
    "socket": "lpfilter.backends.jetdirect:JetDirectBackend",
    "ftp": "lpfilter.backends.ftp:FtpBackend",
}


def backend_for(destination: Destination) -> Backend:
    """The backend for a destination; a form without one fails the job with a clear reason."""
    target = _REGISTRY.get(destination.kind)
    if target is None:
        reason = getattr(destination, "reason", None) or (
            f"no backend for {destination.kind} destinations in this lpfilter version")
        raise JobRefused(f"lp={destination.display()}: {reason}")
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    return cls()  # type: ignore[no-any-return]
