"""The print server against what the review of issue 14 found: descriptors kept per
request, the loopback peer's real user, the connection limits per class and per client,
the status file read safely, listening without IPv6, accept out of descriptors, a bounded
local answer. Real daemons, real sockets on loopback, real users."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from spoolkit import Kit, kit, wait_served, wait_until  # noqa: F401 - fixture

from lpfilter.protocols import lpdlocal
from lpfilter.server.listener import BUSY


def _local(path: str, request: bytes) -> dict[str, object]:
    """One local request over the daemon's Unix socket, its whole JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(path)
        sock.sendall(request)
        data = b""
        for _ in range(10000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return lpdlocal.parse_reply(data)


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_local_cancels_keep_no_descriptor_open(kit: Kit) -> None:
    kit.queue("q", kit.recorder(), lf="log")
    sock = str(kit.root / "lpfilter.sock")
    kit.env["LPFILTER_SOCKET"] = sock
    doc = kit.root / "doc.txt"
    doc.write_text("page\n")
    for _ in range(21):
        assert kit.run("print", "--hold", "-P", "q", str(doc)).returncode == 0
    daemon = kit.start("watch")
    wait_served(kit, "q", daemon)
    wait_until(lambda: Path(sock).exists(), what="the socket")

    def cancel(job: int) -> None:
        answer = _local(sock, lpdlocal.control_request("q", "root", "cancel", named=(job,)))
        assert answer["ok"] is True, answer
        assert answer["results"][0]["kind"] == "changed", answer  # type: ignore[index]

    cancel(1)  # the first one opens what stays open by design (the log of the queue...)
    before = _fds(daemon.pid)
    for job in range(2, 22):
        cancel(job)
    assert _fds(daemon.pid) <= before + 2  # was one more per cancel: 20 more
    assert "000021" not in kit.states("q")
    assert daemon.stop() == 0


ROWS = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
    "  timeout inode\n"
    "   0: 0100007F:0203 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
    "        0 1 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0100007F:A001 0100007F:0203 01 00000000:00000000 00:00000000 00000000  1234"
    "        0 2 1 0000000000000000 20 4 30 10 -1\n"
    "   2: 0100007F:A002 0100007F:0203 06 00000000:00000000 03:00001770 00000000     0"
    "        0 0 3 0000000000000000\n"
    "   3: garbage\n"
    "   4: 0100007F:A003 0100007F:0203 05 00000000:00000000 00:00000000 00000000  1235"
    "        0 2 1 0000000000000000 20 4 30 10 -1\n"
    "   5: 0100007F:A004 0100007F:0203 05 00000000:00000000 01:00000014 00000000     0"
    "        0 0 1 0000000000000000 20 4 30 10 -1\n"  # closed by its process: no inode
    "   6: 0100007F:A005 0100007F:0203 04 00000000:00000000 01:00000014 00000000  1236"
    "        0 0 1 0000000000000000 20 4 30 10 -1\n")
ROWS6 = (
    "  sl  local_address                         remote_address                        st"
    " tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000001000000:B001 00000000000000000000000001000000:0203 01"
    " 00000000:00000000 00:00000000 00000000  4321        0 5 1 0 20 4 30 10 -1\n"
    "   1: 0000000000000000FFFF00000100007F:B002 0000000000000000FFFF00000100007F:0203 01"
    " 00000000:00000000 00:00000000 00000000  4322        0 6 1 0 20 4 30 10 -1\n")


def test_the_owner_of_a_loopback_socket_is_read_from_proc_net_tcp() -> None:
    import ipaddress
    import sys

    from lpfilter.server.loopuid import decode, owner_uid
    assert sys.byteorder == "little"  # the sample rows are an x86 kernel's
    v4, v6 = ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")
    assert decode("0100007F:0203") == (v4, 515)
    assert owner_uid(ROWS, (v4, 0xA001), (v4, 515)) == 1234
    assert owner_uid(ROWS, (v4, 515), (v4, 0xA001)) is None  # the server's own end
    assert owner_uid(ROWS, (v4, 0xA002), (v4, 515)) is None  # TIME_WAIT: uid 0, no owner
    assert owner_uid(ROWS, (v4, 0xA003), (v4, 515)) == 1235  # half-closed: still its own
    assert owner_uid(ROWS, (v4, 0xA004), (v4, 515)) is None  # closed: uid 0 is nobody's
    assert owner_uid(ROWS, (v4, 0xA005), (v4, 515)) is None  # closed, its uid still shown
    assert owner_uid(ROWS, (v4, 0xA001), (v4, 516)) is None
    assert owner_uid(ROWS6, (v6, 0xB001), (v6, 515)) == 4321
    assert owner_uid(ROWS6, (v4, 0xB002), (v4, 515)) == 4322  # IPv4-mapped, as IPv4
    assert owner_uid("", (v4, 1), (v4, 2)) is None


def test_a_local_user_over_tcp_loopback_is_the_kernels_user(tmp_path: Path) -> None:
    """``lpr -P q@localhost`` by an ordinary user: the job is that user's whatever the
    control file claims, and a claimed name removes no one else's job from 127.0.0.1."""
    from localkit import made_user
    from serverkit import send_job, start_server
    from spoolkit import open_kit
    with made_user() as user, open_kit("lpfilter-loopuid-") as kit:
        kit.queue("q", kit.recorder())
        (kit.out / "hang").touch()  # job 1 stays, being printed
        server = start_server(kit)
        send_job(server.port, b"alice's\n", user="alice")  # root's client: TCP rules
        wait_until(lambda: (kit.out / "q-000001.ready").exists(), what="job 1")
        assert kit.ticket("q", "000001")["user"] == "alice"
        script = (
            "import socket, sys\n"
            "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
            "def step(data):\n"
            "    s.sendall(data); assert s.recv(1) == b'\\0', data\n"
            "cf = b'Hclient\\nPalice\\nJforged\\nLalice\\nfdfA002client\\n'\n"
            "step(b'\\x02q\\n'); step(b'\\x02%d cfA002client\\n' % len(cf))\n"
            "step(cf + b'\\0'); step(b'\\x036 dfA002client\\n'); step(b'forged\\0')\n"
            "s.close()\n"
            "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
            "s.sendall(b'\\x05q alice 1\\n'); s.shutdown(socket.SHUT_WR)\n"
            "while s.recv(4096): pass\n")
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        done = user.python("-c", script, str(server.port), env=env)
        assert done.returncode == 0, done.stderr
        wait_until(lambda: "000002" in kit.tickets("q"), what="job 2")
        assert kit.ticket("q", "000002")["user"] == user.name  # not alice
        assert "000001" in kit.states("q")  # alice's job: not the user's to remove
        assert kit.run("cancel", "q-1").returncode == 0
        (kit.out / "hang").unlink()
        assert server.proc.stop() == 0


def test_a_local_user_who_closes_before_being_accepted_gets_no_rights() -> None:
    """An ordinary user sends lpc's disable as root and a remove of alice's job, each
    closed at once, while the daemon does not accept (stopped): the kernel keeps the
    closed ends as timewait sockets shown with uid 0. lpfilter took them for root's: the
    queue was disabled and alice's job (from root's client on 127.0.0.1) removed."""
    import signal

    from localkit import made_user
    from serverkit import send_job, start_server
    from spoolkit import open_kit
    from test_sockdiag import _orphaned
    with made_user() as user, open_kit("lpfilter-orphan-") as kit:
        kit.queue("q", kit.recorder())
        (kit.out / "hang").touch()  # job 1 is being printed, job 2 waits
        server = start_server(kit)
        for number in (1, 2):
            send_job(server.port, b"alice's\n", user="alice", number=number)
        wait_until(lambda: len(kit.tickets("q")) == 2, what="two jobs")
        script = ("import socket, sys\n"
                  "for line in sys.argv[2:]:\n"
                  "    s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
                  "    s.sendall(line.encode('latin-1') + b'\\n')\n"
                  "    print(s.getsockname()[1]); s.close()\n")
        pid = server.proc.popen.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            done = user.python("-c", script, str(server.port), "\x06q root disable q",
                               "\x05q alice 2", env={"PATH": "/usr/bin:/bin"})
            assert done.returncode == 0, done.stderr
            for port in done.stdout.split():
                _orphaned(("127.0.0.1", int(port)), ("127.0.0.1", server.port))
        finally:
            os.kill(pid, signal.SIGCONT)

        def answered() -> str:
            text = server.proc.stderr()
            return text if text.count("(owner unknown)") >= 2 else ""
        log = wait_until(answered, what="both requests answered")
        assert "lpc disable q: permission denied" in log, log
        assert "remove q-000002 for alice: no permission" in log, log
        status = kit.run("lpc", "status", "q")
        assert status.returncode == 0 and "disabled" not in status.stdout, status
        assert kit.states("q")["000002"] == "queued"  # not removed
        (kit.out / "hang").unlink()
        assert server.proc.stop() == 0


def test_one_address_holding_its_share_blocks_neither_hosts_nor_local_users(kit: Kit) -> None:
    """--max-connections 8: one address holds at most 2 (a quarter); a host filling the
    TCP class leaves the Unix socket served (a class of its own)."""
    import psutil
    from serverkit import read_all, start_server
    kit.queue("q", kit.recorder())
    server = start_server(kit, "--max-connections", "8")
    sock = kit.env["LPFILTER_SOCKET"]
    daemon = psutil.Process(server.proc.pid)

    def accepted() -> int:
        return sum(1 for c in daemon.net_connections("tcp") if c.laddr and
                   c.laddr[1] == server.port and c.status == psutil.CONN_ESTABLISHED)

    def idle(source: str) -> socket.socket:
        return socket.create_connection(("127.0.0.1", server.port), timeout=30,
                                        source_address=(source, 0))

    held = [idle("127.0.0.1"), idle("127.0.0.1")]
    try:
        with idle("127.0.0.1") as third:
            assert read_all(third) == BUSY
        for n in (2, 3, 4):  # the TCP class full: 8 idle connections
            held += [idle(f"127.0.0.{n}"), idle(f"127.0.0.{n}")]
        wait_until(lambda: accepted() == 8, what="8 connections in service")
        answer = _local(sock, lpdlocal.control_request("q", "root", "status"))
        assert answer["ok"] is True, answer
        assert accepted() == 8
    finally:
        for conn in held:
            conn.close()
    assert "too many connections" not in server.proc.stderr()
    assert "it holds its share of the connections already" in server.proc.stderr()
    assert server.proc.stop() == 0


def test_the_status_file_is_read_only_when_safe(tmp_path: Path) -> None:
    """A hard link or a symbolic link planted at ``ps`` is never read (root's daemon
    serves that text to every client)."""
    from lpfilter import printcap
    from lpfilter.spool.records import QueueRecords
    sd = tmp_path / "sd"
    sd.mkdir()
    (tmp_path / "pc").write_text(f"q:sd={sd}:lp=/dev/null:ps=status\n")
    records = QueueRecords(printcap.load([str(tmp_path / "pc")]).lookup("q"))
    records.status("printer ready")
    assert records.last_status().endswith(" printer ready")
    secret = tmp_path / "secret"
    secret.write_text("root:$6$hash:19000::::::\n")
    status = sd / "status"
    status.unlink()
    os.link(secret, status)
    assert records.last_status() == ""
    status.unlink()
    status.symlink_to(secret)
    assert records.last_status() == ""
    status.unlink()
    os.mkfifo(status)
    assert records.last_status() == ""


class _OneQueue:
    """The Queues of one printcap queue, its store opened as the daemon's is."""

    def __init__(self, pc: Path) -> None:
        from lpfilter import printcap
        self.entry = printcap.load([str(pc)]).lookup("q")

    def find(self, name: str) -> tuple[object, object] | None:
        from lpfilter.spool.store import SpoolStore
        store = SpoolStore(self.entry.string("sd") or "", "q")
        store.ensure("watch")
        return self.entry, store

    def wake(self, name: str) -> None:
        pass


def test_an_os_error_in_a_local_request_is_a_json_answer(tmp_path: Path) -> None:
    """A job's data file turned into a directory: the cancel fails with an OSError (the
    unlink), which the client gets as one JSON error answer, not a closed connection.
    (Once the tickets' lock as a directory: the journal's lock is now refused as not a
    file lpfilter made, one AccessError line, test_spool_units.)"""
    from lpfilter.server.local import serve_local_request
    from lpfilter.server.peer import Peer
    from lpfilter.server.wire import Wire
    from lpfilter.spool.store import SpoolStore
    sd = tmp_path / "sd"
    sd.mkdir()
    (tmp_path / "pc").write_text(f"q:sd={sd}:lp=/dev/null\n")
    queues = _OneQueue(tmp_path / "pc")
    store = SpoolStore(str(sd), "q")
    store.ensure("watch")
    from lpfilter.job import Job
    store.write(Job("000001", "q", "root", "doc", 5, 1.0))
    Path(store.data_path("000001")).mkdir()
    server, client = socket.socketpair()
    with server, client:
        wire = Wire(server, idle_timeout=10, stop=__import__("threading").Event())
        line = lpdlocal.control_request("q", "root", "cancel", named=(1,))
        serve_local_request(wire, line.rstrip(b"\n"), Peer("", uid=0, user="root"),
                            queues)  # type: ignore[arg-type]
        server.shutdown(socket.SHUT_WR)
        client.settimeout(10)
        answer = lpdlocal.parse_reply(client.recv(65536))
    assert answer["ok"] is False and answer["kind"] == "refused", answer
    assert "could not cancel" in str(answer["error"]), answer


def test_the_local_answer_is_bounded_by_the_server() -> None:
    small = lpdlocal.bounded_reply({"ok": True, "queue": {"jobs": []}})
    assert lpdlocal.parse_reply(small)["ok"] is True
    huge = lpdlocal.bounded_reply({"ok": True, "queue": {"jobs": ["x" * 1024] * 17 * 1024}})
    assert len(huge) < 1024
    answer = lpdlocal.parse_reply(huge)
    assert answer["ok"] is False and "more than the" in str(answer["error"])


def test_print_through_the_daemon_says_queued_when_the_status_fails() -> None:
    """The final acknowledgement came: the job is queued. A status question the server
    then leaves unanswered makes ``print`` say so, exit 0, never a failure (which would
    invite a resubmit, a duplicate)."""
    import threading

    from localkit import LocalServer, PrintcapQueues, made_user, world

    from lpfilter.server.local import open_local_socket

    class Mute(LocalServer):
        def one(self, conn: socket.socket) -> None:
            if conn.recv(1, socket.MSG_PEEK) == b"\x02":
                super().one(conn)  # the job: received and committed by the server's code
            # anything else (the status question): closed without an answer

    with made_user() as user, world() as made:
        listening = open_local_socket(str(made.socket))
        server = Mute(made.socket, PrintcapQueues(made.printcap))
        thread = threading.Thread(target=server.serve, args=(listening,), daemon=True)
        thread.start()
        try:
            done = user.run("print", "-P", "q", str(made.doc), env=made.env())
        finally:
            server.stop.set()
            thread.join(10)
            listening.close()
        assert not thread.is_alive()
        assert done.returncode == 0, done.stderr
        assert done.stdout == "q: doc.txt: queued (id unknown)\n"
        assert "queued the jobs but did not say their ids" in done.stderr
        [job] = made.store().jobs()
        assert job.user == user.name


#: An address family no kernel implements: socket() fails with EAFNOSUPPORT, as AF_INET6
#: does on a kernel booted with ipv6.disable=1.
NO_FAMILY = 45


def test_listening_on_every_address_falls_back_to_ipv4_without_ipv6() -> None:
    import errno

    import pytest

    from lpfilter.errors import AccessError
    from lpfilter.server.listener import listen_plan, open_tcp
    with pytest.raises(OSError) as raised:
        socket.socket(NO_FAMILY, socket.SOCK_STREAM)
    assert raised.value.errno == errno.EAFNOSUPPORT
    assert listen_plan("", ipv6=False) == [(socket.AF_INET, "0.0.0.0", False)]
    assert [f for f, _, _ in listen_plan("", ipv6=True)] == [socket.AF_INET6, socket.AF_INET]
    plan = [(NO_FAMILY, "::", False), (socket.AF_INET, "127.0.0.1", False)]
    with open_tcp("", 0, plan) as sock:  # the IPv6 socket cannot be made: IPv4 then
        assert sock.family == socket.AF_INET
        with socket.create_connection(sock.getsockname(), timeout=10):
            pass
    with pytest.raises(AccessError, match=r"cannot listen on \*:0: .*not supported"):
        open_tcp("", 0, [(NO_FAMILY, "::", False)])  # an answer (exit 5), never exit 70


EMFILE_SCRIPT = """
import logging, os, resource, sys, time
from lpfilter.server.listener import Listener, open_tcp, parse_allow
class Queues:
    def find(self, name): return None
    def wake(self, name): pass
said = []
class Count(logging.Handler):
    def emit(self, record):
        if "cannot accept" in record.getMessage(): said.append(record)
logging.getLogger("lpfilter").addHandler(Count())
logging.getLogger("lpfilter").setLevel(logging.INFO)
sock = open_tcp("127.0.0.1", 0)
server = Listener([sock], Queues(), allow=[parse_allow("127.0.0.1")], max_connections=4,
                  idle_timeout=10)
server.start()
import socket
with socket.create_connection(sock.getsockname(), timeout=30) as first:  # served once:
    first.sendall(b"\\x03q\\n")  # the listener's own descriptors are all made
    while first.recv(4096):
        pass
fillers = []
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
for _ in range(64):
    try:
        fillers.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        break
print(sock.getsockname()[1], flush=True)
sys.stdin.readline()  # a client waits in the backlog: accept fails with EMFILE
for _ in range(400):  # bounded: until the first failed accept
    if said:
        break
    time.sleep(0.05)
first = len(said)
time.sleep(1.0)  # a window to count the attempts in, not a wait for an event
print(first, len(said) - first, flush=True)
for fd in fillers:
    os.close(fd)
sys.stdin.readline()
server.shutdown()
"""


def test_out_of_descriptors_the_listener_backs_off() -> None:
    """accept fails with EMFILE while nothing is in service: the listener waits (bounded
    back-off) instead of spinning on accept and logging each time, and serves the client
    once descriptors are free again."""
    with subprocess.Popen([sys.executable, "-c", EMFILE_SCRIPT], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        try:
            _emfile_client(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


def _emfile_client(proc: subprocess.Popen[str]) -> None:
    from serverkit import read_all
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), proc.stderr.read()
    with socket.create_connection(("127.0.0.1", int(line)), timeout=30) as client:
        client.sendall(b"\x03q\n")
        proc.stdin.write("connected\n")
        proc.stdin.flush()
        first, attempts = map(int, proc.stdout.readline().split())
        assert first >= 1, "accept never failed: the descriptors were not used up"
        assert attempts <= 10, f"{attempts} failed accepts in 1 s: it spins"
        assert b"no queue 'q' is served here" in read_all(client)
    proc.stdin.write("done\n")
    proc.stdin.flush()
    assert proc.wait(timeout=30) == 0, proc.stderr.read()


def test_refusals_are_logged_once_a_minute_per_address(kit: Kit) -> None:
    from serverkit import ask, start_server

    from lpfilter.server.limits import Throttle
    from lpfilter.server.listener import REFUSAL
    kit.queue("q", kit.recorder())
    server = start_server(kit, "--allow", "127.0.0.2")
    for _ in range(5):
        assert ask(server.port, b"\x03q\n", source="127.0.0.1") == REFUSAL
    assert ask(server.port, b"\x03q\n", source="127.0.0.2").endswith(b" 0 jobs\n")
    said = server.proc.stderr().count("refused a connection from 127.0.0.1: not on the"
                                      " allow-list (--allow)")
    assert said == 1  # was one line per connection: a journal flood
    assert server.proc.stop() == 0

    now = [0.0]
    throttle = Throttle(60.0, clock=lambda: now[0])
    assert throttle.passed_over("a") == 0
    assert [throttle.passed_over("a") for _ in range(3)] == [None, None, None]
    assert throttle.passed_over("b") == 0  # another client has its own minute
    now[0] = 61.0
    assert throttle.passed_over("a") == 3  # the next line counts those passed over


def _switches(pid: int) -> int:
    """Voluntary context switches of every thread of ``pid``: each wake-up from a wait."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def test_idle_connections_do_not_wake_the_daemon(kit: Kit) -> None:
    """Ten connections that send nothing: the daemon's threads sleep (each Wire waits on
    its socket and the stop pipe until the idle timeout), they do not tick every 0.2 s;
    stopping the daemon ends them at once."""
    import time

    import psutil
    from serverkit import start_server
    kit.queue("q", kit.recorder())
    server = start_server(kit, "--idle-timeout", "300")
    daemon = psutil.Process(server.proc.pid)

    def accepted() -> int:
        return sum(1 for c in daemon.net_connections("tcp") if c.laddr and
                   c.laddr[1] == server.port and c.status == psutil.CONN_ESTABLISHED)

    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=30,
                                     source_address=(f"127.0.1.{n}", 0)) for n in range(1, 11)]
    try:
        wait_until(lambda: accepted() == 10, what="10 idle connections in service")
        wait_until(lambda: daemon.num_threads() >= 10, what="their threads")
        before = _switches(daemon.pid)
        time.sleep(1.0)  # a window to count wake-ups in, not a wait for an event
        woken = _switches(daemon.pid) - before
        assert woken < 25, f"{woken} wake-ups in 1 s with 10 idle connections: they tick"
        assert server.proc.stop() == 0  # SIGTERM ends the idle connections at once
    finally:
        for conn in idle:
            conn.close()


def test_one_local_user_holds_at_most_a_share_of_the_unix_socket() -> None:
    """max_local 4: one uid holds one connection; its next is refused at once (one JSON
    line saying why), another user's is served."""
    import threading

    from localkit import made_user

    from lpfilter.server.listener import Listener, parse_allow
    from lpfilter.server.local import open_local_socket

    class NoQueues:
        def find(self, name: str) -> None:
            return None

        def wake(self, name: str) -> None:
            pass

    import shutil
    import tempfile
    top = Path(tempfile.mkdtemp(prefix="lpfilter-uidshare-"))  # reachable by the user
    top.chmod(0o755)
    path = top / "run" / "lpfilter.sock"
    path.parent.mkdir(mode=0o700)
    server = Listener([open_local_socket(str(path))], NoQueues(),
                      allow=[parse_allow("127.0.0.1")], max_connections=4, idle_timeout=60,
                      stop=threading.Event(), max_local=4)
    server.start()
    request = lpdlocal.control_request("q", "root", "status")
    script = ("import socket, sys\n"
              "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
              "s.sendall(sys.argv[2].encode('latin-1')); s.shutdown(socket.SHUT_WR)\n"
              "data = b''\n"
              "while chunk := s.recv(65536): data += chunk\n"
              "print(data.decode())\n")
    try:
        with made_user() as user, socket.socket(socket.AF_UNIX) as held:
            held.connect(str(path))  # root's, idle
            wait_until(lambda: server.in_service == 1, what="the idle connection served")
            with socket.socket(socket.AF_UNIX) as again:  # refused before it asks
                again.settimeout(30)
                again.connect(str(path))
                answer = lpdlocal.parse_reply(again.recv(65536))
            assert (answer["ok"], answer["kind"]) == (False, "refused"), answer
            assert "you hold your share" in str(answer["error"])
            done = user.python("-c", script, str(path), request.decode("latin-1"),
                               env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
            assert done.returncode == 0, done.stderr
            theirs = lpdlocal.parse_reply(done.stdout.encode())
            assert theirs["kind"] == "no_such_printer", theirs
    finally:
        server.shutdown()
        shutil.rmtree(top)


def test_a_request_line_too_long_is_answered_and_logged_once(kit: Kit) -> None:  # noqa: F811
    """A 600-byte request line got a reset and no answer; now the answer its code has (a
    job: LPRng's "malformed", 1; status and remove: a line). Log lines name the peer once
    (an lpc or local request's fault named it twice) and escape a control character once
    (a bad file name showed ``\\\\x1b``)."""
    import re

    from serverkit import ask, start_server
    kit.queue("q", kit.recorder())
    server = start_server(kit)
    said = b"a request line longer than 512 bytes\n"
    long = b"a" * 600
    assert ask(server.port, b"\x04q " + long + b"\n") == said
    assert ask(server.port, b"\x05q root " + long + b"\n") == said
    assert ask(server.port, b"\x02q" + long + b"\n") == b"\x01" + said
    assert ask(server.port, b"\x06q root stop q\x01\n").startswith(b"bad control command")
    assert ask(server.port, b"\x02q\n\x0210 cfA001ab\x1b[31m\n")[:2] == b"\x00\x01"

    def logged() -> str:
        text = server.proc.stderr()
        return text if "cfA001ab" in text and text.count("\n") >= 6 else ""
    log = wait_until(logged, what="the refusals logged", timeout=5)
    assert server.proc.stop() == 0
    assert not re.search(r"(127\.0\.0\.1:\d+):.*\1", log), log
    assert "a line longer than 512 bytes" in log
    assert "'cfA001ab\\x1b[31m'" in log and "\\\\x1b" not in log, log
