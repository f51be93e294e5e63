"""``cancel`` (alias ``lprm``), ``requeue``, ``hold``, ``release``: change jobs' states.

Each change is made under the queue's ticket lock, so it never crosses a worker's. A job
being printed is stopped safely by its worker (``cancel`` leaves it a request); ``hold``
and ``requeue`` leave an active job alone. Users other than root act on their own jobs.

Which jobs, as LPRng's lprm and CUPS' cancel take them: ``q-000012`` names its queue (the
printcap name before the last ``-``), ``12`` is a job of the ``-P`` queue, ``-`` or ``all``
(or ``--all``) is every job of the user (root: every job), and ``-a`` every queue.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lpfilter.status import ExitStatus

if TYPE_CHECKING:
    from lpfilter.commands.environment import Context
    from lpfilter.job import Job
    from lpfilter.printcap import Entry, Printcap
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore

#: ``QUEUE-NNNNNN``: a job id with its queue (a queue name may have ``-`` in it).
_QUEUE_ID = re.compile(r"(?s)(.+)-([0-9]+)")
_PLAIN = re.compile(r"[0-9]+")
#: Words that mean "every job" (of the user), as lprm's ``-`` and LPRng's ``all``.
EVERY = ("-", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-P", dest="printer", metavar="QUEUE",
                        help="the queue (default: PRINTER, LPDEST, first printer)")
    parser.add_argument("-a", dest="all_queues", action="store_true",
                        help="every queue of the printer list (as LPRng's lprm -a)")
    parser.add_argument("--all", action="store_true",
                        help="every job of the queue (as the id - or all)")
    parser.add_argument("ids", nargs="*", metavar="ID",
                        help="job ids as print shows them (lp-000012: job 12 of queue lp;"
                             " 000012 or 12: of the -P queue), or - or all: every job")


@dataclass
class _Target:
    """The jobs to act on in one queue."""

    entry: Entry
    #: Numbers named with this queue (q-000012), or plain ones without -a: must exist.
    named: set[int] = field(default_factory=set)
    #: Plain numbers with -a: looked for in every queue.
    anywhere: set[int] = field(default_factory=set)
    every: bool = False


def _queue_of(text: str, printcap: Printcap) -> tuple[Entry, int] | None:
    """The queue and number of ``q-000012`` (None: not of that form); the queue must be
    in the printcap (names, aliases, glob names), else it is a clear error."""
    from lpfilter.errors import NoSuchPrinter
    from lpfilter.text import visible
    match = _QUEUE_ID.fullmatch(text)
    if match is None:
        return None
    try:
        entry = printcap.lookup(match.group(1))
    except NoSuchPrinter:
        raise NoSuchPrinter(f"{visible(text)}: no queue named '{visible(match.group(1))}' in"
                            " the printcap (lpfilter status -a lists the queues)",
                            queue=match.group(1)) from None
    return entry, int(match.group(2))


def _targets(ctx: Context, action: str) -> list[_Target]:
    """The queues and jobs the command line names, checked before anything changes."""
    from lpfilter.errors import UsageError
    from lpfilter.text import visible
    args = ctx.args
    every = args.all or any(i in EVERY for i in args.ids)
    ids = [i for i in args.ids if i not in EVERY]
    if not ids and not every:
        raise UsageError(f"{action}: name the jobs (their ids) or give --all")
    if args.all_queues and args.printer:
        raise UsageError(f"{action}: -a (every queue) and -P {args.printer} do not go"
                         " together")
    printcap = ctx.printcap()
    plain = {int(i) for i in ids if _PLAIN.fullmatch(i)}
    queued = {i: _queue_of(i, printcap) for i in ids if not _PLAIN.fullmatch(i)}
    bad = [i for i, found in queued.items() if found is None]
    if bad:
        raise UsageError(f"not a job id: {visible(', '.join(bad))} (write it as print showed"
                         f" it, e.g. {_example(ctx)}-000012)")
    targets: dict[str, _Target] = {}
    if args.all_queues:
        for name in printcap.queue_names():  # as watch and status: no names nothing defines
            entry = printcap.lookup(name)
            targets[entry.name] = _Target(entry, anywhere=set(plain), every=every)
    elif plain or every:
        entry = printcap.lookup(ctx.queue(args.printer))
        targets[entry.name] = _Target(entry, named=set(plain), every=every)
    for entry, number in filter(None, queued.values()):
        targets.setdefault(entry.name, _Target(entry)).named.add(number)
    return list(targets.values())


def _example(ctx: Context) -> str:
    from lpfilter.errors import LpfilterError
    try:
        return ctx.queue(ctx.args.printer)
    except LpfilterError:
        return "lp"


def _change(store: SpoolStore, records: QueueRecords, job: Job, action: str) -> str:
    """Apply ``action`` to one job; returns what happened, for the user."""
    import time

    from lpfilter.job import FINISHED, JobState
    from lpfilter.locks import process_alive
    if action == "cancel":
        if job.state == JobState.ACTIVE and job.worker and process_alive(*job.worker):
            store.request_cancel(job.id)
            return "being printed: its worker stops it and removes it"
        if job.state in FINISHED:
            if store.has_data(job):
                store.remove(job)
                return f"removed (it was {job.state}; its saved data is deleted)"
            return f"already {job.state}"
        job.move_to(JobState.CANCELLED)
        job.finished = job.started = time.time()
        store.remove(job)
        records.account(job, JobState.CANCELLED)
        records.log("cancelled", job)
        return "cancelled"
    if job.state == JobState.ACTIVE:
        return "being printed; only cancel can stop it"
    if action == "hold":
        if job.state != JobState.QUEUED:
            return f"not queued ({job.state})"
        job.move_to(JobState.HELD)
    elif action == "release":
        if job.state != JobState.HELD:
            return f"not held ({job.state})"
        job.move_to(JobState.QUEUED)
        job.next_try = 0.0
    else:  # requeue
        if job.state not in (JobState.FAILED, JobState.HELD) and job.state not in FINISHED:
            return f"already {job.state}"
        if not store.has_data(job):
            return "its data is gone (keep it with save_when_done / save_on_error)"
        job.move_to(JobState.QUEUED)
        job.attempts, job.next_try, job.finished = 0, 0.0, None
    # Held, released or queued again, the job starts a new wait: "printer unreachable
    # since" must not date from before (a job held last week would date it for all).
    job.unreachable_since, job.unreachable_tries = 0.0, 0
    store.write(job)
    store.clear_cancel(job.id)
    return {"hold": "held", "release": "released", "requeue": "queued again"}[action]


def run(ctx: Context) -> ExitStatus:
    from lpfilter.commands import remotequeue
    from lpfilter.job import user_name
    action = {"lprm": "cancel"}.get(ctx.args.action, ctx.args.action)
    default = None if ctx.args.all_queues else (ctx.environ.get("PRINTER")
                                                or ctx.environ.get("LPDEST"))
    remote = remotequeue.remote_queue(ctx.args.printer or default)
    if remote is not None:
        if action != "cancel":
            from lpfilter.errors import UsageError
            raise UsageError(f"{action}: {remote.display()} is another server's queue;"
                             " only cancel reaches it")
        return remotequeue.cancel(ctx, remote)
    targets = _targets(ctx, action)
    me, root = user_name(os.getuid()), os.getuid() == 0
    status = ExitStatus.OK
    found: set[int] = set()
    for target in targets:
        queue_status, seen = _apply(ctx, target, action, me, root)
        status, found = max(status, queue_status), found | seen
    for number in sorted({n for t in targets for n in t.anywhere} - found):
        print(f"lpfilter: job {number:06d}: no such job in any queue", file=sys.stderr)
        status = max(status, ExitStatus.FAILURE)
    return status


def _apply(ctx: Context, target: _Target, action: str, me: str,
           root: bool) -> tuple[ExitStatus, set[int]]:
    """Act on one queue's chosen jobs; returns the exit status and the numbers found."""
    from lpfilter.job import FINISHED
    from lpfilter.spool.lease import served
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore
    from lpfilter.spool.waiting import how_it_prints
    from lpfilter.text import visible
    entry = target.entry
    queue = visible(entry.name)  # a pattern entry takes the name given on the command line
    store = SpoolStore(entry.string("sd") or "", entry.name)
    if ctx.args.all_queues and not os.access(store.jobs_dir, os.R_OK | os.X_OK):
        return ExitStatus.OK, set()  # -a: a queue that never had a job (or none of yours)
    store.ensure("change")
    records = QueueRecords(entry)
    status = ExitStatus.OK
    seen: set[int] = set()
    with store.tickets_locked():
        for job in store.jobs():
            number = int(job.id)
            named = number in target.named or number in target.anywhere
            if not named and not target.every:
                continue
            if not named and job.state in FINISHED and not store.has_data(job):
                continue  # a finished ticket kept for status: nothing to do, nothing to say
            seen.add(number)
            if not root and job.user != me:
                if named:
                    print(f"lpfilter: {queue}-{job.id}: not your job"
                          f" ({visible(job.user)}'s)", file=sys.stderr)
                    status = max(status, ExitStatus.ACCESS)
                continue
            said = _change(store, records, job, action)
            if said in ("released", "queued again") and not served(store.state):
                said += f", but no watcher serves {queue} now: {how_it_prints(queue)}"
            print(f"{queue}-{job.id}: {said}", file=ctx.stdout)
    for number in sorted(target.named - seen):
        print(f"lpfilter: {queue}-{number:06d}: no such job", file=sys.stderr)
        status = max(status, ExitStatus.FAILURE)
    return status, seen
