"""A queue's accounting as LPRng's lpd writes it (lprng-filters.md §8): a ``jobstart``
line when an attempt at a job starts and a ``jobend`` line when it ends, from the ``as``
and ``ae`` templates, to the ``af`` target: a file (appended to only if it exists, unless
``create_files``), a ``|program`` (the line on its standard input), or ``host%port`` (one
TCP connection per line). An ``as``/``ae`` that starts with ``|`` or ``/`` is a program
run with LPRng's filter command line instead.

``accounting_format=keyvalue`` keeps lpfilter's own line (``QueueRecords.account``), one
per finished job. Accounting never fails or delays a job beyond its bounded timeouts: a
target that cannot be written is logged, once until it can be again.
"""
from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Callable

from lpfilter import logs
from lpfilter.errors import LpfilterError, TransientError
from lpfilter.children import run
from lpfilter.filters import accounting
from lpfilter.filters.command import JobFacts, build_command, facts_for, filter_environment
from lpfilter.children.exits import exit_error
from lpfilter.job import Job, JobState
from lpfilter.printcap.entry import Entry
from lpfilter.spool.records import QueueRecords, _open_record
from lpfilter.text import visible

log = logs.getLogger(__name__)

#: States that end a job for lpfilter's own key=value line.
_ENDED = (JobState.DONE, JobState.FAILED, JobState.REMOVED, JobState.CANCELLED)
#: Output of an accounting program kept for the log.
_KEEP_OUTPUT = 2000


class Accounting:
    """One queue's accounting: ``start`` and ``end`` of each attempt."""

    def __init__(self, entry: Entry, records: QueueRecords,
                 clock: Callable[[], float] = time.time) -> None:
        self.entry = entry
        self.records = records
        self.clock = clock
        self.format = accounting.accounting_format(entry)
        self.target = accounting.target(entry)
        self.wanted = self.format == "lprng" and accounting.wanted(entry)
        #: Jobs whose jobstart was written, so that each gets one jobend.
        self._started: set[str] = set()
        self._failing: set[str] = set()
        timeout = entry.number("connect_timeout")
        self.timeout = float(timeout) if timeout > 0 else 10.0

    def start(self, job: Job) -> None:
        """An attempt at ``job`` reached the printer (lpd writes ``jobstart`` once the
        device is open, so a printer that cannot be reached writes no lines); once per
        attempt."""
        if not self.wanted or job.id in self._started:
            return
        if self._account("as", job):  # (no target now: no jobstart, so no jobend, and
            self._started.add(job.id)  # the end does not look for the target again)

    def end(self, job: Job, state: JobState) -> None:
        """An attempt at ``job`` ended in ``state``: LPRng's ``jobend`` for an attempt that
        had a ``jobstart``; lpfilter's key=value line for a finished job."""
        if self.format == "keyvalue":
            if state in _ENDED:
                self.records.account(job, state)
            return
        if job.id in self._started:
            self._started.discard(job.id)
            self._account("ae", job)

    def _account(self, key: str, job: Job) -> bool:
        """Write ``key``'s line; returns whether it had somewhere to go (a program, or a
        target that exists), written or not."""
        template = self.entry.string(key) or ""
        program = accounting.is_program(template)
        if not (program or self._reachable()):
            return False
        if not template.strip():
            return True
        facts = facts_for(self.entry, job, data_file="", fmt=job.print_format or "f",
                          now=self.clock())
        what = f"{key}={template}" if program else f"af={self.entry.string('af') or ''}"
        try:
            if program:
                self._run(key, facts, None)
            elif self.target is not None:
                self._send(accounting.line(template, self.entry, facts), facts)
        except OSError as exc:
            why = exc.strerror or str(exc)
            self._trouble(what, f"cannot write {exc.filename}: {why}" if exc.filename else why)
        except LpfilterError as exc:  # (``_run`` says a SubprocessError as one)
            self._trouble(what, str(exc))
        else:
            self._trouble(what, None)
        return True

    def _reachable(self) -> bool:
        """Is there a target to write a line to? (Cheap: most queues keep the default
        af=acct and no such file; their jobs should not pay for building lines.)"""
        target = self.target
        if target is None:
            return False
        return (target.kind != "file" or self.entry.flag("create_files")
                or os.path.lexists(self._path(target.value)))

    def _path(self, name: str) -> str:
        return name if os.path.isabs(name) else os.path.join(self.entry.string("sd") or ".",
                                                             name)

    def _trouble(self, what: str, why: str | None) -> None:
        """Say once that accounting cannot be done (None: it can again)."""
        if why is None:
            self._failing.discard(what)
        elif what not in self._failing:
            self._failing.add(what)
            log.warning("%s: accounting to %s failed: %s; the jobs are not affected",
                        visible(self.entry.name), visible(what), visible(why))

    def _send(self, text: str, facts: JobFacts) -> None:
        target = self.target
        assert target is not None
        data = text.encode("utf-8", "replace")
        if target.kind == "program":
            self._run("af", facts, data)
        elif target.kind == "host":
            import socket  # (only for an af=host%port queue: not every pass's import)
            try:
                with socket.create_connection((target.value, target.port),
                                              timeout=self.timeout) as sock:
                    sock.sendall(data)
            except (OSError, UnicodeError) as exc:  # (a name idna refuses: "a..b")
                raise TransientError(f"cannot send to {target.value}%{target.port}:"
                                     f" {getattr(exc, 'strerror', None) or exc}") from None
        else:
            self._append(target.value, data)

    def _append(self, name: str, data: bytes) -> None:
        """Append to the accounting file: only an existing one unless ``create_files``,
        never through a link (see ``records``)."""
        path = self._path(name)
        flags = os.O_WRONLY | os.O_APPEND
        if self.entry.flag("create_files"):
            flags |= os.O_CREAT
        elif not os.path.lexists(path):
            return
        fd = _open_record(path, flags, spool=self.entry.string("sd") or "")
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def _run(self, key: str, facts: JobFacts, data: bytes | None) -> None:
        """Run the program ``key`` names as a filter is run (``children.run.start``: the
        same user, ``ROOT`` handling, session, environment and bounded stderr); ``data``
        (or nothing) on its standard input. Bounded: killed after the timeout."""
        import subprocess  # (only where a program runs: see children/run.py)
        command = build_command(self.entry, key, facts, role="accounting")
        env = filter_environment(self.entry, facts, inherited=os.environ)
        sd = self.entry.string("sd") or "."
        owner = run.filter_owner(self.entry, sd)
        read_end, write_end = os.pipe()
        try:
            running = run.start(command, stdin=None if data is not None else subprocess.DEVNULL,
                                stdout=write_end, env=env, cwd=sd,
                                owner=owner, messages=run.Messages())
        except subprocess.SubprocessError as exc:  # (not an OSError: run.start raises it)
            os.close(read_end)
            raise TransientError(str(exc)) from None
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        try:
            output = _collect(running, data, read_end, time.monotonic() + self.timeout)
        except subprocess.TimeoutExpired:
            raise TransientError(f"{key} program {running.program} did not finish within"
                                 f" {self.timeout:g} s; it was killed") from None
        said = [visible(output.decode("utf-8", "replace").strip()), *running.lines]
        error = exit_error(running.wait(), key=key, program=running.program,
                           detail=" / ".join(line for line in said if line))
        if error is not None:
            raise error


def _collect(running: run.Running, data: bytes | None, fd: int, deadline: float) -> bytes:
    """Feed ``data``, read the output from ``fd`` (the first bytes kept; closed here) and
    wait for the exit, all before ``deadline``; past it the program and its children are
    killed."""
    import subprocess  # (loaded by run.start)
    process = running.process
    kept = b""
    try:
        if process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write(data or b"")  # a line: far below a pipe's buffer
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(process.args, 0)
            poller = select.poll()  # not select(2): a descriptor past 1023 is fine
            poller.register(fd, select.POLLIN)
            ready = poller.poll(left * 1000)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                kept = (kept + chunk)[:_KEEP_OUTPUT]
        if not running.wait_for(max(0.0, deadline - time.monotonic())):
            raise subprocess.TimeoutExpired(process.args, 0)
    except BaseException:  # a timeout, or a read or write that failed: nothing left over
        running.kill()
        raise
    finally:
        os.close(fd)
    return kept
