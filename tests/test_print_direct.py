"""``print -P queue@host[%port]`` (and ``lpr``, ``lp -d``, PRINTER): each file straight to
that LPD server as LPRng's lpr sends it, with no printcap read and no local spool.

Against the scripted server (what went on the wire, refusals, a cut connection), lpfilter's
own print server (the bytes printed), LPRng's real lpd, and as an ordinary user. In-process
(``main``) and the installed command."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from localkit import made_user, need_root, world
from lpdkit import MakeScripted, RealLpd, real_lpd, scripted_lpd  # noqa: F401 - fixtures
from serverkit import printed, start_server
from spoolkit import Kit, kit, wait_until  # noqa: F401 - fixture

from lpfilter.cli import main

LPFILTER = str(Path(sys.executable).with_name("lpfilter"))


@pytest.fixture
def docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two documents, a.txt and b.txt; no printcap exists (none may be read); retry
    pauses of at most 0.2 s."""
    (tmp_path / "a.txt").write_bytes(b"first page\n")
    (tmp_path / "b.txt").write_bytes(bytes(range(256)) * 40)
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(tmp_path / "no-printcap"))
    monkeypatch.setenv("LPFILTER_PRINT_WAIT", "0.2")
    for name in ("PRINTER", "LPDEST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def control_lines(control: bytes) -> list[str]:
    return control.decode().splitlines()


def test_each_file_is_one_job_on_the_wire_with_the_users_options(
        docs: Path, scripted_lpd: MakeScripted, capsys: pytest.CaptureFixture[str]) -> None:
    server = scripted_lpd()
    queue = f"q@127.0.0.1%{server.port}"
    assert main(["print", "-P", queue, "-J", "Invoice", "-T", "Title", "-C", "B", "-h",
                 "-Z", "duplex", "-Z", "a4", "-w", "100", "-#", "2", "-l", "-R", "cc-4711",
                 "-k", "-s",
                 str(docs / "a.txt"), str(docs / "b.txt")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert len(server.connections) == 2
    ids = []
    for connection, name in zip(server.connections, ("a.txt", "b.txt"), strict=True):
        assert connection.request == b"\x02q"
        control, data = connection.files
        assert (control.kind, data.kind) == ("control", "data")  # LPRng's order
        assert data.data == (docs / name).read_bytes() and data.count == len(data.data)
        assert control.name.startswith("cfB")  # the class's letter, as LPRng names it
        lines = control_lines(control.data)
        number = control.name[3:6]
        ids.append(f"{queue}-{number}")
        assert {"JInvoice", "TTitle", "CB", "Zduplex,a4", "W100", "Qq", "Rcc-4711"} <= set(
            lines)
        assert not [line for line in lines if line.startswith("L")]  # -h: no banner
        assert lines.count(f"l{data.name}") == 2  # two copies, format l
    assert out.splitlines() == ids


def test_standard_input_and_a_pipe_go_with_their_size(
        docs: Path, scripted_lpd: MakeScripted) -> None:
    server = scripted_lpd()
    queue = f"q@127.0.0.1%{server.port}"
    stdin = os.urandom(70_000)
    script = f'exec {LPFILTER} print -P {queue} - <(printf "from a pipe\\n")'
    run = subprocess.run(["bash", "-c", script], input=stdin, capture_output=True,
                         timeout=60, check=False, env=os.environ.copy())
    assert run.returncode == 0, run.stderr
    sent = [c.files[1] for c in server.connections]
    assert [f.data for f in sent] == [stdin, b"from a pipe\n"]
    assert [f.count for f in sent] == [len(stdin), 12]
    assert control_lines(server.connections[0].files[0].data)[2] == "Jstdin"


def test_a_refusal_for_good_ends_at_once_and_says_what_was_not_printed(
        docs: Path, scripted_lpd: MakeScripted, capsys: pytest.CaptureFixture[str]) -> None:
    server = scripted_lpd("nack-request", code=1)
    a, b = docs / "a.txt", docs / "b.txt"
    assert main(["lpr", "-r", "-P", f"q@127.0.0.1%{server.port}", str(a), str(b)]) == 6
    out, err = capsys.readouterr()
    assert out == ""
    assert "spool queue for 'q' does not exist" in err, err
    assert f"not printed: {a} and the 1 file after it" in err
    assert len(server.connections) == 1  # ack 1 is for good: no second try
    assert a.exists() and b.exists()  # -r removes only what the server took


def test_a_try_cut_off_after_its_data_is_made_again_and_flagged(
        docs: Path, scripted_lpd: MakeScripted, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LPFILTER_PRINT_WAIT", "1")  # a first try slower than 0.2 s: no pause
    server = scripted_lpd("close-first-before-final-ack")
    doc = docs / "a.txt"
    assert main(["print", "-r", "-P", f"q@127.0.0.1%{server.port}", str(doc)]) == 0
    out, err = capsys.readouterr()
    first, second = server.connections
    # LPRng's lpr: the whole job again, with the same job number
    assert [f.data for f in first.files] == [f.data for f in second.files]
    assert re.search(r"trying again in (0\.\d+|1) s \(try 2 of 3\)", err), err
    number = first.files[0].name[3:6]
    assert out == f"q@127.0.0.1%{server.port}-{number}\n"
    assert f"-{number}: possible duplicate: an earlier try was cut off" in err
    assert not doc.exists()  # -r: the server acknowledged it


def test_a_server_that_never_takes_it_leaves_the_file_and_exits_1(
        docs: Path, scripted_lpd: MakeScripted, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LPFILTER_PRINT_WAIT", "1")  # (as above: room for the first try)
    server = scripted_lpd("close-before-final-ack")
    doc = docs / "a.txt"
    assert main(["print", "-r", "-P", f"q@127.0.0.1%{server.port}", str(doc)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert len(server.connections) == 2  # the second pause would pass LPFILTER_PRINT_WAIT
    assert "the server may have it" in err and f"not printed: {doc}" in err, err
    assert doc.exists()


def test_no_server_listening_is_one_line_and_exit_1(
        docs: Path, scripted_lpd: MakeScripted, capsys: pytest.CaptureFixture[str]) -> None:
    server = scripted_lpd()
    port = server.port
    server.stop()  # nothing listens there any more
    assert main(["print", "-P", f"q@127.0.0.1%{port}", str(docs / "a.txt")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(f"not printed: {docs / 'a.txt'}"), err


@pytest.mark.parametrize("flag", ["--hold", "--wait"])
def test_hold_and_wait_are_refused_before_anything_is_sent(
        docs: Path, scripted_lpd: MakeScripted, capsys: pytest.CaptureFixture[str],
        flag: str) -> None:
    server = scripted_lpd()
    assert main(["print", flag, "-P", f"q@127.0.0.1%{server.port}", str(docs / "a.txt")]) == 2
    assert f"{flag}: a job sent straight to q@127.0.0.1%{server.port}" in \
        capsys.readouterr().err
    assert server.connections == []


def test_printer_lp_and_lpr_name_the_server_too(
        docs: Path, scripted_lpd: MakeScripted, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    server = scripted_lpd()
    queue = f"q@127.0.0.1%{server.port}"
    doc = str(docs / "a.txt")
    monkeypatch.setenv("PRINTER", queue)
    assert main(["lpr", doc]) == 0
    assert main(["lp", "-d", queue, "-n", "3", doc]) == 0
    out = capsys.readouterr().out.splitlines()
    numbers = [c.files[0].name[3:6] for c in server.connections]
    assert out == [f"{queue}-{numbers[0]}", f"request id is {queue}-{numbers[1]} (1 file(s))"]
    assert control_lines(server.connections[1].files[0].data).count(
        f"f{server.connections[1].files[1].name}") == 3
    assert main(["print", "-P", "q@", doc]) == 2  # no host: a usage error
    assert "write queue@host or queue@host%port" in capsys.readouterr().err
    before = len(server.connections)
    for name in ("q x@127.0.0.1", "q\x1b@127.0.0.1", "q" * 600 + "@127.0.0.1", "q@-x"):
        # what LPD cannot carry, a host that can never resolve: refused, nothing sent
        for command in ("print", "status", "cancel"):
            argv = [command, "-P", f"{name}%{server.port}", *([doc] if command == "print"
                                                             else [])]
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert err.startswith("lpfilter: -P ") and "\x1b" not in err, err
            assert "printcap" not in err, err
    assert len(server.connections) == before


def test_lpfilters_own_server_prints_the_bytes(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    server = start_server(kit)
    data = os.urandom(300_000)
    (kit.root / "job.bin").write_bytes(data)
    env = dict(kit.env, LPFILTER_PRINTCAP=str(kit.root / "none"))
    run = subprocess.run([LPFILTER, "print", "-P", server.queue(), "-Z", "tray=2",
                          "job.bin"], env=env, cwd=kit.root, capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert printed(kit) == [data]
    [ticket] = kit.tickets("q").values()
    assert ticket["name"] == "job.bin" and ticket["extra"]["control"]["Z"] == "tray=2"
    assert run.stdout.startswith(server.queue() + "-")


def test_lprngs_lpd_takes_the_job(docs: Path, real_lpd: RealLpd) -> None:
    data = os.urandom(50_000) + b"\r\n\0\x1b"
    (docs / "job.bin").write_bytes(data)
    assert main(["print", "-P", real_lpd.queue, str(docs / "job.bin")]) == 0
    assert real_lpd.wait_printed(len(data)) == data


def test_an_ordinary_user_sends_from_an_unreserved_port(scripted_lpd: MakeScripted) -> None:
    server = scripted_lpd()
    with made_user() as user, world() as made:
        run = user.run("print", "-P", f"q@127.0.0.1%{server.port}", str(made.doc),
                       env={"PATH": "/usr/bin:/bin", "LPFILTER_PRINTCAP": "/nonexistent"})
    assert run.returncode == 0, run.stderr
    [connection] = server.connections
    assert connection.peer_port >= 1024
    assert f"P{user.name}" in control_lines(connection.files[0].data)
    assert connection.files[1].data == b"a page of the user\n"


def test_standard_input_with_no_room_in_the_temporary_directory_is_exit_10(
        scripted_lpd: MakeScripted, tmp_path: Path) -> None:
    need_root("a small tmpfs in a private mount namespace")
    server = scripted_lpd()
    small = tmp_path / "small"
    small.mkdir()
    script = ('mount -t tmpfs -o size=64k tmpfs "$1" && shift && exec "$@"')
    run = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(small),
         LPFILTER, "print", "-P", f"q@127.0.0.1%{server.port}"],
        input=os.urandom(1 << 20), capture_output=True, timeout=60, check=False,
        env=dict(os.environ, TMPDIR=str(small), LPFILTER_PRINTCAP=str(tmp_path / "none")))
    assert run.returncode == 10, run.stderr
    assert run.stderr.decode().startswith(f"lpfilter: cannot write {small}: No space left")
    assert b"Traceback" not in run.stderr and server.connections == []


def test_ctrl_c_after_the_data_left_says_the_server_may_have_it(
        docs: Path, scripted_lpd: MakeScripted) -> None:
    server = scripted_lpd("hold-final-ack")
    proc = subprocess.Popen([LPFILTER, "print", "-P", f"q@127.0.0.1%{server.port}",
                             str(docs / "a.txt")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        wait_until(lambda: server.connections and len(server.connections[0].files) == 2
                   and server.connections[0].files[1].complete, what="the data file")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == 130 and out == ""
    assert "stopped after the job's data left: the server may have it" in err, err
    assert (docs / "a.txt").exists()


@pytest.mark.parametrize("queue", ["own", "q@127.0.0.1%1"])
def test_standard_input_closed_is_one_line_not_an_internal_error(
        tmp_path: Path, queue: str) -> None:
    """``lpr <&-``: a process started with standard input closed, printing standard input
    (into a spool, and straight to a server): exit 5 and one line, never 70; ``lpc`` alone
    reads no command then."""
    (tmp_path / "sd").mkdir()
    (tmp_path / "printcap").write_text(f"own:sd={tmp_path / 'sd'}:lp=/dev/null\n")
    env = dict(os.environ, LPFILTER_PRINTCAP=str(tmp_path / "printcap"),
               LPFILTER_LOCK_DIR=str(tmp_path / "locks"))
    for argv, status in (([LPFILTER, "print", "--no-wait", "-P", queue], 5),
                         ([LPFILTER, "lpc"], 0)):
        run = subprocess.run(["sh", "-c", '"$@" <&-', "sh", *argv], env=env, text=True,
                             capture_output=True, timeout=60, check=False)
        assert run.returncode == status, run
        assert "internal error" not in run.stderr and "Traceback" not in run.stderr, run
    assert "standard input is closed" in subprocess.run(
        ["sh", "-c", '"$@" <&-', "sh", LPFILTER, "print", "-P", queue], env=env, text=True,
        capture_output=True, timeout=60, check=False).stderr


def test_a_slow_try_uses_up_none_of_the_pauses(
        docs: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """LPFILTER_PRINT_WAIT bounds the pauses between tries, as the man page says; it
    counted the tries' own time too, so a server slower than it got one try, not three.
    Here each try takes 0.6 s (the server answers nothing, then closes) and the pauses
    may take 0.5 s in all: two tries, the one pause 0.5 s."""
    import socket
    import threading
    monkeypatch.setenv("LPFILTER_PRINT_WAIT", "0.5")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    taken: list[int] = []
    done = threading.Event()

    def serve() -> None:
        for _ in range(600):  # a minute at most; until the test is done
            if done.is_set():
                return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            taken.append(1)
            with conn:
                time.sleep(0.6)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        port = listener.getsockname()[1]
        assert main(["print", "-P", f"q@127.0.0.1%{port}", str(docs / "a.txt")]) == 1
    finally:
        done.set()
        server.join(20)
        listener.close()
    err = capsys.readouterr().err
    assert len(taken) == 2, err
    assert "trying again in 0.5 s (try 2 of 3)" in err, err
