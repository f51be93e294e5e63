"""Running one filter (or ``lp=|`` or accounting) program as lpd does (lprng-filters.md §3).

The caller gives the descriptors: fd 0 (the spooled file, a temporary file, a pipe) and
fd 1 (the pipe the backend streams from); fd 2 is a pipe whose lines a thread reads and
queues as status (``Messages``), every descriptor from 3 up is closed, the directory is
the spool, the environment is the one given (``command.filter_environment``). An
``lp=|`` program (``backends.pipe``) gets a pipe as fd 0 and one pipe as fd 1 and 2, all
of whose lines are status (lpd gives it one socket for the three). A filter
runs in its own session so that it and everything it started can be killed together, and
dies (SIGKILL, from the kernel) when the process that started it ends, however it ends;
what it started is ended once it exits (its group, and every process carrying its mark,
``orphans.end_marked``), or, should the watcher die first, by the next watcher
(``children.orphans``: each filter's record).

As whom (``filter_owner``): the watcher runs as the spool's owner and so does the filter.
A watcher run by root runs a filter as the spool directory's owner; for a spool root owns,
as LPRng's lpd does, as the printcap's ``user`` and ``group`` (default ``daemon`` and
``lp``, or ``nobody``/``nogroup`` where those do not exist), so that root's filters never
run as root by accident; a ``ROOT`` filter runs as root. A watcher that is not root
refuses a ``ROOT`` filter's job, as it cannot give it what it asks for.
"""
from __future__ import annotations

import collections
import contextlib
import grp
import os
import pwd
import signal
import threading
import time
from collections.abc import Mapping

from lpfilter import logs
from lpfilter.children import orphans
from lpfilter.children.exitwait import ExitWait
from lpfilter.children.output import Messages as Messages  # re-exported: run.Messages
from lpfilter.children.output import Reader
from lpfilter.children.exits import exit_error
from lpfilter.errors import JobRefused, LpfilterError
from lpfilter.job import user_name
from lpfilter.programs import command_argv, needs_shell, strip_prefixes
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    # subprocess is imported by ``start``: a pass that runs no program imports neither it
    # nor the locale it loads (~7 M instructions).
    import subprocess
    from typing import Any

    from lpfilter.printcap.entry import Entry

log = logs.getLogger(__name__)

#: Lines of a filter's stderr kept for the message of its failure.
KEEP_LINES = 5
#: After SIGTERM, how long a filter may take to exit before SIGKILL.
TERM_GRACE = 2.0


def identity(as_root: bool, owner: tuple[int, int], *, key: str) -> dict[str, Any]:
    """``Popen`` arguments for the user a filter runs as (see the module's docstring)."""
    if os.geteuid() != 0:
        if as_root:
            raise JobRefused(f"{key}=ROOT ...: lpfilter runs this queue as"
                             f" {user_name(os.geteuid())}, not root, and cannot run a ROOT"
                             " filter; run the watcher as root or leave out ROOT")
        return {}
    uid, gid = owner
    if as_root or (uid, gid) == (0, 0):
        return {}
    return {"user": uid, "group": gid, "extra_groups": []}


#: LPRng's ``user`` and ``group`` when the printcap sets none (Debian's lpd: daemon, lp).
DEFAULT_USERS = ("daemon", "nobody")
DEFAULT_GROUPS = ("lp", "daemon", "nogroup")
#: The group of a spool owner with no account, when the spool directory's group is root.
NOGROUP = 65534


def _account_id(name: str | None, defaults: tuple[str, ...], *, kind: str, queue: str) -> int:
    """The id of a ``user``/``group`` printcap value (a name or a number), else of the
    first default that exists."""
    look = pwd.getpwnam if kind == "user" else grp.getgrnam
    for candidate in ([name.strip()] if name and name.strip() else list(defaults)):
        if candidate.isdigit():
            return int(candidate)
        try:
            record = look(candidate)
        except KeyError:
            continue
        return record.pw_uid if isinstance(record, pwd.struct_passwd) else record.gr_gid
    raise JobRefused(f"{kind}={name or '/'.join(defaults)}: no such {kind} on this host to run"
                     f" the queue's filters as; set {kind}= to one that exists", queue=queue)


def filter_owner(entry: Entry, spool_dir: str) -> tuple[int, int]:
    """(uid, gid) a queue's filters run as, ``ROOT`` ones aside (see the module's
    docstring): the spool directory's owner, or ``user``/``group`` for a root-owned spool
    under a root watcher."""
    return owner_of(spool_dir, entry.string("user"), entry.string("group"), queue=entry.name)


def owner_of(spool_dir: str, user: str | None, group: str | None, *,
             queue: str) -> tuple[int, int]:
    """``filter_owner`` from the printcap's ``user`` and ``group`` values (an ``lp=|``
    program's settings carry them, not the entry)."""
    info = os.stat(spool_dir)
    if os.geteuid() != 0:
        return info.st_uid, info.st_gid
    if info.st_uid != 0:  # the owner's own group, not the directory's (it may be root's)
        try:
            return info.st_uid, pwd.getpwuid(info.st_uid).pw_gid
        except KeyError:  # no such account: never the directory's group if it is root's
            return info.st_uid, info.st_gid or NOGROUP
    return (_account_id(user, DEFAULT_USERS, kind="user", queue=queue),
            _account_id(group, DEFAULT_GROUPS, kind="group", queue=queue))


def end_orphans(entry: Entry, spool_dir: str) -> int:
    """At a takeover, before anything is sent: end what a dead watcher's filters left
    running (``children.orphans``), only processes running as the queue's filters do now:
    ``filter_owner``'s user, and root (``ROOT`` filters) only for a spool root owns,
    whose records no one else can have written."""
    uids = set()
    with contextlib.suppress(JobRefused, OSError):
        uids.add(filter_owner(entry, spool_dir)[0])
    with contextlib.suppress(OSError):
        if os.geteuid() == 0 and os.stat(spool_dir).st_uid == 0:
            uids.add(0)
    ended = orphans.end_orphans(spool_dir, frozenset(uids)) if uids else 0
    if ended:
        log.warning("queue %s: ended %d process%s left running by the filters of a watcher"
                    " that died", entry.name, ended, "" if ended == 1 else "es")
    return ended


def program_environment(*, queue: str, spool_dir: str, path: str, shell: str,
                        printcap_text: str, inherited: Mapping[str, str],
                        login: tuple[str, str] | None = None) -> dict[str, str]:
    """The core every program a printcap names gets in its environment (lprng-filters.md
    §4), never the watcher's own (the filter user could read it in /proc/PID/environ):
    the queue, the login of the real uid (``login``: (name, home), looked up when not
    given), ``filter_path``, the shell, the spool and the printcap entry, and ``TZ``."""
    if login is None:
        try:
            record = pwd.getpwuid(os.getuid())
            login = (record.pw_name, record.pw_dir)
        except KeyError:
            login = (str(os.getuid()), "/")
    env = {"PRINTER": queue, "USER": login[0], "LOGNAME": login[0], "HOME": login[1],
           "LOGDIR": login[1], "PATH": path, "SHELL": shell, "IFS": " \t",
           "SPOOL_DIR": spool_dir, "PRINTCAP_ENTRY": printcap_text}
    env.update({"TZ": inherited["TZ"]} if "TZ" in inherited else {})
    return env


class FilterCommand(FrozenStruct):
    """What to run: ``argv`` as root (``ROOT``) or not; ``shell``: argv is ``sh -c``;
    ``env``: variables the shell text names (``LPF_1``...), added to the environment."""

    __slots__ = _fields = ("key", "argv", "as_root", "shell", "env")
    key: str
    argv: list[str]
    as_root: bool
    shell: bool
    env: Mapping[str, str]

    def __init__(self, key: str, argv: list[str], as_root: bool, shell: bool,
                 env: Mapping[str, str] | None = None) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "key", key)
        setattr_(self, "argv", argv)
        setattr_(self, "as_root", as_root)
        setattr_(self, "shell", shell)
        setattr_(self, "env", {} if env is None else env)


def program_command(key: str, text: str, shell: str) -> FilterCommand:
    """The program of a printcap's ``|text`` (``lp=|``, ``send_failure_action=|``):
    ``ROOT`` (and ``-$``) words off, the rest split as LPRng splits a filter's line (a
    shell for ``< > | ;`` or a leading '('); no argv when it names no program."""
    rest, _no_options, as_root = strip_prefixes(text)
    return FilterCommand(key, command_argv(rest, shell), as_root, needs_shell(rest))


class Running:
    """One started filter: its exit status, its last stderr lines, and a kill."""

    def __init__(self, process: subprocess.Popen[bytes], key: str, program: str,
                 messages: Messages, record: orphans.Record | None = None,
                 title: str | None = None, mark: tuple[str, int] | None = None) -> None:
        self.process = process
        #: Held to check that the pid is unreaped and signal its group, and to reap it: a
        #: ``kill`` in another thread (``Feed.close``) cannot reap it in between.
        self._reaping = threading.Lock()
        #: Its record for the next watcher (``children.orphans``), gone once every
        #: process carrying its mark is.
        self.record = record
        #: (its mark, the uid it runs as) and when it started (``orphans.start_ticks``).
        self.mark = mark
        self.since = orphans.start_ticks(process.pid)
        self.key = key
        self.program = program
        self.name = os.path.basename(program)
        self.lines: collections.deque[str] = collections.deque(maxlen=KEEP_LINES)
        #: When the last output line arrived (``time.monotonic()``): a sign of life.
        self.heard = time.monotonic()
        self.title = f"{key.upper()} filter '{self.name}': " if title is None else title
        #: stderr, or stdout with stderr in it (``start(stdout=None)``): read through a
        #: descriptor of its own (``output.Reader``), never a buffered file whose close would
        #: wait for a reader blocked in it.
        output = process.stderr or process.stdout
        assert output is not None
        try:
            self._reader = Reader(os.dup(output.fileno()),
                                  lambda line: self.heard_line(line, messages),
                                  name=f"{key} filter stderr")
        except BaseException:  # no descriptor (EMFILE), no thread: none of it left running
            self._abandon()
            raise
        output.close()  # nobody reads it: closing it waits for no one

    def _abandon(self) -> None:
        """A start that failed after the fork: the program and whatever it started
        killed, its pid reaped, its pipes closed, so no caller is left a process it
        never heard of."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # unreaped: its group's id
        import subprocess  # (loaded by ``start``)
        with self._reaping, contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=TERM_GRACE)
        self._end_left()  # what carries its mark; its record goes
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def heard_line(self, line: str, messages: Messages) -> None:
        """One output line (LPRng: ``IF filter 'x' filter msg``), said as status."""
        self.heard = time.monotonic()
        if line:
            self.lines.append(line)
            messages.put(self.title + line)

    def exited(self) -> bool:
        """Whether it has exited (without reaping it: see ``wait``)."""
        if self.process.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped by someone else: Popen will say so
            return self.process.poll() is not None
        return info is not None

    def wait_for(self, timeout: float) -> bool:
        """Whether it exits within ``timeout``; never reaped here (``wait`` reaps it, after
        ending what it left), so a caller's timed wait cannot free its pid too early."""
        with ExitWait(self.process.pid, self.exited) as waiting:
            return waiting.within(timeout)

    def wait(self) -> int:
        """The exit status (negative: killed by that signal). Once it has exited, what it
        left running (its process group, and every process carrying its mark) is ended
        before its pid (the group's id) is reaped, and then its output is read to the end:
        a background process it left holding the output cannot hold up the job."""
        if self.process.returncode is None:
            with contextlib.suppress(ChildProcessError, InterruptedError):
                os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOWAIT)
        self._end_left()
        with self._reaping:
            status = self.process.wait()
        self._reader.finish()
        return status

    def _unreaped(self) -> bool:
        """Whether its pid is still its own (not reaped): only then is it a group id to
        signal."""
        if self.process.returncode is not None:
            return False
        try:
            os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return True

    def _end_left(self, signum: int = signal.SIGKILL) -> None:
        """``signum`` to what is left of its process group (only while its pid is
        unreaped), then SIGKILL to every process carrying its mark (``orphans.end_marked``);
        its record goes once none is left."""
        with self._reaping:
            if self._unreaped():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signum)
        if self.mark is None:
            return
        if orphans.end_marked(self.mark[0], self.mark[1], self.since) and self.exited():
            self.mark = None  # none left to start more: no second scan
            if self.record is not None:
                self.record.forget()
                self.record = None

    def error(self, status: int) -> LpfilterError | None:
        """What the exit status means for the job (lprng-filters.md §5)."""
        return exit_error(status, key=self.key, program=self.program,
                          detail=" / ".join(self.lines))

    def finish(self) -> None:
        """Wait for the exit and raise what a failure means."""
        error = self.error(self.wait())
        if error is not None:
            raise error

    def kill_group(self) -> None:
        """After a failed exit: end whatever the filter started (none left is no error)."""
        self._end_left()

    def kill(self) -> None:
        """Stop it and whatever it started: SIGTERM (and SIGCONT, should it be stopped),
        then SIGKILL after TERM_GRACE; bounded, and never waiting for its output."""
        process = self.process
        with self._reaping:
            if not self.exited():
                for signum in (signal.SIGTERM, signal.SIGCONT):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(process.pid, signum)
            deadline = time.monotonic() + TERM_GRACE
            while not self.exited() and time.monotonic() < deadline:
                time.sleep(0.02)
        self._end_left()  # before the reaping below: the group's id is still its own
        import subprocess  # (loaded by ``start``)
        with self._reaping, contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        self._reader.finish()


def start(command: FilterCommand, *, stdin: int | None, stdout: int | None,
          env: dict[str, str], cwd: str, owner: tuple[int, int], messages: Messages,
          title: str | None = None) -> Running:
    """Start ``command`` (``stdin`` None: a pipe the caller writes, ``Running.process.stdin``;
    ``stdout`` None: stdout joins stderr as status lines, as an ``lp=|`` program's do).
    A program that cannot be started fails the job as LPRng's child exiting 33 would."""
    import subprocess  # (here: see TYPE_CHECKING above)
    argv = command.argv
    user = identity(command.as_root, owner, key=command.key)
    token = orphans.new_token()
    record = orphans.note(cwd, token)  # before the fork: see children.orphans
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE if stdin is None else stdin,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.STDOUT if stdout is None else subprocess.PIPE, cwd=cwd,
            env={**env, **command.env, orphans.TOKEN_VARIABLE: token}, close_fds=True,
            start_new_session=True, preexec_fn=orphans.dies_with_parent(os.getpid()), **user)
    except BaseException as exc:
        if record is not None:
            record.forget()
        if not isinstance(exc, OSError):
            raise
        queue = env.get("PRINTER", "")  # every program's (program_environment)
        raise JobRefused(f"{f'queue {queue}: ' if queue else ''}{command.key} filter"
                         f" {argv[0] if argv else '?'}: cannot be run: {exc.strerror or exc}",
                         queue=queue) from None
    program = argv[2] if command.shell and len(argv) > 2 else argv[0]
    log.debug("started %s filter %s, pid %d", command.key, argv, process.pid)
    return Running(process, command.key, program, messages, record, title,
                   mark=(token, int(user.get("user", os.geteuid()))))
