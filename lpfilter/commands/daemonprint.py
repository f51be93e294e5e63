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

import _socket
import errno
import os
import stat
import sys
import time
from collections.abc import Mapping

from lpfilter.digest import sha256_hex
from lpfilter.errors import AccessError, JobRefused, LpfilterError
from lpfilter.protocols import lpd, lpdcontrol, lpdlocal
from lpfilter.protocols.lpd import Subcommand
from lpfilter.safefiles import standard_input
from lpfilter.status import ExitStatus
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from lpfilter.commands.environment import Context
    from lpfilter.spool.queueinfo import JobData
    from lpfilter.spool.joboptions import JobOptions

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
    src = standard_input() if stdin else _open(str(path))
    try:
        info = os.fstat(src)
        size = info.st_size if stat.S_ISREG(info.st_mode) and not stdin else None
        name, file_name = options.names(path)
        if size == 0:
            raise JobRefused(f"{path}: empty file; nothing to print", queue=queue)
        names = lpd.job_names(str(_number()), _socket.gethostname(), digits=6)
        control = _control(names, name, file_name, options)
        sock = connect(environ, why)
        try:
            sock.settimeout(ACK_TIMEOUT)
            _ack(sock, lpd.receive_job(queue), queue)
            _ack(sock, lpd.file_line(Subcommand.CONTROL_FILE, len(control), names.control),
                 queue)
            _ack(sock, control + b"\0", queue)
            _ack(sock, lpd.file_line(Subcommand.DATA_FILE, size or 0, names.data(0)), queue)
            _send_data(sock, src, size, name, queue)
            # size 0: the end of the connection ends the file; else a zero octet does
            _ack(sock, b"" if size is None else b"\0", queue)
        finally:
            sock.close()
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


def remove_spooled(path: str | None) -> None:
    """lpr -r: a file whose job is on disk (here, or the server's final acknowledgement
    came) is removed, by the user's own rights; one that cannot be is said, not an
    error: its job is queued. Standard input is left alone."""
    if path is None or path == "-":
        return
    try:
        os.unlink(path)
    except OSError as exc:
        print(f"lpfilter: {visible(path)}: spooled, but not removed (-r):"
              f" {exc.strerror or exc}", file=sys.stderr)


def _control(names: lpd.JobNames, name: str, file_name: str, options: JobOptions) -> bytes:
    from lpfilter.job import user_name
    host = names.host
    user = user_name(os.getuid())  # the server takes the kernel's word for it anyway
    data = lpdcontrol.DataFile(names.data(0), options.print_format or "f", file_name,
                               max(options.copies, 1))
    fields = lpdcontrol.ControlFields(
        host=host, user=user, files=(data,), job_name=name,
        job_class=options.job_class, title=options.title, banner=not options.no_banner,
        identifier=f"{user}@{host}+{names.number}", date=lpdcontrol.lprng_date(time.time()),
        other=((lpdlocal.HOLD_LINE,) if options.hold else ()) + options.lines)
    return lpdcontrol.build(fields)


def _ack(sock: _socket.socket, data: bytes, queue: str) -> None:
    """Send ``data`` and read the server's acknowledgement; a refusal is the job's."""
    try:
        if data:
            sock.sendall(data)
        octet = sock.recv(1)
    except OSError as exc:
        _broken(sock, queue, exc)
    if octet != b"\0":
        _refused(sock, queue, octet)


def _refused(sock: _socket.socket, queue: str, octet: bytes) -> NoReturn:
    """The server's refusal (its code and reason, read for a second at most), or its close."""
    reason = b""
    if octet:
        try:
            sock.settimeout(1.0)
            reason = sock.recv(lpd.MAX_ACK_READ)
        except OSError:
            reason = b""
    answer = lpd.parse_ack(octet + reason) if octet else None
    said = answer.words() if answer else "it closed the connection"
    raise JobRefused(f"queue {visible(queue)}: the print server refused the job: {said}",
                     queue=queue)


def _broken(sock: _socket.socket, queue: str, exc: OSError) -> NoReturn:
    """A send or a wait that failed. A server that refuses a job while it comes (larger
    than the queue's ``mx``, a full spool) says why and closes, and the rest of the data
    meets a closed socket: what it said is read and told."""
    try:
        sock.settimeout(1.0)
        octet = sock.recv(1)
    except OSError:
        octet = b""
    if octet not in (b"", b"\0"):
        _refused(sock, queue, octet)
    raise JobRefused(f"queue {visible(queue)}: the print server broke off the job"
                     f" ({exc.strerror or exc}); nothing was printed", queue=queue)


def _send_data(sock: _socket.socket, src: int, size: int | None, name: str,
               queue: str) -> None:
    """The data file's bytes: a regular file by sendfile(2), a pipe to its end (then the
    sending side is shut: that ends the file). A file that cannot be read is the file's
    error, the server's end the job's."""
    try:
        if size is not None:
            sent = _sendfile(sock, src, size, name)
            if sent < size:  # (the server waits for the missing bytes: the job is dropped)
                raise JobRefused(f"{name}: the file shrank from {size} to {sent} bytes while"
                                 " it was sent; nothing was printed", queue=queue)
            return
        while True:
            try:
                chunk = os.read(src, CHUNK)
            except OSError as exc:
                raise AccessError(f"{name}: cannot read: {exc.strerror}") from None
            if not chunk:
                break
            sock.sendall(chunk)
        sock.shutdown(_socket.SHUT_WR)
    except OSError as exc:
        _broken(sock, queue, exc)


def _sendfile(sock: _socket.socket, src: int, size: int, name: str) -> int:
    """``size`` bytes of a regular file, copied by the kernel. The socket has a timeout,
    so it is non-blocking: each wait for room is poll(2)'s, as long as the timeout (what
    ``socket.sendfile`` does, without the ``socket`` module and its ``selectors``). A
    file system that cannot sendfile is read through a buffer. Returns the bytes sent:
    fewer when the file shrank while it went."""
    import select
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    wait = (sock.gettimeout() or ACK_TIMEOUT) * 1000
    offset = 0
    while offset < size:
        try:
            sent = os.sendfile(sock.fileno(), src, offset, min(CHUNK, size - offset))
        except BlockingIOError:
            if not poller.poll(wait):
                raise TimeoutError(errno.ETIMEDOUT, f"it took no data for {wait / 1000:g} s"
                                   ) from None
            continue
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            sent = _copy(sock, src, offset, size, name)
        if sent == 0:
            break
        offset += sent
    return offset


def _copy(sock: _socket.socket, src: int, offset: int, size: int, name: str) -> int:
    """The rest of the file from ``offset`` through a buffer (sendall waits for room
    within the socket's timeout); returns the bytes sent, 0 at an early end. A read that
    fails is the file's error (``name``'s), not the server's."""
    done = 0
    while offset + done < size:
        try:
            chunk = os.pread(src, min(CHUNK, size - offset - done), offset + done)
        except OSError as exc:
            raise AccessError(f"{name}: cannot read: {exc.strerror}") from None
        if not chunk:
            return done
        sock.sendall(chunk)
        done += len(chunk)
    return done


def print_files(ctx: Context, queue: str, options: JobOptions, why: AccessError,
                shown: str = "{}", *, remove: bool = False) -> ExitStatus:
    """``print`` through the print server: each file a job, its id shown as the owner's
    ``print`` shows it (``--hold``: held as it is queued); ``--wait`` waits for their end;
    ``remove`` (lpr -r): each file removed once the server acknowledged its job."""
    sent: list[tuple[str, str]] = []
    try:
        for path in ctx.args.files or [None]:
            sent.append(send_file(ctx.environ, queue, path, options, why))
            if remove:
                remove_spooled(path)
    finally:  # the jobs the server took are said, even when a later file failed
        jobs = _show(ctx, queue, sent, why, shown)
    ids = [str(job["id"]) for job in jobs if job]
    if not ctx.args.wait or options.hold:
        return ExitStatus.OK  # the daemon serves the queue: it prints the jobs
    return _wait(ctx, queue, ids, why)


def _show(ctx: Context, queue: str, sent: list[tuple[str, str]], why: AccessError,
          shown: str) -> list[JobData | None]:
    """One line per job the server acknowledged (none when ``shown`` is ""): its id in
    ``shown``, asked of the server by the origins (``_server_jobs``). The final
    acknowledgement came, so each is queued: a question that fails then is said, and the
    job reported as queued, never as failed (a resubmit would print it twice)."""
    if not sent:
        return []
    try:
        jobs = _find(_server_jobs(ctx, queue, [origin for origin, _ in sent], why), sent)
        lost = ""
    except (LpfilterError, KeyError, TypeError) as exc:
        jobs = [None] * len(sent)
        lost = visible(str(exc) or type(exc).__name__)
        print(f"lpfilter: queue {visible(queue)}: the print server queued the jobs but"
              f" did not say their ids ({lost}); see 'lpfilter status -P {visible(queue)}'",
              file=sys.stderr)
    for (_origin, name), job in zip(sent, jobs, strict=True) if shown else ():
        line = shown.format(f"{visible(queue)}-{job['id']}") if job else (
            f"{visible(queue)}: {visible(name)}: queued (id unknown)" if lost else
            f"{visible(queue)}: {visible(name)} (sent to the print server; it is not in"
            " the queue any more)")
        print(line, file=ctx.stdout)
    ctx.stdout.flush()
    return jobs


def _server_jobs(ctx: Context, queue: str, origins: list[str],
                 why: AccessError) -> list[JobData]:
    """The server's jobs of these origins: the local ``find`` request (only those jobs,
    however many the queue keeps), or the queue's status for more origins than one
    request line carries, and from a daemon that predates ``find``."""
    from lpfilter.commands import daemonclient
    from lpfilter.errors import UsageError
    from lpfilter.protocols import LpdProtocolError
    try:
        return daemonclient.find(ctx.environ, queue, origins, why)
    except (LpdProtocolError, UsageError):  # too many for a line; an older daemon
        jobs: list[JobData] = daemonclient.status(ctx.environ, queue, why)["jobs"]
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
