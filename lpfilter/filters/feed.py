"""A job's body as LPRng's lpd prints it, produced into a pipe the backend streams from.

One thread runs the job (lprng-filters.md §1, §6; LPRng printjob.c ``Print_job``): the
leader (``ld``, a form feed if ``fo``), the start banner, each copy of the data file
through its data filter (fd 0 the file, rewound; fd 1 the pipe) with a form feed between
copies where ``sf``/``ff_separator`` say, the end banner, a form feed if ``fq``, ``tr``.
With ``of`` the pieces around the data go through the OF filter, which is told
``\\031\\001`` and waited for (bounded) until it stops itself before each data file runs
straight to the pipe, then continued with SIGCONT; ``suspend_of_filter@`` closes it and
starts a new one instead. The backend reads the other end (``Feed`` is its
``StreamSource``), so nothing is held in memory and the printer's pace bounds the filter's.

A failure (an exit status, a signal, an OF that does not stop) ends the production: the
pipe is closed and ``finish`` raises it when the backend reaches the end, so a cut body is
never taken for a whole job; ``close`` kills every filter still running.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import threading
import time

from lpfilter import logs
from lpfilter.errors import JobRefused, LpfilterError, TransientError
from lpfilter.children import run
from lpfilter.children.run import Messages, Running
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from lpfilter.children.run import FilterCommand

    Command = FilterCommand | None
    Banner = FilterCommand | bytes | None

log = logs.getLogger(__name__)

#: What tells the OF filter to stop itself (LPRng's ``Filter_stop``).
OF_STOP = b"\031\001"
#: How often the stop of the OF filter is looked for.
POLL = 0.01
CHUNK = 1 << 20


class Plan(FrozenStruct):  # (not a dataclass: a print serving its queue makes one)
    """What one job's production does (made by ``filters.plan``)."""

    __slots__ = _fields = ("data", "pr", "of", "suspend", "start_banner", "end_banner",
                           "leader", "separator", "trailer", "copies", "env", "cwd", "owner",
                           "of_wait", "notes")
    data: Command  # the data filter, or None: the file goes out as it is
    #: Format ``p``: the ``pr`` program's command, run first into a temporary file.
    pr: Command
    of: Command
    #: Run the OF's suspend protocol (``suspend_of_filter``); else restart it.
    suspend: bool
    #: A banner: a program's command (``bp``/``bs``/``be``), or a built-in one's bytes.
    start_banner: Banner
    end_banner: Banner
    leader: bytes
    separator: bytes
    trailer: bytes
    copies: int
    env: dict[str, str]
    cwd: str  # the spool directory: every filter's directory, where temporary files go
    #: The spool's owner (uid, gid): whom a root watcher runs filters as.
    owner: tuple[int, int]
    of_wait: float  # seconds the OF filter may take to stop itself (or to exit at the end)
    #: Status lines said before anything runs (a bad format letter).
    notes: tuple[str, ...]

    def __init__(self, data: Command, pr: Command, of: Command, suspend: bool,
                 start_banner: Banner, end_banner: Banner, leader: bytes, separator: bytes,
                 trailer: bytes, copies: int, env: dict[str, str], cwd: str,
                 owner: tuple[int, int], of_wait: float, notes: tuple[str, ...] = ()) -> None:
        self._assign(locals())

    def describe(self) -> str:
        """Who writes the stream, for a message about it."""
        command = self.data or self.of
        if command is None:
            return "lpfilter's banner and data stream"
        return f"the {command.key} filter {os.path.basename(command.argv[0])}"


#: The body's pipe holds this much (fcntl F_SETPIPE_SZ; Linux's default is 64 KiB): a
#: filter writing a big job, and the backend splicing it to the printer, then each wait
#: for the other 16 times less often (``cat`` of 1 GiB to a socket: bench/README.md).
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031


def widen(fd: int) -> None:
    """Make a pipe hold PIPE_SIZE, or as much as the system lets this user (a smaller
    pipe only costs speed)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)


class Feed:
    """The producing thread and its pipe: a ``StreamSource`` for the backend."""

    def __init__(self, plan: Plan, data_fd: int) -> None:
        self.plan = plan
        self.messages = Messages()
        self.what = plan.describe()
        self._data = os.dup(data_fd)
        self.fd, self._out = os.pipe2(os.O_CLOEXEC)
        widen(self._out)
        os.set_blocking(self.fd, False)
        self._lock = threading.Lock()
        self._running: list[Running] = []
        self._temps: list[int] = []
        self._stopping = False
        self.error: BaseException | None = None
        #: Waits (bounded, interruptible) for a filter's exit before its status is read,
        #: when the sending thread runs the job itself (``filters.direct``).
        self.await_exit: Callable[[Running], None] | None = None
        self._thread = threading.Thread(target=self._produce, name="filter feed", daemon=True)

    # --- the backend's side -----------------------------------------------------------
    def start(self) -> None:
        self.say_notes()
        self._thread.start()

    def say_notes(self) -> None:
        """The plan's notes, as status, before anything runs (either way: ``start`` or
        ``filters.direct``)."""
        for note in self.plan.notes:
            self.messages.put(note)

    def produced(self) -> bool:
        """Whether the producing thread has ended (its end of the pipe closed)."""
        return self._thread.ident is not None and not self._thread.is_alive()

    def finish(self) -> None:
        """The pipe ended: the producer closed it. Raise what ended it, if anything did."""
        self._thread.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """After the send, whatever its end: kill what still runs, close every descriptor,
        and wait (bounded) for the producing thread."""
        with self._lock:
            self._stopping = True
            running = list(self._running)
        for process in running:
            process.kill()
        os.close(self.fd)  # a producer blocked writing the pipe gets EPIPE
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=10)
        if self._thread.is_alive():
            log.warning("the filter feed thread did not end")
        else:
            self._close_out()
        for fd in (self._data, *self._temps):
            os.close(fd)

    # --- the producing thread ---------------------------------------------------------
    def _produce(self) -> None:
        try:
            if self.plan.of is None:
                self._plain()
            else:
                self._with_of()
        except LpfilterError as exc:
            self.error = exc
        except OSError as exc:
            self.error = (TransientError(f"{self.what}: the output was closed")
                          if exc.errno == errno.EPIPE else
                          TransientError(f"{self.what}: {exc.strerror or exc}"))
        except Exception as exc:  # noqa: BLE001 - raised again in the worker's thread
            self.error = exc
        finally:
            with self._lock:
                running = list(self._running)
            if self.error is not None:
                for process in running:
                    process.kill()
            self._close_out()

    def _close_out(self) -> None:
        out, self._out = self._out, -1
        if out >= 0:
            os.close(out)

    def _plain(self) -> None:
        plan, out = self.plan, self._out
        _write_all(out, plan.leader)
        if plan.start_banner is not None:
            _write_all(out, self._banner(plan.start_banner))
        body = self._prepared()
        for copy in range(max(1, plan.copies)):
            if copy and plan.separator:
                _write_all(out, plan.separator)
            self._copy(body, out)
        if plan.end_banner is not None:
            _write_all(out, self._banner(plan.end_banner))
        _write_all(out, plan.trailer)

    def _with_of(self) -> None:
        plan = self.plan
        assert plan.of is not None
        of = OfFilter(self, plan.of)
        try:
            start = plan.leader
            if plan.start_banner is not None:
                start += self._banner(plan.start_banner)
            of.send(start)
            body = self._prepared()
            for copy in range(max(1, plan.copies)):
                if copy and plan.separator:
                    of.send(plan.separator)
                of.pause()
                self._copy(body, self._out)
            end = self._banner(plan.end_banner) if plan.end_banner is not None else b""
            of.send(end + plan.trailer)
            of.end()
        finally:
            of.forget()

    # --- pieces -----------------------------------------------------------------------
    def start_process(self, command: FilterCommand, *, stdin: int | None,
                      stdout: int) -> Running:
        """Start a filter, unless the send is being stopped."""
        plan = self.plan
        with self._lock:
            if self._stopping:
                raise TransientError(f"{self.what}: stopped")
            process = run.start(command, stdin=stdin, stdout=stdout, env=plan.env,
                                cwd=plan.cwd, owner=plan.owner, messages=self.messages)
            self._running.append(process)
        return process

    def _done(self, process: Running) -> None:
        """Wait for a filter's end; raise what its exit status means (after killing what
        it left behind in its session, which may hold the pipe open)."""
        try:
            if self.await_exit is not None:
                self.await_exit(process)
            process.finish()
        except LpfilterError:
            process.kill_group()
            raise
        finally:
            with self._lock:
                if process in self._running:
                    self._running.remove(process)

    def _prepared(self) -> int:
        """The descriptor the data filter reads: the spooled file, or for format ``p``
        a temporary file in the spool with ``pr``'s output (LPRng's order)."""
        plan = self.plan
        if plan.pr is None:
            return self._data
        import tempfile  # (tempfile with shutil, random, bz2...: only a job that needs it)
        with tempfile.TemporaryFile(dir=plan.cwd, prefix=".pr-") as temp:
            fd = os.dup(temp.fileno())
        self._temps.append(fd)
        os.lseek(self._data, 0, os.SEEK_SET)
        self._done(self.start_process(plan.pr, stdin=self._data, stdout=fd))
        return fd

    def _copy(self, source: int, out: int) -> None:
        """One copy of the data: through the data filter, or as it is."""
        os.lseek(source, 0, os.SEEK_SET)
        if self.plan.data is None:
            _copy_file(source, out)
            return
        self._done(self.start_process(self.plan.data, stdin=source, stdout=out))

    def _banner(self, banner: FilterCommand | bytes) -> bytes:
        """A banner's bytes: built in, or a banner program's output (into a temporary
        file first, as LPRng does; a banner is a page, not a document)."""
        if isinstance(banner, bytes):
            return banner
        import tempfile  # (see above)
        with (tempfile.TemporaryFile(dir=self.plan.cwd, prefix=".banner-") as temp,
              open(os.devnull, "rb") as nothing):
            self._done(self.start_process(banner, stdin=nothing.fileno(), stdout=temp.fileno()))
            temp.seek(0)
            data = temp.read(BANNER_LIMIT + 1)
        if len(data) > BANNER_LIMIT:
            raise JobRefused(f"{banner.key} banner program {banner.argv[0]} wrote more than"
                             f" {BANNER_LIMIT} bytes")
        return data


#: A banner program's output larger than this fails the job (a page, not a document).
BANNER_LIMIT = 1 << 20


class OfFilter:
    """The ``of`` filter of one job: fed through a pipe, stopped and continued."""

    def __init__(self, feed: Feed, command: FilterCommand) -> None:
        self.feed = feed
        self.command = command
        self.process: Running | None = None
        self.stopped = False

    def _ensure(self) -> Running:
        if self.process is None:
            self.process = self.feed.start_process(self.command, stdin=None,
                                                   stdout=self.feed._out)
            self.stopped = False
        elif self.stopped:
            os.kill(self.process.pid, signal.SIGCONT)
            self.stopped = False
        return self.process

    def _stdin(self) -> int:
        process = self._ensure()
        stdin = process.process.stdin
        assert stdin is not None
        return stdin.fileno()

    def send(self, data: bytes) -> None:
        if data:
            _write_all(self._stdin(), data)

    def pause(self) -> None:
        """Before a data file: the OF stops itself (or, without the suspend protocol,
        ends and is started again for what follows)."""
        if not self.feed.plan.suspend:
            if self.process is not None:
                self.end()
            return
        _write_all(self._stdin(), OF_STOP)
        assert self.process is not None
        self._wait_stopped(self.process)
        self.stopped = True

    def _wait_stopped(self, process: Running) -> None:
        deadline = time.monotonic() + self.feed.plan.of_wait
        while True:  # WNOWAIT: never reaped here, so its group is ended before it is
            info = os.waitid(os.P_PID, process.pid,
                             os.WEXITED | os.WSTOPPED | os.WNOHANG | os.WNOWAIT)
            if info is not None and info.si_code == os.CLD_STOPPED:
                return
            if info is not None:  # it ended instead
                error = process.error(process.wait()) or JobRefused(
                    f"of filter {process.program} exited instead of stopping itself on"
                    " \\031\\001")
                raise error
            if time.monotonic() > deadline:
                raise TransientError(f"of filter {process.program} did not stop itself"
                                     f" within {self.feed.plan.of_wait:g} s of \\031\\001")
            time.sleep(POLL)

    def end(self) -> None:
        """Close its input and wait for it to exit (bounded); map its status."""
        process = self._ensure()
        stdin = process.process.stdin
        assert stdin is not None
        stdin.close()
        if not process.wait_for(self.feed.plan.of_wait):
            raise TransientError(f"of filter {process.program} did not exit within"
                                 f" {self.feed.plan.of_wait:g} s of the end of its"
                                 " input")
        self.process = None
        self.feed._done(process)

    def forget(self) -> None:
        """After a failure: its input closed (``Feed`` kills it)."""
        if self.process is not None and self.process.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.process.stdin.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_file(src: int, out: int) -> None:
    """The file from its start to the pipe: sendfile(2), else through a buffer."""
    offset = 0
    while True:
        try:
            done = os.sendfile(out, src, offset, CHUNK)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS) or offset:
                raise
            os.lseek(src, 0, os.SEEK_SET)
            while chunk := os.read(src, CHUNK):
                _write_all(out, chunk)
            return
        if done == 0:
            return
        offset += done
