"""One send's request and result, and the interface every backend implements.

Apart from the registry (``lpfilter.backends``) so that a backend module imports this and
never the package that imports it by name: no circle, even a lazy one.
"""
from __future__ import annotations

import os

from lpfilter.errors import Interruption, JobInterrupted
from lpfilter.structs import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import Any, BinaryIO, Generic, Protocol, TypeVar

    from lpfilter.backends.settings import SendSettings
    from lpfilter.children.run import FilterCommand
    from lpfilter.job import Job
    from lpfilter.printcap.destination import Destination

    #: The settings type of a backend (``SendRequest[SocketSettings]``).
    SettingsT = TypeVar("SettingsT", bound="SendSettings")
else:  # The interfaces below are mypy's: nothing checks them at run time, and typing
    Protocol = object  # would cost lpd's ``lpfilter filter``, started for each job, ~2 ms.
    SettingsT = None

    class Generic:
        """``Generic[T]`` at run time: the class itself, so that a backend's alias
        (``SendRequest[SocketSettings]``) is SendRequest."""

        __slots__ = ()

        def __class_getitem__(cls, _item: object) -> type:
            return cls


class Reporter(Protocol):
    """The caller's side of one send: it hears what happens, and says when to stop.

    One object, since its answers come from the same place: the worker's job (whose
    ticket the interruption check also updates with the progress), or ``lpfilter
    filter``'s run (stderr for lpd, a signal flag)."""

    def interrupted(self) -> Interruption | None:
        """Why the send must stop now (cancel, shutdown), or None to go on. Asked at
        least every tick while a backend waits."""

    def first_byte(self) -> None:
        """Called once, right before the first byte leaves: makes "maybe printed" durable
        (raising here stops the send before it starts)."""

    def progress(self, taken: int) -> None:
        """The bytes the printer (or program) has taken so far in this attempt."""

    def status(self, message: str) -> None:
        """A status line from the printer or program (ps file, log, lpd's stderr)."""


class StreamSource(Protocol):
    """A job body of unknown size read from a pipe (a filter's output): the backend
    copies ``fd`` to its end, then calls ``finish``, which raises the producer's error
    (a filter's exit status) so that a body cut short is never taken for a whole job."""

    #: The pipe's read end (non-blocking).
    fd: int
    #: Who writes it, for messages ("the if filter /usr/bin/a2ps").
    what: str

    def finish(self) -> None:
        """At the pipe's end: wait for the producer; raise what ended it badly."""

    def produced(self) -> bool:
        """Whether the producer is done (its own end of the pipe closed): a pipe still
        open after that is held by something it left running."""


class Outlet(Protocol):
    """The backend's descriptor lent to a job's filters (``backends.lend.Outlet``)."""

    #: The descriptor (a TCP socket, a file): a data filter's fd 1 while ``lend`` lasts.
    fd: int

    def write(self, data: bytes) -> None:
        """lpfilter's own bytes (banners, separators), between filter runs."""

    def copy_file(self, src: int) -> None:
        """A file from its start, as it is."""

    def lend(self) -> AbstractContextManager[None]:
        """While a filter writes to ``fd`` itself: blocking, nobody else using it."""

    def wait(self, pid: int, what: str) -> None:
        """Until the child ``pid`` exits; raises on cancel, shutdown or a stall."""

    def check(self) -> None:
        """After a filter failed: raise the printer's side going away, if it did."""


class DirectSource(Protocol):
    """A filtered job that can write to the backend's descriptor itself (LPRng's fd 1 is
    the device) or, where the backend cannot lend it, to its pipe (``StreamSource``)."""

    what: str

    def write_to(self, out: Outlet) -> None:
        """Produce the whole body into ``out``, in this thread; raise what failed."""

    def start(self) -> None:
        """Produce into the pipe instead (``request.source`` then streams it)."""


class SendRequest(Struct, Generic[SettingsT]):
    """Everything a backend needs for one attempt at one job."""

    __slots__ = _fields = ("job", "data_path", "destination", "settings", "reporter",
                           "lock_dir", "data_fd", "sent", "source", "direct", "command",
                           "environment")

    job: Job
    #: The data file; read through ``open_data``.
    data_path: str
    destination: Destination
    #: The backend's own printcap settings (``settings.settings_for``).
    settings: SettingsT
    reporter: Reporter
    #: Where host-wide locks live (FTP session slots), decided by the caller; only
    #: backends that take such locks need it.
    lock_dir: str
    #: The data file as the spool opened and checked it (a regular file of the queue's
    #: owner, reached without following a symbolic link); None: open ``data_path``.
    data_fd: int | None
    #: Bytes that left so far in this attempt (kept up to date by the backend's Pump), so a
    #: failed attempt is accounted with what it sent.
    sent: int
    #: The job's body from a filter, streamed (``filters.feed``): it replaces the data
    #: file, its copies and the settings' framing, which the producer wrote itself.
    source: StreamSource | None
    #: The same body when the producer can also write to the backend's descriptor
    #: directly (``DirectSource``, not started yet): a socket or file backend lends it.
    direct: DirectSource | None
    #: An ``lp=|`` program's command line as LPRng builds it (``$`` tokens, the option
    #: list), by a caller that knows the job's facts (``filters.send``); None: the
    #: printcap's words as they are.
    command: FilterCommand | None
    #: That program's whole environment as LPRng gives a filter's (lprng-filters.md §4:
    #: ``filters.command.filter_environment``, with the job's ``LPFILTER_JOB*``), by the
    #: same caller; None: ``backends.pipe.clean_environment``. Never the watcher's own.
    environment: dict[str, str] | None

    def __init__(self, job: Job, data_path: str, destination: Destination,
                 settings: SettingsT, reporter: Reporter, lock_dir: str = "",
                 data_fd: int | None = None, sent: int = 0, source: StreamSource | None = None,
                 direct: DirectSource | None = None, command: FilterCommand | None = None,
                 environment: dict[str, str] | None = None) -> None:
        self.job = job
        self.data_path = data_path
        self.destination = destination
        self.settings = settings
        self.reporter = reporter
        self.lock_dir = lock_dir
        self.data_fd = data_fd
        self.sent = sent
        self.source = source
        self.direct = direct
        self.command = command
        self.environment = environment

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
        self.reporter.progress(max(0, sent - waiting))

    def check(self) -> None:
        """Raise JobInterrupted if the caller wants the send stopped."""
        reason = self.reporter.interrupted()
        if reason is not None:
            raise JobInterrupted(reason)


class SendResult(Struct):
    """What a successful send achieved."""

    __slots__ = _fields = ("bytes_sent", "delivery", "pages", "message")
    bytes_sent: int
    #: "sent" (the device or program took it) or "confirmed" (the printer said it printed).
    delivery: str
    pages: int | None
    message: str

    def __init__(self, bytes_sent: int, delivery: str = "sent", pages: int | None = None,
                 message: str = "") -> None:
        self.bytes_sent = bytes_sent
        self.delivery = delivery
        self.pages = pages
        self.message = message


class Backend(Protocol):
    """The one interface every backend implements. A backend may also have ``close()``:
    the worker keeps it across a batch of jobs (an FTP session stays open) and calls
    ``close()`` when the queue runs dry."""

    def send(self, request: SendRequest[Any]) -> SendResult: ...
