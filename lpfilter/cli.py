"""The ``lpfilter`` command line: parse, dispatch, and turn errors into exit statuses.

This is the only place that configures logging, prints error messages and chooses exit
statuses; everything below raises ``LpfilterError`` subclasses. Command modules are
imported only when their command runs, so a quick command stays quick.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from gettext import gettext
from types import ModuleType

from lpfilter import __version__, logs
from lpfilter.commands.environment import Context, split_global_options
from lpfilter.commands.exits import for_error, worst
from lpfilter.errors import NO_ROOM, LpfilterError, Several
from lpfilter.status import ExitStatus
from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

log = logs.getLogger(__name__)

#: command name -> (module under lpfilter.commands, one-line help, aliases)
COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "printcap": ("printcap_cmd", "show resolved printcap entries", ()),
    "checkpc": ("checkpc_cmd", "check the printcap and the spool directories", ()),
    "print": ("print_cmd", "spool files and print them", ()),
    "watch": ("watch_cmd", "serve queues: send their jobs to the printers", ()),
    "status": ("status_cmd", "show queues and their jobs", ("lpq",)),
    "cancel": ("jobctl_cmd", "remove jobs, stopping one that is printing", ("lprm",)),
    "requeue": ("jobctl_cmd", "queue failed or held jobs again", ()),
    "hold": ("jobctl_cmd", "hold queued jobs", ()),
    "release": ("jobctl_cmd", "release held jobs", ()),
    "lpc": ("lpc_cmd", "queue control as LPRng's lpc: stop, start, disable, redirect...", ()),
    "stop": ("lpc_cmd", "stop printing a queue's jobs (lpc stop)", ()),
    "start": ("lpc_cmd", "start printing a queue's jobs again (lpc start)", ()),
    "disable": ("lpc_cmd", "refuse new jobs for a queue (lpc disable)", ()),
    "enable": ("lpc_cmd", "take new jobs for a queue again (lpc enable)", ()),
    "down": ("lpc_cmd", "stop printing and refuse new jobs (lpc down)", ()),
    "up": ("lpc_cmd", "start printing and take new jobs (lpc up)", ()),
    "topq": ("lpc_cmd", "put jobs at the head of their queue (lpc topq)", ()),
    "move": ("lpc_cmd", "move jobs to another queue (lpc move)", ()),
    "redirect": ("lpc_cmd", "send a queue's jobs to another queue (lpc redirect)", ()),
    "holdall": ("lpc_cmd", "hold every new job of a queue (lpc holdall)", ()),
    "noholdall": ("lpc_cmd", "stop holding new jobs (lpc noholdall)", ()),
    "reread": ("lpc_cmd", "make the daemon reread the printcap (lpc reread)", ()),
    "demo": ("demo_cmd", "print a sample through a virtual printer, to see lpfilter work", ()),
    "virtual-printer": ("virtual_printer_cmd", "a JetDirect printer emulator for testing"
                        " printcaps", ()),
    "filter": ("filter_cmd", "send standard input through lpfilter's backends, as an LPRng"
               " filter or lp=| program", ()),
}


def _common_options(parser: argparse.ArgumentParser, default: object) -> None:
    """Options allowed before and after the command (``lpfilter checkpc --printcap F``)."""
    parser.add_argument("--printcap", metavar="PATH[:PATH...]", default=default,
                        help="printcap files to read (default: $LPFILTER_PRINTCAP, else"
                             " /etc/printcap and ~/.printcap)")
    parser.add_argument("-v", "--verbose", action="count", default=default,
                        help="say more (repeat for more)")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="debug logging, and a traceback on errors")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with the terminal's width asked only when text is formatted for
    the terminal. ``add_argument`` (to check a metavar) and ``add_subparsers`` (for the
    commands' prog) make a formatter whose width they never use, and asking the width
    imports shutil, and with it zlib, bz2 and lzma: 2 ms of a quick command that prints no
    help."""

    #: A fixed width while a formatter is only made for a check (``_unsized``).
    _width: int | None = None

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        with self._unsized():
            return super().add_argument(*args, **kwargs)

    def add_subparsers(self, **kwargs: Any) -> Any:
        with self._unsized():
            return super().add_subparsers(**kwargs)

    @contextlib.contextmanager
    def _unsized(self) -> Iterator[None]:
        self._width = 80
        try:
            yield
        finally:
            self._width = None

    def _get_formatter(self) -> argparse.HelpFormatter:
        if self._width is None:
            return super()._get_formatter()
        return self.formatter_class(prog=self.prog, width=self._width)  # type: ignore[call-arg]


class _CommandParser(_Parser):
    """A command's parser: an argument it does not know is its own usage error, so the
    message comes with that command's usage, not the top-level one."""

    #: Whether the command's own arguments are in (``_complete``).
    complete = False

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None,
                         ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


class _Commands(argparse._SubParsersAction):  # noqa: SLF001 - argparse's subcommand action
    """Runs the command's parser with the queues of a global ``-P`` given first, so that
    ``lpfilter -P q status`` is exactly ``lpfilter status -P q`` (same checks, same
    errors; a command without -P refuses it with its own usage).

    A command's parser is made, and its arguments added, only when argparse has chosen
    that command (``add_later``, ``_complete``): building all of them imports every
    command module and made 26 parsers, which cost a quick command (``print``,
    ``status``) more than the rest of its start-up."""

    def add_later(self, name: str, help_text: str, aliases: tuple[str, ...],
                  module: str) -> None:
        """``add_parser(name, help=..., aliases=...)``, the parser itself made on first use
        (``parser_for``); until then its words map to what is needed to make it."""
        self._choices_actions.append(self._ChoicesPseudoAction(name, list(aliases), help_text))
        for word in (name, *aliases):
            self._name_parser_map[word] = (name, help_text, aliases, module)

    def parser_for(self, word: str) -> argparse.ArgumentParser:
        """The parser of a command word (made as ``add_parser`` makes it, one object for a
        command and its aliases), with the command's arguments in."""
        found: object = self._name_parser_map[word]
        if isinstance(found, tuple):
            name, help_text, aliases, module = found
            made = self._parser_class(prog=f"{self._prog_prefix} {name}",
                                      description=help_text, add_help=False)
            made.set_defaults(module=module, action=name)
            for each in (name, *aliases):
                self._name_parser_map[each] = made
            found = made
        assert isinstance(found, argparse.ArgumentParser)
        _complete(found)
        return found

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Sequence[str] | None, option_string: str | None = None) -> None:
        values = list(values or [])
        if values and values[0] in self._name_parser_map:
            self.parser_for(values[0])
        queues = vars(namespace).pop(_GLOBAL_QUEUES, None) or []
        given = [word for queue in queues for word in ("-P", queue)]
        super().__call__(parser, namespace, values[:1] + given + values[1:], option_string)


#: Where the parser keeps the queues of a -P given before the command, until the command's
#: own parser takes them.
_GLOBAL_QUEUES = "global_queues"


def build_parser(*, lazy: bool = False) -> argparse.ArgumentParser:
    """The whole parser; with ``lazy``, each command's own arguments are added (and its
    module imported) only when that command is chosen, which parses and prints the same."""
    parser = _Parser(  # no --verb for --verbose: LPRng's and CUPS' habit,
        prog="lpfilter", allow_abbrev=False,  # and split_global_options knows all there is
        description="LPRng-style, printcap-driven print spooler backend.")
    _common_options(parser, None)
    parser.set_defaults(verbose=0, debug=False)
    parser.add_argument("-P", dest=_GLOBAL_QUEUES, metavar="QUEUE", action="append",
                        default=argparse.SUPPRESS,
                        help="the queue, for a command that takes -P (as if given after it)")
    parser.add_argument("--version", action="version", version=f"lpfilter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=_Commands,
                                parser_class=_CommandParser)
    assert isinstance(sub, _Commands)
    sub.required = True
    for name, (module, help_text, aliases) in COMMANDS.items():
        sub.add_later(name, help_text, aliases, module)
    for name in () if lazy else COMMANDS:
        sub.parser_for(name)
    return parser


def _complete(command: argparse.ArgumentParser) -> None:
    """Add a command's arguments, once, in the order a parser built whole has them: -h
    (unless the command takes -h itself, ``ADD_HELP = False``), the common options, the
    command's own."""
    if not isinstance(command, _CommandParser) or command.complete:
        return
    implementation = _command_module(str(command.get_default("module")))
    if getattr(implementation, "ADD_HELP", True):  # as argparse's add_help, translated too
        command.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                             help=gettext("show this help message and exit"))
    _common_options(command, argparse.SUPPRESS)
    implementation.add_arguments(command)
    command.set_defaults(module=command.get_default("module"),
                         action=command.get_default("action"))
    command.complete = True


def _command_module(module: str) -> ModuleType:
    return importlib.import_module(f"lpfilter.commands.{module}")


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

    def configure() -> None:
        import logging
        logging.basicConfig(level=level, format="lpfilter: %(message)s", stream=sys.stderr,
                            force=True)

    if defer and level == logs.WARNING and not watch:
        logs.defer(level, configure)
        return
    logs.settle()  # one left deferred by an earlier command of this process: replaced below
    configure()
    if watch and not quiet and level > logs.INFO:
        import logging
        for name in _WATCH_LOGGERS:  # reset when the command ends (main's finally)
            logging.getLogger(name).setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run one ``lpfilter`` command; returns the exit status (see lpfilter.status)."""
    if argv is None:  # the process's own command (the console script, python -m lpfilter)
        try:
            return _main(sys.argv[1:], environ, process=True)
        finally:
            # The interpreter exits next. Its last collection would walk every object of
            # every module imported (about 10 ms of a quick command), and none of them is
            # garbage: frozen, they are left to the exit's teardown.
            gc.freeze()
    return _main(argv, environ)


def _main(argv: Sequence[str], environ: Mapping[str, str] | None, *,
          process: bool = False) -> int:
    parser = build_parser(lazy=True)
    argv = list(argv)
    head, raw = _split_filter(argv)
    try:
        args = parser.parse_args(head)
        if raw is not None:
            args.filter_argv = raw
    except SystemExit as exc:  # argparse: --help, --version, or a usage error
        return int(exc.code or 0)
    if process:  # start-up is over (lpfilter.__main__ turned the collector off for it):
        gc.freeze()  # what it made is never garbage; the command's own objects may be
        gc.enable()
    _configure_logging(args.verbose, args.debug, watch=args.action == "watch",
                       quiet=getattr(args, "quiet", False), defer=process)
    context = Context(args, os.environ if environ is None else environ)
    try:
        return int(_command_module(args.module).run(context))
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
            import logging
            for name in _WATCH_LOGGERS:
                logging.getLogger(name).setLevel(logging.NOTSET)


def _said(error: LpfilterError) -> ExitStatus:
    """One line for an error, one each (in order) for ``Several``; the exit status (of
    several, the worst)."""
    if isinstance(error, Several):
        return worst([_said(each) for each in error.errors])
    print(f"lpfilter: {visible(str(error))}", file=sys.stderr)  # one line, always
    return for_error(error)


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

