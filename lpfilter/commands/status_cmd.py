"""``lpfilter status`` (alias ``lpq``): each queue's watcher, printer message and jobs."""
from __future__ import annotations

import sys
import time

from lpfilter.errors import TransientError
from lpfilter.job import JobState
from lpfilter.printcap import Entry
from lpfilter.spool import closed_to_me
from lpfilter.spool.control import control_words
from lpfilter.spool.queueinfo import lpc_flags, picked, queue_status
from lpfilter.status import ExitStatus
from lpfilter.text import printable, visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from lpfilter.commands.environment import Context
    from lpfilter.commands.quickargs import Recorder
    from lpfilter.spool.queueinfo import JobData, QueueData


#: Plain arguments are read without argparse (commands/quickargs.py).
QUICK_ARGS = True


def add_arguments(parser: argparse.ArgumentParser | Recorder) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-P", dest="printer", metavar="QUEUE", help="the queue to show")
    which.add_argument("-a", "--all", action="store_true", help="every queue")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("-l", "-L", "--long", action="store_true",
                      help="one block per job with every detail, nothing cut (-L: as"
                           " LPRng's lpq -L)")
    form.add_argument("-s", "--short", action="store_true",
                      help="one line a queue: how many jobs it has (as lpq -s)")
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    parser.add_argument("-t", dest="repeat", metavar="SECONDS", type=_seconds,
                        help="show it again every SECONDS until interrupted (LPRng's lpq -t;"
                             " 0: once)")
    parser.add_argument("-c", dest="clear", action="store_true",
                        help="clear the screen before each showing (LPRng's lpq -c)")
    parser.add_argument("select", nargs="*", metavar="USER|NUMBER|+SECONDS",
                        help="only these users' jobs and the jobs of these numbers (as lpq's"
                             " list); +SECONDS: show it again every SECONDS until no job is"
                             " left (BSD's and CUPS's lpq +interval; + alone: 10)")


def _seconds(text: str) -> float:
    """-t's seconds: a number, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        import argparse  # argparse reads a line that has a bad number (quickargs)
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


#: BSD lpq's pause for a bare ``+``.
PLUS_DEFAULT = 10.0


#: The width of the DETAIL column; longer details are cut between words.
DETAIL_WIDTH = 60


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)  # pragma: no cover


def human_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"


def cut_words(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut between words with ``...``; a first
    word longer than the width is kept whole rather than cut."""
    if len(text) <= width:
        return text
    kept = ""
    for word in text.split(" "):
        candidate = f"{kept} {word}" if kept else word
        if kept and len(candidate) + 4 > width:
            break
        kept = candidate
    if kept == text:  # one word, wider than the column
        return text
    return (kept.rstrip(" ,;:") or kept) + " ..."


def _clip(text: str, width: int) -> str:
    """A fixed-width column (user, name): cut, with ``~`` marking that it was."""
    return text if len(text) <= width else text[:width - 1] + "~"


def format_queue(data: QueueData, *, long: bool = False) -> str:
    """One queue as text: a table of its jobs, or with ``long`` a block per job."""
    lines = [f"Queue {visible(str(data['queue']))}: lp={visible(str(data['destination']))},"
             f" spool {visible(str(data['spool']))}", f"  log file: {_log_file(data)}"]
    if not data.get("readable", True):  # neither its lock nor its jobs can be looked at
        why = ("its journal is damaged (said below; 'lpfilter checkpc --fix' mends it)"
               if data.get("damaged") else
               f"you may not read its spool directory {visible(str(data['spool']))}")
        lines.append(f"  watcher and jobs not shown: {why}")
        return "\n".join(lines) + "\n"
    served = data["served_by"]
    if served:
        from lpfilter.spool.lease import served_by
        lines.append(f"  {served_by(served['pid'], served['purpose'])},"
                     f" up {human_age(served['uptime'])}")
    else:
        lines.append("  not served: no watcher runs for it (lpfilter print serves it itself)")
    if control_words(data.get("control")):  # lpc's state of the queue
        lines.append(f"  lpc: {control_words(data.get('control'))}")
    if data["printer_status"]:
        lines.append(f"  printer: {visible(str(data['printer_status']))}")
    if data.get("pool") or data.get("serving"):  # (its module only then: 0.3 ms)
        from lpfilter.commands import poolstatus
        lines.extend(poolstatus.lines(data))
    sessions = data.get("ftp_sessions")
    if sessions:
        used = sessions["in_use"]
        who = f" (pids {', '.join(str(h['pid']) for h in used)})" if used else ""
        lines.append(f"  FTP sessions to the server: {len(used)} of"
                     f" {sessions['limit']} in use{who}")
    jobs = data["jobs"]
    if data.get("error"):
        lines.append(f"  no spool directory: {visible(str(data['spool']))} does not exist, so no"
                     " job can be queued here")
        return "\n".join(lines) + "\n"
    if not jobs:
        lines.append("  no jobs")
    elif long:
        for job in jobs:
            lines.extend(_job_block(visible(str(data["queue"])), job))
    else:
        lines.extend(_job_table(jobs))
    return "\n".join(lines) + "\n"


def short_line(data: QueueData, entry: Entry) -> str:
    """``lpq -s``: ``q@host 2 jobs (1 held)`` and the lpc state after, as the print
    server's short answer writes them (server/status.short_text)."""
    from lpfilter.server.status import server_name, short_text
    where = f"{visible(str(data['queue']))}@{server_name(entry)}"
    if not data.get("readable", True):
        return f"{where}: jobs not shown: you may not read its spool directory\n"
    if data.get("error"):
        return f"{where}: no spool directory\n"
    return short_text(entry, [str(job["state"]) for job in data["jobs"]], lpc_flags(data))


#: What +N waits for: a held or failed job waits for someone, not for the printer.
_TO_PRINT = frozenset({str(JobState.QUEUED), str(JobState.ACTIVE)})


def _log_file(data: QueueData) -> str:
    """Where to look when a job went wrong (lf); say so when there is no such file."""
    if data["log_file"]:
        return visible(str(data["log_file"]))
    return "none (the printcap's lf names no file)"


def _job_table(jobs: list[JobData]) -> list[str]:
    """One line per job, fixed columns; only DETAIL, the last, may run long (cut_words)."""
    now = time.time()
    lines = [f"  {'JOB':<8} {'USER':<10} {'NAME':<24} {'SIZE':>10} {'STATE':<9}"
             f" {'TRIES':>5} {'AGE':>6}  DETAIL"]
    for job in jobs:
        state = str(job["state"]) + ("*" if job["possible_duplicate"] else "")
        lines.append(f"  {job['id']:<8} {_clip(visible(str(job['user'])), 10):<10}"
                     f" {_clip(visible(str(job['name'])), 24):<24}"
                     f" {human_size(job['size']):>10} {state:<9} {job['attempts']:>5}"
                     f" {human_age(now - job['submitted']):>6}"
                     f"  {cut_words(visible(job_detail(job)), DETAIL_WIDTH)}".rstrip())
    if any(job["possible_duplicate"] for job in jobs):
        lines.append("  * possible duplicate: it may have printed already (sent again after"
                     " bytes had reached the printer, or taken in again after a crash)")
    return lines


def _sending(job: JobData) -> str:
    """How far an active job's send has got: bytes and percent of size times copies
    (the worker records it in the ticket about once a second)."""
    sent = int(job.get("bytes_sent") or 0)
    total = int(job["size"]) * max(1, int(job.get("copies") or 1))
    percent = f" ({min(100, sent * 100 // total)}%)" if total > 0 else ""
    return f"{human_size(sent)} of {human_size(total)}{percent}"


def job_detail(job: JobData) -> str:
    """For an active job how far its send got; for a printed one how far the printer went
    (sent, or confirmed, and pages); else the last error."""
    if job["state"] == JobState.ACTIVE:
        return f"{_server_of(job)}sending: {_sending(job)}"
    if job["state"] == JobState.DONE and job.get("delivery"):
        pages = f", {job['pages']} pages" if job.get("pages") is not None else ""
        return f"{_server_of(job)}{job['delivery']}{pages}"
    return str(job.get("last_error") or "")


def _server_of(job: JobData) -> str:
    """"on Q: " for a pool's job that a server queue prints or printed ("" otherwise)."""
    extra = job.get("extra")
    server = extra.get("server") if isinstance(extra, dict) else None
    return f"on {visible(server)}: " if isinstance(server, str) and server else ""


def _when(seconds: float | None) -> str:
    """A time as the queue's log writes it, so the two can be matched; "-" for never."""
    from lpfilter.spool.records import stamp
    return stamp(float(seconds)) if seconds else "-"


def _next_try(job: JobData) -> str:
    """Only a queued job has a next try: "now", or when (a retry pause)."""
    if job["state"] != JobState.QUEUED:
        return "-"
    wait = float(job.get("next_try") or 0) - time.time()
    return f"{_when(job['next_try'])} (in {human_age(wait)})" if wait > 0 else "now"


def _job_block(queue: str, job: JobData) -> list[str]:
    """``status -l``: every detail of one job on its own line, nothing cut."""
    sent = int(job.get("bytes_sent") or 0)
    pages = job.get("pages")
    worker = job.get("worker")
    fields = [
        ("user", visible(str(job["user"]))),
        ("name", visible(str(job["name"]))),
        ("title", visible(str(job.get("title") or "")) or "-"),
        ("host", visible(str(job.get("host") or "")) or "-"),
        ("source", str(job.get("source") or "-")),
        ("size", f"{human_size(job['size'])} ({job['size']} bytes)"),
        ("copies", str(job.get("copies") or 1)),
        ("state", str(job["state"])),
        ("attempts", str(job["attempts"])),
        ("submitted", _when(job["submitted"])),
        ("started", _when(job.get("started"))),
        ("finished", _when(job.get("finished"))),
        ("next try", _next_try(job)),
        ("bytes sent", f"{sent} ({_sending(job)})" if job["state"] == JobState.ACTIVE
         else str(sent)),
        ("pages", "-" if pages is None else str(pages)),
        ("delivery", visible(str(job.get("delivery") or "")) or "-"),
        ("worker", f"pid {worker[0]}" if worker else "-"),
        ("possible duplicate", "yes" if job["possible_duplicate"] else "no"),
        ("last error", visible(str(job.get("last_error") or "")) or "-"),
    ]
    return [f"  job {queue}-{job['id']}"] + [f"    {label + ':':<20}{value}"
                                            for label, value in fields]


def _forwarded(entry: Entry, long: bool, select: Sequence[str]) -> str:
    """A forwarding queue's remote part, below its own jobs ("" for any other queue)."""
    from lpfilter.printcap.destination import Lpd
    if not isinstance(entry.destination(), Lpd):
        return ""  # (remotequeue's import, 0.3 ms, only for a queue sending to a server)
    from lpfilter.commands import remotequeue
    target = remotequeue.forwarding(entry)
    return "" if target is None else remotequeue.forwarded_status(entry, target, long=long,
                                                                  items=tuple(select))


def _through_daemon(ctx: Context, data: QueueData) -> QueueData:
    """A queue whose jobs this user may not read: the print server's view of it, else
    what was seen, its error saying that no server runs and how to start one."""
    if data["readable"]:
        return data  # the common case: no need for the client's imports
    from lpfilter.commands import daemonclient
    from lpfilter.errors import AccessError, LpfilterError
    if not daemonclient.may_help(data["spool"]):
        return data
    why = AccessError(str(data["error"]), queue=data["queue"])
    try:
        return daemonclient.status(ctx.environ, data["queue"], why)
    except LpfilterError as exc:  # no daemon, or it does not serve the queue
        return {**data, "error": str(exc)}


def queue_view(ctx: Context, entry: Entry, locks: str) -> QueueData:
    """The queue's status: read from its spool, or the print server's (_through_daemon);
    a spool whose journal is closed to the user from the server first (reading it here
    would only fail, after the store's modules: ~4 ms), and read here only when none
    answers (its error is said as it was)."""
    if closed_to_me(entry.string("sd") or "", write=False):
        from lpfilter.commands import daemonclient
        from lpfilter.errors import AccessError, LpfilterError
        why = AccessError(f"queue {entry.name}: its spool is closed to you", queue=entry.name)
        try:
            return daemonclient.status(ctx.environ, entry.name, why)
        except daemonclient.NoDaemon:
            pass  # the spool's read says why one was needed, and asks again
        except LpfilterError as exc:  # it answered (it serves no such queue): not asked twice
            return {**queue_status(entry, locks), "error": str(exc)}
    return _through_daemon(ctx, queue_status(entry, locks))


def run(ctx: Context) -> ExitStatus:
    """Once; with -t again every so many seconds until interrupted; with +N until no job
    is left (each showing reads the spools anew)."""
    args = ctx.args
    select, pause, until_empty = _repeat(args.select, args.repeat)
    if pause and args.json:
        from lpfilter.errors import UsageError
        raise UsageError("--json shows the queues once: run it again for each look")
    head = "\033[H\033[2J" if args.clear else ""  # written with the showing: no flicker
    while True:
        try:
            status, left = _show(ctx, select, until_empty, head)
        except TransientError as exc:  # a server that did not answer this time
            if not pause:
                raise
            from lpfilter.commands.exits import for_error
            print(f"lpfilter: {visible(str(exc))}; looking again in {pause:g} s",
                  file=sys.stderr)
            status, left = for_error(exc), 1
        if not pause or (until_empty and not left):
            return status
        ctx.stdout.flush()
        time.sleep(pause)


def _repeat(items: list[str], repeat: float | None) -> tuple[list[str], float, bool]:
    """lpq's list without its ``+N``; the pause between showings (0: show once); whether
    to stop when no job is left (+N) rather than only when interrupted (-t)."""
    plus = [item for item in items if item == "+" or (
        item[:1] == "+" and item[1:].isascii() and item[1:].isdigit())]  # (not "+²")
    if not plus:
        return items, repeat or 0.0, False
    from lpfilter.errors import UsageError
    if repeat is not None or len(plus) > 1:
        raise UsageError(f"{' '.join(plus)}: one pause, please (+SECONDS, or -t SECONDS)")
    pause = float(plus[0][1:]) if plus[0] != "+" else PLUS_DEFAULT
    if pause <= 0:
        raise UsageError(f"{plus[0]}: the pause must be 1 second or more")
    return [item for item in items if item not in plus], pause, True


def _show(ctx: Context, select: list[str], counted: bool,
          head: str) -> tuple[ExitStatus, int]:
    """One showing; the exit status and how many jobs are queued or printing (+N stops
    at none)."""
    args = ctx.args
    lpq = args.command == "lpq" and not (args.long or args.short or args.json)  # (lpqview)
    name = None if args.all else ctx.queue(args.printer)
    if name and "@" in name:  # -P queue@host: the server's answer, as lpq shows it
        from lpfilter.commands import remotequeue
        remote = remotequeue.remote_queue(name)
        if remote is not None:
            if counted:
                from lpfilter.errors import UsageError
                raise UsageError(f"+SECONDS stops when no job is left, which another server's"
                                 f" free text does not say: -t SECONDS repeats"
                                 f" {visible(remote.display())}'s answer")
            ctx.stdout.write(head)
            return remotequeue.status(ctx, remote, select, long=args.long or lpq), 0
    printcap = ctx.printcap()
    every = args.all or printcap.means_every(name)
    names = printcap.queue_names() if every else [ctx.queue(args.printer)]
    from lpfilter.commands.environment import lock_dir
    locks = lock_dir(ctx.environ)
    entries = [printcap.lookup(name) for name in names]
    whole = data = [queue_view(ctx, entry, locks) for entry in entries]
    if select:
        data = [{**d, "jobs": [j for j in d["jobs"] if picked(j, select)]} for d in data]
    if args.json:
        import json
        text = json.dumps(data if every else data[0], indent=2, ensure_ascii=False) + "\n"
    else:  # (-a asks no server: a client printcap may forward hundreds of queues)
        if lpq:
            from lpfilter.commands import lpqview
        text = "".join((lpqview.table(w, entry, select) if lpq else short_line(d, entry)
                        if args.short else format_queue(d, long=args.long))
                       + ("" if every else _forwarded(entry, args.long or lpq, select))
                       for d, w, entry in zip(data, whole, entries, strict=True))
    ctx.stdout.write(head + printable(text))
    errors = [str(d["error"]) for d in data if d.get("error")]
    for error in errors:
        print(f"lpfilter: {visible(error)}", file=sys.stderr)
    left = sum(1 for d in data for job in d["jobs"] if str(job["state"]) in _TO_PRINT)
    return ExitStatus.ACCESS if errors else ExitStatus.OK, left
