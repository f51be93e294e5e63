"""The print server as a daemon: ``lpfilter watch --listen 127.0.0.1:0`` run as a real
process, asked by raw RFC 1179 clients, by lpfilter's own client and (test_server_lprng.py)
by LPRng's. Hostile clients included; after each, the daemon still prints another job."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serverkit import Server, ask, prints_another_job, printed, read_all, send_job, start_server
from spoolkit import Kit, gone, kit, kit_at, wait_served, wait_until  # noqa: F401 - fixture

from lpfilter.cli import main
from lpfilter.protocols import lpd, lpdcontrol
from lpfilter.server.listener import REFUSAL


@pytest.fixture
def server(kit: Kit) -> Server:
    kit.queue("q", kit.recorder())
    return start_server(kit)


@pytest.fixture
def stuck(kit: Kit) -> Iterator[Server]:
    """A daemon whose printer takes the first job and never finishes it: later jobs wait
    in the queue (for status and remove)."""
    kit.queue("q", kit.recorder())
    (kit.out / "hang").touch()
    server = start_server(kit)
    send_job(server.port, b"first\n", user="zed", name="first.txt", number=1)
    wait_until(lambda: list(kit.out.glob("q-*.ready")), what="the first job to hang")
    yield server


def in_service(proc: psutil.Process, port: int) -> int:
    """Connections the daemon has accepted on ``port`` (the kernel's backlog not counted)."""
    return sum(1 for c in proc.net_connections("tcp")
               if c.laddr and c.laddr[1] == port and c.status == psutil.CONN_ESTABLISHED)


# --- requests -------------------------------------------------------------------------
def test_a_job_sent_over_tcp_is_printed_byte_for_byte(kit: Kit, server: Server) -> None:
    data = bytes(range(256)) * 40 + b"\r\n\x0c end"
    send_job(server.port, data)
    assert printed(kit) == [data]
    ticket = next(iter(kit.tickets("q").values()))
    assert ticket["user"] == "alice" and ticket["peer"] == "127.0.0.1"


def test_jobs_of_a_long_connection_print_while_it_goes_on(kit: Kit, server: Server) -> None:
    """Several jobs on one connection (as LPRng's lpr sends them): each is printed once
    it is queued, not when the client at last closes, and logged as received even when
    the connection later ends in a fault."""
    names = lpd.JobNames(7, "client")
    control = lpdcontrol.build(lpdcontrol.ControlFields(
        host="client", user="eve", job_name="one",
        files=(lpdcontrol.DataFile(names.data(0), "f", "one"),)))
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        for out in (lpd.receive_job("q"),
                    lpd.file_line(lpd.Subcommand.CONTROL_FILE, len(control), names.control),
                    control + b"\0", lpd.file_line(lpd.Subcommand.DATA_FILE, 4, names.data(0)),
                    b"one\n\0"):
            sock.sendall(out)
            assert sock.recv(1) == b"\0"
        assert printed(kit) == [b"one\n"]  # the connection is still open
        sock.sendall(b"\x09 not a subcommand\n")  # then a fault: the connection ends
        assert sock.recv(1) not in (b"", b"\0")
    wait_until(lambda: "not an LPD subcommand" in server.proc.stderr(), what="the fault logged")
    assert "received job q-000001 (one, 4 bytes, user eve)" in server.proc.stderr()
    prints_another_job(kit, server)


def test_long_and_short_status_list_the_waiting_jobs(kit: Kit, stuck: Server) -> None:
    send_job(stuck.port, b"two\n", user="alice", name="report.pdf", number=2)
    send_job(stuck.port, b"three\n", user="bob", name="memo.txt", number=3)
    long = ask(stuck.port, b"\x04q\n").decode()
    assert long.startswith("Printer: q@")
    assert " Queue: 3 printable jobs" in long
    rows = [line for line in long.splitlines() if "@" in line and "+" in line]
    # LPRng's lpd ranks a job by its place in the whole queue (Get_queue_status: count+1),
    # the active one included, and keeps that rank when the list picks only some jobs.
    assert [r.split()[0] for r in rows] == ["active", "2", "3"]
    assert "alice@client+2" in rows[1] and "report.pdf" in rows[1]
    assert "bob@client+3" in rows[2] and "memo.txt" in rows[2]
    only_bob = ask(stuck.port, b"\x04q bob\n").decode()
    assert "memo.txt" in only_bob and "report.pdf" not in only_bob
    [bob] = [line for line in only_bob.splitlines() if "bob@client+3" in line]
    assert bob.split()[0] == "3"
    assert ask(stuck.port, b"\x03q\n").decode().endswith(" 3 jobs\n")
    assert ask(stuck.port, b"\x03q alice\n").decode().endswith(" 1 job\n")
    out = kit.run("status", "-l", "-P", stuck.queue())
    assert out.returncode == 0 and "report.pdf" in out.stdout, out
    out = kit.run("lpq", "-l", "-P", stuck.queue(), "bob")  # the list goes to the server
    assert "memo.txt" in out.stdout and "report.pdf" not in out.stdout, out
    assert kit.run("lpq", "-s", "-P", stuck.queue(), "3").stdout.endswith(" 1 job\n")


def test_remove_only_the_claimed_users_jobs_from_the_same_address(
        kit: Kit, stuck: Server) -> None:
    """Over TCP the user is a claim: alice at 127.0.0.1 removes her job sent from there,
    not her job sent from 127.0.0.2, not bob's; a claimed root gets no more."""
    send_job(stuck.port, b"a1\n", user="alice", name="a1", number=2)
    send_job(stuck.port, b"a2\n", user="alice", name="a2", number=3, source="127.0.0.2")
    send_job(stuck.port, b"b1\n", user="bob", name="b1", number=4)
    ids = {t["name"]: i for i, t in kit.tickets("q").items()}
    root = ask(stuck.port, f"\x05q root all {int(ids['b1'])}\n".encode()).decode()
    assert "no permission" in root and "dequeued" not in root
    send_job(stuck.port, b"a3\n", user="alice", name="a3", number=5)
    first = ask(stuck.port, b"\x05q alice\n").decode()  # no list: her first job only
    assert first.count("dequeued") == 1 and f"alice@client+{int(ids['a1'])}'" in first
    answer = ask(stuck.port, b"\x05q alice all\n").decode()
    assert answer.count("dequeued") == 1 and "alice@client+" in answer
    states = {kit.ticket("q", i)["name"]: s for i, s in kit.states("q").items()}
    assert states == {"first.txt": "active", "a2": "queued", "b1": "queued"}
    out = kit.run("cancel", "-P", stuck.queue(), str(int(ids["b1"])))
    assert out.returncode == 0 and "no permission" in out.stdout  # lpfilter's client: root


def test_the_queue_all_is_every_queue_as_lprng_lpd_takes_it(kit: Kit) -> None:
    """``lpq -Pall`` and ``lprm -Pall`` reach the server as a request for the queue
    ``all``, which LPRng's lpd answers for each queue it serves; lpfilter's own
    ``status -P all`` and ``cancel -P all`` are ``-a``. A queue stopped keeps its jobs."""
    for name in ("q", "r"):
        kit.queue(name, kit.recorder())
    server = start_server(kit)
    wait_served(kit, "r", server.proc)
    for name in ("q", "r"):
        assert kit.run("stop", "-P", name).returncode == 0
        send_job(server.port, f"{name}\n".encode(), queue=name, name=f"{name}.txt")
    long = ask(server.port, b"\x04all\n").decode()
    assert long.index("Printer: q@") < long.index("q.txt") < long.index("Printer: r@") < (
        long.index("r.txt")), long
    short = ask(server.port, b"\x03ALL\n").decode().splitlines()
    assert [line.split("@")[0] for line in short] == ["q", "r"], short
    assert all(" 1 job" in line for line in short), short
    out = kit.run("status", "-P", "all")
    assert out.returncode == 0 and "Queue q:" in out.stdout and "Queue r:" in out.stdout, out
    removed = ask(server.port, b"\x05all alice all\n").decode()
    assert removed.count("dequeued 'alice@client+") == 2, removed
    assert all(set(kit.states(n).values()) <= {"cancelled"} for n in ("q", "r"))  # or gone
    for name in ("q", "r"):
        send_job(server.port, f"{name}\n".encode(), queue=name, name=f"{name}2.txt", number=2)
    out = kit.run("cancel", "-P", "all", "all")
    assert out.returncode == 0 and out.stdout.count("cancelled") == 2, out
    assert "queue not served here" not in server.proc.stderr()
    assert kit.run("start", "-P", "q").returncode == 0
    prints_another_job(kit, server)


def test_print_waiting_jobs_is_acknowledged(server: Server, kit: Kit) -> None:
    assert ask(server.port, b"\x01q\n") == b"\0"
    prints_another_job(kit, server)


# --- hostile and broken clients -------------------------------------------------------
def test_a_queue_that_does_not_exist(kit: Kit, server: Server) -> None:
    for request in (b"\x02nosuch\n", b"\x01nosuch\n"):
        reply = ask(server.port, request)
        assert reply[:1] == b"\x01" and b"nosuch" in reply
    assert b"ERROR" in ask(server.port, b"\x04nosuch\n")
    assert b"ERROR" in ask(server.port, b"\x05nosuch root all\n")
    prints_another_job(kit, server)
    assert "queue not served here: nosuch" in server.proc.stderr()


def test_a_host_not_on_the_allow_list_is_closed_at_once(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    server = start_server(kit, "--allow", "127.0.0.1/32")
    assert ask(server.port, b"\x04q\n", source="127.0.0.2") == REFUSAL
    assert kit.states("q") == {}
    prints_another_job(kit, server)
    assert "refused a connection from 127.0.0.2: not on the allow-list" in server.proc.stderr()


def test_the_default_allow_list_is_loopback_only(kit: Kit) -> None:
    """127.0.0.2 is loopback (127.0.0.0/8): served without --allow."""
    kit.queue("q", kit.recorder())
    server = start_server(kit)
    send_job(server.port, b"from .2\n", source="127.0.0.2")
    assert printed(kit) == [b"from .2\n"]


def test_request_lines_of_random_bytes(kit: Kit, server: Server) -> None:
    @settings(max_examples=80, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=700), st.sampled_from([b"", b"\n", b"\x04q ", b"\x05q "]))
    def one(data: bytes, prefix: bytes) -> None:
        reply = ask(server.port, prefix + data + b"\n")
        assert len(reply) < 100_000
        assert server.proc.popen.poll() is None

    one()
    prints_another_job(kit, server)
    assert "Traceback" not in server.proc.stderr()


def test_not_lpd_from_the_network_is_refused(kit: Kit, server: Server) -> None:
    reply = ask(server.port, b"HELLO q\x1b[2J\n")
    assert reply[:1] == b"\x01"
    prints_another_job(kit, server)
    assert "refused a request that is not LPD: 'HELLO q\\x1b[2J'" in server.proc.stderr()


def test_silent_and_trickling_clients_are_cut_while_others_print(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    server = start_server(kit, "--idle-timeout", "1")
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    trickle = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    done = threading.Event()

    def drip() -> None:  # a byte every 0.3 s: never a whole line within the limit
        trickle.sendall(b"\x04")
        for _ in range(100):
            if done.wait(0.3):
                return
            try:
                trickle.sendall(b"q")
            except OSError:
                return

    dripper = threading.Thread(target=drip)
    dripper.start()
    with silent, trickle:
        try:
            prints_another_job(kit, server)
            assert read_all(silent) == b""
            assert read_all(trickle) == b""
        finally:
            done.set()
            dripper.join(30)
    assert server.proc.stderr().count("took more than 1 s") == 2
    prints_another_job(kit, server)


def test_500_connections_at_once(kit: Kit) -> None:
    """At the limit the daemon accepts no more (the kernel's backlog holds them); it stays
    up, serves each in turn and prints a later client's job."""
    kit.queue("q", kit.recorder())
    server = start_server(kit, "--max-connections", "10", "--idle-timeout", "30")
    daemon = psutil.Process(server.proc.pid)
    threads = daemon.num_threads()
    clients = [socket.create_connection(("127.0.0.1", server.port), timeout=30,
                                        source_address=(f"127.0.{n // 250}.{n % 250 + 1}", 0))
               for n in range(500)]  # 500 hosts: one holds at most a share (limits.py)
    try:
        wait_until(lambda: in_service(daemon, server.port) == 10,
                   what="the daemon to serve 10 connections")
        for _ in range(20):
            assert in_service(daemon, server.port) == 10
        for client in clients[:250]:  # these ask for status and read the answer
            client.sendall(b"\x03q\n")
        for client in clients[250:]:  # these go away
            client.close()
        answers = [read_all(client) for client in clients[:250]]
        assert all(a.endswith(b" 0 jobs\n") for a in answers), set(answers)
    finally:
        for client in clients:
            client.close()
    prints_another_job(kit, server)
    assert "Traceback" not in server.proc.stderr()
    wait_until(lambda: daemon.num_threads() == threads, what="every connection's thread to end")


def settled_threads(process: psutil.Process, quiet: float = 0.5, limit: float = 20.0) -> int:
    """``process``'s thread count once it has held still for ``quiet`` seconds: a daemon
    starts threads just after it says it listens, and under load the count read at once
    could miss one (the count after a request then never came back to it)."""
    deadline = time.monotonic() + limit
    count, since = process.num_threads(), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"its threads did not settle in {limit:g} s"
        time.sleep(0.02)
        if (now := process.num_threads()) != count:
            count, since = now, time.monotonic()
    return count


def test_an_idle_server_uses_no_cpu(kit: Kit, server: Server) -> None:
    """After serving, the listener waits in select without a timeout: no thread wakes."""
    daemon = psutil.Process(server.proc.pid)
    threads = settled_threads(daemon)
    assert ask(server.port, b"\x04q\n").startswith(b"Printer: q@")
    wait_until(lambda: daemon.num_threads() == threads, what="the connection's thread to end")
    cpu = sum(daemon.cpu_times()[:2])
    window = 2.0
    time.sleep(window)  # a window to measure in, not a wait for an event
    used = sum(daemon.cpu_times()[:2]) - cpu
    assert used < window / 20, f"{used:.2f} s of CPU in {window:g} s: it spins"


def test_the_unix_socket_serves_lpd_requests_as_the_kernels_user(
        kit: Kit, stuck: Server) -> None:
    """On the local socket the user is the kernel's (root here): whatever agent the
    request names, root may remove anyone's job."""
    send_job(stuck.port, b"mine\n", user="alice", name="alices.txt", number=2)
    number = next(int(i) for i, t in kit.tickets("q").items() if t["name"] == "alices.txt")
    with socket.socket(socket.AF_UNIX) as local:
        local.settimeout(20)
        local.connect(str(kit.root / "lpfilter.sock"))
        local.sendall(f"\x05q mallory {number}\n".encode())
        local.shutdown(socket.SHUT_WR)
        answer = read_all(local)
    assert b"dequeued 'alice@client+" in answer, answer
    assert "alices.txt" not in {t["name"] for t in kit.tickets("q").values()}
    assert "local user root" in stuck.proc.stderr()


def test_a_port_alone_listens_on_ipv6_and_ipv4(kit: Kit) -> None:
    """``--listen PORT``: every address; an IPv4 client is seen (allow-list, the job's
    address) as IPv4, not as ::ffff:127.0.0.1."""
    kit.queue("q", kit.recorder())
    kit.env["LPFILTER_SOCKET"] = str(kit.root / "s")
    for _ in range(5):  # a port free a moment ago may be another process's by now
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        proc = kit.start("watch", "--listen", str(port))
        wait_until(lambda p=proc, n=port: f"print server on [::]:{n}" in p.stderr()
                   or p.popen.poll() is not None, what="listening")
        if "Address already in use" not in proc.stderr():
            break
        proc.wait(20)
    send_job(port, b"dual stack\n")
    assert printed(kit) == [b"dual stack\n"]
    assert next(iter(kit.tickets("q").values()))["peer"] == "127.0.0.1"


def test_shutdown_ends_connections_at_once(kit: Kit, server: Server) -> None:
    """A silent client (the idle limit is 60 s) does not hold up SIGTERM."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as silent:
        silent.sendall(b"\x04")
        wait_until(lambda: in_service(psutil.Process(server.proc.pid), server.port) == 1,
                   what="the connection to be served")
        assert server.proc.stop() == 0
        assert read_all(silent) == b""
    assert "server is shutting down" in server.proc.stderr()


# --- two daemons: one forwards to the other -------------------------------------------
def test_a_daemon_forwards_to_another_daemon_which_prints(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with kit_at(tmp_path / "b") as b, kit_at(tmp_path / "a") as a:
        b.queue("q", b.recorder())
        printer = start_server(b)
        a.queue("fwd", f"q@127.0.0.1%{printer.port}")
        relay = start_server(a, queue="fwd")
        data = os.urandom(70_000)
        send_job(relay.port, data, queue="fwd", user="dora", name="over.bin",
                 other=(("Z", "duplex"), ("W", "132")))  # lpr -Z duplex -w 132
        (tmp_path / "local.txt").write_bytes(b"printed here, sent there\n")
        out = a.run("print", "-P", "fwd", str(tmp_path / "local.txt"))
        assert out.returncode == 0, out
        assert sorted(printed(b, "q", 2)) == sorted([data, b"printed here, sent there\n"])
        [dora] = [t for t in b.tickets("q").values() if t["user"] == "dora"]
        assert {k: dora["extra"]["control"][k] for k in "ZW"} == {"Z": "duplex", "W": "132"}
        shown = a.run("status", "-P", "fwd")
        assert shown.returncode == 0, shown
        assert f"Remote queue q@127.0.0.1%{printer.port}:" in shown.stdout, shown.stdout
        assert shown.stdout.rstrip().endswith(" 0 jobs"), shown.stdout
        assert relay.proc.stop() == 0 and printer.proc.stop() == 0


# --- the command line -------------------------------------------------------------------
def test_listen_is_for_the_daemon_only(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    env = {**kit.env, "LPFILTER_SOCKET": str(kit.root / "s")}
    assert main(["watch", "--once", "--listen", "127.0.0.1:0"], env) == 2
    for bad in ("127.0.0.1:99999", "::1:515", "host.example:515", "x"):
        assert main(["watch", "--listen", bad], env) == 2, bad
    assert main(["watch", "--allow", "300.1.1.1/8"], env) == 2
    assert main(["watch", "--max-connections", "0"], env) == 2
    assert main(["watch", "--idle-timeout", "nan"], env) == 2


def test_a_port_in_use_is_one_line_and_exit_5(kit: Kit) -> None:
    kit.queue("q", kit.recorder())
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        out = kit.run("watch", "--listen", f"127.0.0.1:{port}")
    assert out.returncode == 5
    assert out.stderr.strip().endswith(f"cannot listen on 127.0.0.1:{port}: Address already"
                                       " in use"), out.stderr


def test_ipv6_loopback(kit: Kit) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    kit.queue("q", kit.recorder())
    kit.env["LPFILTER_SOCKET"] = str(kit.root / "s")
    proc = kit.start("watch", "--listen", "[::1]:0")
    found = wait_until(lambda: re.search(r"print server on \[::1\]:(\d+)", proc.stderr()),
                       what="listening")
    with socket.create_connection(("::1", int(found.group(1))), timeout=20) as sock:
        sock.sendall(b"\x03q\n")
        assert read_all(sock).endswith(b" 0 jobs\n")


def test_systemd_socket_activation(kit: Kit) -> None:
    """A socket passed as descriptor 3 with LISTEN_FDS/LISTEN_PID is served, as when
    lpfilter.socket (port 515) starts the service."""
    kit.queue("q", kit.recorder())
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    fd = listening.fileno()
    wrapper = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.close(int(sys.argv[1]));"
               " os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1');"
               " os.execv(sys.executable, [sys.executable, '-m', 'lpfilter', 'watch'])")
    env = {**kit.env, "LPFILTER_SOCKET": str(kit.root / "s")}
    with open(kit.root / "sd.err", "wb") as err:
        popen = subprocess.Popen([sys.executable, "-c", wrapper, str(fd)], env=env,
                                 pass_fds=(fd,), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err)
    listening.close()
    try:
        wait_until(lambda: f"print server on 127.0.0.1:{port}" in
                   (kit.root / "sd.err").read_text(), what="the inherited socket")
        send_job(port, b"activated\n")
        assert printed(kit) == [b"activated\n"]
    finally:
        popen.send_signal(signal.SIGTERM)
        assert popen.wait(timeout=30) == 0
    assert gone(popen.pid)


def test_the_unix_socket_file_goes_when_the_daemon_stops(kit: Kit, server: Server) -> None:
    path = Path(kit.env["LPFILTER_SOCKET"])
    wait_until(path.exists, what="the socket")
    assert server.proc.stop() == 0
    assert not path.exists()


def test_a_socket_file_another_daemon_put_there_is_left(tmp_path: Path) -> None:
    """Only the file this daemon bound is removed: a newer daemon's (another inode) stays."""
    from lpfilter.server.local import open_local_socket, remove_socket_file, socket_file
    path = tmp_path / "lpfilter.sock"
    with open_local_socket(str(path)):
        ours = socket_file(str(path))
    path.unlink()
    with open_local_socket(str(path)):
        remove_socket_file(str(path), ours)
        assert path.exists()
        remove_socket_file(str(path), socket_file(str(path)))
        assert not path.exists()
