"""``lpfilter lpstat``: CUPS's ``lpstat`` over lpfilter's queues, for the scripts and hands
that know ``lpstat -o``, ``lpstat -p`` and ``lpstat -t``.

Its reports are CUPS's lines, in the order the options are given, each a queue of the
printcap (CUPS's destination): ``-o [queues]`` the jobs (``lp-000012  alice  1024  date``),
``-u [users]`` the jobs of those users, ``-p [queues]`` whether each prints (``printer lp
is idle.  enabled since ...``; lpc stop is ``disabled``), ``-a [queues]`` whether each takes
new jobs (lpc disable: ``not accepting``), ``-v`` each queue's device as a URI, ``-c`` each
pool (``sv=``) as a class and its members, ``-d`` the default queue, ``-r`` whether a
watcher serves any queue (CUPS's "scheduler"), ``-e`` the queue names, ``-s`` is ``-d -c
-v`` and ``-t`` all of them. A queue named without an option is ``-o`` of it; no report at
all is the caller's own jobs. ``-W`` picks not-completed jobs (the default: queued,
printing, held, failed), completed ones (printed, cancelled, removed, as long as the queue
keeps them) or all; ``-l`` adds each job's status and each queue's description (``cm``);
``-R`` ranks the jobs of each queue. The job's size is in bytes (CUPS's in whole KiB);
the dates are the C library's ``%c``. Where lpfilter keeps no time of its own, a queue's
"since" is the latest of lpc's last change and its watcher's start, else when its spool
directory last changed.

The jobs come from where ``status`` reads them (the spool, or the print server for an
ordinary user's closed spool); a queue that cannot be read is said on standard error, the
others are still shown, and the exit status is then 5, as status's. A queue no printcap
names is one line and exit 4 before anything is shown. No server is asked (``-h``) and no
connection encrypted (``-E``): refused, exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from lpfilter.commands.status_cmd import queue_view
from lpfilter.errors import NoSuchPrinter, UsageError
from lpfilter.job import FINISHED, JobState, user_name
from lpfilter.status import ExitStatus
from lpfilter.text import printable, visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from lpfilter.commands.environment import Context
    from lpfilter.commands.quickargs import Recorder
    from lpfilter.printcap import Entry
    from lpfilter.spool.queueinfo import JobData, QueueData

ADD_HELP = False  # -h names a server in CUPS's lpstat
SHORT_VERBOSE = False  # and -v is its devices (lpfilter's --verbose stays)
#: CUPS's options lpfilter has no way to do, and what to do instead.
REFUSED = {"server": ("-h", "lpfilter reads the printcap's queues; name a queue@host to"
                            " 'lpfilter status -P' for another server's"),
           "encrypt": ("-E", "lpfilter's LPD has no encryption"),
           "show_server": ("-H", "lpfilter has no scheduler address: its queues are in the"
                                 " printcap")}
#: The job-state-reasons keyword CUPS would give a job in each state (``-l``'s Alerts).
ALERTS = {JobState.QUEUED: "none", JobState.ACTIVE: "job-printing",
          JobState.HELD: "job-hold-until-specified", JobState.FAILED: "job-stopped",
          JobState.DONE: "job-completed-successfully",
          JobState.CANCELLED: "job-canceled-by-user", JobState.REMOVED: "aborted-by-system"}
_FINISHED = frozenset(str(state) for state in FINISHED)


class _Report(argparse.Action):
    """Keeps each report option and its list, in the order given: CUPS's lpstat prints its
    reports in that order (``lpstat -d -p`` is not ``lpstat -p -d``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[str] | None, option_string: str | None = None) -> None:
        reports = list(getattr(namespace, self.dest, None) or [])
        reports.append((str(option_string)[1:2], values or None))
        setattr(namespace, self.dest, reports)


def add_arguments(parser: argparse.ArgumentParser | Recorder) -> None:
    parser.add_argument("--help", action="help", help="show this help and exit")
    for flag, what in (("-o", "the jobs of these queues (default: all)"),
                       ("-p", "whether these queues print (default: all)"),
                       ("-a", "whether these queues take new jobs (default: all)"),
                       ("-v", "each queue's device (default: all)"),
                       ("-c", "each pool (sv=) and its member queues, as CUPS's classes"),
                       ("-u", "the jobs of these users (default: all)")):
        parser.add_argument(flag, dest="reports", action=_Report, nargs="?",
                            metavar="LIST", help=f"{what}; names split at commas or blanks")
    for flag, what in (("-d", "the default queue (LPDEST, PRINTER, the first printer)"),
                       ("-r", "whether a watcher serves any queue"),
                       ("-e", "the queue names"), ("-s", "a summary: -d -c -v"),
                       ("-t", "everything: -r -d -c -v -a -p -o")):
        parser.add_argument(flag, dest="reports", action=_Report, nargs=0, help=what)
    parser.add_argument("-W", dest="which", default="not-completed",
                        choices=("not-completed", "completed", "all"),
                        help="which jobs: not-completed (default), completed or all")
    parser.add_argument("-l", dest="long", action="store_true",
                        help="with each job its status, with each queue its description")
    parser.add_argument("-D", dest="describe", action="store_true",
                        help="with each queue its description (cm)")
    parser.add_argument("-R", dest="rank", action="store_true",
                        help="each job's rank in its queue")
    parser.add_argument("-U", dest="user", metavar="USER",
                        help="whose jobs lpstat without a report shows (default: yours)")
    parser.add_argument("-h", dest="server", metavar="SERVER", help="refused: no servers")
    parser.add_argument("-E", dest="encrypt", action="store_true", help="refused")
    parser.add_argument("-H", dest="show_server", action="store_true", help="refused")
    parser.add_argument("queues", nargs="*", metavar="QUEUE",
                        help="the jobs of this queue (as -o QUEUE)")


def names_in(listed: str) -> list[str]:
    """CUPS's list of names: split at commas and blanks."""
    return listed.replace(",", " ").split()


class _View:
    """The queues as lpstat reads them: each queue's status once, however many reports
    name it."""

    def __init__(self, ctx: Context) -> None:
        from lpfilter.commands.environment import lock_dir
        self.ctx, self.printcap, self.locks = ctx, ctx.printcap(), lock_dir(ctx.environ)
        self._data: dict[str, tuple[Entry, QueueData]] = {}
        self.errors: list[str] = []

    def names(self, listed: str | None) -> list[str]:
        """The queues a list names (each checked: NoSuchPrinter), or every queue."""
        if not listed or listed.lower() == "all":
            return self.printcap.queue_names()
        return [self.lookup(name).name for name in names_in(listed)]

    def lookup(self, name: str) -> Entry:
        """The queue's entry; a ``queue@host`` no printcap names is another server's,
        which status shows (its answer is free text, not CUPS's lines)."""
        try:
            return self.printcap.lookup(name)
        except NoSuchPrinter as exc:
            if "@" not in name:
                raise
            raise NoSuchPrinter(f"{exc.message}: lpstat shows this host's queues; 'lpfilter"
                                f" status -P {name}' shows another server's") from None

    def queue(self, name: str) -> tuple[Entry, QueueData]:
        if name not in self._data:
            entry = self.lookup(name)
            data = queue_view(self.ctx, entry, self.locks)
            if data.get("error"):
                self.errors.append(str(data["error"]))
            self._data[name] = (entry, data)
        return self._data[name]


def run(ctx: Context) -> ExitStatus:
    args = ctx.args
    for dest, (flag, instead) in REFUSED.items():
        if getattr(args, dest) not in (None, False):
            raise UsageError(f"lpstat {flag}: not supported: {instead}")
    reports = list(args.reports or []) + [("o", name) for name in args.queues]
    if not reports:  # CUPS: the user's own jobs
        reports = [("u", args.user or user_name(os.getuid()))]
    view = _View(ctx)
    for letter, listed in reports:  # every queue named exists, before anything is shown
        if letter in "oapvc" and listed:
            view.names(listed)
    lines: list[str] = []
    for letter, listed in reports:
        for each in EXPANDS.get(letter, letter):
            lines.extend(REPORTS[each](view, listed if each == letter else None))
    ctx.stdout.write(printable("".join(line + "\n" for line in lines)))
    for error in dict.fromkeys(view.errors):
        print(f"lpfilter: {visible(error)}", file=sys.stderr)
    return ExitStatus.ACCESS if view.errors else ExitStatus.OK


def _date(seconds: float | None) -> str:
    """A time as CUPS's lpstat writes it (``%c``; a forged record's: its number)."""
    from lpfilter.spool.records import stamp
    return stamp(seconds or 0, "%c")


def _since(data: QueueData) -> float:
    """When the queue's state last changed, as far as lpfilter knows: lpc's last change
    (its control file) or its watcher's start, the later; else its spool's last change."""
    from lpfilter.spool import STATE_DIR
    from lpfilter.spool.control import CONTROL_FILE
    spool = str(data["spool"])
    served = data.get("served_by")
    times = [float(served["since"])] if served else []
    try:
        times.append(os.lstat(os.path.join(spool, STATE_DIR, CONTROL_FILE)).st_mtime)
    except OSError:
        pass  # lpc never changed it (or its spool is closed to this user)
    if not times:
        try:
            times.append(os.lstat(spool).st_mtime)
        except OSError:  # no spool directory: nothing to date it by
            times.append(time.time())
    return max(times)


def _jobs(view: _View, listed: str | None) -> list[str]:
    return _job_lines(view, view.names(listed), None)


def _users(view: _View, listed: str | None) -> list[str]:
    users = None if not listed or listed.lower() == "all" else {
        name.lower() for name in names_in(listed)}
    return _job_lines(view, view.names(None), users)


def _job_lines(view: _View, names: list[str], users: set[str] | None) -> list[str]:
    """CUPS's job lines: ``lp-000012  alice  1024  date`` (``-R``: the rank first)."""
    args = view.ctx.args
    lines = []
    for name in names:
        _entry, data = view.queue(name)
        which = [job for job in data["jobs"] if args.which == "all"
                 or (str(job["state"]) in _FINISHED) == (args.which == "completed")]
        for rank, job in enumerate(which):  # (CUPS ranks the jobs -W picks)
            user = visible(str(job["user"]))
            if users is not None and user.lower() not in users:
                continue
            ident = f"{visible(name)}-{job['id']}"
            when = _date(job.get("finished") if args.which == "completed"
                         else job["submitted"])
            lines.append(f"{rank:3d} {ident:<21} {user:<13} {job['size']:8d} {when}"
                         if args.rank else f"{ident:<23} {user:<13} {job['size']:8d}   {when}")
            if args.long:
                lines.extend(_job_long(name, job))
    return lines


def _job_long(name: str, job: JobData) -> list[str]:
    """``-l``: the job's status (what status's DETAIL says), its CUPS reason, its queue."""
    from lpfilter.commands.status_cmd import job_detail
    detail = job_detail(job)
    state = JobState(str(job["state"]))
    return ([f"\tStatus: {visible(detail)}"] if detail else []) + [
        f"\tAlerts: {ALERTS[state]}", f"\tqueued for {visible(name)}"]


def _printers(view: _View, listed: str | None) -> list[str]:
    lines = []
    for name in view.names(listed):
        entry, data = view.queue(name)
        control = data.get("control") or {}
        since, shown = _date(_since(data)), visible(name)
        active = [job for job in data["jobs"] if job["state"] == JobState.ACTIVE]
        reason = _stopped(control, name) or visible(str(data.get("error") or ""))
        if not data.get("readable", True):  # closed to the caller, and no server answered
            lines += [f"printer {shown} unknown state -", f"\t{reason}"]
        elif reason:
            lines += [f"printer {shown} disabled since {since} -", f"\t{reason}"]
        elif active:
            lines.append(f"printer {shown} now printing {shown}-{active[0]['id']}."
                         f"  enabled since {since}")
        elif control.get("hold_all"):
            lines.append(f"printer {shown} is holding new jobs.  enabled since {since}")
        else:
            lines.append(f"printer {shown} is idle.  enabled since {since}")
        if data["printer_status"]:
            lines.append(f"\t{visible(str(data['printer_status']))}")
        if view.ctx.args.long or view.ctx.args.describe:
            lines.append(f"\tDescription: {_description(entry)}")
    return lines


def _stopped(control: dict[str, object], name: str) -> str:
    """Why a queue does not print ("" when it does)."""
    if control.get("unreadable"):
        return f"lpc state unreadable: {visible(str(control['unreadable']))}"
    if control.get("printing_disabled"):
        return f"printing stopped by lpc stop ('lpfilter start {visible(name)}' starts it)"
    return ""


def _description(entry: Entry) -> str:
    return visible(entry.string("cm") or "")


def _accepting(view: _View, listed: str | None) -> list[str]:
    lines = []
    for name in view.names(listed):
        _entry, data = view.queue(name)
        since, shown = _date(_since(data)), visible(name)
        if (data.get("control") or {}).get("spooling_disabled"):
            lines += [f"{shown} not accepting requests since {since} -",
                      f"\tspooling disabled by lpc disable ('lpfilter enable {shown}' takes"
                      " jobs again)"]
        elif data.get("error") and data.get("readable", True):  # no spool directory
            lines += [f"{shown} not accepting requests since {since} -",
                      f"\t{visible(str(data['error']))}"]
        else:
            lines.append(f"{shown} accepting requests since {since}")
    return lines


def _devices(view: _View, listed: str | None) -> list[str]:
    return [f"device for {visible(name)}: {visible(device_uri(view.lookup(name)))}"
            for name in view.names(listed)]


def device_uri(entry: Entry) -> str:
    """The queue's ``lp`` as CUPS's device URI: ``socket://host:port``,
    ``lpd://host[:port]/queue``, ``ftp://user:***@host/path`` (never the password), a
    device's path (CUPS drops ``file:``), ``|program``; a pool ``pool of q1, q2``."""
    from lpfilter.printcap import pools
    from lpfilter.printcap.destination import Lpd, Socket
    if pools.server_names(entry):
        return pools.describe(entry)
    destination = entry.destination()
    if isinstance(destination, Socket | Lpd):
        host = f"[{destination.host}]" if ":" in destination.host else destination.host
        if isinstance(destination, Socket):
            return f"socket://{host}:{destination.port}"
        port = "" if destination.display().endswith(f"@{destination.host}") \
            else f":{destination.port}"
        return f"lpd://{host}{port}/{destination.queue}"
    return destination.display()


def _classes(view: _View, listed: str | None) -> list[str]:
    from lpfilter.printcap import pools
    lines = []
    for name in view.names(listed):
        members = pools.server_names(view.lookup(name))
        if members:
            lines.append(f"members of class {visible(name)}:")
            lines.extend(f"\t{visible(member)}" for member in members)
    return lines


def _default(view: _View, _listed: str | None) -> list[str]:
    """CUPS's order: LPDEST, then PRINTER, then (lpfilter's) the printcap's first printer."""
    environ = view.ctx.environ
    for variable in ("LPDEST", "PRINTER"):
        name = environ.get(variable)
        if name:
            if "@" not in name and view.printcap.resolve(name) is None:
                return [f"lpstat: error - {variable} environment variable names"
                        f" non-existent destination \"{visible(name)}\"."]
            return [f"system default destination: {visible(name)}"]
    first = view.printcap.default_printer()
    return [f"system default destination: {visible(first)}" if first
            else "no system default destination"]


def _scheduler(view: _View, _listed: str | None) -> list[str]:
    served = any(view.queue(name)[1].get("served_by") for name in view.names(None))
    return ["scheduler is running" if served else "scheduler is not running"]


def _names(view: _View, _listed: str | None) -> list[str]:
    return [visible(name) for name in view.names(None)]


REPORTS: dict[str, Callable[[_View, str | None], list[str]]] = {
    "o": _jobs, "u": _users, "p": _printers, "a": _accepting, "v": _devices, "c": _classes,
    "d": _default, "r": _scheduler, "e": _names}
#: The reports that are several: -s and -t.
EXPANDS = {"s": "dcv", "t": "rdcvapo"}
