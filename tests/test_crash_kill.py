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

The hot-folder case drops the files instead (another user's, written under a temporary
name and renamed in) and also kills a watcher while it takes a batch in, between the
renames into jobs/ and the records (spool/intents.py): every file becomes one job named
after it, of its dropper, at once (never ``recovered-N`` after ORPHAN_AGE).

Written against today's store (tickets and data files), so that it guards the promise for any
later redesign (a journal). Bounded: a fixed number of kills and restarts, every wait with a
deadline, every process stopped by its pid (the kit); no timed assertions.
"""
from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
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


def _threads_of(pid: int) -> str:
    """Where a stalled watcher's threads are (py-spy, where installed): for the report."""
    spy = shutil.which("py-spy")
    if spy is None:
        return "(py-spy is not installed: no stacks)"
    done = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True,
                          timeout=60, check=False)
    return done.stdout[-6000:] + done.stderr[-500:]


def wait_printed(done: Callable[[], int], finished: Callable[[], bool], *, stall: float = 60.0,
                 cap: float = 600.0) -> None:
    """Wait until ``finished()``. Bounded by progress, not by a total: a loaded machine is
    slow (a job reset mid-send waits out its retry pause), so fail when ``done()`` (jobs
    printed) has not grown for ``stall`` seconds, a watcher that stopped sending, or after
    ``cap`` seconds in all."""
    start = last_change = time.monotonic()
    count = done()
    while not finished():
        now = time.monotonic()
        if now - last_change > stall or now - start > cap:
            raise AssertionError(f"{count} jobs printed; none more in {now - last_change:.0f}"
                                 f" s ({now - start:.0f} s in all)")
        time.sleep(0.2)
        if (latest := done()) != count:
            count, last_change = latest, time.monotonic()


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


class Killer:
    """SIGKILLs the watcher at random moments of three kinds: while it starts and recovers;
    while it sends (a random instant just after the printer took a job: the next job is
    being read, marked, connected, sent); and triggered by the printer itself the instant it
    has taken a job whole and closed, before the watcher can write "done"."""

    def __init__(self, kit: Kit, rng: random.Random) -> None:
        self.kit, self.rng = kit, rng
        self.watchers = [kit.start("watch", "-P", "q")]
        self.kills = self.by_printer = self.sending = 0
        self._armed: list[int] = []  # the pid the printer kills at its next job's end
        self._lock = threading.Lock()
        self._ended = threading.Event()  # a connection ended since it was cleared

    def job_ended(self) -> None:
        """The printer's thread, after a connection: the kill asked for, if any."""
        with self._lock:
            if self._armed:
                os.kill(self._armed.pop(), signal.SIGKILL)
            self._ended.set()

    def kill(self) -> None:
        """One kill and a new watcher. When no job comes any more (all printed), the kill
        happens after a bounded wait."""
        watcher = self.watchers[-1]
        assert watcher.popen.poll() is None, watcher.stderr()
        kind = self.rng.random()
        if kind < 0.2:  # while it starts, recovers, or finds its first jobs
            time.sleep(self.rng.uniform(0.0, 0.4))
        else:
            self._ended.clear()
            with self._lock:
                if kind < 0.6:
                    self._armed.append(watcher.pid)
            ended = self._ended.wait(10)
            with self._lock:
                self._armed.clear()
            if kind < 0.6:
                self.by_printer += ended
            else:  # a random instant of the sends that follow
                time.sleep(self.rng.uniform(0.0, 0.02))
                self.sending += ended
        sigkill(watcher)
        self.kills += 1
        self.watchers.append(self.kit.start("watch", "-P", "q"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"seed{c.seed}-{c.jobs}jobs"
                         + ("-resets" if c.resets else ""))
def test_sigkill_of_the_watcher_loses_no_job_and_flags_every_duplicate(
        kit: Kit, tmp_path: Path, case: Case) -> None:
    rng = random.Random(case.seed)
    behaviour = Behaviour(pages=1)
    chooser = random.Random(case.seed + 1)

    killer: list[Killer] = []

    def next_connection(_record: JobRecord) -> None:  # read afresh for the next connection
        cut = case.resets and chooser.random() < case.resets
        behaviour.reset_after = chooser.randrange(1, JOB_SIZE) if cut else None
        if killer:
            killer[0].job_ended()

    printed = tmp_path / "printed"
    printer = VirtualPrinter("127.0.0.1", 0, str(printed), behaviour, on_job=next_connection)
    with printer:
        host, port = printer.address
        # no limit on tries: a job in flight at a kill that the printer then resets twice
        # would otherwise fail after 3, and the test would wait for a "done" that never comes
        kit.queue("q", f"{host}%{port}", send_try=0)
        source = tmp_path / "in"
        source.mkdir()
        paths = [source / f"j{n:06d}.txt" for n in range(case.jobs)]
        for n, path in enumerate(paths):
            path.write_bytes(content(n))

        reported: dict[str, int] = {}
        errors: list[str] = []
        submitting = threading.Thread(target=submit_all, args=(kit, paths, reported, errors))
        killer.append(Killer(kit, rng))
        watchers = killer[0].watchers
        submitting.start()
        during_submission = 0
        deadline = time.monotonic() + 150
        try:
            while killer[0].kills < case.kills and time.monotonic() < deadline:
                if killer[0].kills == case.kills // 2:  # the other half once all is spooled
                    submitting.join(120)
                killer[0].kill()
                during_submission += submitting.is_alive()
        finally:
            submitting.join(180)
        kills = killer[0].kills
        assert not submitting.is_alive(), "the prints did not end"
        assert not errors, errors
        assert kills == case.kills, f"only {kills} kills before the deadline"
        assert len(reported) == case.jobs  # every file became its own job

        def done() -> int:
            assert watchers[-1].popen.poll() is None, watchers[-1].stderr()
            states = kit.states("q")
            return sum(states.get(job) == "done" for job in reported)

        try:  # alone ~10 s
            wait_printed(done, lambda: done() == len(reported))
        except AssertionError as exc:  # what was left, and what the watcher said
            left = {j: s for j, s in kit.states("q").items() if s != "done"}
            raise AssertionError(f"not done: {exc}; {len(left)} jobs left, e.g."
                                 f" {sorted(left.items())[:10]}; states"
                                 f" {Counter(left.values())}; the watcher said:\n"
                                 f"{watchers[-1].stderr()[-3000:]}\n"
                                 f"{_threads_of(watchers[-1].popen.pid)}") from None
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
    assert not left, f"data files of done jobs left in the spool: {left}"
    cut = sum(seen.values()) - sum(whole.values()) + unnamed
    flagged = sum(t["possible_duplicate"] for t in tickets.values())
    print(f"\n{case}: kills={kills} (during submission {during_submission},"
          f" by the printer {killer[0].by_printer}, while sending {killer[0].sending})"
          f" connections={sum(seen.values()) + unnamed} cut={cut}"
          f" printed-twice={len(doubled)} seen-again={len(again)} flagged={flagged}")


def test_a_kill_between_done_and_the_data_removal_leaves_no_data_for_ever(
        kit: Kit, tmp_path: Path) -> None:
    """The state a SIGKILL leaves between a ticket saying done and the removal of the job's
    data (the crash test above met it): the next watcher removes the data, unless the
    printcap keeps finished jobs' data (save_when_done); the job is not printed again.
    Without it the data stayed for ever: prune keeps every ticket whose data is there."""
    printed = tmp_path / "printed"
    with VirtualPrinter("127.0.0.1", 0, str(printed), Behaviour(pages=1)) as printer:
        host, port = printer.address
        kit.queue("q", f"{host}%{port}", write=False)
        kit.queue("keep", f"{host}%{port}", save_when_done=True)
        source = tmp_path / "job.txt"
        source.write_bytes(content(7))
        ids = {}
        for queue in ("q", "keep"):
            done = kit.run("print", "--no-wait", "-P", queue, str(source))
            assert done.returncode == 0, done.stderr
            (ids[queue],) = job_ids(done.stdout, queue)
            once = kit.run("watch", "--once", "-P", queue)
            assert once.returncode == 0, once.stderr
            assert kit.states(queue)[ids[queue]] == "done"
        left = kit.sd("q") / ".lpfilter" / "jobs" / f"{ids['q']}.data"
        assert not left.exists()
        left.write_bytes(content(7))  # as a kill just after the ticket said done leaves it
        left.chmod(0o600)
        for queue in ("q", "keep"):
            once = kit.run("watch", "--once", "-P", queue)
            assert once.returncode == 0 and "Traceback" not in once.stderr, once.stderr
        assert not left.exists(), "the data of a done job stayed after a restart"
        assert kit.states("q")[ids["q"]] == "done"
        kept = kit.sd("keep") / ".lpfilter" / "jobs" / f"{ids['keep']}.data"
        assert kept.read_bytes() == content(7)  # save_when_done: kept, as the printcap says
        assert len(list(printed.glob("job-*.prn"))) == 2  # printed once each, never again


# --- the hot folder -----------------------------------------------------------------------
@dataclass(frozen=True)
class HotCase:
    seed: int
    files: int
    kills: int


HOT_CASES = [HotCase(seed=1617, files=600, kills=12)]
#: The dropper: files of this user, renamed into a spool directory others may write.
DROPPER = pwd.getpwnam("nobody")


def drop(sd: Path, numbers: range) -> list[str]:
    """Files ``numbers`` dropped as an operator's tool does: each written (as the dropper)
    under a temporary name the hot folder skips, then all renamed in at once."""
    names = []
    for n in numbers:
        temporary = sd / f"j{n:06d}.txt.tmp"
        temporary.write_bytes(content(n))
        os.chown(temporary, DROPPER.pw_uid, DROPPER.pw_gid)
        names.append(temporary.name.removesuffix(".tmp"))
    for name in names:
        os.rename(sd / f"{name}.tmp", sd / name)
    return names


def unnamed_data(kit: Kit) -> list[str]:
    """The data files in jobs/ that no JOB record names (no watcher running)."""
    jobs = kit.sd("q") / ".lpfilter" / "jobs"
    named = set(kit.tickets("q"))
    return sorted(p.name for p in jobs.glob("*.data") if p.name[:-5] not in named)


class HotKiller(Killer):
    """Kills as ``Killer`` does, and one kind of its own: the moment a watcher has renamed
    some of a batch of hot-folder files into jobs/ but not yet recorded their jobs."""

    def __init__(self, kit: Kit, rng: random.Random) -> None:
        super().__init__(kit, rng)
        #: The data files no record named just after a kill (what the intents are for).
        self.orphaned: list[str] = []

    def while_taking(self, names: Callable[[], list[str]], then: Callable[[], list[str]],
                     ) -> None:
        """Kill the watcher, drop files (``names``) while none runs, start one and kill it
        as soon as it has taken the first of them (a batch is recorded only once all are
        renamed). Then a new watcher: once it has taken a file dropped after it started
        (``then``; a watcher recovers before it takes files), no data file is left that
        no record names."""
        sigkill(self.watchers[-1])
        self.kills += 1
        sd = self.kit.sd("q")
        dropped = set(names())
        self.watchers.append(self.kit.start("watch", "-P", "q"))
        wait_until(lambda: len(dropped & set(os.listdir(sd))) < len(dropped), timeout=30,
                   interval=0.0005, what="the watcher to take a dropped file")
        time.sleep(self.rng.uniform(0.0, 0.003))  # anywhere in the batch's renames
        sigkill(self.watchers[-1])
        self.kills += 1
        orphaned = unnamed_data(self.kit)
        self.orphaned += orphaned
        self.watchers.append(self.kit.start("watch", "-P", "q"))
        later = set(then())
        wait_until(lambda: later <= {t["name"] for t in self.kit.tickets("q").values()},
                   timeout=60, interval=0.02, what="the new watcher to take a file")
        left = sorted(set(orphaned) & set(unnamed_data(self.kit)))
        assert not left, f"the watcher's recovery left data files no record names: {left}"


@pytest.mark.parametrize("case", HOT_CASES, ids=lambda c: f"seed{c.seed}-{c.files}files")
def test_sigkill_of_the_watcher_taking_the_hot_folder_loses_no_file_and_no_name(
        kit: Kit, tmp_path: Path, case: HotCase) -> None:
    """The same promise for files dropped into the hot folder (by another user, into a
    spool directory others may write), the watcher SIGKILLed at random moments, some of
    them while it takes a batch in: every file printed whole at least once, byte-exact,
    as a job named after the file, of the user who dropped it (never ``recovered-N``, and
    without waiting out ORPHAN_AGE); every job seen twice flagged; nothing left behind."""
    rng = random.Random(case.seed)
    killer: list[HotKiller] = []

    def next_connection(_record: JobRecord) -> None:
        if killer:
            killer[0].job_ended()

    printed = tmp_path / "printed"
    with VirtualPrinter("127.0.0.1", 0, str(printed), Behaviour(pages=1),
                        on_job=next_connection) as printer:
        host, port = printer.address
        sd = kit.queue("q", f"{host}%{port}", send_try=0)
        sd.chmod(0o1733)  # others may drop files (sticky), not list them
        killer.append(HotKiller(kit, rng))
        watchers = killer[0].watchers
        taking = dropped = 0
        while killer[0].kills < case.kills:  # bursts of 1 to 2 batches (64 files each)
            numbers = range(dropped, min(dropped + rng.randint(16, 128), case.files - 1))
            dropped = numbers.stop
            if numbers and (taking < 3 or rng.random() < 0.5):  # killed while taking files
                killer[0].while_taking(lambda numbers=numbers: drop(sd, numbers),
                                       lambda n=dropped: drop(sd, range(n, n + 1)))
                dropped += 1
                taking += 1
            else:  # files renamed in under a running watcher; a kill as for print
                drop(sd, numbers)
                killer[0].kill()
        drop(sd, range(dropped, case.files))
        kills = killer[0].kills
        assert killer[0].orphaned, "no kill came between a rename into jobs/ and its record"

        def done() -> int:
            assert watchers[-1].popen.poll() is None, watchers[-1].stderr()
            return sum(t["state"] == "done" for t in kit.tickets("q").values())

        def finished() -> bool:
            tickets = kit.tickets("q")
            return (len(tickets) >= case.files
                    and all(t["state"] == "done" for t in tickets.values())
                    and not any(name.startswith("j") for name in os.listdir(sd)))

        # Within ORPHAN_AGE (60 s) of the last kill when intents work; a recovered-N job
        # (no intent) would only be taken after it, and fail the names below.
        wait_printed(done, finished)
        wait_served(kit, "q", watchers[-1])
        assert watchers[-1].stop(30) == 0, watchers[-1].stderr()
    for watcher in watchers:
        assert "Traceback" not in watcher.stderr(), watcher.stderr()

    tickets = kit.tickets("q")
    by_name = {t["name"]: t for t in tickets.values()}
    expected = {f"j{n:06d}.txt" for n in range(case.files)}
    assert sorted(set(by_name) - expected) == [], "jobs not named after their file"
    assert sorted(expected - set(by_name)) == [], "files that became no job"
    assert len(tickets) == case.files, "a file became two jobs"
    assert {t["user"] for t in tickets.values()} == {DROPPER.pw_name}
    assert {t["source"] for t in tickets.values()} == {"hotfolder"}
    whole: Counter[int] = Counter()
    seen: Counter[int] = Counter()
    for path in sorted(printed.glob("job-*.prn")):
        data = path.read_bytes()
        n = ident(data)
        if n is None:
            continue
        assert content(n).startswith(data), f"{path.name}: job {n}'s bytes differ"
        seen[n] += 1
        whole[n] += len(data) == JOB_SIZE
    missing = sorted(n for n in range(case.files) if not whole[n])
    assert not missing, f"{len(missing)} files never printed whole: {missing[:20]}"
    again = [f"j{n:06d}.txt" for n, count in seen.items() if count > 1]
    unflagged = [name for name in again if not by_name[name]["possible_duplicate"]]
    assert not unflagged, f"printed again but not flagged possible_duplicate: {unflagged}"
    assert sum(whole.values()) - len(whole) <= kills, "more whole reprints than kills"
    assert os.listdir(sd / ".lpfilter" / "tmp") == []
    assert list((sd / ".lpfilter" / "jobs").glob("*.data")) == []
    assert not any(name.startswith("j") for name in os.listdir(sd))
    print(f"\n{case}: kills={kills} (while taking files in {taking}, by the printer"
          f" {killer[0].by_printer}, while sending {killer[0].sending}) orphaned at a kill"
          f" {len(killer[0].orphaned)} printed-twice={sum(c > 1 for c in whole.values())}"
          f" seen-again={len(again)}")
