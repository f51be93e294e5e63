"""The ``lpfilter`` command line: parse, dispatch, and turn errors into exit statuses.

This is the only place that configures logging, prints error messages and chooses exit
statuses; everything below raises ``LpfilterError`` subclasses. Command modules are
imported only when their command runs, so a quick command stays quick.
"""
from __future__ import annotations

import gc
import os
import sys

from lpfilter import logs
from lpfilter.commands.environment import Context, split_global_options
from lpfilter.commands.exits import for_error, worst
from lpfilter.commands.registry import COMMANDS, PROGRAMS, command_module
from lpfilter.errors import NO_ROOM, LpfilterError, Several
from lpfilter.status import ExitStatus
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence
    from typing import Any

log = logs.getLogger(__name__)

#: The longest line ``lpc`` with no command reads (a longer one is read as several).
LPC_LINE_MAX = 64 * 1024

__all__ = ["COMMANDS", "build_parser", "main"]


def build_parser(*, lazy: bool = False) -> argparse.ArgumentParser:
    """The whole parser (lpfilter.commands.parser); with ``lazy``, each command's own
    arguments are added (and its module imported) only when that command is chosen."""
    from lpfilter.commands.parser import build_parser as build
    return build(lazy=lazy)


def _parse(argv: list[str]) -> Any:
    """The command line's namespace: read by quickargs when it is a quick command's plain
    line (argparse is not even imported), else by argparse (which may exit: help, a
    usage error)."""
    head, raw = _split_filter(argv)
    from lpfilter.commands import quickargs
    quick = quickargs.read(head) if raw is None else quickargs.read_filter(head, raw)
    if quick is not None:
        return quick
    args = build_parser(lazy=True).parse_args(head)
    if raw is not None:
        args.filter_argv = raw
    return args


#: What ``watch`` logs at INFO by default (start, each job's outcome, stop), so that the
#: journal shows what happened; every other command, and ``watch -q``, says only warnings.
_WATCH_LOGGERS = ("lpfilter.commands.watch_cmd", "lpfilter.spool.watcher", "lpfilter.spool.worker",
                  "lpfilter.spool.ledger", "lpfilter.commands.lpdserver", "lpfilter.server",
                  "lpfilter.spool.lpcops")


def _configure_logging(verbose: int, debug: bool, *, watch: bool = False,
                       quiet: bool = False, defer: bool = False) -> None:
    """stderr, one ``lpfilter: `` line a record. With ``defer`` (the process's own command)
    at the default level, ``logging`` is imported and configured only for the first record
    kept (lpfilter.logs): a quick command keeps none."""
    level = logs.DEBUG if debug else logs.INFO if verbose else logs.WARNING
    loud = _WATCH_LOGGERS if watch and not quiet and level > logs.INFO else ()

    def configure() -> None:
        import logging
        logging.basicConfig(level=level, format="lpfilter: %(message)s", stream=sys.stderr,
                            force=True)
        for name in loud:  # reset when the command ends (main's finally)
            logging.getLogger(name).setLevel(logging.INFO)

    if defer and level == logs.WARNING:  # (a cron pass that finds nothing logs nothing)
        logs.defer(level, configure, loud)
        return
    logs.settle()  # one left deferred by an earlier command of this process: replaced below
    configure()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run one ``lpfilter`` command; returns the exit status (see lpfilter.status)."""
    if argv is None:  # the process's own command (the console script, python -m lpfilter)
        program = os.path.basename(sys.argv[0]) if sys.argv else ""
        words = [program] if program in PROGRAMS else []  # lpr, lpq... (a link to lpfilter)
        try:
            return _main([*words, *sys.argv[1:]], environ, process=True)
        finally:
            # The interpreter exits next. Its last collection would walk every object of
            # every module imported (about 10 ms of a quick command), and none of them is
            # garbage: frozen, they are left to the exit's teardown.
            gc.freeze()
    return _main(argv, environ)


def _main(argv: Sequence[str], environ: Mapping[str, str] | None, *,
          process: bool = False, line: bool = False) -> int:
    try:
        args = _parse(list(argv))
    except SystemExit as exc:  # argparse: --help, --version, or a usage error
        return int(exc.code or 0)
    if process:  # start-up is over (lpfilter.__main__ turned the collector off for it):
        gc.freeze()  # what it made is never garbage; the command's own objects may be
        gc.enable()
    _configure_logging(args.verbose, args.debug, watch=args.action == "watch",
                       quiet=getattr(args, "quiet", False), defer=process)
    context = Context(args, os.environ if environ is None else environ)
    try:
        if args.action == "lpc" and args.word is None:  # lpc alone: a line a command
            if line:  # (a line of lpc's own with options only: never lines within lines)
                print("lpfilter lpc: a command, please ('help' lists them)", file=sys.stderr)
                return int(ExitStatus.USAGE)
            return _lpc_lines(list(argv), environ)
        return int(command_module(args.module).run(context))
    except LpfilterError as exc:
        if args.debug:
            log.exception("error")
        return int(_said(exc))
    except KeyboardInterrupt:
        print("lpfilter: interrupted", file=sys.stderr)
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (lpfilter printcap --all | head): not an error of ours.
        _silence_stdout()
        return int(ExitStatus.OK)
    except Exception as exc:  # noqa: BLE001 - the edge: anything unexpected is a bug
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            # A full or read-only file system outside the spool's own writes (the lock
            # directory...): the same expected condition, the same status.
            if args.debug:
                log.exception("error")
            print(f"lpfilter: cannot write {exc.filename or 'a file'}: {exc.strerror}; free"
                  " space on its file system (or remount it read-write) and try again",
                  file=sys.stderr)
            return int(ExitStatus.SPOOL_FULL)
        if args.debug:
            log.exception("internal error")
            return int(ExitStatus.INTERNAL)
        print(f"lpfilter: internal error: {type(exc).__name__}: {visible(str(exc))} (run with"
              " --debug for a traceback, and please report it)", file=sys.stderr)
        return int(ExitStatus.INTERNAL)
    finally:
        if args.action == "watch":  # watch's INFO default ends with the command
            logs.forget()  # (unrun, it set no level)
            logging = sys.modules.get("logging")  # (not imported: no level was set)
            if logging is not None:
                for name in _WATCH_LOGGERS:
                    logging.getLogger(name).setLevel(logging.NOTSET)


def _said(error: LpfilterError) -> ExitStatus:
    """One line for an error, one each (in order) for ``Several``; the exit status (of
    several, the worst)."""
    if isinstance(error, Several):
        return worst([_said(each) for each in error.errors])
    print(f"lpfilter: {visible(str(error))}", file=sys.stderr)  # one line, always
    return for_error(error)


def _lpc_lines(argv: list[str], environ: Mapping[str, str] | None) -> int:
    """LPRng's (and BSD's) lpc with no command: each line of standard input is one, run as
    ``lpc ... LINE`` would be (its errors said, the next line read), until ``quit``,
    ``exit``, the input's end or Ctrl-C; ``lpc>`` prompts a terminal. The exit status is
    the worst of the lines'."""
    statuses: list[ExitStatus] = []
    terminal = sys.stdin is not None and sys.stdin.isatty()  # (None: started with it closed)
    while True:
        if terminal:
            print("lpc> ", end="", file=sys.stdout, flush=True)
        line = sys.stdin.readline(LPC_LINE_MAX) if sys.stdin is not None else ""
        words = line.split()
        if not line or words[:1] in (["quit"], ["exit"]):
            if terminal and not line:
                print()  # Ctrl-D at the prompt: the shell's prompt on a line of its own
            return int(worst(statuses)) if statuses else 0
        if words:
            status = ExitStatus(_main([*argv, *(["help"] if words == ["?"] else words)],
                                      environ, line=True))
            if status is ExitStatus.INTERRUPTED:
                return int(status)
            statuses.append(status)


def _split_filter(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``lpfilter [global options] filter REST``: REST is lpd's option list, passed raw
    (argparse would trip over ``-Aroot@host+507`` or a lone accounting file name). A
    global ``-P q`` joins that list as ``-Pq`` (after the destination, before the rest, so
    a -P in REST still wins), as filter reads it there."""
    head, queues, i = split_global_options(argv)
    if i < len(argv) and argv[i] == "filter":
        rest = argv[i + 1:]
        at = 1 if rest and rest[0] and not rest[0].startswith("-") else 0
        return head + ["filter"], rest[:at] + [f"-P{queue}" for queue in queues] + rest[at:]
    return argv, None


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)

