"""A queue's control state, as LPRng's lpc sets it: printing stopped, spooling disabled,
new jobs held (holdall), jobs redirected to another queue.

It lives in one small file, ``sd/.lpfilter/control``, of ``key=value`` lines as LPRng's
spool control file has them (``printing_disabled=1``, ``spooling_disabled=1``,
``hold_all=1``, ``redirect=QUEUE`` with ``redirect_sd=DIR``, the target's spool directory,
so that a worker that has no printcap can move jobs there). It is written atomically and
durably (a temporary file, fsync, rename: a reader sees the old state or the new, and a
power cut keeps it), owned by the queue's owner, and read without following a symbolic
link; so the state survives a restart of the daemon. A missing file is a queue with
nothing set. A file that is there but cannot be read safely (a link, a FIFO, another
user's, too large, not text) fails closed: it is never read, printing counts as stopped
(the jobs wait, none is lost; spooling goes on) and status and lpc status say "lpc state
unreadable" with why, until lpc writes the file again (``lpfilter lpc start q``).

Who reads it: the worker (a stopped queue's jobs stay queued; a redirected queue's jobs
move to the target, ``spool/lpcops.py``), ``print`` and the print server's receive (a
disabled queue refuses new jobs; holdall holds them), and status (``flags_text``, as
LPRng's lpq shows them).
"""
from __future__ import annotations

import os

from lpfilter import logs
from lpfilter.errors import JobRefused
from lpfilter.safefiles import UnsafeFile, atomic_write, open_regular
from lpfilter.structs import FrozenStruct
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from lpfilter.job import Job
    from lpfilter.printcap import Entry

log = logs.getLogger(__name__)

CONTROL_FILE = "control"
#: A control file is a few lines; more is not one lpfilter wrote.
MAX_CONTROL = 4096
#: The ticket's ``extra`` key topq sets: when the job was put at the head of the queue.
TOPQ_KEY = "topq"


class SpoolingDisabled(JobRefused):
    """A new job for a queue whose spooling is disabled (``lpc disable``): refused, nothing
    queued (exit status 6, as any refused job; the print server answers LPD's "try later")."""


class QueueControl(FrozenStruct):
    """What lpc set for one queue (all off: a queue as the printcap made it). A
    ``FrozenStruct``, as the frozen dataclass it was, without importing ``dataclasses``."""

    __slots__ = _fields = ("printing_disabled", "spooling_disabled", "hold_all", "redirect",
                           "redirect_sd", "unreadable")
    printing_disabled: bool
    spooling_disabled: bool
    hold_all: bool
    #: The queue new and queued jobs go to ("": none), and its spool directory.
    redirect: str
    redirect_sd: str
    #: Why the file could not be read ("": it could, or there is none); printing stopped.
    unreadable: str

    def __init__(self, printing_disabled: bool = False, spooling_disabled: bool = False,
                 hold_all: bool = False, redirect: str = "", redirect_sd: str = "",
                 unreadable: str = "") -> None:
        object.__setattr__(self, "printing_disabled", printing_disabled)
        object.__setattr__(self, "spooling_disabled", spooling_disabled)
        object.__setattr__(self, "hold_all", hold_all)
        object.__setattr__(self, "redirect", redirect)
        object.__setattr__(self, "redirect_sd", redirect_sd)
        object.__setattr__(self, "unreadable", unreadable)

    def to_text(self) -> str:
        lines = [f"printing_disabled={int(self.printing_disabled)}",
                 f"spooling_disabled={int(self.spooling_disabled)}",
                 f"hold_all={int(self.hold_all)}"]
        if self.redirect:
            lines += [f"redirect={self.redirect}", f"redirect_sd={self.redirect_sd}"]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> QueueControl:
        """The state ``to_dict`` gave (a daemon's answer): keys it does not know passed over."""
        return cls(**{k: v for k, v in (data or {}).items() if k in cls._fields})


_FLAGS = ("printing_disabled", "spooling_disabled", "hold_all")


def parse(text: str) -> QueueControl:
    """The state from the file's text; unknown keys and bad lines are passed over (a
    later lpfilter may write more), so a queue is never stopped by a line it cannot read."""
    values: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if key in _FLAGS:
            values[key] = value not in ("", "0", "0x0")
        elif key in ("redirect", "redirect_sd") and value.isprintable():
            values[key] = value
    control = QueueControl(**values)
    if not control.redirect or not control.redirect_sd:
        control = control.replace(redirect="", redirect_sd="")
    return control


def control_path(state_dir: str) -> str:
    return os.path.join(state_dir, CONTROL_FILE)


def read_control(state_dir: str, owner: int | None = None) -> QueueControl:
    """The queue's state (its ``.lpfilter`` folder ``state_dir``); nothing set when there
    is no file, and when the file is not one lpfilter wrote (said in the log)."""
    path = control_path(state_dir)
    try:
        fd, _info = open_regular(path, owner)
    except FileNotFoundError:
        return QueueControl()
    except (UnsafeFile, OSError) as exc:
        if isinstance(exc, PermissionError):
            raise
        return _unreadable(path, str(getattr(exc, "reason", None)
                                     or getattr(exc, "strerror", None) or exc))
    try:
        data = os.read(fd, MAX_CONTROL + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_CONTROL:
        return _unreadable(path, f"larger than {MAX_CONTROL} bytes, not lpfilter's")
    try:
        return parse(data.decode("utf-8"))
    except UnicodeDecodeError:
        return _unreadable(path, "not text")


def _unreadable(path: str, why: str) -> QueueControl:
    """A control file that is there but cannot be read safely: printing stopped (fail
    closed: a stopped queue is never started by replacing its file), said in the log."""
    log.warning("%s: not read (%s); printing of the queue stops until lpc writes it again"
                " ('lpfilter lpc start QUEUE')", path, visible(why))
    return QueueControl(printing_disabled=True, unreadable=why)


def write_control(state_dir: str, control: QueueControl, owner: int) -> None:
    """Replace the state, atomically and durably, as a file of the queue's ``owner``."""
    atomic_write(control_path(state_dir), control.to_text().encode(), owner=owner)


def state_of(entry: Entry) -> str:
    """The queue's state folder (``sd/.lpfilter``), where its control file is."""
    from lpfilter.spool import STATE_DIR
    return os.path.join(entry.string("sd") or "", STATE_DIR)


def entry_control(entry: Entry) -> QueueControl:
    """The state of ``entry``'s queue, for a caller that may read its spool (a missing or
    closed spool has nothing set: the caller meets that error itself, said as it is)."""
    try:
        return read_control(state_of(entry))
    except PermissionError:
        return QueueControl()


def holds_new(entry: Entry, control: QueueControl | None = None) -> bool:
    """Is a new job of this queue held from the start: the printcap's ``ah`` or lpc's
    holdall? (``control``: the queue's state, when the caller read it.)"""
    return entry.flag("ah") or (control or entry_control(entry)).hold_all


def admit(entry: Entry, control: QueueControl | None = None) -> None:
    """Refuse a new job when the queue's spooling is disabled (``lpc disable``)."""
    if (control or entry_control(entry)).spooling_disabled:
        raise SpoolingDisabled(f"queue {visible(entry.name)}: spooling disabled (lpc"
                               f" disable); nothing was queued: 'lpfilter lpc enable"
                               f" {visible(entry.name)}' takes jobs again", queue=entry.name)


class ControlFile:
    """A worker's view of its queue's state: read again only when the file changed (its
    inode, size and time), so a look before each job costs one stat."""

    def __init__(self, state_dir: str, owner: int | None = None) -> None:
        self.state_dir, self.owner = state_dir, owner
        self._key: tuple[int, int, int] | None = None
        self._control = QueueControl()

    @classmethod
    def of(cls, entry: Entry) -> ControlFile:
        """The view of ``entry``'s queue: a command that looks more than once (``print``:
        the redirect, each batch, a stop) reads it once, and says a bad file once."""
        return cls(state_of(entry))

    def read(self) -> QueueControl:
        try:
            info = os.stat(control_path(self.state_dir), follow_symlinks=False)
        except FileNotFoundError:
            self._key, self._control = None, QueueControl()
            return self._control
        except OSError as exc:  # there, but not to be looked at: fail closed
            self._key = None
            self._control = QueueControl(printing_disabled=True, unreadable=str(exc))
            return self._control
        key = (info.st_ino, info.st_size, info.st_mtime_ns)
        if key != self._key:
            try:
                self._control = read_control(self.state_dir, self.owner)
            except PermissionError:
                self._control = QueueControl()
            self._key = key
        return self._control


def flags_text(control: QueueControl | None) -> str:
    """The queue's state as LPRng's lpq puts it after the queue's name:
    `` (printing disabled, spooling disabled) (redirect r) (holdall)``."""
    if control is None:
        return ""
    words = [w for w, on in (("printing disabled", control.printing_disabled),
                             ("spooling disabled", control.spooling_disabled)) if on]
    text = f" ({', '.join(words)})" if words else ""
    if control.redirect:
        text += f" (redirect {visible(control.redirect)})"
    if control.hold_all:
        text += " (holdall)"
    if control.unreadable:
        text += f" (lpc state unreadable: {visible(control.unreadable)})"
    return text


#: The head of LPRng's lpc status table (``status_row`` gives its rows).
STATUS_HEAD = (" Printer           Printing Spooling Jobs  Server Subserver Redirect"
               " Status/(Debug)")


def status_row(head: str, control: QueueControl, jobs: int, server: int | None) -> str:
    """One queue's row of LPRng's lpc status table (``q@host``, printing and spooling
    enabled or disabled, jobs waiting, the serving process, redirect, holdall), for
    ``lpfilter lpc status`` and the print server's answer alike."""
    flag = {True: "disabled", False: "enabled"}
    line = (f"{head:<18} {flag[control.printing_disabled]:>8}"
            f" {flag[control.spooling_disabled]:>8} {jobs:>4}"
            f" {str(server) if server else 'none':>7} {'none':>7}"
            f" {visible(control.redirect):>8} {'(holdall)' if control.hold_all else ''}")
    if control.unreadable:
        line += f" lpc state unreadable: {visible(control.unreadable)}"
    return line.rstrip()


def print_order(jobs: Iterable[Job]) -> list[Job]:
    """Jobs in the order they print: those put first by topq (the latest topq first),
    then the rest in arrival order."""
    jobs = list(jobs)
    first = sorted((j for j in jobs if _topq(j)), key=_topq, reverse=True)
    return first + [j for j in jobs if not _topq(j)]


def _topq(job: Job) -> float:
    value = job.extra.get(TOPQ_KEY) if job.extra else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def control_words(data: dict[str, Any] | None) -> str:
    """The state (as ``QueueControl.to_dict`` gives it) in lpfilter status's words:
    ``printing disabled, spooling disabled, redirected to r, holdall`` ("" for none)."""
    if not data:
        return ""
    words = [w for w, key in (("printing disabled", "printing_disabled"),
                              ("spooling disabled", "spooling_disabled")) if data.get(key)]
    if data.get("redirect"):
        words.append(f"redirected to {visible(str(data['redirect']))}")
    if data.get("hold_all"):
        words.append("holdall")
    if data.get("unreadable"):
        words.append(f"lpc state unreadable: {visible(str(data['unreadable']))}")
    return ", ".join(words)
