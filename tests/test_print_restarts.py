"""``lpfilter print`` in a loop while the daemon (``lpfilter watch``) is stopped with SIGTERM
and started again, real processes throughout: no job is lost, none is printed twice
unless it is recorded as a possible duplicate, every ``print`` exits with a documented
status (``--wait`` too), and at most one process sends to the printer at a time. Bounded: a
fixed number of prints and of restarts, every wait with a deadline, every process stopped by
its pid."""
from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from pathlib import Path

from spoolkit import Kit, Proc, all_done, job_ids, kit, wait_until, write_files  # noqa: F401

from lpfilter.locks import current_holder
from lpfilter.status import ExitStatus

PRINTS = 30
RESTARTS = 12


def serving(kit: Kit, proc: Proc, printing: threading.Thread) -> None:
    """Wait (bounded) until the watcher holds the queue, or the prints are over; a print
    that serves the queue itself meanwhile keeps it a moment, which is allowed."""
    lock = str(kit.sd("q") / ".lpfilter" / "queue.lock")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and printing.is_alive():
        assert proc.popen.poll() is None, proc.stderr()
        holder = current_holder(lock)
        if holder is not None and holder.pid == proc.pid:
            return
        time.sleep(0.02)


def test_print_while_the_watcher_restarts_loses_and_doubles_no_job(kit: Kit) -> None:
    kit.queue("q", kit.recorder(delay=0.4))
    files = write_files(kit.root / "in", PRINTS)
    results: list[tuple[Path, int, str, str]] = []

    def print_all() -> None:
        for n, path in enumerate(files):  # every third waits for its job's end
            wait = ("--wait",) if n % 3 == 2 else ()
            done = kit.run("print", *wait, "-P", "q", str(path), timeout=90)
            results.append((path, done.returncode, done.stdout, done.stderr))

    printing = threading.Thread(target=print_all)
    watchers = [kit.start("watch", "-P", "q")]
    cutting = False  # the current watcher has --grace 0: SIGTERM cuts its running send
    printing.start()
    try:
        for restart in range(RESTARTS):
            if not printing.is_alive():
                break
            serving(kit, watchers[-1], printing)
            if cutting:  # stop it while the recorder holds a job it has not written yet
                busy = kit.out / "busy"
                deadline = time.monotonic() + 5
                while not busy.exists() and time.monotonic() < deadline:
                    time.sleep(0.005)
            else:
                time.sleep(0.05 * (restart % 4))  # pacing: stop it at different moments
            assert watchers[-1].stop(30) == 0, watchers[-1].stderr()
            cutting = restart % 2 == 0
            watchers.append(kit.start("watch", "-P", "q", *(("--grace", "0") if cutting
                                                             else ())))
    finally:
        printing.join(180)
    assert not printing.is_alive(), "the prints did not end"
    assert len(watchers) > 3, "the prints ended before the watcher was restarted"

    documented = {int(status) for status in ExitStatus}
    ids: dict[str, Path] = {}
    for path, rc, out, err in results:
        assert rc in documented and rc in (ExitStatus.OK, ExitStatus.JOB_PENDING), (rc, err)
        assert "Traceback" not in err and "internal error" not in err, err
        (job,) = job_ids(out, "q")
        ids[job] = path
    assert len(ids) == PRINTS  # every print spooled its own job

    wait_until(lambda: all_done(kit, "q", list(ids)), timeout=60, what="every job done")
    assert watchers[-1].stop(30) == 0
    for watcher in watchers:
        assert "Traceback" not in watcher.stderr(), watcher.stderr()

    sent = Counter(line[1] for line in kit.log_lines())
    assert set(sent) == set(ids), "a job was lost or one never spooled was printed"
    tickets = kit.tickets("q")
    twice = {job for job, count in sent.items() if count > 1}
    assert all(tickets[job]["possible_duplicate"] for job in twice), twice
    for job, path in ids.items():
        assert kit.output("q", job) == path.read_bytes()
    # The recorder's own "busy" marker outlives a send cut by SIGTERM, so its overlap
    # file proves nothing here: the finished sends' times must not overlap instead.
    spans = sorted((float(line[3]), float(line[4])) for line in kit.log_lines())
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), spans


def test_a_print_waiting_on_a_stopped_print_gives_up_after_its_patience(kit: Kit) -> None:
    """Two foreground prints of a queue no watcher serves: the first holds the queue and
    is stopped (Ctrl-Z) in the middle of its job. The second waited for it without a word
    and without end; it waits LPFILTER_PRINT_WAIT, then says who holds the queue and
    leaves its job queued (exit 8). Both print once the first goes on."""
    import signal
    import sys

    from test_spool_full import GATED
    program = kit.program("gated.py", GATED.format(python=sys.executable, out=str(kit.out),
                                                  pids=str(kit.pids)))
    kit.queue("lp", f"|{program}")
    for name in ("a.txt", "b.txt"):
        (kit.root / name).write_text(f"{name}\n")
    first = kit.start("print", "-P", "lp", str(kit.root / "a.txt"))
    wait_until(lambda: (kit.out / "started").exists(), what="the first job's send")
    first.popen.send_signal(signal.SIGSTOP)
    try:
        kit.env["LPFILTER_PRINT_WAIT"] = "2"
        started = time.monotonic()
        second = kit.run("print", "-P", "lp", str(kit.root / "b.txt"))
        waited = time.monotonic() - started
    finally:
        first.popen.send_signal(signal.SIGCONT)
    assert second.returncode == ExitStatus.JOB_PENDING, second.stderr
    assert waited < 30, waited
    (job,) = job_ids(second.stdout, "lp")
    assert (f"lpfilter: lp-{job}: queued: the queue is served by pid {first.popen.pid}"
            " (print), which has not printed it yet; it stays queued\n") in second.stderr, \
        second.stderr
    (kit.out / "go").touch()
    assert first.popen.wait(timeout=60) == 0, first.stderr()
    assert set(kit.states("lp").values()) == {"done"}
