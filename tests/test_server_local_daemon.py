"""An ordinary user (made with useradd) against a real ``lpfilter watch`` run as root, whose
spool the user cannot write: the installed lpfilter, as that user, prints (the job is
printed, under the user's name from the kernel), sees status, cannot cancel root's job,
cancels their own; a forged user name in a control file does not count; once the daemon
is gone, one line says so."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from localkit import LocalUser, made_user
from serverkit import printed
from spoolkit import Kit, kit_at, wait_served, wait_until


@pytest.fixture
def daemon_world() -> Iterator[tuple[Kit, LocalUser, dict[str, str]]]:
    with made_user() as user:
        root = Path(tempfile.mkdtemp(prefix="lpfilter-localdaemon-"))
        root.chmod(0o755)  # the user reaches the printcap, the document and the socket
        try:
            with kit_at(root) as kit:
                kit.queue("q", kit.recorder())
                kit.printcap.chmod(0o644)
                (root / "run").mkdir(mode=0o700)  # as the lock directory is made
                kit.env["LPFILTER_SOCKET"] = str(root / "run" / "lpfilter.sock")
                doc = root / "doc.txt"
                doc.write_text("the user's page\n")
                doc.chmod(0o644)
                env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
                       "LPFILTER_PRINTCAP": str(kit.printcap), "LPFILTER_NO_CACHE": "1",
                       "LPFILTER_SOCKET": kit.env["LPFILTER_SOCKET"]}
                yield kit, user, env
        finally:
            shutil.rmtree(root)


def test_a_user_prints_and_cancels_through_a_real_daemon(
        daemon_world: tuple[Kit, LocalUser, dict[str, str]]) -> None:
    kit, user, env = daemon_world
    doc = str(kit.root / "doc.txt")
    assert kit.run("print", "--hold", "-P", "q", doc).stdout == "q-000001\n"  # root's
    daemon = kit.start("watch")
    wait_served(kit, "q", daemon)
    wait_until(lambda: (kit.root / "run" / "lpfilter.sock").exists(), what="the socket")

    done = user.run("print", "-P", "q", doc, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "q-000002\n", "")
    assert printed(kit, "q", 1) == [b"the user's page\n"]
    wait_until(lambda: kit.states("q").get("000002") == "done", what="job 2 done")
    assert kit.ticket("q", "000002")["user"] == user.name

    done = user.run("status", "-P", "q", env=env)
    assert done.returncode == 0, done.stderr
    assert f"served by pid {daemon.pid}" in done.stdout
    assert "  000001   root" in done.stdout and f"  000002   {user.name}" in done.stdout

    done = user.run("cancel", "q-000001", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (
        5, "", "lpfilter: q-000001: not your job (root's)\n")
    assert kit.states("q")["000001"] == "held"

    done = user.run("print", "--hold", "-P", "q", "-J", "later", doc, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "q-000003\n", "")
    assert kit.states("q")["000003"] == "held"  # held as it was queued: never printed
    done = user.run("cancel", "-P", "q", "3", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "q-000003: cancelled\n", "")
    assert "000003" not in kit.states("q") and len(list(kit.out.glob("q-*.out"))) == 1

    (kit.out / "hang").touch()  # the printer takes a little of the next job and hangs
    done = user.run("print", "-P", "q", "-J", "mine", env=env, stdin=b"held page\n" * 1000)
    assert (done.returncode, done.stdout) == (0, "q-000004\n"), done.stderr
    wait_until(lambda: (kit.out / "q-000004.ready").exists(), what="job 4 being printed")
    done = user.run("print", "-P", "q", doc, env=env)
    assert (done.returncode, done.stdout) == (0, "q-000005\n"), done.stderr
    done = user.run("cancel", "-P", "q", "5", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "q-000005: cancelled\n", "")
    done = user.run("cancel", "q-4", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "q-000004: being printed: its worker stops it and removes it\n", "")
    wait_until(lambda: kit.states("q").get("000004") in (None, "cancelled"),
               what="job 4 stopped")
    assert "000005" not in kit.states("q")
    assert kit.states("q")["000001"] == "held"

    assert daemon.stop() == 0
    done = user.run("status", "-P", "q", env=env)
    assert done.returncode == 5 and len(done.stderr.splitlines()) == 1, done.stderr
    assert (f"no print server answers on {env['LPFILTER_SOCKET']}" in done.stderr
            and "start one with 'lpfilter watch'" in done.stderr)


def test_a_forged_user_in_the_control_file_gets_the_kernels_name(
        daemon_world: tuple[Kit, LocalUser, dict[str, str]]) -> None:
    kit, user, env = daemon_world
    daemon = kit.start("watch")
    wait_served(kit, "q", daemon)
    wait_until(lambda: (kit.root / "run" / "lpfilter.sock").exists(), what="the socket")
    script = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "def step(data):\n"
        "    s.sendall(data); assert s.recv(1) == b'\\0', data\n"
        "cf = b'Hlocalhost\\nProot\\nJforged\\nLroot\\nfdfA001localhost\\nNforged\\n'\n"
        "step(b'\\x02q\\n'); step(b'\\x02%d cfA001localhost\\n' % len(cf)); step(cf + b'\\0')\n"
        "step(b'\\x036 dfA001localhost\\n'); step(b'forged\\0'); s.close()\n")
    done = user.python("-c", script, env["LPFILTER_SOCKET"], env=env)
    assert done.returncode == 0, done.stderr
    assert printed(kit, "q", 1) == [b"forged"]
    [ticket] = kit.tickets("q").values()
    assert (ticket["user"], ticket["name"]) == (user.name, "forged")
    # print --wait: the daemon's answer about the job, until it has printed
    done = user.run("print", "--wait", "-P", "q", "-J", "waited", env=env, stdin=b"waited\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "q-000002\n", "")
    assert kit.states("q")["000002"] == "done"
    assert daemon.stop() == 0


def test_print_wait_through_the_daemon_exits_as_the_owners_would(
        daemon_world: tuple[Kit, LocalUser, dict[str, str]]) -> None:
    """A printer that refuses the job (its program exits 2): print --wait says so in one
    line and exits 6, as when the spool's owner prints and waits."""
    kit, user, env = daemon_world
    bad = kit.program("bad.sh", "#!/bin/sh\ncat >/dev/null\nexit 2\n")
    kit.queue("bad", f"|{bad}", accounting=False)
    kit.printcap.chmod(0o644)
    daemon = kit.start("watch")
    wait_served(kit, "bad", daemon)
    wait_until(lambda: (kit.root / "run" / "lpfilter.sock").exists(), what="the socket")
    done = user.run("print", "--wait", "-P", "bad", env=env, stdin=b"refused\n")
    assert (done.returncode, done.stdout) == (6, "bad-000001\n"), done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("lpfilter: bad-000001: failed: ") and "bad.sh exited 2" in line
    assert daemon.stop() == 0
