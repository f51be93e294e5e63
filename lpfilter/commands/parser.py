"""The ``lpfilter`` command line read by argparse: the help, the usage errors, and every
command line the quick reader (quickargs.py) leaves to it.

Only the edge (cli.py) imports this module, and only when argparse is needed: argparse,
with gettext and the locale module its first translated word imports, and the making of
the parser cost a quick command about 4 ms.
"""
from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from gettext import gettext

from lpfilter import __version__
from lpfilter.commands.quickargs import GLOBAL_QUEUES, add_all, common_options
from lpfilter.commands.registry import COMMANDS, command_module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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


class Commands(argparse._SubParsersAction):  # noqa: SLF001 - argparse's subcommand action
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
        queues = vars(namespace).pop(GLOBAL_QUEUES, None) or []
        given = [word for queue in queues for word in ("-P", queue)]
        super().__call__(parser, namespace, values[:1] + given + values[1:], option_string)


def build_parser(*, lazy: bool = False) -> argparse.ArgumentParser:
    """The whole parser; with ``lazy``, each command's own arguments are added (and its
    module imported) only when that command is chosen, which parses and prints the same."""
    parser = _Parser(  # no --verb for --verbose: LPRng's and CUPS' habit,
        prog="lpfilter", allow_abbrev=False,  # and split_global_options knows all there is
        description="LPRng-style, printcap-driven print spooler backend.")
    common_options(parser, None)
    parser.set_defaults(verbose=0, debug=False)
    parser.add_argument("-P", dest=GLOBAL_QUEUES, metavar="QUEUE", action="append",
                        default=argparse.SUPPRESS,
                        help="the queue, for a command that takes -P (as if given after it)")
    parser.add_argument("--version", action="version", version=f"lpfilter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=Commands,
                                parser_class=_CommandParser)
    assert isinstance(sub, Commands)
    sub.required = True
    for name, (module, help_text, aliases) in COMMANDS.items():
        sub.add_later(name, help_text, aliases, module)
    for name in () if lazy else COMMANDS:
        sub.parser_for(name)
    return parser


def _complete(command: argparse.ArgumentParser) -> None:
    """Add a command's arguments, once (quickargs.add_all; -h's help translated as
    argparse's own)."""
    if not isinstance(command, _CommandParser) or command.complete:
        return
    implementation = command_module(str(command.get_default("module")))
    add_all(command, implementation, argparse.SUPPRESS,
            gettext("show this help message and exit"))
    command.set_defaults(module=command.get_default("module"),
                         action=command.get_default("action"))
    command.complete = True
