"""Issue 10 §6: printcap corners real sites hit, read as LPRng 3.8.B reads them.

Each fact cites where it comes from: LPRng's source (repository Distrotech/lprng,
src/common/...; the parser is linelist.c, as in shared/reference/lprng-printcap.md) or the
LPRng Reference Manual. Where LPRng's behaviour is a bug rather than a rule, the test says
what lpfilter chose instead (documented in man/lpfilter-printcap.5, "DIFFERENCES").
Every printcap is a real file; commands run through ``lpfilter.cli.main``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lpfilter import cli, printcap
from lpfilter.errors import NoSuchPrinter
from lpfilter.printcap import Printcap
from lpfilter.printcap.hostmatch import HostInfo

HOST = HostInfo.fixed("host.example", ("127.0.0.1",))


def load(tmp_path: Path, text: str, **kwargs: Any) -> Printcap:
    path = tmp_path / "printcap"
    path.write_bytes(text.encode())
    kwargs.setdefault("host", HOST)
    return printcap.load([str(path)], **kwargs)


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``lpfilter --printcap TMP/printcap ARGV`` in-process: (status, stdout, stderr)."""
    capsys.readouterr()
    status = cli.main(["--printcap", str(tmp_path / "printcap"), *argv])
    out, err = capsys.readouterr()
    return status, out, err


# ---- (a) the names of same-named entries that are merged ------------------------------------
# linelist.c, Build_printcap_info: every record goes into one list sorted by primary name with
# Add_line_list(sort=1, uniq=0), which inserts after equal keys (strcasecmp), so the records
# of one name stay in file order, whatever the letter case of their primary names.
# linelist.c, Find_pc_info: for each of those records in turn, the names before the first ':'
# are appended to the alias list (Split on "|:") and Remove_duplicates_line_list drops a name
# only when it is spelled exactly like an earlier one (safestrcmp: case-sensitive).

MERGED = "lp|a:mx#1\nother|x:mx#9\nLP|b|a|A|lp:mx#2\nlp|c|B:sh\n"


def test_merged_entry_keeps_every_spelling_in_file_order(tmp_path: Path) -> None:
    """(a) Names of all merged records, first record first, exact duplicates dropped only."""
    entry = load(tmp_path, MERGED).lookup("b")
    assert entry.names == ["lp", "a", "LP", "b", "A", "c", "B"]
    assert (entry.get("mx"), entry.get("sh")) == (2, True)


def test_merged_entry_is_one_queue_whatever_name_is_asked(tmp_path: Path) -> None:
    """(a) LPRng names the queue after the primary as spelled by the latest record holding
    the name asked for (linelist.c Build_pc_names: Set_str_value(names, alias, primary)
    replaces; getprinter.c Fix_Rm_Rp_info: Printer_DYN = that value), so "a" would give %P
    "LP" and "c" would give "lp": one entry, two spool directories. lpfilter's choice: the
    first record's spelling, for every name (man page, DIFFERENCES)."""
    pc = load(tmp_path, MERGED + "q:sd=/s/%P\n")
    assert {pc.lookup(n).name for n in ("lp", "LP", "a", "A", "b", "c")} == {"lp"}


def test_printcap_command_shows_merged_names(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """(a) ``lpfilter printcap`` shows the names line LPRng's ``lpc client`` shows
    (getprinter.c Show_formatted_info joins the alias list with '|')."""
    load(tmp_path, MERGED)
    status, out, _ = run(tmp_path, capsys, "printcap", "-P", "a")
    assert status == 0 and out.splitlines()[0] == "lp|a|LP|b|A|c|B"


# ---- (b) a value ending in a backslash, followed by more options ------------------------------
# linelist.c, Build_pc_names: the options after the first ':' are split on ':' (a ':' right
# after a backslash does not split), trimmed, empty ones dropped, and SORTED BY KEY
# (Split(&opts, s+1, ":", sort=1, Option_value_sep, ...)); the entry is rebuilt by joining them
# with ':'. Find_pc_info splits that text again. So a value whose trimmed text ends in '\'
# escapes the joining ':' and swallows the option that follows it in key order (strcasecmp of
# the text before the first blank, '=', '#' or '@'), not the next one in the file.

BACKSLASH = [  # (id, printcap text, {key: value LPRng gives})
    ("swallows-next-in-key-order", "lp:cm=abc\\ :aa=1:zz=2\n",
     {"cm": "abc\\:zz=2", "aa": "1", "zz": None}),
    ("last-in-key-order-swallows-nothing", "lp:zz=abc\\ :aa=1\n", {"zz": "abc\\", "aa": "1"}),
    ("next-in-file-and-in-order", "lp:cm=abc\\ :x=1\n", {"cm": "abc\\:x=1", "x": None}),
    ("chain-in-key-order", "lp:b=2\\ :d=4:a=1\\ :c=3\n",
     {"a": "1\\:b=2\\:c=3", "b": None, "c": None, "d": "4"}),
    ("keys-compare-without-case", "lp:CM=x\\ :Aa=1:co=2\n", {"cm": "x\\:co=2", "aa": "1"}),
    # A real site's entry: the comment's trailing '\ ' eats the device (lp sorts after cm),
    # not mx#0 that follows it in the file.
    ("site-loses-lp-not-mx", "lp:\\\n  :sd=/var/spool/lpd/lp:\\\n  :cm=Room 101\\ :\\\n"
     "  :mx#0:\\\n  :lp=/dev/lp0:\n", {"cm": "Room 101\\:lp=/dev/lp0", "lp": None, "mx": 0,
                                       "sd": "/var/spool/lpd/lp"}),
    # An escaped ':' that ends a value does not swallow anything: the ':' after it splits.
    ("escaped-colon-at-end", "lp:cm=Room 101\\:\n  :sd=/a:\n",
     {"cm": "Room 101\\:", "sd": "/a"}),
]


@pytest.mark.parametrize(("text", "expected"), [b[1:] for b in BACKSLASH],
                         ids=[b[0] for b in BACKSLASH])
def test_trailing_backslash_swallows_in_key_order(tmp_path: Path, text: str,
                                                   expected: dict[str, Any]) -> None:
    """(b) Which option a value ending in a backslash swallows."""
    entry = load(tmp_path, text).lookup("lp")
    assert {key: entry.get(key) for key in expected} == expected


def test_checkpc_names_the_option_lost(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """(b) checkpc shows the joined option (with the one really lost) at its file:line."""
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    load(tmp_path, f"lp:sd={spool}\n  :cm=Room 101\\ :mx#0\n  :lp=/dev/null:\n")
    status, out, _ = run(tmp_path, capsys, "checkpc")
    assert status == 1
    where = f"{tmp_path / 'printcap'}:2: "
    assert [line for line in out.splitlines() if line.startswith(where)
            and "cm=Room 101\\:lp=/dev/null" in line and "alphabetical" in line], out


# ---- (c) the `all` entry listing a printer that is not defined --------------------------------
# getprinter.c, Get_all_printcap_entries: Select_pc_info("all", wildcard 0) finds the entry by
# exact name or alias; Find_str_value(entry, "all") gives the text after "all=" only (an
# "all#..." or bare "all" gives NULL, and then the list is the one word "all"); the value is
# Split on File_sep (blank, tab, ',', ';', ':') and used as is: names no entry defines stay.
# getqueue.c, Setup_printer (lpd, Service_all) and checkpc.c, Scan_printer then find no entry and
# no spool directory for such a name: lpd skips it, lpq -a shows an error for it, checkpc warns.

GHOST = "a:sd={sd}:lp=/dev/null\nall:all=a,ghost\n"


@pytest.mark.parametrize(("text", "names"), [
    ("a\nall:all=a,ghost b;c\n", ["a", "ghost", "b", "c"]),
    ("a\nall|every:all=b\nb\n", ["b"]),
    ("a\nall:all#a\n", ["all"]), ("a\nall:all\n", ["all"]), ("a\nall:sd=/x\n", ["all"]),
    ("a\nall:all = a\n", ["all"]), ("a\nall:all=\n", []),
    ("a\nall:all=%P\n", ["%P"]), ("a\n.t:all=a,b\nall:tc=.t\nb\n", ["a", "b"]),
], ids=["undefined-kept", "by-alias", "hash", "flag", "no-all-key", "blank-eq", "empty",
        "not-expanded", "via-tc"])
def test_all_list_as_lprng_reads_it(tmp_path: Path, text: str, names: list[str]) -> None:
    """(c) The printer list an `all` entry gives."""
    assert load(tmp_path, text).printer_names() == names


def test_checkpc_all_entry_without_all_list(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """(c) checkpc says that an `all` entry written all#a,b gives LPRng the list "all"."""
    load(tmp_path, "a:lp=/dev/null\nall:all#a,b\n")
    status, out, _ = run(tmp_path, capsys, "checkpc")
    assert status == 1
    assert [line for line in out.splitlines() if line.startswith(f"{tmp_path / 'printcap'}:2: ")
            and "all#a,b" in line and ":all=a,b:" in line], out


def test_all_lists_undefined_printer_checkpc(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """(c) checkpc reports the undefined name at the all= line, once, as LPRng's checkpc
    warns about it; it is no fatal 'no printer named' without a file:line."""
    sd = tmp_path / "sd"
    sd.mkdir(mode=0o700)
    load(tmp_path, GHOST.format(sd=sd))
    status, out, _ = run(tmp_path, capsys, "checkpc")
    assert status == 1
    found = [line for line in out.splitlines() if "ghost" in line]
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'printcap'}:2: "), out
    assert "all=" in found[0] and "no printer named" not in out


def test_all_lists_undefined_printer_watch_and_status(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """(c) Like lpd (which skips it), watch serves the defined queues; status -a shows them."""
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    sd, out = tmp_path / "sd", tmp_path / "printed"
    sd.mkdir(mode=0o700)
    out.touch()
    load(tmp_path, GHOST.format(sd=sd).replace("/dev/null", str(out)))
    doc = tmp_path / "doc.txt"
    doc.write_text("hello\n")
    status, stdout, err = run(tmp_path, capsys, "print", "-P", "a", "--no-wait", str(doc))
    assert (status, stdout) == (0, "a-000001\n"), err
    status, _, err = run(tmp_path, capsys, "watch", "--once")
    assert status == 0, err
    assert out.read_text() == "hello\n"
    status, stdout, err = run(tmp_path, capsys, "status", "--all", "--json")
    assert status == 0, err
    assert "ghost" not in stdout and '"a"' in stdout


def test_all_lists_printer_a_wildcard_answers(tmp_path: Path) -> None:
    """(c) A listed name that only '*' or a glob entry answers to is a queue (the usual
    client set-up: all=... plus *:rm=server): the lookup worked before, and the queue
    list keeps such names."""
    pc = load(tmp_path, "all:all=a,lpx,remote\nlp*:rm=s1\n*:rm=server\na:lp=/dev/null\n")
    assert pc.queue_names() == ["a", "lpx", "remote"]
    assert [pc.lookup(n).string("rm") for n in ("lpx", "remote")] == ["s1", "server"]


# ---- (d) glob-named entries: the names they answer to, and %P ---------------------------------
# linelist.c, Select_pc_info: an exact name or alias first (strcasecmp); then, with wildcard
# on, every name of the names list in ITS order, which is sorted by name (Set_str_value keeps
# it sorted, strcasecmp), the first that Globmatch()es the name asked for wins; a name that is
# exactly "*" is only remembered, and used when nothing else matched. A name used by two
# entries belongs to the later one (Set_str_value replaces), patterns too.
# globmatch.c, glob_pattern: literal text compares case-insensitively (strncasecmp), '?' is one
# character, '*' any run, '[...]' a set or range compared case-sensitively, '^' negates it,
# an unclosed '[' matches nothing. getqueue.c, Setup_printer: lpd lowercases the name first.

GLOBS = [  # (id, printcap text, name asked, mx of the entry found or None)
    ("exact-before-glob", "lp*:mx#1\nlpx:mx#2\n", "LPX", 2),
    ("sorted-not-file-order", "q?:mx#1\nq*:mx#2\n", "q1", 2),
    ("sorted-not-file-order-2", "lpa*:mx#1\nlp*:mx#2\n", "lpab", 2),
    ("later-entry-owns-pattern", "a|lp*:mx#1\nb|lp*:mx#2\n", "lpx", 2),
    ("glob-before-star", "*:mx#9\nq?:mx#1\n", "qx", 1),
    ("star-last", "*:mx#9\nq?:mx#1\n", "qxy", 9),
    ("literal-any-case", "LP*:mx#1\n", "lpfoo", 1),
    ("caret-negates", "q[^0-9]:mx#1\n", "qa", 1),
    ("caret-negates-digit", "q[^0-9]:mx#1\n", "q5", None),
    ("bang-is-literal", "q[!a]:mx#1\n", "qb", None),
    ("bang-is-literal-2", "q[!a]:mx#1\n", "q!", 1),
    ("range", "q[0-9]:mx#1\n", "q7", 1),
    ("set-case-sensitive-server-lowercases", "q[A-Z]:mx#1\n", "QB", None),
    ("unclosed-set", "q[ab:mx#1\n", "qa", None),
    ("star-then-text-needs-a-char", "lp**:mx#1\n", "lp", None),
    ("star-matches-empty-at-end", "lp*:mx#1\n", "lp", 1),
    ("question-one-char", "q?:mx#1\n", "q", None),
    ("not-a-tc-target", "t*:mx#5\nlp:tc=tx\n", "lp", "fatal"),
]


@pytest.mark.parametrize(("text", "name", "mx"), [g[1:] for g in GLOBS],
                         ids=[g[0] for g in GLOBS])
def test_glob_names_answer(tmp_path: Path, text: str, name: str, mx: Any) -> None:
    """(d) Which entry a name finds through glob names and '*'."""
    pc = load(tmp_path, text)
    if mx is None:
        with pytest.raises(NoSuchPrinter):
            pc.lookup(name)
    elif mx == "fatal":  # Find_pc_info: tc targets are looked up with wildcard off
        with pytest.raises(Exception, match="tc entry 'tx' not found"):
            pc.lookup(name)
    else:
        assert pc.lookup(name).get("mx") == mx


PERCENT = [  # (id, printcap text, name asked, side, "%P %Q" LPRng gives)
    # LPRng Reference Manual 12.5 "Using the Wildcard Printcap Entry": "*" as the printcap
    # name sets %P and %Q to the name searched for; "*" as an alias sets %P to the entry's
    # main name. getprinter.c Fix_Rm_Rp_info: Printer_DYN = the primary found, replaced by the
    # name asked for only when that primary is exactly "*".
    ("star-primary", "*:cm=%P %Q\n", "pr2", "server", "pr2 pr2"),
    ("star-alias", "printer|*:cm=%P %Q\n", "pr2", "server", "printer pr2"),
    ("glob-alias", "generic|lp*:cm=%P %Q\n", "lpx", "server", "generic lpx"),
    ("glob-alias-any-case", "generic|lp*:cm=%P %Q\n", "LPX", "server", "generic lpx"),
    # lpd lowercases the name asked for (getqueue.c Setup_printer); lpr does not.
    ("star-server-lowercase", "*:cm=%P %Q\n", "Pr2", "server", "pr2 pr2"),
    ("star-client-as-typed", "*:cm=%P %Q\n", "Pr2", "client", "Pr2 Pr2"),
    ("exact-q-server-lowercase", "lp|Alias:cm=%P %Q\n", "ALIAS", "server", "lp alias"),
    # A pattern as the primary name: LPRng's %P is the pattern itself ("lp*": one spool
    # directory for all the names, which its checkpc refuses as a server queue). lpfilter's
    # choice (man page): the pattern answers like "*", %P is the name asked for.
    ("glob-primary-choice", "lp*:cm=%P %Q\n", "lpx", "server", "lpx lpx"),
    ("glob-primary-star-alias-choice", "lp*|*:cm=%P %Q\n", "zz", "server", "zz zz"),
]


@pytest.mark.parametrize(("text", "name", "side", "expected"), [p[1:] for p in PERCENT],
                         ids=[p[0] for p in PERCENT])
def test_wildcard_percent_p(tmp_path: Path, text: str, name: str, side: str,
                            expected: str) -> None:
    """(d) %P and %Q (and the queue's name) of an entry found through a wildcard."""
    entry = load(tmp_path, text, side=side).lookup(name)
    assert entry.get("cm") == expected
    assert entry.name == expected.split()[0]


def test_glob_entry_keeps_its_own_names(tmp_path: Path) -> None:
    """(d) The names of an entry found through a pattern are the entry's own
    (Find_pc_info reads them from the records; the name asked for is only %Q)."""
    entry = load(tmp_path, "generic|lp*:mx#1\n").lookup("lpx")
    assert entry.names == ["generic", "lp*"]


def test_checkpc_warns_about_pattern_primary(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """(d) checkc says where lpfilter differs: LPRng's checkpc (checkpc.c Scan_printer) refuses
    a primary name with '*' as a server queue; lpfilter serves each matching name."""
    load(tmp_path, "a|b:lp=/dev/null:sd=/nonexistent\nlp*:rm=server\ngeneric|q*:rm=server\n")
    status, out, _ = run(tmp_path, capsys, "checkpc")
    assert status == 1
    found = [line for line in out.splitlines() if re.search(r"'\S*\*' is a pattern", line)]
    assert found == [line for line in found if line.startswith(f"{tmp_path / 'printcap'}:2: ")]
    assert len(found) == 1, out


def test_the_name_all_means_every_queue_unless_a_queue_has_it(tmp_path: Path) -> None:
    """``lpq -Pall``, ``lprm -Pall``: LPRng's lpd takes the name ``all`` as every queue
    (lpd_status.c, lpd_remove.c), in any case; a printcap whose printer list has a queue
    called ``all`` keeps it a queue."""
    pc = load(tmp_path, "all:all=a,b\na:lp=/dev/null\nb:lp=/dev/null\n*:rm=server\n")
    assert [pc.means_every(n) for n in ("all", "ALL", "a", None)] == [True, True, False, False]
    own = load(tmp_path, "all:lp=/dev/null\n")  # an all entry with no list: a queue
    assert own.queue_names() == ["all"] and not own.means_every("all")
