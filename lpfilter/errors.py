"""The one exception tree of lpfilter.

Transient errors mean "try again later" (a busy printer); permanent ones mean "this will
not get better by waiting" (a printcap typo, a refused job). An error carries what it is
about as attributes (``queue``, ``job_id``, ``host``, ``where``) where its raiser knows
them. Only the command-line edge turns errors into messages and exit statuses
(``lpfilter.commands.exits`` says which class gets which status).
"""
from __future__ import annotations

import errno

from lpfilter.enums import Enum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self

#: What a write meets on a full, over-quota or read-only file system: an expected
#: condition (SpoolFull), never an internal error.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class LpfilterError(Exception):
    """Root of every error lpfilter raises on purpose."""

    def __init__(self, message: str, *, where: str | None = None, queue: str = "",
                 job_id: str = "", host: str = "") -> None:
        super().__init__(message)
        self.message = message
        #: ``FILE:LINE`` or a host name the message is about, shown first.
        self.where = where
        #: The queue, job and printer (``host%port``) it is about ("": none, or unknown).
        self.queue = queue
        self.job_id = job_id
        self.host = host

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def about(self, *, queue: str = "", job_id: str = "", host: str = "") -> Self:
        """Add what a caller knows (the raiser's own values stay): the worker knows the
        queue and job of every error its backend raises, and the printer it sent to."""
        self.queue = self.queue or queue
        self.job_id = self.job_id or job_id
        self.host = self.host or host
        return self


class Several(LpfilterError):
    """Several things a command did each by itself failed, the rest done (lpc over many
    queues): the command's edge says each of ``errors`` on its own line, in order, and
    exits with the worst status."""

    def __init__(self, errors: list[LpfilterError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors


class TransientError(LpfilterError):
    """Retrying later may succeed (printer busy, offline, reset)."""


class PermanentError(LpfilterError):
    """Retrying will not help until someone changes something."""


class UsageError(PermanentError):
    """The command line asked for something impossible."""


class ConfigError(PermanentError):
    """A printcap cannot be read, or holds an error LPRng treats as fatal."""


class NoSuchPrinter(PermanentError):
    """A printer name that no printcap entry (or alias, or pattern) matches."""


class AccessError(PermanentError):
    """A file or directory cannot be opened, read or written."""


class SpoolFull(TransientError):
    """A directory lpfilter must write is on a full, over-quota or read-only file system.

    Transient: it gets better when someone frees space or remounts; nothing is lost
    meanwhile (queued jobs wait, a job not spooled was not announced). ``directory`` is
    the directory named to the admin, ``errno`` the cause."""

    def __init__(self, directory: str, error: int, *, queue: str = "", floor: str = "") -> None:
        self.directory = directory
        self.errno = error
        if floor:  # the queue's minfree (spool/room.py), before anything is written
            what = (f"would leave too little room: {floor}; free space there (df"
                    f" {directory}) and try again")
        elif error == errno.EROFS:
            what = ("is on a read-only file system; remount it read-write (or move sd) and"
                    " try again")
        elif error == errno.EDQUOT:
            what = "is over its disk quota; free space or raise the quota, and try again"
        else:
            what = (f"is on a full file system; free space there (df {directory}) and try"
                    " again")
        owner = f"queue {queue}: " if queue else ""
        super().__init__(f"{owner}the spool directory {directory} cannot be written: it {what}",
                         queue=queue)


class JobRefused(PermanentError):
    """The printer (or the pipe program) refused this job: it fails, the queue goes on."""


class HoldJob(PermanentError):
    """Hold the job until someone releases it (LPRng's JHOLD, filter exit 6)."""


class RemoveJob(PermanentError):
    """Remove the job without printing it (LPRng's JREMOVE, filter exit 3)."""


class LockHeld(TransientError):
    """A queue's lock (its journal's) is held longer than any healthy holder keeps it (a
    stuck process): the command stops, nothing changed; the daemon tries the queue again."""


class PrinterBusy(TransientError):
    """The printer refused the connection or the session: it takes one at a time."""


class PrinterOffline(TransientError):
    """No answer from the printer (switched off, unplugged, unreachable)."""


class ConnectionLost(TransientError):
    """The printer reset or dropped the connection in the middle of a job."""


class NotConnected(TransientError):
    """No connection could be opened at all: the printer is off, away or unnamed, which is
    never the job's fault, so (unless the printcap sets send_try) it uses up no attempt.
    ``trouble`` is what the queue's status line calls it; ``host`` is ``host%port``."""

    trouble = "printer unreachable"

    def __init__(self, message: str, *, host: str = "", where: str | None = None) -> None:
        super().__init__(message, where=where, host=host)


class ConnectRefused(NotConnected, PrinterBusy):
    """Refused: a JetDirect busy with another host's job and one switched off but still
    on the network (or a port nobody listens on) look the same."""

    trouble = "printer busy or switched off"


class Unreachable(NotConnected, PrinterOffline):
    """No answer within connect_timeout, or no route to the host or its network."""

    trouble = "printer unreachable"


class NameNotFound(NotConnected):
    """The printer's host name does not resolve (yet): DNS or /etc/hosts may change."""

    trouble = "name does not resolve"


class Interruption(Enum):
    """Why a send was stopped on purpose."""

    #: The job was cancelled: it is removed.
    CANCELLED = "cancelled"
    #: lpfilter (or the filter lpd started) is stopping: the job is put back.
    SHUTDOWN = "shutdown"
    #: lpc abort or kill: the job is put back (the queue stopped, or started again).
    ABORTED = "lpc abort"


class JobInterrupted(TransientError):
    """The send was stopped on purpose (shutdown or cancel); the job is put back or removed.

    ``reason`` decides which; the message is the reason's word unless a closer one is
    given (the signal that stopped ``lpfilter filter``)."""

    def __init__(self, reason: Interruption, message: str = "") -> None:
        super().__init__(message or reason.value)
        self.reason = reason


class ImpossibleTransition(RuntimeError):
    """A job was asked to change to a state it can never reach from its own (see
    ``lpfilter.job.TRANSITIONS``). A bug, not an error lpfilter raises on purpose, so not an
    ``LpfilterError``: every edge handles it as an internal error (exit 70, a traceback with
    ``--debug``, "please report it"; a worker's job failed, a watcher's queue logged with
    its traceback). The ticket on disk is left as it was."""

    def __init__(self, job_id: str, queue: str, from_state: str, to_state: str) -> None:
        super().__init__(f"queue {queue}: job {job_id}: a job cannot go from {from_state} to"
                         f" {to_state}")
        self.job_id = job_id
        self.queue = queue
        self.from_state = from_state
        self.to_state = to_state


def in_brief(error: LpfilterError) -> str:
    """A few words for a status line: what kind of trouble the printer is in."""
    for kind, words in ((PrinterBusy, "printer busy"), (PrinterOffline, "printer offline"),
                        (NameNotFound, "printer name does not resolve"),
                        (ConnectionLost, "connection to the printer lost")):
        if isinstance(error, kind):
            return words
    return "failed"
