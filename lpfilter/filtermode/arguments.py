"""An LPRng or BSD filter command line, read as lpd builds it (pure functions).

Facts: lprng-filters.md §2. lpd joins a letter and its value (``-Jname``, ``"-STest
queue"``: one argument, spaces and all); ``$0X`` and BSD's layout give the value as the next
argument (``-n root -h host``); the accounting file comes last, bare. Any letter may come;
none is an error. lpfilter's own long options (``--debug``, ``--printcap``) may be mixed in
by whoever writes the printcap line, and the first bare argument before any option is the
destination (``lpfilter filter printer.example%9100 -Plp ...``).
"""
from __future__ import annotations

from lpfilter.structs import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

#: Letters that are flags without a value (``-c``: format ``l``, pass control characters).
BARE_FLAGS = frozenset("c")
#: lpfilter's long options, with whether they take a value.
LONG_OPTIONS = {"--debug": False, "--verbose": False, "--printcap": True, "--help": False}


class FilterArgs(Struct):
    """What the command line says."""

    __slots__ = _fields = ("destination", "options", "accounting", "own", "extra")
    destination: str | None
    #: Letter -> value (the last one given wins); a bare flag has "".
    options: dict[str, str]
    #: The accounting file: the last bare argument after the options.
    accounting: str | None
    #: lpfilter's own long options ("--printcap" -> path, "--debug" -> "").
    own: dict[str, str]
    #: Bare arguments that are neither destination nor accounting file (ignored).
    extra: list[str]

    def __init__(self, destination: str | None = None, options: dict[str, str] | None = None,
                 accounting: str | None = None, own: dict[str, str] | None = None,
                 extra: list[str] | None = None) -> None:
        self.destination = destination
        self.options = {} if options is None else options
        self.accounting = accounting
        self.own = {} if own is None else own
        self.extra = [] if extra is None else extra

    def get(self, letter: str) -> str | None:
        """The value of ``-X``, None when absent or empty (LPRng drops empty values)."""
        value = self.options.get(letter)
        return value or None


def parse(argv: Sequence[str]) -> FilterArgs:
    """Never raises: whatever lpd (or a person) passes is read as well as it can be."""
    result = FilterArgs()
    bare: list[str] = []
    args = list(argv)
    i = 0
    if args and args[0] and not args[0].startswith("-"):
        result.destination = args[0]
        i = 1
    only_bare = False
    while i < len(args):
        token = args[i]
        i += 1
        if only_bare or token == "-" or not token.startswith("-"):
            bare.append(token)
            continue
        if token == "--":
            only_bare = True
            continue
        if token.startswith("--"):
            name, equals, value = token.partition("=")
            if name in LONG_OPTIONS:
                if LONG_OPTIONS[name] and not equals and i < len(args):
                    value = args[i]
                    i += 1
                result.own[name] = value
            else:
                result.extra.append(token)
            continue
        letter, value = token[1], token[2:]
        if not value and letter not in BARE_FLAGS and i < len(args) and (
                not args[i].startswith("-") or args[i] == "-"):
            value = args[i]  # "-X value": BSD's -n/-h, LPRng's $0X, or a person's -P lp
            i += 1
        result.options[letter] = value
    if bare:
        result.accounting = bare[-1]
        result.extra.extend(bare[:-1])
    return result
