"""A parse cache: an unchanged printcap file is not parsed again on every command.

Parsing with pyparsing (and importing it) costs far more than a quick command may spend;
the records of each top-level file are kept beside the user's other caches and used while
none of the files it was built from (the file and its includes) changed. They are stored
with ``marshal`` as plain tuples (three times faster to write than a pickle, and data
only), and a cache file is only trusted in a directory that belongs to this user and
that no one else may write.
"""
from __future__ import annotations

import gc
import os
import stat

from lpfilter import __version__
from lpfilter import logs
from lpfilter.digest import sha256_hex
from lpfilter.printcap.model import Option, Record
from lpfilter.printcap.source import MAX_PRINTCAP_BYTES, Origin, Problem
from lpfilter.safefiles import create_unique
from lpfilter.structs import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

log = logs.getLogger(__name__)

#: Bump when Record, Option or Problem change shape.
FORMAT = 4

Stamp = tuple[int, int, int] | None


class CachedFile(Struct):
    """What one top-level file parsed into, and the stamps of every file it read."""

    __slots__ = _fields = ("stamps", "records", "problems")

    def __init__(self, stamps: dict[str, Stamp], records: list[Record],
                 problems: list[Problem]) -> None:
        self.stamps = stamps
        self.records = records
        self.problems = problems


def stamp(path: str) -> Stamp:
    """(inode, size, mtime in ns) of a file, or None when it does not exist."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _code_stamp() -> str:
    """The parser's own files: a changed lpfilter (even at the same version) is a new cache."""
    here = os.path.dirname(os.path.abspath(__file__))  # by path: a warm cache never imports
    return ",".join(str(stamp(os.path.join(here, f"{module}.py"))) for module in (  # the grammar
        "datatypes", "grammar", "keys", "model", "source"))


def no_gc() -> NoGc:
    """Build or store many small objects without the cyclic collector running over and
    over on them (it doubled the time of a 10,000-entry printcap); none of them is cyclic."""
    return NoGc()


class NoGc:
    """``no_gc``. (A class, not contextlib's decorator: contextlib costs every quick
    command 2.7 M instructions to import.)"""

    __slots__ = ("enabled",)

    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *_exc: object) -> None:
        if self.enabled:
            gc.enable()


def _flatten(cached: CachedFile) -> tuple[Any, ...]:
    """Records and problems as nested tuples of str/int/bool (what marshal stores)."""
    files: dict[str, int] = {}

    def fid(name: str) -> int:
        return files.setdefault(name, len(files))

    records = [(r.names, fid(r.origin.file), r.origin.line,
                [(o.key, o.text, o.form, o.value, fid(o.origin.file), o.origin.line,
                  o.swallowed, o.rejoined) for o in r.options]) for r in cached.records]
    problems = [(p.origin is not None and fid(p.origin.file), p.origin.line if p.origin else 0,
                 p.message, p.fatal) for p in cached.problems]
    return (FORMAT, cached.stamps, list(files), records, problems)


def _rebuild(data: tuple[object, ...]) -> CachedFile:
    """The inverse of _flatten; any malformed data raises (and the cache is not used)."""
    fmt, stamps, files, records, problems = data
    if fmt != FORMAT:
        raise ValueError("another cache format")
    names: list[str] = files  # type: ignore[assignment]
    built = [Record(list(n), [Option(k, t, fm, v, Origin(names[f], ln), sw, rj, k.lower())
                              for (k, t, fm, v, f, ln, sw, rj) in opts],
                    Origin(names[rf], rl), None)
             for (n, rf, rl, opts) in records]  # type: ignore[attr-defined]
    found = [Problem(Origin(names[f], ln) if f is not False else None, message, fatal)
             for (f, ln, message, fatal) in problems]  # type: ignore[attr-defined]
    return CachedFile({k: tuple(v) if v is not None else None
                       for k, v in stamps.items()}, built, found)  # type: ignore[attr-defined]


def _entry_path(cache_dir: str, path: str) -> str:
    key = "\0".join((os.path.abspath(path), os.getcwd(), __version__, str(FORMAT),
                      _code_stamp()))
    return os.path.join(cache_dir, sha256_hex(key.encode("utf-8", "surrogateescape"))[:32]
                        + ".cache")


def _private_dir(cache_dir: str) -> bool:
    """Only a directory of ours that nobody else can write may hold a trusted cache:
    another user could otherwise feed us a printcap of their choosing."""
    try:
        info = os.stat(cache_dir)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def load(cache_dir: str, path: str) -> CachedFile | None:
    """The cached parse of ``path`` if every file it came from is unchanged, else None."""
    if not _private_dir(cache_dir):
        return None
    import marshal
    entry = _entry_path(cache_dir, path)
    try:
        with open(entry, "rb") as handle, no_gc():
            info = os.fstat(handle.fileno())
            if (info.st_uid != os.getuid() or not stat.S_ISREG(info.st_mode)
                    or info.st_size > 4 * MAX_PRINTCAP_BYTES):
                return None
            # loads() on the whole file: load() on a file object reads field by field
            # through Python and took ten times as long.
            cached = _rebuild(marshal.loads(handle.read()))
    except (OSError, EOFError, TypeError, ValueError, IndexError, KeyError):
        return None
    if any(stamp(name) != old for name, old in cached.stamps.items()):
        return None
    return cached


def store(cache_dir: str, path: str, cached: CachedFile) -> None:
    """Save a parse for next time; a cache that cannot be written is only a lost speed-up.

    Records are stored without their raw text (only checkpc needs it, and it never uses
    the cache): that made the file a third smaller and faster to read.
    """
    import marshal
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        if not _private_dir(cache_dir):
            log.debug("parse cache %s is not private to this user; not used", cache_dir)
            return
        fd, tmp = create_unique(cache_dir, ".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle, no_gc():
                marshal.dump(_flatten(cached), handle)
            os.replace(tmp, _entry_path(cache_dir, path))
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        log.debug("cannot write the parse cache in %s: %s", cache_dir, exc)
