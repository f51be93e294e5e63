"""Bad values of the accounting keys and of ``shell`` (review of issue 15, M4): checkpc
says each on one line (file:line, the option, what to write), and an ``af=host%port``
whose port is out of range is refused, never taken for a file of that name."""
from __future__ import annotations

import logging

import pytest
from spoolkit import Kit, kit  # noqa: F401 - fixture
from test_filter_command import entry

from lpfilter.filters.accounting import Target, target

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
