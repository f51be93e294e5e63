"""``print -P queue@host[%port]``: each file straight to that LPD server, as LPRng's lpr
sends a job whose queue is named with its host: no printcap entry, no local spool.

Nothing is kept on this machine, so the job's safety is the server's: a job exists once
the server acknowledged its control and data files (lpd-protocol.md §3.1), and only then
is its id shown and (``-r``) its file removed. Until then nobody was told of it, and the
file is where it was. A try that fails is made again from scratch with the same job
number, as LPRng's lpr does (``send_try`` 3 tries, ``connect_interval`` 10 s apart, every
pause within ``LPFILTER_PRINT_WAIT``); a refusal the server means for good (ack 1 or 3)
and a host name that does not resolve end at once. The command then names the files that
were not sent. A try cut off after its data left may have reached the server, so a later
success is flagged a possible duplicate. The backend is the queues' own (``backends.lpd``,
LPRng's defaults: control file first, a banner line unless ``-h``); standard input and
anything else that is not a regular file go through an unnamed temporary file, since LPD
wants each size first.
"""
from __future__ import annotations

import os
import stat
import sys
import time

from lpfilter import logs
from lpfilter.errors import JobRefused, LpfilterError, NameNotFound, TransientError, UsageError
from lpfilter.safefiles import copy_fd, standard_input
from lpfilter.status import ExitStatus
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.backends.lpd import LpdBackend
    from lpfilter.backends.request import SendRequest
    from lpfilter.backends.settings import LpdSettings
    from lpfilter.commands.environment import Context
    from lpfilter.errors import Interruption
    from lpfilter.job import Job
    from lpfilter.printcap.destination import Lpd
    from lpfilter.spool.joboptions import JobOptions

log = logs.getLogger(__name__)


class _Try:
    """The reporter of one send: remembers whether job data left in this try (a later
    success is then a possible duplicate). Ctrl-C is Python's own KeyboardInterrupt."""

    def __init__(self) -> None:
        self.data_left = False

    def interrupted(self) -> Interruption | None:
        return None

    def first_byte(self) -> None:
        self.data_left = True

    def progress(self, taken: int) -> None:
        """Nothing to show: the command says the job when the server has it."""

    def status(self, message: str) -> None:
        """An LPD server sends no status while it takes a job."""


def send_files(ctx: Context, target: Lpd, options: JobOptions, shown: str, *,
               wait: float) -> ExitStatus:
    """Send ``ctx.args.files`` (standard input when none), one job each, in order; each
    job's id is shown in ``shown`` once the server has it. ``wait``: the seconds all the
    pauses between tries may take together."""
    from lpfilter.backends.lpd import LpdBackend
    from lpfilter.backends.settings import LpdSettings
    from lpfilter.printcap.entrytext import default_entry
    args = ctx.args
    if args.hold or args.wait:
        flag = "--hold" if args.hold else "--wait"
        raise UsageError(f"{flag}: a job sent straight to {visible(target.display())} is the"
                         " server's once it took it ('lpfilter status -P"
                         f" {visible(target.display())}' shows it); nothing was printed")
    entry = default_entry(target.queue)  # LPRng's defaults: no printcap entry to read
    settings = LpdSettings.from_entry(entry)
    tries = max(1, entry.number("send_try"))
    pause = float(entry.number("connect_interval"))
    files: list[str | None] = list(args.files) or [None]
    backend = LpdBackend()
    for index, path in enumerate(files):
        job_id = f"{(os.getpid() + index) % 1000:03d}"
        try:
            duplicate = _send_file(backend, target, settings, options, path, job_id,
                                   tries=tries, pause=pause, wait=wait)
        except LpfilterError as exc:
            exc.message += _not_sent(files[index:])
            raise
        if args.remove:  # the server has it: the file may go (lpr -r)
            from lpfilter.commands.daemonprint import remove_spooled
            remove_spooled(path)
        if shown:
            print(shown.format(f"{visible(target.display())}-{job_id}"), file=ctx.stdout)
            ctx.stdout.flush()
        if duplicate:
            print(f"lpfilter: {visible(target.display())}-{job_id}: possible duplicate: an"
                  " earlier try was cut off after its data left", file=sys.stderr)
    return ExitStatus.OK


def _not_sent(paths: list[str | None]) -> str:
    """What the error leaves undone: this file and the ones after it."""
    first = "standard input" if paths[0] in (None, "-") else visible(str(paths[0]))
    after = len(paths) - 1
    more = f" and the {after} file{'s' if after > 1 else ''} after it" if after else ""
    return f"; not printed: {first}{more}"


def _send_file(backend: LpdBackend, target: Lpd, settings: LpdSettings, options: JobOptions,
               path: str | None, job_id: str, *, tries: int, pause: float,
               wait: float) -> bool:
    """One file as one job; True when it went in a later try after an earlier one's
    data had left (a possible duplicate)."""
    from lpfilter.backends.request import SendRequest
    fd, size = _data(path)
    try:
        if size == 0:
            shown = "standard input" if path in (None, "-") else visible(str(path))
            raise JobRefused(f"{shown}: empty file; nothing to print")
        job = _job(options, target, path, job_id, size, settings.host)
        request: SendRequest[LpdSettings] = SendRequest(job, path or "", target, settings,
                                                        _Try(), data_fd=fd)
        return _tries(backend, request, tries=tries, pause=pause, wait=wait)
    finally:
        os.close(fd)


def _tries(backend: LpdBackend, request: SendRequest[LpdSettings], *, tries: int,
           pause: float, wait: float) -> bool:
    """LPRng's lpr: the whole job again after a try that failed, ``tries`` in all, the
    pauses between them ``wait`` seconds together at most (the tries' own time is bounded
    by the backend's timeouts, and not counted: a slow try costs no later one)."""
    left_before = False
    where = visible(request.destination.display())
    for attempt in range(1, tries + 1):
        reporter = request.reporter
        assert isinstance(reporter, _Try)
        try:
            result = backend.send(request)
        except KeyboardInterrupt:
            if left_before or reporter.data_left:  # (the edge then says "interrupted")
                print(f"lpfilter: {where}: stopped after the job's data left: the server may"
                      f" have it; see 'lpfilter status -P {where}' before printing it again",
                      file=sys.stderr)
            raise
        except TransientError as exc:
            left_before = left_before or reporter.data_left
            rest = min(pause, wait)
            wait -= rest
            if attempt == tries or rest <= 0 or isinstance(exc, NameNotFound):
                if left_before:
                    exc.message += (" (its data had left: the server may have it; see"
                                    f" 'lpfilter status -P {where}' before printing it"
                                    " again)")
                raise
            print(f"lpfilter: {visible(str(exc))}; trying again in {rest:.3g} s"
                  f" (try {attempt + 1} of {tries})", file=sys.stderr)
            time.sleep(rest)
            request.reporter = _Try()
            request.sent = 0
            continue
        log.info("%s: job %s: %s", where, request.job.id, result.message)
        return left_before
    raise AssertionError("unreachable")


def _job(options: JobOptions, target: Lpd, path: str | None, job_id: str, size: int,
         host: str) -> Job:
    from lpfilter.job import Job
    name, file_name = options.names(path)
    return Job(job_id, target.queue, options.user, name, size, time.time(),
               title=options.title, copies=options.copies, host=host,
               job_class=options.job_class, no_banner=options.no_banner,
               print_format=options.print_format, extra=options.extra(file_name))


def _data(path: str | None) -> tuple[int, int]:
    """The file's descriptor and size; standard input, a pipe or a device copied into an
    unnamed temporary file first (an LPD data file's size goes before its bytes)."""
    from lpfilter.errors import AccessError
    stdin = path is None or path == "-"
    try:
        src = standard_input() if stdin else os.open(str(path), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise AccessError(f"{visible(str(path))}: cannot open: {exc.strerror}; nothing was"
                          " printed") from None
    info = os.fstat(src)
    if stat.S_ISREG(info.st_mode) and not stdin:
        return src, info.st_size
    try:
        return _copied(src, visible(str(path)) if not stdin else "standard input")
    finally:
        if not stdin:
            os.close(src)


def _copied(src: int, what: str) -> tuple[int, int]:
    """``src`` to its end, in an unnamed file of the temporary directory (removed when
    closed, whatever happens)."""
    import tempfile

    from lpfilter.errors import NO_ROOM, AccessError
    try:
        with tempfile.TemporaryFile() as out:  # unnamed (O_TMPFILE) where Linux has it
            fd = os.dup(out.fileno())
    except OSError as exc:
        raise AccessError(f"{what}: no temporary file for it in {tempfile.gettempdir()}:"
                          f" {exc.strerror}; nothing was printed") from None
    try:
        size = copy_fd(src, fd)  # in the kernel where it can (a pipe: splice)
    except OSError as exc:
        os.close(fd)
        if exc.errno in NO_ROOM:  # the command's edge says it (exit status 10)
            raise OSError(exc.errno, exc.strerror, tempfile.gettempdir()) from None
        raise AccessError(f"{what}: cannot copy it: {exc.strerror}; nothing was printed"
                          ) from None
    return fd, size
