"""lpc's safety next to spool owners who are not root (review of issue 15): a move over TCP
never puts jobs into another owner's spool, a moved ticket carries only checked lines,
``lpc reread`` signals no process a lease names that is not lpfilter's daemon, a control
file that cannot be read stops printing, and each queue named is acted on by itself.
Real daemons, users made with useradd, sockets on loopback."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from localkit import LocalUser, made_user
from serverkit import send_job, start_server
from spoolkit import (Kit, forge_job, journal_path, kit, wait_served,  # noqa: F401
                      wait_until)
from test_lpc import doc, lpc

from lpfilter.spool.control import read_control

CLIENT = r'''
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(sys.argv[2].encode() + b"\n"); s.shutdown(socket.SHUT_WR)
print(s.makefile("rb").read().decode())
'''


def _as_user(kit: Kit, user: LocalUser, port: int, line: str) -> str:
    """An lpc request over TCP from a process of ``user`` (the kernel's uid is theirs)."""
    done = user.python("-c", CLIENT, str(port), line, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _give(folder: Path, uid: int) -> None:
    for path in [folder, *folder.rglob("*")]:
        os.lchown(path, uid, uid)


def test_an_owner_cannot_move_forged_jobs_into_roots_queue(kit: Kit) -> None:
    """q's spool is the user's, r's root's: the user's ``move q all r`` over TCP is
    refused and the job stays; root's own move takes only checked control lines along."""
    with made_user() as user:
        kit.root.chmod(0o755)
        sdq = kit.queue("q", kit.recorder())
        kit.queue("r", kit.recorder())
        _give(sdq, user.uid)
        server = start_server(kit, "--all")
        wait_served(kit, "r", server.proc)
        assert lpc(kit, "stop", "q", "r")[0] == 0
        send_job(server.port, b"a job\n")
        wait_until(lambda: len(kit.states("q")) == 1, what="the job in q")
        data = kit.ticket("q", "000001")
        data.update(user="alice", title="forged", evil={"x": 1},
                    control={"Z": "duplex", "bad": "x", "M": "a\x01b"})
        forge_job(sdq, data)  # the owner's own journal
        for word in ("move q all r", "redirect q r"):
            answer = _as_user(kit, user, server.port, f"\x06q {user.name} {word}")
            assert "permission denied" in answer and "another owner's" in answer, answer
            assert kit.states("r") == {} and kit.states("q") == {"000001": "queued"}
        status, out, err = lpc(kit, "move", "q", "all", "r")  # root may
        assert status == 0 and "moved to r-000001" in out, (out, err)
        moved = kit.tickets("r")["000001"]
        assert moved["extra"] == {"control": {"Z": "duplex"}, "moved_from": "q-000001"}
        assert kit.states("q") == {}
        assert server.proc.stop() == 0


def test_each_queue_named_is_acted_on_by_itself(kit: Kit) -> None:
    """``lpc stop r nosuch``: r is stopped (as LPRng's lpc does), nosuch is said, and the
    exit status is the worst, 4; status likewise shows r and says nosuch."""
    kit.queue("r", kit.recorder())
    status, out, err = lpc(kit, "stop", "r", "nosuch")
    assert status == 4 and re.search(r"^r@\S+: stopped$", out, re.M), (out, err)
    assert "nosuch" in err and len(err.splitlines()) == 1, err
    assert read_control(str(kit.sd("r") / ".lpfilter")).printing_disabled
    done = kit.run("lpc", "status", "nosuch", "r")  # the installed command
    assert done.returncode == 4 and "nosuch" in done.stderr, done
    assert re.search(r"^r@\S+ +disabled +enabled +0 ", done.stdout, re.M), done.stdout


HOLD = r'''
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.write(fd, sys.argv[2].encode())
print("ready", flush=True); time.sleep(120)
'''


def test_reread_signals_no_process_a_spool_owner_names() -> None:
    """The owner of q's spool holds q's lease and names a process of root's in it: root's
    ``lpc reread`` (no daemon on the socket) signals nothing and says no daemon answers;
    a real ``lpfilter watch`` found by its lease (its socket elsewhere) is signalled."""
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    import psutil
    from spoolkit import kit_at

    from lpfilter.spool.lease import lease_path
    root = Path(tempfile.mkdtemp(prefix="lpfilter-reread-"))
    root.chmod(0o755)
    with made_user() as user, kit_at(root) as kit:
        sd = kit.queue("q", kit.recorder())
        assert kit.run("lpc", "stop", "q").returncode == 0  # makes .lpfilter
        _give(sd, user.uid)
        kit.env["LPFILTER_SOCKET"] = str(root / "nobody.sock")
        victim = subprocess.Popen(["sleep", "120"])  # root's
        data = json.dumps({"pid": victim.pid, "start": psutil.Process(victim.pid).create_time(),
                           "host": os.uname().nodename, "purpose": "watch",
                           "since": time.time()})
        holder = subprocess.Popen(
            ["setpriv", f"--reuid={user.uid}", f"--regid={user.uid}", "--clear-groups",
             sys.executable, "-IS", "-c", HOLD, lease_path(str(sd / ".lpfilter")), data],
            stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
            done = kit.run("lpc", "reread")
            assert done.returncode == 5 and "no print server answers" in done.stderr, done
        finally:
            holder.kill()
            holder.wait()
            if holder.stdout is not None:
                holder.stdout.close()
            victim.send_signal(signal.SIGTERM)  # a SIGHUP sent before would be taken first
            assert victim.wait() == -signal.SIGTERM
        os.lchown(sd, 0, 0)
        _give(sd, 0)
        daemon = kit.start("watch")  # its socket is kit.env's: reread finds it by its lease
        wait_served(kit, "q", daemon)
        kit.env["LPFILTER_SOCKET"] = str(root / "elsewhere.sock")
        kit.queue("r", kit.recorder())
        done = kit.run("lpc", "reread")
        assert done.returncode == 0 and f"pid {daemon.pid}: sending SIGHUP" in done.stdout
        wait_served(kit, "r", daemon)
        assert daemon.stop() == 0
    subprocess.run(["rm", "-rf", "--", str(root)], check=True, timeout=60)


def test_an_unreadable_control_file_keeps_the_queue_stopped(kit: Kit) -> None:
    """``lpc stop q``, then the control file replaced by a FIFO, a link, a file of other
    bytes: printing stays stopped (the job waits), status and lpc status say why, and
    ``lpc start`` writes the file again."""
    kit.queue("q", kit.recorder())
    control = kit.sd("q") / ".lpfilter" / "control"
    assert kit.run("print", "--no-wait", "-P", "q", doc(kit)).returncode == 0
    for spoil, why in ((os.mkfifo, "FIFO"), (lambda p: p.symlink_to("/dev/null"), "link"),
                       (lambda p: p.write_bytes(b"\xff" * 10), "not text")):
        assert lpc(kit, "stop", "q")[0] == 0
        control.unlink()
        spoil(control)
        status, out, _ = lpc(kit, "lpc", "status", "q")
        assert status == 0 and re.search(r"^q@\S+ +disabled +enabled +1 .*lpc state"
                                         r" unreadable: ", out, re.M), out
        assert why.lower() in out.lower(), out
        done = kit.run("status", "-P", "q")
        assert "lpc: printing disabled, lpc state unreadable: " in done.stdout, done
        done = kit.run("watch", "--once", "-P", "q")
        assert done.returncode == 8 and kit.states("q") == {"000001": "queued"}, done
    assert lpc(kit, "start", "q")[0] == 0 and control.is_file() and not control.is_symlink()
    assert kit.run("watch", "--once", "-P", "q").returncode == 0
    assert kit.states("q") == {"000001": "done"}


CRASH = r'''
import os, signal, sys
from lpfilter.spool.store import SpoolStore
def sigkill(self, *args, **kwargs):  # the process dies at this very step of the move
    os.kill(os.getpid(), signal.SIGKILL)
setattr(SpoolStore, sys.argv[1], sigkill)
from lpfilter.cli import main
sys.exit(main(sys.argv[2:]))
'''


def _killed_move(kit: Kit, step: str) -> None:
    """``lpfilter lpc move q all r`` SIGKILLed at ``step`` (a SpoolStore method)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", CRASH, step, "lpc", "move", "q", "all", "r"],
                          env=kit.env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == -9, done


def test_a_move_killed_midway_is_settled_never_doubled(kit: Kit) -> None:
    """Killed after the copy was committed into r, before the job left q: q's job is held
    (never printed here too) and the next look drops it, r prints it once. Killed before
    the copy was committed: the next look puts q's job back, and q prints it."""
    kit.queue("q", kit.recorder())
    kit.queue("r", kit.recorder())
    assert kit.run("print", "--no-wait", "-P", "q", doc(kit)).returncode == 0
    _killed_move(kit, "remove")
    assert kit.states("q") == {"000001": "held"} and kit.states("r") == {"000001": "queued"}
    assert kit.run("watch", "--once", "-P", "q").returncode == 0
    assert kit.states("q") == {}
    assert kit.run("watch", "--once", "-P", "r").returncode == 0
    assert kit.states("r") == {"000001": "done"}
    assert kit.run("print", "--no-wait", "-P", "q", doc(kit)).returncode == 0
    _killed_move(kit, "commit")
    assert kit.states("q") == {"000002": "held"} and kit.states("r") == {"000001": "done"}
    assert kit.run("watch", "--once", "-P", "q").returncode == 0
    assert kit.states("q") == {"000002": "done"}
    assert "moving_to" not in kit.tickets("q")["000002"]["extra"]


def test_a_daemons_control_state_with_keys_unknown_here_is_read() -> None:
    """lpc status shows a daemon's answer; a key a newer lpfilter added is passed over."""
    from lpfilter.spool.control import QueueControl
    data = {"printing_disabled": True, "unreadable": "a FIFO", "future_key": 1}
    assert QueueControl.from_dict(data) == QueueControl(printing_disabled=True,
                                                        unreadable="a FIFO")
    assert QueueControl.from_dict(None) == QueueControl()


def test_a_killed_moves_copy_gone_from_the_target_is_not_printed_again(kit: Kit) -> None:
    """Killed after the copy was committed into r, before the job left q (an audit's
    SIGKILL; a Ctrl-C at that moment too); the copy then leaves r before anyone looks at
    q (cancelled here; printed and pruned, or moved on, alike). The next look put q's job
    back, as if never copied, and it printed twice; the mark now says the copy was made."""
    kit.queue("q", kit.recorder())
    kit.queue("r", kit.recorder())
    assert kit.run("print", "--no-wait", "-P", "q", doc(kit)).returncode == 0
    _killed_move(kit, "remove")
    assert kit.states("q") == {"000001": "held"} and kit.states("r") == {"000001": "queued"}
    assert kit.run("cancel", "r-000001").returncode == 0
    assert kit.states("r") == {}
    assert kit.run("watch", "--once", "-P", "q").returncode == 0
    assert kit.states("q") == {}  # settled as moved: the copy was r's to print or not
    assert "moved to r-000001 (finished after an interruption)" in (
        kit.sd("q") / "log").read_text()


def test_a_ticket_whose_id_is_a_path_is_never_read_nor_acted_on(tmp_path: Path) -> None:
    """The spool's owner may write its journal: a job record whose id is not digits
    (``../../victim/keep``) would make root's watcher remove and write files anywhere when
    it settles an interrupted move (second review, K1). Such a record is not read."""
    from lpfilter import printcap
    from lpfilter.job import Job
    from lpfilter.spool.lpcops import MOVING_KEY, settle_moves
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.job").write_text("root's\n")
    (victim / "keep.data").write_text("root's\n")
    sd = tmp_path / "sd"
    sd.mkdir()
    (tmp_path / "printcap").write_text(f"q:lp=/dev/null:sd={sd}\n")
    entry = printcap.load([str(tmp_path / "printcap")]).lookup("q")
    store = SpoolStore(str(sd), "q")
    store.ensure("watch")
    forged = Job("000001", "q", "alice", "forged", 1, 1.0)
    forged.extra[MOVING_KEY] = {"sd": str(sd), "queue": "q", "id": "000001", "state": "queued"}
    text = json.loads(forged.to_json())
    text["id"] = os.path.relpath(victim / "keep", store.jobs_dir)
    store.next_id()  # the journal is made
    forge_job(sd, text)
    journal = journal_path(sd).read_bytes()
    assert store.read(text["id"]) is None and store.jobs() == []
    records = QueueRecords(entry)
    try:
        settle_moves(store, records)
    finally:
        records.close()
        store.close()
    assert sorted(p.name for p in victim.iterdir()) == ["keep.data", "keep.job"]
    assert journal_path(sd).read_bytes() == journal  # left for its owner to see
