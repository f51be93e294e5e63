"""What a user asks of a print (``print``'s options, checked against the queue's ``mc``),
apart from ``submit``: an ordinary user's print goes through the print server with them,
and needs none of submit's staging and journal modules.
"""
from __future__ import annotations

from lpfilter.errors import UsageError
from lpfilter.structs import FrozenStruct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap import Entry


class JobOptions(FrozenStruct):
    """What the user asked for on the command line (a ``FrozenStruct``, as the frozen
    dataclass it was: no ``dataclasses`` on ``print``'s path)."""

    __slots__ = _fields = ("user", "name", "title", "copies", "hold", "job_class", "no_banner",
                           "print_format", "no_wait")
    user: str
    name: str | None
    title: str
    copies: int
    hold: bool
    #: LPRng's job class (lpr -C), kept with the job.
    job_class: str
    #: lpr -h: no banner page.
    no_banner: bool
    #: lpr -F/-l/-p: the format letter ("": f, the default).
    print_format: str
    #: print --no-wait: nobody here reads how the job ended (``Job.awaited``).
    no_wait: bool

    def __init__(self, user: str, name: str | None = None, title: str = "", copies: int = 1,
                 hold: bool = False, job_class: str = "", no_banner: bool = False,
                 print_format: str = "", no_wait: bool = False) -> None:
        self._assign(locals())


def check_copies(entry: Entry, copies: int) -> None:
    limit = entry.number("mc")
    if copies < 1:
        raise UsageError(f"-# {copies}: the number of copies must be at least 1",
                         queue=entry.name)
    if limit > 0 and copies > limit:
        raise UsageError(f"queue {entry.name} allows at most {limit} cop"
                         f"{'y' if limit == 1 else 'ies'} (mc#{limit} in the printcap);"
                         f" you asked for {copies}", queue=entry.name)
