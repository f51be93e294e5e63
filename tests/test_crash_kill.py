"""Issue 16's promise, "a job is on disk before anyone is told, and no job is lost", proven by
crashing: a running watcher (``lpfilter watch``) is SIGKILLed at random moments, again and
again, while ``lpfilter print --no-wait`` spools thousands of 1 KiB jobs and the watcher
sends them to a real loopback printer (the package's virtual JetDirect printer, which keeps
each connection's bytes in a file of its own); after each kill a new watcher is started.

Each job's bytes name the job (its own file content), so the printer's files tell which job
arrived how many times, whole or cut short. Afterwards every job ``print`` reported is
printed whole at least once, byte-exact; every job the printer saw more than once (whole or
cut) is flagged ``possible_duplicate`` in its ticket; at most one job per kill (one queue
worker: one job in flight) was printed whole twice; no ticket is missing and none is left
queued, active or failed; nothing is left in the spool's staging folder. One variant also
has the printer reset connections at random (mid-job), as real printers do.

Written against today's store (tickets and data files), so that it guards the promise for any
later redesign (a journal). Bounded: a fixed number of kills and restarts, every wait with a
deadline, every process stopped by its pid (the kit); no timed assertions.
"""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from spoolkit import Kit, Proc, gone, job_ids, kit, wait_served, wait_until  # noqa: F401

from lpfilter.emulator.jetdirect import Behaviour, JobRecord, VirtualPrinter

JOB_SIZE = 1024
HEAD = b"LPFILTER-CRASH-JOB "
#: How many files one ``print`` command spools (several commands, so kills meet submission).
BATCH = 250


@dataclass(frozen=True)
class Case:
    seed: int
    jobs: int
    kills: int
    resets: float = 0.0  # chance that the printer resets a connection after a few bytes


CASES = [Case(seed=16, jobs=2000, kills=12), Case(seed=1601, jobs=600, kills=8),
         Case(seed=1602, jobs=600, kills=6, resets=0.04)]


def content(n: int) -> bytes:
    """Job ``n``'s 1 KiB: its number first, then filler that is its own too."""
    head = HEAD + f"{n:06d}\n".encode()
    body = random.Random(n).randbytes(JOB_SIZE - len(head))
    return head + body


def ident(data: bytes) -> int | None:
    """The job a connection's bytes belong to (None: too short to tell)."""
    if len(data) < len(HEAD) + 6:
        assert HEAD.startswith(data[:len(HEAD)]), f"bytes of no job: {data[:40]!r}"
        return None
    assert data.startswith(HEAD) and data[len(HEAD):len(HEAD) + 6].isdigit(), data[:40]
    return int(data[len(HEAD):len(HEAD) + 6])


def submit_all(kit: Kit, paths: list[Path], reported: dict[str, int],
               errors: list[str]) -> None:
    """``print --no-wait`` of every file, BATCH files a command; job id -> file number."""
    for start in range(0, len(paths), BATCH):
        batch = paths[start:start + BATCH]
        done = kit.run("print", "--no-wait", "-P", "q", *map(str, batch), timeout=120)
        if done.returncode != 0 or "Traceback" in done.stderr:
            errors.append(f"print exited {done.returncode}: {done.stderr[-2000:]}")
            return
        ids = job_ids(done.stdout, "q")
        if len(ids) != len(batch):
            errors.append(f"print reported {len(ids)} jobs for {len(batch)} files")
            return
        for offset, job in enumerate(ids):
            reported[job] = start + offset


def sigkill(proc: Proc) -> None:
    """SIGKILL one watcher by its pid and wait until it is gone (bounded)."""
    proc.signal(signal.SIGKILL)
    proc.wait(20)
    wait_until(lambda: gone(proc.pid), timeout=20, what=f"pid {proc.pid} to end")


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"seed{c.seed}-{c.jobs}jobs"
                         + ("-resets" if c.resets else ""))
def test_sigkill_of_the_watcher_loses_no_job_and_flags_every_duplicate(
        kit: Kit, tmp_path: Path, case: Case) -> None:
    rng = random.Random(case.seed)
    behaviour = Behaviour(pages=1)
    chooser = random.Random(case.seed + 1)

    def next_connection(_record: JobRecord) -> None:  # read afresh for the next connection
        cut = case.resets and chooser.random() < case.resets
        behaviour.reset_after = chooser.randrange(1, JOB_SIZE) if cut else None

    printed = tmp_path / "printed"
    printer = VirtualPrinter("127.0.0.1", 0, str(printed), behaviour, on_job=next_connection)
    with printer:
        host, port = printer.address
        kit.queue("q", f"{host}%{port}")
        source = tmp_path / "in"
        source.mkdir()
        paths = [source / f"j{n:06d}.txt" for n in range(case.jobs)]
        for n, path in enumerate(paths):
            path.write_bytes(content(n))

        reported: dict[str, int] = {}
        errors: list[str] = []
        submitting = threading.Thread(target=submit_all, args=(kit, paths, reported, errors))
        watchers = [kit.start("watch", "-P", "q")]
        submitting.start()
        kills = during_submission = 0
        deadline = time.monotonic() + 150
        try:
            while kills < case.kills and time.monotonic() < deadline:
                if kills == case.kills // 2:  # the other half once all is spooled: sending
                    submitting.join(120)
                # Random moments: mostly while it sends, some while it starts and recovers.
                time.sleep(rng.uniform(0.0, 0.2) if rng.random() < 0.2 else
                           rng.uniform(0.2, 1.0))
                assert watchers[-1].popen.poll() is None, watchers[-1].stderr()
                sigkill(watchers[-1])
                kills += 1
                during_submission += submitting.is_alive()
                watchers.append(kit.start("watch", "-P", "q"))
        finally:
            submitting.join(180)
        assert not submitting.is_alive(), "the prints did not end"
        assert not errors, errors
        assert kills == case.kills, f"only {kills} kills before the deadline"
        assert len(reported) == case.jobs  # every file became its own job

        def finished() -> bool:
            assert watchers[-1].popen.poll() is None, watchers[-1].stderr()
            states = kit.states("q")
            return all(states.get(job) == "done" for job in reported)

        wait_until(finished, timeout=120, interval=0.2, what="every job printed")
        wait_served(kit, "q", watchers[-1])  # started: SIGTERM is its orderly stop
        assert watchers[-1].stop(30) == 0, watchers[-1].stderr()
    for watcher in watchers:
        assert "Traceback" not in watcher.stderr(), watcher.stderr()

    number = {n: job for job, n in reported.items()}
    whole: Counter[int] = Counter()
    seen: Counter[int] = Counter()  # connections, whole or cut, that named the job
    unnamed = 0
    for path in sorted(printed.glob("job-*.prn")):
        data = path.read_bytes()
        found = ident(data)
        if found is None:
            unnamed += 1
            continue
        n = found
        assert n in number, f"{path.name}: job {n} was never submitted"
        assert content(n).startswith(data), f"{path.name}: job {n}'s bytes differ"
        seen[n] += 1
        whole[n] += len(data) == JOB_SIZE

    missing = sorted(number[n] for n in number if not whole[n])
    assert not missing, f"{len(missing)} jobs never printed whole: {missing[:20]}"
    tickets = kit.tickets("q")
    assert set(tickets) == set(reported), "a ticket is missing, or one nobody printed"
    assert {t["state"] for t in tickets.values()} == {"done"}
    again = sorted(number[n] for n, count in seen.items() if count > 1)
    unflagged = [job for job in again if not tickets[job]["possible_duplicate"]]
    assert not unflagged, f"printed again but not flagged possible_duplicate: {unflagged}"
    doubled = [n for n, count in whole.items() if count > 1]
    assert len(doubled) <= kills * 1, (doubled, kills)  # one queue worker: one in flight
    assert sum(whole.values()) - len(whole) <= kills, "more whole reprints than kills"
    if not case.resets:  # only a kill cuts a job short: the one in flight
        assert sum(seen.values()) - sum(whole.values()) + unnamed <= kills
    assert os.listdir(kit.sd("q") / ".lpfilter" / "tmp") == []
    left = sorted(p.name for p in (kit.sd("q") / ".lpfilter" / "jobs").glob("*.data"))
    cut = sum(seen.values()) - sum(whole.values()) + unnamed
    flagged = sum(t["possible_duplicate"] for t in tickets.values())
    print(f"\n{case}: kills={kills} (during submission {during_submission})"
          f" connections={sum(seen.values()) + unnamed} cut={cut}"
          f" printed-twice={len(doubled)} seen-again={len(again)} flagged={flagged}"
          f" data-files-left={left}")
