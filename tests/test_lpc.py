"""Queue control as LPRng's lpc (``lpfilter lpc``, and its words as commands): the state in
the spool (stop, disable, holdall, redirect) obeyed by the worker, print, the print server
and status, across a daemon restart; topq, move, reread; the rights of an ordinary user
(made with useradd) and of a remote host; LPRng's real ``lpc`` against lpfilter's server.
Real daemons, real spools, real sockets on loopback."""
from __future__ import annotations

import io
import os
import re
import socket
import subprocess
from contextlib import redirect_stderr
from pathlib import Path

import pytest
from lpdkit import need_lprng
from serverkit import ask, lprng_etc, printed, send_job, start_server
from spoolkit import Kit, kit, wait_served, wait_until  # noqa: F401 - the fixture

from lpfilter.cli import main
from lpfilter.protocols import lpd
from lpfilter.protocols.lpd import LpdProtocolError
from lpfilter.protocols.lpdlpc import LpcRequest, lpc_request, parse_lpc
from lpfilter.spool.control import QueueControl, parse, read_control
from lpfilter.spool.jobindex import replay_file
from lpfilter.status import ExitStatus

STOPPED = re.compile(r"\APrinter: q@\S+\nq@\S+: stopped\n\Z")


def lpc(kit: Kit, *argv: str) -> tuple[int, str, str]:
    """``lpfilter.cli.main`` in this process, with the kit's environment."""
    out, err = io.StringIO(), io.StringIO()
    from contextlib import redirect_stdout
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv), environ=kit.env)
    return status, out.getvalue(), err.getvalue()


def doc(kit: Kit, text: str = "a page\n") -> str:
    path = kit.root / f"doc{len(list(kit.root.glob('doc*')))}.txt"
    path.write_text(text)
    return str(path)


def state(kit: Kit, queue: str = "q") -> QueueControl:
    return read_control(str(kit.sd(queue) / ".lpfilter"))


# --- the pure parts ---------------------------------------------------------------------
def test_lpc_requests_as_lprngs_lpc_sends_them() -> None:
    # the bytes the Debian 3.8.B lpc sent (captured on loopback)
    assert lpc_request("q", "root", "stop", ("q",)) == b"\x06q root stop q\n"
    assert lpc_request("all", "root", "stop") == b"\x06all root stop\n"
    assert parse_lpc(b"\x06q root hold q 12 bob\n") == LpcRequest("q", "root", "hold",
                                                                  ("q", "12", "bob"))
    assert parse_lpc(b"\x06q alice STOP q") == LpcRequest("q", "alice", "stop", ("q",))
    for bad in (b"\x06q root\n", b"\x05q root stop\n", b"\x06q ro\x01ot stop\n",
                b"\x06" + b"q " * 300 + b"\n"):
        with pytest.raises(LpdProtocolError):
            parse_lpc(bad)
    with pytest.raises(LpdProtocolError):
        lpc_request("q", "bad user", "stop")


def test_the_control_file_is_lprngs_lines_and_never_followed(tmp_path: Path) -> None:
    control = QueueControl(printing_disabled=True, hold_all=True, redirect="r",
                           redirect_sd="/var/spool/r")
    text = control.to_text()
    assert "printing_disabled=1\n" in text and "redirect=r\n" in text
    assert parse(text) == control
    assert parse("printing_disabled=0x1\nfuture_key=5\nredirect=r\n") == QueueControl(
        printing_disabled=True)  # a redirect without its directory is none
    (tmp_path / "elsewhere").write_text("printing_disabled=1\n")
    (tmp_path / "control").symlink_to(tmp_path / "elsewhere")
    assert read_control(str(tmp_path)) == QueueControl(  # a link is never read: stopped
        printing_disabled=True, unreadable="a symbolic link (never followed)")


def test_lpr_to_a_stopped_queue_a_daemon_serves_exits_0(kit: Kit) -> None:
    """LPRng's lpr says 0 for a job its lpd took, stopped queue or not; lpfilter's said 8
    (job pending) though a daemon had the job, and a script retrying on failure ('until
    lpr f') queued it again and again. With no daemon the job waits for a print or a
    watch after lpc start: 8, as before."""
    kit.queue("q", kit.recorder())
    assert kit.run("lpc", "stop", "q").returncode == 0
    alone = kit.run("lpr", "-P", "q", doc(kit))
    assert alone.returncode == ExitStatus.JOB_PENDING, alone
    daemon = kit.start("watch")
    wait_served(kit, "q", daemon)
    served = kit.run("lpr", "-P", "q", doc(kit))
    assert served.returncode == 0 and "is stopped (lpc stop)" in served.stderr, served
    assert kit.states("q") == {"000001": "queued", "000002": "queued"}
    assert daemon.stop() == 0


# --- stop and start, across a daemon restart ----------------------------------------------
def test_a_stopped_queue_keeps_its_jobs_across_a_daemon_restart(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    daemon = kit.start("watch")
    wait_served(kit, "q", daemon)
    done = kit.run("lpc", "stop", "q")  # the installed command
    assert done.returncode == 0 and STOPPED.match(done.stdout), done
    assert state(kit).printing_disabled
    assert kit.run("print", "--no-wait", "-P", "q", doc(kit)).returncode == 0
    wait_until(lambda: "printing stopped (lpc stop)" in daemon.stderr(),
               what="the worker to see the stopped queue")
    assert kit.states("q") == {"000001": "queued"}
    assert daemon.stop() == 0
    again = kit.start("watch")
    wait_served(kit, "q", again)
    wait_until(lambda: "printing stopped (lpc stop)" in again.stderr(),
               what="the new daemon to see the stopped queue")
    assert kit.states("q") == {"000001": "queued"} and kit.output("q", "000001") is None
    status, out, _ = lpc(kit, "start", "q")
    assert status == 0 and out.endswith(": started\n")
    assert printed(kit, "q", 1) == [b"a page\n"]
    assert again.stop() == 0


def test_print_to_a_stopped_queue_spools_and_exits_8(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    assert lpc(kit, "lpc", "-P", "q", "stop")[0] == 0
    done = kit.run("print", "-P", "q", doc(kit))
    assert (done.returncode, done.stdout) == (8, "q-000001\n"), done.stderr
    assert "queue q is stopped (lpc stop)" in done.stderr
    assert kit.states("q") == {"000001": "queued"}
    done = kit.run("watch", "--once", "-P", "q")
    assert done.returncode == 8 and kit.states("q") == {"000001": "queued"}
    assert lpc(kit, "lpc", "start", "q")[0] == 0
    assert kit.run("watch", "--once", "-P", "q").returncode == 0
    assert kit.states("q") == {"000001": "done"}


def test_lpc_lpq_lprm_printcap_redo_and_help_run_lpfilters_own_commands(kit: Kit) -> None:
    """LPRng's lpc runs its clients: ``lpc lpq q``, ``lpc lprm q N``, ``lpc printcap q``;
    ``lpc redo q N`` queues a job again; ``lpc help`` lists every word."""
    kit.queue("q", kit.recorder())
    kit.queue("r", kit.recorder())
    assert lpc(kit, "stop", "q")[0] == 0
    for text in ("one\n", "two\n"):
        assert kit.run("print", "-P", "q", "--no-wait", doc(kit, text)).returncode == 0
    assert kit.run("hold", "-P", "q", "2").returncode == 0
    status, out, err = lpc(kit, "lpc", "lpq", "q", "2")  # LPRng's lpc runs its lpq
    assert (status, err) == (0, "") and re.findall(r"(?m)^hold +\S+\+(\d+) ", out) == ["2"], out
    assert lpc(kit, "lpc", "-P", "q", "lpq") == lpc(kit, "lpq", "-P", "q")
    status, out, _ = lpc(kit, "lpc", "redo", "q", "2")
    assert status == 0 and out.startswith("q-000002: queued again"), out
    assert lpc(kit, "lpc", "lprm", "q", "1") == (0, "q-000001: cancelled\n", "")
    status, out, _ = lpc(kit, "lpc", "printcap", "r")
    assert status == 0 and out.startswith("r\n") and " :sd=" in out, out
    assert lpc(kit, "lpc", "lpq", "nosuch")[0] == 4
    status, out, _ = lpc(kit, "lpc", "help")
    words = [line.split()[0] for line in out.splitlines()]
    assert status == 0 and {"status", "stop", "lpq", "lprm", "printcap", "redo"} <= set(words)


def test_abort_puts_the_job_being_printed_back_and_kill_prints_it_again(kit: Kit) -> None:
    """LPRng's ``lpc abort`` (stop, and end the job being printed) and ``lpc kill`` (abort,
    then start): the job goes back to the queue, flagged a possible duplicate since bytes
    had left, never lost; after kill it prints whole."""
    kit.queue("q", kit.recorder())
    (kit.out / "hang").touch()
    watcher = kit.start("watch", "-P", "q")
    wait_served(kit, "q", watcher)
    data = b"a line of the page\n" * 2000  # more than the hanging printer reads
    assert kit.run("print", "--no-wait", "-P", "q", doc(kit, data.decode())).returncode == 0
    ready = kit.out / "q-000001.ready"
    wait_until(ready.exists, what="the printer to hang in the job")
    status, out, _ = lpc(kit, "lpc", "abort", "q")
    assert status == 0 and out.endswith("is stopped and queued again\n"), out
    wait_until(lambda: kit.states("q") == {"000001": "queued"}, what="the job put back")
    assert kit.ticket("q", "000001")["possible_duplicate"] and state(kit).printing_disabled
    ready.unlink()
    assert lpc(kit, "start", "q")[0] == 0
    wait_until(ready.exists, what="the job sent again, to hang again")
    (kit.out / "hang").unlink()
    status, out, _ = lpc(kit, "lpc", "kill", "q")
    assert status == 0 and out.endswith("queued again; started\n"), out
    assert printed(kit, "q", 1) == [data]  # (the program wrote it; its end comes next)
    wait_until(lambda: kit.states("q") == {"000001": "done"}, what="the job recorded done")
    assert not state(kit).printing_disabled
    assert watcher.stderr().count("interrupted (lpc abort); it will be sent again") == 2
    assert watcher.stop() == 0


def test_a_put_back_request_the_worker_never_saw_is_spent_not_a_cancel(kit: Kit) -> None:
    """An abort's request left for a job no longer being sent (its worker ended first):
    kept through a compaction as a put-back, never read as a cancel; the next send spends
    it and prints the job whole."""
    from lpfilter.spool.jobindex import replay
    from lpfilter.spool.store import SpoolStore
    kit.queue("q", kit.recorder())
    assert kit.run("print", "--no-wait", "-P", "q", doc(kit)).returncode == 0
    path = kit.sd("q") / ".lpfilter" / "journal"
    store = SpoolStore(str(kit.sd("q")), "q")
    try:
        store.request_cancel("000001", requeue=True)
        before = path.stat().st_ino
        store.compact()
        assert path.stat().st_ino != before  # a new file, the records written anew
        assert store.stop_requested("000001") is True
    finally:
        store.close()
    assert replay(path.read_bytes(), "q").cancels == {"000001": True}
    assert kit.run("watch", "--once", "-P", "q").returncode == 0
    assert printed(kit, "q", 1) == [b"a page\n"] and kit.states("q") == {"000001": "done"}
    assert replay(path.read_bytes(), "q").cancels == {}


def test_abort_leaves_a_cancel_asked_for_a_cancel(kit: Kit) -> None:
    """A job being printed that its user cancelled (the request not yet seen by its
    worker): lpc abort must not turn that into a put-back."""
    from lpfilter.job import JobState
    from lpfilter.spool.lpcops import change
    from lpfilter.spool.store import SpoolStore
    kit.queue("q", kit.recorder())
    for _ in range(2):
        assert kit.run("print", "--no-wait", "-P", "q", doc(kit)).returncode == 0
    store = SpoolStore(str(kit.sd("q")), "q")
    try:
        with store.tickets_locked():  # both printing (as a pool's two workers would)
            for job_id in ("000001", "000002"):
                job = store.read(job_id)
                assert job is not None
                job.move_to(JobState.ACTIVE)
                store.write(job)
        store.request_cancel("000001")
        change(store, "abort")
        assert [store.stop_requested(i) for i in ("000001", "000002")] == [False, True]
    finally:
        store.close()


# --- disable and enable, holdall, down and up, status ---------------------------------------
def test_a_disabled_queue_refuses_print_and_lpd_jobs(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    server = start_server(kit)
    status, out, _ = lpc(kit, "disable", "q")
    assert status == 0 and out.endswith(": disabled\n")
    done = kit.run("print", "-P", "q", doc(kit))
    assert done.returncode == 6 and "spooling disabled" in done.stderr, done
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(lpd.receive_job("q"))
        assert sock.recv(1) == b"\0"
        sock.sendall(lpd.file_line(lpd.Subcommand.CONTROL_FILE, 10, "cfA001client"))
        answer = sock.recv(200)
    assert answer[:1] == b"\x02" and b"q: spooling disabled" in answer  # LPRng's try later
    assert b"(spooling disabled)" in ask(server.port, b"\x03q\n")
    assert kit.tickets("q") == {}
    assert lpc(kit, "enable", "q")[0] == 0
    send_job(server.port, b"after enable\n")
    assert printed(kit, "q", 1) == [b"after enable\n"]
    assert server.proc.stop() == 0


def test_holdall_holds_new_jobs_until_noholdall(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    status, out, _ = lpc(kit, "lpc", "holdall", "q")
    assert (status, out.splitlines()[-1].split(": ")[1]) == (0, "holdall on")
    assert kit.run("print", "-P", "q", doc(kit)).returncode == 0
    assert kit.states("q") == {"000001": "held"}
    assert "lpc: holdall" in kit.run("status", "-P", "q").stdout
    assert lpc(kit, "noholdall", "q")[0] == 0
    assert kit.run("print", "-P", "q", doc(kit)).returncode == 0
    assert kit.states("q") == {"000001": "held", "000002": "done"}


def test_down_and_up_and_what_status_shows(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    kit.queue("r", kit.recorder())
    status, out, _ = lpc(kit, "down", "-a")
    assert status == 0 and out.count("disabled and stopped") == 2
    assert state(kit, "r") == QueueControl(printing_disabled=True, spooling_disabled=True)
    table = kit.run("lpc", "status", "all").stdout.splitlines()
    assert table[0].startswith(" Printer           Printing Spooling Jobs  Server")
    assert re.match(r"q@\S+ +disabled disabled +0 +none +none$", table[1]), table
    assert "lpc: printing disabled, spooling disabled" in kit.run("status", "-P", "q").stdout
    assert lpc(kit, "up", "q")[0] == 0
    assert state(kit) == QueueControl() and state(kit, "r").printing_disabled
    assert "lpc:" not in kit.run("status", "-P", "q").stdout


# --- jobs: hold, release, topq, move, redirect ----------------------------------------------
def test_topq_prints_the_jobs_first(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    assert lpc(kit, "stop", "q")[0] == 0
    for n in range(3):
        assert kit.run("print", "--no-wait", "-P", "q", doc(kit, f"job {n}\n")).returncode == 0
    status, out, _ = lpc(kit, "lpc", "topq", "q", "3")
    assert status == 0 and "q-000003: moved to the head of the queue" in out
    status, out, _ = lpc(kit, "lpc", "hold", "q", "1")
    assert (status, out.splitlines()[-1]) == (0, "q-000001: held")
    listed = re.findall(r"(?m)^  (\d{6}) ", kit.run("status", "-P", "q").stdout)
    assert listed == ["000003", "000001", "000002"]
    assert lpc(kit, "start", "q")[0] == 0
    assert kit.run("watch", "--once", "-P", "q").returncode == 0
    assert [line[1] for line in kit.log_lines()] == ["000003", "000002"]
    status, out, err = lpc(kit, "lpc", "release", "q", "root", "99")
    assert status == 1 and "q-000001: released" in out and "q-000099: no such job" in err
    assert "000002" not in out  # a user's name picks their jobs, not the printed ones kept


def test_move_and_redirect_send_jobs_to_another_queue(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    kit.queue("r", kit.recorder())
    server = start_server(kit, "--all")
    wait_served(kit, "r", server.proc)
    assert lpc(kit, "stop", "q", "r")[0] == 0
    for n in range(3):
        assert kit.run("print", "--no-wait", "-P", "q", doc(kit, f"job {n}\n")).returncode == 0
    status, out, _ = lpc(kit, "move", "q", "1", "r")
    assert status == 0 and "q-000001: moved to r-000001" in out
    assert kit.ticket("r", "000001")["extra"]["moved_from"] == "q-000001"
    status, out, _ = lpc(kit, "lpc", "redirect", "q", "r")
    assert status == 0 and "forwarding to 'r'" in out  # moved by lpc or the daemon's worker
    wait_until(lambda: kit.states("q") == {}, what="q's jobs moved")
    assert sorted(kit.states("r")) == ["000001", "000002", "000003"]
    done = kit.run("print", "--no-wait", "-P", "q", doc(kit, "printed to q\n"))
    assert done.stdout == "r-000004\n", done  # print spools into the target
    send_job(server.port, b"sent to q\n")  # the daemon's worker moves it
    wait_until(lambda: len(kit.states("r")) == 5, what="the LPD job moved to r")
    assert kit.states("q") == {}
    assert b"(redirect r)" in ask(server.port, b"\x04q\n")
    assert lpc(kit, "start", "r")[0] == 0
    assert sorted(printed(kit, "r", 5)) == sorted([b"job 0\n", b"job 1\n", b"job 2\n",
                                                   b"printed to q\n", b"sent to q\n"])
    assert lpc(kit, "redirect", "q", "off")[1].endswith("redirected\n")
    assert state(kit).redirect == "" and server.proc.stop() == 0


def test_a_move_keeps_the_target_queues_minfree(kit: Kit) -> None:
    """Found by an audit: print to a queue whose minfree the disk cannot keep is refused
    (exit 10), but 'lpc move' put the job there all the same. The move is refused as
    print is; the job stays where it was, as it was."""
    kit.queue("q", kit.recorder())
    kit.queue("full", kit.recorder(), minfree=999999999)
    assert lpc(kit, "stop", "q", "full")[0] == 0
    assert kit.run("print", "--no-wait", "-P", "q", doc(kit)).returncode == 0
    status, _, err = lpc(kit, "move", "q", "1", "full")
    assert status == 10 and "minfree" in err, err
    assert (kit.states("q"), kit.states("full")) == ({"000001": "queued"}, {})
    assert "moving_to" not in kit.tickets("q")["000001"]["extra"]
    from lpfilter.spool.lpcops import set_redirect  # the daemon's later moves too
    from lpfilter.spool.store import SpoolStore
    source, target = SpoolStore(str(kit.sd("q")), "q"), SpoolStore(str(kit.sd("full")), "full")
    try:
        set_redirect(source, target)
    finally:
        source.close()
        target.close()
    assert lpc(kit, "start", "q")[0] == 0
    done = kit.run("watch", "--once", "-P", "q")
    assert "Traceback" not in done.stderr and "minfree" in done.stderr, done.stderr
    assert (kit.states("q"), kit.states("full")) == ({"000001": "queued"}, {})


def test_two_redirects_made_at_once_keep_the_jobs_instead_of_a_loop(kit: Kit) -> None:
    """'lpc redirect q r' and 'lpc redirect r q' at the same moment (an audit made it in
    ten tries): each checked that the other queue was not redirected, both were written,
    and the daemon moved the jobs back and forth for ever, 80 moves a second. A queue's
    jobs now wait where they are when its target is redirected itself, said once."""
    from lpfilter.spool.lpcops import set_redirect
    from lpfilter.spool.store import SpoolStore
    kit.queue("q", kit.recorder())
    kit.queue("r", kit.recorder())
    assert kit.run("print", "--no-wait", "-P", "q", doc(kit)).returncode == 0
    stores = {name: SpoolStore(str(kit.sd(name)), name) for name in ("q", "r")}
    try:
        for name, other in (("q", "r"), ("r", "q")):
            stores[name].ensure("change")
            stores[other].ensure("change")
            set_redirect(stores[name], stores[other])
    finally:
        for store in stores.values():
            store.close()
    for _ in range(3):
        for name in ("q", "r"):
            done = kit.run("watch", "--once", "-P", name)
            assert "Traceback" not in done.stderr, done.stderr
    assert (kit.states("q"), kit.states("r")) == ({"000001": "queued"}, {})
    said = kit.run("watch", "--once", "-P", "q").stderr
    assert "cannot move its jobs to r (lpc redirect): r is redirected itself (to q)" in said


def test_reread_makes_the_daemon_read_the_printcap(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    kit.env["LPFILTER_SOCKET"] = str(kit.root / "lpfilter.sock")
    status, _, err = lpc(kit, "reread")  # no daemon: one line, exit 5
    assert status == 5 and err.count("\n") == 1 and "no print server answers" in err, err
    daemon = kit.start("watch")
    wait_served(kit, "q", daemon)
    kit.queue("r", kit.recorder())
    status, out, _ = lpc(kit, "reread")
    assert status == 0 and f"pid {daemon.pid}: sending SIGHUP" in out
    wait_served(kit, "r", daemon)
    assert daemon.stop() == 0


# --- rights ---------------------------------------------------------------------------------
def _user_env(kit: Kit) -> dict[str, str]:
    """An ordinary user's environment for the kit: its printcap (made readable) and the
    daemon's socket in a run directory of the kit's, no cache, no home."""
    kit.printcap.chmod(0o644)
    (kit.root / "run").mkdir(mode=0o700)
    kit.env["LPFILTER_SOCKET"] = str(kit.root / "run" / "lpfilter.sock")
    return {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
            "LPFILTER_PRINTCAP": str(kit.printcap), "LPFILTER_NO_CACHE": "1",
            "LPFILTER_SOCKET": kit.env["LPFILTER_SOCKET"]}


def test_hold_and_release_without_a_job_take_the_first_they_change(kit: Kit) -> None:
    """LPRng's 'lpc hold q' holds the queue's first job (run here: "selected
    'root@localhost+631'"); lpfilter's asked for job words. release takes the first held
    job (LPRng's takes the first job, a queued one that it leaves as it was)."""
    kit.queue("q", kit.recorder())
    assert lpc(kit, "stop", "q")[0] == 0
    for n in range(3):
        assert kit.run("print", "--no-wait", "-P", "q", doc(kit, f"job {n}\n")).returncode == 0
    assert lpc(kit, "lpc", "hold", "q")[1].splitlines()[-1] == "q-000001: held"
    assert lpc(kit, "lpc", "hold", "q")[1].splitlines()[-1] == "q-000002: held"
    assert kit.states("q") == {"000001": "held", "000002": "held", "000003": "queued"}
    status, out, _ = lpc(kit, "lpc", "release", "q")
    assert (status, out.splitlines()[-1].split(",")[0]) == (0, "q-000001: released")
    assert lpc(kit, "lpc", "hold", "q")[1].splitlines()[-1] == "q-000001: held"
    assert lpc(kit, "lpc", "hold", "q")[1].splitlines()[-1] == "q-000003: held"
    status, out, err = lpc(kit, "lpc", "hold", "q")
    assert (status, err) == (1, "lpfilter: no queued job in queue q that you may hold\n")
    for _ in range(3):
        assert lpc(kit, "lpc", "release", "q")[0] == 0
    status, out, err = lpc(kit, "lpc", "release", "q")
    assert (status, err) == (1, "lpfilter: no held job in queue q that you may release\n")
    assert kit.states("q") == {"000001": "queued", "000002": "queued", "000003": "queued"}


def test_an_ordinary_user_holds_only_their_own_jobs(tmp_path: Path) -> None:
    from localkit import made_user
    from spoolkit import open_kit
    with made_user() as user, open_kit("lpfilter-lpc-") as kit:
        kit.queue("q", kit.recorder())
        env = _user_env(kit)
        _ordinary_user(kit, user, env)


def _ordinary_user(kit: Kit, user: object, env: dict[str, str]) -> None:
    from localkit import LocalUser
    assert isinstance(user, LocalUser)
    assert lpc(kit, "stop", "q")[0] == 0
    assert kit.run("print", "--no-wait", "-P", "q", doc(kit)).returncode == 0  # root's 1
    daemon = kit.start("watch")
    wait_served(kit, "q", daemon)
    wait_until(lambda: Path(env["LPFILTER_SOCKET"]).exists(), what="the socket")
    page = kit.root / "page.txt"
    page.write_text("the user's\n")
    page.chmod(0o644)
    done = user.run("print", "-P", "q", str(page), env=env)
    assert done.stdout == "q-000002\n", done
    for word in ("start", "disable", "holdall", "reread"):
        done = user.run(word, "q", env=env) if word != "reread" else user.run(word, env=env)
        assert done.returncode == 5, (word, done)
    assert state(kit) == QueueControl(printing_disabled=True)
    done = user.run("lpc", "hold", "q", "2", env=env)
    assert (done.returncode, done.stdout.splitlines()[-1]) == (0, "q-000002: held"), done
    done = user.run("lpc", "hold", "q", "1", env=env)
    assert done.returncode == 5 and "not your job (root's)" in done.stderr
    done = user.run("lpc", "hold", "q", "root", env=env)
    assert done.returncode == 5
    assert kit.states("q") == {"000001": "queued", "000002": "held"}
    done = user.run("lpc", "release", "q", user.name, env=env)
    assert done.returncode == 0 and "q-000002: released" in done.stdout
    done = user.run("lpc", "hold", "q", env=env)  # no job: the user's first, not root's
    assert (done.returncode, done.stdout.splitlines()[-1]) == (0, "q-000002: held"), done
    done = user.run("lpc", "release", "q", env=env)
    assert done.returncode == 0 and "q-000002: released" in done.stdout, done
    done = user.run("lpc", "status", "q", env=env)
    assert re.search(r"(?m)^q@\S+ +disabled +enabled +2 ", done.stdout), done
    assert daemon.stop() == 0


def test_a_remote_host_may_hold_only_its_users_jobs(kit: Kit) -> None:
    from localkit import PrintcapQueues

    from lpfilter.server.lpcserver import serve_lpc
    from lpfilter.server.peer import Peer
    from lpfilter.server.wire import Wire
    kit.queue("q", kit.recorder())
    assert lpc(kit, "stop", "q")[0] == 0
    server = start_server(kit)
    send_job(server.port, b"alice's\n", user="alice", number=1)  # root's client: TCP rules
    assert server.proc.stop() == 0
    queues = PrintcapQueues(kit.printcap)
    assert lpc(kit, "lpc", "hold", "q", "1")[0] == 0  # root's: any job
    assert lpc(kit, "lpc", "release", "q", "1")[0] == 0
    assert kit.run("print", "--no-wait", "-P", "q", "-U", "alice", doc(kit)).returncode == 0

    def request(line: bytes, peer: Peer) -> str:
        here, there = socket.socketpair()
        with here, there:
            wire = Wire(here, idle_timeout=5)
            serve_lpc(wire, line, peer, queues)
            wire.close()
            here.shutdown(socket.SHUT_WR)
            return there.recv(65536).decode()

    away = Peer("127.0.0.1", 721)  # the address job 1 came from; no uid: a remote host
    answer = request(b"\x06q alice hold q 1 2\n", away)
    assert "q-000001: held" in answer and "q-000002: not your job" in answer, answer
    assert kit.states("q") == {"000001": "held", "000002": "queued"}
    answer = request(b"\x06q bob release q 1\n", away)
    assert "q-000001: not your job" in answer and kit.states("q")["000001"] == "held"
    answer = request(b"\x06q root start q\n", away)
    assert "permission denied" in answer and state(kit).printing_disabled
    answer = request(b"\x06q root kill q\n", away)
    assert "permission denied" in answer and state(kit).printing_disabled
    answer = request(b"\x06q alice release q all\n", Peer("192.0.2.7", 721))
    assert "q-000001" not in answer and kit.states("q")["000001"] == "held"
    assert re.search(r"(?m)^q@\S+ +disabled", request(b"\x06q x status q\n", away))


# --- over TCP: LPRng's lpc and lpfilter's own ------------------------------------------------
def _lprng_lpc(root: Path, *args: str, user: str | None = None) -> str:
    """LPRng's real lpc (Debian 3.8.B) with the private /etc/lprng (as serverkit's clients),
    as root or, with ``user``, as that user (``root`` must then be open to others)."""
    etc = lprng_etc(root)
    script = 'mount --bind "$1" /etc/lprng && shift && exec "$@"'
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"] if user else []
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           "sh", str(etc), *prefix, "/usr/sbin/lpc", *args],
                          capture_output=True, timeout=60, check=False, cwd=root)
    assert done.returncode == 0, done
    return done.stdout.decode(errors="replace")


def test_lprngs_lpc_controls_lpfilters_print_server(kit: Kit) -> None:
    need_lprng()
    kit.queue("q", kit.recorder())
    server = start_server(kit)
    where = server.queue("q")
    out = _lprng_lpc(kit.root, "stop", where)  # root on this host: everything
    assert re.search(r"(?m)^q@\S+: stopped$", out), out
    assert state(kit).printing_disabled
    send_job(server.port, b"held back\n")
    out = _lprng_lpc(kit.root, "status", where)
    assert re.search(r"(?m)^q@\S+ +disabled +enabled +1 ", out), out
    out = _lprng_lpc(kit.root, "holdall", where)
    assert "holdall on" in out and state(kit).hold_all
    out = _lprng_lpc(kit.root, "noholdall", where)
    out = _lprng_lpc(kit.root, "start", where)
    assert re.search(r"(?m)^q@\S+: started$", out), out
    assert printed(kit, "q", 1) == [b"held back\n"]
    out = _lprng_lpc(kit.root, "abort", where)  # LPRng's abort: stopped, nothing to end
    assert re.search(r"(?m)^q@\S+: stopped; the job being printed", out), out
    assert state(kit).printing_disabled
    out = _lprng_lpc(kit.root, "kill", where)
    assert "started" in out and not state(kit).printing_disabled, out
    status, out, _ = lpc(kit, "lpc", "disable", where)  # lpfilter's own client, as root
    assert status == 0 and re.search(r"(?m)^q@\S+: disabled$", out), out
    assert state(kit).spooling_disabled
    import shutil
    import tempfile

    from localkit import made_user
    public = Path(tempfile.mkdtemp(prefix="lpfilter-lpc-"))
    try:
        public.chmod(0o755)
        with made_user() as user:  # another local user: the kernel's uid, not root
            out = _lprng_lpc(public, "enable", where, user=user.name)
        assert "permission denied" in out and state(kit).spooling_disabled
    finally:
        shutil.rmtree(public)
    assert server.proc.stop() == 0


def test_a_bad_lpc_request_is_answered_and_the_server_serves_on(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    server = start_server(kit)
    assert b"bad control command" in ask(server.port, b"\x06q\n")
    assert b"not a command" in ask(server.port, b"\x06q root frobnicate q\n")
    assert b"no queue 'nosuch'" in ask(server.port, b"\x06q root stop nosuch\n")
    send_job(server.port, b"still here\n")
    assert printed(kit, "q", 1) == [b"still here\n"]
    assert server.proc.stop() == 0
    assert os.path.exists(kit.sd("q"))


def test_a_redirect_never_moves_jobs_into_another_owners_directory(tmp_path: Path) -> None:
    """The control file is the spool owner's: a target directory it names that is not
    that owner's (root's here) is refused by root's worker, the jobs stay; the owner's
    own spool is taken."""
    from localkit import need_root

    from lpfilter import printcap
    from lpfilter.spool.control import write_control
    from lpfilter.spool.lpcops import Gate
    from lpfilter.spool.records import QueueRecords
    from lpfilter.spool.store import SpoolStore
    from lpfilter.spool.submit import JobOptions, submit
    need_root("a spool of another owner")
    uid = 54321
    sd, other = tmp_path / "sd", tmp_path / "other"
    for folder in (sd, other):
        folder.mkdir(mode=0o700)
    os.chown(sd, uid, uid)
    (tmp_path / "printcap").write_text(f"q:sd={sd}:lp=/dev/null\n")
    entry = printcap.load([str(tmp_path / "printcap")]).lookup("q")
    store = SpoolStore(str(sd), "q")
    store.ensure("watch")
    job = submit(entry, store, doc_at(tmp_path), JobOptions("alice"))
    write_control(store.state, QueueControl(redirect="r", redirect_sd=str(other)), uid)
    records = QueueRecords(entry)
    gate = Gate(store, records)
    assert gate.stopped() is True  # nothing printed here while redirected
    assert [j.id for j in store.jobs()] == [job.id]
    assert not (other / ".lpfilter").exists()
    os.chown(other, uid, uid)  # the owner's own spool: moved
    gate.file = type(gate.file)(store.state)  # a fresh look at the same file
    assert gate.stopped() is True
    assert store.jobs() == [] and len(replay_file(str(other / ".lpfilter" / "journal"))) == 1
    records.close()
    store.close()


def doc_at(folder: Path) -> str:
    path = folder / "doc.txt"
    path.write_text("a page\n")
    return str(path)


def test_a_spool_owner_controls_their_queue_under_roots_daemon() -> None:
    """The owner of a spool served by root's daemon stops it themselves (the state is
    theirs to write) and, unable to signal root's process, has the daemon reread the
    printcap through its Unix socket."""
    from localkit import made_user
    from spoolkit import open_kit
    with made_user() as user, open_kit("lpfilter-lpc-owner-") as kit:
        sd = kit.queue("q", kit.recorder())
        os.chown(sd, user.uid, user.uid)
        env = _user_env(kit)
        daemon = kit.start("watch")
        wait_served(kit, "q", daemon)
        wait_until(lambda: Path(env["LPFILTER_SOCKET"]).exists(), what="the socket")
        done = user.run("stop", "q", env=env)
        assert done.returncode == 0 and STOPPED.match(done.stdout), done
        assert state(kit).printing_disabled
        kit.queue("r", kit.recorder())
        kit.printcap.chmod(0o644)
        done = user.run("reread", env=env)
        assert done.returncode == 0, done
        assert f"pid {daemon.pid}: sending SIGHUP" in done.stdout
        wait_served(kit, "r", daemon)
        assert daemon.stop() == 0
