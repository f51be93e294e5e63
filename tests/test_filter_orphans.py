"""What a SIGKILLed watcher's filters left running is ended by the next watcher before it
sends the job again (``lpfilter/children/orphans.py``), and nothing else is: a record
someone forged, or one naming processes that do not run as the queue's filters, kills
nothing. PR_SET_PDEATHSIG fires when the THREAD that started a filter ends."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import psutil
import pytest
from filterrunkit import lp_of as _lp
from filterrunkit import print_bytes as _print
from filterrunkit import printer  # noqa: F401 - a fixture
from filterrunkit import watch_once
from filterkit import of_filter
from localkit import made_user, need_root, world
from spoolkit import Kit, gone, kit, wait_until  # noqa: F401 - a fixture

from lpfilter.children import run
from lpfilter.children.orphans import TOKEN_VARIABLE, records_dir
from lpfilter.emulator.jetdirect import VirtualPrinter


#: The first time: starts a grandchild that sleeps (its pid in GRAND) and hangs; after
#: that (FLAG exists): copies the job.
FIRST_HANGS = r'''#!/bin/sh
echo $$ >> {pids}
if [ ! -e {flag} ]; then
  : > {flag}
  /bin/sleep 300 &
  echo $! > {grand}.new && mv {grand}.new {grand}
  /bin/sleep 300
fi
exec /bin/cat
'''


def _printed(printer: VirtualPrinter) -> bytes:  # noqa: F811
    """What the second connection (the job sent again) brought."""
    assert printer.wait_for("closed", 2, timeout=60)
    return list(printer.records)[-1].path.read_bytes()  # type: ignore[union-attr]


def _kill(pids: list[int]) -> None:
    """Stop the processes a test started (and their process groups), by pid."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _sleeper(**popen: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["/bin/sleep", "300"], stdin=subprocess.DEVNULL,
                            start_new_session=True, **popen)  # type: ignore[call-overload]


def _forge(sd: Path, token: str, owner: int | None = None) -> Path:
    """A record as the spool's owner could write it: a dead starter, an early time."""
    folder = Path(records_dir(str(sd)))
    for path in (folder.parent, folder):
        path.mkdir(mode=0o700, exist_ok=True)
        if owner is not None:
            os.chown(path, owner, owner)
    record = folder / token
    record.write_text("999999999 1.0 1.0\n")
    if owner is not None:
        os.chown(record, owner, owner)
    return record


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_a_killed_watchers_grandchild_is_ended_at_takeover_and_nothing_else(
        kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    """A shell-form ``if=`` whose pipeline leaves a sleeping grandchild: SIGKILL of
    ``watch --once`` kills the shell (PDEATHSIG) but not the grandchild; the next watcher
    ends it before it sends the job again, the job prints, and a process of the same uid
    that is no filter, named by a forged record, is left alone."""
    pids, flag, grand = kit.root / "filter.pids", kit.root / "flag", kit.root / "grand"
    filt = kit.program("filt.sh", FIRST_HANGS.format(pids=pids, flag=flag, grand=grand))
    sd = kit.queue("q", _lp(printer), **{"if": f"( {filt} | /bin/cat )"}, user="root")
    _print(kit, "q", b"hello orphans\n")
    started: list[int] = []
    bystander = _sleeper()
    started.append(bystander.pid)
    try:
        watcher = kit.start("watch", "--once", "-P", "q")
        wait_until(lambda: grand.exists(), what="the filter's grandchild started")
        grandchild = int(grand.read_text())
        started.append(grandchild)
        started += _pids(pids)
        os.kill(watcher.pid, signal.SIGKILL)
        watcher.popen.wait(timeout=30)
        assert not gone(grandchild), "the grandchild outlives the watcher by itself"
        forged = _forge(sd, os.urandom(16).hex())
        said = watch_once(kit, "q", timeout=120)
        assert re.match(r"lpfilter: queue q: ended \d+ processes left running by the filters"
                        r" of a watcher that died\n", said), said
        assert gone(grandchild)
        assert _printed(printer) == b"hello orphans\n"
        assert list(kit.states("q").values()) == ["done"]
        assert bystander.poll() is None, "a process no filter started was killed"
        assert not forged.exists() and os.listdir(records_dir(str(sd))) == []
    finally:
        _kill(started)
        bystander.wait(timeout=10)


@pytest.mark.parametrize("member_watched", [True, False])
def test_a_pools_takeover_ends_what_its_servers_filters_left(
        kit: Kit, printer: VirtualPrinter, member_watched: bool) -> None:  # noqa: F811
    """A pool's server sends with its own entry: its filter runs in the server queue's
    spool and is recorded there (its state folder made by the pool when that queue was
    never watched); the pool's next watcher ends what it left, with the server queue's
    filter user, before the job is sent again (else the grandchild holds the printer)."""
    pids, flag, grand = kit.root / "filter.pids", kit.root / "flag", kit.root / "grand"
    filt = kit.program("filt.sh", FIRST_HANGS.format(pids=pids, flag=flag, grand=grand))
    msd = kit.queue("m", _lp(printer), **{"if": f"( {filt} | /bin/cat )"}, user="root")
    kit.queue("p", "/dev/null", sv="m")
    if member_watched:
        assert watch_once(kit, "m") == ""
    assert (msd / ".lpfilter").exists() is member_watched
    _print(kit, "p", b"hello pool orphans\n")
    started: list[int] = []
    try:
        watcher = kit.start("watch", "--once", "-P", "p")
        wait_until(lambda: grand.exists(), what="the server's filter's grandchild started")
        grandchild = int(grand.read_text())
        started += [grandchild, *_pids(pids)]
        assert len(os.listdir(records_dir(str(msd)))) == 1
        os.kill(watcher.pid, signal.SIGKILL)
        watcher.popen.wait(timeout=30)
        assert not gone(grandchild), "the grandchild outlives the watcher by itself"
        said = watch_once(kit, "p", timeout=120)
        assert re.match(r"lpfilter: queue m: ended \d+ process(es)? left running by the"
                        r" filters of a watcher that died\n", said), said
        assert gone(grandchild)
        assert _printed(printer) == b"hello pool orphans\n"
        assert list(kit.states("p").values()) == ["done"]
        assert os.listdir(records_dir(str(msd))) == []
    finally:
        _kill(started)


def test_a_root_watcher_signals_no_one_outside_the_queues_filter_user(kit: Kit) -> None:
    """A spool owned by uid 65534, served by root: its owner's forged records name the
    mark of a root process and of one of its own; only its own is ended."""
    need_root("a spool owned by uid 65534 under a root watcher")
    sd = kit.queue("q", "|/bin/cat")
    os.chown(sd, 65534, 65534)
    token, own_token = os.urandom(16).hex(), os.urandom(16).hex()
    as_root = _sleeper(env={TOKEN_VARIABLE: token, "PATH": "/bin"})
    own = _sleeper(env={TOKEN_VARIABLE: own_token, "PATH": "/bin"}, user=65534, group=65534,
                   extra_groups=[])
    try:
        records = [_forge(sd, token, owner=65534), _forge(sd, own_token, owner=65534)]
        assert watch_once(kit, "q") == ("lpfilter: queue q: ended 1 process left running by"
                                        " the filters of a watcher that died\n")
        assert as_root.poll() is None, "root killed a process the spool's owner named"
        assert own.wait(timeout=30) == -signal.SIGKILL
        assert not any(record.exists() for record in records)
    finally:
        _kill([as_root.pid, own.pid])
        as_root.wait(timeout=10)
        own.wait(timeout=10)


def test_an_of_filter_left_stopped_by_a_killed_watcher_is_ended_at_takeover(
        kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    ofpid, pids, flag = kit.root / "of.pid", kit.root / "filter.pids", kit.root / "flag"
    of = of_filter(kit.root, pid=ofpid, orphan=True)  # stopped, it outlives the watcher
    slow = kit.program("slow.sh", FIRST_HANGS.format(pids=pids, flag=flag,
                                                      grand=kit.root / "grand"))
    kit.queue("q", _lp(printer), of=str(of), **{"if": f"-$ {slow}"}, sb=True, user="root")
    _print(kit, "q", b"data\n")
    started: list[int] = []
    try:
        watcher = kit.start("watch", "--once", "-P", "q")
        wait_until(lambda: (kit.root / "grand").exists(), what="the data filter started")
        started.append(int(ofpid.read_text()))
        started.append(int((kit.root / "grand").read_text()))
        started += _pids(pids)
        wait_until(lambda: psutil.Process(started[0]).status() == psutil.STATUS_STOPPED,
                   what="the OF filter stopped itself")
        os.kill(watcher.pid, signal.SIGKILL)
        watcher.popen.wait(timeout=30)
        assert psutil.Process(started[0]).status() == psutil.STATUS_STOPPED
        assert "ended" in watch_once(kit, "q", timeout=120)
        assert gone(started[0]), "the stopped OF filter was left"
        assert b"data\n" in _printed(printer)
    finally:
        _kill(started)


def test_pdeathsig_fires_when_the_starting_thread_ends(tmp_path: Path) -> None:
    """prctl(2): the "parent" is the thread that forked. A filter started from a thread
    that then ends is killed at once: which is why filters are started only from threads
    that outlive them (the worker's, the feed's, which waits for each one it starts)."""
    (tmp_path / ".lpfilter").mkdir()
    command = run.FilterCommand("if", ["/bin/sleep", "300"], False, False)
    started: list[run.Running] = []

    def start() -> None:
        started.append(run.start(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 env={"PATH": "/bin"}, cwd=str(tmp_path),
                                 owner=(os.getuid(), os.getgid()), messages=run.Messages()))

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(timeout=30)
    try:
        assert started[0].process.wait(timeout=30) == -signal.SIGKILL
    finally:
        started[0].kill()
    assert os.listdir(tmp_path / ".lpfilter" / "filters") == []


def test_records_are_never_read_or_removed_through_a_link(kit: Kit) -> None:
    """``sd/.lpfilter/filters`` made a link to a folder elsewhere: the watcher neither
    removes what is there nor ends a process it names."""
    sd = kit.queue("q", "|/bin/cat")
    elsewhere = kit.root / "elsewhere"
    elsewhere.mkdir()
    token = os.urandom(16).hex()
    (elsewhere / token).write_text("999999999 1.0 1.0\n")
    (sd / ".lpfilter").mkdir(mode=0o700)
    (sd / ".lpfilter" / "filters").symlink_to(elsewhere)
    marked = _sleeper(env={TOKEN_VARIABLE: token, "PATH": "/bin"})
    try:
        assert watch_once(kit, "q") == ""
        assert (elsewhere / token).exists()
        assert marked.poll() is None
    finally:
        _kill([marked.pid])
        marked.wait(timeout=10)


def test_a_pool_watcher_not_root_makes_no_folder_in_a_shared_server_spool() -> None:
    """A pool's takeover makes a never-watched server's state folder only where its
    watcher could serve that queue (SpoolStore.check): in root's shared (01777) spool an
    ordinary user's folder would be refused and moved aside at every takeover."""
    with made_user() as user, world() as place:
        msd, psd = place.root / "msd", place.root / "psd"
        msd.mkdir()
        msd.chmod(0o1777)
        psd.mkdir(mode=0o700)
        os.chown(psd, user.uid, user.uid)
        place.printcap.write_text(f"m:sd={msd}:lp=/dev/null\np:sd={psd}:sv=m\n")
        for _ in range(2):
            done = user.run("--printcap", str(place.printcap), "watch", "--once", "-P", "p",
                            env=place.env())
            assert done.returncode == 0 and done.stderr == "", done.stderr
        assert os.listdir(msd) == []
        assert (psd / ".lpfilter").is_dir()
