"""An ordinary user's job on its way to the print server (commands/daemonprint.py), and
the server's answer to a local ``status`` (server/local.py): the data file sent with the
C socket type and a poll(2)-bounded sendfile loop; a refusal that comes while the data
goes is told (it once ended the command with exit 0 and no word: the job was not
queued); a status answer read from the store the daemon serves, not from a fresh replay
of the whole journal."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from localkit import SITE, LocalUser, World, local_server, made_user, world
from spoolkit import spooled_data

import lpfilter.spool.store
from lpfilter import printcap
from lpfilter.cli import main
from lpfilter.commands import daemonprint
from lpfilter.printcap import Entry
from lpfilter.errors import AccessError
from lpfilter.job import Job
from lpfilter.protocols import LpdProtocolError, lpdlocal
from lpfilter.server.local import serve_local_request
from lpfilter.server.peer import Peer
from lpfilter.server.wire import Wire
from lpfilter.spool.store import SpoolStore


@pytest.fixture
def setting() -> Iterator[tuple[World, LocalUser]]:
    with made_user() as user, world() as made:
        yield made, user


def _with_mx(made: World) -> None:
    """Queue q takes jobs of at most 1 KiB (LPRng's mx, in KiB)."""
    made.printcap.write_text(made.printcap.read_text().rstrip("\n") + ":mx#1\n")


@pytest.mark.parametrize("how", ["stdin", "file"])
def test_a_job_over_the_queues_limit_is_refused_with_the_reason(
        setting: tuple[World, LocalUser], how: str) -> None:
    """A file's size is refused at its data line; standard input's, once 1 KiB of it
    came: the server says why and closes while the client still sends. Both end with
    the server's reason and the status of a refused job (6), and nothing is queued."""
    made, user = setting
    _with_mx(made)
    data = b"a line of a long report\n" * 20_000  # 480 KB: more than the socket holds
    big = made.root / "big.txt"
    big.write_bytes(data)
    big.chmod(0o644)
    with local_server(made) as server:
        if how == "stdin":
            done = user.run("print", "--no-wait", "-P", "q", env=made.env(), stdin=data)
        else:
            done = user.run("print", "--no-wait", "-P", "q", str(big), env=made.env())
        faults = list(server.faults)
    assert (done.returncode, done.stdout) == (6, ""), done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "lpfilter: queue q: the print server refused the job: "), done.stderr
    assert "larger than the queue's limit of 1 KiB (mx)" in lines[0]
    assert len(faults) == 1 and "refused a job" in faults[0]
    assert made.store().jobs() == []


def test_a_big_file_goes_whole_and_exact(setting: tuple[World, LocalUser]) -> None:
    """8 MiB through sendfile(2): the socket fills many times, each wait is poll's."""
    made, user = setting
    data = bytes(range(256)) * (8 * 4096)
    big = made.root / "big.bin"
    big.write_bytes(data)
    big.chmod(0o644)
    with local_server(made) as server:
        done = user.run("print", "--no-wait", "-P", "q", str(big), env=made.env())
        assert server.faults == []
    assert (done.returncode, done.stdout, done.stderr) == (0, "q-000001\n", "")
    assert spooled_data(made.sd, "000001") == data


STORE_MODULES = frozenset({"lpfilter.spool.store", "lpfilter.spool.journal"})


def _imports_of(user: LocalUser, made: World, argv: list[str],
                modules: frozenset[str] = STORE_MODULES) -> subprocess.CompletedProcess[str]:
    """The user's ``lpfilter ARGV`` (main() in a fresh interpreter); the last line of its
    standard error lists which of ``modules`` it imported."""
    code = (f"import sys; sys.path[:0] = [{SITE!r}]; from lpfilter.cli import main; "
            f"done = main({argv!r}); print(sorted(set({sorted(modules)!r}) & set(sys.modules)),"
            " file=sys.stderr); sys.exit(done)")
    return user.python("-c", code, env=made.env())


def test_a_closed_spools_status_is_asked_of_the_server_first(
        setting: tuple[World, LocalUser]) -> None:
    """A user who may not read the journal gets the server's status without the store's
    modules (the spool's own read would only fail, after importing them)."""
    made, user = setting
    assert main(["print", "--no-wait", "-P", "q", str(made.doc)],
                {"LPFILTER_PRINTCAP": str(made.printcap),
                 "LPFILTER_LOCK_DIR": str(made.root / "rootlocks")}) == 0
    with local_server(made) as server:
        done = _imports_of(user, made, ["status", "-P", "q"])
        assert server.faults == []
    assert (done.returncode, done.stderr) == (0, "[]\n")
    assert "Queue q:" in done.stdout and "  000001   root" in done.stdout


def _file(tmp_path: Path, data: bytes) -> int:
    path = tmp_path / "doc"
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


def test_a_file_that_shrank_sends_what_it_has(tmp_path: Path) -> None:
    """The size was taken before the send: a shorter file ends early, and the caller
    refuses the job (the server would wait for the missing bytes)."""
    src = _file(tmp_path, b"x" * 100)
    ours, theirs = socket.socketpair()
    try:
        ours.settimeout(5.0)
        assert daemonprint._sendfile(ours, src, 200, "doc") == 100
        ours.close()
        assert theirs.recv(1000) == b"x" * 100
    finally:
        os.close(src)
        ours.close()
        theirs.close()


def test_a_file_read_through_a_buffer_that_fails_is_the_files_error(tmp_path: Path) -> None:
    """Where sendfile cannot take the file, it is read through a buffer: a read that
    fails there (here: a directory's descriptor) names the file, never the server."""
    src = os.open(tmp_path, os.O_RDONLY)
    ours, theirs = socket.socketpair()
    try:
        ours.settimeout(5.0)
        with pytest.raises(AccessError, match=r"^doc: cannot read: Is a directory$"):
            daemonprint._copy(ours, src, 0, 10, "doc")
    finally:
        os.close(src)
        ours.close()
        theirs.close()


def test_a_server_that_takes_nothing_ends_the_send_at_the_timeout(tmp_path: Path) -> None:
    src = _file(tmp_path, b"y" * (8 << 20))
    ours, theirs = socket.socketpair()  # nobody reads theirs
    try:
        ours.settimeout(0.3)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"it took no data for 0\.3 s"):
            daemonprint._sendfile(ours, src, 8 << 20, "doc")
        assert time.monotonic() - started < 10
    finally:
        os.close(src)
        ours.close()
        theirs.close()


class _Served:
    """The daemon's Queues: one queue, its store shared as a worker's is."""

    def __init__(self, entry: Entry, store: SpoolStore) -> None:
        self.entry, self.store = entry, store

    def find(self, name: str) -> tuple[Entry, SpoolStore] | None:
        return (self.entry, self.store) if name == self.entry.name else None

    def wake(self, name: str) -> None:
        raise AssertionError("a status wakes no queue")


def _status(queues: _Served, request: bytes | None = None) -> dict[str, object]:
    """The server's answer to a local request (the queue's status unless another)."""
    server, client = socket.socketpair()
    with server, client:
        wire = Wire(server, idle_timeout=5)
        serve_local_request(wire, request or lpdlocal.control_request("q", "root", "status"),
                            Peer("", uid=0, user="root"), queues)
        wire.close()
        server.close()
        data = b""
        for _ in range(1000):
            chunk = client.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    return lpdlocal.parse_reply(data)


def test_a_local_status_is_read_from_the_served_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No fresh store (a replay of the whole journal) per answer; jobs another process
    queued since are in it all the same, as a fresh read shows them."""
    sd = tmp_path / "sd"
    sd.mkdir()
    cap = tmp_path / "printcap"
    cap.write_text(f"q:sd={sd}:lp=/dev/null\n")
    doc = tmp_path / "doc.txt"
    doc.write_text("page\n")
    env = {"LPFILTER_PRINTCAP": str(cap), "LPFILTER_LOCK_DIR": str(tmp_path / "locks")}
    assert main(["print", "--no-wait", "-P", "q", str(doc)], env) == 0
    store = SpoolStore(str(sd), "q", shared=True)
    store.ensure("watch")
    queues = _Served(printcap.load([str(cap)]).lookup("q"), store)
    assert [j["id"] for j in _status(queues)["queue"]["jobs"]] == ["000001"]  # type: ignore[index]
    assert main(["print", "--no-wait", "-P", "q", str(doc), str(doc)], env) == 0
    made: list[str] = []
    real = lpfilter.spool.store.SpoolStore

    def counted(sd: str, queue: str, **kw: bool) -> SpoolStore:
        made.append(queue)
        return real(sd, queue, **kw)

    monkeypatch.setattr(lpfilter.spool.store, "SpoolStore", counted)
    answer = _status(queues)
    monkeypatch.undo()
    assert made == []
    jobs = answer["queue"]["jobs"]  # type: ignore[index]
    assert [j["id"] for j in jobs] == ["000001", "000002", "000003"]
    from lpfilter.spool.queueinfo import queue_status
    fresh = queue_status(queues.entry)
    assert jobs == fresh["jobs"]
    store.close(final=True)


def test_which_spools_are_certainly_closed(setting: tuple[World, LocalUser]) -> None:
    """closed_to_me as an ordinary user sees it, and never for root; anything uncertain
    is False (the command's own path decides and says the error as it always did)."""
    made, user = setting
    base = made.root / "spools"
    base.mkdir(mode=0o755)
    for name, mode in (("closed", 0o700), ("open", 0o755), ("shared", 0o1777)):
        (base / name).mkdir()
        (base / name).chmod(mode)
    state = base / "open" / ".lpfilter"
    state.mkdir(mode=0o755)
    journal = state / "journal"
    journal.write_bytes(b"")
    cases = {"missing": base / "none", "closed": base / "closed", "open": base / "open",
             "shared": base / "shared"}
    code = ("import sys, json; sys.path[:0] = [%r]; "
            "from lpfilter.spool import closed_to_me; "
            "print(json.dumps({n: [closed_to_me(p, write=False), closed_to_me(p, write=True)]"
            " for n, p in json.loads(sys.argv[1]).items()}))" % SITE)
    import json

    def seen() -> dict[str, list[bool]]:
        arg = json.dumps({n: str(p) for n, p in cases.items()})
        done = user.python("-c", code, arg, env=made.env())
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    journal.chmod(0o644)
    assert seen() == {"missing": [False, False], "closed": [True, True],
                      "open": [False, True], "shared": [False, False]}
    journal.chmod(0o600)  # the journal closed, the folder open: status cannot read it
    assert seen()["open"] == [True, True]
    state.chmod(0o700)
    assert seen()["open"] == [True, True]
    from lpfilter.spool import closed_to_me
    assert not closed_to_me(str(base / "closed"), write=True)  # root may do everything


@pytest.mark.parametrize("action", ["cancel", "hold"])
def test_a_closed_spools_job_change_goes_to_the_server_without_the_store(
        setting: tuple[World, LocalUser], action: str) -> None:
    made, user = setting
    with local_server(made):
        done = user.run("print", "--no-wait", "-P", "q", "--hold", str(made.doc),
                        env=made.env())
        assert done.stdout == "q-000001\n", done.stderr
        done = _imports_of(user, made, [action, "-P", "q", "1"])
    assert (done.returncode, done.stderr) == (0, "[]\n")
    assert done.stdout == {"cancel": "q-000001: cancelled\n",
                           "hold": "q-000001: not queued (held)\n"}[action]


def test_a_closed_spools_print_goes_to_the_server_without_the_store(
        setting: tuple[World, LocalUser]) -> None:
    made, user = setting
    with local_server(made) as server:
        done = _imports_of(user, made, ["print", "--no-wait", "-P", "q", str(made.doc)],
                           STORE_MODULES | {"lpfilter.spool.submit", "lpfilter.spool.jobdata"})
        assert server.faults == []
    assert (done.returncode, done.stdout, done.stderr) == (0, "q-000001\n", "[]\n")
    assert spooled_data(made.sd, "000001") == made.doc.read_bytes()


def test_find_answers_and_copies_only_the_jobs_of_its_origins(
        setting: tuple[World, LocalUser], monkeypatch: pytest.MonkeyPatch) -> None:
    """The local ``find`` (what a user's print asks for its jobs' ids): the queue's jobs
    of those origins, no other ticket copied; an origin the queue lacks is no error."""
    made, user = setting
    with local_server(made):
        done = user.run("print", "--no-wait", "-P", "q", str(made.doc), str(made.doc),
                        str(made.doc), env=made.env())
    assert done.stdout == "q-000001\nq-000002\nq-000003\n", done.stderr
    store = SpoolStore(str(made.sd), "q", shared=True)
    origins = {job.id: job.origin for job in store.jobs()}
    assert all(o.startswith("cfA") and len(o.rpartition(":")[2]) == 40 for o in origins.values())
    queues = _Served(printcap.load([str(made.printcap)]).lookup("q"), store)
    copied: list[str] = []
    real_copy = Job.copy

    def counted(job: Job) -> Job:
        copied.append(job.id)
        return real_copy(job)

    monkeypatch.setattr(Job, "copy", counted)
    request = lpdlocal.control_request("q", "root", "find", origins=(
        origins["000003"], origins["000001"], "cfA999nowhere:" + "0" * 40))
    answer = _status(queues, request)
    monkeypatch.undo()
    assert [j["id"] for j in answer["jobs"]] == ["000001", "000003"]  # type: ignore[attr-defined]
    assert sorted(copied) == ["000001", "000003"]
    store.close(final=True)


@pytest.mark.parametrize("files", [2, 20])
def test_print_finds_its_ids_from_a_daemon_without_find(
        setting: tuple[World, LocalUser], monkeypatch: pytest.MonkeyPatch, files: int) -> None:
    """A daemon started before ``find`` (refused as a usage error), and more files than one
    ``find`` line carries: the print asks the queue's status instead, and shows each id."""
    made, user = setting
    monkeypatch.setattr(lpdlocal, "ACTIONS", tuple(a for a in lpdlocal.ACTIONS if a != "find"))
    with local_server(made) as server:
        done = user.run("print", "--no-wait", "-P", "q", *[str(made.doc)] * files,
                        env=made.env())
        faults = list(server.faults)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "".join(f"q-{n:06d}\n" for n in range(1, files + 1))
    assert len(faults) == (1 if files == 2 else 0)  # 20 origins: status asked at once
    assert all("no local action 'find'" in f for f in faults)


def test_find_requests_round_trip_and_bad_origins_are_refused() -> None:
    origin = "cfA012345client.example:" + "ab" * 20
    line = lpdlocal.control_request("q", "carol", "find", origins=(origin, origin))
    assert line == f"\x06q carol find {origin} {origin}\n".encode()
    assert lpdlocal.parse_control(line).origins == (origin,)
    for bad in ("", "a b", "x" * 201, "tab\there", "caf\u00e9"):
        with pytest.raises(LpdProtocolError):
            lpdlocal.control_request("q", "carol", "find", origins=(bad,))
    with pytest.raises(LpdProtocolError):
        lpdlocal.control_request("q", "carol", "find")
    with pytest.raises(LpdProtocolError):
        lpdlocal.control_request("q", "carol", "status", origins=(origin,))
    for line in (b"\x06q carol find\n", b"\x06q carol find " + b"x" * 201 + b"\n",
                 b"\x06q carol find caf\xc3\xa9\n"):
        with pytest.raises(LpdProtocolError):
            lpdlocal.parse_control(line)
