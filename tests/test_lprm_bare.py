"""A bare ``lprm`` (``cancel`` with no job named): the first job not finished that the user
may remove, as LPRng's lprm and lpd take it (root's, and the spool owner's, is anyone's;
an ordinary user's their own, through the print server); ``lprm -a``: that in each queue;
no such job: one line, exit status 1. ``hold``, ``release`` and ``requeue`` still want
their jobs named. To another server, no list is sent, as LPRng's lprm sends none."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from localkit import LocalUser, World, local_server, made_user, world
from lpdkit import need_lprng
from serverkit import lprng, send_job, start_server
from spoolkit import Kit, kit, wait_until  # noqa: F401 - fixture

from lpfilter.cli import main
from lpfilter.job import user_name
from lpfilter.protocols import lpdlocal


def spool_as(env: dict[str, str], queue: str, *users: str) -> None:
    """A job of each user (print -U, as root), spooled only."""
    doc = Path(env["LPFILTER_LOCK_DIR"]).parent / "page.txt"
    doc.write_text("a page\n")
    for user in users:
        assert main(["print", "--no-wait", "-U", user, "-P", queue, str(doc)], env) == 0


@pytest.fixture
def two(kit: Kit) -> dict[str, str]:
    """Queues q and r, no watcher; the environment of in-process commands."""
    kit.queue("q", "/dev/null")
    kit.queue("r", "/dev/null")
    return dict(kit.env)


def test_a_bare_lprm_by_root_removes_the_first_job_whoever_it_is(
        two: dict[str, str], kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:
    spool_as(two, "q", "alice", "bob")
    capsys.readouterr()
    assert main(["lprm", "-P", "q"], two) == 0
    assert capsys.readouterr() == ("q-000001: cancelled\n", "")
    assert main(["cancel", "-P", "q"], two) == 0
    assert capsys.readouterr().out == "q-000002: cancelled\n"
    assert main(["lprm", "-P", "q"], two) == 0  # (as LPRng's lprm; cancel says 1)
    assert capsys.readouterr() == ("", "lpfilter: no job in queue q that you may cancel\n")
    assert main(["cancel", "-P", "q"], two) == 1
    assert capsys.readouterr() == ("", "lpfilter: no job in queue q that you may cancel\n")
    assert kit.states("q") == {}  # a cancelled job leaves the queue


def test_a_bare_lprm_a_removes_the_first_job_of_each_queue(
        two: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    spool_as(two, "q", "alice", "bob")
    spool_as(two, "r", "carol")
    capsys.readouterr()
    assert main(["lprm", "-a"], two) == 0
    assert sorted(capsys.readouterr().out.splitlines()) == ["q-000001: cancelled",
                                                             "r-000001: cancelled"]
    assert main(["lprm", "-a"], two) == 0
    assert capsys.readouterr().out == "q-000002: cancelled\n"
    assert main(["lprm", "-a"], two) == 0  # (as LPRng's lprm)
    assert capsys.readouterr().err == "lpfilter: no job in any queue that you may cancel\n"


@pytest.mark.parametrize("action", ["hold", "release", "requeue"])
def test_the_other_job_commands_still_want_their_jobs_named(
        two: dict[str, str], capsys: pytest.CaptureFixture[str], action: str) -> None:
    spool_as(two, "q", "alice")
    assert main([action, "-P", "q"], two) == 2
    assert f"{action}: name the jobs" in capsys.readouterr().err


def test_the_local_request_carries_first() -> None:
    line = lpdlocal.control_request("q", "carol", "cancel", first=True)
    assert line == b"\x06q carol cancel first\n"
    request = lpdlocal.parse_control(line)
    assert request.first and not request.every and not request.named


@pytest.fixture
def setting() -> Iterator[tuple[World, LocalUser]]:
    with made_user() as user, world() as made:
        yield made, user


def test_an_ordinary_users_bare_lprm_removes_their_own_first_job(
        setting: tuple[World, LocalUser]) -> None:
    """Through the print server: root's job 1 stays, the user's 2 and then 3 go."""
    made, user = setting
    root_env = {"LPFILTER_PRINTCAP": str(made.printcap),
                "LPFILTER_LOCK_DIR": str(made.root / "rootlocks")}
    spool_as(root_env, "q", "root")
    with local_server(made):
        for _ in range(2):
            done = user.run("print", "--no-wait", "-P", "q", str(made.doc), env=made.env())
            assert done.returncode == 0, done.stderr
        for job in ("000002", "000003"):
            done = user.run("lprm", "-P", "q", env=made.env())
            assert (done.returncode, done.stdout, done.stderr) == (
                0, f"q-{job}: cancelled\n", "")
        done = user.run("lprm", "-P", "q", env=made.env())
        assert (done.returncode, done.stderr) == (  # (0: as LPRng's lprm)
            0, "lpfilter: no job in queue q that you may cancel\n")
    assert [(j.id, j.user) for j in made.store().jobs()] == [("000001", "root")]


def test_a_bare_cancel_of_a_remote_queue_sends_no_list(kit: Kit) -> None:
    """lpfilter's server takes an empty list as LPRng's lpd does: the agent's first job
    (from the agent's address) goes, the second stays."""
    kit.queue("q", kit.recorder())
    (kit.out / "hang").touch()  # the printer hangs: the jobs stay in the queue
    server = start_server(kit)
    me = user_name(os.getuid())
    for number in (1, 2):
        send_job(server.port, b"page\n", user=me, number=number)
    wait_until(lambda: len(kit.tickets("q")) == 2, what="two jobs received")
    done = kit.run("cancel", "-P", server.queue())
    assert done.returncode == 0, done.stderr
    assert "dequeued" in done.stdout and done.stdout.count("dequeued") == 1, done.stdout
    wait_until(lambda: list(kit.states("q").values()).count("cancelled") == 1,
               what="one job cancelled")
    assert kit.states("q")["000001"] == "cancelled"


def test_lprngs_bare_lprm_and_lpfilters_agree(kit: Kit) -> None:
    """LPRng's own lprm with no job named, against lpfilter's server: one job, the first."""
    need_lprng()
    kit.queue("q", kit.recorder())
    (kit.out / "hang").touch()
    server = start_server(kit)
    for number in (1, 2, 3):
        send_job(server.port, b"page\n", user="root", number=number)
    wait_until(lambda: len(kit.tickets("q")) == 3, what="three jobs received")
    out = lprng(kit.root, "lprm", "-P", server.queue())
    assert out.returncode == 0, out
    wait_until(lambda: list(kit.states("q").values()).count("cancelled") == 1,
               what="one job cancelled")
    assert kit.states("q")["000001"] == "cancelled"
