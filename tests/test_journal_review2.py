"""Findings of the review of issue 16's phase 2 (report-only, REVIEW2), each reproduced
as it was found: a MARK whose fdatasync failed must cover nothing (else bytes leave with no
durable "maybe sent"); an unreadable boot id must make each process another boot (else a
power cut flags nothing); forged START pids and times no clock shows are no internal error
(status, lpc, cancel, watch)."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from spoolkit import Kit, forge_record, kit  # noqa: F401 - the fixture
from test_journal_marks import Moment, Spool, _journal_fd, _restart, spool  # noqa: F401

from lpfilter.job import JobState
from lpfilter.spool import journalformat
from lpfilter.spool.jobindex import replay
from lpfilter.spool.marks import settle
from lpfilter.spool.journalformat import Kind
from lpfilter.spool.store import SpoolStore


def test_a_mark_whose_sync_failed_covers_nothing(
        spool: Spool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(journalformat, "boot_id", lambda: "the-boot-before-the-cut")
    datas = spool.spool(2)
    durable = [spool.journal().stat().st_size]  # print synced it all
    failed = threading.Event()
    moments: list[Moment] = []
    real_sync, real_first = os.fdatasync, SpoolStore.first_byte

    def syncing(fd: int) -> None:
        if _journal_fd(fd) and not failed.is_set():
            failed.set()
            raise OSError(errno.ENOSPC, "No space left on device")
        size = os.fstat(fd).st_size if _journal_fd(fd) else None
        real_sync(fd)
        if size is not None:
            durable[0] = size

    def first_byte(store: SpoolStore, job: object) -> None:
        real_first(store, job)  # type: ignore[arg-type]
        moments.append(Moment(spool.journal().read_bytes(), durable[0], spool.data_files(),
                              {job.id}))  # type: ignore[attr-defined]

    monkeypatch.setattr(os, "fdatasync", syncing)
    monkeypatch.setattr(SpoolStore, "first_byte", first_byte)
    worker = spool.worker()

    def poke() -> None:  # the disk has room again; the daemon's next pass (its rescan)
        failed.wait(20)
        worker.wake()

    threading.Thread(target=poke, daemon=True).start()
    worker.serve(burst=False, until=lambda: all(spool.printed(j) for j in datas))
    monkeypatch.undo()
    assert failed.is_set()
    assert {j: spool.printed(j) for j in datas} == datas
    assert all(len(m.journal) > m.durable for m in moments)  # a FIRST after a durable MARK
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setattr(journalformat, "boot_id", lambda: "the-boot-after-the-cut")
    (tmp_path / "after").mkdir()
    moment = moments[0]  # the power cut just after the first job's first byte left
    jobs = _restart(tmp_path / "after", moment, moment.durable, datas)
    first = sorted(moment.started)[0]
    assert jobs[first][0].possible_duplicate, (
        f"job {first}: its bytes left, the power cut brought it back unflagged")


HIDDEN = """from lpfilter.spool import journalformat
def hidden(*args, **kwargs):
    raise PermissionError(13, "Permission denied")
journalformat.open = hidden
print(journalformat.boot_id())
"""


def _no_boot_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc/sys hidden (systemd's ProcSubset=pid, a chroot): the boot id cannot be read."""
    real = open

    def hiding(path: object, *args: object, **kwargs: object) -> object:
        if path == "/proc/sys/kernel/random/boot_id":
            raise PermissionError(13, "Permission denied", path)
        return real(path, *args, **kwargs)  # type: ignore[call-overload]
    monkeypatch.setattr(journalformat, "open", hiding, raising=False)


def test_an_unreadable_boot_id_makes_each_process_another_boot(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_boot_id(monkeypatch)
    mine = journalformat.boot_id()
    assert mine and mine == journalformat.boot_id()  # one process: one "boot"
    other = subprocess.run([sys.executable, "-c", HIDDEN], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert other.startswith("unknown-") and other != mine  # another process: another boot
    spool.spool(1)
    store = SpoolStore(str(spool.sd), "q")
    store.mark(store.jobs())  # the MARK: durable (its fdatasync)
    durable = spool.journal().stat().st_size
    job = store.read("000001")
    assert job is not None
    job.attempts += 1
    job.move_to(JobState.ACTIVE)
    job.started = 1.0
    store.start(job, os.getpid(), 0.0)
    job.send_started = True
    store.first_byte(job)  # covered: an unsynced FIRST; the bytes leave now
    store.close()
    # A power cut: the MARK is durable, START and FIRST are lost; the next boot's process
    # cannot read the boot id either.
    index = replay(spool.journal().read_bytes()[:durable], "q")
    changed = {j.id: j for j in settle(index, "unknown-another-process")}
    assert changed["000001"].possible_duplicate, "its bytes left; not flagged after the cut"


@pytest.mark.parametrize("pid", [-1, 2**70])
def test_a_forged_start_pid(kit: Kit, pid: int) -> None:
    sd = kit.queue("lp", "/dev/null", accounting=False, hold_new=True)
    assert kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap)).returncode == 0
    forge_record(sd, Kind.START, json.dumps({"id": "000001", "attempts": 1, "started": 1.0,
                                             "pid": pid, "since": 5.0}).encode())
    codes = {}
    for argv in (["status", "-l", "-P", "lp"], ["lpc", "status", "lp"],
                 ["cancel", "-P", "lp", "000001"], ["watch", "--once", "-P", "lp"]):
        done = kit.run(*argv)
        codes[" ".join(argv)] = done.returncode
    assert 70 not in codes.values(), codes


def test_a_forged_intents_time(kit: Kit) -> None:
    sd = kit.queue("lp", "/dev/null", accounting=False, hold_new=True)
    assert kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap)).returncode == 0
    (sd / ".lpfilter" / "jobs" / "000005.data").write_bytes(b"x\n")  # the owner's file
    forge_record(sd, Kind.RESERVE, json.dumps({"last_id": "5"}).encode())
    forge_record(sd, Kind.INTENT, json.dumps({
        "id": "000005", "name": "a\x1b[2Jname", "uid": 0, "size": 2, "at": float(2**62),
        "pid": 999999, "start": 1.0, "held": True, "limit": 0}).encode())
    once = kit.run("watch", "--once", "-P", "lp")
    assert once.returncode == 0, once.stderr
    for argv in (["status", "-P", "lp"], ["status", "-l", "-P", "lp"], ["lpq", "-P", "lp"],
                 ["status", "--json", "-P", "lp"], ["lpstat", "-W", "all", "-l", "-o", "lp"]):
        done = kit.run(*argv)
        assert done.returncode != 70 and "Traceback" not in done.stderr, argv
    # The print server's answer to LPRng's lpq writes the same rows (server/status.py):
    # the time no clock can show is its number, not an error ending the connection.
    from lpfilter import printcap
    from lpfilter.server.status import long_status
    entry = printcap.load([str(kit.printcap)]).lookup("lp")
    store = SpoolStore(str(sd), "lp")
    try:
        answer = long_status(entry, store, (), served_by="no server active", message="")
    finally:
        store.close()
    assert str(float(2**62)) in answer and "\x1b" not in answer, answer


def test_a_forged_job_records_time_is_shown_as_its_number(kit: Kit) -> None:
    sd = kit.queue("lp", "/dev/null", accounting=False, hold_new=True)
    assert kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap)).returncode == 0
    job = kit.tickets("lp")["000001"]
    job.update(id="000002", submitted=float(2**62))
    forge_record(sd, Kind.JOB, json.dumps(job).encode())
    done = kit.run("status", "-l", "-P", "lp")
    assert done.returncode == 0, done.stderr
    assert str(float(2**62)) in done.stdout
