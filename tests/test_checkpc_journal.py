"""``checkpc`` and the queues' journals (issue 16, item 2): a damaged journal, one over
3/4 of its limit, ticket files not yet taken in, an unsafe journal or lock, one line each;
``checkpc --fix`` mends a damaged journal, keeping the jobs its good records name."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from serverkit import printed, send_job, start_server
from spoolkit import Kit, journal_path, kit, wait_until  # noqa: F401 - the fixture
from test_journal_admin import read_only_view
from test_journal_refusals import MOVE_ASIDE, damage

from lpfilter.cli import main
from lpfilter.spool import journallimit
from lpfilter.spool.journalformat import JOURNAL_MAX
from lpfilter.status import ExitStatus


def _queue(kit: Kit, jobs: int = 3) -> Path:
    sd = kit.queue("lp", "/dev/null", accounting=False)
    for _ in range(jobs):
        assert kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap)).returncode == 0
    return sd


def _ids(stdout: str) -> list[str]:
    return [line.removeprefix("lp-") for line in stdout.split()]


def test_checkpc_names_a_damaged_journal_and_changes_nothing(kit: Kit) -> None:
    sd = _queue(kit)
    at = damage(sd)
    before = journal_path(sd).read_bytes()
    done = kit.run("checkpc")
    assert done.returncode == ExitStatus.FAILURE, done.stderr
    assert done.stdout == (
        f"{kit.printcap}:1: queue lp: {journal_path(sd)}: damaged at offset {at} (73 bytes"
        " that are no records, followed by good records); nothing was changed: restore it,"
        f" or move it aside {MOVE_ASIDE}; or run 'lpfilter checkpc --fix' (it keeps the jobs"
        " its good records name)\n")
    assert "Traceback" not in done.stderr
    assert journal_path(sd).read_bytes() == before
    assert sorted(os.listdir(sd / ".lpfilter")) == ["jobs", "journal", "journal.lock",
                                                     "refused", "tmp"]


def test_checkpc_fix_keeps_the_jobs_before_the_damage_and_numbers_go_on(kit: Kit) -> None:
    """The damaged file kept aside (a name already taken is never overwritten), a new
    journal of the three queued jobs; the number the records after the damage reserved
    (7) and a data file no record names (000020) are not given again; the data file
    comes back as a job when the watcher recovers orphans."""
    sd = _queue(kit)
    damage(sd)  # good records after the damage: a RESERVE of 7
    damaged = journal_path(sd).read_bytes()
    (sd / ".lpfilter" / "jobs" / "000020.data").write_text("orphan\n")
    now = int(time.time())
    taken = [journal_path(sd).with_name("journal.damaged-" + time.strftime(
        "%Y%m%dT%H%M%SZ", time.gmtime(t))) for t in range(now - 1, now + 30)]
    for path in taken:
        path.write_text("an earlier one\n")
    done = kit.run("checkpc", "--fix")
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = done.stdout.splitlines()
    prefix = f"{kit.printcap}:1: queue lp: the damaged journal {journal_path(sd)} moved aside to "
    assert line.startswith(prefix), line
    aside = Path(line.removeprefix(prefix).split(";")[0])
    assert aside.name.startswith("journal.damaged-") and aside.name.endswith("Z-2"), line
    assert line.endswith(
        "; a new journal keeps the 3 jobs its good records name (before and after the damage),"
        " 0 of them flagged as possible duplicates (job numbers go on after 20); 1 data files"
        " in jobs/ no record names come back as recovered-N jobs (the"
        " watcher takes them in once a minute old)"), line
    assert aside.read_bytes() == damaged
    assert all(path.read_text() == "an earlier one\n" for path in taken)
    info = journal_path(sd).stat()
    assert (info.st_uid, info.st_nlink, info.st_mode & 0o777) == (os.getuid(), 1, 0o600)
    assert {i: t["state"] for i, t in kit.tickets("lp").items()} == {
        "000001": "queued", "000002": "queued", "000003": "queued"}
    assert kit.run("checkpc").returncode == 0
    run = kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap))
    assert _ids(run.stdout) == ["000021"], run.stderr
    assert kit.run("watch", "--once", "-P", "lp").returncode == 0
    assert set(kit.states("lp").values()) == {"done"}


def test_checkpc_fix_numbers_after_the_records_beyond_the_damage(kit: Kit) -> None:
    sd = _queue(kit)
    damage(sd)  # a RESERVE of 7 after the damage: 4 to 7 may have been given out
    assert kit.run("checkpc", "--fix").returncode == 0
    run = kit.run("print", "--no-wait", "-P", "lp", str(kit.printcap))
    assert _ids(run.stdout) == ["000008"], run.stderr


def test_checkpc_fix_lets_a_running_daemon_serve_the_queue_again(kit: Kit) -> None:
    """The daemon gave the queue up on the damage; --fix puts the new journal in place
    (a rename into the state folder): the daemon serves the queue again at once."""
    sd = kit.queue("q", kit.recorder())
    server = start_server(kit)
    send_job(server.port, b"before\n")
    assert printed(kit) == [b"before\n"]
    wait_until(lambda: list(kit.states("q").values()) == ["done"], what="the job recorded")
    damage(sd)
    wait_until(lambda: "not served until then" in server.proc.stderr(), what="the give-up")
    assert kit.run("checkpc", "--fix").returncode == 0
    wait_until(lambda: "can be used again" in server.proc.stderr(), timeout=15,
               what="the queue served again")
    send_job(server.port, b"after\n", number=2)
    assert sorted(printed(kit, count=2)) == [b"after\n", b"before\n"]
    assert server.proc.stop() == 0


def test_checkpc_refuses_an_unsafe_lock_and_fix_leaves_it(kit: Kit, tmp_path: Path) -> None:
    sd = _queue(kit, jobs=1)
    lock = sd / ".lpfilter" / "journal.lock"
    victim = tmp_path / "victim"
    victim.write_text("root's\n")
    lock.unlink()
    lock.symlink_to(victim)
    for args in (["checkpc"], ["checkpc", "--fix"]):
        done = kit.run(*args)
        assert done.returncode == ExitStatus.FAILURE, done.stderr
        assert done.stdout == (
            f"{kit.printcap}:1: queue lp: {lock}: a symbolic link (never followed); not used"
            " (the queue is refused): remove it (lpfilter makes a new one; the data files"
            " in jobs/ no record names are taken in again as jobs)\n")
    assert lock.is_symlink() and victim.read_text() == "root's\n"


def test_checkpc_names_a_journal_over_three_quarters_of_its_limit(
        kit: Kit, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    sd = _queue(kit)
    size = journal_path(sd).stat().st_size
    monkeypatch.setattr(journallimit, "LIMIT", size * 4 // 3 - 1)
    assert main(["--printcap", str(kit.printcap), "checkpc"]) == ExitStatus.FAILURE
    assert capsys.readouterr().out == (
        f"{kit.printcap}:1: queue lp: the journal {journal_path(sd)} is {size} bytes, over 3/4"
        f" of its limit ({journallimit.LIMIT}): new jobs are refused when it is full; remove"
        " finished or unwanted jobs (lpfilter cancel, or lower done_jobs)\n")
    monkeypatch.setattr(journallimit, "LIMIT", size * 4 // 3 + 4)
    assert main(["--printcap", str(kit.printcap), "checkpc"]) == 0


def test_checkpc_notes_ticket_files_not_yet_taken_in(kit: Kit) -> None:
    sd = kit.queue("lp", "/dev/null", accounting=False)
    for sub in ("", "jobs", "tmp", "refused"):
        (sd / ".lpfilter" / sub).mkdir(mode=0o700, exist_ok=True)
    (sd / ".lpfilter" / "seq").write_text("41")
    done = kit.run("checkpc")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"{kit.printcap}:1: note: queue lp: the spool {sd} still has ticket files of an older"
        " lpfilter, not yet taken into its journal; the next print, watch or status run by"
        " its owner (or root) takes them in\n")
    assert (sd / ".lpfilter" / "seq").exists()  # checkpc takes nothing in


def test_checkpc_on_a_journal_too_big_says_so_never_70(kit: Kit) -> None:
    sd = _queue(kit, jobs=1)
    os.truncate(journal_path(sd), JOURNAL_MAX + 1)
    done = kit.run("checkpc")
    assert done.returncode == ExitStatus.FAILURE, done.stderr
    assert f"queue lp: {journal_path(sd)}: {JOURNAL_MAX + 1} bytes, more than" in done.stdout
    fixed = kit.run("checkpc", "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "keeps the 1 jobs its good records name" in fixed.stdout
    assert list(kit.tickets("lp")) == ["000001"]


def test_checkpc_fix_that_cannot_write_says_the_damage_and_why(kit: Kit, tmp_path: Path) -> None:
    """A damaged journal seen through a read-only view: the damage line, and why it was not
    mended (it said nothing of the damage once --fix was given and could not write)."""
    sd = _queue(kit)
    at = damage(sd)
    view = tmp_path / "view"
    view.mkdir()
    with read_only_view(sd, view):
        kit.queues["lp"] = kit.queues["lp"].replace(f"sd={sd}", f"sd={view}")
        kit.write_printcap()
        done = kit.run("checkpc", "--fix")
    assert done.returncode == ExitStatus.FAILURE, done.stderr
    assert f"{journal_path(view)}: damaged at offset {at}" in done.stdout, done.stdout
    assert done.stdout.endswith("; not mended: Read-only file system\n"), done.stdout
    assert sorted(os.listdir(sd / ".lpfilter")) == ["jobs", "journal", "journal.lock",
                                                     "refused", "tmp"]
