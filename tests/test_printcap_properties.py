"""Property tests: any printcap text, however broken, is read without crashing.

LPRng reads any bytes as a printcap (shared/reference/lprng-printcap.md §1-§2), so lpfilter
must too: the only exceptions allowed are ``LpfilterError`` subclasses, and the
``lpfilter printcap`` command must answer with a documented exit status.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sharedkit import CORPUS, SHARED, require_shared

from lpfilter import cli, printcap
from lpfilter.errors import LpfilterError
from lpfilter.printcap.check import check_printcap
from lpfilter.printcap.destination import Invalid, classify
from lpfilter.printcap.hostmatch import HostInfo
from lpfilter.printcap.model import typed_value

#: The real printcaps of the corpus; none when shared/ is absent (see test_corpus_present).
REAL = sorted(CORPUS.glob("*.printcap"))
REAL_BYTES = [path.read_bytes() for path in REAL]
HOST = HostInfo.fixed("host.example", ("127.0.0.1",))
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

#: Characters that steer the parser, plus a few letters that make real keys and names.
ALPHABET = ":|\\#=@%\n\f\t \r\x04\x14,;*?!.[]/" + "abcdefhilmnoprstxyzLP" + "0179"
#: Pieces of printcap syntax, so that generated text often reaches the deeper rules.
FRAGMENTS = [
    "lp", "lp|alias", "|x", ":", "::", "\\", "\\\n", "\n", "\n ", "\n:", "\n|", "\f", "\x04",
    "#", "# c\n", " ", "\t", "=", "#", "@", "tc=lp", "tc=a,b", "tc=.t", ".t:tc=lp", "tc=", "oh=",
    "oh=host", "oh=!127.0.0.1", "oh=10.0.0.0/8", "oh=*.example", "oh=<inc", "server",
    "client", "server.mx#5", "client.lp=/dev/x", "mx#010", "mx=0x", "py#12abc", "sh=on",
    "lp=9100@h", "lp=h%9100", "lp=h%", "lp=h%svc", "lp=[::1]%9100", "lp=ftp://h/P", "lp=ftp",
    "//h", "lp=ftp\\://u\\:p@h\\:99999/P", "lp=|", "lp=|/bin/cat", "lp=@", "lp=%", "lp=@h%x",
    "cm=a\\", "cm=%P%Q%h%H%R%M%D%a%Z%%", "%", "all=lp,a zz", "all", "*", "a*", "[", ".common",
    "include inc", "INCLUDE inc,inc", "include nosuch", "include", "Sd=/x", "if=$HOME/f",
    "rp=%R", "rm=%M", "sd=%P", "ld=\\033E\\r\\n", "\\:", "\\\\:", "send_failure_action=x",
]

texts = st.one_of(
    st.text(alphabet=ALPHABET, max_size=300),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=ALPHABET, max_size=4)),
             max_size=60).map("".join),
)


@st.composite
def mutated_real(draw: st.DrawFn) -> bytes:
    """A real printcap with a few bytes deleted, duplicated, replaced or inserted."""
    assert REAL_BYTES, f"no real printcaps in {SHARED / 'printcaps'}"
    data = bytearray(draw(st.sampled_from(REAL_BYTES)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        size = draw(st.integers(0, 40))
        action = draw(st.sampled_from(["delete", "duplicate", "insert", "replace"]))
        piece = draw(st.one_of(st.sampled_from(FRAGMENTS).map(str.encode),
                               st.text(alphabet=ALPHABET, max_size=4).map(str.encode),
                               st.binary(max_size=3)))
        if action == "delete":
            del data[at:at + size]
        elif action == "duplicate":
            data[at:at] = data[at:at + size]
        elif action == "insert":
            data[at:at] = piece
        else:
            data[at:at + len(piece)] = piece
    return bytes(data)


any_printcap = (st.one_of(texts.map(lambda t: t.encode("utf-8")), mutated_real()) if REAL_BYTES
                else texts.map(lambda t: t.encode("utf-8")))


def test_corpus_present() -> None:
    """The mutations above start from the real printcaps: without them, say so (skip, or
    fail in CI)."""
    require_shared(SHARED)
    assert REAL_BYTES, f"no real printcaps in {CORPUS}"


@contextlib.contextmanager
def printcap_dir(data: bytes) -> Iterator[str]:
    """A private current directory holding the printcap ``pc`` and an includable ``inc``.

    ``inc`` includes itself, so every include chain ends at LPRng's depth limit.
    """
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        Path(tmp, "inc").write_bytes(b"inc1:mx#1\ninclude inc\n:sh\nhost.example\n")
        path = Path(tmp, "pc")
        path.write_bytes(data)
        yield str(path)


def all_names(pc: printcap.Printcap) -> list[str]:
    """Every name a user could ask for: the printer list, every record's names, odd ones."""
    names = list(pc.printer_names())
    for record in pc.all_records:
        names.extend(record.names)
    return names + ["*", "zz", "", "ALL", ".t"]


def exercise(pc: printcap.Printcap) -> None:
    """Look up every name and read every option the way the backends will."""
    for name in all_names(pc):
        try:
            entry = pc.lookup(name)
            for key in list(entry.options) + ["sd", "lp", "mx", "sh", "ld", "filter_options"]:
                entry.get(key)
            for option in entry.options.values():
                typed_value(option)
            entry.destination()
            entry.number("send_try")
        except LpfilterError:
            continue


@SETTINGS
@given(data=any_printcap, side=st.sampled_from(["server", "client"]))
def test_load_and_lookup_never_crash(data: bytes, side: str) -> None:
    """§1-§5: load, lookup and option reads raise nothing but LpfilterError subclasses."""
    with printcap_dir(data) as path:
        try:
            pc = printcap.load([path], side=side, host=HOST)  # type: ignore[arg-type]
            exercise(pc)
            check_printcap(pc)
        except LpfilterError:
            pass


@pytest.mark.parametrize("path", REAL or [CORPUS], ids=[p.name for p in REAL or [CORPUS]])
def test_real_printcaps_read(path: Path) -> None:
    """§1-§5: every real printcap of the corpus reads and resolves without a crash (without
    the corpus: one case, skipped saying why, or failed under CI)."""
    require_shared()
    try:
        exercise(printcap.load([str(path)], host=HOST))
    except LpfilterError:
        pass


def run_cli(path: str, *args: str) -> tuple[int, str]:
    """Run ``lpfilter --printcap PATH printcap ARGS``; stdout is strict UTF-8, like a terminal."""
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = cli.main(["--printcap", path, "printcap", *args])
    out.flush()
    return status, raw.getvalue().decode("utf-8")


@SETTINGS
@given(data=any_printcap)
@example(data=b"lp:sd=/var/spool/lpd/lp:cm=Drucker B\xfcro\n")  # an ISO-8859-1 printcap
def test_cli_json_status_and_output(data: bytes) -> None:
    """`lpfilter printcap --all --json` exits 0, 3 or 4, and prints valid JSON on 0."""
    with printcap_dir(data) as path:
        status, output = run_cli(path, "--all", "--json")
    assert isinstance(status, int) and status in {0, 3, 4}, output
    if status == 0:
        assert isinstance(json.loads(output), list)


# ---- round trip: the text output reads back as the same entries -------------------------------

STRING_KEYS = ["cm", "sd", "lp", "rp", "rm", "lf", "af", "ps", "fx", "if", "of", "filter", "ppd",
               "db", "rg", "ld", "tr", "bq_format", "send_failure_action"]
NUMBER_KEYS = ["mx", "mc", "pl", "pw", "px", "py", "br", "connect_timeout", "send_try"]
FLAG_KEYS = ["sh", "ab", "hl", "sb", "sf", "rw", "lk", "qq", "fifo", "bk", "bkf", "ah"]
OTHER_KEYS = ["vf", "gf", "zz", "foo_bar", "xyzzy"]
safe_text = st.from_regex(r"[A-Za-z0-9/._-]([A-Za-z0-9/._ -]{0,10}[A-Za-z0-9/._-])?",
                          fullmatch=True)
number_text = st.one_of(st.integers(-99, 99999).map(str), st.integers(0, 4095).map(hex),
                        st.integers(1, 4095).map(lambda n: f"0{n:o}"),
                        st.sampled_from(["yes", "no", "true", "false", "on", "off", "12abc"]))
names = st.from_regex(r"[a-z][a-z0-9_-]{0,7}", fullmatch=True).filter(
    lambda n: n not in ("all", "include"))


def spelled(key: str) -> st.SearchStrategy[str]:
    """The key in any letter case (LPRng keys are case-insensitive, §2.3)."""
    return st.sampled_from([key, key.upper(), key.capitalize()])


@st.composite
def option_text(draw: st.DrawFn) -> str:
    """One well-formed option: `key`, `key@`, `key=`, `key=value` or `key#value`."""
    key = draw(st.sampled_from(STRING_KEYS + NUMBER_KEYS + FLAG_KEYS + OTHER_KEYS))
    written = draw(spelled(key))
    form = draw(st.sampled_from(["", "@", "=", "value"]))
    if form != "value":
        return written + form
    text = draw(safe_text if key in STRING_KEYS + OTHER_KEYS else number_text)
    return written + draw(st.sampled_from(["=", "#"])) + text


@st.composite
def well_formed_printcap(draw: st.DrawFn) -> str:
    """Entries with distinct plain names and known keys, laid out in any of LPRng's styles."""
    pool = draw(st.lists(names, min_size=1, max_size=12, unique=True))
    lines: list[str] = []
    while pool:
        count = draw(st.integers(1, min(3, len(pool))))
        entry_names, pool = pool[:count], pool[count:]
        options = draw(st.lists(option_text(), max_size=8))
        style = draw(st.sampled_from(["one-line", "colon-lines", "backslash"]))
        style = style if options else "one-line"
        head = "|".join(entry_names)
        if style == "one-line":
            lines.append(":".join([head, *options]) + ":")
        elif style == "colon-lines":
            lines.append("\n".join([head, *(f"    :{o}" for o in options)]))
        else:
            lines.append(f"{head}:\\\n" + ":\\\n".join(f"  {o}" for o in options))
    return "\n".join(lines) + "\n"


def typed_entries(path: str) -> dict[str, tuple[list[str], dict[str, Any]]]:
    pc = printcap.load([path], host=HOST)
    result = {}
    for name in pc.printer_names():
        entry = pc.lookup(name)
        result[name] = (entry.names, {k: typed_value(o) for k, o in entry.options.items()})
    return result


@SETTINGS
@given(text=well_formed_printcap())
def test_text_output_round_trip(text: str) -> None:
    """`lpfilter printcap --all` text, read back, gives the same names and typed options."""
    with tempfile.TemporaryDirectory() as tmp:
        first = os.path.join(tmp, "first")
        Path(first).write_text(text, encoding="utf-8")
        status, output = run_cli(first, "--all")
        assert status == 0, output
        second = os.path.join(tmp, "second")
        Path(second).write_text(output, encoding="utf-8")
        assert typed_entries(second) == typed_entries(first), output


def _lprng_split(text: str) -> list[str]:
    """linelist.c Split(sep ":", trim, escape ":"): a ':' right after a backslash (and not
    the first character of the piece) does not split; pieces are trimmed, empty ones go."""
    pieces, start = [], 0
    for at, char in enumerate(text):
        if char == ":" and not (at != start and text[at - 1] == "\\"):
            pieces.append(text[start:at])
            start = at + 1
    pieces.append(text[start:])
    return [p.strip(" \t\n\v\f\r") for p in pieces if p.strip(" \t\n\v\f\r")]


def _by_key(options: list[str]) -> list[str]:
    """Split(sort=1, keysep " \\t=#@"): stable, by the key's bytes with A-Z folded."""
    def key(option: str) -> bytes:
        return re.match(r"[^ \t=#@]*", option).group().encode().lower()  # type: ignore[union-attr]
    return sorted(options, key=key)


OPTION_PIECES = ["cm=a\\ ", "cm=b\\", "zz=1\\ ", "aa=2", "Ab@", "x", "x\\:y", "\\", " ", "mx#4",
                 "C=\\\\", "b c"]


@SETTINGS
@given(options=st.one_of(
    st.text(alphabet=":\\ \tabcxz=#@AC", max_size=60),
    st.lists(st.sampled_from(OPTION_PIECES), max_size=8).map(":".join)))
@example(options="cm=abc\\ :aa=1:zz=2")
def test_options_split_as_lprng_rebuilds_them(options: str) -> None:
    """Issue 10 §6 (b): the options of an entry are what LPRng gets from its two passes
    (linelist.c Build_pc_names: split, trim, sort by key, join with ':'; Find_pc_info:
    split again), so a trailing backslash swallows the next option in key order."""
    from lpfilter.printcap.grammar import parse_entry
    expected = _by_key(_lprng_split(":".join(_by_key(_lprng_split(options)))))
    assert _by_key([o.text for o in parse_entry("lp:" + options).options]) == expected


@SETTINGS
@given(scheme=st.sampled_from(["ftp", "socket", "lpd", "FTP", "ftp\\"]),
       rest=st.text(st.sampled_from(list(":/\\@%[]!#?=.-_ 019aqh\u00e9|")), max_size=30))
def test_a_uri_lp_is_a_destination_or_says_why_not(scheme: str, rest: str) -> None:
    """§5: an ``lp=scheme://...`` value, however cut by the printcap's colons, gives a
    destination or an Invalid one with its reason; never an exception (a bracketed host
    Python's URI parser refuses was an internal error, exit 70)."""
    destination = classify(f"{scheme}://{rest}", queue="q")
    assert destination.display() is not None
    if isinstance(destination, Invalid):
        assert destination.reason
