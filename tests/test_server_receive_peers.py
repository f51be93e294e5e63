"""Real clients sending jobs to ``receive_job`` (issue 14): lpfilter's own LPD client (a
queue with ``lp=q@127.0.0.1%PORT``, ``print`` then ``watch --once``) and LPRng's ``lpr``
(with a private /etc/lprng in a mount namespace); and a receiving process killed with
SIGKILL in the middle of a job, whose staged file the next start removes."""
from __future__ import annotations

import contextlib
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from receivekit import WAIT, Client, Receiver, control_file, receiver  # noqa: F401 - a fixture
from spoolkit import Kit, kit, wait_until  # noqa: F401 - kit is a fixture

LPR = "/usr/bin/lpr"
ALL_BYTES = bytes(range(256)) * 16 + b"\r\n\n\r\x00\x1a\x0c\x04"


# --- lpfilter's own LPD client ------------------------------------------------------------
def test_lpfilters_client_delivers_byte_for_byte(kit: Kit, receiver: Receiver) -> None:  # noqa: F811
    kit.queue("fwd", f"q@127.0.0.1%{receiver.port}")
    data = ALL_BYTES + os.urandom(2 << 20) + ALL_BYTES
    path = kit.root / "report.bin"
    path.write_bytes(data)
    run = kit.run("print", "-P", "fwd", "--no-wait", "-J", "quarterly", "-T", "Q3 figures",
                  str(path))
    assert run.returncode == 0, run.stderr
    assert kit.run("watch", "--once", "-P", "fwd").returncode == 0
    (sent,) = kit.tickets("fwd").values()
    assert sent["state"] == "done" and not sent["possible_duplicate"]
    outcome = receiver.outcome()
    assert outcome.error is None
    (job,) = outcome.jobs
    assert receiver.data(job) == data and job.size == len(data)
    assert job.user == pwd.getpwuid(os.getuid()).pw_name
    assert (job.name, job.title, job.peer, job.source) == (
        "quarterly", "Q3 figures", "127.0.0.1", "lpd")
    assert receiver.jobs() == [job] and receiver.staged() == []


def test_lpfilters_client_sends_two_queued_jobs(kit: Kit, receiver: Receiver) -> None:  # noqa: F811
    kit.queue("fwd", f"q@127.0.0.1%{receiver.port}")
    for n in range(2):
        path = kit.root / f"j{n}.txt"
        path.write_bytes(f"job {n}\n".encode())
        assert kit.run("print", "-P", "fwd", "--no-wait", str(path)).returncode == 0
    assert kit.run("watch", "--once", "-P", "fwd").returncode == 0
    received = [job for _ in range(2) for job in receiver.outcome().jobs]
    assert sorted(receiver.data(j) for j in received) == [b"job 0\n", b"job 1\n"]
    assert sorted(j.name for j in received) == ["j0.txt", "j1.txt"]


# --- LPRng's lpr -------------------------------------------------------------------------
def need_lpr() -> None:
    reason = ""
    if not os.access(LPR, os.X_OK):
        reason = "LPRng's lpr is not installed: apt-get install lprng"
    elif not shutil.which("unshare"):
        reason = "unshare (util-linux) is not installed"
    elif os.geteuid() != 0:
        reason = "a private /etc/lprng for lpr (unshare -m) needs root"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, and .ci/run installs it)")
        pytest.skip(reason)


def lpr(root: Path, *args: str, stdin: bytes = b"",
        conf: str = "") -> subprocess.CompletedProcess[bytes]:
    """LPRng's lpr with a configuration of its own (an ordinary source port, no local lpd
    needed for ``q@host%port``; ``conf`` more lines), in a private mount namespace."""
    etc = root / "lprng-etc"
    etc.mkdir(exist_ok=True)
    (etc / "lpd.conf").write_text(f"printcap_path={etc}/printcap\nlpd_printcap_path=\n"
                                  "unix_socket_path=off\noriginate_port=\n"
                                  f"default_tmp_dir={root}\nsyslog_device=/dev/null\n"
                                  + conf)
    (etc / "printcap").write_text("")
    (etc / "lpd.perms").write_text("DEFAULT ACCEPT\n")
    script = 'mount --bind "$1" /etc/lprng && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                           "sh", str(etc), LPR, *args], input=stdin, capture_output=True,
                          timeout=60, check=False, cwd=root)


def test_lprngs_lpr_delivers_byte_for_byte(tmp_path: Path, receiver: Receiver) -> None:
    need_lpr()
    path = tmp_path / "job.txt"
    data = ALL_BYTES + os.urandom(1 << 20)
    path.write_bytes(data)
    run = lpr(tmp_path, "-P", f"q@127.0.0.1%{receiver.port}", "-J", "MyJob", "-T", "Title",
              str(path))
    assert run.returncode == 0, run.stderr
    outcome = receiver.outcome()
    assert outcome.error is None
    (job,) = outcome.jobs
    assert receiver.data(job) == data
    assert (job.user, job.name, job.title, job.job_class) == ("root", "MyJob", "Title", "A")
    assert receiver.staged() == []


def test_lprngs_lpr_sending_data_first(tmp_path: Path, receiver: Receiver) -> None:
    need_lpr()
    path = tmp_path / "job.txt"
    path.write_bytes(ALL_BYTES)
    run = lpr(tmp_path, "-P", f"q@127.0.0.1%{receiver.port}", str(path),
              conf="send_data_first\n")
    assert run.returncode == 0, run.stderr
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == ALL_BYTES


def test_lprngs_lpr_k_streams_with_size_0(tmp_path: Path, receiver: Receiver) -> None:
    need_lpr()
    data = os.urandom(300_000)
    run = lpr(tmp_path, "-k", "-P", f"q@127.0.0.1%{receiver.port}", stdin=data)
    assert run.returncode == 0, run.stderr
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == data and receiver.staged() == []


def test_lprngs_lpr_two_files_make_one_job(tmp_path: Path, receiver: Receiver) -> None:
    need_lpr()
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_bytes(b"first file\n")
    second.write_bytes(b"second file\n")
    run = lpr(tmp_path, "-P", f"q@127.0.0.1%{receiver.port}", str(first), str(second))
    assert run.returncode == 0, run.stderr
    (job,) = receiver.outcome().jobs
    assert receiver.data(job) == b"first file\nsecond file\n"


# --- SIGKILL in the middle of a job -------------------------------------------------------
RECEIVING = r'''
import socket, sys
from lpfilter import printcap
from lpfilter.protocols import lpd
from lpfilter.server.peer import Peer
from lpfilter.server.receive import receive_job
from lpfilter.server.wire import Wire
from lpfilter.spool.store import SpoolStore
entry = printcap.load([sys.argv[1]]).lookup("q")
store = SpoolStore(entry.string("sd"), "q")
store.ensure("watch")
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
sock, address = listener.accept()
wire = Wire(sock, idle_timeout=60)
wire.line(511)
wire.send(b"\0")
receive_job(wire, entry, store, Peer(address[0], address[1]))
'''


def test_a_receiver_killed_mid_job_leaves_only_what_the_next_start_removes(kit: Kit) -> None:  # noqa: F811
    sd = kit.queue("q", kit.recorder())
    proc = kit.spawn([sys.executable, "-c", RECEIVING, str(kit.printcap)])
    port = int(wait_until(lambda: proc.stdout().strip(), what="the receiver's port"))
    client = Client(port)
    assert client.control("cfA031client", control_file(31)) == b"\0"
    client.send(b"\x0310000000 dfA031client\n")
    assert client.ack() == b"\0"
    client.send(os.urandom(200_000))
    tmp = sd / ".lpfilter" / "tmp"
    wait_until(lambda: [p for p in tmp.iterdir() if p.stat().st_size >= 200_000],
               what="the data file being received")
    proc.signal(signal.SIGKILL)
    assert proc.wait(WAIT) == -signal.SIGKILL
    client.close()
    assert len(list(tmp.iterdir())) == 1  # the kill left the staged file
    run = kit.run("watch", "--once", "-P", "q")
    assert run.returncode == 0, run.stderr
    assert list(tmp.iterdir()) == [] and kit.tickets("q") == {}
    assert "left by a process that ended" in run.stderr
    assert not [p for p in (sd / ".lpfilter" / "jobs").iterdir() if p.suffix == ".data"]


def test_a_received_job_is_forwarded_as_it_came(kit: Kit, tmp_path: Path) -> None:  # noqa: F811
    """Two hops, as a site's print servers chain: a job received by one queue (user, name,
    print format l) is sent on by ``watch`` with lpfilter's LPD client, and the next server
    receives the same bytes, user, name and format."""
    (tmp_path / "second").mkdir()
    second = Receiver(tmp_path / "second")
    try:
        sd = kit.queue("q", f"q@127.0.0.1%{second.port}")
        first = Receiver(tmp_path, sd=sd)
        try:
            client = Client(first.port)
            cf = control_file(61, user="dave", J="relay", files=(("l", "dfA"),))
            assert client.control("cfA061client", cf) == b"\0"
            assert client.data("dfA061client", ALL_BYTES) == b"\0"
            client.finish()
            (received,) = first.outcome().jobs
        finally:
            first.close()
        run = kit.run("watch", "--once", "-P", "q")
        assert run.returncode == 0, run.stderr
        assert kit.states("q") == {received.id: "done"}
        (job,) = second.outcome().jobs
        assert second.data(job) == ALL_BYTES
        assert (job.user, job.name, job.print_format) == ("dave", "relay", "l")
    finally:
        second.close()


def test_a_received_job_is_printed_as_any_other(kit: Kit, tmp_path: Path) -> None:  # noqa: F811
    sd = kit.queue("q", kit.recorder())
    server = Receiver(tmp_path, sd=sd)
    try:
        client = Client(server.port)
        cf = control_file(64, user="erin", J="minutes")
        assert client.control("cfA064client", cf) == b"\0"
        assert client.data("dfA064client", ALL_BYTES) == b"\0"
        client.finish()
        (job,) = server.outcome().jobs
    finally:
        server.close()
    run = kit.run("watch", "--once", "-P", "q")
    assert run.returncode == 0, run.stderr
    assert kit.states("q") == {job.id: "done"}
    assert kit.output("q", job.id) == ALL_BYTES
    assert kit.log_lines()[0][5] == "minutes"
    status = kit.run("status", "-P", "q")
    assert status.returncode == 0 and "erin" in status.stdout + status.stderr


class AckDropper:
    """A loopback TCP relay between a client and the receiver that, on its first
    connection, closes both sides instead of passing on the ``drop``-th acknowledgement
    (the job's final one): the lost acknowledgement after which clients send a job again."""

    def __init__(self, target: int, drop: int) -> None:
        self.target, self.drop = target, drop
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(WAIT)
        for _ in range(2):
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with client, socket.create_connection(("127.0.0.1", self.target)) as server:
                self._relay(client, server, self.drop if self.connections == 1 else 0)

    def _relay(self, client: socket.socket, server: socket.socket, drop: int) -> None:
        acks = 0
        ends = {client: server, server: client}
        for _ in range(100_000):
            ready, _, _ = select.select(list(ends), [], [], WAIT)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if sock is server and drop:
                    acks += data.count(b"\0") if data.strip(b"\0") == b"" else 0
                    if acks >= drop:
                        return  # the final acknowledgement is lost
                if not data:
                    with contextlib.suppress(OSError):
                        ends[sock].shutdown(socket.SHUT_WR)
                    del ends[sock]
                    if sock is server or not ends:
                        return
                    continue
                ends[sock].sendall(data)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=WAIT)


def test_lprngs_lpr_retry_after_a_lost_final_ack_is_one_job(
        tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    need_lpr()
    relay = AckDropper(receiver.port, drop=5)  # request, cf line, cf, df line, df
    try:
        path = tmp_path / "job.txt"
        path.write_bytes(ALL_BYTES)
        run = lpr(tmp_path, "-P", f"q@127.0.0.1%{relay.port}", str(path),
                  conf="connect_interval=1\n")
        assert run.returncode == 0, run.stderr
    finally:
        relay.close()
    assert relay.connections == 2
    first, second = receiver.outcome(), receiver.outcome()
    assert len(first.jobs) == 1 and second.jobs == [] and second.error is None
    (job,) = receiver.jobs()
    assert receiver.data(job) == ALL_BYTES
    assert "not queued twice" in caplog.text


def test_lpfilters_client_retry_after_a_lost_final_ack_is_one_job(
        kit: Kit, receiver: Receiver) -> None:  # noqa: F811
    relay = AckDropper(receiver.port, drop=5)
    try:
        kit.queue("fwd", f"q@127.0.0.1%{relay.port}")
        path = kit.root / "once.txt"
        path.write_bytes(ALL_BYTES)
        assert kit.run("print", "-P", "fwd", "--no-wait", str(path)).returncode == 0
        for _ in range(3):  # the lost acknowledgement fails one try; a later one succeeds
            kit.run("watch", "--once", "-P", "fwd")
            if list(kit.states("fwd").values()) == ["done"]:
                break
    finally:
        relay.close()
    (sent,) = kit.tickets("fwd").values()
    assert sent["state"] == "done" and sent["possible_duplicate"]
    assert relay.connections == 2
    first, second = receiver.outcome(), receiver.outcome()
    assert len(first.jobs) == 1 and second.jobs == [] and second.error is None
    (job,) = receiver.jobs()
    assert receiver.data(job) == ALL_BYTES
