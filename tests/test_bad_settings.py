"""A printcap value the backend cannot use (a number too large for a float) fails that job,
as a failed send does: never the queue, the worker or the command (review of issue 12)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from spoolkit import Kit, kit  # noqa: F401 - fixture


def test_a_setting_that_cannot_be_read_fails_the_job_not_the_queue(kit: Kit) -> None:
    # A stall_timeout of 400 digits is a number to LPRng's strtol and to checkpc, but not a
    # float: reading it fails that job (exit 6, as any failed send), the queue goes on, and
    # no ticket is left active.
    kit.queue("big", kit.recorder(), stall_timeout="9" * 400)
    doc = kit.root / "doc"
    doc.write_bytes(b"page\n")
    printed = kit.run("print", "-P", "big", str(doc))
    assert printed.returncode == 6, printed.stderr
    assert "internal error: OverflowError" in printed.stderr
    second = kit.run("print", "-P", "big", "--no-wait", str(doc))
    once = kit.run("watch", "--once", "-P", "big")
    assert (second.returncode, once.returncode) == (0, 6), once.stderr
    assert "stopped on an internal error" not in once.stderr
    assert sorted(kit.states("big").values()) == ["failed", "failed"]


def test_filter_with_a_setting_that_cannot_be_read_aborts_the_job(kit: Kit,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "device"
    out.touch()
    kit.queue("big", str(out), stall_timeout="9" * 400)
    done = subprocess.run(kit.argv("filter", "-Pbig"), input="page\n", text=True,
                          capture_output=True, env=kit.env, timeout=60, check=False)
    assert done.returncode == 2, done.stderr  # JABORT: lpd keeps the job
    # The status line lpd shows, as for any failed send (not the command line's crash line).
    assert [line for line in done.stderr.splitlines() if "OverflowError" in line] == [
        "internal error: OverflowError: int too large to convert to float; the job is kept"]
    assert out.read_bytes() == b""
