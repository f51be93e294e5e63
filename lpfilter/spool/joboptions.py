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
                           "print_format", "no_wait", "lines")
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
    #: lpr -Z, -w, -i: control-file lines (Z, W, I) for the job's filters and the next
    #: server, kept in the ticket's ``extra["control"]`` as a received job's are.
    lines: tuple[tuple[str, str], ...]

    def __init__(self, user: str, name: str | None = None, title: str = "", copies: int = 1,
                 hold: bool = False, job_class: str = "", no_banner: bool = False,
                 print_format: str = "", no_wait: bool = False,
                 lines: tuple[tuple[str, str], ...] = ()) -> None:
        self._assign(locals())

    def names(self, path: str | None) -> tuple[str, str]:
        """The job's name (``-J``, else the file's) and the file's name (its base name, or
        ``stdin``): LPRng's J and N lines, which filters get as ``-J`` and ``-N``."""
        file_name = "stdin" if path is None or path == "-" else path.rpartition("/")[2]
        return self.name or file_name, file_name

    def extra(self, file_name: str = "") -> dict[str, object] | None:
        """The new job's ``extra`` (None: nothing to keep); under ``-J`` the file's name
        is kept as its ``N`` line, since the job's name is no longer it."""
        extra: dict[str, object] = {"no_wait": True} if self.no_wait else {}
        lines = dict(self.lines)
        if self.name and file_name and self.name != file_name:
            lines["N"] = file_name
        if lines:
            extra["control"] = lines
        return extra or None


def control_lines(options: list[str] | None, width: int | None, indent: int | None,
                  account: str | None = None) -> tuple[tuple[str, str], ...]:
    """lpr's -Z (each given joined with commas, as LPRng's lpr joins them), -w, -i and -R
    (the accounting name) as control-file lines; a value with a control character, or a
    negative number, is a usage error."""
    lines = [("Z", ",".join(options))] if options else []
    lines += [(letter, str(number)) for letter, number in (("W", width), ("I", indent))
              if number is not None]
    lines += [("R", account)] if account is not None else []
    for letter, value in lines:
        flag = {"Z": "-Z", "W": "-w", "I": "-i", "R": "-R"}[letter]
        if not value.isprintable():
            raise UsageError(f"{flag}: no control characters in it, please; nothing was"
                             " printed")
        if letter in "WI" and value.startswith("-"):
            raise UsageError(f"{flag} {value}: a number, 0 or more; nothing was printed")
    return tuple(lines)


def check_copies(entry: Entry, copies: int) -> None:
    limit = entry.number("mc")
    if copies < 1:
        raise UsageError(f"-# {copies}: the number of copies must be at least 1",
                         queue=entry.name)
    if limit > 0 and copies > limit:
        raise UsageError(f"queue {entry.name} allows at most {limit} cop"
                         f"{'y' if limit == 1 else 'ies'} (mc#{limit} in the printcap);"
                         f" you asked for {copies}", queue=entry.name)
