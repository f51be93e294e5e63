"""A full or read-only spool, and a spool directory removed under the daemon: real small
file systems (a 512 KiB tmpfs, a read-only bind mount) and real lpfilter processes.

A full or read-only spool is an expected condition: one line naming the spool directory
and what to do, exit status 10 (SPOOL_FULL) in every command, nothing half-made, and the
jobs wait (the daemon says so once and serves the queue again when it can).
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ftpkit import FtpQueue, MakeServer, ftp_server  # noqa: F401 - fixture
from spoolkit import (Kit, forge_record, job_ids, kit, wait_served,  # noqa: F401 - fixture
                      wait_until)

from lpfilter.spool.journal import Kind

from lpfilter.status import ExitStatus

#: A backend program that takes the job, says so in OUT/started, and exits once OUT/go
#: exists (at most 30 s): the test changes the spool while the job is being sent.
#: Its pid goes to PIDS, so the kit ends it.
GATED = r'''#!{python} -IS
import os, sys, time
open(os.path.join({pids!r}, str(os.getpid())), "w").close()
data = sys.stdin.buffer.read()
open(os.path.join({out!r}, "started"), "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(os.path.join({out!r}, "go")) and time.monotonic() < deadline:
    time.sleep(0.05)
with open(os.path.join({out!r}, os.environ["LPFILTER_JOB"] + ".out"), "ab") as handle:
    handle.write(data)
'''


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=20)


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True, timeout=20)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs under tmp_path (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the tests as root)")
    where = tmp_path / "fs"
    where.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(where))
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield where
    finally:
        _umount(where)


def _to_a_page(journal: Path) -> None:
    """A journal's last page filled with a record that changes nothing (a number already
    given, padded): on a full file system its next record then needs a new page, as a
    ticket needed a new file (a small append into a page's slack needs no room)."""
    need = -journal.stat().st_size % 4096  # a record is 17 bytes and its payload
    if need:
        need += 4096 if need < 17 + 16 else 0
        forge_record(journal.parent.parent, Kind.RESERVE, b'{"last_id": "0"}'.ljust(need - 17))
        assert journal.stat().st_size % 4096 == 0


@contextlib.contextmanager
def filled(where: Path) -> Iterator[None]:
    """Fill the file system of ``where`` to ENOSPC (the journals in it to a page: see
    _to_a_page); free it again afterwards. The running filters' records are linked
    elsewhere meanwhile, so that their removal frees no block: one block gives a journal
    room for several records, where a ticket needed a new file for each."""
    for journal in where.rglob(".lpfilter/journal"):
        _to_a_page(journal)
    kept = where / "kept"
    kept.mkdir()
    for number, record in enumerate(where.rglob(".lpfilter/filters/*")):
        os.link(record, kept / str(number))
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for _ in range(100_000):  # 400 MB at most: the tmpfs is 512 KiB
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        else:
            raise AssertionError("the file system never filled up")
    finally:
        os.close(fd)
    try:
        yield
    finally:
        filler.unlink()
        shutil.rmtree(kept)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` read-only (a read-only bind mount on itself) until the block ends."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield
    finally:
        _umount(path)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def state_files(sd: Path) -> list[str]:
    return sorted(str(p.relative_to(sd)) for p in (sd / ".lpfilter").rglob("*")
                  if p.parent.name in ("jobs", "tmp"))


def test_print_on_a_full_spool_says_so_and_leaves_nothing(kit: Kit, small_fs: Path) -> None:
    """It exited 70 ("internal error ... No space left on device, please report it")."""
    sd = kit.queue("lp", kit.recorder(), parent=small_fs)
    doc = kit.root / "doc.txt"
    doc.write_bytes(b"page\n" * 20_000)
    first = kit.run("print", "--no-wait", "-P", "lp", str(doc))
    assert first.returncode == 0, first.stderr
    before = state_files(sd)
    with filled(small_fs):
        for args in (["--no-wait"], [], ["--wait"]):
            done = kit.run("print", *args, "-P", "lp", str(doc))
            assert done.returncode == ExitStatus.SPOOL_FULL, done.stderr
            assert len(lines(done.stderr)) == 1, done.stderr
            assert f"the spool directory {sd} cannot be written" in done.stderr
            assert "full file system; free space there" in done.stderr
            assert done.stdout == ""  # no job id announced
            assert state_files(sd) == before  # nothing half-made, tmp/ empty
        status = kit.run("status", "-P", "lp")
        assert status.returncode == 0, status.stderr
    again = kit.run("print", "--no-wait", "-P", "lp", str(doc))
    assert again.returncode == 0, again.stderr


def test_watch_once_on_a_full_spool_keeps_the_job(kit: Kit, small_fs: Path) -> None:
    """It exited 3 (the printcap error status) with a bare errno text."""
    sd = kit.queue("lp", kit.recorder(), parent=small_fs)
    done = kit.run("print", "--no-wait", "-P", "lp", "-J", "kept", str(kit.printcap))
    (job,) = job_ids(done.stdout, "lp")
    with filled(small_fs):
        once = kit.run("watch", "--once", "-P", "lp")
        assert once.returncode == ExitStatus.SPOOL_FULL, once.stderr
        assert f"the spool directory {sd} cannot be written" in once.stderr, once.stderr
        assert "Traceback" not in once.stderr and "internal error" not in once.stderr
        ticket = kit.ticket("lp", job)
        assert (ticket["state"], ticket["attempts"], ticket["send_started"]) == (
            "queued", 0, False)
        assert kit.output("lp", job) is None  # not sent
    once = kit.run("watch", "--once", "-P", "lp")
    assert once.returncode == 0, once.stderr
    assert kit.states("lp") == {job: "done"}
    assert kit.output("lp", job) == kit.printcap.read_bytes()


def test_read_only_spool_is_the_same_status_in_every_command(kit: Kit, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (CI runs the tests as root)")
    sd = kit.queue("lp", kit.recorder())
    done = kit.run("print", "--no-wait", "--hold", "-P", "lp", str(kit.printcap))
    (job,) = job_ids(done.stdout, "lp")
    before = state_files(sd)
    with read_only(sd):
        for args in (["print", "--no-wait", "-P", "lp", str(kit.printcap)],
                     ["print", "-P", "lp", str(kit.printcap)],
                     ["watch", "--once", "-P", "lp"], ["release", job], ["cancel", job],
                     ["hold", job]):
            result = kit.run(*args)
            assert result.returncode == ExitStatus.SPOOL_FULL, (args, result.stderr)
            assert f"the spool directory {sd} cannot be written" in result.stderr, args
            assert "read-only file system; remount it read-write" in result.stderr, args
            assert "Traceback" not in result.stderr
        status = kit.run("status", "-P", "lp")
        assert status.returncode == 0, status.stderr
        assert state_files(sd) == before
    assert kit.states("lp") == {job: "held"}


def test_records_on_a_full_disk_do_not_fail_a_print(kit: Kit, small_fs: Path) -> None:
    """The log, status and accounting files on a full disk: each said once, jobs print."""
    (small_fs / "acct").touch()
    kit.queue("lp", kit.recorder(), lf=str(small_fs / "log"), ps=str(small_fs / "status"),
              af=str(small_fs / "acct"), accounting=False, accounting_format="keyvalue")
    docs = [kit.root / f"doc{n}" for n in range(3)]
    for doc in docs:
        doc.write_text(f"{doc.name}\n")
    with filled(small_fs):
        done = kit.run("print", "-P", "lp", *map(str, docs))
    assert done.returncode == 0, done.stderr
    assert set(kit.states("lp").values()) == {"done"}
    for name in ("log", "status", "acct"):
        said = [line for line in lines(done.stderr) if f"cannot write {small_fs / name}:" in line]
        assert len(said) == 1, done.stderr


def remove_busy_tree(top: Path) -> None:
    """``rm -rf`` of a directory the daemon may still be making a file in (its first pass
    makes ``.lpfilter/journal`` just after it takes the queue's lock): tried again, as
    an administrator would, at most 50 times."""
    for _ in range(49):
        try:
            shutil.rmtree(top)
        except OSError as error:
            if error.errno != errno.ENOTEMPTY:
                raise
            time.sleep(0.05)
        else:
            return
    shutil.rmtree(top)


def test_daemon_waits_while_its_spool_is_removed(kit: Kit) -> None:
    """It said nothing, and never served the directory made again."""
    sd = kit.queue("lp", kit.recorder())
    watcher = kit.start("watch", "-P", "lp")
    wait_served(kit, "lp", watcher)
    remove_busy_tree(sd)
    wait_until(lambda: "was removed or moved" in watcher.stderr(), what="the daemon to say")
    sd.mkdir(mode=0o700)
    watcher.signal(signal.SIGHUP)  # else at the next rescan
    wait_until(lambda: f"spool directory {sd} can be used again" in watcher.stderr(),
               what="the queue back")
    (sd / "dropped.txt").write_text("after\n")
    wait_until(lambda: set(kit.states("lp").values()) == {"done"}, what="the job printed")
    assert watcher.popen.poll() is None
    assert watcher.stop() == 0
    err = watcher.stderr()
    # Said once while it is gone (not at each rescan). The rm -rf above may be retried
    # while the daemon serves the queue again between two tries: then each spell is said.
    said = [("gone" if "was removed or moved" in line else "back") for line in
            err.splitlines() if "was removed or moved" in line or "can be used again" in line]
    assert said and said == ["gone", "back"] * (len(said) // 2), err
    assert "Traceback" not in err and "internal error" not in err, err


def test_daemon_keeps_an_outcome_it_cannot_write(kit: Kit, small_fs: Path) -> None:
    """The spool fills up while a job is sent: the daemon says so once, keeps the outcome
    and writes it when it can (no reprint), and goes on serving the queue. (Once the spool
    was made read-only by a bind mount here: a daemon's journal, open for writing since
    before, is written through its own mount, and a real remount read-only is refused
    while it is open, so a full disk is the outcome a daemon can meet.)"""
    program = kit.program("gated.py", GATED.format(python=sys.executable, out=str(kit.out),
                                                  pids=str(kit.pids)))
    sd = kit.queue("lp", f"|{program}", parent=small_fs)
    watcher = kit.start("watch", "-P", "lp")
    wait_served(kit, "lp", watcher)
    (sd / "doc.txt").write_text("once\n")
    wait_until(lambda: (kit.out / "started").exists(), what="the send to start")
    with filled(small_fs):
        (kit.out / "go").touch()
        wait_until(lambda: "cannot be written" in watcher.stderr(), what="the daemon to say")
        assert set(kit.states("lp").values()) == {"active"}
    watcher.signal(signal.SIGHUP)
    wait_until(lambda: set(kit.states("lp").values()) == {"done"}, what="the outcome")
    (job,) = kit.states("lp")
    assert (kit.out / f"{job}.out").read_text() == "once\n"  # sent once, not again
    assert not kit.ticket("lp", job)["possible_duplicate"]
    assert watcher.popen.poll() is None
    assert watcher.stop() == 0
    err = watcher.stderr()
    assert err.count("cannot be written") == 1, err
    assert err.count("can be written again") == 1, err
    assert "Traceback" not in err, err


@pytest.mark.parametrize(("how", "freed"), [("once", True), ("once", False),
                                            ("print", False)])
def test_a_one_shot_pass_keeps_an_outcome_it_cannot_write(kit: Kit, small_fs: Path,
                                                           how: str, freed: bool) -> None:
    """watch --once sends a job and the spool fills before its outcome is written. It
    stopped at once (exit 10, "the jobs stay queued as they were"), and the next run
    printed the job again. Now it tries to write the outcome for a while: room comes
    back in that time, the job is done and sent once; it does not, the one line says the
    job went to the printer and the next run sends it again, flagged. A foreground print
    (no watcher) runs the same pass; it said "lp-000001: active: active"."""
    program = kit.program("gated.py", GATED.format(python=sys.executable, out=str(kit.out),
                                                  pids=str(kit.pids)))
    sd = kit.queue("lp", f"|{program}", parent=small_fs)
    (kit.root / "doc.txt").write_text("once\n")
    if how == "once":
        assert kit.run("print", "--no-wait", "-P", "lp", str(kit.root / "doc.txt")
                       ).returncode == 0
        once = kit.start("watch", "--once", "-P", "lp")
    else:
        once = kit.start("print", "-P", "lp", str(kit.root / "doc.txt"))
    wait_until(lambda: (kit.out / "started").exists(), what="the send to start")
    (job,) = kit.states("lp")
    with filled(small_fs):
        (kit.out / "go").touch()
        if freed:
            wait_until(lambda: (kit.out / f"{job}.out").exists(), what="the job's end")
            time.sleep(0.5)  # its outcome tried on a full spool (the pass waits for room)
        else:
            once.popen.wait(timeout=60)
    rc = once.popen.wait(timeout=60)
    err = once.stderr()
    assert "Traceback" not in err, err
    if freed:
        assert rc == 0, err
        assert kit.states("lp") == {job: "done"}
    else:
        assert rc == ExitStatus.SPOOL_FULL, err
        assert (f"job {job} went to the printer, but its outcome could not be written: the"
                " next run sends it again, flagged a possible duplicate") in err, err
        if how == "print":
            assert (f"lpfilter: lp-{job}: active: sent, but its outcome could not be written"
                    " (below)\n") in err, err
        again = kit.run("watch", "--once", "-P", "lp")
        assert again.returncode == 0, again.stderr
        assert kit.ticket("lp", job)["possible_duplicate"]
    assert (kit.out / f"{job}.out").read_text() == ("once\n" if freed else "once\nonce\n")
    assert sd.exists()


def test_job_is_not_sent_when_its_maybe_sent_mark_cannot_be_written(
        tmp_path: Path, small_fs: Path, ftp_server: MakeServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The disk fills between the job's start and its first byte (here: while the FTP
    server logs the client in): the "maybe sent" mark cannot be made durable, so no byte
    is sent; the job is sent once, not marked a duplicate, when there is room again."""
    queue = FtpQueue(tmp_path, capsys)
    queue.sd = small_fs / "sd"
    queue.sd.mkdir(mode=0o700)
    for key, value in queue.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NETRC", raising=False)
    server = ftp_server()
    queue.setup(server.lp())
    handler = server.printer.server.handler
    login = handler.on_login
    filler = contextlib.ExitStack()
    logins: list[str] = []

    def fill_then_login(self: object, username: str) -> None:
        if not logins:  # the first login only
            filler.enter_context(filled(small_fs))
        logins.append(username)
        login(self, username)

    handler.on_login = fill_then_login
    data = b"%!PS\n" + os.urandom(3000) + b"\n"
    with filler:
        run = queue.print(data)
        assert run.rc == ExitStatus.SPOOL_FULL, run.err
        assert f"the spool directory {queue.sd} cannot be written" in run.err, run.err
        assert "Traceback" not in run.err
        job = queue.job()
        assert not job.send_started and not job.possible_duplicate
        assert all(received.size == 0 for received in server.printer.jobs)
    again = queue.run("watch", "--once")
    assert again.rc == 0, again.err
    job = queue.job()
    assert (job.state, job.possible_duplicate) == ("done", False)
    sent = [received for received in server.printer.jobs if received.size]
    assert [(r.size, r.complete) for r in sent] == [(len(data), True)]


def test_hot_folder_file_stays_put_on_a_full_spool(kit: Kit, small_fs: Path) -> None:
    """A dropped file whose ticket cannot be written goes back where it was (it became a
    ticketless data file, recovered a minute later as 'recovered-N' under the watcher's
    name); it is taken, with its own name, once there is room."""
    sd = kit.queue("lp", kit.recorder(), parent=small_fs)
    kit.run("checkpc", "--fix")
    sd.chmod(0o1777)  # a shared hot folder: the file is another user's
    (sd / "first.txt").write_text("first\n")  # a job first: the job counter exists
    assert kit.run("watch", "--once", "-P", "lp").returncode == 0  # makes .lpfilter/
    (sd / "report.txt").write_text("dropped\n")
    os.chown(sd / "report.txt", 65534, 65534)
    (sd / "report.txt").chmod(0o644)
    with filled(small_fs):
        once = kit.run("watch", "--once", "-P", "lp")
        assert once.returncode == ExitStatus.SPOOL_FULL, once.stderr
        assert f"the spool directory {sd} cannot be written" in once.stderr, once.stderr
        assert (sd / "report.txt").read_text() == "dropped\n"
        assert state_files(sd) == [] and list(kit.tickets("lp")) == ["000001"]  # the first's
        # Still the dropper's, as dropped (root had given it to the queue's owner).
        info = (sd / "report.txt").stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (65534, 0o644)
    once = kit.run("watch", "--once", "-P", "lp")
    assert once.returncode == 0, once.stderr
    tickets = {t["name"]: t for t in kit.tickets("lp").values()}
    assert set(tickets) == {"first.txt", "report.txt"}
    ticket = tickets["report.txt"]
    assert (ticket["state"], ticket["user"]) == ("done", "nobody")


def test_checkpc_names_a_full_or_read_only_spool(kit: Kit, small_fs: Path) -> None:
    """checkpc said nothing of a full spool, and called a read-only one "not writable by
    this user ... chown it"."""
    sd = kit.queue("lp", kit.recorder(), parent=small_fs)
    with filled(small_fs):
        done = kit.run("checkpc")
        assert done.returncode == ExitStatus.FAILURE, done.stdout + done.stderr
        assert f"spool directory {sd} is on a full file system" in done.stdout + done.stderr
    with read_only(sd):
        done = kit.run("checkpc")
        assert done.returncode == ExitStatus.FAILURE, done.stdout + done.stderr
        said = done.stdout + done.stderr
        assert f"spool directory {sd} is on a read-only file system" in said, said
        assert "not writable by this user" not in said, said
    assert kit.run("checkpc").returncode == 0


def test_daemon_started_on_a_full_spool_waits_for_room(kit: Kit, small_fs: Path) -> None:
    """A job left active by a killed watcher cannot be put back while the disk is full:
    the new daemon says so once and keeps the queue (it failed the queue, which was then
    started afresh at each rescan or SIGHUP and failed again)."""
    program = kit.program("gated.py", GATED.format(python=sys.executable, out=str(kit.out),
                                                   pids=str(kit.pids)))
    sd = kit.queue("lp", f"|{program}", parent=small_fs)
    first = kit.start("watch", "-P", "lp")
    wait_served(kit, "lp", first)
    (sd / "doc.txt").write_text("interrupted\n")
    wait_until(lambda: (kit.out / "started").exists(), what="the send to start")
    first.popen.kill()
    first.wait()
    assert set(kit.states("lp").values()) == {"active"}
    (kit.out / "go").touch()
    from lpfilter.spool.lease import lease_path
    os.truncate(lease_path(str(sd / ".lpfilter")), 0)  # its record then needs a new block
    with filled(small_fs):
        watcher = kit.start("watch", "-P", "lp")
        wait_until(lambda: "cannot be written" in watcher.stderr(), what="the daemon to say")
    watcher.signal(signal.SIGHUP)
    wait_until(lambda: set(kit.states("lp").values()) == {"done"}, what="the job printed")
    status = kit.run("status", "-P", "lp")  # its name, kept out of the lease by the full
    assert f"served by pid {watcher.popen.pid} (watch" in status.stdout, status.stdout  # disk
    (ticket,) = kit.tickets("lp").values()
    assert ticket["possible_duplicate"]  # its bytes had reached the program
    assert watcher.stop() == 0
    err = watcher.stderr()
    # Once for the queue; the job's own line may carry the reason too (when the takeover
    # freed a block, ending the dead watcher's filter record, and the job was put back
    # but could not be marked as being sent).
    assert err.count("its jobs stay queued and are tried again") == 1, err
    assert err.count("can be written again") == 1, err
    assert "can be used again" not in err and "Traceback" not in err, err


def test_daemon_on_a_full_spool_waits_without_spinning(kit: Kit, small_fs: Path) -> None:
    """A queued job on a full spool: each try to mark it active leaves a temporary ticket
    closed in jobs/, an inotify event; the daemon woke itself on it at once, again and
    again, at full CPU, keeping the job's data file open each time until it ran out of
    descriptors and stopped with an internal error. It now waits for the rescan."""
    import psutil
    kit.queue("lp", kit.recorder(), parent=small_fs)
    assert kit.run("print", "--no-wait", "-P", "lp", str(kit.program("doc", "a page\n"))
                   ).returncode == 0
    with filled(small_fs):
        watcher = kit.start("watch", "-P", "lp")
        wait_until(lambda: "cannot be written" in watcher.stderr(), what="the daemon to say")
        process = psutil.Process(watcher.pid)
        fds, cpu = process.num_fds(), sum(process.cpu_times()[:2])
        window = 2.0
        time.sleep(window)  # a window to measure in, not a wait for an event
        assert process.num_fds() <= fds + 2, (fds, process.num_fds())
        used = sum(process.cpu_times()[:2]) - cpu
        assert used < window / 4, f"{used:.2f} s of CPU in {window:g} s: it spins"
        assert set(kit.states("lp").values()) == {"queued"}
    assert watcher.stop() == 0
    assert "Traceback" not in watcher.stderr() and "internal error" not in watcher.stderr()
