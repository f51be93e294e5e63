"""The ticket of a job received over LPD: what its control file says, kept for the job's
filters.

LPRng's lpd hands a filter every line of the control file it received as ``-X`` options
(lprng-filters.md §2, Letters: ``-Z`` lpr's -Z options, ``-I`` indent, ``-W`` width, ``-M``
mail, ``-N`` and ``-f`` the original file name...). The ticket has fields for the lines
lpfilter acts on; the others, with the A, D, Q and N lines LPRng's lpr writes, are kept
in ``extra["control"]`` as ``{letter: value}``, the form ``filters.command.facts_for``
reads. Values are the control file's (cleaned: no control character); bytes that were
not UTF-8 are kept as ISO-8859-1 characters, since a ticket is JSON text.
"""
from __future__ import annotations

import time

from lpfilter.job import Job, JobState
from lpfilter.protocols import lpdlocal
from lpfilter.protocols.lpdcontrol import ControlFields
from lpfilter.spool.control import holds_new
from lpfilter.text import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap import Entry
    from lpfilter.server.peer import Peer


def control_lines(fields: ControlFields, *, local: bool) -> dict[str, str]:
    """The control file's upper-case lines by letter, for ``extra["control"]``: every line
    the ticket has no field for (the first of a letter), LPRng's A, D and Q, and the first
    data file's N (the job's data is its files in print-line order). A local client's hold
    line is lpfilter's own request, not a line of the job, and its A line (``user@host+N``)
    is not kept: the job's user is the kernel's, and its filters get the A line built from
    it, as ``lpq`` shows the job (a claimed ``root@host+1`` must not reach them)."""
    lines: dict[str, str] = {}
    for letter, value in fields.other:
        if local and (letter, value) == lpdlocal.HOLD_LINE:
            continue
        if letter.isupper() and value:
            lines.setdefault(letter, printable(value))
    named = {"A": "" if local else fields.identifier, "D": fields.date, "Q": fields.queue,
             "N": fields.files[0].source}
    lines.update({letter: printable(value) for letter, value in named.items() if value})
    return lines


def too_many_copies(entry: Entry, fields: ControlFields, peer: Peer) -> str | None:
    """Why a local user's job asks more copies than the queue's ``mc`` allows (None: it
    does not). ``print`` checks it before it sends; a client of the user's own making
    must meet it too, since on a spool closed to users the daemon is the only way in.
    (LPRng's lpd checks no ``mc``, only its lpr: a remote host's jobs are not checked.)"""
    limit = entry.number("mc")
    most = max((f.copies for f in fields.files), default=1)
    if not peer.local or limit <= 0 or most <= limit:
        return None
    return (f"{most} copies: queue {entry.name} allows at most {limit} (mc in the"
            " printcap)")


def hold_asked(fields: ControlFields, peer: Peer) -> bool:
    """``print --hold`` by a local user (lpfilter's own control line, honoured only on
    the Unix socket): the job is held from the start, never printed before the hold."""
    return peer.local and lpdlocal.HOLD_LINE in fields.other


def ticket(entry: Entry, fields: ControlFields, peer: Peer, *, job_id: str,
           control_name: str, size: int, copies: int, origin: str) -> Job:
    """The job's ticket as it is queued (held when the queue or a local client asks)."""
    first = fields.files[0]
    lines = control_lines(fields, local=peer.local)
    held = holds_new(entry) or hold_asked(fields, peer)
    return Job(job_id, entry.name, fields.user, fields.job_name or first.source or control_name,
               size, time.time(), title=fields.title, copies=copies, host=fields.host,
               job_class=fields.job_class, no_banner=not fields.banner, source="lpd",
               state=JobState.HELD if held else JobState.QUEUED, peer=peer.address,
               origin=origin, print_format=first.format,
               extra={"control": lines} if lines else {})
