"""Process locks: one process serves a queue, one job at a time uses a printer.

A lock is a file held with flock(2), so the kernel frees it when its holder dies, even by
SIGKILL; inside it the holder writes its pid and process start time, so ``status`` can
say who serves a queue and psutil can tell a live holder from a reused pid.
"""
from __future__ import annotations

import fcntl
import os
import stat
import time

from lpfilter.errors import NO_ROOM
from lpfilter.memo import per_process
from lpfilter.safefiles import open_lock
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: How often a blocked acquire looks again (seconds).
POLL = 0.05


class Holder(FrozenStruct):
    """Who holds (or last held) a lock."""

    __slots__ = _fields = ("pid", "start", "host", "purpose", "since")
    pid: int
    start: float
    host: str
    purpose: str
    since: float

    def __init__(self, pid: int, start: float, host: str, purpose: str, since: float) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "pid", pid)
        setattr_(self, "start", start)
        setattr_(self, "host", host)
        setattr_(self, "purpose", purpose)
        setattr_(self, "since", since)

    def alive(self) -> bool:
        """Is that very process still running? (A pid alone may have been reused.)"""
        return process_alive(self.pid, self.start)


@per_process
def own_start() -> float:
    """This process's start time, as ``process_start`` gives it to any other process that
    looks (psutil's ``create_time``: the start in clock ticks after boot, from
    ``/proc/self/stat``, plus the boot time, from ``/proc/stat``), read here without
    importing psutil: 20 ms of the start of a pass or a daemon that takes its queue's lock
    and then needs psutil for nothing else. Elsewhere than on Linux, psutil's own."""
    try:
        with open("/proc/self/stat", "rb") as own:
            line = own.read(4096)
        ticks = float(line[line.rindex(b")") + 2:].split()[19])  # field 22: starttime
        with open("/proc/stat", "rb") as kernel:
            boot = next(float(row.split()[1]) for row in kernel if row.startswith(b"btime "))
        return ticks / os.sysconf("SC_CLK_TCK") + boot
    except (OSError, ValueError, IndexError, StopIteration):
        return process_start(os.getpid())


def process_start(pid: int) -> float:
    """The start time of ``pid`` as psutil reports it (0.0 when gone)."""
    import psutil
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0.0


#: How far a process's start time may move between two readings and still be the same
#: process. psutil derives it from the boot time, which the kernel recomputes from the
#: wall clock: a clock step moves every start time (a long test run on a VM whose clock
#: was stepped saw its own lease "die"). A reused pid needs the pid counter to wrap and
#: a new process to start within this of the old one's start: not a real risk.
START_SLACK = 2.0


def process_alive(pid: int, start: float) -> bool:
    import psutil
    try:
        process = psutil.Process(pid)
        return (abs(process.create_time() - start) < START_SLACK
                and process.status() != "zombie")
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError,
            OverflowError):  # ValueError, OverflowError: no pid a process can have
        return False


class ProcessLock:
    """An flock-based lock file naming its holder."""

    def __init__(self, path: str, purpose: str, owner: int | None = None) -> None:
        self.path = path
        self.purpose = purpose
        #: A lock in a queue's folder belongs to the queue's owner (root gives it to them).
        self.owner = owner
        self._fd: int | None = None
        self._idle: int | None = None
        #: The record this process wrote into the file it keeps open between holds (a
        #: worker takes its printer's lock for each job): written again only if changed.
        self._record = b""
        #: Held, but its record could not be written (a full or read-only disk): nobody
        #: can tell who holds it until ``name_again`` writes it.
        self.unnamed = False

    def acquire(self, *, timeout: float = 0.0,
                stop: Callable[[], bool] | None = None) -> bool:
        """Take the lock; wait up to ``timeout`` seconds (polling, so ``stop`` is heard)."""
        if self._fd is not None:
            return True
        fd = self._idle if self._idle is not None else open_lock(self.path, self.owner,
                                                                  0o644)
        self._idle = None
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline or (stop is not None and stop()):
                    self._idle = fd
                    return False
                time.sleep(POLL)
        if self._record and os.pread(fd, len(self._record) + 1, 0) == self._record:
            self._fd = fd  # our record, left at a release that kept the file: it stands
            return True
        me = os.getpid()
        # os.uname().nodename is what socket.gethostname() returns on Linux, without
        # importing socket on every quick command's way.
        record = {"pid": me, "start": own_start(), "host": os.uname().nodename,
                  "purpose": self.purpose, "since": time.time()}
        from lpfilter import jsontext  # (only a lock's holder writes a record: not lpd's filter)
        self._record = jsontext.dumps(record).encode() + b"\n"
        try:
            self._write_record(fd)
        except OSError as exc:
            if exc.errno not in NO_ROOM:
                fcntl.flock(fd, fcntl.LOCK_UN)
                self._idle = fd
                raise
            # A full or read-only disk: the lock holds (flock is the lock); only who
            # holds it cannot be shown (``name_again``). What needs writing next says
            # the disk is full.
            self.unnamed = True
        self._fd = fd
        return True

    def _write_record(self, fd: int) -> None:
        """Over the old record, then cut to size: on a full disk the block the file already
        has is reused (truncating first would give it up, and then fail)."""
        os.pwrite(fd, self._record, 0)
        os.ftruncate(fd, len(self._record))
        self.unnamed = False

    def name_again(self) -> None:
        """Write the record a full disk kept out at ``acquire`` (nothing if it is in):
        until then ``current_holder`` finds nobody, and status says no watcher runs."""
        if self.unnamed and self._fd is not None:
            try:
                self._write_record(self._fd)
            except OSError as exc:
                if exc.errno not in NO_ROOM:
                    raise

    def release(self, *, keep_open: bool = False) -> None:
        """Give the lock up; ``keep_open`` keeps the file open for the next acquire."""
        if self._fd is not None:
            if not keep_open:  # kept: the record stays for the next hold (a reader looks
                try:  # at a record only while it is held)
                    os.ftruncate(self._fd, 0)
                except OSError:
                    pass
                self._record = b""
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            if keep_open:
                self._idle = self._fd
            else:
                os.close(self._fd)
            self._fd = None
        if not keep_open and self._idle is not None:
            if self._record:  # the record a kept file held, if still ours: no holder now
                try:  # (BlockingIOError: another holds it)
                    fcntl.flock(self._idle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if os.pread(self._idle, len(self._record) + 1, 0) == self._record:
                        os.ftruncate(self._idle, 0)
                except OSError:
                    pass
                self._record = b""
            os.close(self._idle)
            self._idle = None

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def current_holder(path: str) -> Holder | None:
    """The live holder of the lock at ``path``, or None when nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None  # we could take it: nobody holds it
        except BlockingIOError:
            pass
        from lpfilter import jsontext
        try:
            data = jsontext.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
            holder = Holder(int(data["pid"]), float(data["start"]), str(data["host"]),
                            str(data["purpose"]), float(data["since"]))
        except (ValueError, KeyError, TypeError):
            return None
        return holder if holder.alive() else None
    finally:
        os.close(fd)
