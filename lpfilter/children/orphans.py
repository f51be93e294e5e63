"""What a killed watcher's filters left running, found and ended by the next watcher.

PR_SET_PDEATHSIG (``dies_with_parent``) kills a filter when the watcher's thread that
started it ends, but not what the filter started (``sh -c "( a | b )"``, a filter that
forks): those would go on writing to (or holding) the printer while the next watcher
sends the job again. So each filter gets a random mark in its environment
(``TOKEN_VARIABLE``), which what it starts inherits, and a record named after the mark
in ``sd/.lpfilter/filters`` holding who started it (pid, start time) and when; once the
filter exits, its starter ends every process carrying the mark (``end_marked``) and only
then removes the record. A watcher taking a queue over (``end_orphans``, before it sends
anything) ends, for each record whose starter is dead, exactly the processes that carry
the record's mark, were started after it, and run as a user the queue's filters run as
now (computed by the caller from the printcap and the spool's owner, never read from the
record): SIGKILL, which also ends an OF filter left stopped. A record is the spool
owner's to write: a forged one names a mark, and only processes of the filter user
carrying it (which that user could signal itself) are ended; a root watcher signals no
one else.
"""
from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import stat
import time

from lpfilter import logs
from lpfilter.locks import START_SLACK, own_start, process_alive, process_start
from lpfilter.safefiles import SAFE_OPEN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

log = logs.getLogger(__name__)

#: The variable that marks a filter and everything it starts.
TOKEN_VARIABLE = "LPFILTER_FILTER_MARK"
#: The records' folder, in the queue's state folder (``sd/.lpfilter``).
RECORDS = "filters"
STATE_DIR = ".lpfilter"
#: Records looked at per takeover, bytes read of one, of a process's environment.
MAX_RECORDS = 1000
RECORD_LIMIT = 200
ENVIRON_LIMIT = 1 << 20
#: How long a takeover waits for the processes it killed to be gone.
GONE_WAIT = 5.0
#: A record's name is 32 of these (read by hand: a pass imports no ``re``).
_HEX = "0123456789abcdef"


#: prctl(2)'s option to have the kernel send a signal when the parent ends.
_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Any:
    """prctl(2) through ``PyDLL``: the call keeps the GIL (a ``CDLL`` call lets it go and
    takes it again), so the ``preexec_fn`` below touches no lock at all. Loaded at the
    first filter, not at import (ctypes is ~1 ms of a pass, and most start no filter)."""
    import ctypes
    prctl = ctypes.PyDLL(None, use_errno=True).prctl
    prctl.restype = ctypes.c_int
    return prctl


def dies_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` (run after ``Popen`` changed the user, so the kernel keeps it
    through exec): SIGKILL when the starting thread ends (prctl(2): the parent is the
    thread that forked), so a watcher killed with SIGKILL leaves no filter running, nor
    an OF filter stopped for ever. A parent already gone by then: die now.

    Why this is safe in a daemon with threads, where CPython warns that a ``preexec_fn``
    may deadlock: the danger is a lock some other thread held at the fork (the import
    lock, logging's, malloc's) that the child then waits for. The child runs three calls
    made ready before the fork: prctl(2) through ``PyDLL`` (the GIL kept, arguments
    small ints, no libffi closure), getppid(2) and kill(2); no import, no logging, no
    lock, and what it allocates is a few ints from CPython's own allocator, which the
    GIL (the child's, made anew by ``PyOS_AfterFork_Child``) guards. The cost is that
    ``Popen`` forks the daemon rather than vforks it: starting and waiting for a
    ``/bin/true`` filter took 2.5 ms against 1.1 ms without a ``preexec_fn`` (2.7 against
    2.0 ms as another user), measured on 200. An exec wrapper (util-linux ``setpriv
    --pdeathsig``) would keep vfork but cannot check for a parent already gone, and a
    filter started as the watcher is killed would run on until a watcher takes the queue
    over; the guarantee is worth a millisecond a filter. The records below cover what
    PDEATHSIG cannot: what a filter started."""
    prctl, kill, getppid = _prctl(), int(signal.SIGKILL), os.getppid

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if getppid() != parent:
            os.kill(os.getpid(), kill)
    return preexec


def new_token() -> str:
    return os.urandom(16).hex()


def records_dir(sd: str) -> str:
    return os.path.join(sd, STATE_DIR, RECORDS)


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _folder(sd: str, *, create: bool) -> int:
    """The records' folder, opened through the state folder without following a link at
    either step (its owner could swap in a link to elsewhere at any time); with
    ``create``, made (0700, the state folder's owner's) when missing. The owner's own,
    private directory, else OSError."""
    state = os.open(os.path.join(sd, STATE_DIR), _DIR)
    try:
        owner = os.fstat(state).st_uid
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(RECORDS, 0o700, dir_fd=state)
                os.chown(RECORDS, owner, -1, dir_fd=state, follow_symlinks=False)
        fd = os.open(RECORDS, _DIR, dir_fd=state)
    finally:
        os.close(state)
    info = os.fstat(fd)
    if info.st_uid != owner or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        os.close(fd)
        raise OSError(f"{records_dir(sd)} is not the queue owner's private folder")
    return fd


class Record:
    """One running filter's record (see the module's docstring)."""

    def __init__(self, sd: str, token: str) -> None:
        self.sd, self.token = sd, token

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            folder = _folder(self.sd, create=False)
            try:
                os.unlink(self.token, dir_fd=folder)
            finally:
                os.close(folder)


def note(sd: str, token: str) -> Record | None:
    """Write the record of a filter about to start (before the fork: a watcher killed
    right after it leaves a record). None when there is no state folder (a spool not
    lpfilter's) or no room: the filter runs anyway (PR_SET_PDEATHSIG still ends it)."""
    try:
        folder = _folder(sd, create=True)
    except OSError as exc:
        log.debug("no record of a filter in %s: %s", sd, exc)
        return None
    try:
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600, dir_fd=folder)
        try:
            os.write(fd, f"{os.getpid()} {own_start()!r} {time.time()!r}\n".encode())
        finally:
            os.close(fd)
    except OSError as exc:
        log.debug("no record of a filter in %s: %s", sd, exc)
        with contextlib.suppress(OSError):
            os.unlink(token, dir_fd=folder)
        return None
    finally:
        os.close(folder)
    return Record(sd, token)


def _read_record(folder: int, name: str) -> tuple[int, float, float] | None:
    """(starter pid, its start time, when) of a record, or None for one that is not."""
    try:
        fd = os.open(name, SAFE_OPEN, dir_fd=folder)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        fields = os.read(fd, RECORD_LIMIT).decode("ascii", "replace").split()
    finally:
        os.close(fd)
    try:
        return int(fields[0]), float(fields[1]), float(fields[2])
    except (IndexError, ValueError):
        return None


def end_orphans(sd: str, uids: frozenset[int]) -> int:
    """End what dead starters' filters left running (see the module's docstring), only
    processes whose real and effective uid are in ``uids``; returns how many."""
    try:
        folder = _folder(sd, create=False)
    except OSError:
        return 0
    try:
        return _end_recorded(folder, uids)
    finally:
        os.close(folder)


def _end_recorded(folder: int, uids: frozenset[int]) -> int:
    names = [n for n in os.listdir(folder)
             if len(n) == 32 and not n.strip(_HEX)][:MAX_RECORDS]
    marks: dict[bytes, float] = {}
    stale = []
    for name in names:
        record = _read_record(folder, name)
        if record is not None and process_alive(record[0], record[1]):
            continue  # a live process's filter (it removes the record itself)
        stale.append(name)
        if record is not None:
            marks[f"{TOKEN_VARIABLE}={name}".encode()] = record[2]
    killed = _kill_marked(marks, uids) if marks else []
    _wait_gone(killed)
    for name in stale:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=folder)
    return len(killed)


def _kill_marked(marks: dict[bytes, float], uids: frozenset[int]) -> list[int]:
    """SIGKILL every process carrying one of ``marks`` (and started after its record);
    through a pidfd opened before the checks, so a pid reused meanwhile is not hit."""
    killed: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            if _marked(pid, marks, uids):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                killed.append(os.dup(pidfd))
        except OSError:
            pass
        finally:
            os.close(pidfd)
    return killed


def _all_uids_in(pid: int, uids: frozenset[int]) -> bool:
    """Whether all four uids of ``pid`` (real, effective, saved, filesystem: the Uid: line
    of /proc/PID/status) are in ``uids``: a process whose real uid is another user's
    is not the filter user's to end."""
    with open(f"/proc/{pid}/status", "rb") as status:
        line = next((x for x in status.read(8192).splitlines() if x.startswith(b"Uid:")), b"")
    ids = [int(x) for x in line.split()[1:]]
    return bool(ids) and all(uid in uids for uid in ids)


def _marked(pid: int, marks: dict[bytes, float], uids: frozenset[int]) -> bool:
    if not _all_uids_in(pid, uids):
        return False
    with open(f"/proc/{pid}/environ", "rb") as environ:
        found = [marks[v] for v in environ.read(ENVIRON_LIMIT).split(b"\0") if v in marks]
    return bool(found) and process_start(pid) >= min(found) - START_SLACK


def start_ticks(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (/proc/PID/stat field 22: exact and
    untouched by clock steps); -1 when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            data = stat_file.read(4096)
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return -1


def end_marked(token: str, uid: int, since: int) -> bool:
    """After a filter's exit: SIGKILL (through pidfds) every process that carries its
    mark, wherever it went (its own session, another group), and wait (bounded) for them
    to be gone; whether none is left that could not be ended (False only for a process
    known to carry the mark and still there after GONE_WAIT). Cheap: only processes of
    ``uid`` started (``start_ticks``) no earlier than the filter (``since``) have their
    environment read. A process that dropped the mark (``env -i``), changed one of its
    uids, or made itself non-dumpable (its environment unreadable but to root: it cannot
    be told from the user's own processes started meanwhile, so it is left alone) is not
    found."""
    mark, me = f"{TOKEN_VARIABLE}={token}".encode(), os.getpid()
    killed: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid or start_ticks(pid) < since:
                continue
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                carries = mark in environ.read(ENVIRON_LIMIT).split(b"\0")
            # read again, now that the pidfd holds the process: the same one, same user
            if carries and start_ticks(pid) >= since and _all_uids_in(pid, frozenset({uid})):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                killed.append(os.dup(pidfd))
        except OSError:  # gone, or its environment unreadable (non-dumpable): not known
            pass
        finally:
            os.close(pidfd)
    return _wait_gone(killed)


def _wait_gone(pidfds: list[int]) -> bool:
    """Wait (bounded) until the killed processes are gone: the printer is free again."""
    deadline = time.monotonic() + GONE_WAIT
    waiting = list(pidfds)
    while waiting and (left := deadline - time.monotonic()) > 0:
        poller = select.poll()
        for fd in waiting:
            poller.register(fd, select.POLLIN)
        ready = {fd for fd, _ in poller.poll(left * 1000)}
        waiting = [fd for fd in waiting if fd not in ready]
    for fd in pidfds:
        os.close(fd)
    return not waiting
