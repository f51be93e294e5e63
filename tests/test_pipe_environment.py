"""An ``lp=|`` program gets LPRng's filter environment (lprng-filters.md §4) plus the job's
``LPFILTER_JOB*``, never the watcher's own (which a user's spool's program, run as that
user, could read through /proc/PID/environ)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from filterrunkit import lp_of, print_bytes, printer, watch_once  # noqa: F401 - a fixture
from spoolkit import Kit, kit  # noqa: F401 - a fixture

from lpfilter import printcap
from lpfilter.backends.pipe import clean_environment
from lpfilter.backends.request import SendRequest
from lpfilter.backends.settings import PipeSettings
from lpfilter.emulator.jetdirect import VirtualPrinter
from lpfilter.job import Job


def _names(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.split("\0") if "=" in line)


def test_an_lp_pipe_gets_the_filter_environment_not_the_watchers(kit: Kit) -> None:  # noqa: F811
    kit.env["WATCHER_SECRET"] = "s3cret"
    dump = kit.root / "env.dump"
    program = kit.program("dump.sh", f"#!/bin/sh\ncat /proc/$$/environ > {dump}\n"
                                     "cat > /dev/null\n")
    kit.queue("q", f"|{program}")
    job = print_bytes(kit, "q", b"x\n")
    watch_once(kit, "q")
    env = _names(dump.read_text())
    assert "WATCHER_SECRET" not in env
    assert env["LPFILTER_JOB"] == job and env["PRINTER"] == "q"
    assert env["SPOOL_DIR"] == str(kit.sd("q")) and env["DATAFILES"].strip()
    assert env["PATH"] == "/bin:/usr/bin:/usr/local/bin" and "HF" in env
    assert env["PRINTCAP_ENTRY"].startswith("q")


def test_a_pipe_program_without_a_built_environment_gets_a_clean_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers that do not go through the spool's worker (``SendRequest.environment``
    None)."""
    monkeypatch.setenv("WATCHER_SECRET", "s3cret")
    path = tmp_path / "printcap"
    path.write_text(f"q:sd={tmp_path}:lp=|/bin/cat:filter_path=/usr/bin\n")
    entry = printcap.load([str(path)]).lookup("q")
    job = Job("000007", "q", "alice", "doc", 2, time.time())
    request = SendRequest(job, "/dev/null", entry.destination(),
                          PipeSettings.from_entry(entry), reporter=None)  # type: ignore[arg-type]
    env = clean_environment(request)
    assert "WATCHER_SECRET" not in env and os.environ["WATCHER_SECRET"] == "s3cret"
    assert env["PATH"] == "/usr/bin" and env["LPFILTER_JOB"] == "000007"
    assert env["LPFILTER_JOB_USER"] == "alice" and env["PRINTER"] == "q"


def test_lpfilter_filter_as_the_spools_lp_pipe_writes_no_second_accounting_line(
        kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    """Its option list carries ``-a<af>`` as LPRng's does; the spool accounts the job, and
    ``lpfilter filter`` (LPFILTER_JOB set) adds no line of its own."""
    lpfilter = Path(sys.executable).parent / "lpfilter"
    kit.queue("q", f"|{lpfilter} filter {lp_of(printer)}", af="acct")
    job = print_bytes(kit, "q", b"hello\n")
    watch_once(kit, "q")
    assert kit.states("q")[job] == "done"
    lines = (kit.sd("q") / "acct").read_text().splitlines()
    assert len(lines) == 1 and f"job={job}" in lines[0], lines
