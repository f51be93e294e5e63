"""``cancel`` (alias ``lprm``), ``requeue``, ``hold``, ``release``: change jobs' states.

Each change is made under the queue's ticket lock, so it never crosses a worker's. A job
being printed is stopped safely by its worker (``cancel`` leaves it a request); ``hold``
and ``requeue`` leave an active job alone. Root and the spool's owner act on every job,
other users on their own; a user who may not write the spool asks the print server (the
daemon's Unix socket, ``daemonclient``), which makes the same change with the same rights.

Which jobs, as LPRng's lprm and CUPS' cancel take them: ``q-000012`` names its queue (the
printcap name before the last ``-``), ``12`` is a job of the ``-P`` queue, ``-`` or ``all``
(or ``--all``) is every job of the user (root: every job), another word (or CUPS' ``-u``)
a user's jobs not finished, and ``-a`` every queue. A bare ``cancel`` (``lprm``) is the
first job not finished that the user may remove, as LPRng's lprm: root's is anyone's.
As ``cancel`` (not ``lprm``), CUPS' words where the two differ (``_cups_words``): a
queue's name is that queue (``cancel -a lp``: every job of lp), a bare ``-a`` every job of
every queue, ``-u`` a user's jobs anywhere.
"""
from __future__ import annotations

import os
import sys

from lpfilter.errors import AccessError
from lpfilter.printcap import Entry, Printcap
from lpfilter.spool import closed_to_me
from lpfilter.spool.jobctl import Selection
from lpfilter.status import ExitStatus
from lpfilter.structs import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:  # what every run needs is imported with this module, while the start-up
    # runs without the cyclic collector (lpfilter.__main__)
    import argparse

    from lpfilter.commands.environment import Context
    from lpfilter.commands.quickargs import Recorder
    from lpfilter.spool.jobctl import Outcome

#: Words that mean "every job" (of the user), as lprm's ``-`` and LPRng's ``all``.
EVERY = ("-", "all")


#: Plain arguments are read without argparse (commands/quickargs.py).
QUICK_ARGS = True


def add_arguments(parser: argparse.ArgumentParser | Recorder) -> None:
    parser.add_argument("-P", dest="printer", metavar="QUEUE",
                        help="the queue (default: PRINTER, LPDEST, first printer)")
    parser.add_argument("-a", dest="all_queues", action="store_true",
                        help="every queue of the printer list (as LPRng's lprm -a; with"
                             " a queue's name, as CUPS' cancel -a lp: every job of it)")
    parser.add_argument("--all", action="store_true",
                        help="every job of the queue (as the id - or all)")
    parser.add_argument("-u", dest="users", metavar="USER", action="append",
                        help="the jobs of this user (as CUPS' cancel -u; a word that is no"
                             " job id is one too)")
    parser.add_argument("ids", nargs="*", metavar="ID",
                        help="job ids as print shows them (lp-000012: job 12 of queue lp;"
                             " 000012 or 12: of the -P queue), - or all: every job, or a"
                             " user name: that user's jobs (as LPRng's lprm); none (cancel"
                             " only): the first job you may remove")


class _Target(Struct):
    """The jobs to act on in one queue."""

    __slots__ = _fields = ("entry", "selection")

    def __init__(self, entry: Entry, selection: Selection | None = None) -> None:
        self.entry = entry
        self.selection = Selection() if selection is None else selection


def _queue_of(text: str, printcap: Printcap) -> tuple[Entry, int] | None:
    """The queue and number of ``q-000012`` (None: not of that form); the queue must be
    in the printcap (names, aliases, glob names), else it is a clear error."""
    from lpfilter.errors import NoSuchPrinter
    from lpfilter.text import visible
    queue, _dash, number = text.rpartition("-")  # (a queue name may have - in it)
    if not queue or not _plain(number):
        return None
    try:
        entry = printcap.lookup(queue)
    except NoSuchPrinter:
        raise NoSuchPrinter(f"{visible(text)}: no queue named '{visible(queue)}' in"
                            " the printcap (lpfilter status -a lists the queues)",
                            queue=queue) from None
    return entry, int(number)


def _plain(text: str) -> bool:
    """A job number alone (ASCII digits: ``12``, ``000012``)."""
    return text.isascii() and text.isdigit()


def _targets(ctx: Context, action: str) -> list[_Target]:
    """The queues and jobs the command line names, checked before anything changes."""
    from lpfilter.errors import UsageError
    from lpfilter.text import visible
    args = ctx.args
    printcap = ctx.printcap()
    every = args.all or any(i in EVERY for i in args.ids)
    ids = [i for i in args.ids if i not in EVERY]
    targets: dict[str, _Target] = {}
    if args.command == "cancel":  # CUPS' words (lprm keeps LPRng's)
        ids, every = _cups_words(ctx, ids, every, targets)
    first = not ids and not every and not args.users and not targets  # a bare lprm
    if first and action != "cancel":
        raise UsageError(f"{action}: name the jobs (their ids or their users) or give --all")
    if args.all_queues and args.printer:
        raise UsageError(f"{action}: -a (every queue) and -P {args.printer} do not go"
                         " together")
    plain = {int(i) for i in ids if _plain(i)}
    queued = {i: _queue_of(i, printcap) for i in ids if not _plain(i)}
    words = [i for i, found in queued.items() if found is None]
    bad = [w for w in words if w.rpartition("-")[2].isdigit() or not w.isprintable()]
    if bad:  # a number in other digits than 0-9 (to isdigit(), not to int()), or no name
        raise UsageError(f"not a job id: {visible(', '.join(bad))} (write it as print showed"
                         f" it, e.g. {_example(ctx)}-000012)")
    users = set(words) | set(() if targets else args.users or ())  # (-u DEST: DEST's)
    anywhere = args.command == "cancel" and args.users and not (words or plain or every
                                                               or args.printer or targets)
    if args.all_queues or anywhere:  # (CUPS' cancel -u USER: the user's jobs anywhere)
        for name in printcap.queue_names():  # as watch and status: no names nothing defines
            entry = printcap.lookup(name)
            targets[entry.name] = _Target(entry, Selection(anywhere=set(plain), every=every,
                                                           users=set(users), first=first))
    elif plain or every or users or first:
        entry = printcap.lookup(ctx.queue(args.printer))
        selection = targets.setdefault(entry.name, _Target(entry)).selection
        selection.named |= plain  # (a queue CUPS' cancel named too keeps its own choice)
        selection.users |= users
        selection.every, selection.first = selection.every or every, selection.first or first
    for entry, number in filter(None, queued.values()):
        targets.setdefault(entry.name, _Target(entry)).selection.named.add(number)
    return list(targets.values())


def _cups_words(ctx: Context, ids: list[str], every: bool,
                targets: dict[str, _Target]) -> tuple[list[str], bool]:
    """CUPS' cancel: a word naming a queue (a printcap name or alias, as cupsGetDest finds
    a destination) is that queue's current job (the first it may remove), with -a or ``-``
    its every job, with -u the user's jobs there; a number just before it is its job
    (``cancel 12 lp``: CUPS, whose numbers are global, ignores the name). A bare -a is
    every job of every queue. Adds those queues' targets; returns the other words and
    whether they mean every job."""
    from lpfilter.errors import UsageError
    args, printcap, rest = ctx.args, ctx.printcap(), []
    users = set(args.users or ())
    for word in ids:
        if _plain(word) or printcap.owner(word) is None:
            rest.append(word)
            continue
        entry = printcap.lookup(word)
        target = targets.setdefault(entry.name, _Target(entry))
        if rest and _plain(rest[-1]):
            target.selection.named.add(int(rest.pop()))
            continue
        chosen = every or args.all_queues
        target.selection.every |= chosen
        target.selection.users |= users
        target.selection.first = not (chosen or users)
    if targets and args.printer:
        raise UsageError(f"cancel: -P {args.printer} and a queue's name ({', '.join(targets)})"
                         " do not go together")
    if targets:
        args.all_queues = False  # -a DEST: every job of DEST
        return rest, False
    return rest, every or (args.all_queues and not rest and not users)


def _names_a_queue(ctx: Context) -> bool:
    """CUPS' ``cancel r``: a word naming a local queue, so PRINTER (``q@host`` too) is not
    the queue acted on. A client without a printcap has no such word."""
    from lpfilter.errors import LpfilterError
    words = [w for w in ctx.args.ids if w not in EVERY and not _plain(w)]
    if ctx.args.command != "cancel" or not words:
        return False
    try:
        printcap = ctx.printcap()
    except LpfilterError:
        return False
    return any(printcap.owner(word) is not None for word in words)


def _nothing(ctx: Context) -> ExitStatus:
    """The status of a job named that is not there (nothing to do): 1, but 0 as
    ``lprm``, whose LPRng namesake always exits 0 (a script's clean-up under ``set -e``
    must not stop at a job already gone); the line says it all the same."""
    return ExitStatus.OK if ctx.args.command == "lprm" else ExitStatus.FAILURE


def _example(ctx: Context) -> str:
    from lpfilter.errors import LpfilterError
    try:
        return ctx.queue(ctx.args.printer)
    except LpfilterError:
        return "lp"


def run(ctx: Context) -> ExitStatus:
    from lpfilter.job import user_name
    from lpfilter.text import visible
    action = {"lprm": "cancel"}.get(ctx.args.action, ctx.args.action)
    default = None if ctx.args.all_queues or _names_a_queue(ctx) else (
        ctx.environ.get("PRINTER") or ctx.environ.get("LPDEST"))
    name = ctx.args.printer or default
    if name and "@" not in name and ctx.printcap().means_every(name):  # lprm -Pall
        ctx.args.all_queues, ctx.args.printer = True, None
    if name and "@" in name:  # queue@host (remotequeue is imported only for one)
        from lpfilter.commands import remotequeue
        remote = remotequeue.remote_queue(name)
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
    whose: set[str] = set()
    empty: list[str] = []  # the queues asked for their first job that had none
    for target in targets:
        queue_status, seen, owners = _apply(ctx, target, action, me, root)
        status, found, whose = max(status, queue_status), found | seen, whose | owners
        if target.selection.first and not seen:
            empty.append(visible(target.entry.name))
    for number in sorted({n for t in targets for n in t.selection.anywhere} - found):
        print(f"lpfilter: job {number:06d}: no such job in any queue", file=sys.stderr)
        status = max(status, _nothing(ctx))
    if empty and not (ctx.args.all_queues and found):  # (-a: the first of any queue)
        where = "any queue" if ctx.args.all_queues else f"queue {', '.join(empty)}"
        print(f"lpfilter: no job in {where} that you may cancel", file=sys.stderr)
        status = max(status, _nothing(ctx))
    for user in sorted({u for t in targets for u in t.selection.users} - whose):
        hint = (f"{visible(user)} is a queue: -P {visible(user)} all takes its jobs"
                if ctx.printcap().owner(user) else
                "a job id is written as print showed it, e.g. lp-000012")
        print(f"lpfilter: no job of user {visible(user)} to {action} ({hint})",
              file=sys.stderr)
        status = max(status, _nothing(ctx))
    return status


def _apply(ctx: Context, target: _Target, action: str, me: str,
           root: bool) -> tuple[ExitStatus, set[int], set[str]]:
    """Act on one queue's chosen jobs; returns the exit status, the numbers and the users
    found. A user who may not write the spool asks the print server to do it: at once when
    the spool is certainly closed (``spool.closed_to_me``), else when the store says so."""
    entry = target.entry
    if closed_to_me(entry.string("sd") or "", write=True):
        outcomes = _ask_server(ctx, target, action, me)
        if outcomes is not None:
            return _show(ctx, entry.name, outcomes)
    from lpfilter.spool.jobctl import act
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore
    store = SpoolStore(entry.string("sd") or "", entry.name)
    if ctx.args.all_queues and not os.access(store.jobs_dir, os.R_OK | os.X_OK):
        from lpfilter.commands import daemonclient  # the print server's client: rarely needed
        if root or not daemonclient.reachable(ctx.environ):
            return ExitStatus.OK, set(), set()  # -a: a queue that never had a job (of yours)
    try:
        store.ensure("change")
    except AccessError as exc:
        from lpfilter.commands import daemonclient
        if root or not daemonclient.may_help(store.sd):
            raise
        chosen, others = _own_users(target.selection, me)
        outcomes = others + daemonclient.control(ctx.environ, entry.name, action, chosen,
                                                 exc, quiet=ctx.args.all_queues)
    else:
        records = QueueRecords(entry)
        try:
            outcomes = act(store, records, target.selection, action, me, root)
        finally:
            records.close()
            store.close()
    return _show(ctx, entry.name, outcomes)


def _ask_server(ctx: Context, target: _Target, action: str, me: str) -> list[Outcome] | None:
    """The print server's change; None when none answers (nothing was asked: the spool's
    own path then says the error as it always did)."""
    from lpfilter.commands import daemonclient
    name = target.entry.name
    why = AccessError(f"queue {name}: you may not write its spool", queue=name)
    chosen, others = _own_users(target.selection, me)
    try:
        return others + daemonclient.control(ctx.environ, name, action, chosen, why,
                                             quiet=ctx.args.all_queues)
    except daemonclient.NoDaemon:
        return None


def _own_users(selection: Selection, me: str) -> tuple[Selection, list[Outcome]]:
    """A selection for the print server, which acts on the asker's jobs only: one's own
    name is every job of one's own; another user's name is refused here, as a whole."""
    from lpfilter.spool.jobctl import Outcome
    others = [Outcome(0, "not_yours", "", user) for user in sorted(selection.users - {me})]
    return Selection(named=selection.named, anywhere=selection.anywhere,
                     every=selection.every or me in selection.users,
                     first=selection.first), others


def _show(ctx: Context, name: str,
          outcomes: list[Outcome]) -> tuple[ExitStatus, set[int], set[str]]:
    """What became of each job, as the user reads it; the exit status of the worst, the
    numbers and the users found."""
    from lpfilter.text import visible
    queue = visible(name)  # a pattern entry takes the name given on the command line
    status = ExitStatus.OK
    for outcome in outcomes:
        if outcome.kind == "changed":
            print(f"{queue}-{outcome.job}: {outcome.said}", file=ctx.stdout)
        elif outcome.kind == "not_yours":
            what = f"{queue}-{outcome.job}: not your job" if outcome.job else (
                f"queue {queue}: not your jobs")
            print(f"lpfilter: {what} ({visible(outcome.user)}'s)", file=sys.stderr)
            status = max(status, ExitStatus.ACCESS)
        elif outcome.kind == "missing":
            print(f"lpfilter: {queue}-{outcome.number:06d}: no such job", file=sys.stderr)
            status = max(status, _nothing(ctx))
    found = [o for o in outcomes if o.kind != "missing"]
    return status, {o.number for o in found if o.job}, {o.user for o in found}
