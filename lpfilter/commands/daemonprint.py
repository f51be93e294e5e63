"""``lpfilter print`` by a user who may not write the queue's spool: each file goes to the
print server over its Unix socket as an LPD job (RFC 1179 receive-job), which the server
spools under the user's name as the kernel reports it.

This process reads the files (the server never opens a path a client names) and sends
them as LPRng's ``lpr`` does: control file first, data file with its size (standard input:
size 0, to the end of the connection). The server answers "received" only once the job
is on disk; the job's id is then found by its control file (name and digest, as the
server records it) and shown as the owner's ``print`` shows it.
"""
from __future__ import annotations

import os
import socket
import stat
import sys
import time
from collections.abc import Mapping

from lpfilter.digest import sha256_hex
from lpfilter.errors import AccessError, JobRefused, LpfilterError
from lpfilter.protocols import lpd, lpdcontrol, lpdlocal
from lpfilter.protocols.lpd import Subcommand
from lpfilter.status import ExitStatus
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.commands.environment import Context
    from lpfilter.spool.queueinfo import JobData
    from lpfilter.spool.submit import JobOptions

#: Each acknowledgement may take this long (the last one waits for the fsyncs).
ACK_TIMEOUT = 60.0
CHUNK = 1 << 20
#: ``print --wait``: seconds between two questions to the server.
WAIT_POLL = 0.5


def send_file(environ: Mapping[str, str], queue: str, path: str | None,
              options: JobOptions, why: AccessError) -> tuple[str, str]:
    """Send one file (None or ``-``: standard input) as a job of ``queue``; returns the
    origin the server records for it (``cfname:digest``) and the job's name."""
    from lpfilter.commands.daemonclient import connect
    stdin = path is None or path == "-"
    src = sys.stdin.fileno() if stdin else _open(str(path))
    try:
        info = os.fstat(src)
        size = info.st_size if stat.S_ISREG(info.st_mode) and not stdin else None
        name = options.name or ("stdin" if stdin else os.path.basename(str(path)))
        if size == 0:
            raise JobRefused(f"{path}: empty file; nothing to print", queue=queue)
        names = lpd.job_names(str(_number()), socket.gethostname(), digits=6)
        control = _control(names, name, options)
        with connect(environ, why) as sock:
            sock.settimeout(ACK_TIMEOUT)
            _ack(sock, lpd.receive_job(queue), queue)
            _ack(sock, lpd.file_line(Subcommand.CONTROL_FILE, len(control), names.control),
                 queue)
            _ack(sock, control + b"\0", queue)
            _ack(sock, lpd.file_line(Subcommand.DATA_FILE, size or 0, names.data(0)), queue)
            _stream(sock, src, size)
            if size is None:
                sock.shutdown(socket.SHUT_WR)  # size 0: the end of the connection ends it
                _ack(sock, b"", queue)
            else:
                _ack(sock, b"\0", queue)
    finally:
        if not stdin:
            os.close(src)
    return f"{names.control}:{sha256_hex(control)[:40]}", name


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise AccessError(f"{path}: cannot open: {exc.strerror}") from None


def _number() -> int:
    """A job number for the control file's name: different for each job this user sends
    (the server takes a resent control file for a retry of the same job)."""
    return (time.time_ns() // 1000 + os.getpid() * 7919) % 1_000_000


def _control(names: lpd.JobNames, name: str, options: JobOptions) -> bytes:
    from lpfilter.job import user_name
    host = names.host
    user = user_name(os.getuid())  # the server takes the kernel's word for it anyway
    data = lpdcontrol.DataFile(names.data(0), options.print_format or "f", name,
                               max(options.copies, 1))
    fields = lpdcontrol.ControlFields(
        host=host, user=user, files=(data,), job_name=name,
        job_class=options.job_class, title=options.title, banner=not options.no_banner,
        identifier=f"{user}@{host}+{names.number}", date=lpdcontrol.lprng_date(time.time()),
        other=(lpdlocal.HOLD_LINE,) if options.hold else ())
    return lpdcontrol.build(fields)


def _ack(sock: socket.socket, data: bytes, queue: str) -> None:
    """Send ``data`` and read the server's acknowledgement; a refusal is the job's."""
    try:
        if data:
            sock.sendall(data)
        octet = sock.recv(1)
        reason = b""
        if octet not in (b"\0", b""):
            sock.settimeout(1.0)
            try:
                reason = sock.recv(lpd.MAX_ACK_READ)
            except OSError:
                reason = b""
    except OSError as exc:
        raise JobRefused(f"queue {visible(queue)}: the print server broke off the job"
                         f" ({exc.strerror or exc}); nothing was printed", queue=queue) from None
    if octet == b"\0":
        return
    answer = lpd.parse_ack(octet + reason) if octet else None
    said = answer.words() if answer else "it closed the connection"
    raise JobRefused(f"queue {visible(queue)}: the print server refused the job: {said}",
                     queue=queue)


def _stream(sock: socket.socket, src: int, size: int | None) -> None:
    """The data file's bytes: the kernel copies a regular file (sendfile)."""
    if size is not None:
        with os.fdopen(os.dup(src), "rb") as handle:
            sock.sendfile(handle, 0, size)
        return
    while True:
        chunk = os.read(src, CHUNK)
        if not chunk:
            return
        sock.sendall(chunk)


def print_files(ctx: Context, queue: str, options: JobOptions, why: AccessError) -> ExitStatus:
    """``print`` through the print server: each file a job, its id shown as the owner's
    ``print`` shows it (``--hold``: held as it is queued); ``--wait`` waits for their end."""
    sent: list[tuple[str, str]] = []
    try:
        for path in ctx.args.files or [None]:
            sent.append(send_file(ctx.environ, queue, path, options, why))
    finally:  # the jobs the server took are said, even when a later file failed
        jobs = _show(ctx, queue, sent, why)
    ids = [str(job["id"]) for job in jobs if job]
    if not ctx.args.wait or options.hold:
        return ExitStatus.OK  # the daemon serves the queue: it prints the jobs
    return _wait(ctx, queue, ids, why)


def _show(ctx: Context, queue: str, sent: list[tuple[str, str]],
          why: AccessError) -> list[JobData | None]:
    """One line per job the server acknowledged: its id, found in the queue's status.
    The final acknowledgement came, so each is queued: a status question that fails then
    is said, and the job reported as queued, never as failed (a resubmit would print it
    twice)."""
    from lpfilter.commands import daemonclient
    if not sent:
        return []
    try:
        jobs = _find(daemonclient.status(ctx.environ, queue, why)["jobs"], sent)
        lost = ""
    except (LpfilterError, KeyError, TypeError) as exc:
        jobs = [None] * len(sent)
        lost = visible(str(exc) or type(exc).__name__)
        print(f"lpfilter: queue {visible(queue)}: the print server queued the jobs but"
              f" did not say their ids ({lost}); see 'lpfilter status -P {visible(queue)}'",
              file=sys.stderr)
    for (_origin, name), job in zip(sent, jobs, strict=True):
        shown = f"{visible(queue)}-{job['id']}" if job else (
            f"{visible(queue)}: {visible(name)}: queued (id unknown)" if lost else
            f"{visible(queue)}: {visible(name)} (sent to the print server; it is not in"
            " the queue any more)")
        print(shown, file=ctx.stdout)
    ctx.stdout.flush()
    return jobs


def _find(jobs: list[JobData], sent: list[tuple[str, str]]) -> list[JobData | None]:
    """The server's job of each file sent, by the origin it records."""
    by_origin = {str(job.get("origin")): job for job in jobs if job.get("origin")}
    return [by_origin.get(origin) for origin, _name in sent]


def _wait(ctx: Context, queue: str, ids: list[str], why: AccessError) -> ExitStatus:
    """``print --wait``: ask the server (every WAIT_POLL seconds; Ctrl-C ends it) until
    each job has ended; the exit status of the worst, as the owner's ``print --wait``."""
    from lpfilter.commands import daemonclient
    from lpfilter.commands.exits import for_job, worst
    from lpfilter.job import FINISHED, JobState
    while True:
        jobs = {str(j["id"]): j for j in daemonclient.status(ctx.environ, queue, why)["jobs"]}
        states = [JobState(jobs[i]["state"]) if i in jobs else JobState.CANCELLED
                  for i in ids]
        if all(s in FINISHED or s in (JobState.FAILED, JobState.HELD) for s in states):
            break
        time.sleep(WAIT_POLL)
    for job_id, state in zip(ids, states, strict=True):
        if for_job(state) != ExitStatus.OK:
            job = jobs.get(job_id)
            why_not = visible(str(job.get("last_error") or state)) if job else "removed"
            flag = " (possible duplicate)" if job and job.get("possible_duplicate") else ""
            print(f"lpfilter: {visible(queue)}-{job_id}: {state}{flag}: {why_not}",
                  file=sys.stderr)
    return worst(for_job(s) for s in states)
