"""``lpfilter print``: spool files as jobs; print them now unless a watcher serves the queue."""
from __future__ import annotations

import os
import sys

from lpfilter import logs
from lpfilter.commands.environment import lock_dir
from lpfilter.errors import AccessError, LpfilterError, UsageError
from lpfilter.job import JobState, user_name
from lpfilter.printcap import Entry
from lpfilter.spool import closed_to_me
from lpfilter.spool.control import ControlFile
from lpfilter.spool.joboptions import JobOptions, check_copies, control_lines
from lpfilter.status import ExitStatus
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:  # the modules every print needs are imported with this one, while the
    # start-up runs without the cyclic collector (lpfilter.__main__)
    import argparse
    from collections.abc import Mapping
    from types import SimpleNamespace

    from lpfilter.commands.environment import Context
    from lpfilter.commands.quickargs import Recorder
    from lpfilter.spool.store import SpoolStore

log = logs.getLogger(__name__)

#: Plain arguments are read without argparse (commands/quickargs.py).
QUICK_ARGS = True
ADD_HELP = False  # -h means "no banner page" here, as in LPRng's lpr
#: How long a foreground print waits out retry pauses (a printer that is off) before it
#: leaves its jobs queued and exits 8; LPFILTER_PRINT_WAIT changes it.
PRINT_WAIT = 30.0


#: LPRng lpr's format options besides -l and -p, each the same as -F with its letter.
_FORMAT_LETTERS = {"c": "cifplot", "d": "TeX DVI", "f": "plain text, the default", "g": "plot",
                   "n": "ditroff", "t": "troff"}


def add_arguments(parser: argparse.ArgumentParser | Recorder) -> None:
    parser.add_argument("--help", action="help", help="show this help and exit")
    parser.add_argument("-P", dest="printer", metavar="QUEUE",
                        help="the queue (default: PRINTER, LPDEST, first printer)")
    parser.add_argument("-J", dest="jobname", metavar="JOBNAME", help="the job's name")
    parser.add_argument("-T", dest="title", metavar="TITLE", default="", help="a title")
    parser.add_argument("-U", dest="user", metavar="USER",
                        help="submit for another user (root only)")
    parser.add_argument("-#", "-K", dest="copies", metavar="COPIES", type=int, default=1,
                        help="number of copies (limited by the queue's mc)")
    parser.add_argument("-C", dest="job_class", metavar="CLASS", default="",
                        help="the job's class (LPRng's lpr -C), kept with the job")
    parser.add_argument("-h", dest="no_banner", action="store_true",
                        help="no banner page (LPRng's lpr -h)")
    parser.add_argument("-F", dest="format", metavar="FORMAT", type=_format,
                        help="the job's format letter (LPRng's lpr -F: f, l, p, v, ...)")
    parser.add_argument("-l", "-b", dest="format", action="store_const", const="l",
                        help="format l: print control characters, binary (-F l; -b:"
                             " LPRng's binary)")
    parser.add_argument("-p", dest="format", action="store_const", const="p",
                        help="format p: through pr first (-F p)")
    for letter, what in _FORMAT_LETTERS.items():  # (LPRng's lpr; -v stays --verbose)
        parser.add_argument(f"-{letter}", dest="format", action="store_const", const=letter,
                            help=f"format {letter}: {what} (-F {letter})")
    parser.add_argument("-Z", dest="options", metavar="OPTIONS", action="append",
                        help="options for the queue's filters (LPRng's lpr -Z; several are"
                             " joined with commas)")
    parser.add_argument("-w", dest="width", metavar="WIDTH", type=int,
                        help="page width for the filters (LPRng's lpr -w)")
    parser.add_argument("-i", dest="indent", metavar="INDENT", type=int,
                        help="indent for the filters (LPRng's lpr -i)")
    parser.add_argument("-R", dest="account", metavar="ACCOUNT",
                        help="an accounting name (a billing code) for the filters and the"
                             " next server (LPRng's lpr -R)")
    parser.add_argument("-k", "-s", dest="copy_taken", action="store_true",
                        help="accepted for LPRng's lpr -k and BSD's lpr -s: the job is"
                             " always a copy on disk")
    parser.add_argument("-m", dest="mail", metavar="ADDRESS", nargs="?", const="",
                        help="refused: lpfilter does not send mail")
    parser.add_argument("-r", dest="remove", action="store_true",
                        help="remove each file once its job is spooled (LPRng's lpr -r)")
    parser.add_argument("--hold", action="store_true", help="hold the job")
    wait = parser.add_mutually_exclusive_group()
    wait.add_argument("--wait", dest="wait", action="store_true", default=None,
                      help="wait for the job's final state and exit with it")
    wait.add_argument("--no-wait", dest="wait", action="store_false",
                      help="only spool the job; never print it in the foreground")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="files to print (standard input when none)")


def _format(text: str) -> str:
    """lpr's -F: one lower-case letter (the control file's print line)."""
    if len(text) != 1 or not ("a" <= text <= "z"):
        import argparse  # argparse reads a line that has a bad letter (quickargs)
        raise argparse.ArgumentTypeError(f"{text!r} is not a format letter (a-z)")
    return text


def _user(requested: str | None) -> str:
    me = user_name(os.getuid())
    if requested and requested != me and os.getuid() != 0:
        raise UsageError(f"-U {requested}: only root may print for another user")
    return requested or me


def _check_readable(args: argparse.Namespace | SimpleNamespace) -> None:
    """Refuse before spooling anything, so that no file of the command is half-done; as
    ``lpr``, LPRng's way: a file that cannot be read is said and left out, and the others
    print (exit 0); only when none is left is it refused."""
    looked = [(path, _unreadable(path)) for path in args.files]
    refused = [(path, why) for path, why in looked if why]
    if not refused:
        return
    left = [path for path, why in looked if not why]
    if args.command != "lpr" or not left:
        path, why = refused[0]
        raise AccessError(f"{visible(path)}: {why}; nothing was printed")
    for path, why in refused:
        print(f"lpfilter: {visible(path)}: {why}; left out (the other files print)",
              file=sys.stderr)
    args.files = left


def _unreadable(path: str) -> str | None:
    """Why a file named to print cannot be read (None: it can, or it is stdin)."""
    if path == "-":
        return None
    if not os.path.exists(path):
        return "no such file"
    if os.path.isdir(path):
        return "is a directory, not a file to print"
    if not os.access(path, os.R_OK):
        return "you may not read this file"
    return None


def run(ctx: Context) -> ExitStatus:
    return spool_files(ctx)


def spool_files(ctx: Context, shown: str = "{}") -> ExitStatus:
    """``print`` with ``ctx.args`` (``lp`` makes them from CUPS's options); each job's id
    is shown in ``shown`` ("": not shown)."""
    args = ctx.args
    if args.mail is not None:  # before anything is looked up or spooled
        raise UsageError("-m: lpfilter does not send mail; nothing was printed (leave out -m:"
                         " 'print --wait' or 'status' tell how a job ended)")
    name = ctx.queue(args.printer)
    if "@" in name:  # LPRng's lpr -P queue@host: straight to that server, no spool
        return _send_direct(ctx, name, shown)
    entry = ctx.printcap().lookup(name)
    control = ControlFile.of(entry)  # read once (a bad file is said once), again if changed
    redirect = control.read().redirect
    if redirect:  # lpc redirect: the job goes to the target
        entry = ctx.printcap().lookup(redirect)
        control = ControlFile.of(entry)
    check_copies(entry, args.copies)
    options = _options(args)  # a usage error comes before anything is made in the spool
    if closed_to_me(entry.string("sd") or "", write=True) and _server_answers(ctx):
        # the print server's at once (spool.closed_to_me); else the spool's own path,
        # which says its error as it always did
        why = AccessError(f"queue {entry.name}: you may not write its spool", queue=entry.name)
        return _through_server(ctx, args, entry.name, options, why, shown)
    from lpfilter.spool.store import SpoolStore  # (not for a user the spool is closed to)
    # shared: lent to the worker when this process prints the jobs itself, and kept open
    # (caught up) for their ends until the final close
    store = SpoolStore(entry.string("sd") or "", entry.name, shared=True)
    try:  # its journal and lock closed however it ends (main() may run many times)
        return _spool_and_print(ctx, args, entry, store, options, control, shown)
    finally:
        store.close(final=True)


def _options(args: argparse.Namespace | SimpleNamespace) -> JobOptions:
    """What the user asked of each job; -U and -Z/-w/-i are checked here."""
    return JobOptions(_user(args.user), args.jobname, args.title, args.copies, args.hold,
                      job_class=args.job_class, no_banner=args.no_banner,
                      print_format=args.format or "", no_wait=args.wait is False,
                      lines=control_lines(args.options, args.width, args.indent,
                                          args.account))


def _send_direct(ctx: Context, name: str, shown: str) -> ExitStatus:
    """``-P queue@host[%port]``: each file to that LPD server now (commands/remoteprint.py),
    as LPRng's lpr sends it; no printcap is read."""
    from lpfilter.commands import remoteprint
    from lpfilter.commands.remotequeue import remote_queue
    target = remote_queue(name)
    assert target is not None
    if ctx.args.copies < 1:
        raise UsageError(f"-# {ctx.args.copies}: the number of copies must be at least 1")
    options = _options(ctx.args)
    _check_readable(ctx.args)
    return remoteprint.send_files(ctx, target, options, shown, wait=_print_wait(ctx.environ))


def _server_answers(ctx: Context) -> bool:
    from lpfilter.commands import daemonclient
    return daemonclient.reachable(ctx.environ)


def _through_server(ctx: Context, args: argparse.Namespace | SimpleNamespace, queue: str,
                    options: JobOptions, why: AccessError, shown: str) -> ExitStatus:
    """The files through the print server, for a user who may not write the spool
    (``why``: said when no server answers)."""
    from lpfilter.commands import daemonprint
    _check_readable(args)
    return daemonprint.print_files(ctx, queue, options, why, shown, remove=args.remove)


def _spool_and_print(ctx: Context, args: argparse.Namespace | SimpleNamespace, entry: Entry,
                     store: SpoolStore, options: JobOptions, control: ControlFile,
                     shown: str) -> ExitStatus:
    """Spool the files (or hand them to the print server), then print or leave them."""
    try:
        store.ensure()
    except AccessError as exc:  # the print server spools it for a user who may not
        from lpfilter.commands import daemonclient
        if not daemonclient.may_help(store.sd):
            raise
        return _through_server(ctx, args, entry.name, options, exc, shown)
    from lpfilter.spool.submit import submit_all
    _check_readable(args)
    ids: list[str] = []
    files = args.files or [None]
    try:
        for job in submit_all(entry, store, files, options, control=control):
            if args.remove:  # the job is on disk: its file may go (lpr -r); one job a file
                from lpfilter.commands.daemonprint import remove_spooled
                remove_spooled(files[len(ids)])
            ids.append(job.id)
            if shown:
                print(shown.format(f"{visible(entry.name)}-{job.id}"), file=ctx.stdout)
            log.info("queue %s: job %s: %s spooled, %d bytes%s", entry.name, job.id,
                     visible(job.name), job.size,
                     " (held)" if job.state is JobState.HELD else "")
    except LpfilterError as exc:  # a file gone or refused while the others were spooled
        _said_what_was_spooled(exc, spooled=len(ids), left=len(files) - len(ids))
        raise
    ctx.stdout.flush()
    if args.wait is False or all(_held(store, i) for i in ids):
        return ExitStatus.OK
    if control.read().printing_disabled:  # lpc stop: nothing prints before lpc start
        print(f"lpfilter: queue {visible(entry.name)} is stopped (lpc stop): the job stays"
              f" queued until 'lpfilter lpc start {visible(entry.name)}'", file=sys.stderr)
        return ExitStatus.OK if _daemon_serves(store) and not args.wait else (
            ExitStatus.JOB_PENDING)
    return _print_now(ctx, entry, store, ids, lock_dir(ctx.environ), bool(args.wait))


def _daemon_serves(store: SpoolStore) -> bool:
    """Does a daemon serve the queue (not another one-shot print)? The job is then as
    good as printed for print's exit status, stopped queue or not: it is queued to it, as
    LPRng's lpr says 0 (a script retrying on another status would queue it again)."""
    from lpfilter.spool.lease import holder_of
    from lpfilter.spool.serve import ONE_SHOT
    holder = holder_of(store.state)
    return holder is not None and holder.purpose not in ONE_SHOT


def _said_what_was_spooled(error: LpfilterError, *, spooled: int, left: int) -> None:
    """A file refused in the middle of a print's files (removed since it was looked at,
    too large, no room): its one line also says what became of the rest (the ids of those
    spooled before it were printed)."""
    if spooled + left < 2 or "nothing" in error.message:  # (one file: it says it all)
        return
    if not spooled:
        error.message += "; nothing was printed"
    elif left > 1:
        error.message += f"; it and the {left - 1} file(s) after it were not spooled"
    else:
        error.message += "; it was not spooled"


def _print_now(ctx: Context, entry: Entry, store: SpoolStore, ids: list[str], locks: str,
               wait: bool) -> ExitStatus:
    """Serve the queue in the foreground, or leave the jobs to the watcher that serves it."""
    from lpfilter.commands.terminal import TerminalObserver
    from lpfilter.spool.serve import serve_in_foreground
    observer = TerminalObserver(sys.stderr)
    try:
        # --wait asks for the final state: no bound then (Ctrl-C still ends it at once).
        ran = serve_in_foreground(entry, store, ids, lock_dir=locks, wait=wait,
                                  patience=lambda: None if wait else _print_wait(ctx.environ),
                                  observer=observer)
    finally:
        observer.close()
    if ran.left_to_daemon:
        return ExitStatus.OK  # a daemon serves the queue: it prints the jobs
    status = _report(ctx, store, ids, interrupted=ran.interrupted, waited_on=ran.waited_on)
    if ran.summary is not None and ran.summary.full is not None:
        # the jobs are spooled and wait; the spool needs room
        print(f"lpfilter: {ran.summary.full_text()}", file=sys.stderr)
        return ExitStatus.SPOOL_FULL
    return status


def _print_wait(environ: Mapping[str, str]) -> float:
    """LPFILTER_PRINT_WAIT, else PRINT_WAIT; a value that is no number of seconds is said
    once and the default used (the job is spooled already: it must not fail for this)."""
    text = environ.get("LPFILTER_PRINT_WAIT", "").strip()
    try:
        value = float(text) if text else PRINT_WAIT
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        log.warning("LPFILTER_PRINT_WAIT=%r is not a number of seconds; waiting %g s",
                    text, PRINT_WAIT)
        return PRINT_WAIT
    return value


def _held(store: SpoolStore, job_id: str) -> bool:
    """Is the job held (nothing to print now)? A ticket gone already is not: it is
    reported as removed, never an internal error."""
    job = store.read(job_id)
    return job is not None and job.state is JobState.HELD


def _report(ctx: Context, store: SpoolStore, ids: list[str], *,
            interrupted: bool, waited_on: str = "") -> ExitStatus:
    """One line per job that did not print; the exit status of the worst."""
    from lpfilter.commands.exits import for_job, worst
    from lpfilter.spool.waiting import how_it_prints
    statuses = []
    for job_id in ids:
        job = store.read(job_id)
        state = job.state if job else JobState.CANCELLED
        status = for_job(state)
        if status != ExitStatus.OK:
            why = (job.last_error if job and job.last_error else state) if job else "removed"
            why = visible(why)
            if state == JobState.QUEUED and waited_on:  # (another print, stopped?)
                why = f"the queue is {waited_on}, which has not printed it yet; it stays queued"
            elif state == JobState.QUEUED:
                why = "interrupted" if interrupted else why
                if why == state and job is not None and not job.attempts:
                    why = "not tried yet: the jobs ahead of it go first (fifo)"
                why = f"{why}; it stays queued: {how_it_prints(visible(store.queue))}"
            elif state == JobState.ACTIVE and not interrupted:  # (its outcome unwritten)
                why = "sent, but its outcome could not be written (below)"
            flag = " (possible duplicate)" if job and job.possible_duplicate else ""
            print(f"lpfilter: {visible(store.queue)}-{job_id}: {state}{flag}: {why}",
                  file=sys.stderr)
        statuses.append(status)
    return worst(statuses)
