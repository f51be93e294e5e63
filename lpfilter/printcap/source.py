"""Reading printcap files: bytes from disk, ``include`` lines, and file:line for every piece.

The text stages are in ``grammar``; this module adds what needs the file system, the way
LPRng 3.8.B does it: an ``include`` is spliced in place (so continuation lines after it
attach to the last entry of the included file), relative names are taken from the
current directory, and nesting deeper than 4 levels is fatal.
"""
from __future__ import annotations

import errno
import os
import stat

from lpfilter.safefiles import kind_of
from lpfilter.structs import FrozenStruct, Struct
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:  # imported where a file is read: a warm cache reads none
    from collections.abc import Callable
    from typing import NamedTuple

    from lpfilter.printcap import grammar

#: LPRng's Read_file_list gives up beyond this many nested includes.
MAX_INCLUDE_DEPTH = 4
#: The largest printcap file lpfilter reads, and the most text one top-level file may
#: bring in with all its includes: generous (a 10,000-queue printcap is about 1 MiB), but
#: ``include /dev/zero`` or a runaway generator must not eat the machine's memory.
MAX_PRINTCAP_BYTES = 16 * 1024 * 1024
#: The most files one top-level printcap may read through ``include`` lines: the depth
#: limit alone lets a file that includes itself many times on one line read it N**4 times.
MAX_INCLUDED_FILES = 1000
#: The longest entry (with its continuation lines) lpfilter parses: real ones are a few
#: KiB (an ``all=`` list of 10,000 queues is ~100 KiB), and the parser needs about 150
#: times an entry's size in memory while it works on it.
MAX_ENTRY_BYTES = 1024 * 1024


if TYPE_CHECKING:
    class _Origin(NamedTuple):
        file: str
        line: int
else:
    class _Origin(tuple):
        """``namedtuple("Origin", ("file", "line"))`` written out: typing.NamedTuple
        compiles each field's annotation (1.2 ms at import), and ``collections`` with what
        it imports costs 7 M instructions, which no other part of a quick command needs."""

        __slots__ = ()
        _fields = ("file", "line")

        def __new__(cls, file: str, line: int) -> _Origin:
            return tuple.__new__(cls, (file, line))

        def __getnewargs__(self) -> tuple[str, int]:
            return tuple(self)

        def __repr__(self) -> str:
            return f"{type(self).__name__}(file={self[0]!r}, line={self[1]!r})"

        def _replace(self, **changes: object) -> _Origin:
            values = {"file": self[0], "line": self[1]}
            values.update(changes)
            return type(self)(**values)

        file = property(lambda self: self[0], doc="The file's name, as it was given.")
        line = property(lambda self: self[1], doc="The line's number (1 is the first).")


class Origin(_Origin):
    """Where a piece of printcap text was written: the reference every message starts with.

    A named tuple: a large printcap has one per line, so they must be cheap to make.
    """

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Problem(FrozenStruct):
    """Something a printcap gets wrong. ``fatal`` ones stop LPRng (and lpfilter) from using it."""

    __slots__ = _fields = ("origin", "message", "fatal", "note")
    origin: Origin | None
    message: str
    fatal: bool
    #: Not a mistake, but worth knowing (a key lpfilter does not act on): checkpc shows it
    #: and still exits 0.
    note: bool

    def __init__(self, origin: Origin | None, message: str, fatal: bool = False,
                 note: bool = False) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "origin", origin)
        setattr_(self, "message", message)
        setattr_(self, "fatal", fatal)
        setattr_(self, "note", note)

    def __str__(self) -> str:
        text = f"note: {self.message}" if self.note else self.message
        return f"{self.origin}: {text}" if self.origin else text


def decode(data: bytes) -> str:
    """Printcaps are bytes to LPRng; keep every byte (surrogateescape) so none is changed."""
    return data.decode("utf-8", "surrogateescape")


#: The device number of /dev/null on Linux (character device 1:3).
_DEV_NULL = os.makedev(1, 3)


class NotAPrintcap(OSError):
    """A printcap path that names no regular file, or a file over MAX_PRINTCAP_BYTES."""


def read_text(path: str, limit: int = MAX_PRINTCAP_BYTES) -> str:
    """The text of one printcap file; OSError is the caller's to report.

    Symlinks are followed (/etc/printcap is often one), but what they lead to must be a
    regular file of at most ``limit`` bytes (or /dev/null, read as empty): a FIFO would
    block for ever and /dev/zero never ends. The type is looked at before opening (opening
    some devices acts on them) and again on the open descriptor; O_NONBLOCK keeps a FIFO
    swapped in between from blocking the open, and at most ``limit + 1`` bytes are ever
    read.
    """
    before = os.stat(path)
    if stat.S_ISCHR(before.st_mode) and before.st_rdev == _DEV_NULL:
        return ""  # a printcap linked to /dev/null is an admin's way of saying "empty"
    if not stat.S_ISREG(before.st_mode):
        raise NotAPrintcap(errno.EINVAL, f"{kind_of(before.st_mode)}, not a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotAPrintcap(errno.EINVAL, f"{kind_of(info.st_mode)}, not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise NotAPrintcap(errno.EFBIG, f"larger than lpfilter's limit of {limit >> 20} MiB"
                           " for a printcap file; split it or remove what is not printcap")
    return decode(b"".join(chunks))


def _origin_factory(path: str) -> Callable[[int], Origin]:
    return lambda lineno: Origin(path, lineno)


class _Budget(Struct):
    """What one top-level file may still read with its includes (files, characters)."""

    __slots__ = _fields = ("files", "text")

    def __init__(self, files: int = MAX_INCLUDED_FILES + 1,
                 text: int = MAX_PRINTCAP_BYTES) -> None:
        self.files = files
        self.text = text


def file_lines(path: str, problems: list[Problem], *, depth: int = 0,
               include_from: Origin | None = None, reader: Callable[[str], str] = read_text,
               seen: list[str] | None = None, budget: _Budget | None = None,
               ) -> list[grammar.Line]:
    """The physical lines of ``path`` with its includes spliced in, as LPRng reads them.

    Errors are appended to ``problems`` (include errors are fatal, as in LPRng) and the
    offending include is skipped, so checkpc can go on and report everything at once.
    """
    budget = budget if budget is not None else _Budget()
    if seen is not None:
        seen.append(path)
    budget.files -= 1
    try:
        if budget.files < 0:
            raise NotAPrintcap(errno.EMLINK, f"more than {MAX_INCLUDED_FILES} files read"
                               " through include lines; flatten the includes")
        text = reader(path)
        budget.text -= len(text)
        if budget.text < 0:
            raise NotAPrintcap(errno.EFBIG, "the printcap and its includes hold more than"
                               f" lpfilter's limit of {MAX_PRINTCAP_BYTES >> 20} MiB of text")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if include_from is None:
            problems.append(Problem(None, f"{path}: cannot read printcap: {reason}", True))
        else:
            problems.append(Problem(include_from, f"cannot read included file {path}: {reason}"
                                    " (LPRng stops here too)", True))
        return []
    from lpfilter.printcap import grammar
    result: list[grammar.Line] = []
    for line in grammar.physical_lines(text, _origin_factory(path)):
        names = grammar.include_files(line.text)
        if names is None:
            result.append(line)
            continue
        if depth + 1 > MAX_INCLUDE_DEPTH:
            problems.append(Problem(line.origin, f"include nested more than {MAX_INCLUDE_DEPTH}"
                                    " levels deep (LPRng stops here); flatten the includes",
                                    True))
            continue
        for name in names:
            if "\0" in name:  # no file name holds one; open() would raise ValueError
                problems.append(Problem(line.origin, f"include {visible(name)}:"
                                        " a NUL byte in the file name; remove it", True))
                continue
            if not os.path.isabs(name):
                problems.append(Problem(line.origin, f"include {name}: a relative name is taken"
                                        " from the current directory, not from this file's"
                                        " directory; write an absolute path"))
            if budget.files < 0 or budget.text < 0:
                continue  # the limit was said once, where it was passed
            result.extend(file_lines(os.path.abspath(name), problems, depth=depth + 1,
                                     include_from=line.origin, reader=reader, seen=seen,
                                     budget=budget))
    return result


def read_entries(path: str, problems: list[Problem],
                 seen: list[str] | None = None) -> list[grammar.RawEntry]:
    """The raw entries of one top-level printcap file (entries never span two files).

    ``seen`` collects the name of every file read, includes too, for the parse cache.
    """
    from lpfilter.printcap import grammar
    return bounded(grammar.assemble(file_lines(path, problems, seen=seen)), problems)


def bounded(entries: list[grammar.RawEntry], problems: list[Problem]) -> list[grammar.RawEntry]:
    """The entries not longer than MAX_ENTRY_BYTES; each longer one is a fatal problem."""
    kept = []
    for entry in entries:
        if len(entry.text) <= MAX_ENTRY_BYTES:
            kept.append(entry)
            continue
        name = visible(entry.text[:40])
        problems.append(Problem(entry.pieces[0][1].origin, f"the entry starting '{name}' is"
                                f" {len(entry.text)} characters long, over lpfilter's limit"
                                f" of {MAX_ENTRY_BYTES >> 20} MiB for one entry; is this"
                                " file a printcap?", True))
    return kept
