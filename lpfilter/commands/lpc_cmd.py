"""``lpfilter lpc COMMAND [ARG ...]``: queue control as LPRng's lpc, and the same words as
commands of their own (``lpfilter stop q``) where lpfilter has no command of that name.

Queue-wide words (``stop``/``start`` printing, ``disable``/``enable`` spooling,
``down``/``up`` both, ``holdall``/``noholdall``, ``redirect``, ``move``, ``topq``,
``reread``) are for root and the spool's owner; ``hold`` and ``release`` also for an
ordinary user, on their own jobs (through the print server's Unix socket when the user may
not write the spool). Queues are named as lpc takes them: ``stop q r``, ``stop all``,
``-P q``, ``-a``; jobs by number, user name or ``all``. A ``queue@host[%port]`` is
another server's: the request goes there as LPRng's lpc sends it, and its answer is shown.

The output follows LPRng's lpc (``Printer: q@host``, then ``q@host: stopped``); the exit
status is lpfilter's (0, or the worst of: 1 a job not found, 2 usage, 4 no such queue,
5 not permitted).
"""
from __future__ import annotations

import argparse
import os
import sys

from lpfilter.status import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from lpfilter.commands.environment import Context
    from lpfilter.errors import LpfilterError
    from lpfilter.printcap import Entry
    from lpfilter.spool.jobctl import Outcome, Selection
    from lpfilter.spool.store import SpoolStore

QUEUE_WORDS = ("stop", "start", "disable", "enable", "down", "up", "holdall", "noholdall",
               "abort", "kill")
JOB_WORDS = ("hold", "release", "topq")
#: LPRng's lpc words that run another client (``lpc lpq q``): lpfilter's command for it.
PASSED = {"lpq": "lpq", "lprm": "cancel", "printcap": "printcap", "redo": "requeue"}
WORDS = ("status", *QUEUE_WORDS, *JOB_WORDS, "move", "redirect", "reread", *PASSED, "help")
#: ``lpc help``: each word, what it takes and does.
HELP = {"status": "[queue ...|all]: printing, spooling, jobs, server, redirect",
        "stop": "[queue ...|all]: stop printing (a job being printed ends first)",
        "start": "[queue ...|all]: start printing again",
        "disable": "[queue ...|all]: refuse new jobs", "enable": "[queue ...|all]: take them",
        "down": "[queue ...|all]: stop and disable", "up": "[queue ...|all]: start and enable",
        "holdall": "[queue ...|all]: hold every new job", "noholdall": "[queue ...|all]: no more",
        "abort": "[queue ...|all]: stop, and put the job being printed back in the queue",
        "kill": "[queue ...|all]: put the job being printed back, and start (it prints again)",
        "hold": "queue [job ...|user ...|all]: hold jobs (none: the first)",
        "release": "queue [job ...]: release (none: the first held)",
        "topq": "queue job ...: put jobs at the head of the queue",
        "move": "queue job ... target: move jobs to another queue",
        "redirect": "queue target|off: send the queue's jobs to another queue",
        "reread": "make the daemon read the printcap again",
        "lpq": "[queue] [user|number ...]: lpfilter lpq (LPRng's table)",
        "lprm": "[queue] job ...|all: lpfilter cancel (lprm)",
        "printcap": "[queue]: the queue's printcap entry",
        "redo": "queue job ...|all: queue failed or held jobs again (lpfilter requeue)",
        "help": "this list"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-P", dest="printer", metavar="QUEUE",
                        help="the queue (queue@host: another server's); default: PRINTER,"
                             " LPDEST, the first printer")
    parser.add_argument("-a", dest="all_queues", action="store_true",
                        help="every queue (as LPRng's lpc -a)")
    if parser.prog.split()[-1] == "lpc":
        parser.add_argument("word", metavar="COMMAND", choices=WORDS, nargs="?",
                            help=f"one of: {', '.join(WORDS)}; none: the commands are read"
                                 " from standard input, one line each, until quit or its end"
                                 " (lpc> prompts a terminal)")
    parser.add_argument("operands", nargs="*", metavar="ARG",
                        help="queues (or all); for hold, release, topq and move the queue,"
                             " then jobs: numbers, user names or all; move ends with the"
                             " target queue; redirect takes the target queue or off")


def run(ctx: Context) -> ExitStatus:
    args = ctx.args
    word = args.word if args.action == "lpc" else args.action
    operands = list(args.operands)
    if word == "help":
        print("".join(f"  {w:<10} {HELP[w]}\n" for w in WORDS), end="", file=ctx.stdout)
        return ExitStatus.OK
    if word in PASSED:
        return _pass_on(ctx, word, operands)
    remote = _remote(ctx, word, operands)
    if remote is not None:
        return remote
    if word == "status":
        return _status(ctx, operands)
    if word == "reread":
        from lpfilter.commands import reread
        return reread.run(ctx)
    if word in QUEUE_WORDS:
        failed: list[LpfilterError] = []
        _each(ctx, operands, lambda entry: _queue_word(ctx, word, entry), failed)
        return _done(failed)
    return _job_word(ctx, word, operands)


def _pass_on(ctx: Context, word: str, operands: list[str]) -> ExitStatus:
    """lpc's lpq, lprm, printcap and redo: lpfilter's own command (``PASSED``) for the
    queue (-P, else the first argument) and the rest of the arguments, as LPRng's lpc runs
    its clients; its usage errors are its own (exit status 2)."""
    from lpfilter.commands.environment import Context
    from lpfilter.commands.parser import build_parser
    from lpfilter.commands.registry import command_module
    queue = ctx.args.printer or (operands.pop(0) if operands else None)
    argv = [PASSED[word], *(["-P", queue] if queue else []), *operands]
    if ctx.args.printcap:
        argv[1:1] = ["--printcap", ctx.args.printcap]
    try:
        args = build_parser(lazy=True).parse_args(argv)
    except SystemExit as exc:  # argparse said what was wrong (or printed help)
        return ExitStatus(int(exc.code or 0))
    args.debug, args.verbose = ctx.args.debug, ctx.args.verbose
    return ExitStatus(command_module(args.module).run(Context(args, ctx.environ, ctx.stdout)))


def _each(ctx: Context, names: list[str], act: Callable[[Entry], None],
          failed: list[LpfilterError]) -> None:
    """``act`` on each queue named (``all``: the printer list), else -P's (-a: every
    queue), each by itself as LPRng's lpc: a queue not found or refused goes to
    ``failed`` and the others are still done (``_done`` raises them)."""
    from lpfilter.errors import LpfilterError
    printcap = ctx.printcap()
    if ctx.args.all_queues or names == ["all"]:
        names = printcap.queue_names()
    for name in names or [ctx.queue(ctx.args.printer)]:
        try:
            act(printcap.lookup(name))
        except LpfilterError as exc:
            failed.append(exc)


def _done(failed: list[LpfilterError]) -> ExitStatus:
    """After every queue was tried: what failed, raised for the command's edge to say
    (each on one line, the worst status: ``errors.Several``)."""
    from lpfilter.errors import Several
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise Several(failed)
    return ExitStatus.OK


def _host(entry: Entry) -> str:
    from lpfilter.server.status import server_name
    from lpfilter.text import visible
    return f"{visible(entry.name)}@{server_name(entry)}"


def _owned(entry: Entry, word: str) -> SpoolStore:
    """The queue's spool, for a queue-wide word: only root and the spool's owner."""
    from lpfilter.errors import AccessError
    from lpfilter.spool.store import SpoolStore
    store = SpoolStore(entry.string("sd") or "", entry.name)
    try:
        store.ensure("change")
    except AccessError as exc:
        if not os.path.isdir(store.sd) or os.geteuid() == 0:
            raise
        raise AccessError(f"lpc {word}: queue {entry.name}: only root and the owner of its"
                          f" spool directory {store.sd} may do it ({exc})",
                          queue=entry.name) from None
    return store


def _queue_word(ctx: Context, word: str, entry: Entry) -> None:
    from lpfilter.spool.lpcops import SAID, change
    store = _owned(entry, word)
    try:
        change(store, word)
    finally:
        store.close()
    print(f"Printer: {_host(entry)}\n{_host(entry)}: {SAID[word]}", file=ctx.stdout)


def _job_word(ctx: Context, word: str, operands: list[str]) -> ExitStatus:
    """hold, release, topq, move, redirect: the queue (-P, else the first argument),
    then the jobs (or, for redirect, the target)."""
    from lpfilter.errors import UsageError
    if not ctx.args.printer:
        if not operands:
            raise UsageError(f"lpc {word}: name the queue (and the jobs)")
        ctx.args.printer = operands.pop(0)
    entry = ctx.printcap().lookup(ctx.queue(ctx.args.printer))
    if word == "redirect":
        return _redirect(ctx, entry, operands)
    target = None
    if word == "move":
        if len(operands) < 2:
            raise UsageError("lpc move: name the queue, the jobs and the target queue")
        target = ctx.printcap().lookup(operands.pop())
    if not operands and word not in ("hold", "release"):  # (those: the first job, LPRng's)
        raise UsageError(f"lpc {word}: name the jobs (numbers, user names) or all")
    numbers, users, every = _jobs(entry, operands)
    if word in ("hold", "release"):
        from lpfilter.spool.jobctl import Selection
        outcomes = _hold(ctx, entry, word, Selection(
            named=numbers, users=users, every=every, first=not operands))
        if not operands and not outcomes:
            from lpfilter.text import visible
            which = "queued job" if word == "hold" else "held job"
            print(f"Printer: {_host(entry)}", file=ctx.stdout)
            print(f"lpfilter: no {which} in queue {visible(entry.name)} that you may {word}",
                  file=sys.stderr)
            return ExitStatus.FAILURE
    else:
        outcomes = _reorder(entry, word, target, numbers, users, every)
    return _show(ctx, entry, outcomes)


def _jobs(entry: Entry, words: list[str]) -> tuple[set[int], set[str], bool]:
    """lpc's job words: numbers (``12`` or ``q-000012``), ``all``, else user names."""
    numbers: set[int] = set()
    users: set[str] = set()
    for word in words:
        number = word.rpartition("-")[2] if word.startswith(f"{entry.name}-") else word
        if number.isascii() and number.isdigit():
            numbers.add(int(number))
        elif word != "all":
            users.add(word)
    return numbers, users, "all" in words


def _hold(ctx: Context, entry: Entry, word: str, asked: Selection) -> list[Outcome]:
    """hold or release: as the spool's owner here, else through the print server (the
    user's own jobs: their own name counts as all, another's name is refused). ``asked``:
    numbers, users, all, or (no job word) the first job the word changes."""
    from lpfilter.commands import daemonclient
    from lpfilter.errors import AccessError
    from lpfilter.job import user_name
    from lpfilter.spool import lpcops
    from lpfilter.spool.jobctl import Outcome, Selection, act
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore
    me, root = user_name(os.getuid()), os.getuid() == 0
    store = SpoolStore(entry.string("sd") or "", entry.name)
    try:
        store.ensure("change")
    except AccessError as exc:
        if root or not daemonclient.may_help(store.sd):
            raise
        others = [Outcome(0, "not_yours", "", u) for u in sorted(asked.users - {me})]
        chosen = Selection(named=asked.named, every=asked.every or me in asked.users,
                           first=asked.first)
        if not chosen.named and not chosen.every and not chosen.first:
            return others
        return daemonclient.control(ctx.environ, entry.name, word, chosen, exc) + others
    records = QueueRecords(entry)
    try:
        chosen = lpcops.selection(store, asked.named, asked.users, asked.every)
        chosen.first = asked.first
        return act(store, records, chosen, word, me, True)
    finally:
        records.close()
        store.close()


def _reorder(entry: Entry, word: str, target: Entry | None, numbers: set[int],
             users: set[str], every: bool) -> list[Outcome]:
    """topq and move: the spool's owner (or root) only."""
    from lpfilter.errors import UsageError
    from lpfilter.job import user_name
    from lpfilter.spool import lpcops
    from lpfilter.spool.records import QueueRecords
    store = _owned(entry, word)
    records = QueueRecords(entry)
    try:
        chosen = lpcops.selection(store, numbers, users, every)
        if target is None:
            return lpcops.topq(store, chosen, user_name(os.getuid()), True)
        if target.name == entry.name:
            raise UsageError(f"lpc move: the jobs are in {entry.name} already")
        into = _owned(target, word)
        try:
            return lpcops.move(store, records, chosen, into, user_name(os.getuid()), True,
                               keep=target.number("minfree") * 1024)
        finally:
            into.close()
    finally:
        records.close()
        store.close()


def _redirect(ctx: Context, entry: Entry, operands: list[str]) -> ExitStatus:
    """redirect QUEUE TARGET: new and queued jobs go to TARGET (moved now); ``off`` ends it."""
    from lpfilter.errors import UsageError
    from lpfilter.spool import lpcops
    from lpfilter.spool.control import read_control
    from lpfilter.spool.records import QueueRecords
    if len(operands) != 1:
        raise UsageError("lpc redirect: name the queue and the target queue (or off)")
    store = _owned(entry, "redirect")
    try:
        if operands[0] == "off":
            lpcops.set_redirect(store, None)
            print(f"Printer: {_host(entry)}\nforwarding off\n{_host(entry)}: redirected",
                  file=ctx.stdout)
            return ExitStatus.OK
        target = ctx.printcap().lookup(operands[0])
        into = _owned(target, "redirect")
        if target.name == entry.name or read_control(into.state, into.owner).redirect:
            into.close()
            raise UsageError(f"lpc redirect: {target.name} is {entry.name} itself or is"
                             " redirected itself; name a queue that prints")
        lpcops.set_redirect(store, into)
        print(f"Printer: {_host(entry)}\nforwarding to '{target.name}'", file=ctx.stdout)
        records = QueueRecords(entry)
        try:
            for job in lpcops.move_all(store, records, into,
                                       keep=target.number("minfree") * 1024):
                print(f"{job.extra['moved_from']}: moved to {target.name}-{job.id}",
                      file=ctx.stdout)
        finally:
            records.close()
            into.close()
        print(f"{_host(entry)}: redirected", file=ctx.stdout)
    finally:
        store.close()
    return ExitStatus.OK


def _show(ctx: Context, entry: Entry, outcomes: list[Outcome]) -> ExitStatus:
    """Each job's outcome, as hold and release say it; the exit status of the worst."""
    from lpfilter.text import visible
    print(f"Printer: {_host(entry)}", file=ctx.stdout)
    status = ExitStatus.OK
    name = visible(entry.name)
    for outcome in outcomes:
        if outcome.kind == "changed":
            print(f"{name}-{outcome.job}: {outcome.said}", file=ctx.stdout)
        elif outcome.kind == "not_yours":
            which = f"{name}-{outcome.job}" if outcome.job else f"the jobs of {outcome.user}"
            print(f"lpfilter: {which}: not your job ({visible(outcome.user)}'s)",
                  file=sys.stderr)
            status = max(status, ExitStatus.ACCESS)
        elif outcome.kind == "missing":
            print(f"lpfilter: {name}-{outcome.number:06d}: no such job", file=sys.stderr)
            status = max(status, ExitStatus.FAILURE)
    return status


def _status(ctx: Context, operands: list[str]) -> ExitStatus:
    """LPRng's lpc status table: printing, spooling, jobs, server, redirect, holdall."""
    from lpfilter.commands.environment import lock_dir
    from lpfilter.commands.status_cmd import _through_daemon
    from lpfilter.errors import AccessError
    from lpfilter.spool.control import STATUS_HEAD, QueueControl, status_row
    from lpfilter.spool.queueinfo import queue_status
    print(STATUS_HEAD, file=ctx.stdout)
    failed: list[LpfilterError] = []

    def row(entry: Entry) -> None:
        data = _through_daemon(ctx, queue_status(entry, lock_dir(ctx.environ)))
        if data.get("error"):  # its row is still shown
            failed.append(AccessError(str(data["error"]), queue=entry.name))
        control = QueueControl.from_dict(data.get("control"))
        jobs = sum(1 for j in data["jobs"] if j["state"] not in ("done", "removed",
                                                                "cancelled"))
        server = data["served_by"]["pid"] if data["served_by"] else None
        print(status_row(_host(entry), control, jobs, server), file=ctx.stdout)

    _each(ctx, operands, row, failed)
    return _done(failed)


def _remote(ctx: Context, word: str, operands: list[str]) -> ExitStatus | None:
    """A ``queue@host[%port]`` (-P, or the first argument): the request goes to that
    server as LPRng's lpc sends it, its answer shown as it comes (None: a local queue)."""
    from lpfilter.commands import remotequeue
    first = operands[0] if operands and "@" in operands[0] else None
    target = remotequeue.remote_queue(ctx.args.printer or first)
    if target is None:
        return None
    from lpfilter.backends.lpdquery import remote_control
    from lpfilter.errors import UsageError
    from lpfilter.job import user_name
    from lpfilter.protocols.lpd import LpdProtocolError
    from lpfilter.protocols.lpdlpc import lpc_request
    args = [target.queue if first and o == first else o for o in operands]
    try:
        request = lpc_request(target.queue, user_name(os.getuid()), word, tuple(args))
    except LpdProtocolError as exc:
        raise UsageError(f"lpc {word}: {exc}") from None
    lines = remote_control(target.host, target.port, request, timeout=remotequeue.TIMEOUT)
    remotequeue._show(ctx, lines)
    return ExitStatus.OK
