"""A printcap number of seconds too large for a float (400 digits: a number to LPRng's
strtol and to checkpc) means no limit, as LPRng's saturating strtol reads it: the job
prints. Before, reading it raised OverflowError, an internal error (review of issue 12)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from spoolkit import Kit, kit  # noqa: F401 - fixture

from lpfilter.backends.settings import MAX_SECONDS, _seconds

HUGE = "9" * 400


def test_seconds_saturate() -> None:
    assert _seconds(int(HUGE)) == MAX_SECONDS and _seconds(30) == 30.0


def test_a_huge_stall_timeout_is_no_limit(kit: Kit) -> None:
    kit.queue("big", kit.recorder(), stall_timeout=HUGE)
    doc = kit.root / "doc"
    doc.write_bytes(b"page\n")
    printed = kit.run("print", "-P", "big", str(doc))
    assert printed.returncode == 0, printed.stderr
    assert "internal error" not in printed.stderr
    assert list(kit.states("big").values()) == ["done"]


def test_filter_with_a_huge_stall_timeout_prints(kit: Kit, tmp_path: Path) -> None:
    out = tmp_path / "device"
    out.touch()
    kit.queue("big", str(out), stall_timeout=HUGE)
    done = subprocess.run(kit.argv("filter", "-Pbig"), input="page\n", text=True,
                          capture_output=True, env=kit.env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == b"page\n"
