"""A quick command's plain arguments, read without argparse into what argparse makes.

argparse costs ``print``, ``status`` and ``cancel`` about 4 ms of a start that should
cost 25 (issue 16): its import, with gettext and the locale module its first translated
word imports, and the making of the parser. Yet those commands are nearly always typed
plainly (``print -P lp FILE``, ``lpq -Plp``, ``lprm -P lp 12``), and so are cron's
``watch --once -P q`` and lpd's ``filter`` (``read_filter``). Such a line is read here,
from the command's own ``add_arguments`` (a ``Recorder`` stands in for the parser), with
argparse's rules: the defaults, the last of a repeated option (each of an ``append``
one), ``-Pq`` as ``-P q``, a count, a global ``-P`` given to the command first, a
command's own ``--printcap``, ``-v`` or ``--debug`` replacing the one before the command.

Anything else gives None and argparse reads the line, with its own help and messages:
help, ``--``, an option this reader does not know (argparse also takes abbreviations),
bundled flags, ``--opt=value``, a value or a file that starts with ``-``, an option after
a file, two options of one exclusive group, a value its type refuses, ``nargs="?"``.
tests/test_quickargs.py proves that whatever this reader takes, argparse takes alike.
"""
from __future__ import annotations

import sys

from lpfilter.commands.environment import split_global_options
from lpfilter.commands.registry import COMMANDS, WORDS, command_module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import SimpleNamespace
    from typing import Any
else:  # types.SimpleNamespace is this type; importing types costs 1.2 M instructions
    SimpleNamespace = type(sys.implementation)

#: argparse.SUPPRESS's value: an option with this default is set only when given.
SUPPRESS = "==SUPPRESS=="
#: Where argparse keeps the queues of a -P given before the command, until the command's
#: own parser takes them (parser.py).
GLOBAL_QUEUES = "global_queues"
#: argparse's actions this reader knows, as what each stores when given.
_FLAGS = {"store_true": True, "store_false": False}
#: A value its type refused (argparse says why).
_REFUSED = object()


def common_options(parser: Any, default: object, short_verbose: bool = True) -> None:
    """Options allowed before and after the command (``lpfilter checkpc --printcap F``);
    without ``short_verbose`` only ``--verbose`` (the command's own ``-v``: lpstat's)."""
    parser.add_argument("--printcap", metavar="PATH[:PATH...]", default=default,
                        help="printcap files to read (default: $LPFILTER_PRINTCAP, else"
                             " /etc/printcap and ~/.printcap)")
    parser.add_argument(*("-v", "--verbose")[0 if short_verbose else 1:], action="count",
                        default=default,
                        help="say more (repeat for more)")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="debug logging, and a traceback on errors")


class Argument:
    """One ``add_argument``, as far as this reader needs it."""

    __slots__ = ("const", "convert", "default", "dest", "flags", "group", "kind")

    def __init__(self, flags: tuple[str, ...], options: dict[str, Any], group: int) -> None:
        action, nargs = options.get("action", "store"), options.get("nargs")
        self.flags, self.group, self.convert = flags, group, options.get("type")
        self.const = options.get("const", _FLAGS.get(action))
        if action in _FLAGS:
            self.default = options.get("default", not _FLAGS[action])
        else:  # (argparse's help action is set only when given)
            self.default = options.get("default", SUPPRESS if action == "help" else None)
        if not flags[0].startswith("-"):
            self.dest = flags[0]
            self.kind = "files" if nargs == "*" and action == "store" else "other"
            return
        longs = [flag for flag in flags if flag.startswith("--")]
        self.dest = options.get("dest") or (longs or flags)[0].lstrip("-").replace("-", "_")
        if action in ("store", "append"):  # (append: watch's -P, --listen)
            self.kind = ("value" if action == "store" else "append") if nargs is None \
                else "other"
        elif action in ("store_const", *_FLAGS):
            self.kind = "const"
        else:  # count; help, version, extend...: left to argparse
            self.kind = "count" if action == "count" else "other"


class Recorder:
    """Stands in for argparse's parser in a command's ``add_arguments``."""

    def __init__(self, into: list[Argument] | None = None, group: int = 0,
                 groups: list[int] | None = None) -> None:
        self.arguments: list[Argument] = [] if into is None else into
        self.group = group
        self._groups = [0] if groups is None else groups  # (how many there are: shared)

    def add_argument(self, *flags: str, **options: Any) -> None:
        self.arguments.append(Argument(flags, options, self.group))

    def add_mutually_exclusive_group(self, **_options: Any) -> Recorder:
        self._groups[0] += 1
        return Recorder(self.arguments, self._groups[0], self._groups)


def add_all(parser: Any, module: Any, suppress: str, help_text: str = "") -> None:
    """A command's arguments, in the order a parser built whole has them: -h (unless the
    command takes -h itself, ``ADD_HELP = False``), the common options, the command's
    own. For argparse's parser (parser.py) and for a Recorder alike."""
    if getattr(module, "ADD_HELP", True):  # as argparse's add_help
        parser.add_argument("-h", "--help", action="help", default=suppress, help=help_text)
    common_options(parser, suppress, getattr(module, "SHORT_VERBOSE", True))
    module.add_arguments(parser)


def arguments_of(module: Any) -> list[Argument]:
    """What a command's parser holds (parser.py's ``_complete``), as a Recorder saw it."""
    recorder = Recorder()
    add_all(recorder, module, SUPPRESS)
    return recorder.arguments


def read(argv: Sequence[str]) -> SimpleNamespace | None:
    """The namespace argparse would make of ``argv`` (lpfilter's whole command line), if
    the command is a quick one and the line is plain; else None."""
    head, queues, at = split_global_options(argv)
    if at >= len(argv) or argv[at] not in WORDS:
        return None
    name = WORDS[argv[at]]
    module = command_module(COMMANDS[name][0])
    top = _globals(head)
    if top is None or not getattr(module, "QUICK_ARGS", False):
        return None
    given = [word for queue in queues for word in ("-P", queue)]
    own = _command(arguments_of(module), [*given, *argv[at + 1:]])
    if own is None:
        return None
    return SimpleNamespace(**{**top, "command": argv[at], **own, "module": COMMANDS[name][0],
                              "action": name})


def read_filter(head: Sequence[str], raw: list[str]) -> SimpleNamespace | None:
    """The namespace argparse would make of ``filter``'s line (``head``: the options before
    the word and the word; ``raw``: lpd's option list, cli._split_filter's): lpd starts a
    filter for every job, and argparse would cost each of them ~4 ms."""
    top = _globals(head[:-1])
    if top is None or head[-1:] != ["filter"]:
        return None
    return SimpleNamespace(**top, command="filter", filter_argv=raw,
                           module=COMMANDS["filter"][0], action="filter")


def _globals(head: Sequence[str]) -> dict[str, Any] | None:
    """The options before the command, as split_global_options found them (-P apart)."""
    found: dict[str, Any] = {"printcap": None, "verbose": 0, "debug": False}
    tokens = iter(head)
    for token in tokens:
        if token == "--printcap":
            found["printcap"] = next(tokens, "-")  # (none: argparse says so)
            if found["printcap"].startswith("-"):
                return None
        elif token.startswith("--printcap="):
            return None
        elif token == "--debug":
            found["debug"] = True
        else:  # --verbose, -v, -vv
            found["verbose"] += 1 if token == "--verbose" else len(token) - 1
    return found


def _command(arguments: list[Argument], words: Sequence[str]) -> dict[str, Any] | None:
    """The command parser's namespace (its defaults, then the words), or None."""
    files = [a for a in arguments if not a.flags[0].startswith("-")]
    if len(files) > 1 or any(a.kind == "other" for a in files) or any(
            a.convert is not None and isinstance(a.default, str) for a in arguments):
        return None  # (argparse converts such a default: not needed, not done here)
    by_flag = {flag: a for a in arguments for flag in a.flags if flag.startswith("-")}
    values: dict[str, Any] = {}
    for argument in arguments:
        if argument.default != SUPPRESS:
            values.setdefault(argument.dest, argument.default)
    seen: dict[int, Argument] = {}
    at, taken = 0, []
    while at < len(words):
        word = words[at]
        if not word.startswith("-"):
            taken.append(word)
            at += 1
            continue
        used = 0 if taken else _option(word, words[at + 1:], by_flag, values, seen)
        if not used:  # an option after a file, or one argparse must read
            return None
        at += used
    if files:
        values[files[0].dest] = taken or ([] if files[0].default is None else files[0].default)
    elif taken:
        return None
    return values


def _converted(argument: Argument, text: str) -> Any:
    convert: Callable[[str], Any] | None = argument.convert
    if convert is None:
        return text
    try:
        return convert(text)
    except Exception:  # noqa: BLE001 - argparse says what is wrong with the value
        return _REFUSED


def _option(word: str, rest: Sequence[str], by_flag: dict[str, Argument],
            values: dict[str, Any], seen: dict[int, Argument]) -> int:
    """Take one option (and the value after it): the words used, 0 when argparse must
    read it."""
    if "=" in word or word == "--":
        return 0
    flag = word if word.startswith("--") else word[:2]
    argument = by_flag.get(flag)
    if argument is None or argument.kind == "other" or (
            argument.group and seen.setdefault(argument.group, argument) is not argument):
        return 0
    attached = word[len(flag):]
    if argument.kind in ("value", "append"):
        text = attached or (rest[0] if rest and not rest[0].startswith("-") else None)
        value = _REFUSED if text is None else _converted(argument, text)
        if value is _REFUSED:
            return 0
        if argument.kind == "append":  # (a new list: argparse copies the default too)
            value = [*(values.get(argument.dest) or ()), value]
        values[argument.dest] = value
        return 1 if attached else 2
    if argument.kind == "count":
        if attached.strip("v"):
            return 0
        counted = values.get(argument.dest)
        values[argument.dest] = (counted or 0) + 1 + len(attached)
        return 1
    if attached:  # bundled flags (-lh)
        return 0
    values[argument.dest] = argument.const
    return 1
