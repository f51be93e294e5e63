"""A real port-9100 print daemon (Debian's p910nd) as the printer: the bytes that reach its
output file are exactly the job's. CI installs p910nd; without it this test fails."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lpfilter.cli import main

P910ND = "/usr/sbin/p910nd"
#: p910nd listens on 9100 + N; N=2 keeps clear of a virtual printer on 9100.
PORT = 9102


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture()
def p910nd(tmp_path: Path) -> Iterator[Path]:
    """p910nd in the foreground on 127.0.0.1:9102, writing to a file."""
    if not os.path.exists(P910ND):
        pytest.fail("p910nd is not installed: apt-get install p910nd (.ci/run does it)")
    os.makedirs("/var/lock/p910nd", exist_ok=True)  # its lock directory; we run as root
    output = tmp_path / "printer-output"
    output.touch()
    daemon = subprocess.Popen([P910ND, "-f", str(output), "-i", "127.0.0.1", "-d", "2"],
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not _listening(PORT):
            assert daemon.poll() is None, daemon.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "p910nd did not start listening"
            time.sleep(0.05)
        yield output
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        daemon.stderr.close()  # type: ignore[union-attr]


def test_prints_through_p910nd(p910nd: Path, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every byte value, with leader and trailer, reaches p910nd's output unchanged."""
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    printcap = tmp_path / "printcap"
    printcap.write_text(f"jd:lp=127.0.0.1%{PORT}:sd={spool}:ld=\\033E:tr=\\033E"
                        ":connect_timeout#5:send_try#2:connect_interval#1\n")
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(printcap))
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    data = bytes(range(256)) * 64 + b"\r\n\x0c"
    job = tmp_path / "job.bin"
    job.write_bytes(data)
    assert main(["print", "-P", "jd", str(job)]) == 0
    expected = b"\x1bE" + data + b"\x1bE"
    deadline = time.monotonic() + 10
    while p910nd.read_bytes() != expected and time.monotonic() < deadline:
        time.sleep(0.05)  # p910nd may still be writing when our connection has closed
    assert p910nd.read_bytes() == expected
