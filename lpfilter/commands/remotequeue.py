"""``status`` and ``cancel`` of a queue on another LPD server: ``-P queue@host[%port]``,
as LPRng's lpq and lprm take it, and the remote part of a local queue that forwards.

The server's answer is free text, shown as it comes (made safe by ``lpdquery``), never
read for meaning: exit status 0 means the server answered, whatever it said. A server that
cannot be reached is an error of the NotConnected family (exit status 1); below a local
forwarding queue it is one line instead, since the local part was shown.
"""
from __future__ import annotations

import os
import sys

from lpfilter.status import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.commands.environment import Context
    from lpfilter.printcap import Entry
    from lpfilter.printcap.destination import Lpd

#: LPRng's default ``connect_timeout``, for a ``queue@host`` named on the command line (no
#: printcap entry to read it from): for the connection and each read of the answer (the
#: whole answer gets three times as long, ``lpdquery.TOTAL_FACTOR``).
TIMEOUT = 10.0


def remote_queue(name: str | None) -> Lpd | None:
    """The LPD queue ``name`` names when it is ``queue@host[%port]`` (None: a local
    queue); a ``@`` form no server can be asked with is a usage error, before any
    connection: no host, a bad port, a host name that can never resolve, a queue name
    LPD cannot carry (white space, a control character, too long)."""
    if not name or "@" not in name:
        return None
    from lpfilter.errors import UsageError
    from lpfilter.printcap.destination import Lpd, classify, host_problem
    from lpfilter.protocols.lpd import LpdProtocolError, receive_job
    from lpfilter.text import visible
    found = classify(name, queue=name)
    if not isinstance(found, Lpd):
        reason = getattr(found, "reason", "not queue@host[%port]")
        raise UsageError(f"-P {visible(name)}: {reason} (write queue@host or"
                         " queue@host%port)")
    try:
        receive_job(found.queue)  # (the request lines all carry the queue name so)
        problem = host_problem(found.host)
    except LpdProtocolError as exc:
        problem = str(exc)
    if problem is not None:
        raise UsageError(f"-P {visible(name)}: {visible(problem)}")
    return found


def status(ctx: Context, target: Lpd, select: list[str], *, long: bool) -> ExitStatus:
    """``status -P queue@host``: the server's answer, short or long (``-l``, and lpq's)."""
    from lpfilter.backends.lpdquery import remote_status
    from lpfilter.errors import UsageError
    from lpfilter.protocols.lpd import LpdProtocolError
    args = ctx.args
    if args.json:
        raise UsageError(f"--json shows local queues; {target.display()} is another"
                         " server's, whose answer is free text")
    try:
        lines = remote_status(target.host, target.port, target.queue, long=long,
                              items=tuple(select), timeout=TIMEOUT)
    except LpdProtocolError as exc:
        raise UsageError(f"-P {target.display()}: {exc}") from None
    _show(ctx, lines)
    return ExitStatus.OK


def forwarding(entry: Entry) -> Lpd | None:
    """The LPD queue a local queue forwards to (``lp=queue@host``, or ``rm``/``rp``; the
    destination carries ``%port``, else ``lpd_port``, as the LPD backend sends to it), None
    for any other queue (a queue naming neither lp nor rm is not asked about)."""
    from lpfilter.printcap.destination import Lpd
    destination = entry.destination()
    if not isinstance(destination, Lpd) or not (entry.string("lp") or entry.string("rm")):
        return None
    return destination


def forwarded_status(entry: Entry, target: Lpd, *, long: bool,
                     items: tuple[str, ...] = ()) -> str:
    """Below a forwarding queue's own jobs: "Remote queue q@host:" and the server's
    answer, indented; one line saying why when there is none (not an error)."""
    from lpfilter.backends.lpdquery import remote_status
    from lpfilter.errors import LpfilterError
    from lpfilter.text import visible
    head = f"Remote queue {visible(target.display())}:"
    try:
        lines = remote_status(target.host, target.port, target.queue, long=long,
                              items=items,
                              timeout=float(entry.number("connect_timeout") or TIMEOUT))
    except LpfilterError as exc:
        lines = [f"not answered: {visible(str(exc))}"]
    if not lines:
        lines = ["(the server sent nothing)"]
    return "\n".join([head, *(f"  {line}" for line in lines)]) + "\n"


def cancel(ctx: Context, target: Lpd) -> ExitStatus:
    """``cancel -P queue@host [ID ...|-|all]``: ask the server to remove jobs, as LPRng's
    lprm: the agent is the user running the command, ``all`` and ``--all`` are sent as
    ``all``. ``-`` is sent as the agent's own name, which selects all the user's jobs on
    every server (RFC 1179 §5.5). No id sends no list, as LPRng's and BSD's lprm: LPRng's
    lpd (and lpfilter's) then removes the first job the agent may remove (root: anyone's),
    BSD's the active job if it is the agent's."""
    from lpfilter.backends.lpdquery import remote_remove
    from lpfilter.errors import UsageError
    from lpfilter.job import user_name
    from lpfilter.protocols.lpd import LpdProtocolError
    args = ctx.args
    if args.all_queues:
        raise UsageError(f"cancel: -a (every queue) and -P {target.display()} do not go"
                         " together")
    agent = user_name(os.getuid())
    items = [i for i in args.ids if i != "-"] + list(args.users or ())
    if args.all and "all" not in items:
        items.append("all")
    if "-" in args.ids and agent not in items:
        items.append(agent)
    try:
        lines = remote_remove(target.host, target.port, target.queue, agent, tuple(items),
                              timeout=TIMEOUT)
    except LpdProtocolError as exc:
        raise UsageError(f"cancel -P {target.display()}: {exc}") from None
    _show(ctx, lines)
    return ExitStatus.OK


def _show(ctx: Context, lines: list[str]) -> None:
    """The server's lines (already made safe), or a word that it sent none."""
    from lpfilter.text import printable
    if not lines:
        print("lpfilter: the server answered nothing", file=sys.stderr)
    ctx.stdout.write(printable("".join(f"{line}\n" for line in lines)))
