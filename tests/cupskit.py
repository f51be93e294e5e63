"""CUPS's own `lpd` backend, as a client of lpfilter's print server in the tests.

Installing Debian's cups would remove lprng (cups-bsd conflicts with it), so .ci/run only
unpacks the package (`apt-get download cups`, `dpkg-deb -x`) into .ci/cups; the backend
runs from there (it needs libcups2, which .ci/run installs). Without it a test skips with
the reason, except under CI, where it fails.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKEND = Path(os.environ.get("LPFILTER_CUPS_LPD",
                              ROOT / ".ci/cups/usr/lib/cups/backend-available/lpd"))


def cups_lpd() -> Path:
    """The backend's path; skip (fail under CI) when .ci/run has not unpacked it."""
    if not os.access(BACKEND, os.X_OK):
        message = (f"CUPS's lpd backend is not at {BACKEND}: run .ci/run (it unpacks it"
                   " from Debian's cups package) or set LPFILTER_CUPS_LPD")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return BACKEND


def send(uri: str, path: Path, *, user: str = "alice", title: str = "cups title",
         job_id: int = 7, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run the backend as CUPS runs it: ``lpd JOB USER TITLE COPIES OPTIONS FILE`` with
    ``DEVICE_URI``; its own configuration directories point at an empty place."""
    empty = path.parent / "cups-etc"
    empty.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DEVICE_URI": uri,
           "CUPS_SERVERROOT": str(empty), "CUPS_DATADIR": str(empty), "LANG": "C"}
    return subprocess.run([str(cups_lpd()), str(job_id), user, title, "1", "", str(path)],
                          env=env, capture_output=True, timeout=timeout, check=False)
