"""One ``lpfilter filter`` run: data on disk, one send, LPRng's exit code and status lines.

What lpd reads back are short lines on stderr (for an ``lp=|`` program: the same socket
that carried the job), written as things happen: the printer's own status ("paper out"),
"printer busy, retrying later: ...", "job confirmed by printer, 3 pages". Retrying is
lpd's business, on its own schedule (``send_try``, ``connect_interval``): a transient
failure exits 1 at once. Signals (lprm, lpd stopping) only set a flag; the send stops
within a tick and the job is left for lpd to send again.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from lpfilter import logs
from lpfilter.backends import SendRequest, SendResult, backend_for, preload
from lpfilter.backends.settings import SendSettings, SocketSettings, settings_for
from lpfilter.errors import (HoldJob, Interruption, JobInterrupted, JobRefused, LpfilterError,
                             RemoveJob, TransientError, in_brief)
from lpfilter.filtercodes import FilterCode
from lpfilter.filtermode import stops
from lpfilter.filtermode.arguments import FilterArgs
from lpfilter.job import Job
from lpfilter.structs import Struct
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from lpfilter.printcap import Entry
    from lpfilter.printcap.destination import Destination

log = logs.getLogger(__name__)

TICK = 0.2
CHUNK = 1 << 20
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
#: The private copy of a job read from a socket or pipe: PREFIX + pid + "-" + random.
TEMP_PREFIX = ".lpfilter-filter-"

class Plan(Struct):
    """Everything decided from the command line and environment."""

    __slots__ = _fields = ("entry", "destination", "mode", "args", "stdin_kind", "framed",
                           "under_lpd", "spool_dir", "user", "started", "lock_dir")
    entry: Entry
    #: None: write to standard output (a data filter under lpd).
    destination: Destination | None
    mode: str
    args: FilterArgs
    stdin_kind: str
    framed: bool
    #: Started by lpd (PRINTCAP_ENTRY, or BSD lpd's layout): lpd frames, and the bare
    #: last argument is its accounting file.
    under_lpd: bool
    spool_dir: str
    user: str
    started: float
    #: Where host-wide locks live (FTP session slots); "": none needed.
    lock_dir: str

    def __init__(self, entry: Entry, destination: Destination | None,
                 mode: str, args: FilterArgs, stdin_kind: str, framed: bool, under_lpd: bool,
                 spool_dir: str, user: str, started: float, lock_dir: str = "") -> None:
        self.entry = entry
        self.destination = destination
        self.mode = mode
        self.args = args
        self.stdin_kind = stdin_kind
        self.framed = framed
        self.under_lpd = under_lpd
        self.spool_dir = spool_dir
        self.user = user
        self.started = started
        self.lock_dir = lock_dir


class FilterRun:
    """One run; also the send's Reporter: status lines go to lpd, a signal stops it."""

    def __init__(self, plan: Plan, err: TextIO) -> None:
        self.plan = plan
        self.err = err
        self.stopping: str | None = None
        #: A byte of the job left: a failure now may leave a duplicate.
        self.went_out = False

    def say(self, line: str) -> None:
        """One status line for lpd (and lpq): printable, one line."""
        try:
            print(one_line(line), file=self.err, flush=True)
        except (OSError, ValueError):
            pass

    # --- the Reporter of the send -------------------------------------------------------
    def interrupted(self) -> Interruption | None:
        return Interruption.SHUTDOWN if self.stopping else None

    def first_byte(self) -> None:
        self.went_out = True

    def progress(self, taken: int) -> None:
        """lpd shows no progress."""

    def status(self, message: str) -> None:
        self.say(message)

    def run(self) -> int:
        """SIGTERM, SIGINT, SIGHUP (lprm, lpd stopping) only set a flag meanwhile. (Not in
        the main thread, a test's, the handlers stay as they are: asking threading which
        thread this is would cost every filter's start 0.7 ms.)"""
        previous = stops.catch(self._stop)
        try:
            if self.plan.destination is not None:  # not between the job's end and the printer
                preload(self.plan.destination)
            try:
                path, size = self._data()
                try:
                    return self._send(path, size)
                finally:
                    if self.plan.stdin_kind != "file":  # a private copy
                        _unlink(path)
            except JobInterrupted as exc:  # while lpd was still writing the job
                self.say(f"stopped ({exc}); lpd will send the job again")
                return FilterCode.JFAIL
            except LpfilterError as exc:  # the data could not be read or stored
                self.say(f"cannot take the job: {exc}")
                return FilterCode.JFAIL
        finally:
            stops.restore(previous)

    # --- pieces -----------------------------------------------------------------------
    def _stop(self, name: str) -> None:
        self.stopping = name

    def _data(self) -> tuple[str, int]:
        """The job as a file: lpd's spool file itself, or stdin copied to a private file
        (in the spool directory when it can) before any byte goes to the printer; ``run``
        removes the copy after the send, this the copy it could not finish."""
        if self.plan.stdin_kind == "file":
            return "/proc/self/fd/0", os.fstat(0).st_size
        from lpfilter.errors import AccessError
        from lpfilter.safefiles import create_unique
        fd, path = -1, ""
        for directory in (self.plan.spool_dir, os.environ.get("TMPDIR", ""), "/tmp"):
            if not directory:
                continue
            try:
                fd, path = create_unique(directory, f"{TEMP_PREFIX}{os.getpid()}-")
            except OSError:
                continue
            _remove_orphans(directory)
            break
        if fd < 0:
            raise AccessError("no writable directory for the job's data (spool dir, TMPDIR,"
                              " /tmp)")
        try:
            try:
                return path, self._copy_stdin(fd)
            except OSError as exc:
                raise AccessError(f"reading the job: {exc.strerror or exc}") from None
        except BaseException:
            _unlink(path)
            raise
        finally:
            os.close(fd)

    def _copy_stdin(self, fd: int) -> int:
        """Standard input to ``fd``, waking every tick: a signal while lpd is still writing
        stops the filter at once (and the private copy is removed). The bytes go through
        a pipe with splice(2), never through Python, where the kernel allows it."""
        import select
        total = 0
        fds = os.pipe()
        pipe: tuple[int, int] | None = fds
        try:
            try:
                fcntl.fcntl(fds[1], F_SETPIPE_SZ, CHUNK)
            except OSError:
                pass
            while True:
                if self.stopping:
                    raise JobInterrupted(Interruption.SHUTDOWN, self.stopping)
                ready, _, _ = select.select([0], [], [], TICK)
                if not ready:
                    continue
                if pipe is not None:
                    try:
                        moved = os.splice(0, pipe[1], CHUNK, flags=os.SPLICE_F_NONBLOCK)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        if exc.errno not in (errno.EINVAL, errno.ENOSYS) or total:
                            raise
                        os.close(pipe[0])
                        os.close(pipe[1])
                        pipe = None  # this kind of stdin cannot splice: copy through Python
                        continue
                    left = moved
                    while left:
                        left -= os.splice(pipe[0], fd, left)
                else:
                    data = os.read(0, CHUNK)
                    moved = len(data)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                if not moved:
                    return total
                total += moved
        finally:
            if pipe is not None:
                os.close(pipe[0])
                os.close(pipe[1])

    def _job(self, size: int) -> Job:
        args = self.plan.args
        env = os.environ  # lpfilter's own pipe backend names the job here (not lpd)
        name = (args.get("J") or args.get("N") or args.get("f") or env.get("LPFILTER_JOB_NAME")
                or "stdin")
        # lpfilter's own spool's job id first (its lp=| program also gets LPRng's -j, the
        # number without its zeros); else -j, lpd's number.
        ident = (env.get("LPFILTER_JOB") or args.get("j") or args.get("A")
                 or str(os.getpid()))
        return Job(ident, self.plan.entry.name, self.plan.user or "unknown", name, size,
                   self.plan.started, title=args.get("T") or "",
                   host=args.get("H") or args.get("h") or "")

    def _request(self, job: Job, path: str) -> SendRequest[SendSettings]:
        plan = self.plan
        settings: SendSettings = (
            SocketSettings.from_entry(plan.entry, framed=plan.framed)  # standard output
            if plan.destination is None
            else settings_for(plan.destination, plan.entry, framed=plan.framed))
        return SendRequest(job, path, plan.destination,  # type: ignore[arg-type]
                           settings, self, lock_dir=plan.lock_dir)

    def _send(self, path: str, size: int) -> int:
        job = self._job(size)
        request: SendRequest[SendSettings] | None = None
        outcome, code = "failed", FilterCode.JABORT
        result: SendResult | None = None
        try:  # the settings too: a value that cannot be read is this job's failure
            request = self._request(job, path)
            result = self._deliver(request)
            outcome, code = result.delivery, FilterCode.JSUCC
        except JobInterrupted as exc:
            self.say(f"stopped ({self.stopping or exc}); lpd will send the job again")
            code = FilterCode.JFAIL
        except HoldJob as exc:
            self.say(f"job held: {exc}")
            code = FilterCode.JHOLD
        except RemoveJob as exc:
            self.say(f"job removed: {exc}")
            code = FilterCode.JREMOVE
        except TransientError as exc:
            self.say(f"{in_brief(exc)}, retrying later: {exc}")
            code = FilterCode.JFAIL
        except LpfilterError as exc:
            self.say(f"job refused: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug: keep the job (abort, not remove)
            log.debug("internal error", exc_info=True)
            self.say(f"internal error: {type(exc).__name__}: {exc}; the job is kept")
        sent = 0 if request is None else request.sent
        if code != FilterCode.JSUCC and self.went_out:
            self.say(f"possible duplicate: {sent} bytes were sent before the failure")
        if result is not None:
            pages = "" if result.pages is None else (
                f", {result.pages} page{'' if result.pages == 1 else 's'}")
            if result.delivery == "confirmed":
                self.say(f"job confirmed by printer{pages}")
            else:
                self.say(f"job sent to {self._where()}, {result.bytes_sent} bytes{pages}")
        self._account(job, result, sent, outcome)
        return code

    def _where(self) -> str:
        return self.plan.destination.display() if self.plan.destination else "the printer"

    def _deliver(self, request: SendRequest[SendSettings]) -> SendResult:
        if self.plan.destination is not None:
            if self.plan.destination.kind == "lpd":
                raise JobRefused(f"lp={self.plan.destination.display()}: lpfilter filter does"
                                 " not forward to LPD queues; a spooled queue does (lpfilter"
                                 " print or watch)")
            backend = backend_for(self.plan.destination)
            try:
                return backend.send(request)
            finally:
                close = getattr(backend, "close", None)
                if close is not None:
                    close()
        from lpfilter.backends.stdout import send_to_stdout
        return send_to_stdout(request)  # type: ignore[arg-type]  # SocketSettings: _send

    def _account(self, job: Job, result: SendResult | None, sent: int, outcome: str) -> None:
        """LPRng's af rule: a line appended to the accounting file only if it exists (a
        ``|program`` or ``host%port`` af is lpd's to feed)."""
        if os.environ.get("LPFILTER_JOB"):
            return  # an lp=| program of lpfilter's own spool: the spool accounts the job
        args = self.plan.args
        target = args.accounting or args.get("a")
        if not self.plan.under_lpd or not target or target.startswith("|") or "%" in target:
            return  # by hand, a bare argument is nobody's accounting file
        if not os.path.isabs(target):
            target = os.path.join(self.plan.spool_dir or os.getcwd(), target)
        from lpfilter.filtermode.accounting import line
        text = line(queue=job.queue, user=job.user, host=job.host, name=job.name,
                    bytes_sent=result.bytes_sent if result else sent,
                    pages=result.pages if result else None,
                    seconds=time.time() - self.plan.started, outcome=outcome)
        try:
            fd = _open_accounting(target)
            if fd is None:
                return
            try:
                os.write(fd, text.encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except OSError as exc:
            self.say(f"accounting file {target}: {exc.strerror or exc}; no line written")


def _open_accounting(target: str) -> int | None:
    """The accounting file open for appending, or None when it does not exist (LPRng's
    rule: no file, no accounting). Only a regular file is ever opened, and never through
    a symbolic link: the argument may name a FIFO (an open that blocks for ever), a device
    (an open with side effects) or a link planted in a shared directory. ``lstat`` first,
    so nothing else is opened at all; then ``O_NOFOLLOW | O_NONBLOCK`` and ``fstat`` on
    the descriptor, so a swap in between is caught too."""
    try:
        before = os.lstat(target)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(before.st_mode):
        raise OSError(errno.ELOOP, "a symbolic link, which lpfilter does not follow")
    if not stat.S_ISREG(before.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    flags = (os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
             | os.O_CLOEXEC)
    try:
        fd = os.open(target, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # swapped for a link or a FIFO
            raise OSError(exc.errno, "replaced while being opened; not followed") from None
        raise
    after = os.fstat(fd)
    if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (
            before.st_dev, before.st_ino):
        os.close(fd)
        raise OSError(errno.EINVAL, "replaced while being opened by something that is not"
                      " the regular file it was")
    return fd


def _remove_orphans(directory: str) -> None:
    """Copies left by a filter that was killed (SIGKILL, a crash): their pid is gone.
    lpd still has those jobs in its own spool; the copies are only waste."""
    try:
        names = [n for n in os.listdir(directory) if n.startswith(TEMP_PREFIX)]
    except OSError:
        return
    for name in names:
        pid_text = name[len(TEMP_PREFIX):].partition("-")[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        path = os.path.join(directory, name)
        try:
            born = os.stat(path).st_mtime
        except OSError:
            continue
        from lpfilter.locks import process_start  # (only for a copy left: psutil's)
        started = process_start(int(pid_text))
        # Gone, or a newer process that reused the pid: the copy is an orphan.
        if not started or started > born + 1:
            _unlink(path)


def _unlink(path: str) -> None:
    """Remove a private copy of a job; one already gone is no error. (No contextlib here:
    lpd's filter would import it for this alone, 2.7 M instructions of every start.)"""
    try:
        os.unlink(path)
    except OSError:
        pass


def one_line(text: str) -> str:
    """One status line: control characters and line breaks made visible, so a value from
    the command line (or a server's reply) can never make a second line or reach lpq's
    terminal as an escape sequence."""
    return visible(text.strip())

