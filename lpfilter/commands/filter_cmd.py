"""``lpfilter filter [DESTINATION] [LPRng filter options]``: lpfilter's backends under lpd.

Three uses (lprng-filters.md §3, §7):

* output device, ``:lp=|/usr/bin/lpfilter filter HOST%PORT:``: the job arrives on stdin
  (lpd's socket); it is put on disk, then sent through lpfilter's backend for DESTINATION
  (socket or ``ftp://``); status lines go back on the same socket.
* data filter, ``:if=/usr/bin/lpfilter filter:`` with lpd's own ``lp=host%port``: stdin is
  the spooled file, stdout is the printer; the job goes out with the entry's PJL and init
  wrapping, and where stdout is a socket the printer's replies are read for completion
  and page counts (as ifhp does).
* by hand, ``lpfilter filter -Plp < file``: a queue of lpfilter's own printcap (or
  DESTINATION) without the spool.

The entry comes from ``PRINTCAP_ENTRY`` (what lpd sets), else ``-P`` and lpfilter's
printcap; DESTINATION overrides its ``lp``. The exit status is LPRng's filter code: 0 done,
1 retry later, 2 abort this job, 3 remove it, 6 hold it. lpd frames the job (ld, tr, ff)
and runs a filter once per copy, so under lpd neither is done here.
"""
from __future__ import annotations

import os
import stat
import sys
import time

from lpfilter import logs
from lpfilter.errors import LpfilterError, UsageError
from lpfilter.filtercodes import FilterCode
from lpfilter.filtermode import arguments
from lpfilter.filtermode.run import FilterRun, Plan, one_line
from lpfilter.printcap.destination import classify, password_on_command_line
from lpfilter.printcap.entrytext import default_entry, entry_from_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

    import argparse

    from lpfilter.commands.environment import Context
    from lpfilter.printcap import Entry
    from lpfilter.printcap.destination import Destination

ADD_HELP = False

USAGE = """\
usage: lpfilter filter [DESTINATION] [LPRng filter options ...] [accounting-file]

Sends standard input to DESTINATION (host%port, socket://, ftp:// or a device path),
or to the queue's lp (PRINTCAP_ENTRY, else -P queue in lpfilter's printcap); under lpd
as an if= filter (PRINTCAP_ENTRY set, no DESTINATION) it writes the job to standard
output.
Exit status: 0 done, 1 retry later, 2 abort this job, 3 remove it, 6 hold it.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Nothing: lpd's option list is read by lpfilter.filtermode.arguments (cli passes it raw)."""
    import argparse  # (a filter's own line never needs it: quickargs.read_filter)
    parser.add_argument("filter_argv", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(ctx: Context) -> int:
    args = arguments.parse(getattr(ctx.args, "filter_argv", []) or [])
    err: TextIO = sys.stderr
    if "--help" in args.own:
        print(USAGE, end="", file=ctx.stdout)
        return FilterCode.JSUCC
    if "--debug" in args.own or "--verbose" in args.own:
        import logging
        logs.settle()  # the edge's configuration first: this sets the level
        logging.getLogger().setLevel(logging.DEBUG if "--debug" in args.own else logging.INFO)
    if args.own.get("--printcap"):
        ctx.args.printcap = args.own["--printcap"]
    try:
        plan = _plan(ctx, args)
        return FilterRun(plan, err).run()
    except LpfilterError as exc:
        print(one_line(f"lpfilter filter: {exc}"), file=err, flush=True)
        return FilterCode.JABORT
    except Exception as exc:  # noqa: BLE001 - a bug: lpd keeps the job (abort), never 70
        logs.getLogger(__name__).debug("internal error", exc_info=True)
        print(one_line(f"lpfilter filter: internal error: {type(exc).__name__}: {exc}; the"
                       " job is kept"), file=err, flush=True)
        return FilterCode.JABORT


def _plan(ctx: Context, args: arguments.FilterArgs) -> Plan:
    """Which entry, which destination, which mode: every decision before any byte moves."""
    env = ctx.environ
    if args.get("F") == "o":
        raise UsageError("lpfilter filter is not an of= filter (it does not stop itself on"
                         " lpd's \\031\\001); use it as lp=| or if=")
    if args.destination:  # before any printcap is read or anything connects
        _refuse_password(classify(args.destination, queue=""))
    under_lpd = bool(env.get("PRINTCAP_ENTRY"))
    bsd = "n" in args.options and "h" in args.options and not under_lpd
    entry: Entry
    if under_lpd:
        entry = entry_from_text(env["PRINTCAP_ENTRY"])
    elif args.get("P") or (not args.destination and not bsd):
        entry = ctx.printcap().lookup(ctx.queue(args.get("P")))
    else:
        entry = default_entry(args.get("P") or env.get("PRINTER") or "lp")
    stdin_kind = _kind(0)
    if stdin_kind == "tty":
        raise UsageError("standard input is a terminal: give the job on it"
                         " (lpfilter filter -P QUEUE < FILE)")
    if args.destination:
        destination = classify(args.destination, queue=entry.name)
        mode = "device"
    elif under_lpd or bsd:
        # As lpd's lp=| program (one socket both ways) or lpfilter's own pipe program,
        # standard output is not a printer: a destination must be named.
        if (stdin_kind == "socket" and _same_file(0, 1)) or env.get("LPFILTER_JOB"):
            raise UsageError("no destination: as lpd's output device write"
                             " lp=|/usr/bin/lpfilter filter HOST%PORT (or ftp\\://HOST/DIR)")
        destination, mode = None, "stdout"
    else:
        destination, mode = entry.destination(), "device"
    if destination is not None and destination.kind == "pipe":
        # lp=|lpfilter filter with no destination would start itself again, forever.
        raise UsageError(f"destination {destination.display()}: lpfilter filter sends to a"
                         " printer (host%port, ftp://..., or a device), not to a program")
    return Plan(entry=entry, destination=destination, mode=mode, args=args,
                stdin_kind=stdin_kind, framed=not (under_lpd or bsd),
                under_lpd=under_lpd or bsd,
                spool_dir=env.get("SPOOL_DIR") or args.get("d") or "",
                user=args.get("n") or args.get("L") or env.get("LPFILTER_JOB_USER")
                or env.get("USER") or "",
                started=time.time(), lock_dir=_lock_dir(env, destination))


def _lock_dir(env: Mapping[str, str], destination: Destination | None) -> str:
    """Where the FTP backend keeps its session slots; nothing else here takes host-wide
    locks, so no other run makes the directory."""
    if destination is None or destination.kind != "ftp":
        return ""
    from lpfilter.commands.environment import lock_dir
    return lock_dir(env)


def _refuse_password(destination: Destination) -> None:
    """A password in the destination is in /proc/PID/cmdline, which every local user can
    read for the whole transfer: refused before anything connects."""
    if destination.kind == "ftp" and destination.password:  # type: ignore[union-attr]
        raise UsageError(password_on_command_line(f"destination {destination.display()}"))


def _kind(fd: int) -> str:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return "closed"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "tty" if os.isatty(fd) else "other"


def _same_file(a: int, b: int) -> bool:
    try:
        first, second = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)

