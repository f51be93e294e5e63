"""``lpfilter checkpc``: every printcap and spool-directory problem, one line each."""
from __future__ import annotations

import argparse
import os
import pwd
import sys

from lpfilter.errors import LpfilterError
from lpfilter.status import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.commands.spooldirs import SpoolFinding
    from lpfilter.commands.environment import Context
    from lpfilter.printcap import Entry, Printcap, Problem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--fix", action="store_true",
                        help="create missing spool directories and correct their modes"
                             " (LPRng's checkpc -f)")


def _spool_problems(printcap: Printcap, fix: bool) -> tuple[list[Problem], list[str]]:
    """Problems with the queues' spool directories, and what --fix mended."""
    from lpfilter.commands.spooldirs import check_spool_dir
    from lpfilter.printcap import Problem
    found: list[Problem] = []
    fixed: list[str] = []
    owners: dict[str, str] = {}
    # Patterns are not queues (each matching queue gets its own directory), and names that
    # all= lists but nothing defines get no directory (the printcap checks report them).
    for name in printcap.queue_names():
        try:
            entry = printcap.lookup(name)
        except LpfilterError:
            continue  # the printcap checks report it
        path = entry.string("sd") or ""
        where = entry.origin("sd") or entry.where
        if path in owners:
            found.append(Problem(where, f"queue {entry.name} shares spool directory {path} with"
                                 f" queue {owners[path]}; give each queue its own sd"))
            continue
        owners[path] = entry.name
        found += _ftp_secret_problems(entry, path)
        mode = entry.number("spool_dir_perms") or 0o700
        for finding in [*check_spool_dir(path, mode, fix=fix), *_journal(path, name, fix)]:
            if finding.fixed:
                fixed.append(f"{where}: {finding.message}")
            else:
                found.append(Problem(where, finding.message, fatal=not finding.note,
                                     note=finding.note))
    return found, fixed


def _journal(path: str, queue: str, fix: bool) -> list[SpoolFinding]:
    """The queue's journal: damaged, nearly full, not yet taken in, unsafe (--fix mends a
    damaged one); nothing for a spool directory that is not there."""
    from lpfilter.commands.journalcheck import check_journal
    return check_journal(path, queue, fix=fix) if os.path.isdir(path) else []


def _program_reader(entry: Entry, spool_dir: str) -> tuple[int, int] | None:
    """The user an ``lp=|lpfilter filter`` program of the entry runs as, when a watcher
    run as this user would run it as another (root's: the queue's filter user); else
    None (the file is read by the user running this, or by no lpfilter filter)."""
    from lpfilter.children.run import filter_owner
    from lpfilter.printcap.commandline import filter_arguments
    from lpfilter.programs import strip_prefixes
    lp = entry.string("lp") or ""
    if not lp.lstrip().startswith("|") or filter_arguments(lp) is None:
        return None
    if strip_prefixes(lp.lstrip()[1:])[2]:
        return None  # ROOT: run as the watcher itself
    try:
        owner = filter_owner(entry, spool_dir)
    except (LpfilterError, OSError):
        return None  # no such user, no spool directory: reported on their own
    return owner if owner[0] != os.getuid() else None


def _netrc_read(lp: str) -> bool:
    """Whether ``lp=|lpfilter filter ftp://...`` looks for a netrc: no password given."""
    from lpfilter.printcap.commandline import filter_arguments
    from lpfilter.printcap.destination import Ftp, classify
    words = filter_arguments(lp) or []
    found = classify(words[0], queue="") if words and not words[0].startswith("-") else None
    return isinstance(found, Ftp) and found.password is None


def _ftp_secret_problems(entry: Entry, spool_dir: str) -> list[Problem]:
    """``ftp_password_file`` as the reader will find it: the watcher (an FTP queue), or
    the queue's filter user (``lp=|lpfilter filter``), who also reads the watcher's
    ``~/.netrc`` when the entry gives no password file."""
    from lpfilter.backends.ftpauth import netrc_problem, password_file_problem
    from lpfilter.printcap import Problem
    reader = _program_reader(entry, spool_dir)
    secret = entry.string("ftp_password_file")
    if secret:
        message = password_file_problem(secret, reader)
        where = entry.origin("ftp_password_file") or entry.where
    elif reader is not None and _netrc_read(entry.string("lp") or ""):
        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            return []
        message, where = netrc_problem(home, reader), entry.origin("lp") or entry.where
    else:
        return []
    return [Problem(where, f"queue {entry.name}: {message}")] if message else []


def run(ctx: Context) -> ExitStatus:
    from lpfilter.errors import ConfigError
    from lpfilter.printcap.check import check_printcap
    printcap = ctx.printcap(strict=False, cached=False)
    for problem in printcap.problems:
        if problem.fatal and problem.origin is None:  # a printcap file cannot be read at all
            raise ConfigError(problem.message)
    from lpfilter.commands.programcheck import program_problems
    spool, fixed = _spool_problems(printcap, ctx.args.fix)
    problems = check_printcap(printcap) + program_problems(printcap) + spool
    from lpfilter.text import printable
    lines = fixed + [str(problem) for problem in problems]
    ctx.stdout.write(printable("".join(line + "\n" for line in lines)))
    problems = [problem for problem in problems if not problem.note]  # notes: exit 0
    if problems:
        count = len(problems)
        print(f"lpfilter: checkpc: {count} problem{'s' if count != 1 else ''} found",
              file=sys.stderr)
        return ExitStatus.FAILURE
    return ExitStatus.OK
