"""``cancel`` takes CUPS' words, ``lprm`` LPRng's: a queue's name is that queue's current
job (``cancel lp``), ``-a`` with it every job of that queue, a bare ``-a`` every job of
every queue, ``-u`` a user's jobs in every queue, and a number before a queue's name that
queue's job. As ``lprm`` each of those words stays a user's name and ``-a`` the first job
of each queue (tests/test_lprm_bare.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import localkit
import pytest
from test_lprm_bare import spool_as
from test_status_cancel import World, world  # noqa: F401 - world: a fixture


def many(world: World) -> None:
    """q: alice, bob, alice; r: bob, carol; lp-color (alias color): alice."""
    for queue, user in (("q", "alice"), ("q", "bob"), ("q", "alice"), ("r", "bob"),
                        ("r", "carol"), ("lp-color", "alice")):
        world.spool(queue, "-U", user)


def left(world: World) -> dict[str, list[str]]:
    return {queue: world.ids(queue) for queue in ("q", "r", "lp-color")}


def test_a_queue_named_is_its_current_job(world: World) -> None:
    many(world)
    assert world.cli("cancel", "r") == (0, "r-000001: cancelled\n", "")
    assert world.cli("cancel", "color", "q") == (
        0, "lp-color-000001: cancelled\nq-000001: cancelled\n", "")
    assert world.cli("cancel", "color") == (
        1, "", "lpfilter: no job in queue lp-color that you may cancel\n")
    assert left(world) == {"q": ["000002", "000003"], "r": ["000002"], "lp-color": []}


def test_a_with_a_queue_is_every_job_of_that_queue(world: World) -> None:
    many(world)
    assert world.cli("cancel", "-a", "q") == (
        0, "q-000001: cancelled\nq-000002: cancelled\nq-000003: cancelled\n", "")
    assert world.cli("cancel", "r", "-") == (
        0, "r-000001: cancelled\nr-000002: cancelled\n", "")
    assert left(world) == {"q": [], "r": [], "lp-color": ["000001"]}


def test_a_bare_a_is_every_job_of_every_queue(world: World) -> None:
    many(world)
    rc, out, err = world.cli("cancel", "-a")
    assert (rc, err) == (0, "")
    assert sorted(out.splitlines()) == sorted(
        ["q-000001: cancelled", "q-000002: cancelled", "q-000003: cancelled",
         "r-000001: cancelled", "r-000002: cancelled", "lp-color-000001: cancelled"])
    assert left(world) == {"q": [], "r": [], "lp-color": []}


def test_u_is_the_users_jobs_in_every_queue_unless_a_queue_is_named(world: World) -> None:
    many(world)
    assert world.cli("cancel", "-u", "bob", "r") == (0, "r-000001: cancelled\n", "")
    assert world.cli("cancel", "-u", "alice") == (
        0, "q-000001: cancelled\nq-000003: cancelled\nlp-color-000001: cancelled\n", "")
    assert world.cli("cancel", "-u", "carol", "-P", "q") == (
        1, "", "lpfilter: no job of user carol to cancel (a job id is written as print"
               " showed it, e.g. lp-000012)\n")
    assert left(world) == {"q": ["000002"], "r": ["000002"], "lp-color": []}


def test_a_number_before_a_queue_is_that_queues_job(world: World) -> None:
    many(world)
    assert world.cli("cancel", "2", "r", "3", "q") == (
        0, "r-000002: cancelled\nq-000003: cancelled\n", "")
    assert world.cli("cancel", "-P", "q", "r") == (
        2, "", "lpfilter: cancel: -P q and a queue's name (r) do not go together\n")
    assert left(world) == {"q": ["000001", "000002"], "r": ["000001"],
                           "lp-color": ["000001"]}


def test_a_queue_named_is_local_though_printer_names_another_servers(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """PRINTER=q@host is the default queue only: ``cancel r`` names the local queue r,
    so no other server is asked (here one that refuses: the old code failed, exit 1)."""
    import socket
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("PRINTER", f"q@127.0.0.1%{port}")
    many(world)
    assert world.cli("cancel", "r") == (0, "r-000001: cancelled\n", "")
    assert world.cli("cancel", "-a", "color") == (0, "lp-color-000001: cancelled\n", "")
    assert left(world) == {"q": ["000001", "000002", "000003"], "r": ["000002"],
                           "lp-color": []}


@pytest.mark.parametrize("argv", [["r"], ["-a", "r"], ["-a"], ["-u", "bob"]])
def test_lprm_keeps_lprngs_words(world: World, argv: list[str]) -> None:
    """lprm r: user r's jobs (none: said, with the hint); lprm -a: the first job of each
    queue; lprm -a r: user r's jobs in every queue; lprm -u bob: bob's of the first queue."""
    many(world)
    rc, out, err = world.cli("lprm", *argv)
    if argv == ["-a"]:
        assert (rc, sorted(out.splitlines()), err) == (0, [
            "lp-color-000001: cancelled", "q-000001: cancelled", "r-000001: cancelled"], "")
    elif argv == ["-u", "bob"]:
        assert (rc, out, err) == (0, "q-000002: cancelled\n", "")
    else:
        assert (rc, out) == (0, "") and "(r is a queue: -P r all takes its jobs)" in err


def test_the_installed_cancel_link_is_cups(world: World, tmp_path: Path) -> None:
    """A link named cancel to the installed script, as cups-bsd installs its programs."""
    many(world)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "cancel").symlink_to(Path(sys.executable).with_name("lpfilter"))
    done = subprocess.run([str(tmp_path / "bin" / "cancel"), "-a", "r"], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "r-000001: cancelled\nr-000002: cancelled\n", "")
    assert left(world) == {"q": ["000001", "000002", "000003"], "r": [],
                           "lp-color": ["000001"]}


def test_an_ordinary_users_cancel_a_queue_takes_their_own_jobs_only() -> None:
    """Through the print server (the spool is closed to the user): cancel q takes the
    user's first job, cancel -a q the rest of theirs; root's jobs stay."""
    with localkit.made_user() as user, localkit.world() as made:
        root_env = {"LPFILTER_PRINTCAP": str(made.printcap),
                    "LPFILTER_LOCK_DIR": str(made.root / "rootlocks")}
        spool_as(root_env, "q", "root")
        with localkit.local_server(made):
            for _ in range(3):
                done = user.run("print", "--no-wait", "-P", "q", str(made.doc), env=made.env())
                assert done.returncode == 0, done.stderr
            for argv, out in ((["q"], "q-000002: cancelled\n"),
                              (["-a", "q"], "q-000003: cancelled\nq-000004: cancelled\n")):
                done = user.run("cancel", *argv, env=made.env())
                assert (done.returncode, done.stdout, done.stderr) == (0, out, "")
        assert [(j.id, j.user) for j in made.store().jobs()] == [("000001", "root")]
