"""``lpfilter filter``'s command line, read as LPRng and BSD lpd build it (pure functions):
lpfilter.filtermode.arguments, the PRINTCAP_ENTRY reader, and the cli's raw pass-through.
Facts: lprng-filters.md §2 (observed argv) and §4 (PRINTCAP_ENTRY text)."""
from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lpfilter.cli import _split_filter
from lpfilter.filtermode.arguments import FilterArgs, parse
from lpfilter.printcap.entrytext import default_entry, entry_from_text

#: The data filter's argv recorded on LPRng 3.8.B (each item one argv element).
RECORDED = ["-Aroot@localhost+507", "-CZ", "-D2026-11-21-04:12:41.392", "-Ff", "-Hlocalhost",
            "-I4", "-JMyJob", "-Lroot", "-N/tmp/lpdlab/job1.txt", "-Pq1", "-Qq1",
            "-STest queue one", "-Ttitle1", "-W100", "-Zopt1=a,opt2=b", "-aacct", "-b18",
            "-d/tmp/lpdlab/spool/q1", "-edfA507localhost", "-f/tmp/lpdlab/job1.txt",
            "-hlocalhost", "-i4", "-j507", "-l66", "-nroot", "-sstatus",
            "-t2026-11-21-04:12:41.000", "-w80", "-x0", "-y0", "acct"]
#: With bkf: BSD's layout, login and host as separate arguments.
BSD = ["-Pqbkf", "-w80", "-l66", "-x0", "-y0", "-Ff", "-Lroot", "-JJobqbkf", "-CA",
       "-n", "root", "-h", "localhost", "acct"]


def test_recorded_lprng_data_filter_argv() -> None:
    args = parse(RECORDED)
    assert args.destination is None
    assert args.options["A"] == "root@localhost+507"
    assert args.options["S"] == "Test queue one"  # one element, spaces and all
    assert args.options["Z"] == "opt1=a,opt2=b" and args.options["D"].endswith(":41.392")
    assert (args.get("P"), args.get("J"), args.get("n"), args.get("j")) == (
        "q1", "MyJob", "root", "507")
    assert (args.get("d"), args.get("e"), args.get("F")) == (
        "/tmp/lpdlab/spool/q1", "dfA507localhost", "f")
    assert args.accounting == "acct" and args.extra == [] and args.own == {}
    assert len(args.options) == len(RECORDED) - 1


def test_lp_pipe_argv_has_no_per_file_letters() -> None:
    argv = [a for a in RECORDED if a[:2] not in ("-F", "-N", "-e", "-f")]
    args = parse(argv)
    assert not {"F", "N", "e", "f"} & set(args.options)
    assert args.get("J") == "MyJob" and args.accounting == "acct"


def test_bsd_layout_login_and_host_as_separate_arguments() -> None:
    args = parse(BSD)
    assert (args.get("n"), args.get("h"), args.get("P"), args.get("J")) == (
        "root", "localhost", "qbkf", "Jobqbkf")
    assert args.accounting == "acct" and args.extra == []


def test_dollar_zero_separated_values() -> None:
    """``$0X`` gives ``-X`` and the value as two arguments, for any letter."""
    args = parse(["-P", "q1", "-J", "two words", "-n", "root", "acct"])
    assert (args.get("P"), args.get("J"), args.get("n")) == ("q1", "two words", "root")
    assert args.accounting == "acct"


def test_bare_c_before_the_accounting_file_is_a_flag() -> None:
    """BSD's ``-c`` (format l) has no value: ``acct`` after it is still the accounting file."""
    args = parse(["-c", "acct"])
    assert args.options == {"c": ""} and args.accounting == "acct"
    args = parse(["-Pq1", "-c", "-w80", "acct"])
    assert args.options["c"] == "" and args.get("w") == "80" and args.accounting == "acct"


def test_destination_first() -> None:
    for destination in ("127.0.0.1%9100", "ftp://user:pw@printer/PORT1", "printer.example%9100"):
        args = parse([destination, "-Pq1", "acct"])
        assert args.destination == destination
        assert args.get("P") == "q1" and args.accounting == "acct"


def test_a_bare_argument_after_options_is_not_the_destination() -> None:
    args = parse(["-Pq1", "printer%9100"])
    assert args.destination is None and args.accounting == "printer%9100"


def test_unknown_letters_and_symbols_are_kept_not_refused() -> None:
    args = parse(["-Kweird", "-9", "-@x", "-%s", "-Ü1", "acct"])
    assert args.options == {"K": "weird", "9": "", "@": "x", "%": "s", "Ü": "1"}
    assert args.accounting == "acct"


def test_last_value_wins_and_empty_value_reads_as_absent() -> None:
    args = parse(["-Jone", "-Jtwo", "-T", "-"])
    assert args.get("J") == "two" and args.options["T"] == "-"
    assert parse(["-J"]).get("J") is None and parse([]).get("J") is None


def test_long_options_mixed_in() -> None:
    args = parse(["127.0.0.1%9100", "--debug", "--printcap", "/etc/pc", "-Pq1", "--verbose",
                  "--printcap=/etc/other", "--colour", "acct"])
    assert args.own == {"--debug": "", "--verbose": "", "--printcap": "/etc/other"}
    assert args.destination == "127.0.0.1%9100" and args.extra == ["--colour"]
    assert args.get("P") == "q1" and args.accounting == "acct"
    assert parse(["--printcap"]).own == {"--printcap": ""}  # no value left: never raises


def test_double_dash_ends_options_and_extra_bare_arguments_are_kept() -> None:
    args = parse(["-Pq1", "one", "--", "-Jnot-an-option", "acct"])
    assert args.get("J") is None and args.accounting == "acct"
    assert args.extra == ["one", "-Jnot-an-option"]


def test_everything_after_filter_reaches_the_parser_raw() -> None:
    """argparse never sees lpd's list (``-Aroot@host+507`` or a lone ``acct`` would trip it)."""
    head, raw = _split_filter(["--printcap", "/pc", "-v", "filter", "-Aroot@h+1", "-c",
                               "--debug", "acct"])
    assert head == ["--printcap", "/pc", "-v", "filter"]
    assert raw == ["-Aroot@h+1", "-c", "--debug", "acct"]
    assert _split_filter(["--printcap=/pc", "filter"]) == (["--printcap=/pc", "filter"], [])
    assert _split_filter(["print", "filter"])[1] is None


# --- never raises -----------------------------------------------------------------------
_TOKEN = st.one_of(
    st.text(max_size=12),
    st.builds(lambda letter, v: f"-{letter}{v}", st.characters(blacklist_categories=("Cs",)),
              st.text(max_size=8)),
    st.sampled_from(["-", "--", "--printcap", "--debug", "--printcap=", "-c", "acct", ""]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TOKEN, max_size=12))
@example(["--printcap"])
@example(["-", "--", "-"])
@example(["", "-J", ""])
def test_any_argument_list_is_read_without_error(argv: list[str]) -> None:
    args = parse(argv)
    assert isinstance(args, FilterArgs)
    for letter, value in args.options.items():
        assert isinstance(letter, str) and len(letter) == 1 and isinstance(value, str)


_LETTERS = st.sampled_from("ABCDHIJLNPQRSTUWZabdefhijklnprstwxy")
_VALUE = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_LETTERS, _VALUE, min_size=1, max_size=10),
       st.sampled_from(["acct", "/var/acct"]))
def test_joined_values_come_back_exactly(values: dict[str, str], accounting: str) -> None:
    """Whatever a joined ``-Xvalue`` holds (spaces, quotes, dashes, newlines) is its value.
    (At least one option: a lone bare argument first is read as the destination.)"""
    argv = [f"-{k}{v}" for k, v in values.items()] + [accounting]
    args = parse(argv)
    assert args.options == values and args.accounting == accounting


# --- PRINTCAP_ENTRY -----------------------------------------------------------------------
def test_printcap_entry_text_as_lpd_sets_it() -> None:
    text = ("q1|queue1\n :cm=Test queue one\n :connect_timeout=2\n :if=/path\n"
            " :lp=|/usr/bin/lpfilter filter 127.0.0.1%9100\n :pjl\n :sd=/spool\n")
    entry = entry_from_text(text)
    assert entry.name == "q1" and entry.flag("pjl") and entry.number("connect_timeout") == 2
    assert entry.string("lp") == "|/usr/bin/lpfilter filter 127.0.0.1%9100"
    assert entry.string("cm") == "Test queue one" and entry.string("sd") == "/spool"


def test_default_entry_has_a_safe_name() -> None:
    assert default_entry("lp").name == "lp"
    assert default_entry("q1;rm -rf /").name == "q1rm-rf"
    assert default_entry(":::").name == "lp"
