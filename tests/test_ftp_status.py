"""status shows an FTP queue's session slots: how many of ftp_sessions are held, and by
which live processes (a holder that died holds nothing: the kernel freed its flock)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lpfilter.backends.ftpsession import slot_paths
from lpfilter.cli import main
from lpfilter.locks import ProcessLock


def _status(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700, exist_ok=True)
    printcap = tmp_path / "printcap"
    printcap.write_text(f"f1:sd={spool}:lp=ftp\\://127.0.0.1\\:2121/PORT1:ftp_sessions#3\n")
    env = {"HOME": str(tmp_path), "LPFILTER_LOCK_DIR": str(tmp_path / "locks")}
    assert main(["--printcap", str(printcap), "status", "-P", "f1", *extra], env) == 0
    return capsys.readouterr().out


def test_status_counts_the_held_slots_and_names_their_pids(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    paths = slot_paths(str(locks), "127.0.0.1", 2121, 3)
    held = [ProcessLock(path, "FTP session for a test") for path in paths[:2]]
    try:
        for lock in held:
            assert lock.acquire()
        out = _status(tmp_path, capsys)
        me = os.getpid()
        assert f"FTP sessions to the server: 2 of 3 in use (pids {me}, {me})" in out
        data = json.loads(_status(tmp_path, capsys, "--json"))
        assert data["ftp_sessions"]["limit"] == 3
        assert [h["pid"] for h in data["ftp_sessions"]["in_use"]] == [me, me]
    finally:
        for lock in held:
            lock.release()
    assert "FTP sessions to the server: 0 of 3 in use\n" in _status(tmp_path, capsys)


def test_a_dead_holders_slot_is_free(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A process that held a slot and was killed: its record stays in the file, but the
    flock went with it, so status counts the slot as free."""
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    path = slot_paths(str(locks), "127.0.0.1", 2121, 3)[0]
    code = ("import sys, time; from lpfilter.locks import ProcessLock;"
            f" lock = ProcessLock({path!r}, 'doomed'); lock.acquire();"
            " print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"held\n"
        assert "1 of 3 in use" in _status(tmp_path, capsys)
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert Path(path).read_text()  # the record is still there...
    assert "0 of 3 in use" in _status(tmp_path, capsys)  # ...but nobody holds the slot
