"""The spool with real processes and real signals (issue 3): a watcher killed mid-job, rival
watchers on one queue, 1000 jobs through a flaky program, the hot folder, the daemon's
signals and the per-printer lock. Every wait is bounded; every process is ended."""
from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import stat
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from spoolkit import (  # noqa: F401 - fixtures
    Kit,
    Proc,
    all_done,
    fast_dir,
    gone,
    job_ids,
    kit,
    wait_served,
    wait_until,
    write_files,
)

from lpfilter.locks import current_holder


# --- crashes ----------------------------------------------------------------------------
def test_sigkill_mid_job_reprints_and_flags_a_possible_duplicate(kit: Kit) -> None:
    """SIGKILL while the program reads the job: a new watcher prints it, flagged everywhere."""
    kit.queue("q", kit.recorder())
    data = bytes(range(256)) * 800  # 200 KiB: more than a pipe holds, so the send is mid-way
    (kit.root / "big.bin").write_bytes(data)
    (kit.out / "hang").touch()
    watcher = kit.start("watch", "-P", "q")
    [job] = job_ids(kit.run("print", "-P", "q", "--no-wait", str(kit.root / "big.bin")).stdout,
                    "q")
    ready = kit.out / f"q-{job}.ready"
    wait_until(ready.exists, what="the program to start reading the job")
    watcher.signal(signal.SIGKILL)
    watcher.wait()
    os.kill(int(ready.read_text()), signal.SIGKILL)  # the program runs in its own session
    ticket = kit.ticket("q", job)
    assert (ticket["state"], ticket["send_started"]) == ("active", True)

    (kit.out / "hang").unlink()
    restarted = kit.start("watch", "-P", "q")
    wait_until(lambda: [a for a in kit.accounting("q") if a["job"] == job],
               what="the job's accounting line after the restart")
    assert kit.output("q", job) == data
    ticket = kit.ticket("q", job)
    assert ticket["possible_duplicate"] is True and ticket["attempts"] == 2
    [line] = [a for a in kit.accounting("q") if a["job"] == job]
    assert (line["outcome"], line["duplicate"], line["bytes"]) == ("done", "yes", str(len(data)))
    shown = json.loads(kit.run("status", "-P", "q", "--json").stdout)
    assert [j["possible_duplicate"] for j in shown["jobs"] if j["id"] == job] == [True]
    text = kit.run("status", "-P", "q").stdout
    assert "done*" in text and "possible duplicate" in text
    assert restarted.stop() == 0


# --- rivals -----------------------------------------------------------------------------
def test_two_daemons_and_a_cron_run_print_every_job_exactly_once(kit: Kit) -> None:
    """Two daemons and a `watch --once` started together: one serves, the others say so."""
    kit.queue("q", kit.recorder(delay=0.03))
    files = write_files(kit.root / "in", 50)
    ids = job_ids(kit.run("print", "-P", "q", "--no-wait", *map(str, files)).stdout, "q")
    procs = [kit.start("watch", "-P", "q"), kit.start("watch", "-P", "q"),
             kit.start("watch", "-P", "q", "--once")]
    wait_until(lambda: all_done(kit, "q", ids), timeout=40, what="all 50 jobs")
    once_status = procs[2].wait(20)
    assert [procs[0].stop(), procs[1].stop()] == [0, 0]

    log = kit.log_lines()
    assert Counter(line[1] for line in log) == Counter(ids)  # each exactly once
    servers = {int(line[2]) for line in log}
    assert len(servers) == 1, f"jobs sent by several processes at once: {servers}"
    for proc in procs:
        if proc.pid not in servers:
            assert "served by" in proc.stderr(), proc.stderr()
    assert once_status == (0 if procs[2].pid in servers else 9)
    assert not (kit.out / "overlap").exists()
    acct = kit.accounting("q")
    assert Counter(a["job"] for a in acct) == Counter(ids)
    assert {(a["outcome"], a["duplicate"]) for a in acct} == {("done", "no")}


# --- volume and random failures -----------------------------------------------------------
FLAKY = r"""#!{bash}
# fails (exit 1: try again) 20% of the time, half of those without reading the job
r=$((RANDOM % 100))
[ "$r" -lt 10 ] && exit 1
IFS= read -r data || exit 1
[ "$r" -lt 20 ] && exit 1
printf '%s %s\n' "$LPFILTER_JOB" "$data" >> {log}
"""


def test_1000_jobs_through_a_flaky_program_none_lost(kit: Kit, fast_dir: Path) -> None:
    """1000 jobs, 20% random retries, send_try#3: each ends done or failed, books balance."""
    printed = kit.out / "printed"
    program = kit.program("flaky.sh", FLAKY.format(bash=shutil.which("bash") or "/bin/bash",
                                                   log=printed))
    # fifo@: with strict order every retry ends the pass, and each pass rereads all tickets;
    # tmpfs: the test is about bookkeeping, and fsync on a busy disk would dominate its time
    kit.queue("q", f"|{program}", send_try=3, fifo=False, parent=fast_dir)
    files = write_files(kit.root / "in", 1000)
    submitted = kit.run("print", "-P", "q", "--no-wait", *map(str, files), timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    ids = job_ids(submitted.stdout, "q")
    assert len(set(ids)) == 1000
    content = {i: f.read_text().strip() for i, f in zip(ids, files)}

    for _ in range(5):
        status = kit.run("watch", "-P", "q", "--once", timeout=120).returncode
        if status != 8:  # 8: jobs still pending (waiting for a retry)
            break
    tickets = kit.tickets("q")
    assert set(tickets) == set(ids)
    states = Counter(t["state"] for t in tickets.values())
    assert set(states) <= {"done", "failed"}, states
    assert status == (6 if states["failed"] else 0)

    lines = printed.read_text().splitlines()
    assert Counter(line.split(" ", 1)[0] for line in lines) == Counter(
        i for i, t in tickets.items() if t["state"] == "done")
    for line in lines:
        job, text = line.split(" ", 1)
        assert text == content[job]
    data_dir = kit.sd("q") / ".lpfilter" / "jobs"
    for job, ticket in tickets.items():
        if ticket["state"] == "done":
            assert 1 <= ticket["attempts"] <= 3 and not (data_dir / f"{job}.data").exists()
        else:  # failed: kept, with its data and the reason
            assert ticket["attempts"] == 3 and "exited 1" in ticket["last_error"]
            assert (data_dir / f"{job}.data").read_text().strip() == content[job]

    acct = kit.accounting("q")
    assert Counter(a["job"] for a in acct) == Counter(ids)  # one final line per job
    for line in acct:
        ticket = tickets[line["job"]]
        assert line["outcome"] == ticket["state"]
        assert int(line["attempts"]) == ticket["attempts"]
        # every attempt pipes bytes to the program, so a retried job may have printed twice
        flagged = ticket["possible_duplicate"]
        assert flagged == (ticket["attempts"] > 1) and line["duplicate"] == ("yes" if flagged
                                                                             else "no")
    assert not os.listdir(kit.sd("q") / ".lpfilter" / "tmp")
    assert not [n for n in os.listdir(data_dir) if n.startswith(".")]


# --- the hot folder ---------------------------------------------------------------------
WRITER = """import sys, time
path, opened, closed = sys.argv[1:4]
with open(path, "wb") as handle:
    for n in range(10):
        handle.write(b"chunk %02d " % n + b"x" * 500 + b"\\n")
        handle.flush()
        open(opened, "w").close()
        time.sleep(1.5 if n == 4 else 0.3)  # a quiet spell of 3 x settle, still open
open(closed, "w").close()
"""


def test_hot_folder_waits_for_a_file_still_being_written(kit: Kit) -> None:
    """A file written slowly (with a pause longer than --settle) is taken only when complete."""
    sd = kit.queue("q", kit.recorder())
    watcher = kit.start("watch", "-P", "q", "--settle", "0.5")
    wait_served(kit, "q", watcher)
    slow, opened, closed = sd / "slow.txt", kit.root / "opened", kit.root / "closed"
    writer = kit.spawn([sys.executable, "-c", WRITER, str(slow), str(opened), str(closed)])
    deadline = time.monotonic() + 15
    while writer.popen.poll() is None and time.monotonic() < deadline:
        # in this order: a file gone while "closed" is not there yet was taken too early
        if opened.exists() and not slow.exists():
            assert closed.exists(), "taken while still open for writing"
        time.sleep(0.05)
    assert writer.wait(5) == 0
    expected = b"".join(b"chunk %02d " % n + b"x" * 500 + b"\n" for n in range(10))
    found = wait_until(lambda: [i for i, t in kit.tickets("q").items()
                                if t["name"] == "slow.txt" and t["state"] == "done"],
                       what="slow.txt to print")
    assert len(kit.tickets("q")) == 1 and kit.output("q", found[0]) == expected
    assert watcher.stop() == 0


def test_hot_folder_refuses_symlinks_and_fifos(kit: Kit) -> None:
    """A symlink to a secret and a FIFO are moved aside unopened; a plain file prints."""
    sd = kit.queue("q", kit.recorder())
    secret = kit.root / "secret"
    secret.write_text("TOP SECRET\n")
    before = secret.stat()
    watcher = kit.start("watch", "-P", "q", "--settle", "0.2")
    wait_served(kit, "q", watcher)
    os.symlink(secret, sd / "shadow")
    os.mkfifo(sd / "pipe")
    (kit.root / "plain.txt").write_text("plain\n")
    os.rename(kit.root / "plain.txt", sd / "plain.txt")
    refused = sd / ".lpfilter" / "refused"
    wait_until(lambda: (refused / "pipe").exists() and (refused / "shadow").is_symlink(),
               what="the symlink and the FIFO to be refused")
    wait_until(lambda: any(t["name"] == "plain.txt" and t["state"] == "done"
                           for t in kit.tickets("q").values()), what="plain.txt")

    assert os.readlink(refused / "shadow") == str(secret)
    assert stat.S_ISFIFO(os.lstat(refused / "pipe").st_mode)
    after = secret.stat()
    assert secret.read_text() == "TOP SECRET\n"
    assert (after.st_mtime_ns, after.st_nlink, after.st_mode) == (
        before.st_mtime_ns, before.st_nlink, before.st_mode)
    assert [t["name"] for t in kit.tickets("q").values()] == ["plain.txt"]
    assert not any(b"SECRET" in p.read_bytes() for p in kit.out.glob("*.out"))
    log = (sd / "log").read_text()
    assert "refused shadow" in log and "refused pipe" in log
    assert not {"shadow", "pipe"} & set(os.listdir(sd))
    assert watcher.stop() == 0


# --- the daemon -------------------------------------------------------------------------
def test_daemon_takes_a_renamed_in_file_at_once(kit: Kit) -> None:
    """A file renamed into sd prints at once, though --settle (and the rescan) are 30 s."""
    sd = kit.queue("q", kit.recorder())
    watcher = kit.start("watch", "-P", "q", "--settle", "30")
    wait_served(kit, "q", watcher)
    # The watcher's first look takes every file nobody writes, whatever its age: one
    # renamed-in file printed first says that look is over (the lease alone does not).
    for name in ("first.txt", "report.txt"):
        if name == "report.txt":
            (sd / "inplace.txt").write_text("written in place: waits for the settle time\n")
        (kit.root / name).write_text("renamed in\n")
        os.rename(kit.root / name, sd / name)
        wait_until(lambda: any(line[5] == name for line in kit.log_lines()),  # noqa: B023
                   timeout=3, interval=0.01, what=f"the renamed-in {name} to print")
    assert (sd / "inplace.txt").exists()
    assert [line[5] for line in kit.log_lines()] == ["first.txt", "report.txt"]
    assert watcher.stop() == 0


def test_print_with_a_daemon_returns_at_once_and_wait_waits(kit: Kit) -> None:
    """`print` leaves the job to the daemon; `print --wait` returns 0 once it printed."""
    kit.queue("q", kit.recorder(delay=1.0))
    watcher = kit.start("watch", "-P", "q")
    wait_served(kit, "q", watcher)
    (kit.root / "a.txt").write_text("a\n")
    result = kit.run("print", "-P", "q", str(kit.root / "a.txt"))
    assert result.returncode == 0, result.stderr
    [first] = job_ids(result.stdout, "q")
    assert kit.states("q")[first] in ("queued", "active")  # the program needs a second

    (kit.root / "b.txt").write_text("b\n")
    result = kit.run("print", "-P", "q", "--wait", str(kit.root / "b.txt"))
    assert result.returncode == 0, result.stderr
    [second] = job_ids(result.stdout, "q")
    assert kit.states("q")[second] == "done" and kit.output("q", second) == b"b\n"
    wait_until(lambda: all_done(kit, "q", [first]), what="the first job")
    assert watcher.stop() == 0


def test_a_waiting_daemon_takes_over_when_the_cron_run_ends(kit: Kit) -> None:
    """A daemon that found `watch --once` serving the queue serves it once that run ends."""
    sd = kit.queue("q", kit.recorder(delay=2.0))
    (kit.root / "a.txt").write_text("a\n")
    kit.run("print", "-P", "q", "--no-wait", str(kit.root / "a.txt"))
    once = kit.start("watch", "-P", "q", "--once")
    wait_served(kit, "q", once)
    daemon = kit.start("watch", "-P", "q")
    wait_until(lambda: "served by" in daemon.stderr(), what="the daemon to see the cron run")
    assert once.wait(20) == 0
    (kit.root / "b.txt").write_text("b\n")
    os.rename(kit.root / "b.txt", sd / "b.txt")
    wait_until(lambda: any(line[5] == "b.txt" for line in kit.log_lines()), timeout=6,
               what="the waiting daemon to print a file dropped after the cron run ended")
    assert daemon.stop() == 0


def sigterm_mid_job(kit: Kit) -> tuple[int, float, str, bytes]:
    """A daemon (--grace 1) gets SIGTERM while a job hangs mid-send.

    Returns the daemon's exit status, how long it took to exit, the job id and its data."""
    kit.queue("q", kit.recorder())
    data = b"y" * 200_000
    (kit.root / "long.bin").write_bytes(data)
    (kit.out / "hang").touch()
    watcher = kit.start("watch", "-P", "q", "--grace", "1")
    [job] = job_ids(kit.run("print", "-P", "q", "--no-wait", str(kit.root / "long.bin")).stdout,
                    "q")
    ready = kit.out / f"q-{job}.ready"
    wait_until(ready.exists, what="the program to start reading the job")
    started = time.monotonic()
    watcher.signal(signal.SIGTERM)
    status = watcher.wait(15)
    elapsed = time.monotonic() - started
    wait_until(lambda: gone(int(ready.read_text())), timeout=5, what="the program to end")
    (kit.out / "hang").unlink()
    return status, elapsed, job, data


def test_sigterm_puts_a_long_job_back_and_exits_0(kit: Kit) -> None:
    """SIGTERM, --grace 1, a job that does not end: exit 0 soon, the job back in the queue."""
    status, elapsed, job, data = sigterm_mid_job(kit)
    assert elapsed < 6  # grace 1 s, then the program is stopped (SIGTERM, SIGKILL after 2 s)
    ticket = kit.ticket("q", job)
    assert (ticket["state"], ticket["send_started"], ticket["worker"]) == ("queued", True, None)
    assert ticket["attempts"] == 0  # an interrupted attempt does not count
    assert not [a for a in kit.accounting("q") if a["job"] == job]  # not finished yet
    assert kit.run("watch", "-P", "q", "--once").returncode == 0
    assert kit.states("q")[job] == "done" and kit.output("q", job) == data
    [line] = [a for a in kit.accounting("q") if a["job"] == job]
    assert line["duplicate"] == "yes"
    assert status == 0, "a daemon stopped by SIGTERM exits 0 (lpfilter(1), EXIT STATUS)"


def test_a_job_put_back_by_sigterm_is_flagged_at_once(kit: Kit) -> None:
    """Bytes went out before SIGTERM put the job back: status shows it as a possible duplicate."""
    _, _, job, _ = sigterm_mid_job(kit)
    ticket = kit.ticket("q", job)
    assert (ticket["state"], ticket["send_started"]) == ("queued", True)
    assert ticket["possible_duplicate"] is True, (
        "put back after bytes reached the printer, yet not flagged as a possible duplicate"
        " (the SIGKILL recovery flags it; status shows no '*' until the next attempt)")
    assert "queued*" in kit.run("status", "-P", "q").stdout


def test_sigterm_exit_status_ignores_jobs_that_failed(kit: Kit) -> None:
    """A daemon whose jobs failed earlier still exits 0 when systemd stops it."""
    program = kit.program("abort.sh", "#!/bin/sh\ncat >/dev/null\nexit 2\n")
    kit.queue("q", f"|{program}")
    watcher = kit.start("watch", "-P", "q")
    wait_served(kit, "q", watcher)
    (kit.root / "a.txt").write_text("a\n")
    [job] = job_ids(kit.run("print", "-P", "q", "--no-wait", str(kit.root / "a.txt")).stdout, "q")
    wait_until(lambda: kit.states("q").get(job) == "failed", what="the job to fail")
    assert watcher.stop() == 0


def test_sighup_starts_added_queues_and_stops_removed_ones(kit: Kit) -> None:
    """SIGHUP re-reads the printcap: a queue added is served, a queue removed is let go."""
    lp = kit.recorder()
    kit.queue("q1", lp)
    watcher = kit.start("watch")
    wait_served(kit, "q1", watcher)
    kit.queue("q2", lp)
    watcher.signal(signal.SIGHUP)
    wait_served(kit, "q2", watcher)
    (kit.root / "new.txt").write_text("new queue\n")
    [job] = job_ids(kit.run("print", "-P", "q2", "--no-wait", str(kit.root / "new.txt")).stdout,
                    "q2")
    wait_until(lambda: kit.states("q2").get(job) == "done", what="the job of the new queue")
    assert kit.output("q2", job) == b"new queue\n"

    del kit.queues["q1"]
    kit.write_printcap()
    watcher.signal(signal.SIGHUP)
    lock = str(kit.sd("q1") / ".lpfilter" / "queue.lock")
    wait_until(lambda: current_holder(lock) is None, what="q1 to be let go")
    assert watcher.stop() == 0


def _printing(kit: Kit, seconds: float, grace: str) -> tuple[Proc, str]:
    """Queue q whose program takes ``seconds`` a job, a watcher with ``--grace``, and a
    job of q being printed: the watcher and the job's number."""
    kit.queue("q", kit.recorder(delay=seconds))
    watcher = kit.start("watch", "--grace", grace)
    wait_served(kit, "q", watcher)
    (kit.root / "a.txt").write_text("a page\n")
    [job] = job_ids(kit.run("print", "-P", "q", "--no-wait", str(kit.root / "a.txt")).stdout, "q")
    wait_until(lambda: kit.states("q").get(job) == "active", what="the job printing")
    return watcher, job


def test_sighup_after_an_edit_elsewhere_leaves_a_printing_job_alone(kit: Kit) -> None:
    """Found by an audit: a comment removed (or a queue added) above an entry moved its
    lines, and a reread took every such queue for changed (an option's place was compared
    with it): it was restarted and its printing job sent twice. Its settings did not
    change: it goes on, the job printed once."""
    watcher, job = _printing(kit, 3, "0.5")
    kit.queue("added", kit.recorder())  # (the kit writes the printcap anew)
    kit.printcap.write_text("# printers of the second floor\n" + kit.printcap.read_text())
    watcher.signal(signal.SIGHUP)
    wait_served(kit, "added", watcher)
    wait_until(lambda: kit.states("q").get(job) == "done", what="the job printed")
    assert len(list(kit.pids.iterdir())) == 1  # one run of the program: not sent again
    assert not kit.ticket("q", job)["possible_duplicate"]
    assert watcher.stop() == 0
    assert "restarting" not in watcher.stderr()


def test_sigterm_during_a_reread_starts_no_queue_again(kit: Kit) -> None:
    """Found by an audit: SIGTERM while a reread was stopping a changed queue: the reread
    went on and started the queue again, which could send its job again after the stop
    was asked (a race: with three busy queues the audit saw two sent again; this one
    queue seldom meets it). No queue starts once a stop was asked."""
    watcher, job = _printing(kit, 5, "1")
    kit.queues["q"] += ":cm=changed"
    kit.write_printcap()
    watcher.signal(signal.SIGHUP)
    wait_until(lambda: "changed in the printcap; restarting it" in watcher.stderr(),
               what="the reread stopping q")
    watcher.signal(signal.SIGTERM)
    assert watcher.wait() == 0
    assert len(list(kit.pids.iterdir())) == 1  # the job was not sent again
    assert kit.states("q") == {job: "queued"}


def test_a_spool_left_with_jobs_by_a_reread_is_said(kit: Kit) -> None:
    """Found by an audit: sd= changed (or the queue removed) while jobs waited: the
    reread stopped the queue silently and nothing showed the jobs left in the old spool.
    A warning names the spool and how many jobs stay there."""
    old = kit.queue("q", kit.recorder())
    assert kit.run("lpc", "stop", "q").returncode == 0
    for name in ("a", "b"):
        (kit.root / name).write_text("a page\n")
        assert kit.run("print", "-P", "q", "--no-wait", str(kit.root / name)).returncode == 0
    watcher = kit.start("watch")
    wait_served(kit, "q", watcher)
    new = kit.root / "spool-q2"
    new.mkdir(mode=0o700)
    kit.queues["q"] = kit.queues["q"].replace(f"sd={old}", f"sd={new}")
    kit.write_printcap()
    watcher.signal(signal.SIGHUP)
    said = f"queue q: 2 jobs not finished stay in {old}, which nothing serves now (its spool"
    wait_until(lambda: said in watcher.stderr(), what="the warning")
    assert watcher.stop() == 0


# --- one printer, two queues --------------------------------------------------------------
@pytest.mark.parametrize("split", [True, False], ids=["two-processes", "one-process"])
def test_queues_sharing_a_printer_never_send_at_once(kit: Kit, split: bool) -> None:
    """Two queues with the same lp= take turns on the printer (the per-device lock)."""
    lp = kit.recorder(delay=0.05)
    kit.queue("q1", lp)
    kit.queue("q2", lp)
    ids = {q: job_ids(kit.run("print", "-P", q, "--no-wait", *map(
        str, write_files(kit.root / q, 6, q))).stdout, q) for q in ("q1", "q2")}
    watchers = ([kit.start("watch", "-P", "q1"), kit.start("watch", "-P", "q2")] if split
                else [kit.start("watch", "-P", "q1", "-P", "q2")])
    wait_until(lambda: all(all_done(kit, q, ids[q]) for q in ids), timeout=30,
               what="both queues' jobs")
    log = kit.log_lines()
    assert Counter((line[0], line[1]) for line in log) == Counter(
        (q, i) for q in ids for i in ids[q])
    assert {int(line[2]) for line in log} == {w.pid for w in watchers}
    spans = sorted((float(line[3]), float(line[4])) for line in log)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, f"two sends overlapped: {spans}"
    assert not (kit.out / "overlap").exists()
    assert [w.stop() for w in watchers] == [0] * len(watchers)


def test_print_waits_for_a_one_shot_run_that_holds_the_queue(kit: Kit) -> None:
    """The queue is held by a watch --once (say, ending its last pass): print exited 0
    at once, the job left for the next cron run with only an INFO line. It now waits for
    that run and, when the run lets go with its job unprinted, prints it itself."""
    import threading

    from lpfilter.locks import ProcessLock
    sd = kit.queue("lp", kit.recorder())
    assert kit.run("checkpc", "--fix").returncode == 0
    assert kit.run("watch", "--once", "-P", "lp").returncode == 0  # makes .lpfilter/
    lock = ProcessLock(str(sd / ".lpfilter" / "queue.lock"), "watch --once")
    assert lock.acquire()
    timer = threading.Timer(1.0, lock.release)
    timer.start()
    try:
        done = kit.run("print", "-P", "lp", str(kit.program("doc", "a page\n")))
    finally:
        timer.join()
        lock.release()
    assert done.returncode == 0, done.stderr
    assert [line[1] for line in kit.log_lines()] == ["000001"]
