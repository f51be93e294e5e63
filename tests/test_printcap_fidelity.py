"""Issue 10 §6: printcap corners real sites hit, read as LPRng 3.8.B reads them.

Each fact cites where it comes from: LPRng's source (repository Distrotech/lprng,
src/common/...; the parser is linelist.c, as in shared/reference/lprng-printcap.md) or the
LPRng Reference Manual. Where LPRng's behaviour is a bug rather than a rule, the test says
what lpfilter chose instead (documented in man/lpfilter-printcap.5, "DIFFERENCES").
Every printcap is a real file; commands run through ``lpfilter.cli.main``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lpfilter import cli, printcap
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
