"""The LPD control file (RFC 1179 §7): built from a job's fields as LPRng, BSD or CUPS
write it, and parsed (bounded) as a server reads it.

Facts: shared/reference/lpd-protocol.md §2.1 (the bytes LPRng's lpr and CUPS's backend
sent), §4 (the lines and their bounds), §9 (injection). Every value is cleaned before it
is written, so that no job field can end its line or add one: a character that is not
printable becomes ``_`` (as LPRng's lpd does with names and CUPS with titles), names lose
their white space too, and each line is cut at the RFC's bound for it.

Its records are ``FrozenStruct``s, as ``lpd``'s are: a client's ``print`` that sends its
own job to a print server loads this module, and ``dataclasses`` would cost it 52 M
instructions to import.
"""
from __future__ import annotations

import time

from lpfilter.enums import Enum
from lpfilter.job import Job
from lpfilter.protocols.lpd import MAX_LINE, JobNames, LpdProtocolError, check_file_name
from lpfilter.structs import FrozenStruct

#: Bytes in an operand, per line (RFC §7.2 as CUPS quotes it: H, P, C 31, J 99, N 131;
#: T and L are UNVERIFIED in the reference, the bounds here are the narrow ones).
LIMITS = {"H": 31, "P": 31, "C": 31, "L": 31, "J": 99, "T": 79, "N": 131,
          "A": 131, "D": 31, "Q": 31}
#: Operand bound of any other line (M, W, I, Z ... kept by a parse and written again).
OTHER_LIMIT = 131
#: A control file a server reads: at most this many bytes (it is a few hundred in
#: practice; 52 files times many copies stay far below).
MAX_CONTROL_FILE = 64 * 1024
#: Copies written as repeated print lines: more than this is refused, not truncated.
MAX_COPIES = 999
#: Lines the builder writes itself; ``other`` may not use their letters.
_OWN = frozenset("HPJCLTADQNU") | frozenset("abcdefghijklmnopqrstuvwxyz")
#: Operands that are names, where white space becomes ``_`` as well.
_NAMES = frozenset("HPCLQ")


class Style(Enum):
    """Whose line order to write (lpd-protocol.md §2.1). Where LPRng puts T (``lpr -T``)
    is not in the reference: here after L, as BSD's lpr writes it."""

    #: LPRng's lpr: H P J C L A D Q, then per file N and its print lines, then U lines.
    LPRNG = "lprng"
    #: LPRng with ``bk`` (strict RFC 1179 / BSD): the same without LPRng's A, D, Q.
    RFC = "rfc"
    #: CUPS's lpd backend: H P J (C L with a banner), print lines, U, N.
    CUPS = "cups"


class DataFile(FrozenStruct):
    """One data file of a job: its wire name, print format letter, source name, copies."""

    __slots__ = _fields = ("name", "format", "source", "copies")
    name: str
    format: str
    source: str
    copies: int

    def __init__(self, name: str, format: str = "f",  # noqa: A002 - the field's name
                 source: str = "", copies: int = 1) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "format", format)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "copies", copies)


class ControlFields(FrozenStruct):
    """What a control file says. ``identifier``, ``date`` and ``queue`` are LPRng's A, D
    and Q lines; ``other`` holds lines lpfilter does not interpret (W, I, M, Z ...)."""

    __slots__ = _fields = ("host", "user", "files", "job_name", "job_class", "title",
                           "banner", "identifier", "date", "queue", "other")
    host: str
    user: str
    files: tuple[DataFile, ...]
    job_name: str
    job_class: str
    title: str
    banner: bool
    identifier: str
    date: str
    queue: str
    other: tuple[tuple[str, str], ...]

    def __init__(self, host: str, user: str, files: tuple[DataFile, ...], job_name: str = "",
                 job_class: str = "", title: str = "", banner: bool = True,
                 identifier: str = "", date: str = "", queue: str = "",
                 other: tuple[tuple[str, str], ...] = ()) -> None:
        self._assign(locals())


def clean(value: str, limit: int, *, name: bool = False) -> str:
    """``value`` as one line's operand: never a control character (so never a second
    line), names without white space, no leading white space (RFC §7), at most
    ``limit`` bytes in UTF-8 (bytes that were not UTF-8 are kept as they came)."""
    text = value if name else value.lstrip()
    if len(text) <= limit and text.isascii() and text.isprintable() and not (
            name and " " in text):
        return text  # what lpr sends: the loop below keeps every character (~9 a job)
    out: list[str] = []
    size = 0
    for c in text:
        keep = (c.isprintable() and not (name and c.isspace())) or "\udca0" <= c <= "\udcff"
        c = c if keep else "_"
        width = len(c.encode("utf-8", "surrogateescape"))
        if size + width > limit:
            break
        out.append(c)
        size += width
    return "".join(out)


def cleaned(fields: ControlFields) -> ControlFields:
    """The fields as they will be written (building this is idempotent)."""
    def one(letter: str, value: str) -> str:
        return clean(value, LIMITS[letter], name=letter in _NAMES)

    if not fields.files:
        raise LpdProtocolError("a control file names at least one data file")
    files = tuple(_file(f) for f in fields.files)
    other = tuple((k, clean(v, OTHER_LIMIT)) for k, v in fields.other)
    if any(len(k) != 1 or not k.isascii() or not k.isalnum() or k in _OWN for k, _ in other):
        raise LpdProtocolError("an extra control line must have a letter of its own")
    result = fields.replace(host=one("H", fields.host), user=one("P", fields.user),
                            job_name=one("J", fields.job_name),
                            job_class=one("C", fields.job_class),
                            title=one("T", fields.title),
                            identifier=one("A", fields.identifier),
                            date=one("D", fields.date), queue=one("Q", fields.queue),
                            files=files, other=other)
    if not result.host or not result.user:
        raise LpdProtocolError("a control file needs a host (H) and a user (P)")
    return result


def _file(data: DataFile) -> DataFile:
    check_file_name(data.name)
    if not data.name.startswith("df"):
        raise LpdProtocolError(f"{data.name!r} is no data file name")
    fmt = data.format
    if len(fmt) != 1 or not ("a" <= fmt <= "z"):
        raise LpdProtocolError(f"no print format {fmt!r} (a lower-case letter)")
    if not 1 <= data.copies <= MAX_COPIES:
        raise LpdProtocolError(f"copies must be 1 to {MAX_COPIES}, not {data.copies}")
    return data.replace(source=clean(data.source, LIMITS["N"]))


def build(fields: ControlFields, style: Style = Style.LPRNG) -> bytes:
    """The control file, in ``style``'s order. Copies are the print line repeated, as BSD,
    LPRng and CUPS (``manual_copies=no``) write them; ``banner`` False drops L (``-h``,
    printcap ``sh``)."""
    f = cleaned(fields)
    lines = [("H", f.host), ("P", f.user)]
    lines += [("J", f.job_name)] if f.job_name else []
    if style is Style.CUPS:
        lines += [("C", f.job_class), ("L", f.user)] if f.banner else []
    else:
        lines += [("C", f.job_class)] if f.job_class else []
        lines += [("L", f.user)] if f.banner else []
    lines += [("T", f.title)] if f.title else []
    if style is Style.LPRNG:
        lines += [(k, v) for k, v in (("A", f.identifier), ("D", f.date), ("Q", f.queue)) if v]
    lines += list(f.other)
    for data in f.files:
        sources = [("N", data.source)] if data.source else []
        prints = [(data.format, data.name)] * data.copies
        lines += prints if style is Style.CUPS else sources + prints
    lines += [("U", data.name) for data in f.files]
    if style is Style.CUPS:
        lines += [("N", data.source) for data in f.files]  # CUPS writes N even if empty
    return b"".join(k.encode("ascii") + v.encode("utf-8", "surrogateescape") + b"\n"
                    for k, v in lines)


def lprng_date(when: float) -> str:
    """LPRng's D line: local time to the millisecond, ``2026-12-04-22:00:45.365``."""
    seconds, millis = divmod(round(when * 1000), 1000)
    return time.strftime("%Y-%m-%d-%H:%M:%S", time.localtime(seconds)) + f".{millis:03d}"


def from_job(job: Job, names: JobNames, *, host: str, fmt: str = "f",
             banner: bool = True, queue: str = "") -> ControlFields:
    """A job's fields as LPRng's lpr would send them: its name as J, its file's name as N
    (the job's name, unless ``-J`` or a received job kept another in its N line), the
    class (LPRng's default ``A``), a banner unless the job or the printcap (``sh``)
    suppresses it, ``queue`` the remote queue for Q."""
    lines = job.extra.get("control")
    source = lines.get("N") if isinstance(lines, dict) else None
    data = DataFile(names.data(0), fmt, source if isinstance(source, str) else job.name,
                    max(job.copies, 1))
    return ControlFields(
        host=host, user=job.user, files=(data,), job_name=job.name,
        job_class=job.job_class or "A", title=job.title,
        banner=banner and not job.no_banner,
        identifier=f"{job.user}@{host}+{names.number}", date=lprng_date(job.submitted),
        queue=queue, other=carried(job.extra.get("control")))


def carried(lines: object) -> tuple[tuple[str, str], ...]:
    """The control lines a job received over LPD brought with it (its ticket's
    ``extra["control"]``: Z, W, I, M, R ...), carried on to the next server as LPRng's lpd
    forwards them; the lines written here for every job (``_OWN``) are written anew."""
    if not isinstance(lines, dict):
        return ()
    return tuple((k, v) for k, v in lines.items()
                 if isinstance(k, str) and len(k) == 1 and k.isascii() and k.isalnum()
                 and k not in _OWN and isinstance(v, str) and v)


def _lines(data: bytes) -> list[tuple[str, str]]:
    """A received control file's lines, bounded: size, line length, no NUL or CR."""
    if len(data) > MAX_CONTROL_FILE:
        raise LpdProtocolError(f"a control file larger than {MAX_CONTROL_FILE} bytes")
    if b"\0" in data or b"\r" in data:
        raise LpdProtocolError("a control file holding a NUL or CR")
    rows = data.split(b"\n")
    if rows[-1] == b"":
        rows.pop()
    out = []
    for number, row in enumerate(rows, 1):
        if len(row) >= MAX_LINE:
            raise LpdProtocolError(f"control file line {number} longer than {MAX_LINE} bytes")
        if not row or not (row[:1].isascii() and row[:1].isalnum()):
            raise LpdProtocolError(f"control file line {number} has no command letter")
        out.append((chr(row[0]), row[1:].decode("utf-8", "surrogateescape")))
    return out


def parse(data: bytes) -> ControlFields:
    """A control file as a server reads it. Print lines of one data file count as its
    copies; the first N before (LPRng) or after (CUPS) them is its source name. Names
    are checked (no paths, lpd-protocol.md §9); the server still renames the files."""
    single: dict[str, str] = {}
    files: dict[str, DataFile] = {}
    sources: list[str] = []
    other: list[tuple[str, str]] = []
    banner = False
    for letter, operand in _lines(data):
        if "a" <= letter <= "z":
            check_file_name(operand)
            old = files.get(operand)
            files[operand] = (old.replace(copies=old.copies + 1) if old else
                              DataFile(operand, letter, sources.pop(0) if sources else ""))
        elif letter == "N":
            sources.append(operand)
        elif letter == "U":
            check_file_name(operand)
        elif letter == "L":
            banner = True
        elif letter in LIMITS:
            single.setdefault(letter, operand)
        else:
            other.append((letter, operand))
    for name in [n for n, f in files.items() if not f.source and sources]:
        files[name] = files[name].replace(source=sources.pop(0))
    if not files:
        raise LpdProtocolError("a control file that prints no data file")
    return ControlFields(
        host=single.get("H", ""), user=single.get("P", ""), files=tuple(files.values()),
        job_name=single.get("J", ""), job_class=single.get("C", ""),
        title=single.get("T", ""), banner=banner, identifier=single.get("A", ""),
        date=single.get("D", ""), queue=single.get("Q", ""), other=tuple(other))
