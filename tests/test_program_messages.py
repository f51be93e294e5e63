"""A program a printcap names that cannot be run fails its job with a message that names
the queue, as lpfilter's other messages do ("queue Q: ..."): a filter that cannot be
started and an ``lp=|`` that names no program (issue 16's mends)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from spoolkit import Kit, kit  # noqa: F401 - kit: a fixture

from lpfilter import printcap
from lpfilter.backends.pipe import PipeBackend
from lpfilter.backends.request import SendRequest
from lpfilter.backends.settings import PipeSettings
from lpfilter.errors import JobRefused
from lpfilter.job import Job


def test_a_filter_that_cannot_be_run_names_its_queue(kit: Kit) -> None:  # noqa: F811
    out = kit.root / "printed"
    out.touch()
    kit.queue("filtered", f"{out}", **{"if": str(kit.root / "no-such-filter")})
    doc = kit.root / "doc.txt"
    doc.write_text("page\n")
    done = kit.run("print", "--no-wait", "-P", "filtered", str(doc))
    assert done.returncode == 0, done.stderr
    done = kit.run("watch", "--once", "-P", "filtered")
    tickets = list(kit.tickets("filtered").values())
    assert [t["state"] for t in tickets] == ["failed"], (tickets, done.stderr)
    said = str(tickets[0]["last_error"])
    assert said.startswith("queue filtered: if filter "), said
    assert "no-such-filter: cannot be run" in said, said


def test_an_lp_pipe_naming_no_program_names_its_queue(tmp_path: Path) -> None:
    """A caller that builds no command line (``SendRequest.command`` None, not the
    spool's worker, whose ``build_command`` refuses such a program first)."""
    path = tmp_path / "printcap"
    path.write_text(f"empty:sd={tmp_path}:lp=|ROOT -$\n")
    entry = printcap.load([str(path)]).lookup("empty")
    job = Job("000007", "empty", "alice", "doc", 2, time.time())
    request = SendRequest(job, "/dev/null", entry.destination(),
                          PipeSettings.from_entry(entry), reporter=None)  # type: ignore[arg-type]
    with pytest.raises(JobRefused) as caught:
        PipeBackend().send(request)
    assert str(caught.value) == "queue empty: lp=|ROOT -$: names no program to run"
    assert caught.value.queue == "empty"
