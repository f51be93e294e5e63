"""``lpfilter checkpc``: every printcap and spool-directory problem, one line each."""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from lpfilter.errors import LpfilterError
from lpfilter.status import ExitStatus

if TYPE_CHECKING:
    from lpfilter.commands.environment import Context
    from lpfilter.printcap import Printcap, Problem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fix", action="store_true",
                        help="create missing spool directories and correct their modes")


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
        secret = entry.string("ftp_password_file")
        if secret:
            from lpfilter.backends.ftpauth import password_file_problem
            message = password_file_problem(secret)
            if message:
                found.append(Problem(entry.origin("ftp_password_file") or entry.where,
                                     f"queue {entry.name}: {message}"))
        mode = entry.number("spool_dir_perms") or 0o700
        for finding in check_spool_dir(path, mode, fix=fix):
            if finding.fixed:
                fixed.append(f"{where}: {finding.message}")
            else:
                found.append(Problem(where, finding.message, fatal=not finding.note,
                                     note=finding.note))
    return found, fixed


def run(ctx: Context) -> ExitStatus:
    from lpfilter.errors import ConfigError
    from lpfilter.printcap.check import check_printcap
    printcap = ctx.printcap(strict=False, cached=False)
    for problem in printcap.problems:
        if problem.fatal and problem.origin is None:  # a printcap file cannot be read at all
            raise ConfigError(problem.message)
    spool, fixed = _spool_problems(printcap, ctx.args.fix)
    problems = check_printcap(printcap) + spool
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
