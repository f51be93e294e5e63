"""CUPS's ``lpstat`` over lpfilter's queues (``lpfilter lpstat``): CUPS's lines, in the
order of the options, from the queues' own spools (or the print server's view for an
ordinary user); lpc's state as CUPS's printer states; a queue no printcap names is one
line before anything is shown. In-process on real spools, a real watcher printing, the
installed command, and an ordinary user through the print server."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from localkit import local_server, made_user, world
from spoolkit import Kit, kit, wait_until  # noqa: F401 - kit: a fixture

from lpfilter.cli import main
from lpfilter.job import user_name
from lpfilter.spool.store import SpoolStore


def spool_as(env: dict[str, str], queue: str, *users: str, wait: bool = False) -> None:
    """A 7-byte job of each user (print -U, as root); printed at once with ``wait``."""
    doc = Path(env["LPFILTER_LOCK_DIR"]).parent / "page.txt"
    doc.write_text("a page\n")
    for user in users:
        no_wait = [] if wait else ["--no-wait"]
        assert main(["print", *no_wait, "-U", user, "-P", queue, str(doc)], env) == 0


def line(ident: str, user: str, size: int, when: float) -> str:
    """A job as CUPS's lpstat writes it."""
    return f"{ident:<23} {user:<13} {size:8d}   {time.strftime('%c', time.localtime(when))}"


def submitted(sd: Path, queue: str) -> dict[str, float]:
    store = SpoolStore(str(sd), queue)
    try:
        return {job.id: job.submitted for job in store.jobs()}
    finally:
        store.close()


@pytest.fixture
def two(kit: Kit) -> dict[str, str]:  # noqa: F811
    """Queues q and r (lp=/dev/null), no watcher; the environment of in-process commands."""
    kit.queue("q", "/dev/null")
    kit.queue("r", "/dev/null")
    return dict(kit.env)


def test_jobs_are_listed_as_cups_lists_them(
        kit: Kit, two: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    spool_as(two, "q", "alice", "bob")
    spool_as(two, "r", "alice")
    capsys.readouterr()
    at_q, at_r = submitted(kit.sd("q"), "q"), submitted(kit.sd("r"), "r")
    q1, q2 = line("q-000001", "alice", 7, at_q["000001"]), line("q-000002", "bob", 7,
                                                               at_q["000002"])
    r1 = line("r-000001", "alice", 7, at_r["000001"])
    for argv, shown in ((["-o"], [q1, q2, r1]), (["-o", "r"], [r1]), (["r"], [r1]),
                        (["-oq"], [q1, q2]), (["-o", "q,r"], [q1, q2, r1]),
                        (["-u", "alice"], [q1, r1]), (["-u", "BOB,carol"], [q2]),
                        (["-o", "all"], [q1, q2, r1])):
        assert main(["lpstat", *argv], two) == 0
        assert capsys.readouterr() == ("".join(f"{each}\n" for each in shown), ""), argv
    assert main(["lpstat", "-R", "-o", "q"], two) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"  0 {'q-000001':<21} {'alice':<13} {7:8d} " + q1[-24:],
                   f"  1 {'q-000002':<21} {'bob':<13} {7:8d} " + q2[-24:]]
    assert main(["lpstat"], two) == 0  # no report: the caller's own jobs (root has none)
    assert capsys.readouterr() == ("", "")
    assert main(["lpstat", "-U", "bob"], two) == 0
    assert capsys.readouterr().out == f"{q2}\n"
    spool_as(two, "q", user_name(os.getuid()))
    capsys.readouterr()
    assert main(["lpstat"], two) == 0
    assert capsys.readouterr().out.startswith(f"q-000003                {user_name(os.getuid())}")


def test_W_picks_completed_jobs_dated_when_they_ended(
        kit: Kit, two: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    spool_as(two, "q", "alice", wait=True)  # printed to /dev/null: done
    spool_as(two, "q", "bob")
    capsys.readouterr()
    store = SpoolStore(str(kit.sd("q")), "q")
    try:
        done, queued = store.jobs()
    finally:
        store.close()
    assert done.finished is not None and queued.finished is None
    printed = line("q-000001", "alice", 7, done.finished)
    waiting = line("q-000002", "bob", 7, queued.submitted)
    for which, shown in (("not-completed", [waiting]), ("completed", [printed]),
                         ("all", [line("q-000001", "alice", 7, done.submitted), waiting])):
        assert main(["lpstat", "-W", which, "-o", "q"], two) == 0
        assert capsys.readouterr().out == "".join(f"{each}\n" for each in shown), which
    assert main(["lpstat", "-o", "q"], two) == 0  # not-completed by default
    assert capsys.readouterr().out == f"{waiting}\n"
    assert main(["lpstat", "-R", "-o", "q"], two) == 0  # the jobs -W picks are ranked
    assert capsys.readouterr().out.startswith("  0 q-000002 ")


def control_since(sd: Path) -> str:
    """The date lpstat gives a queue lpc changed last."""
    mtime = (sd / ".lpfilter" / "control").stat().st_mtime
    return time.strftime("%c", time.localtime(mtime))


def test_lpc_states_are_cups_printer_states(
        kit: Kit, two: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    for argv in (["lpc", "stop", "q"], ["lpc", "disable", "r"], ["lpc", "holdall", "r"]):
        assert main(argv, two) == 0
    capsys.readouterr()
    q_since, r_since = control_since(kit.sd("q")), control_since(kit.sd("r"))
    assert main(["lpstat", "-p", "-a"], two) == 0  # in the order given
    assert capsys.readouterr() == (
        f"printer q disabled since {q_since} -\n"
        "\tprinting stopped by lpc stop ('lpfilter start q' starts it)\n"
        f"printer r is holding new jobs.  enabled since {r_since}\n"
        f"q accepting requests since {q_since}\n"
        f"r not accepting requests since {r_since} -\n"
        "\tspooling disabled by lpc disable ('lpfilter enable r' takes jobs again)\n", "")
    assert main(["lpstat", "-a", "r", "-p", "r"], two) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("r not accepting requests")
    for argv in (["lpc", "start", "q"], ["lpc", "noholdall", "r"]):
        assert main(argv, two) == 0
    capsys.readouterr()
    assert main(["lpstat", "-p"], two) == 0
    assert capsys.readouterr().out == (
        f"printer q is idle.  enabled since {control_since(kit.sd('q'))}\n"
        f"printer r is idle.  enabled since {control_since(kit.sd('r'))}\n")


def test_devices_classes_the_default_and_the_names(
        kit: Kit, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    kit.queue("laser", "10.0.0.9%9100", cm="Second floor")
    kit.queue("fwd", "raw@printhost%5515")
    kit.queue("lpd", "raw@printhost")
    kit.queue("ftp", "ftp\\://printer\\:s3cret@[\\:\\:1]\\:2121/incoming")
    kit.queue("dev", "/dev/null")
    kit.queue("tee", "|/usr/bin/tee -a /tmp/x")
    kit.queue("pool", "/dev/null", sv="laser,dev")
    env = dict(kit.env)
    assert main(["lpstat", "-v", "-c", "-e"], env) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (
        "device for laser: socket://10.0.0.9:9100\n"
        "device for fwd: lpd://printhost:5515/raw\n"
        "device for lpd: lpd://printhost/raw\n"
        "device for ftp: ftp://printer:***@[::1]:2121/incoming\n"
        "device for dev: /dev/null\n"
        "device for tee: |/usr/bin/tee -a /tmp/x\n"
        "device for pool: pool of laser, dev\n"
        "members of class pool:\n\tlaser\n\tdev\n"
        "laser\nfwd\nlpd\nftp\ndev\ntee\npool\n", "")
    assert "s3cret" not in out
    assert main(["lpstat", "-d"], env) == 0
    assert capsys.readouterr().out == "system default destination: laser\n"
    assert main(["lpstat", "-d"], {**env, "PRINTER": "dev", "LPDEST": "ftp"}) == 0
    assert capsys.readouterr().out == "system default destination: ftp\n"  # CUPS's order
    assert main(["lpstat", "-d"], {**env, "PRINTER": "gone"}) == 0
    assert capsys.readouterr().out == ("lpstat: error - PRINTER environment variable names"
                                       " non-existent destination \"gone\".\n")
    assert main(["lpstat", "-l", "-p", "laser"], env) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["\tDescription: Second floor"]


def test_a_queue_without_its_spool_directory_neither_prints_nor_accepts(
        kit: Kit, two: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """A client's forwarding entry whose spool was never made (checkpc --fix makes it):
    said on both reports and on standard error, exit 5 as status's; r is shown as it is."""
    kit.queues["lp"] = f"lp:rm=printhost:rp=raw:sd={kit.root / 'never-made'}"
    kit.write_printcap()
    assert main(["lpstat", "-p", "lp,r", "-a", "lp"], two) == 5
    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[0].startswith("printer lp disabled since ") and rows[0].endswith(" -")
    assert rows[1].startswith("\tqueue lp: spool directory ") and "checkpc --fix" in rows[1]
    assert rows[2].startswith("printer r is idle.  enabled since ")
    assert rows[3].startswith("lp not accepting requests since ") and rows[4] == rows[1]
    assert err.count("lpfilter: queue lp: spool directory") == 1, err


@pytest.mark.parametrize(("argv", "status", "said"), [
    (["-o", "q,nosuch"], 4, "no printer named 'nosuch'"),
    (["-d", "-p", "nosuch"], 4, "no printer named 'nosuch'"),
    (["-o", "q@printhost"], 4, "'lpfilter status -P q@printhost' shows another server's"),
    (["-h", "server:631"], 2, "lpstat -h: not supported"),
    (["-E"], 2, "lpstat -E: not supported"), (["-H"], 2, "lpstat -H: not supported"),
    (["-W", "soon"], 2, "invalid choice: 'soon'")])
def test_a_bad_line_is_one_line_and_nothing_shown(
        two: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str],
        status: int, said: str) -> None:
    assert main(["lpstat", *argv], two) == status
    out, err = capsys.readouterr()
    assert out == "" and said in err and "Traceback" not in err, err


def test_a_running_watcher_is_the_scheduler_and_its_job_is_printing(kit: Kit) -> None:  # noqa: F811
    """The installed command: a real watcher, a printer program that takes the job's first
    bytes and hangs, so the job stays active while lpstat looks."""
    kit.queue("q", kit.recorder())
    (kit.out / "hang").touch()
    (kit.root / "doc.txt").write_text("a page\n")
    done = kit.run("lpstat", "-r")
    assert (done.returncode, done.stdout) == (0, "scheduler is not running\n"), done.stderr
    watcher = kit.start("watch", "-P", "q")
    assert kit.run("print", "--no-wait", "-P", "q", "doc.txt").returncode == 0
    wait_until(lambda: (kit.out / "q-000001.ready").exists(), timeout=30)
    done = kit.run("lpstat", "-t", "-l")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["scheduler is running", "system default destination: q"]
    assert lines[2].startswith("device for q: |")
    assert lines[3].startswith("q accepting requests since ")
    assert lines[4].startswith("printer q now printing q-000001.  enabled since ")
    assert lines[5] == "\tDescription: "
    assert lines[6].startswith("q-000001                root                 7   ")
    assert lines[7].startswith("\tStatus: sending: ")
    assert lines[8:] == ["\tAlerts: job-printing", "\tqueued for q"]
    assert watcher.stop() == 0


def test_an_ordinary_user_sees_a_closed_spool_through_the_print_server() -> None:
    """The spool is root's (0700): the user's lpstat asks the print server, as status does;
    with none running it says why (exit 5), and still shows what it can."""
    with made_user() as user, world() as made:
        root_env = {"LPFILTER_PRINTCAP": str(made.printcap),
                    "LPFILTER_LOCK_DIR": str(made.root / "rootlocks")}
        spool_as(root_env, "q", "root")
        when = submitted(made.sd, "q")["000001"]
        done = user.run("lpstat", "-d", "-o", "q", "-p", "q", env=made.env())
        assert done.returncode == 5, done.stderr
        assert done.stdout.splitlines()[:2] == ["system default destination: q",
                                                "printer q unknown state -"]
        assert "lpfilter: " in done.stderr and "Traceback" not in done.stderr, done.stderr
        with local_server(made):
            done = user.run("lpstat", "-o", "q", env=made.env())
        assert (done.returncode, done.stdout, done.stderr) == (
            0, line("q-000001", "root", 7, when) + "\n", "")
