"""``cancel`` (alias ``lprm``), ``requeue``, ``hold``, ``release``: change jobs' states.

Each change is made under the queue's ticket lock, so it never crosses a worker's. A job
being printed is stopped safely by its worker (``cancel`` leaves it a request); ``hold``
and ``requeue`` leave an active job alone. Users other than root act on their own jobs.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from lpfilter.status import ExitStatus

if TYPE_CHECKING:
    from lpfilter.cli import Context
    from lpfilter.spool.job import Job
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-P", dest="printer", metavar="QUEUE",
                        help="the queue (default: PRINTER, LPDEST, first printer)")
    parser.add_argument("--all", action="store_true", help="every job of the queue")
    parser.add_argument("ids", nargs="*", metavar="ID",
                        help="job ids as print shows them (lp-000012, 000012 or 12)")


def _number(text: str, names: list[str]) -> int | None:
    """A job number from ``lp-000012``, ``000012`` or ``12`` (any name of the queue)."""
    for name in names:
        if text.lower().startswith(f"{name.lower()}-"):
            text = text[len(name) + 1:]
            break
    return int(text) if text.isdigit() else None


def _change(store: SpoolStore, records: QueueRecords, job: Job, action: str) -> str:
    """Apply ``action`` to one job; returns what happened, for the user."""
    import time

    from lpfilter.spool.job import ACTIVE, CANCELLED, FAILED, FINISHED, HELD, QUEUED
    from lpfilter.spool.locks import process_alive
    if action == "cancel":
        if job.state == ACTIVE and job.worker and process_alive(*job.worker):
            store.request_cancel(job.id)
            return "being printed: its worker stops it and removes it"
        if job.state in FINISHED:
            if store.has_data(job):
                store.remove(job)
                return f"removed (it was {job.state}; its saved data is deleted)"
            return f"already {job.state}"
        job.state = CANCELLED
        job.finished = job.started = time.time()
        store.remove(job)
        records.account(job, CANCELLED)
        records.log("cancelled", job)
        return "cancelled"
    if job.state == ACTIVE:
        return "being printed; only cancel can stop it"
    if action == "hold":
        if job.state != QUEUED:
            return f"not queued ({job.state})"
        job.state = HELD
    elif action == "release":
        if job.state != HELD:
            return f"not held ({job.state})"
        job.state = QUEUED
        job.next_try = 0.0
    else:  # requeue
        if job.state not in (FAILED, HELD) and job.state not in FINISHED:
            return f"already {job.state}"
        if not store.has_data(job):
            return "its data is gone (keep it with save_when_done / save_on_error)"
        job.state, job.attempts, job.next_try, job.finished = QUEUED, 0, 0.0, None
    store.write(job)
    store.clear_cancel(job.id)
    return {"hold": "held", "release": "released", "requeue": "queued again"}[action]


def run(ctx: Context) -> ExitStatus:
    from lpfilter.errors import UsageError
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore
    from lpfilter.spool.job import user_name
    from lpfilter.spool.waiting import how_it_prints, served
    args = ctx.args
    action = {"lprm": "cancel"}.get(args.action, args.action)
    if not args.ids and not args.all:
        raise UsageError(f"{action}: name the jobs (their ids) or give --all")
    entry = ctx.printcap().lookup(ctx.queue(args.printer))
    store = SpoolStore(entry.string("sd") or "", entry.name)
    store.ensure()
    records = QueueRecords(entry)
    names = [entry.name, *entry.names, *([args.printer] if args.printer else [])]
    wanted = {_number(i, names) for i in args.ids}
    if None in wanted:
        bad = ", ".join(i for i in args.ids if _number(i, names) is None)
        raise UsageError(f"not a job id: {bad} (write it as print showed it, e.g."
                         f" {entry.name}-000012)")
    me, root = user_name(os.getuid()), os.getuid() == 0
    status = ExitStatus.OK
    seen: set[int] = set()
    with store.tickets_locked():
        for job in store.jobs():
            if not args.all and int(job.id) not in wanted:
                continue
            seen.add(int(job.id))
            if not root and job.user != me:
                if not args.all:
                    print(f"lpfilter: {entry.name}-{job.id}: not your job ({job.user}'s)",
                          file=sys.stderr)
                    status = ExitStatus.ACCESS
                continue
            said = _change(store, records, job, action)
            if said in ("released", "queued again") and not served(store.state):
                said += f", but no watcher serves {entry.name} now: {how_it_prints(entry.name)}"
            print(f"{entry.name}-{job.id}: {said}", file=ctx.stdout)  # type: ignore[arg-type]
    for number in sorted(wanted - seen):  # type: ignore[operator]
        print(f"lpfilter: {entry.name}-{number:06d}: no such job", file=sys.stderr)
        status = ExitStatus.FAILURE
    return status
