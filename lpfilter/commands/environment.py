"""Which printcap files and which queue a command uses: LPRng's client rules.

Kept apart from argument parsing so that every command (and the tests) resolve
``--printcap``, ``LPFILTER_PRINTCAP``, ``-P``, ``PRINTER`` and ``LPDEST`` the same way.
"""
from __future__ import annotations

import os
import sys

from lpfilter.errors import AccessError, ConfigError, UsageError
from lpfilter.structs import FrozenStruct, Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence
    from types import SimpleNamespace
    from typing import TextIO

    from lpfilter.printcap import Printcap

SYSTEM_PRINTCAP = "/etc/printcap"
USER_PRINTCAP = ".printcap"
#: Where setup.py installs the example printcap, under the installation prefix.
EXAMPLE_DOC = os.path.join("share", "doc", "lpfilter", "printcap.example")


class PrintcapPaths(FrozenStruct):
    """Files to read in order, and those of them that may be missing (``~/.printcap``)."""

    __slots__ = _fields = ("paths", "optional", "source")
    paths: tuple[str, ...]
    optional: tuple[str, ...]
    #: Who named them: "--printcap", "LPFILTER_PRINTCAP" or "default".
    source: str

    def __init__(self, paths: tuple[str, ...], optional: tuple[str, ...] = (),
                 source: str = "default") -> None:
        setattr_ = object.__setattr__
        setattr_(self, "paths", paths)
        setattr_(self, "optional", optional)
        setattr_(self, "source", source)


def _split(value: str, origin: str) -> tuple[str, ...]:
    paths = tuple(p for p in value.replace(";", ":").split(":") if p)
    for path in paths:
        if path.startswith("|"):
            raise UsageError(f"{origin}: '{path}': lpfilter does not run printcap programs;"
                             " write the printcap to a file and name that file")
    if not paths:
        raise UsageError(f"{origin}: no printcap file named")
    return paths


def split_global_options(argv: Sequence[str]) -> tuple[list[str], list[str], int]:
    """lpfilter's options before its command (``cli.build_parser``'s: -v, --verbose,
    --debug, --printcap PATH, -P QUEUE), known here so that the command word is found
    without argparse (``filter``'s raw option list, ``lpc reread``'s look at a process's
    arguments): (those options but -P, the queues of -P, where the command word is).
    Short options bundle as argparse takes them (``-vvPq``, ``-vP q``); long ones are
    never abbreviated (the parser's allow_abbrev=False)."""
    i = 0
    head: list[str] = []
    queues: list[str] = []
    while i < len(argv):
        token = argv[i]
        short = _short_options(token)
        if token in ("--verbose", "--debug") or token.startswith("--printcap="):
            head.append(token)
            i += 1
        elif token == "--printcap":
            head += argv[i:i + 2]
            i += 2
        elif short is None or token == "-":
            break
        elif short[1] is None:  # -v, -vv
            head.append(token)
            i += 1
        elif short[1]:  # -Pq, -P=q (argparse: q), -vPq (argparse 3.11: -vP=q is =q)
            head += [f"-{short[0]}"] if short[0] else []
            queues.append(short[1] if short[0] else short[1].removeprefix("="))
            i += 1
        elif i + 1 < len(argv):  # -P q, -vP q
            head += [f"-{short[0]}"] if short[0] else []
            queues.append(argv[i + 1])
            i += 2
        else:
            break
    return head, queues, i


def _short_options(token: str) -> tuple[str, str | None] | None:
    """``-v...`` and ``-v...P[QUEUE]`` as (the v's, what follows P or None); else None."""
    if not token.startswith("-"):
        return None
    rest = token[1:].lstrip("v")
    verbose = "v" * (len(token) - 1 - len(rest))
    if not rest:
        return verbose, None
    return (verbose, rest[1:]) if rest.startswith("P") else None


def printcap_paths(option: str | None, environ: Mapping[str, str]) -> PrintcapPaths:
    """``--printcap``, else ``$LPFILTER_PRINTCAP``, else /etc/printcap then ~/.printcap."""
    if option is not None:
        return PrintcapPaths(_split(option, "--printcap"), source="--printcap")
    if environ.get("LPFILTER_PRINTCAP"):
        return PrintcapPaths(_split(environ["LPFILTER_PRINTCAP"], "LPFILTER_PRINTCAP"),
                             source="LPFILTER_PRINTCAP")
    home = environ.get("HOME") or os.path.expanduser("~")
    user = os.path.join(home, USER_PRINTCAP)
    return PrintcapPaths((SYSTEM_PRINTCAP, user), (user,))


def example_printcap() -> str:
    """Where a user finds the example printcap: the installed copy (pip puts setup.py's
    data_files under the prefix), else the source tree's etc/printcap.example."""
    import site  # only on this error path: every command imports this module
    import sysconfig
    from pathlib import Path
    bases = (sysconfig.get_path("data"), sys.prefix, site.USER_BASE, "/usr/local", "/usr")
    for base in dict.fromkeys(b for b in bases if b):
        path = os.path.join(base, EXAMPLE_DOC)
        if os.path.isfile(path):
            return f"etc/printcap.example (installed as {path})"
    source = Path(__file__).resolve().parents[2] / "etc" / "printcap.example"
    if source.is_file():
        return str(source)
    return f"etc/printcap.example (in lpfilter's source; pip installs it as PREFIX/{EXAMPLE_DOC})"


def require_printcap(paths: PrintcapPaths) -> None:
    """No printcap at all is a set-up step not yet taken: say how to take it, in one line."""
    for path in paths.paths:
        if path not in paths.optional and not os.path.exists(path):
            named = "the default" if paths.source == "default" else f"given by {paths.source}"
            raise ConfigError(f"no printcap found: {path} ({named}) does not exist;"
                              " name one with --printcap FILE or LPFILTER_PRINTCAP=FILE, or"
                              f" start from {example_printcap()}")


def default_queue(option: str | None, environ: Mapping[str, str],
                  first_printer: str | None) -> str:
    """``-P``, else ``$PRINTER``, else ``$LPDEST``, else the printcap's first printer."""
    for candidate in (option, environ.get("PRINTER"), environ.get("LPDEST"), first_printer):
        if candidate:
            return candidate
    raise ConfigError("no printer given (-P, PRINTER or LPDEST) and the printcap defines none")


def cache_dir(environ: Mapping[str, str]) -> str | None:
    """Where parsed printcaps are cached: $LPFILTER_CACHE_DIR, else the XDG cache directory.

    ``LPFILTER_NO_CACHE`` set to anything but empty or 0 turns the cache off.
    """
    if environ.get("LPFILTER_NO_CACHE", "0") not in ("", "0"):
        return None
    if environ.get("LPFILTER_CACHE_DIR"):
        return environ["LPFILTER_CACHE_DIR"]
    base = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lpfilter")


def lock_dir(environ: Mapping[str, str]) -> str:
    """Where printer (device) locks live, shared by every lpfilter process of this user.

    ``$LPFILTER_LOCK_DIR``; else /run/lpfilter for root; else ``$XDG_RUNTIME_DIR/lpfilter``;
    else /tmp/lpfilter-UID. Created on first use (mode 0700).
    """
    if environ.get("LPFILTER_LOCK_DIR"):
        path = environ["LPFILTER_LOCK_DIR"]
    elif os.getuid() == 0:
        path = "/run/lpfilter"
    elif environ.get("XDG_RUNTIME_DIR"):
        path = os.path.join(environ["XDG_RUNTIME_DIR"], "lpfilter")
    else:
        path = f"/tmp/lpfilter-{os.getuid()}"
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise AccessError(f"lock directory {path}: cannot create it: {exc.strerror}; set"
                          " LPFILTER_LOCK_DIR to a directory you may write") from None
    return path


class Context(Struct):
    """What every command gets: parsed options, environment, and the printcap on demand."""

    _fields = ("args", "environ", "stdout", "_printcap")

    def __init__(self, args: argparse.Namespace | SimpleNamespace, environ: Mapping[str, str],
                 stdout: TextIO | None = None, _printcap: Printcap | None = None) -> None:
        self.args = args
        self.environ = environ
        self.stdout: TextIO = sys.stdout if stdout is None else stdout
        self._printcap = _printcap

    def printcap(self, *, side: str = "server", strict: bool = True,
                 cached: bool = True) -> Printcap:
        """The printcap named by --printcap / LPFILTER_PRINTCAP / the defaults, read once.

        ``cached=False`` parses afresh and keeps each record's raw text (checkpc needs it).
        """
        if self._printcap is None or self._printcap.side != side:
            from lpfilter import printcap
            paths = printcap_paths(self.args.printcap, self.environ)
            require_printcap(paths)
            self._printcap = printcap.load(paths.paths, optional=paths.optional,
                                           side=side,  # type: ignore[arg-type]
                                           cache_dir=cache_dir(self.environ) if cached
                                           else None)
        if strict:
            from lpfilter.printcap import raise_fatal
            raise_fatal(self._printcap)
        return self._printcap

    def reset_printcap(self) -> None:
        """Forget the printcap read so far (SIGHUP: read it again)."""
        self._printcap = None

    def queue(self, option: str | None) -> str:
        """The queue a command acts on: -P, PRINTER, LPDEST, else the first printer."""
        first = None
        if not option and not self.environ.get("PRINTER") and not self.environ.get("LPDEST"):
            first = self.printcap().default_printer()
        return default_queue(option, self.environ, first)
