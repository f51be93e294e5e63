"""The review's findings on receiving jobs (issue 14): the retry key includes the data, the
copies written out are bounded before a byte is copied, a job holds one descriptor
whatever its number of data files, the retry note is durable with its job and an older
version's note files go, and a staged file survives the orphan cleanup running
meanwhile. Real loopback servers (receivekit) and raw clients."""
from __future__ import annotations

import contextlib
import os
import string
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from receivekit import (Client, Receiver, control_file, note_records,  # noqa: F401
                        receiver)

from lpfilter.safefiles import remove_unlocked
from lpfilter.server import staging
from lpfilter.server.staging import ASSEMBLED_MAX
from lpfilter.server.wire import ClientError


def send_job(server: Receiver, number: int, data: bytes, host: str = "client") -> None:
    client = Client(server.port)
    assert client.control(f"cfA{number:03d}{host}", control_file(number, host=host)) == b"\0"
    assert client.data(f"dfA{number:03d}{host}", data) == b"\0"
    client.finish()


def test_same_control_file_with_other_data_is_a_new_job(receiver: Receiver) -> None:
    """An ERP with a fixed job number and no date (as CUPS after its wrap): two labels
    with the same control file and size but other bytes are two jobs, both kept."""
    for body in (b"LABEL 0001\n", b"LABEL 0002\n"):
        send_job(receiver, 0, body, host="erp")
        assert len(receiver.outcome().jobs) == 1
    assert sorted(receiver.data(j) for j in receiver.jobs()) == [b"LABEL 0001\n",
                                                                 b"LABEL 0002\n"]
    # the exact resend (same data too) is still the retry: not queued again
    send_job(receiver, 0, b"LABEL 0002\n", host="erp")
    assert receiver.outcome().jobs == [] and len(receiver.jobs()) == 2


def test_the_data_digest_covers_every_data_file(receiver: Receiver) -> None:
    """Two files: the second one differs only; another job."""
    cf = control_file(5, files=(("f", "dfA"), ("f", "dfB")))
    for second in (b"same-B", b"diff-B"):
        client = Client(receiver.port)
        assert client.control("cfA005client", cf) == b"\0"
        assert client.data("dfA005client", b"A") == b"\0"
        assert client.data("dfB005client", second) == b"\0"
        client.finish()
        assert len(receiver.outcome().jobs) == 1
    assert sorted(receiver.data(j) for j in receiver.jobs()) == [b"Adiff-B", b"Asame-B"]


def test_copies_written_out_are_refused_past_the_cap_before_copying(
        receiver: Receiver) -> None:
    """No mx: 1 MiB asked 257 times next to another file would be 257 MiB on disk;
    refused with its reason, and nothing is left."""
    count = ASSEMBLED_MAX // (1 << 20) + 1
    cf = control_file(6, files=(("f", "dfA"),) * count + (("f", "dfB"),))
    client = Client(receiver.port)
    assert client.control("cfA006client", cf) == b"\0"
    assert client.data("dfA006client", b"a" * (1 << 20)) == b"\0"
    answer = client.data("dfB006client", b"b")
    assert answer.startswith(b"\x03") and b"same copies for every file" in answer
    client.close()
    assert isinstance(receiver.outcome().error, ClientError)
    assert receiver.jobs() == [] and receiver.staged() == []


def test_a_job_taken_as_it_came_is_never_held_to_the_copies_cap(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap is on bytes a server would write out again; a single file larger than it
    (a 1 GiB job from lpr was refused so) is already on disk and multiplies nothing."""
    monkeypatch.setattr(staging, "ASSEMBLED_MAX", 1000)
    client = Client(receiver.port)
    assert client.control("cfA008client", control_file(8, files=(("f", "dfA"),) * 2)) == b"\0"
    assert client.data("dfA008client", b"z" * 5000) == b"\0"
    client.close()
    (job,) = receiver.jobs()
    assert (job.size, job.copies) == (5000, 2)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_job_holds_one_descriptor_whatever_its_data_files(tmp_path: Path) -> None:
    """Three connections, each 40 data files into a job not yet complete: the server
    holds one staged descriptor per job, not one per file."""
    letters = string.ascii_uppercase + string.ascii_lowercase
    files = tuple(("f", f"df{c}") for c in letters[:41])
    for n in range(3):
        (tmp_path / str(n)).mkdir()
    servers = [Receiver(tmp_path / str(n)) for n in range(3)]
    clients = []
    try:
        for server in servers:
            client = Client(server.port)
            assert client.control("cfA007client", control_file(7, files=files)) == b"\0"
            clients.append(client)
        before = open_fds()
        for client in clients:
            for _, name in files[:40]:
                # (500 bytes: the job passes INLINE_MAX and moves from memory to a file)
                assert client.data(f"{name}007client", b"x" * 500) == b"\0"
        grown = open_fds() - before  # per job its staged file; per store its journal and
        assert grown <= 9, f"{grown} more descriptors for 120 data files"  # lock (once seq)
        assert all(len(server.staged()) == 1 for server in servers)
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.outcome()
            assert server.staged() == []
            server.close()


def test_the_retry_note_is_made_durable_by_its_jobs_one_flush(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real fsync and fdatasync run; which files they made durable is noted: a small
    job and its note cost one flush, of the journal, which holds the note by then."""
    synced: list[tuple[str, list[str]]] = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync
    journal = receiver.store.journal_path

    def noting(real: Callable[[int], None]) -> Callable[[int], None]:
        def call(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            synced.append((path, [n.job_id for _, n, _ in note_records(receiver.store)]
                           if path == journal else []))
            real(fd)
        return call

    monkeypatch.setattr(os, "fsync", noting(real_fsync))
    monkeypatch.setattr(os, "fdatasync", noting(real_fdatasync))
    send_job(receiver, 8, b"durable")
    (job,) = receiver.outcome().jobs
    assert synced == [(journal, [job.id])]


def test_an_older_lpfilters_note_files_are_removed_without_following_a_link(
        receiver: Receiver, tmp_path: Path) -> None:
    """Notes were files (``received/KEY``, a sweep stamp, a lock): the recovery removes
    them; a link in their folder goes, never what it points to, and a folder planted as a
    link is not entered."""
    state = Path(receiver.store.state)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("not the spool's")
    old = state / "received"
    old.mkdir()
    (old / ("0" * 40)).write_text("000001 1.000 -\n")
    (old / ("1" * 40)).symlink_to(outside / "keep")
    for name in ("received.swept", "receive.lock"):
        (state / name).write_text("")
    receiver.store.recover_orphans("nobody")
    assert not old.exists() and not (state / "received.swept").exists()
    assert not (state / "receive.lock").exists()
    assert (outside / "keep").read_text() == "not the spool's"
    old.symlink_to(outside)
    receiver.store.recover_orphans("nobody")
    assert old.is_symlink() and (outside / "keep").exists()


def test_a_staged_file_survives_the_cleanup_running_meanwhile(receiver: Receiver) -> None:
    """remove_unlocked (the rescan's orphan cleanup) in a loop while files are staged:
    every staged file is still there, under its name, once stage() returns, and no
    descriptor is left behind."""
    store = receiver.store
    done = threading.Event()

    def cleaning() -> None:
        for _ in range(200_000):
            if done.is_set():
                return
            remove_unlocked(store.tmp_dir)

    cleaner = threading.Thread(target=cleaning)
    before = open_fds()
    cleaner.start()
    lost = 0
    try:
        for n in range(3000):
            fd, path = store.stage(f"race-{n}")
            try:
                mine, seen = os.fstat(fd), os.lstat(path)
                lost += (mine.st_ino, mine.st_dev) != (seen.st_ino, seen.st_dev)
            except FileNotFoundError:
                lost += 1
            finally:
                with contextlib.suppress(FileNotFoundError):  # the cleaner, once closed
                    os.unlink(path)
                os.close(fd)
    finally:
        done.set()
        cleaner.join(timeout=60)
    assert lost == 0 and open_fds() == before
