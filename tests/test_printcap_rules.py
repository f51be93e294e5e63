"""One test per rule of shared/reference/lprng-printcap.md §1-§5 (LPRng 3.8.B printcap reading).

Every printcap is a real file under tmp_path, read with ``lpfilter.printcap.load``; section
numbers in the docstrings point at the reference.
"""
from __future__ import annotations

import datetime
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from lpfilter import cli, printcap
from lpfilter.errors import ConfigError, NoSuchPrinter
from lpfilter.printcap import Printcap
from lpfilter.printcap.datatypes import c_unescape
from lpfilter.printcap.destination import Device, Ftp, Invalid, Lpd, Pipe, Socket, classify
from lpfilter.printcap.hostmatch import HostInfo
from lpfilter.printcap.model import typed_value
from lpfilter.printcap.source import Origin

HOST = HostInfo.fixed("host.example", ("127.0.0.1",))
TODAY = object()  # the date the value is read on, taken when the test runs, not when collected


def write(tmp_path: Path, text: str, name: str = "printcap") -> Path:
    """Write printcap text byte for byte (no newline translation)."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def load(tmp_path: Path, text: str, **kwargs: Any) -> Printcap:
    kwargs.setdefault("host", HOST)
    return printcap.load([str(write(tmp_path, text))], **kwargs)


def value(tmp_path: Path, text: str, name: str, key: str, **kwargs: Any) -> Any:
    return load(tmp_path, text, **kwargs).lookup(name).get(key)


# (rule id, printcap text, key, expected entry.get(key)); looked up as "lp" unless a 5th item
VALUES: list[tuple[Any, ...]] = [
    # §1.3 trimming, §1.5 assembling
    ("crlf", "lp:sd=/a\r\n :mx#2\r\n", "mx", 2), ("trim", "lp:cm=x \t\v\r\n", "cm", "x"),
    ("colon-line-continues", "lp\n:sd=/a\n", "sd", "/a"),
    ("join-one-space", "lp:cm=Hello \\\nWorld:\n", "cm", "Hello  World"),
    ("join-one-space-no-blank", "lp:cm=Hello\\\nWorld:\n", "cm", "Hello World"),
    ("blanks-after-final-backslash", "lp:sd=/a:\\   \nmx#3\n", "mx", 3),
    ("backslash-continues-any-line", "lp:sd=/a:\\\n   mx#3\n", "mx", 3),
    ("gap-keeps-continuation", "lp:sd=/a:\\\n\n# c\nother:lp=/dev/x\n", "lp", "/dev/x"),
    ("indent-not-continuation", "lp:sd=/a\n   sd=/x\n", "sd", "/a"),
    # §2.1 splitting
    ("empty-names-and-options", "lp||alias|:sd=/a::mx#2:\n", "mx", 2, "alias"),
    ("alias-after-options", "lp:sd=/x\n |alias2\n", "sd", "/x |alias2"),
    ("space-before-colon", "lp :sd=/x\n", "sd", "/x"),
    # §2.3 option forms, typed by the key's type
    ("string-bare-is-1", "lp:lp\n", "lp", "1"), ("string-off-is-0", "lp:lp@\n", "lp", "0"),
    ("if-off-is-0", "lp:if@\n", "if", "0"), ("by-name-off-absent", "lp:vf@\n", "vf", None),
    ("string-eq-empty", "lp:cm=\n", "cm", None), ("string-hash-empty", "lp:cm#\n", "cm", None),
    ("string-hash", "lp:lp#x\n", "lp", "x"), ("string-spaced-eq", "lp:cm = text\n", "cm", "text"),
    ("string-blank-value", "lp:cm hello\n", "cm", "hello"),
    ("number-bare", "lp:mx\n", "mx", 1), ("number-off", "lp:mx@\n", "mx", 0),
    ("number-eq-empty-1", "lp:mx=\n", "mx", 1), ("number-hash-empty-1", "lp:mx#\n", "mx", 1),
    ("number-eq", "lp:mx=10\n", "mx", 10), ("number-octal", "lp:mx#010\n", "mx", 8),
    ("number-hex", "lp:mx=0x1f\n", "mx", 31), ("number-negative", "lp:mx#-2\n", "mx", -2),
    ("number-junk", "lp:py#12abc\n", "py", 12), ("number-no-digits", "lp:pl#abc\n", "pl", 0),
    ("number-spaced-hash", "lp:mx # 5\n", "mx", 5), ("number-yes", "lp:mx=yes\n", "mx", 1),
    ("number-none", "lp:mx=none\n", "mx", 0), ("flag-bare", "lp:sh\n", "sh", True),
    ("flag-off", "lp:sh@\n", "sh", False), ("flag-spaced-off", "lp:sh @\n", "sh", False),
    ("flag-on-is-0", "lp:sh=on\n", "sh", False), ("flag-off-word", "lp:sh=off\n", "sh", False),
    ("flag-number-2", "lp:sh#2\n", "sh", True),
    *[(f"flag-{w}", f"lp:sh={w}\n", "sh", True) for w in ("yes", "true", "all", "allow", "YES")],
    *[(f"flag-{w}", f"lp:sf={w}\n", "sf", False) for w in ("no", "false", "none", "deny", "No")],
    ("key-case-insensitive", "lp:LP=/dev/x\n", "lp", "/dev/x"),
    ("key-case-last-wins", "lp:Sd=/a:sd=/b\n", "sd", "/b"),
    ("dash-not-underscore", "lp:connect-timeout#5\n", "connect_timeout", 10),
    ("rt-not-send_try", "lp:rt#7\n", "send_try", 3),
    ("hash-after-number", "lp:mx#4 # note\n", "mx", 4),
    ("hash-in-string", "lp:cm=x # y\n", "cm", "x # y"),
    # §2.4 backslashes
    ("escaped-colon-kept", "lp:cm=Room 101\\: HP\n", "cm", "Room 101\\: HP"),
    ("double-backslash-colon", "lp:tr=x\\\\:mx#4\n", "tr", "x\\\\:mx#4"),
    ("double-backslash-no-mx", "lp:tr=x\\\\:mx#4\n", "mx", 0),
    ("trailing-backslash-swallows", "lp:cm=abc\\ :x=1\n", "cm", "abc\\:x=1"),
    ("trailing-backslash-loses-next", "lp:cm=abc\\ :x=1\n", "x", None),
    ("octal-not-decoded", "lp:cm=a\\072b\n", "cm", "a\\072b"),
    ("ld-raw-until-print", "lp:ld=\\033E\n", "ld", "\\033E"),
    # §2.5 % expansion
    ("percent-codes", "lp|alias:rp=RP:rm=RM:cm=c%P d%Q e%h f%H g%R h%M i%a k%Z l%%\n", "cm",
     "clp dalias ehost fhost.example gRP hRM iunknown k%Z l%%", "alias"),
    ("percent-date", "lp:cm=%D\n", "cm", TODAY),
    # §3 duplicates and tc
    ("duplicate-key-last-wins", "lp:mx#1:mx#2\n", "mx", 2),
    *[(f"duplicate-entries-{k}", "lp:mx#1:lp=/dev/a\nlp|second:mx#2:sh\n", k, v, "second")
      for k, v in (("lp", "/dev/a"), ("mx", 2), ("sh", True))],
    ("tc-own-wins-tc-first", "t:mx#5:sh\nlp:tc=t:mx#1\n", "mx", 1),
    ("tc-own-wins-tc-last", "t:mx#5:sh\nlp:mx#1:tc=t\n", "mx", 1),
    ("tc-inherited", "t:mx#5:sh\nlp:mx#1:tc=t\n", "sh", True),
    ("tc-later-wins-comma", "a:mx#1\nb:mx#2\nlp:tc=a,b\n", "mx", 2),
    ("tc-later-wins-semicolon", "a:mx#1\nb:mx#2\nlp:tc=b;a\n", "mx", 1),
    ("tc-later-wins-blank", "a:mx#1\nb:mx#2\nlp:tc=a b\n", "mx", 2),
    ("tc-repeated-keys", "a:mx#1\nb:mx#2\nlp:tc=a:tc=b\n", "mx", 2),
    ("tc-target-alias-any-case", "t|tmpl:mx#5\nlp:tc=TMPL\n", "mx", 5),
    ("tc-target-defined-later", "lp:tc=t\nt:mx#5\n", "mx", 5),
    ("tc-under-each-record", "lp:mx#1\nt:mx#5\nlp:tc=t\n", "mx", 5),
    ("tc-punctuation-target", ".common:mx#5\nlp:tc=.common\n", "mx", 5),
    ("tc-percent-is-queue", ".common:sd=/var/spool/%P\nlp:tc=.common\n", "sd", "/var/spool/lp"),
    # §4 wildcards: exact names, then glob names, then '*'
    *[(f"wildcard-{n}", "*:mx#9\nlp*:mx#1\nlpexact:mx#2\n", "mx", v, n)
      for n, v in (("LPexact", 2), ("lpfoo", 1), ("zz", 9))],
    ("catch-all-percent-P", "*:cm=%P\n", "cm", "zz", "zz"),
]


@pytest.mark.parametrize(("text", "key", "expected", "name"),
                         [(*v[1:4], v[4] if len(v) > 4 else "lp") for v in VALUES],
                         ids=[v[0] for v in VALUES])
def test_option_value(tmp_path: Path, text: str, key: str, expected: Any, name: str) -> None:
    """§1-§3: the typed value LPRng gives one key after reading, assembling and merging."""
    if expected is TODAY:  # a run that crosses midnight may read either day
        before = datetime.date.today().isoformat()
        got = value(tmp_path, text, name, key)
        assert got in {before, datetime.date.today().isoformat()}
        return
    assert value(tmp_path, text, name, key) == expected


# (rule id, printcap text, printer_names(), {name: primary it resolves to, None: no such
# printer}, whether a problem is reported)
NAMES: list[tuple[Any, ...]] = [
    *[(f"line-end-{n}", f"a:mx#1{e}b:mx#2\n", ["a", "b"], {"b": "b"}, False)
      for n, e in (("nl", "\n"), ("ff", "\f"), ("ctrl-d", "\x04"), ("ctrl-t", "\x14"))],
    ("comments-blank-lines-dropped", "# c\n\n   \n  # indented\nlp:mx#1\n\t\r\nq:mx#2\n# x:mx#3\n",
     ["lp", "q"], {"x": None}, False),
    *[(f"{n}-keeps-continuation", f"lp:sd=/a:\\\n{g}other:lp=/dev/x\n", ["lp"], {"other": None},
       False) for n, g in (("blank", "\n"), ("comment", "# c\n"), ("blanks", "   \n\n"))],
    ("indent-starts-entry", "lp:sd=/a\n   sd=/x\n", ["lp"], {"sd=/x": None}, True),
    ("pipe-line-adds-alias", "lp\n|alias\n:sd=/a\n", ["lp"], {"alias": "lp"}, False),
    ("pipe-led-entry", "|foo|bar:mx#1\n", ["foo"], {"bar": "foo"}, False),
    ("no-name-dropped", ":sd=/a\nlp:mx#1\n", ["lp"], {}, True),
    *[(f"bad-primary-{n}", f"bad{c}name|alias:sd=/a\nlp:mx#1\n", ["lp"], {"alias": None}, True)
      for n, c in (("space", " "), ("tab", "\t"), ("eq", "="), ("hash", "#"), ("at", "@"))],
    ("descriptive-alias-inert", "lp|Lexmark Optra 40|opt:sd=/a\n", ["lp"],
     {"opt": "lp", "Lexmark Optra 40": None}, False),
    ("names-case-insensitive", "LPX|Other:mx#1\n", ["LPX"], {"lpx": "LPX", "OTHER": "LPX"}, False),
    ("later-entry-owns-alias", "canon|downstairs:mx#1\nnew1|Downstairs:mx#2\n", ["canon", "new1"],
     {"downstairs": "new1", "DownStairs": "new1"}, False),
    ("alias-takes-earlier-primary", "lx300:sd=/b\nLPT1-2|LX300:sd=/a\n", ["lx300", "LPT1-2"],
     {"lx300": "LPT1-2"}, False),
    ("seen-as-alias-not-listed", "LPT1-2|LX300:sd=/a\nlx300|epson:sd=/b\nlast:sd=/c\n",
     ["LPT1-2", "last"], {"LX300": "lx300", "epson": "lx300"}, False),
    ("punctuation-not-listed", ".common:mx#5\n?q1:sd=/a\n!q2:sd=/b\n_q3:sd=/c\n9q4:sd=/d\nlp\n",
     ["9q4", "lp"], {".common": ".common", "?q1": "?q1", "!q2": "!q2", "_q3": "_q3"}, False),
    ("all-entry-is-the-list", "a:sd=/a\nall:all=b,a zz;c\nb:sd=/b\nc:sd=/c\n",
     ["b", "a", "zz", "c"], {}, False),
    ("catch-all-takes-name", "*:mx#9\nlp*:mx#1\nlpexact:mx#2\n", ["lp*", "lpexact"],
     {"LPexact": "lpexact", "zz": "zz"}, False),
]


@pytest.mark.parametrize(("text", "names", "lookups", "problem"), [n[1:] for n in NAMES],
                         ids=[n[0] for n in NAMES])
def test_names(tmp_path: Path, text: str, names: list[str], lookups: dict[str, str | None],
               problem: bool) -> None:
    """§1-§2.2, §4: which entries exist, the printer list, and what each name resolves to."""
    pc = load(tmp_path, text)
    assert pc.printer_names() == names
    for name, primary in lookups.items():
        if primary is None:
            with pytest.raises(NoSuchPrinter):
                pc.lookup(name)
        else:
            assert pc.lookup(name).name == primary
    assert bool(pc.problems) is problem


def test_cut_at_first_colon(tmp_path: Path) -> None:
    """§2.1: a ':' inside a name ends the names; the rest are options."""
    name = "RICOH_Aficio_MP_C3502_(002673406F9B)"
    pc = load(tmp_path, f"{name}:1|RICOH Aficio MP C3502 [x]:rm=h:rp={name}:1:\n")
    assert pc.printer_names() == [name]
    options = pc.lookup(name).options
    assert options["1"].form == "flag"
    assert options["1|ricoh"].text == "1|RICOH Aficio MP C3502 [x]"
    assert options["rp"].value == name


def test_option_records(tmp_path: Path) -> None:
    """§1.5, §2.3: option order, kept unknown keys, the last spelling of a key, file:line."""
    path = write(tmp_path, "lp|Long Name:SD=/a:\\\n\nother:foo=bar:Zap:sd=/b:ms=x\n |alias\n")
    entry = printcap.load([str(path)], host=HOST).lookup("lp")
    options = entry.options
    assert entry.names == ["lp", "Long Name"]
    assert list(options) == ["sd", "other", "foo", "zap", "ms"] and options["sd"].key == "sd"
    assert typed_value(options["foo"]) == "bar" and typed_value(options["ms"]) == "x |alias"
    assert options["zap"].key == "Zap" and options["zap"].form == "flag"
    assert options["sd"].origin == Origin(str(path), 3)


# §6 key table: type and Debian 3.8.B default of each key
FILTER_OPTIONS = " ".join(f"${c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
KEY_TABLE: dict[str, tuple[str, Any]] = {
    **dict.fromkeys(["all", "lp", "rm", "rp", "bp", "bs", "be", "ld", "tr", "if", "filter", "of",
                     "of_filter_options", "fx", "stty", "cm", "translate_format", "ppd", "db",
                     "rg"],
                    ("S", None)),
    "sd": ("S", "/var/spool/lpd/lp"), "lf": ("S", "log"), "af": ("S", "acct"),
    "ps": ("S", "status"), "as": ("S", "jobstart $H $n $P $k $b $t $'C $'J $'M"),
    "bl": ("S", "$-C:$-n Job: $-J Date: $-t"),
    "ff": ("S", "\\f"), "pr": ("S", "/usr/bin/pr"), "send_failure_action": ("S", "remove"),
    "originate_port": ("S", "512 1023"), "bq_format": ("S", "f"), "lpd_port": ("S", "515"),
    "default_remote_host": ("S", "localhost"), "lpd_listen_port": ("S", "off"),
    "filter_options": ("S", FILTER_OPTIONS + " $-a"),
    **{k: ("N", v) for k, v in dict(  # noqa: C408 - keywords read as the table does
       mx=0, mc=1, pl=66, pw=80, px=0, py=0, br=0, connect_timeout=10,
       connect_interval=10, max_connect_interval=60, connect_grace=0, send_try=3, done_jobs=1,
       send_job_rw_timeout=0, send_query_rw_timeout=30, done_jobs_max_age=0,
       socket_linger=10).items()},
    **dict.fromkeys(["la", "ar", "sf", "retry_econnrefused", "retry_nolink", "qq", "fifo",
                     "suspend_of_filter", "keepalive", "force_localhost"],
                    ("F", True)),
    **dict.fromkeys(["achk", "sh", "ab", "hl", "sb", "ff_separator", "fo", "fq", "bkf", "bk", "rw",
                     "lk", "nb", "ah", "stop_on_abort", "filter_stderr_to_status_file",
                     "save_on_error",
                     "save_when_done", "lpd_bounce", "direct"],
                    ("F", False)),
}
TYPED = {"S": ("1", "0", "012"), "N": (1, 0, 10), "F": (True, False, True)}


@pytest.mark.parametrize(("key", "kind", "default"), [(k, *v) for k, v in KEY_TABLE.items()])
def test_key_table(tmp_path: Path, key: str, kind: str, default: Any) -> None:
    """§2.3/§6: each key's default, and `key`, `key@`, `key=012` typed by the key's type."""
    pc = load(tmp_path, f"lp\nbare:{key}\noff:{key}@\nval:{key}=012\n")
    assert pc.lookup("lp").get(key) == default
    assert tuple(pc.lookup(n).get(key) for n in ("bare", "off", "val")) == TYPED[kind]


# ---- §1.4 include -----------------------------------------------------------------------

@pytest.mark.parametrize("word", ["include", "INCLUDE", "Include"])
@pytest.mark.parametrize("sep", [" ", "\t", ",", ";", ":", " , "], ids=repr)
def test_include_word_and_separators(tmp_path: Path, word: str, sep: str) -> None:
    """§1.4: 'include' in any case, several files split on blank, comma, ';' and ':'."""
    a, b = write(tmp_path, "a:mx#1\n", "a.pc"), write(tmp_path, "b:mx#2\n", "b.pc")
    pc = load(tmp_path, f"first:mx#0\n{word} {a}{sep}{b}\nlast:mx#3\n")
    assert pc.printer_names() == ["first", "a", "b", "last"]
    assert not [p for p in pc.problems if p.fatal]


def test_include_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """§1.4: a relative include name is taken from the current directory, not the file's."""
    etc, cwd = tmp_path / "etc", tmp_path / "cwd"
    etc.mkdir()
    cwd.mkdir()
    write(etc, "wrong:mx#1\n", "inc.pc")
    write(cwd, "right:mx#2\n", "inc.pc")
    monkeypatch.chdir(cwd)
    pc = printcap.load([str(write(etc, "include inc.pc\n"))], host=HOST)
    assert pc.printer_names() == ["right"]


def test_include_missing_file_fatal(tmp_path: Path) -> None:
    """§1.4: an included file that does not exist is a fatal error."""
    pc = load(tmp_path, f"lp:mx#1\ninclude {tmp_path / 'nosuch'}\n")
    fatal = [p for p in pc.problems if p.fatal]
    assert fatal and fatal[0].origin == Origin(str(tmp_path / "printcap"), 2)


@pytest.mark.parametrize(("levels", "fatal"), [(4, False), (5, True)])
def test_include_depth(tmp_path: Path, levels: int, fatal: bool) -> None:
    """§1.4: include nesting of 4 levels is read; deeper is fatal."""
    for level in range(1, levels + 1):
        nested = f"include {tmp_path / f'inc{level + 1}'}\n" if level < levels else ""
        write(tmp_path, f"q{level}:mx#{level}\n{nested}", f"inc{level}")
    pc = load(tmp_path, f"include {tmp_path / 'inc1'}\n")
    assert any(p.fatal for p in pc.problems) is fatal
    assert len(pc.printer_names()) == (4 if fatal else levels)


def test_include_spliced_before_assembly(tmp_path: Path) -> None:
    """§1.4: included lines are spliced in first: continuations cross the include boundary."""
    inc = write(tmp_path, "pc:mx#4\na:mx#1\nb:mx#2\n", "inc.pc")
    pc = load(tmp_path, f"lp:sd=/a:\\\n   include {inc}\n:sh\n")
    assert pc.lookup("b").get("sh") is True and pc.lookup("a").get("sh") is False
    assert pc.lookup("lp").get("mx") == 4 and pc.printer_names() == ["lp", "a", "b"]


# ---- §3 tc, oh, server/client --------------------------------------------------------------

def test_tc_missing_target(tmp_path: Path) -> None:
    """§3: a tc target that does not exist is fatal, reported at the tc's file:line."""
    pc = load(tmp_path, "lp:sd=/a\n :tc=nosuch\n")
    with pytest.raises(ConfigError) as caught:
        pc.lookup("lp")
    assert caught.value.where == f"{tmp_path / 'printcap'}:2"
    assert "nosuch" in caught.value.message


@pytest.mark.parametrize(("levels", "fatal"), [(5, False), (6, True)])
def test_tc_depth(tmp_path: Path, levels: int, fatal: bool) -> None:
    """§3: five nested tc levels work; the sixth is fatal ('tc recursion depth 6')."""
    chain = [f"t{n}:tc=t{n + 1}:x{n}\n" for n in range(1, levels)] + [f"t{levels}:mx#7\n"]
    pc = load(tmp_path, "lp:tc=t1\n" + "".join(chain))
    if fatal:
        with pytest.raises(ConfigError):
            pc.lookup("lp")
    else:
        assert pc.lookup("lp").get("mx") == 7 and pc.lookup("lp").has("x4")


def test_tc_loop_fatal_and_tc_removed(tmp_path: Path) -> None:
    """§3: a tc loop ends in the depth limit (fatal); tc keys are not in the resolved entry."""
    pc = load(tmp_path, "lp:tc=a\na:tc=b\nb:tc=a\nok:tc=t:sh\nt:mx#5\n")
    with pytest.raises(ConfigError):
        pc.lookup("lp")
    assert sorted(pc.lookup("ok").options) == ["mx", "sh"]


@pytest.mark.parametrize(("oh", "kept"), [
    ("otherhost", False), ("host.example", True), ("HOST", True), ("127.0.0.1", True),
    ("127.0.0.0/8", True), ("127.0.0.0/255.0.0.0", True), ("10.0.0.0/8", False),
    ("10.1.2.3", False), ("*.example", True), ("h?st", True), ("*.nomatch,host", True),
    ("*.nomatch;otherhost", False), ("*.nomatch host.example", True), ("!otherhost", True),
    ("!host.example", False), ("!host.example,otherhost", True), ("<{pats}", True),
    ("<{nosuch}", False), ("otherhost:oh=host.example", True), ("host:oh=otherhost", False)])
def test_oh_selects_record(tmp_path: Path, oh: str, kept: bool) -> None:
    """§3: an oh= record is kept only when an item matches the host (glob, address, </file, !)."""
    pats = write(tmp_path, "foo\n*.example\n", "pats")
    oh = oh.format(pats=pats, nosuch=tmp_path / "nosuch")
    pc = load(tmp_path, f"lp:mx#1\nlp:oh={oh}:mx#2\nonly:oh={oh}:mx#3\n")
    assert pc.lookup("lp").get("mx") == (2 if kept else 1)
    assert ("only" in pc.printer_names()) is kept


@pytest.mark.parametrize(("text", "key", "server", "client"), [
    ("lp:mx#1\nlp:server:mx#5\nlp:client:mx#6\n", "mx", 5, 6),
    ("lp:server.mx#5:client.mx#6:mx#1\n", "mx", 5, 6), ("lp:mx#1:server.mx#5\n", "mx", 5, 1),
    ("lp:client.mx#6:mx#1\n", "mx", 1, 6),
    ("lp:server.lp=/dev/s:client.lp=/dev/c:lp=/dev/x\n", "lp", "/dev/s", "/dev/c")])
def test_server_client(tmp_path: Path, text: str, key: str, server: Any, client: Any) -> None:
    """§3: server/client records, and server.KEY/client.KEY, apply to their own side only."""
    text += "srv:server:sd=/a\ncli:client:sd=/b\n"
    for side, expected, other in (("server", server, "cli"), ("client", client, "srv")):
        pc = load(tmp_path, text, side=side)
        assert pc.lookup("lp").get(key) == expected and other not in pc.printer_names()
        with pytest.raises(NoSuchPrinter):
            pc.lookup(other)


# ---- §5 destinations ------------------------------------------------------------------------

DESTINATIONS = [
    (":lp=/dev/lp0", Device("/dev/lp0")), (":lp=|/usr/bin/lpf -x", Pipe("/usr/bin/lpf -x")),
    (":lp=printer.example%9100", Socket("printer.example", 9100)),
    (":lp=10.0.0.5%0233", Socket("10.0.0.5", 0o233)),
    (":lp=printer%printer", Socket("printer", 515)), (":lp=printer%", Socket("printer", 515)),
    (":lp=raw@printer", Lpd("raw", "printer")),
    (":lp=raw@printer%1515", Lpd("raw", "printer", 1515)),
    (":lp=9100@printer", Lpd("9100", "printer", 515)),
    (":lp=ftp://printer\\:2121/PORT1", Ftp("printer", 2121, "PORT1")),
    (":lp=ftp://u\\:secret@printer/PORT1", Ftp("printer", 21, "PORT1", "u", "secret")),
    (":lp=ftp://printer/PORT1:sh", Ftp("printer", 21, "PORT1")),
    (":lp=ftp://printer:2121/PORT1:sh", Ftp("printer", 2121, "PORT1")),
    (":rm=host:rp=q", Lpd("q", "host")), (":sd=/a", Lpd("lp", "localhost")),
    (":lp=/dev/x:rm=host", Device("/dev/x")),
]


@pytest.mark.parametrize(("options", "expected"), DESTINATIONS, ids=[d[0] for d in DESTINATIONS])
def test_entry_destination(tmp_path: Path, options: str, expected: Any) -> None:
    """§5: lp= (then rm/rp) gives device, pipe, socket, LPD queue or FTP destination."""
    assert load(tmp_path, f"lp{options}\n").lookup("lp").destination() == expected


@pytest.mark.parametrize(("lp", "expected"), [
    ("[::1]%9100", Socket("::1", 9100)), ("[fe80::1]%011", Socket("fe80::1", 9)),
    ("h%0x238c", Socket("h", 9100)),
    ("9100@printer", Lpd("9100", "printer")), ("q@[::1]%516", Lpd("q", "::1", 516)),
    ("ftp\\://h/P", Ftp("h", 21, "P")), (None, Lpd("queue", "localhost")),
    *[(bad, Invalid) for bad in ("printer", "|", "| ", "%9100", "@host", "queue@", "h%nosuchsvc",
                                 "h%99999", "ftp://",
                                 # a bracketed host the URI parser refuses (a colon cut)
                                 "ftp://u@[:1]\\:2121/in", "socket://[nonsense]/", "lpd://[/q")]])
def test_classify(lp: str | None, expected: Any) -> None:
    """§5: classify() reads lp forms, [IPv6] hosts, octal ports; anything else is a bad lp."""
    result = classify(lp, queue="queue")
    assert isinstance(result, Invalid) if expected is Invalid else result == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("\\033E\\r\\n", "\x1bE\r\n"), ("\\X", "X"), ("\\:", ":"), ("\\f\\t", "\f\t"),
    ("\\0", "\x00"), ("\\1234", "S4"), ("\\\\", "\\"), ("plain", "plain")])
def test_c_unescape(text: str, expected: str) -> None:
    """§2.4: ld/tr/ff are C-unescaped: \\f \\r \\n \\t, up to 3 octal digits, \\X -> X."""
    assert c_unescape(text) == expected


# ---- checkpc ------------------------------------------------------------------------------------

def run_checkpc(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *args: str,
                make_dirs: bool = True) -> tuple[Path, int, list[str]]:
    """Write TEXT ('{spool}' -> tmp_path/spool, sd dirs made 0700) and run checkpc on it."""
    text = text.replace("{spool}", str(tmp_path / "spool"))
    for match in re.finditer(r"sd=([^:\n\\]+)", text) if make_dirs else ():
        Path(match.group(1)).mkdir(parents=True, exist_ok=True)
        os.chmod(match.group(1), 0o700)
    path = write(tmp_path, text)
    capsys.readouterr()
    status = cli.main(["--printcap", str(path), "checkpc", *args])
    return path, status, capsys.readouterr().out.splitlines()


OK_LINE = "lp|lp2:sd={spool}/lp:lp=/dev/null\n"
CHECKS = [  # (id, text, line of the finding, pattern in the message)
    ("sh-on", OK_LINE + " :sh=on\n", 2, r"sh=on"),
    ("lpd-queue-9100", "lp:sd={spool}/lp\n :lp=9100@printer\n", 2, r"9100.*queue|queue.*9100"),
    ("trailing-backslash", OK_LINE + " :cm=abc\\ :mx#4\n", 2, r"backslash"),
    ("typo-key", OK_LINE + " :conect_timeout#5\n", 2, r"connect_timeout"),
    ("dash-key", OK_LINE + " :connect-timeout#5\n", 2, r"connect_timeout"),
    ("missing-tc", OK_LINE + " :tc=nosuch\n", 2, r"nosuch"),
    ("tc-loop", OK_LINE + " :tc=.a\n.a:tc=.b\n.b:tc=.a\n", None, r"tc.*(depth|loop|recursion)"),
    ("gap-in-continuation", "lp:sd={spool}/lp:lp=/dev/null:\\\n\nother:mx#4\n", 3, r"backslash"),
    ("late-alias", OK_LINE + " |alias2\n", 2, r"\balias(es)?\b"),
    ("bad-lp", "lp:sd={spool}/lp\n :lp=printer\n", 2, r"lp=printer"),
    ("unknown-service", "lp:sd={spool}/lp\n :lp=printer%nosuchsvc\n", 2, r"nosuchsvc"),
    ("filter-dollar-home", OK_LINE + " :if=$HOME/bin/filter\n", 2, r"\$H"),
    # lprng-printcap.md §5: lp wins over rm and rp, whatever its form.
    ("lp-device-and-rm", "lp:sd={spool}/lp\n :lp=/dev/null:rm=server\n", 2,
     r"both lp and rm: LPRng prints to lp and ignores rm"),
    ("lp-queue-and-rm", "lp:sd={spool}/lp\n :lp=raw@printhost:rm=server\n", 2,
     r"forwards to lp=raw@printhost and ignores rm=server"),
    ("rp-on-a-socket", "lp:sd={spool}/lp:lp=printhost%9100\n :rp=raw\n", 2,
     r"rp=raw means nothing on a socket printer.*lp=raw@printhost"),
]


@pytest.mark.parametrize(("text", "line", "pattern"), [c[1:] for c in CHECKS],
                         ids=[c[0] for c in CHECKS])
def test_checkpc_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                         line: int | None, pattern: str) -> None:
    """checkpc reports each LPRng misreading as FILE:LINE: message and exits 1."""
    path, status, out = run_checkpc(tmp_path, capsys, text)
    where = re.escape(str(path)) + ":" + (str(line) if line else r"\d+") + ": "
    assert status == 1
    assert [o for o in out if re.match(where, o) and re.search(pattern, o, re.I)], out


def test_checkpc_relative_include(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """checkpc warns that a relative include name is taken from the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spool" / "q").mkdir(parents=True, mode=0o700)
    write(tmp_path, f"q:sd={tmp_path}/spool/q:lp=/dev/null\n", "inc.pc")
    path, status, out = run_checkpc(tmp_path, capsys, OK_LINE + "include inc.pc\n")
    assert status == 1
    assert [o for o in out if o.startswith(f"{path}:2: ") and "relative" in o], out


def test_checkpc_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """checkpc prints nothing and exits 0 for a printcap LPRng reads as written."""
    text = (OK_LINE + "# comment\nremote:sd={spool}/remote:rm=host:rp=q:mx#0:sh\n"
            ".tmpl:mx#10\nsock:tc=.tmpl:sd={spool}/sock:lp=printer%9100\n"
            # LPD forwarding as sites write it (issue 13): all valid.
            "fwd:sd={spool}/fwd:lp=raw@printhost\nfwdport:sd={spool}/fwdport:lp=raw@printhost%5515\n"
            "rmonly:sd={spool}/rmonly:rm=printhost\n")
    _, status, out = run_checkpc(tmp_path, capsys, text)
    assert (status, out) == (0, [])


@pytest.mark.parametrize(("mode", "message"), [(None, "does not exist"), (0o777, "0777")])
def test_checkpc_fix_spool_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               mode: int | None, message: str) -> None:
    """checkpc reports a missing or 0777 spool dir; --fix creates or chmods it to 0700."""
    spool = tmp_path / "spool" / "lp"
    if mode is not None:
        spool.mkdir(parents=True)
        os.chmod(spool, mode)
    _, status, out = run_checkpc(tmp_path, capsys, OK_LINE, make_dirs=False)
    assert status == 1 and any(message in o for o in out), out
    assert run_checkpc(tmp_path, capsys, OK_LINE, "--fix", make_dirs=False)[1] == 0
    assert stat.S_IMODE(os.stat(spool).st_mode) == 0o700
    assert run_checkpc(tmp_path, capsys, OK_LINE, make_dirs=False)[1:] == (0, [])


def test_checkpc_warns_about_waitend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lpfilter key: an unknown waitend mode, or waitend=pjl without pjl, is reported."""
    from lpfilter.cli import main
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    spool2 = tmp_path / "spool2"
    spool2.mkdir(mode=0o700)
    path = tmp_path / "printcap"
    path.write_text(f"a:lp=h%9100:sd={spool}:waitend=pjll\nb:lp=h%9100:sd={spool2}:waitend=pjl\n")
    assert main(["--printcap", str(path), "checkpc"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:1: waitend=pjll is not a completion mode" in out
    assert f"{path}:2: queue b: waitend=pjl needs :pjl:" in out


def test_an_entrys_answers_are_kept_and_the_same_every_time(tmp_path: Path) -> None:
    """``Entry.get`` keeps its answers (a worker asks ~50 a job): each is what a fresh
    entry gives, in any case of the key, %-codes expanded, defaults from the key table."""
    text = "lp:sd=/var/spool/%P:cm=on %h:mx#7:sh:lp=127.0.0.1%9100\n"
    keys = ["sd", "SD", "cm", "mx", "Mx", "sh", "lp", "done_jobs", "ab", "nothing_like_it"]
    kept = load(tmp_path, text).lookup("lp")
    first = [kept.get(key) for key in keys]
    assert first == [load(tmp_path, text).lookup("lp").get(key) for key in keys]
    assert [kept.get(key) for key in keys] == first
    assert first[:6] == ["/var/spool/lp", "/var/spool/lp", "on host", 7, 7, True]
    assert first[6] == "127.0.0.1%9100" and first[-1] is None


def test_an_entry_converts_each_key_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answers are kept, not worked out again: a key's text is converted (and its
    %-codes expanded) at its first ``get`` only."""
    from lpfilter.printcap import entry as entry_module
    converted: list[str] = []
    real = entry_module.typed_value

    def counting(option: Any) -> Any:
        converted.append(option.key)
        return real(option)

    kept = load(tmp_path, "lp:sd=/var/spool/%P:mx#7\n").lookup("lp")
    monkeypatch.setattr(entry_module, "typed_value", counting)
    for _ in range(3):
        assert (kept.get("sd"), kept.get("SD"), kept.get("mx")) == ("/var/spool/lp",) * 2 + (7,)
    assert sorted(converted) == ["mx", "sd", "sd"]  # once per name asked (sd, SD, mx)


@pytest.mark.parametrize("text", [
    "127.0.0.1", "10.0.0.9", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5",
    "::1", "fe80::1", "fe80::1%eth0", "2001:db8::1", "::ffff:192.0.2.1", "1.2.3.x", "host",
    "", "a:b", "1.2.3.٤", "1.2.3.4/24"])
def test_an_address_is_told_by_its_shape_as_ipaddress_reads_it(text: str) -> None:
    """``local_fqdn`` tells a hosts line's address without ``ipaddress`` (a quick command's
    ``Printer: q@host``); for what /etc/hosts holds it agrees with ``ipaddress``."""
    from lpfilter.printcap import hostmatch
    assert hostmatch._looks_like_address(text) == hostmatch._is_address(text)  # noqa: SLF001


def test_this_machines_full_name_is_the_same_either_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry.fqdn() (no addresses looked up) names this machine as Entry.host does, from a
    hosts file whose line for it gives a dotted name."""
    from lpfilter.printcap import hostmatch
    name = hostmatch.host_name()
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n192.0.2.7 {name}.example.org {name}\n"
                     f"bad.address {name}.wrong.example\n")
    real = hostmatch._hosts_file_lines  # noqa: SLF001
    monkeypatch.setattr(hostmatch, "_hosts_file_lines", lambda path="": real(str(hosts)))
    from lpfilter.printcap import entry as entry_module
    for cached in (hostmatch._local_lines, hostmatch.local_host, hostmatch.local_fqdn):  # noqa: SLF001
        fresh = hostmatch.once(cached.__wrapped__)  # (each read once per process)
        monkeypatch.setattr(hostmatch, cached.__name__, fresh)
        if hasattr(entry_module, cached.__name__):
            monkeypatch.setattr(entry_module, cached.__name__, fresh)
    entry = load(tmp_path, "lp:lp=/dev/null\n", host=None).lookup("lp")
    assert entry.fqdn() == f"{name}.example.org" == hostmatch.local_host().fqdn
