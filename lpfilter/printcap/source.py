"""Reading printcap files: bytes from disk, ``include`` lines, and file:line for every piece.

The text stages are in ``grammar``; this module adds what needs the file system, the way
LPRng 3.8.B does it: an ``include`` is spliced in place (so continuation lines after it
attach to the last entry of the included file), relative names are taken from the
current directory, and nesting deeper than 4 levels is fatal.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from lpfilter.printcap import grammar
from lpfilter.text import visible

#: LPRng's Read_file_list gives up beyond this many nested includes.
MAX_INCLUDE_DEPTH = 4


class Origin(NamedTuple):
    """Where a piece of printcap text was written: the reference every message starts with.

    A named tuple: a large printcap has one per line, so they must be cheap to make.
    """

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something a printcap gets wrong. ``fatal`` ones stop LPRng (and lpfilter) from using it."""

    origin: Origin | None
    message: str
    fatal: bool = False
    #: Not a mistake, but worth knowing (a key lpfilter does not act on): checkpc shows it
    #: and still exits 0.
    note: bool = False

    def __str__(self) -> str:
        text = f"note: {self.message}" if self.note else self.message
        return f"{self.origin}: {text}" if self.origin else text


def decode(data: bytes) -> str:
    """Printcaps are bytes to LPRng; keep every byte (surrogateescape) so none is changed."""
    return data.decode("utf-8", "surrogateescape")


def read_text(path: str) -> str:
    """The text of one printcap file; OSError is the caller's to report."""
    with open(path, "rb") as handle:
        return decode(handle.read())


def _origin_factory(path: str) -> Callable[[int], Origin]:
    return lambda lineno: Origin(path, lineno)


def file_lines(path: str, problems: list[Problem], *, depth: int = 0,
               include_from: Origin | None = None, reader: Callable[[str], str] = read_text,
               seen: list[str] | None = None) -> list[grammar.Line]:
    """The physical lines of ``path`` with its includes spliced in, as LPRng reads them.

    Errors are appended to ``problems`` (include errors are fatal, as in LPRng) and the
    offending include is skipped, so checkpc can go on and report everything at once.
    """
    if seen is not None:
        seen.append(path)
    try:
        text = reader(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if include_from is None:
            problems.append(Problem(None, f"{path}: cannot read printcap: {reason}", True))
        else:
            problems.append(Problem(include_from, f"cannot read included file {path}: {reason}"
                                    " (LPRng stops here too)", True))
        return []
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
            result.extend(file_lines(os.path.abspath(name), problems, depth=depth + 1,
                                     include_from=line.origin, reader=reader, seen=seen))
    return result


def read_entries(path: str, problems: list[Problem],
                 seen: list[str] | None = None) -> list[grammar.RawEntry]:
    """The raw entries of one top-level printcap file (entries never span two files).

    ``seen`` collects the name of every file read, includes too, for the parse cache.
    """
    return grammar.assemble(file_lines(path, problems, seen=seen))
