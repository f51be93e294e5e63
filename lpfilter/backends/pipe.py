"""``lp=|program args``: the job goes to a program's standard input.

The program's exit status is read with LPRng's filter codes (lprng-filters.md §5): 0 done,
1 retry, 2 abort, 3 remove, 6 hold, 10 failed without retry; 32-47 are the same codes
already shifted. What it prints is status, shown to the user; the last lines are kept.
"""
from __future__ import annotations

import collections
import contextlib
import errno
import os
import signal
import subprocess
import threading
import time

from lpfilter.backends.request import SendRequest, SendResult
from lpfilter.backends.settings import PipeSettings
from lpfilter.backends.stream import TICK, Pump, send_body
from lpfilter.errors import JobRefused, LpfilterError, TransientError
from lpfilter.filtercodes import FilterCode, decode, describe, error_class
from lpfilter.programs import command_argv

Request = SendRequest[PipeSettings]

#: Output kept from the program, for the failure message.
_KEEP_LINES = 5


def exit_error(status: int, program: str, output: str) -> LpfilterError | None:
    """The error an LPRng filter exit status means (None for success)."""
    code = decode(status)
    if code is FilterCode.JSUCC:
        return None
    said = f": {output}" if output else ""
    if status < 0:
        return JobRefused(f"{program} was killed by signal {-status}{said}")
    return error_class(code)(f"{program} exited {status} ({describe(code)}){said}")


class PipeBackend:
    """Run the program and stream the job into it."""

    def send(self, request: Request) -> SendResult:
        settings = request.settings
        command = request.destination.display()[1:]
        argv = command_argv(command, settings.shell)
        program = os.path.basename(argv[0]) if argv else command
        env = dict(os.environ, PRINTER=settings.queue, SPOOL_DIR=settings.spool_dir or "",
                   PRINTCAP_ENTRY=settings.printcap_text, LPFILTER_JOB=request.job.id,
                   LPFILTER_JOB_NAME=request.job.name, LPFILTER_JOB_USER=request.job.user)
        try:
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, cwd=settings.spool_dir,
                                       env=env, start_new_session=True)
        except OSError as exc:
            raise JobRefused(f"cannot run {command!r}: {exc.strerror}") from None
        assert process.stdin is not None and process.stdout is not None
        lines: collections.deque[str] = collections.deque(maxlen=_KEEP_LINES)
        activity = [time.monotonic()]
        reader = threading.Thread(target=_read_status,
                                  args=(process.stdout, lines, request, activity), daemon=True)
        reader.start()
        sent = 0
        try:
            os.set_blocking(process.stdin.fileno(), False)
            pump = Pump(process.stdin.fileno(), interrupted=request.reporter.interrupted,
                        first_byte=request.reporter.first_byte,
                        idle_timeout=settings.stall, progress=request.progress,
                        what=program)
            try:
                sent = send_body(pump, request, settings.framing)
            except OSError as exc:
                if exc.errno != errno.EPIPE:  # the program stopped reading: its status says why
                    raise
                sent = pump.sent
            finally:
                pump.close()
            with contextlib.suppress(OSError):
                process.stdin.close()
            code = _wait(process, request, settings.finish_timeout, activity, program)
        except BaseException:
            _kill(process)
            raise
        finally:
            with contextlib.suppress(OSError):
                process.stdin.close()
            reader.join(timeout=5)
            process.stdout.close()
        error = exit_error(code, program, " / ".join(lines))
        if error is not None:
            raise error
        request.progress(sent)  # what waited in the pipe was taken: it exited 0
        return SendResult(sent, "sent", message=f"{program} took {sent} bytes")


def _read_status(stream: object, lines: collections.deque[str], request: Request,
                 activity: list[float]) -> None:
    """Collect the program's output lines (bounded) and pass them on as status."""
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        activity[0] = time.monotonic()
        line = raw[:500].decode("utf-8", "replace").strip()
        if line:
            lines.append(line)
            request.reporter.status(line)


def _wait(process: subprocess.Popen[bytes], request: Request, timeout: float,
          activity: list[float], program: str) -> int:
    """Wait for the exit, still hearing cancel and shutdown. With ``send_job_rw_timeout``
    (``timeout`` > 0), a program silent for that long after its input ended is given up
    on, as lpd does; its output counts as a sign of life."""
    activity[0] = max(activity[0], time.monotonic())
    while True:
        try:
            return process.wait(timeout=TICK)
        except subprocess.TimeoutExpired:
            pass
        request.check()
        if timeout > 0 and time.monotonic() - activity[0] > timeout:
            raise TransientError(f"{program} took all its input but did not finish"
                                 f" within {timeout:g} s (send_job_rw_timeout)")


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Stop the program and everything it started (its own session)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 2
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
