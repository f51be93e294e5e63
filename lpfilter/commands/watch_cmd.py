"""``lpfilter watch``: the spool watcher, long-running (systemd, Type=simple) or ``--once``."""
from __future__ import annotations

import math
import os

from lpfilter import logs
from lpfilter.status import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from lpfilter.commands.environment import Context
    from lpfilter.printcap import Entry

log = logs.getLogger(__name__)
#: A plain line (``watch --once -P q``, as cron runs it) is read without argparse
#: (commands/quickargs.py): ~4 ms of every cron pass.
QUICK_ARGS = True
#: The start line names at most this many queues (then "and N more").
NAMED_QUEUES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-P", dest="printers", metavar="QUEUE", action="append",
                        help="serve this queue (repeat for more; default: all queues)")
    parser.add_argument("--all", action="store_true", help="serve every queue (the default)")
    parser.add_argument("--once", action="store_true",
                        help="process what is queued now and exit (for cron)")
    parser.add_argument("--grace", type=float, default=10.0, metavar="SECONDS",
                        help="on SIGTERM, let running jobs finish this long (default 10)")
    parser.add_argument("--settle", type=float, default=2.0, metavar="SECONDS",
                        help="a dropped file is taken once unchanged this long (default 2)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="log only warnings and errors (not the start, each job's"
                             " outcome and the stop)")
    from lpfilter.commands import lpdserver
    lpdserver.add_arguments(parser)


def queue_entries(ctx: Context, names: list[str] | None) -> list[Entry]:
    """The entries to serve: the named queues, else every printer of the printcap."""
    ctx.reset_printcap()
    printcap = ctx.printcap()
    chosen = names or printcap.queue_names()  # checkpc names what all= lists but nothing defines
    return [printcap.lookup(name) for name in chosen]


def run(ctx: Context) -> ExitStatus:
    from lpfilter.commands import lpdserver
    from lpfilter.commands.environment import lock_dir
    from lpfilter.commands.exits import for_watch
    from lpfilter.errors import UsageError
    from lpfilter.spool.watcher import Watcher
    args = ctx.args
    if args.all and args.printers:
        raise UsageError("give -P QUEUE or --all, not both")
    if not all(0 <= value < math.inf for value in (args.grace, args.settle)):  # NaN too
        raise UsageError("--grace and --settle take a number of seconds, 0 or more")
    lpdserver.check_arguments(ctx)
    names = args.printers
    entries = queue_entries(ctx, names)  # a bad printcap or queue name fails here, first
    if not entries and args.once:  # (a daemon may start empty: a reread adds queues)
        from lpfilter.errors import ConfigError
        raise ConfigError("the printcap defines no queue: watch --once has nothing to serve"
                          " (lpfilter printcap --all lists the queues)")
    watcher = Watcher(lambda: queue_entries(ctx, names), lock_dir=lock_dir(ctx.environ),
                      once=args.once, grace=args.grace, settle=args.settle)
    # A daemon says when it starts and stops; from cron (--once) only the jobs are news.
    level = logs.DEBUG if args.once else logs.INFO
    server = lpdserver.open_server(ctx, watcher)
    log.log(level, "%s", start_line(ctx, entries) + lpdserver.where(server))
    if server is not None:  # accepts once the queues are started
        watcher.on_started = server.start
        watcher.on_stopping = server.stop_connections
    try:
        status = for_watch(watcher.run())
    finally:
        if server is not None:
            server.shutdown()
    log.log(level, "watch stopped (pid %d), exit status %d", os.getpid(), status)
    return status


def start_line(ctx: Context, entries: list[Entry]) -> str:
    """Version, queues and printcap files: what the journal shows first."""
    from lpfilter import __version__
    from lpfilter.commands.environment import printcap_paths
    from lpfilter.text import visible
    paths = printcap_paths(ctx.args.printcap, ctx.environ)
    files = [os.path.abspath(p) for p in paths.paths
             if p not in paths.optional or os.path.exists(p)]
    queues = [visible(e.name) for e in entries]
    more = len(queues) - NAMED_QUEUES
    shown = ", ".join(queues[:NAMED_QUEUES]) + (f" and {more} more" if more > 0 else "")
    return (f"watch started: lpfilter {__version__}, pid {os.getpid()}, serving"
            f" {len(queues)} queue{'s' if len(queues) != 1 else ''}: {shown or 'none'};"
            f" printcap {', '.join(visible(f) for f in files)}")
