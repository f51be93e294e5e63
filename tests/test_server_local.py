"""The daemon's Unix socket and an ordinary user's commands through it (issue 14): the
socket's safe path, peer credentials, lpfilter's local request with its rights, and
print, status, cancel, hold, release, requeue run by a user (made with useradd) who
cannot write the spool, against a real server thread; with no daemon, one line."""
from __future__ import annotations

import json
import os
import pwd
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from localkit import LocalUser, World, local_server, made_user, world
from spoolkit import spooled_data

from lpfilter.cli import main
from lpfilter.errors import AccessError
from lpfilter.job import JobState
from lpfilter.protocols import lpdlocal
from lpfilter.protocols.lpd import LpdProtocolError
from lpfilter.server.local import local_peer, open_local_socket, serve_local_request
from lpfilter.server.peer import Peer
from lpfilter.server.wire import ClientError, Wire


# --- the socket -----------------------------------------------------------------------
def test_the_socket_is_open_to_everyone_and_its_directory_searchable(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)  # as lock_dir makes it
    path = run / "lpfilter.sock"
    with open_local_socket(str(path)):
        info = os.lstat(path)
        assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o666
        assert stat.S_IMODE(os.stat(run).st_mode) == 0o711  # searchable, not listable
    with open_local_socket(str(path), mode=0o660, group="root"):  # the stale one replaced
        info = os.lstat(path)
        assert stat.S_IMODE(info.st_mode) == 0o660 and info.st_gid == 0


def test_a_stale_socket_is_replaced_a_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "lpfilter.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # a daemon killed: its socket file stays, nobody listens
    with open_local_socket(str(path)) as live:
        with pytest.raises(AccessError, match="another daemon listens on it already"):
            open_local_socket(str(path))
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with client:
            client.connect(str(path))  # still the live daemon's
            live.accept()[0].close()


@pytest.mark.parametrize("kind", ["file", "symlink", "directory", "fifo"])
def test_anything_but_a_socket_at_the_path_is_refused_and_left(tmp_path: Path,
                                                               kind: str) -> None:
    path = tmp_path / "lpfilter.sock"
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    if kind == "file":
        path.write_text("not a socket\n")
    elif kind == "symlink":
        path.symlink_to(target)
    elif kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)
    before = os.lstat(path)
    with pytest.raises(AccessError, match="not a socket is there; lpfilter leaves it alone"):
        open_local_socket(str(path))
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert target.read_text() == "keep me\n"


def test_a_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(AccessError, match="may be written by others"):
        open_local_socket(str(shared / "lpfilter.sock"))
    assert list(shared.iterdir()) == []
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(AccessError, match="is not a directory"):
        open_local_socket(str(link / "lpfilter.sock"))


def test_the_peer_is_who_the_kernel_says(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with open_local_socket(str(path)) as listener, socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))
        conn, _ = listener.accept()
        with conn:
            peer = local_peer(conn)
    assert peer == Peer("", uid=os.getuid(), user=pwd.getpwuid(os.getuid()).pw_name)
    assert peer.local


# --- the local request ----------------------------------------------------------------
def _pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def _answer(client: socket.socket) -> dict[str, object]:
    client.shutdown(socket.SHUT_WR)
    data = b""
    for _ in range(100):
        chunk = client.recv(65536)
        if not chunk:
            break
        data += chunk
    return lpdlocal.parse_reply(data)


def test_a_tcp_peer_is_refused_the_local_request() -> None:
    server, client = _pair()
    with server, client:
        wire = Wire(server, idle_timeout=5)
        line = lpdlocal.control_request("q", "root", "cancel", every=True)
        with pytest.raises(ClientError, match="not LPD"):
            serve_local_request(wire, line, Peer("192.0.2.7", 721), queues=_NoQueues())
        wire.close()
        server.close()
        answer = _answer(client)
    assert answer["ok"] is False and answer["kind"] == "refused"


class _NoQueues:
    def find(self, name: str) -> None:
        return None

    def wake(self, name: str) -> None:
        raise AssertionError("not woken")


@pytest.mark.parametrize(("line", "said"), [
    (b"\x06q root\n", "names the queue, the user and the action"),
    (b"\x06q root chmod\n", "no local action 'chmod'"),
    (b"\x06q root cancel ../x\n", "a bad operand '../x'"),
    (b"\x06q root status 12\n", "a bad operand '12' for status")])
def test_a_bad_local_request_is_answered_and_a_client_fault(line: bytes, said: str) -> None:
    server, client = _pair()
    with server, client:
        wire = Wire(server, idle_timeout=5)
        with pytest.raises(ClientError):
            serve_local_request(wire, line, Peer("", uid=0, user="root"), _NoQueues())
        wire.close()
        server.close()
        answer = _answer(client)
    assert answer["kind"] == "usage" and said in str(answer["error"])


def test_a_queue_the_server_does_not_serve() -> None:
    server, client = _pair()
    with server, client:
        wire = Wire(server, idle_timeout=5)
        serve_local_request(wire, lpdlocal.control_request("nope", "root", "status"),
                            Peer("", uid=0, user="root"), _NoQueues())
        wire.close()
        server.close()
        answer = _answer(client)
    assert answer == {"ok": False, "kind": "no_such_printer",
                      "error": "queue nope: the print server serves no such queue"}


def test_requests_round_trip() -> None:
    line = lpdlocal.control_request("lp-color", "carol", "hold", named=(12, 7),
                                    anywhere=(3,), every=True)
    assert line == b"\x06lp-color carol hold 12 7 ~3 all\n"
    parsed = lpdlocal.parse_control(line)
    assert (parsed.queue, parsed.user, parsed.action, parsed.named, parsed.anywhere,
            parsed.every) == ("lp-color", "carol", "hold", {12, 7}, {3}, True)
    with pytest.raises(LpdProtocolError):
        lpdlocal.control_request("q", "bad user", "hold")
    with pytest.raises(LpdProtocolError):
        lpdlocal.control_request("q", "u", "cancel", named=tuple(range(200)))


@given(st.binary(max_size=600))
def test_any_bytes_parse_or_are_refused_cleanly(data: bytes) -> None:
    try:
        request = lpdlocal.parse_control(data)
    except LpdProtocolError:
        return
    assert request.action in lpdlocal.ACTIONS and request.queue.isprintable()


# --- an ordinary user, a real server thread -----------------------------------------
@pytest.fixture
def setting() -> Iterator[tuple[World, LocalUser]]:
    with made_user() as user, world() as made:
        yield made, user


def _root_prints(made: World) -> None:
    assert main(["print", "--no-wait", "-P", "q", str(made.doc)],
                {"LPFILTER_PRINTCAP": str(made.printcap),
                 "LPFILTER_LOCK_DIR": str(made.root / "rootlocks")}) == 0


def test_a_user_prints_sees_and_cancels_through_the_daemon(
        setting: tuple[World, LocalUser], capsys: pytest.CaptureFixture[str]) -> None:
    made, user = setting
    _root_prints(made)  # q-000001, root's
    capsys.readouterr()
    with local_server(made) as server:
        done = user.run("print", "-P", "q", "-J", "report", str(made.doc), env=made.env())
        assert (done.returncode, done.stdout, done.stderr) == (0, "q-000002\n", "")
        job = made.store().read("000002")
        assert job is not None and (job.user, job.name, job.state) == (
            user.name, "report", JobState.QUEUED)
        assert spooled_data(made.sd, "000002") == b"a page of the user\n"
        done = user.run("status", "-P", "q", env=made.env())
        assert done.returncode == 0, done.stderr
        assert "  000001   root" in done.stdout and f"  000002   {user.name}" in done.stdout
        shown = json.loads(user.run("status", "-P", "q", "--json", env=made.env()).stdout)
        assert [(j["id"], j["user"]) for j in shown["jobs"]] == [("000001", "root"),
                                                                 ("000002", user.name)]
        done = user.run("cancel", "q-1", env=made.env())
        assert (done.returncode, done.stdout, done.stderr) == (
            5, "", "lpfilter: q-000001: not your job (root's)\n")
        done = user.run("hold", "-P", "q", "2", env=made.env())
        assert (done.returncode, done.stdout, done.stderr) == (0, "q-000002: held\n", "")
        done = user.run("release", "-P", "q", "all", env=made.env())
        assert done.returncode == 0, done.stderr  # (the stand-in server holds no lease)
        assert done.stdout.startswith("q-000002: released, but no watcher serves q now")
        done = user.run("cancel", "-P", "q", "2", "9", env=made.env())
        assert (done.returncode, done.stdout, done.stderr) == (
            1, "q-000002: cancelled\n", "lpfilter: q-000009: no such job\n")
        assert server.faults == []
    assert [(j.id, j.user, j.state) for j in made.store().jobs()] == [
        ("000001", "root", JobState.QUEUED)]


def test_a_user_prints_standard_input_and_holds_it(setting: tuple[World, LocalUser]) -> None:
    made, user = setting
    with local_server(made):
        done = user.run("print", "-P", "q", "--hold", "-#", "2", "-Z", "duplex", "-w", "90",
                        env=made.env(), stdin=b"from a pipe\n" * 1000)
        assert (done.returncode, done.stdout, done.stderr) == (0, "q-000001\n", "")
        job = made.store().read("000001")
        assert job is not None
        assert (job.user, job.name, job.size, job.copies, job.state) == (
            user.name, "stdin", 12000, 2, JobState.HELD)
        assert {k: job.extra["control"][k] for k in "ZW"} == {"Z": "duplex", "W": "90"}
        done = user.run("requeue", "q-000001", env=made.env())
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("q-000001: queued again")


def test_a_client_claiming_another_user_gets_its_own_name(
        setting: tuple[World, LocalUser]) -> None:
    """The user's own client, sending a control file that says P root: the job is the
    user's, as the kernel says."""
    made, user = setting
    script = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "def step(data):\n"
        "    s.sendall(data); assert s.recv(1) == b'\\0', data\n"
        "cf = b'Hlocalhost\\nProot\\nJforged\\nLroot\\nfdfA001localhost\\nNforged\\n'\n"
        "step(b'\\x02q\\n'); step(b'\\x02%d cfA001localhost\\n' % len(cf)); step(cf + b'\\0')\n"
        "step(b'\\x036 dfA001localhost\\n'); step(b'forged\\0'); s.close()\n")
    with local_server(made):
        done = user.python("-c", script, str(made.socket), env=made.env())
        assert done.returncode == 0, done.stderr
    [job] = made.store().jobs()
    assert (job.user, job.name) == (user.name, "forged")


@pytest.mark.parametrize("argv", [["print", "-P", "q", "DOC"], ["status", "-P", "q"],
                                  ["cancel", "-P", "q", "1"], ["hold", "q-1"],
                                  ["release", "-P", "q", "all"]])
def test_with_no_daemon_one_line_says_how_to_start_it(setting: tuple[World, LocalUser],
                                                      argv: list[str]) -> None:
    made, user = setting
    _root_prints(made)
    argv = [str(made.doc) if a == "DOC" else a for a in argv]
    made.run.rmdir()  # as /run/lpfilter before any daemon ran
    done = user.run(*argv, env=made.env())
    assert done.returncode == 5, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("lpfilter: queue q: you (uid ")
    assert lines[0].endswith(
        f"; and no print server answers on {made.socket} (No such file or directory) to do"
        " it for you: start one with 'lpfilter watch' (as root or the spool's owner), or set"
        " LPFILTER_SOCKET to its socket")
    assert [j.id for j in made.store().jobs()] == ["000001"]


def test_a_user_cancel_all_queues_passes_over_root_jobs(
        setting: tuple[World, LocalUser]) -> None:
    made, user = setting
    _root_prints(made)
    with local_server(made):
        done = user.run("print", "--no-wait", "-P", "q", str(made.doc), env=made.env())
        assert done.stdout == "q-000002\n", done.stderr
        done = user.run("cancel", "-a", "all", env=made.env())
        assert (done.returncode, done.stdout, done.stderr) == (0, "q-000002: cancelled\n", "")
    assert [j.user for j in made.store().jobs()] == ["root"]


def test_a_users_lpr_r_removes_the_file_once_the_daemon_has_the_job(
        setting: tuple[World, LocalUser]) -> None:
    """``print -r`` through the daemon: the file goes after the server's final
    acknowledgement (the job is on disk), by the user's own rights."""
    made, user = setting
    mine = made.root / "mine"
    mine.mkdir()
    os.chown(mine, user.uid, -1)
    (mine / "page.txt").write_text("a page to print once\n")
    os.chown(mine / "page.txt", user.uid, -1)
    with local_server(made):
        done = user.run("print", "-r", "--no-wait", "-P", "q", str(mine / "page.txt"),
                        env=made.env())
        assert (done.returncode, done.stdout, done.stderr) == (0, "q-000001\n", "")
    assert not (mine / "page.txt").exists()
    assert spooled_data(made.sd, "000001") == b"a page to print once\n"


def test_a_user_cancels_by_user_name_only_their_own_jobs(
        setting: tuple[World, LocalUser]) -> None:
    """``lprm USER`` through the daemon: one's own name is one's jobs; root's name is
    refused as a whole (exit 5), and root's job stays."""
    made, user = setting
    _root_prints(made)
    with local_server(made):
        done = user.run("print", "--no-wait", "-P", "q", str(made.doc), env=made.env())
        assert done.stdout == "q-000002\n", done.stderr
        done = user.run("lprm", "-P", "q", "root", env=made.env())
        assert (done.returncode, done.stdout) == (5, ""), done
        assert done.stderr == "lpfilter: queue q: not your jobs (root's)\n"
        done = user.run("lprm", "-P", "q", user.name, env=made.env())
        assert (done.returncode, done.stdout, done.stderr) == (0, "q-000002: cancelled\n", "")
    assert [j.user for j in made.store().jobs()] == ["root"]


@pytest.mark.parametrize(("peer", "state"), [
    (Peer("", uid=1000, user="carol"), JobState.HELD),
    (Peer("127.0.0.1", 721), JobState.QUEUED)])
def test_the_hold_line_counts_only_from_a_local_peer(tmp_path: Path, peer: Peer,
                                                     state: JobState) -> None:
    """print --hold through the daemon: held as it is queued (never printed first); the
    same line from a TCP client means nothing."""
    from lpfilter import printcap
    from lpfilter.protocols import lpd, lpdcontrol
    from lpfilter.server.receive import receive_job
    from lpfilter.spool.store import SpoolStore
    (tmp_path / "sd").mkdir()
    (tmp_path / "printcap").write_text(f"q:sd={tmp_path / 'sd'}:lp=/dev/null\n")
    entry = printcap.load([str(tmp_path / "printcap")]).lookup("q")
    store = SpoolStore(str(tmp_path / "sd"), "q")
    store.ensure("watch")
    names = lpd.job_names("7", "client")
    control = lpdcontrol.build(lpdcontrol.ControlFields(
        host="client", user="carol", files=(lpdcontrol.DataFile(names.data(0)),),
        other=(lpdlocal.HOLD_LINE,)))
    server, client = _pair()
    with server, client:
        client.sendall(lpd.file_line(lpd.Subcommand.CONTROL_FILE, len(control), names.control)
                       + control + b"\0" + lpd.file_line(lpd.Subcommand.DATA_FILE, 3,
                                                         names.data(0)) + b"abc\0")
        client.shutdown(socket.SHUT_WR)
        wire = Wire(server, idle_timeout=5)
        [job] = receive_job(wire, entry, store, peer)
        wire.close()
    store.close()
    stored = store.read(job.id)
    assert stored is not None and stored.state == state


def test_status_all_mixes_the_users_own_queue_and_the_daemons(
        setting: tuple[World, LocalUser]) -> None:
    """status -a: a queue the user may read is read directly, root's through the daemon;
    the daemon not serving a queue is said for that queue alone (exit 5)."""
    made, user = setting
    own = made.root / "own"
    own.mkdir(mode=0o700)
    os.chown(own, user.uid, -1)
    other = made.root / "other"
    other.mkdir(mode=0o700)
    made.printcap.write_text(made.printcap.read_text() + f"own:sd={own}:lp=/dev/null\n")
    _root_prints(made)
    with local_server(made):
        done = user.run("status", "-a", env=made.env())
        assert done.returncode == 0, done.stderr
        assert "Queue q:" in done.stdout and "  000001   root" in done.stdout
        assert "Queue own:" in done.stdout and "  no jobs" in done.stdout
        made.printcap.write_text(made.printcap.read_text()
                                 + f"other:sd={other}:lp=/dev/null\n")
        done = user.run("status", "-a", env=made.env())  # the server's printcap lacks it
        assert done.returncode == 5
        assert done.stderr == ("lpfilter: queue other: the print server serves no such"
                               " queue\n")
        assert "  000001   root" in done.stdout


def test_a_users_status_shows_no_other_users_control_lines(
        setting: tuple[World, LocalUser]) -> None:
    """Another user's -Z options (a filter's password) and -R billing code are only for
    the job's filters: the daemon's status answer leaves them out for other users; one's
    own job keeps them, and root's status shows all."""
    made, user = setting
    root_env = {"LPFILTER_PRINTCAP": str(made.printcap),
                "LPFILTER_LOCK_DIR": str(made.root / "rootlocks")}
    assert main(["print", "--no-wait", "-P", "q", "-Z", "password=hunter2", "-R", "cc-7",
                 str(made.doc)], root_env) == 0
    with local_server(made):
        done = user.run("print", "--no-wait", "-P", "q", "-Z", "duplex", str(made.doc),
                        env=made.env())
        assert done.returncode == 0, done.stderr
        shown = user.run("status", "-P", "q", "--json", env=made.env())
        assert shown.returncode == 0, shown.stderr
    jobs = {job["id"]: job for job in json.loads(shown.stdout)["jobs"]}
    assert "hunter2" not in shown.stdout and "cc-7" not in shown.stdout
    assert "control" not in jobs["000001"].get("extra", {})
    assert jobs["000002"]["extra"]["control"]["Z"] == "duplex"
    assert made.store().read("000001").extra["control"] == {"Z": "password=hunter2",
                                                            "R": "cc-7"}
