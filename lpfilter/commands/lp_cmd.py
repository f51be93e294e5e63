"""``lpfilter lp``: ``print`` with CUPS's ``lp`` options and its answer, for the scripts
and hands that know ``lp -d queue -n 2 file``.

Each option becomes ``print``'s: ``-d`` (or lpfilter's ``-P``) the queue, else
``$LPDEST``, ``$PRINTER`` (CUPS's order); ``-n`` copies; ``-t`` the job's name; ``-o``
options (``name=value``, several in one ``-o`` split at blanks) the job's Z line, as
``print -Z`` (joined with commas), so the queue's filters get them; ``-H hold`` holds the
job, ``-H immediate`` does not; ``-U`` another user (root only); ``-c`` is CUPS's no-op;
``-s`` leaves out the answer. Each job is reported as CUPS does, ``request id is
lp-000012 (1 file(s))``: lpfilter makes one job a file, and its id is what ``cancel``
takes. What lpfilter cannot do is refused in one line before anything is spooled (exit
status 2): mail (``-m``), another server (``-h``), changing a queued job (``-i``),
encryption (``-E``), priorities (``-q``), a timed hold (``-H hh:mm``).
"""
from __future__ import annotations

from lpfilter.errors import UsageError
from lpfilter.status import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from lpfilter.commands.environment import Context
    from lpfilter.commands.quickargs import Recorder

#: Plain arguments are read without argparse (commands/quickargs.py).
QUICK_ARGS = True
ADD_HELP = False  # -h names a server in CUPS's lp
#: How each job is reported, as CUPS's lp does.
SHOWN = "request id is {} (1 file(s))"
#: CUPS's options lpfilter has no way to do, and what to do instead.
REFUSED = {"mail": ("-m", "lpfilter does not send mail ('lpfilter status' tells how a job"
                          " ended)"),
           "server": ("-h", "name the queue as -d queue@host instead (sent straight to"
                            " that LPD server)"),
           "job_id": ("-i", "lpfilter does not change a queued job: cancel it and print"
                            " again, or use hold, release and topq"),
           "encrypt": ("-E", "lpfilter's LPD has no encryption"),
           "priority": ("-q", "jobs print in the order they came ('lpfilter topq' puts one"
                              " first)")}


def add_arguments(parser: argparse.ArgumentParser | Recorder) -> None:
    parser.add_argument("--help", action="help", help="show this help and exit")
    parser.add_argument("-d", "-P", dest="printer", metavar="DESTINATION",
                        help="the queue (default: LPDEST, PRINTER, the first printer)")
    parser.add_argument("-n", dest="copies", metavar="COPIES", type=int, default=1,
                        help="number of copies (limited by the queue's mc)")
    parser.add_argument("-t", dest="jobname", metavar="NAME", help="the job's name")
    parser.add_argument("-o", dest="cups_options", metavar="OPTIONS", action="append",
                        help="options for the queue's filters (name=value ...), as the"
                             " job's Z line (print -Z)")
    parser.add_argument("-H", dest="when", metavar="WHEN",
                        help="hold: hold the job; immediate: print it (no timed hold)")
    parser.add_argument("-U", dest="user", metavar="USER",
                        help="submit for another user (root only)")
    parser.add_argument("-s", dest="silent", action="store_true",
                        help="do not report the request ids")
    parser.add_argument("-c", dest="copy", action="store_true",
                        help="accepted: the files are always copied into the spool")
    parser.add_argument("-m", dest="mail", action="store_true", help="refused: no mail")
    parser.add_argument("-h", dest="server", metavar="SERVER", help="refused: no servers")
    parser.add_argument("-i", dest="job_id", metavar="ID", help="refused: no changes")
    parser.add_argument("-E", dest="encrypt", action="store_true", help="refused")
    parser.add_argument("-q", dest="priority", metavar="PRIORITY", help="refused")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="files to print (standard input when none, or -)")


def run(ctx: Context) -> ExitStatus:
    args = ctx.args
    for dest, (flag, instead) in REFUSED.items():
        if getattr(args, dest) not in (None, False):
            raise UsageError(f"lp {flag}: not supported: {instead}; nothing was printed")
    if args.when not in (None, "hold", "immediate"):
        raise UsageError(f"lp -H {args.when}: lpfilter holds a job until it is released"
                         " (-H hold, then 'lpfilter release'), not until a time; nothing"
                         " was printed")
    options = [word for given in args.cups_options or () for word in given.split()]
    if not all(word.isprintable() for word in options):
        raise UsageError("lp -o: no control characters in an option, please; nothing was"
                         " printed")
    from lpfilter.commands import print_cmd, quickargs
    from lpfilter.commands.environment import Context
    printing = quickargs.read(["print"])  # print's defaults, as its own parser makes them
    assert printing is not None  # (a plain line of a quick command)
    vars(printing).update(
        printcap=args.printcap, verbose=args.verbose, debug=args.debug, files=args.files,
        printer=args.printer or ctx.environ.get("LPDEST") or ctx.environ.get("PRINTER"),
        copies=args.copies, jobname=args.jobname, user=args.user, hold=args.when == "hold",
        options=options or None)
    return print_cmd.spool_files(Context(printing, ctx.environ, ctx.stdout),
                                 "" if args.silent else SHOWN)
