"""``lp=|program args``: the job goes to a program's standard input.

The program is run as lpd runs a filter (``children.run``, lprng-filters.md §3): as the
queue's filter user (a root watcher: the spool's owner, or ``user``/``group`` for a
root-owned spool; root only for a leading ``ROOT``), in its own session, killed with
the watcher however it ends. Its command line is LPRng's (``$`` tokens expanded, the
option list appended) when the caller built it (``SendRequest.command``: the spool's
worker does), else the printcap's words as they are (``programs.command_argv``).

Its stdin is a pipe the job streams into; its stdout and stderr share one more pipe
whose lines are device status (§3, §7: lpd reads the program's output back as status),
bounded in length and in how many are said (``run.Messages``, passed on by the sending
thread); the last ones explain a failure. The exit status is read with LPRng's filter
codes (§5): 0 done, 1 retry, 2 abort, 3 remove, 6 hold, 10 failed without retry;
32-47 are the same codes already shifted.
"""
from __future__ import annotations

import contextlib
import errno
import os
import time

from lpfilter.backends.request import SendRequest, SendResult
from lpfilter.backends.settings import PipeSettings
from lpfilter.backends.stream import TICK, Pump, send_body
from lpfilter.job import Job
from lpfilter.children import run
from lpfilter.children.exits import exit_error
from lpfilter.children.exitwait import ExitWait
from lpfilter.errors import Interruption, JobRefused, TransientError

Request = SendRequest[PipeSettings]


def job_variables(job: Job) -> dict[str, str]:
    """What lpfilter adds to an ``lp=|`` program's environment: its own spool's job (an
    ``lpfilter filter`` program keeps the job's id, and writes no accounting of its own)."""
    return {"LPFILTER_JOB": job.id, "LPFILTER_JOB_NAME": job.name,
            "LPFILTER_JOB_USER": job.user}


def clean_environment(request: Request) -> dict[str, str]:
    """The program's environment when no caller built LPRng's (``SendRequest.environment``):
    of the same kind (lprng-filters.md §4), never the watcher's own, which may hold what
    the filter user must not read (``/proc/PID/environ``)."""
    settings = request.settings
    env = run.program_environment(
        queue=settings.queue, spool_dir=settings.spool_dir or "", path=settings.path,
        shell=settings.shell, printcap_text=settings.printcap_text, inherited=os.environ)
    env.update(job_variables(request.job))
    return {k: v.replace("\0", " ") for k, v in env.items()}


def pipe_command(text: str, shell: str) -> run.FilterCommand:
    """The program of ``lp=|text``: ``ROOT`` (and ``-$``) words off, the rest split as
    LPRng splits a filter's line (a shell for ``< > | ;`` or a leading '(')."""
    return run.program_command("lp", text, shell)


class PipeBackend:
    """Run the program and stream the job into it."""

    def send(self, request: Request) -> SendResult:
        settings = request.settings
        text = request.destination.display()[1:]
        command = request.command or pipe_command(text, settings.shell)
        program = os.path.basename(command.argv[0]) if command.argv else text
        if not command.argv:
            raise JobRefused(f"queue {settings.queue}: lp=|{text}: names no program to run",
                             queue=settings.queue)
        cwd = settings.spool_dir or "."
        owner = run.owner_of(cwd, settings.user, settings.group, queue=settings.queue)
        env = request.environment or clean_environment(request)
        messages = run.Messages()
        running = run.start(command, stdin=None, stdout=None, env=env, cwd=cwd,
                            owner=owner, messages=messages, title="")
        try:
            sent = self._stream(request, running, messages, program)
            code = _wait(running, request, messages, settings.finish_timeout, program)
        finally:  # after an exit: what it left in its group ended; never waits for output
            running.kill()
            messages.drain(request.reporter.status, flush=True)
        error = exit_error(code, key="lp", program=program, detail=" / ".join(running.lines))
        if error is not None:
            raise error
        request.progress(sent)  # what waited in the pipe was taken: it exited 0
        return SendResult(sent, "sent", message=f"{program} took {sent} bytes")

    @staticmethod
    def _stream(request: Request, running: run.Running, messages: run.Messages,
                program: str) -> int:
        """The job into the program's stdin; the bytes sent (a program that stopped
        reading ends it early: its exit status says why)."""
        stdin = running.process.stdin
        assert stdin is not None
        reporter = request.reporter

        def interrupted() -> Interruption | None:
            messages.drain(reporter.status)
            return reporter.interrupted()
        try:
            os.set_blocking(stdin.fileno(), False)
            pump = Pump(stdin.fileno(), interrupted=interrupted,
                        first_byte=reporter.first_byte, idle_timeout=request.settings.stall,
                        progress=request.progress, what=program)
            try:
                return send_body(pump, request, request.settings.framing)
            except OSError as exc:
                if exc.errno != errno.EPIPE:
                    raise
                return pump.sent
            finally:
                pump.close()
        finally:
            with contextlib.suppress(OSError):
                stdin.close()


def _wait(running: run.Running, request: Request, messages: run.Messages, timeout: float,
          program: str) -> int:
    """Wait for the exit (and its last output), still hearing cancel and shutdown. With
    ``send_job_rw_timeout`` (``timeout`` > 0), a program silent for that long after its
    input ended is given up on, as lpd does; its output counts as a sign of life."""
    ended = time.monotonic()
    with ExitWait(running.pid, running.exited) as waiting:
        while not waiting.within(TICK):
            messages.drain(request.reporter.status)
            request.check()
            if timeout > 0 and time.monotonic() - max(ended, running.heard) > timeout:
                raise TransientError(f"{program} took all its input but did not finish"
                                     f" within {timeout:g} s (send_job_rw_timeout)")
    return running.wait()
