"""Issue 11 item 8: an ordinary user meets a spool directory that is not theirs. Each
command says so in one line naming the spool directory, with exit status 5 (ACCESS),
never an internal error (70): status on a spool they cannot read, the job commands and
print on one they cannot write. Run as a real user (uid 65534) in a child process."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lpfilter.cli import main

#: lpfilter as uid 65534: what it will import is imported first, as root (the interpreter
#: may be where nobody cannot read it, /root/.pyenv), then the child drops to nobody.
NOBODY = """\
import importlib, json, os, sys
import lpfilter.cli as cli, lpfilter.printcap as pc
for name in ("commands.status_cmd", "commands.jobctl_cmd", "commands.print_cmd", "spool.submit",
             "commands.environment", "spool.store", "spool.worker", "locks", "spool.records",
             "spool.waiting", "spool.lease", "backends.ftpsession", "job", "text",
             "commands.terminal", "commands.daemonclient"):
    importlib.import_module("lpfilter." + name)
cli.build_parser(); pc.load([os.environ["LPFILTER_PRINTCAP"]])
os.setgroups([]); os.setgid(65534); os.setuid(65534)
sys.exit(cli.main(sys.argv[1:]))
"""


class World:
    """Queue q (root's spool, a job in it) and queue open (a spool nobody may use)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.chmod(0o755)
        self.sd = root / "sd"
        self.sd.mkdir()
        self.open = root / "open"
        self.open.mkdir()
        os.chown(self.open, 65534, 65534)
        (root / "nobody-locks").mkdir(mode=0o700)
        os.chown(root / "nobody-locks", 65534, 65534)
        self.printcap = root / "printcap"
        self.printcap.write_text(f"q:sd={self.sd}:lp=/dev/null\n"
                                 f"open:sd={self.open}:lp=/dev/null\n")
        self.doc = root / "doc"
        self.doc.write_text("hello\n")
        self.doc.chmod(0o644)
        self.env = dict(os.environ, LPFILTER_PRINTCAP=str(self.printcap), HOME=str(root),
                        LPFILTER_NO_CACHE="1")

    def spool_as_root(self) -> None:
        env = {"LPFILTER_PRINTCAP": str(self.printcap),
               "LPFILTER_LOCK_DIR": str(self.root / "rl")}
        assert main(["print", "--no-wait", "-P", "q", str(self.doc)], env) == 0

    def as_nobody(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, LPFILTER_LOCK_DIR=str(self.root / "nobody-locks"),
                   LPFILTER_SOCKET=str(self.root / "no-daemon.sock"))
        return subprocess.run([sys.executable, "-c", NOBODY, *argv], env=env, cwd=self.root,
                              timeout=60, capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL)


@pytest.fixture
def world(capsys: pytest.CaptureFixture[str]) -> Iterator[World]:
    if os.getuid() != 0:
        pytest.skip("needs root to run a child as uid 65534")
    made = World(Path(tempfile.mkdtemp(prefix="lpfilter-access-")))
    try:
        made.spool_as_root()
        capsys.readouterr()
        yield made
    finally:
        shutil.rmtree(made.root)


def _no_daemon(world: World) -> str:
    """What the line says after why the user needs the print server, when none runs."""
    return (f"; and no print server answers on {world.root / 'no-daemon.sock'} (No such file"
            " or directory) to do it for you: start one with 'lpfilter watch' (as root or the"
            " spool's owner), or set LPFILTER_SOCKET to its socket")


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("mode", [0o700, 0o755])
def test_status_on_a_spool_the_user_cannot_read(world: World, mode: int) -> None:
    """0700: nothing in it can be read; 0755: .lpfilter (0700, lpfilter's own) cannot."""
    world.sd.chmod(mode)
    done = world.as_nobody("status", "-P", "q")
    assert done.returncode == 5, done.stderr
    assert _one_line(done) == (f"lpfilter: queue q: you (uid 65534) may not read the jobs"
                               f" in spool directory {world.sd}; ask its owner, or run this as"
                               " the user who runs its watcher" + _no_daemon(world))
    assert done.stdout.startswith(f"Queue q: lp=/dev/null, spool {world.sd}\n")
    assert (f"  watcher and jobs not shown: you may not read its spool directory {world.sd}\n"
            in done.stdout)
    assert "no jobs" not in done.stdout and "not served" not in done.stdout


def test_status_all_shows_the_other_queues_and_exits_5(world: World) -> None:
    world.sd.chmod(0o700)
    done = world.as_nobody("status", "--all")
    assert done.returncode == 5, done.stderr
    assert str(world.sd) in _one_line(done)
    assert "Queue open:" in done.stdout and "  no jobs" in done.stdout
    done = world.as_nobody("status", "--json", "--all")
    assert done.returncode == 5 and str(world.sd) in _one_line(done)
    shown = {queue["queue"]: queue for queue in json.loads(done.stdout)}
    assert shown["q"]["readable"] is False and shown["q"]["jobs"] == []
    assert shown["open"]["readable"] is True and shown["open"]["error"] is None


@pytest.mark.parametrize("command", ["cancel", "hold", "release", "requeue"])
@pytest.mark.parametrize("mode", [0o700, 0o755, 0o1777])
def test_job_commands_on_a_spool_the_user_cannot_write(world: World, command: str,
                                                       mode: int) -> None:
    """0700 and 0755: the spool directory; 01777: a shared spool, whose jobs are its
    owner's (root's) only."""
    world.sd.chmod(mode)
    done = world.as_nobody(command, "-P", "q", "all")
    assert done.returncode == 5, done.stderr
    line = _one_line(done)
    said = ("is shared; its jobs belong to its owner root (uid 0) only: run it as root"
            if mode == 0o1777 else "may not write")
    assert line.startswith("lpfilter: queue q: ") and said in line and (
        str(world.sd) in line), line


@pytest.mark.parametrize("mode", [0o700, 0o755, 0o1777])
def test_print_on_a_spool_the_user_cannot_write(world: World, mode: int) -> None:
    """01777: a shared spool is a hot folder for the others: print says to drop it there."""
    world.sd.chmod(mode)
    done = world.as_nobody("print", "--no-wait", "-P", "q", str(world.doc))
    assert (done.returncode, done.stdout) == (5, ""), done.stderr
    line = _one_line(done)
    said = (f"is shared; its jobs belong to its owner root (uid 0) only: drop the file into"
            f" {world.sd} instead" if mode == 0o1777 else "you (uid 65534) may not write")
    assert line.startswith("lpfilter: queue q: ") and said in line and (
        str(world.sd) in line), line


def test_a_lock_file_of_another_user_in_an_open_state_folder(world: World) -> None:
    """The queue is the user's (sd and lpfilter's folders are theirs) but the journal's lock
    was left root's 0600 (root ran a command there before lpfilter gave what it made to the
    owner): the job commands say which file, in one line (was a PermissionError, 70)."""
    for path in (world.sd, *world.sd.rglob("*")):
        os.chown(path, 65534, 65534)
    (world.sd / ".lpfilter" / "journal.lock").touch(mode=0o600)
    os.chown(world.sd / ".lpfilter" / "journal.lock", 0, 0)
    (world.sd / ".lpfilter" / "journal.lock").chmod(0o600)
    done = world.as_nobody("cancel", "-P", "q", "all")
    assert done.returncode == 5, done.stderr
    assert _one_line(done) == (
        f"lpfilter: queue q: you (uid 65534) may not write {world.sd}/.lpfilter/journal.lock"
        f" in spool directory {world.sd}; it belongs to the user who runs this queue's"
        " watcher")


def test_a_lock_directory_that_cannot_be_made(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """LPFILTER_LOCK_DIR where no directory can be made: one line, 5 (was 70)."""
    (tmp_path / "sd").mkdir(mode=0o700)
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:sd={tmp_path / 'sd'}:lp=/dev/null\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    status = main(["--printcap", str(printcap), "status", "-P", "q"],
                  {"LPFILTER_LOCK_DIR": str(blocker / "locks")})
    err = capsys.readouterr().err
    assert status == 5, err
    assert err == (f"lpfilter: lock directory {blocker}/locks: cannot create it: Not a"
                   " directory; set LPFILTER_LOCK_DIR to a directory you may write\n")


def test_a_spool_behind_a_closed_directory_is_not_called_missing(world: World) -> None:
    """sd inside a directory closed to the user: status, print and cancel say the user
    may not use it, not that it does not exist (with checkpc --fix to create it)."""
    closed = world.root / "closed"
    closed.mkdir(mode=0o700)
    world.sd.rename(closed / "sd")
    sd = closed / "sd"
    world.printcap.write_text(f"q:sd={sd}:lp=/dev/null\n")
    done = world.as_nobody("status", "-P", "q")
    assert done.returncode == 5 and "does not exist" not in done.stdout + done.stderr
    assert _one_line(done).startswith(f"lpfilter: queue q: you (uid 65534) may not read the"
                                      f" jobs in spool directory {sd};")
    for argv in (["print", "--no-wait", "-P", "q", str(world.doc)],
                 ["cancel", "-P", "q", "all"]):
        done = world.as_nobody(*argv)
        assert done.returncode == 5, done.stderr
        assert _one_line(done).startswith(f"lpfilter: queue q: you (uid 65534) may not write"
                                          f" the spool directory {sd};")
