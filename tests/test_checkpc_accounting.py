"""Bad values of the accounting keys and of ``shell`` (review of issue 15, M4): checkpc
says each on one line (file:line, the option, what to write), and an ``af=host%port``
whose port is out of range is refused, never taken for a file of that name."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from spoolkit import Kit, kit  # noqa: F401 - fixture
from test_filter_command import entry
from test_operations import _checkpc

from lpfilter.filters.accounting import Target, target
from lpfilter.status import ExitStatus

BAD = {"as=|relas": "as=|relas: the accounting program 'relas' is not an absolute path",
       "ae=| -$ ROOT bin/acct -x": "ae=| -$ ROOT bin/acct -x: the accounting program"
                                   " 'bin/acct' is not an absolute path",
       "af=|acct.sh": "af=|acct.sh: the accounting program 'acct.sh' is not an absolute path",
       "af=host%99999": "af=host%99999: port 99999 is out of range 1-65535, so no accounting"
                        " line can be sent",
       "accounting_format=bogus": "accounting_format=bogus is not a format lpfilter knows,"
                                  " so it writes LPRng's lines (lprng)",
       "shell=sh": "shell=sh: the shell must be an absolute path"}
FIXES = {"as=|relas": "write its full path", "ae=| -$ ROOT bin/acct -x": "write its full path",
         "af=|acct.sh": "write its full path",
         "af=host%99999": "write host%PORT with a port 1-65535, or a file name without '%'",
         "accounting_format=bogus": "write one of lprng, keyvalue",
         "shell=sh": "write its full path, e.g. /bin/sh"}


def test_checkpc_says_each_bad_accounting_value_and_shell_on_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _checkpc(tmp_path, capsys, list(BAD))
    assert (status, err) == (ExitStatus.FAILURE, "lpfilter: checkpc: 6 problems found\n")
    assert len(out) == len(BAD), out
    printcap = tmp_path / "printcap"
    for line_no, (option, line) in enumerate(zip(BAD, out), 2):
        assert line.startswith(f"{printcap}:{line_no}: {BAD[option]}"), line
        assert line.endswith(FIXES[option]), line
    installed = subprocess.run([sys.executable, "-m", "lpfilter", "--printcap", str(printcap),
                                "checkpc"], capture_output=True, text=True, timeout=60)
    assert (installed.returncode, installed.stdout.splitlines()) == (ExitStatus.FAILURE, out)


def test_checkpc_takes_good_accounting_values_and_shells(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = ["as=|/bin/true start", "ae=/bin/true", "af=|( cat >> acct.log )",
            "accounting_format=KeyValue", "shell=/bin/bash"]
    assert _checkpc(tmp_path, capsys, good) == (ExitStatus.OK, [], "")
    for af in ("af=acct", "af=loghost%9999", "af=/var/log/50%off",
               "af=|-$ /bin/true"):
        assert _checkpc(tmp_path, capsys, [af]) == (ExitStatus.OK, [], ""), af


def test_target_refuses_an_out_of_range_port(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lpfilter.filters.accounting"):
        for af in ("loghost%99999", "loghost%0", "loghost%", "loghost%nosuchservice"):
            assert target(entry(f":af={af}")) is None, af
    assert len(caplog.records) == 4
    assert caplog.records[0].getMessage().startswith(
        "queue q1: PRINTCAP_ENTRY:1: af=loghost%99999: port 99999 is out of range 1-65535")
    assert target(entry(":af=loghost%65535")) == Target("host", "loghost", 65535)
    assert target(entry(":af=loghost%0x10")) == Target("host", "loghost", 16)  # strtol, as LPRng


def test_a_queue_with_a_bad_af_port_prints_and_writes_no_file(kit: Kit) -> None:  # noqa: F811
    device = kit.root / "device"
    device.touch()
    sd = kit.queue("q", str(device), accounting=False, create_files=True,
                   af="localhost%99999")
    doc = kit.root / "doc"
    doc.write_text("data\n")
    done = kit.run("print", "-P", "q", str(doc))
    assert done.returncode == 0, done.stderr
    assert device.read_text() == "data\n" and kit.states("q") == {"000001": "done"}
    assert not (sd / "localhost%99999").exists()
    assert done.stderr.count("af=localhost%99999: port 99999 is out of range") == 1, done.stderr
