"""A quick command's plain line is read without argparse (lpfilter.commands.quickargs),
into exactly what argparse makes of it; every other line is left to argparse.

The proof is argparse itself: on generated lines, whatever the quick reader takes,
argparse takes without an error and with the same namespace. The lines users type
(``print -P lp FILE``, ``lpq -Plp``, ``lprm -P lp 12``) are taken quickly, and help, bad
values and unusual shapes go to argparse, whose messages they need.
"""
from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lpfilter import cli
from lpfilter.commands import quickargs
from lpfilter.commands.registry import COMMANDS, WORDS, command_module

QUICK = sorted(word for word, name in WORDS.items()
               if getattr(command_module(COMMANDS[name][0]), "QUICK_ARGS", False))
GLOBALS = ["-v", "-vv", "--verbose", "--debug", "--printcap", "/pc", "-P", "q", "-Pq", "-vP",
           "-P=q", "--printcap=/pc", "--version", "-h"]
OPTIONS = ["-P", "-Pq", "-P=q", "-J", "-T", "-U", "-#", "-#3", "-K", "-K2", "-C", "-h", "-F",
           "-Fl", "-l", "-p", "-m", "--hold", "--wait", "--no-wait", "--no-w", "--help", "-a",
           "--all", "--long", "--json", "-v", "-vv", "-vx", "--verbose", "--debug",
           "--printcap", "--printcap=/p", "-lh", "--", "-", "-Z", "-Zduplex", "-w", "-w80",
           "-i", "-s", "--short", "-d", "-dq", "-n", "-n2", "-t", "-o", "-H", "-E", "-c",
           "-u", "-ualice", "-r",
           # watch's (a cron pass's line is read quickly too)
           "--once", "--grace", "--settle", "-q", "--quiet", "--listen", "--allow",
           "--max-connections", "--idle-timeout", "--socket-mode", "--socket-group"]
VALUES = ["x", "q", "12", "all", "l", "X", "", "-x", "-3", "a b", "3", " 4", "lp-000012",
          "2.5", "nan", "515", "127.0.0.1:515", "0644", "+", "+5", "+0"]


def argparse_reads(argv: list[str]) -> dict[str, object] | None:
    """argparse's namespace for a line, or None when it refused it (or printed help)."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return _nan_named(vars(cli.build_parser(lazy=True).parse_args(argv)))
        except SystemExit:
            return None


def quick_reads(argv: list[str]) -> dict[str, object] | None:
    read = quickargs.read(argv)
    return None if read is None else _nan_named(vars(read))


def _nan_named(values: dict[str, object] | None) -> dict[str, object] | None:
    """NaN (``watch --grace nan``, which both readers take and run() refuses) as a word,
    so that two namespaces holding it compare equal."""
    if values is None:
        return None
    return {k: "NaN" if isinstance(v, float) and v != v else v for k, v in values.items()}


lines = st.builds(lambda head, word, rest: [*head, word, *rest],
                  st.lists(st.sampled_from(GLOBALS), max_size=3),
                  st.sampled_from([*QUICK, "watch", "printcap"]),
                  st.lists(st.sampled_from(OPTIONS + VALUES) | st.text(max_size=4),
                           max_size=7))


@settings(max_examples=3000, deadline=None)
@given(lines)
@example(["print", "-P", "q", "-P", "r", "f"])
@example(["-P", "q", "status", "-P", "r"])
@example(["-v", "print", "-vv", "f"])
@example(["-vv", "status"])
@example(["print", "--wait", "--wait"])
@example(["status", "-a", "--all"])
@example(["print", "-#", "x", "-#", "3"])
@example(["watch", "--grace", "nan", "-P", "q"])
@example(["-P", "a", "watch", "-P", "b", "--listen", "515", "--listen", "516"])
def test_what_the_quick_reader_takes_argparse_takes_alike(argv: list[str]) -> None:
    quick = quick_reads(argv)
    if quick is not None:
        assert quick == argparse_reads(argv)


@pytest.mark.parametrize("argv", [
    ["print", "--no-wait", "-P", "own", "/tmp/job"], ["print", "-Plp", "a", "b"],
    ["print", "-#", "2", "-J", "name", "-T", "title", "-C", "A", "-h", "-Fl", "f"],
    ["print", "-K3", "-l", "--hold", "--wait", "f"], ["print"], ["-P", "lp", "print", "f"],
    ["--printcap", "/etc/pc", "-v", "print", "--debug", "f"], ["-vv", "status"],
    ["status", "-P", "q"], ["status"], ["lpq", "-Pq", "-l"], ["status", "-a", "--json"],
    ["cancel", "-P", "q", "12"], ["lprm", "-Plp", "all"], ["cancel", "lp-000012"],
    ["cancel", "--all", "-P", "q"], ["hold", "-P", "q", "3"], ["release", "-a"],
    ["requeue", "-P", "q", "4", "5"], ["watch", "--once", "-P", "q"], ["watch", "--once"],
    ["-P", "a", "watch", "-P", "b", "-q"], ["watch", "--listen", "515", "--allow", "::1"],
    ["watch", "--grace", "2.5", "--settle", "0"]])
def test_the_lines_users_type_are_read_quickly(argv: list[str]) -> None:
    quick = quick_reads(argv)
    assert quick is not None
    assert quick == argparse_reads(argv)


@pytest.mark.parametrize("argv", [
    ["print", "--help"], ["status", "-h"], ["--version"], ["print", "--", "-f"],
    ["print", "-"], ["print", "-lh"], ["print", "--no-w"], ["print", "-P=q"],
    ["print", "f", "-P", "q"], ["print", "-F", "X"], ["print", "-#", "two"],
    ["watch", "--grace", "soon"], ["watch", "-P"], ["watch", "--once", "x"],
    ["print", "-m", "a@b"], ["print", "--wait", "--no-wait"], ["status", "-P", "q", "-a"],
    ["cancel", "-1"], ["print", "-P", "-x"], ["printcap"],
    ["--printcap=/p", "status"], ["--printcap", "-p", "status"], ["status", "--printcap=/p"],
    ["-P"], ["-v"], [], ["frobnicate"], ["status", "-vP", "q"], ["watch", "--listen=515"]])
def test_other_lines_are_left_to_argparse(argv: list[str]) -> None:
    assert quickargs.read(argv) is None


@pytest.mark.parametrize("word", QUICK)
def test_the_recorder_holds_what_the_parser_holds(word: str) -> None:
    """The quick reader's view of a command's arguments (its add_arguments, recorded) is
    the parser's: the same flags, destinations and defaults, in the same order."""
    lazy = cli.build_parser(lazy=True)
    commands = next(a for a in lazy._actions if a.dest == "command")  # noqa: SLF001
    parser = commands.parser_for(word)  # type: ignore[attr-defined]
    recorded = quickargs.arguments_of(command_module(COMMANDS[WORDS[word]][0]))
    assert [(tuple(a.option_strings) or (a.dest,), a.dest, a.default, a.type)
            for a in parser._actions] == [  # noqa: SLF001
        (r.flags, r.dest, r.default, r.convert) for r in recorded]
    assert [a.const for a, r in zip(parser._actions, recorded)  # noqa: SLF001
            if r.kind == "const"] == [r.const for r in recorded if r.kind == "const"]


def test_two_exclusive_groups_made_before_their_options_stay_apart() -> None:
    """Each group has its own number even when both are made before any option is added
    to them: options of different groups never count as a conflict."""
    recorder = quickargs.Recorder()
    first, second = recorder.add_mutually_exclusive_group(), \
        recorder.add_mutually_exclusive_group()
    first.add_argument("-a", action="store_true")
    second.add_argument("-b", action="store_true")
    first.add_argument("-c", action="store_true")
    assert [(a.flags[0], a.group) for a in recorder.arguments] == [
        ("-a", 1), ("-b", 2), ("-c", 1)]


def test_a_quick_line_imports_no_argparse() -> None:
    """The point of it: argparse, gettext and locale stay out of a quick command's start
    (tests/test_startup.py checks the installed program's whole import set)."""
    code = ("import sys\nfrom lpfilter.commands import quickargs\n"
            "assert quickargs.read(['-P', 'q', 'print', '--no-wait', 'f']) is not None\n"
            "assert quickargs.read(['watch', '--once', '-P', 'q', '-P', 'r']) is not None\n"
            "print(sorted(m for m in ('argparse', 'gettext', 'locale') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def parse_reads(argv: list[str]) -> dict[str, object] | None:
    """What cli makes of a whole line (quick or not), or None when argparse refused it."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return vars(cli._parse(argv))  # noqa: SLF001
        except SystemExit:
            return None


def argparse_reads_filter(argv: list[str]) -> dict[str, object] | None:
    """argparse's namespace for a ``filter`` line, as cli made it before the quick reader:
    the options before the word parsed, lpd's option list passed raw."""
    head, raw = cli._split_filter(argv)  # noqa: SLF001
    args = argparse_reads(head)
    if args is not None and raw is not None:
        args["filter_argv"] = raw
    return args


LPD_OPTIONS = ["-Aroot@host+507", "-Ja b", "-Pq", "-P", "q", "-h", "--help", "acct", "-",
               "127.0.0.1%9100", "--debug", "-v", "--", "-Zx=1"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(GLOBALS), max_size=3),
       st.lists(st.sampled_from(LPD_OPTIONS) | st.text(max_size=4), max_size=6))
@example(["--printcap", "/pc", "-vv"], ["-Pq", "acct"])
@example(["-P", "q"], ["127.0.0.1%9", "-Afoo"])
def test_a_filter_line_is_read_as_argparse_reads_it(head: list[str], rest: list[str]) -> None:
    """lpd starts ``lpfilter filter`` once a job: its line is read without argparse
    (quickargs.read_filter), into what argparse made of it."""
    argv = [*head, "filter", *rest]
    before, raw = cli._split_filter(argv)  # noqa: SLF001
    expected = argparse_reads_filter(argv)
    if raw is not None and (quick := quickargs.read_filter(before, raw)) is not None:
        assert vars(quick) == expected
    assert parse_reads(argv) == expected


@pytest.mark.parametrize("argv", [
    ["filter", "127.0.0.1%9100", "-Aroot@localhost+507", "-Ja", "acct"], ["filter"],
    ["-P", "q", "filter", "-h"], ["--printcap", "/pc", "--debug", "filter", "-Pq"]])
def test_lpds_filter_lines_are_read_quickly(argv: list[str]) -> None:
    quick = quickargs.read_filter(*cli._split_filter(argv))  # type: ignore[arg-type]  # noqa: SLF001
    assert quick is not None
    assert vars(quick) == argparse_reads_filter(argv)


def test_a_filter_imports_no_argparse() -> None:
    code = ("import sys\nfrom lpfilter import cli\n"
            "args = cli._parse(['filter', '127.0.0.1%9', '-Aroot@h+1', '-Jx', 'acct'])\n"
            "assert args.filter_argv == ['127.0.0.1%9', '-Aroot@h+1', '-Jx', 'acct'], args\n"
            "print(sorted(m for m in ('argparse', 'gettext', 'locale') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
