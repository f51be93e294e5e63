"""``status -t SECONDS`` (LPRng's lpq -t: again and again until interrupted), ``status
+SECONDS`` (BSD's and CUPS's lpq +interval: until no job is left to print) and ``-c``
(clear the screen first). The installed command as a process, real spools."""
from __future__ import annotations

import contextlib
import signal

import pytest
from serverkit import start_server
from spoolkit import Kit, job_ids, kit, wait_until  # noqa: F401 - kit: a fixture

from lpfilter.cli import main

CLEAR = "\033[H\033[2J"


def spooled(kit: Kit, *options: str) -> str:
    """A job spooled (not printed: no watcher runs); its id."""
    (kit.root / "doc.txt").write_text("a page\n")
    run = kit.run("print", "--no-wait", "-P", "q", *options, "doc.txt")
    assert run.returncode == 0, run.stderr
    [job] = job_ids(run.stdout, "q")
    return job


def test_plus_seconds_shows_the_queue_until_no_job_is_left(kit: Kit) -> None:
    kit.queue("q", "/dev/null")
    alices = spooled(kit, "-U", "alice")
    bobs = spooled(kit, "-U", "bob")
    proc = kit.start("status", "-P", "q", "+1", "alice")  # lpq's list: alice's jobs only
    wait_until(lambda: proc.stdout().count("Queue q:") >= 2, what="two showings")
    assert proc.popen.poll() is None  # alice's job is still queued
    assert kit.run("cancel", "-P", "q", alices).returncode == 0
    assert proc.wait() == 0  # no job of alice's is left; bob's does not count
    last = proc.stdout().split("Queue q:")[-1]
    assert "no jobs" in last and bobs not in proc.stdout()


def test_t_shows_it_again_until_interrupted_and_c_clears_each_time(kit: Kit) -> None:
    kit.queue("q", "/dev/null")
    spooled(kit)
    proc = kit.start("status", "-c", "-t", "0.2", "-P", "q")
    wait_until(lambda: proc.stdout().count(CLEAR) >= 3, what="three showings")
    assert proc.popen.poll() is None
    proc.signal(signal.SIGINT)
    assert proc.wait() == 130
    shown = proc.stdout()  # each showing one write, the clearing with it
    assert shown.startswith(CLEAR + "Queue q:")
    assert shown.count(CLEAR) == shown.count("Queue q:") >= 3


def test_a_plus_with_other_digits_is_a_name_in_the_list(
        kit: Kit, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``+²`` is no pause (float() would refuse it: it was an internal error, 70): a
    word of lpq's list, a user name, as any other word that is no number."""
    kit.queue("q", "/dev/null")
    spooled(kit)
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(kit.printcap))
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(kit.lock_dir))
    assert main(["status", "-P", "q", "+\u00b2"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "no jobs" in out


def test_t_0_shows_it_once(kit: Kit) -> None:
    kit.queue("q", "/dev/null")
    run = kit.run("status", "-t", "0", "-P", "q")
    assert run.returncode == 0 and run.stdout.count("Queue q:") == 1, run


@pytest.mark.parametrize(("argv", "said"), [
    (["-t", "-1"], "'-1' is not a number of seconds"),
    (["-t", "soon"], "'soon' is not a number of seconds"),
    (["+0"], "+0: the pause must be 1 second or more"),
    (["-t", "1", "+2"], "+2: one pause, please"),
    (["+2", "+3"], "+2 +3: one pause, please"),
    (["-t", "1", "--json"], "--json shows the queues once"),
    (["+2", "-P", "q@127.0.0.1%1"], "+SECONDS stops when no job is left, which another"),
])
def test_a_pause_lpq_cannot_take_is_a_usage_error(
        kit: Kit, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str], said: str) -> None:
    kit.queue("q", "/dev/null")
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(kit.printcap))
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(kit.lock_dir))
    monkeypatch.setenv("PRINTER", "q")
    assert main(["status", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and said in err and "Traceback" not in err, err


def test_t_asks_another_server_again_each_time(kit: Kit) -> None:
    kit.queue("q", "/dev/null")
    server = start_server(kit)
    proc = kit.start("status", "-t", "0.2", "-P", server.queue())
    wait_until(lambda: proc.stdout().count(" 0 jobs\n") >= 2, what="two answers")
    proc.signal(signal.SIGINT)
    assert proc.wait() == 130


def test_t_goes_on_after_a_look_another_server_did_not_answer(kit: Kit) -> None:
    """LPRng's lpq -t keeps looking at a server that is away for a moment; lpfilter's
    stopped at the first refused look. Here the port refuses (bound, not listening) until
    two looks said so, then answers."""
    import socket
    import threading
    port_holder = socket.socket()
    port_holder.bind(("127.0.0.1", 0))
    port = port_holder.getsockname()[1]

    def answer() -> None:
        port_holder.listen(1)
        port_holder.settimeout(20)
        with contextlib.suppress(OSError):
            conn, _ = port_holder.accept()
            with conn:
                conn.settimeout(5)
                conn.recv(1024)
                conn.sendall(b"q@server 0 jobs\n")

    try:
        proc = kit.start("status", "-t", "0.2", "-P", f"q@127.0.0.1%{port}")
        wait_until(lambda: proc.stderr().count("looking again in 0.2 s") >= 2,
                   what="two looks refused")
        assert proc.popen.poll() is None, proc.stderr()
        server = threading.Thread(target=answer, daemon=True)
        server.start()
        wait_until(lambda: "q@server 0 jobs" in proc.stdout(), what="the answer")
        proc.signal(signal.SIGINT)
        assert proc.wait() == 130
        server.join(20)
    finally:
        port_holder.close()
    assert f"127.0.0.1%{port}: connection refused" in proc.stderr()
