"""``lpfilter status`` (alias ``lpq``): each queue's watcher, printer message and jobs."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from lpfilter.status import ExitStatus

if TYPE_CHECKING:
    from lpfilter.cli import Context
    from lpfilter.printcap import Entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-P", dest="printer", metavar="QUEUE", help="the queue to show")
    which.add_argument("--all", action="store_true", help="every queue")
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")


def human_size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
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


def ftp_sessions(entry: Entry, lock_dir: str) -> dict[str, object] | None:
    """For an FTP queue: the server's session slots and who holds them (psutil tells a
    live holder from a dead one), across every lpfilter process of this lock directory."""
    destination = entry.destination()
    if destination.kind != "ftp":
        return None
    from lpfilter.backends.ftpsession import slot_paths
    from lpfilter.spool.locks import current_holder
    limit = max(1, entry.number("ftp_sessions"))
    paths = slot_paths(lock_dir, destination.host, destination.port,  # type: ignore[union-attr]
                       limit)
    holders = [h for h in map(current_holder, paths) if h is not None]
    return {"limit": limit, "in_use": [{"pid": h.pid, "purpose": h.purpose, "since": h.since}
                                       for h in holders]}


def queue_status(entry: Entry, lock_dir: str = "") -> dict[str, object]:
    """Everything status shows about one queue, as plain data."""
    from lpfilter.spool.locks import current_holder
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore
    from lpfilter.errors import AccessError
    store = SpoolStore(entry.string("sd") or "", entry.name)
    try:
        store.require_dir()
        error = None
    except AccessError as exc:
        error = str(exc)  # reported (exit 5), not shown as an empty queue
    holder = current_holder(os.path.join(store.state, "queue.lock"))
    served = None
    if holder is not None:
        served = {"pid": holder.pid, "purpose": holder.purpose, "since": holder.since,
                  "uptime": round(time.time() - holder.start, 1)}
    return {"queue": entry.name, "destination": entry.destination().display(),
            "spool": store.sd, "served_by": served,
            "printer_status": QueueRecords(entry).last_status(),
            "ftp_sessions": ftp_sessions(entry, lock_dir) if lock_dir else None,
            "error": error, "jobs": [job.to_dict() for job in store.jobs()]}


def format_queue(data: dict[str, object]) -> str:
    now = time.time()
    lines = [f"Queue {data['queue']}: lp={data['destination']}, spool {data['spool']}"]
    served = data["served_by"]
    if served:
        lines.append(f"  served by pid {served['pid']} ({served['purpose']}),"  # type: ignore[index]
                     f" up {human_age(served['uptime'])}")  # type: ignore[index]
    else:
        lines.append("  not served: no watcher runs for it (lpfilter print serves it itself)")
    if data["printer_status"]:
        lines.append(f"  printer: {data['printer_status']}")
    sessions = data.get("ftp_sessions")
    if sessions:
        used = sessions["in_use"]  # type: ignore[index]
        who = f" (pids {', '.join(str(h['pid']) for h in used)})" if used else ""
        lines.append(f"  FTP sessions to the server: {len(used)} of"
                     f" {sessions['limit']} in use{who}")  # type: ignore[index]
    jobs = data["jobs"]
    if data.get("error"):
        lines.append(f"  no spool directory: {data['spool']} does not exist, so no job can be"
                     " queued here")
        return "\n".join(lines) + "\n"
    if not jobs:
        lines.append("  no jobs")
        return "\n".join(lines) + "\n"
    lines.append(f"  {'JOB':<8} {'USER':<10} {'NAME':<24} {'SIZE':>10} {'STATE':<9}"
                 f" {'TRIES':>5} {'AGE':>6}  DETAIL")
    for job in jobs:  # type: ignore[attr-defined]
        state = job["state"] + ("*" if job["possible_duplicate"] else "")
        lines.append(f"  {job['id']:<8} {job['user'][:10]:<10} {job['name'][:24]:<24}"
                     f" {human_size(job['size']):>10} {state:<9} {job['attempts']:>5}"
                     f" {human_age(now - job['submitted']):>6}  {_detail(job)[:60]}")
    if any(job["possible_duplicate"] for job in jobs):  # type: ignore[attr-defined]
        lines.append("  * possible duplicate: retried after bytes had reached the printer")
    return "\n".join(lines) + "\n"


def _detail(job: dict[str, object]) -> str:
    """The last error, or for a printed job how far it got: sent, or confirmed (and pages)."""
    if job["state"] == "done" and job.get("delivery"):
        pages = f", {job['pages']} pages" if job.get("pages") is not None else ""
        return f"{job['delivery']}{pages}"
    return str(job.get("last_error") or "")


def run(ctx: Context) -> ExitStatus:
    from lpfilter.printcap.source import printable
    args = ctx.args
    printcap = ctx.printcap()
    names = (printcap.queue_names() if args.all
             else [ctx.queue(args.printer)])
    from lpfilter.config import lock_dir
    locks = lock_dir(ctx.environ)
    data = [queue_status(printcap.lookup(name), locks) for name in names]
    if args.json:
        import json
        text = json.dumps(data if args.all else data[0], indent=2, ensure_ascii=False) + "\n"
    else:
        text = "".join(format_queue(d) for d in data)
    ctx.stdout.write(printable(text))  # type: ignore[attr-defined]
    errors = [str(d["error"]) for d in data if d.get("error")]
    for error in errors:
        print(f"lpfilter: {printable(error)}", file=sys.stderr)
    return ExitStatus.ACCESS if errors else ExitStatus.OK
