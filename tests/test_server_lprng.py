"""LPRng's real clients (Debian ``lprng``: lpr, lpq, lprm) against lpfilter's print server
(``watch --listen 127.0.0.1:0`` as a process), each in a private mount namespace with its
own /etc/lprng (serverkit.lprng). Skipped with the reason where LPRng or root is missing,
failed under CI."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from lpdkit import need_lprng
from serverkit import Server, lprng, prints_another_job, printed, send_job, start_server
from spoolkit import Kit, kit, wait_served, wait_until  # noqa: F401 - fixture


@pytest.fixture
def stuck(kit: Kit) -> Iterator[Server]:
    """A daemon whose printer hangs on its first job: later jobs wait in the queue."""
    need_lprng()
    kit.queue("q", kit.recorder())
    (kit.out / "hang").touch()
    server = start_server(kit)
    send_job(server.port, b"first\n", user="zed", name="first.txt", number=1)
    wait_until(lambda: list(kit.out.glob("q-*.ready")), what="the first job to hang")
    yield server


def test_lpr_the_bytes_at_the_printer_are_the_files(kit: Kit) -> None:
    need_lprng()
    kit.queue("q", kit.recorder())
    server = start_server(kit)
    data = bytes(range(256)) * 64 + os.urandom(50_000)
    (kit.root / "job.bin").write_bytes(data)
    out = lprng(kit.root, "lpr", "-P", server.queue(), "job.bin")
    assert out.returncode == 0, out
    assert printed(kit) == [data]
    ticket = next(iter(kit.tickets("q").values()))
    assert ticket["user"] == "root" and ticket["peer"] == "127.0.0.1"
    assert ticket["name"].endswith("job.bin")


def test_lpq_lists_the_job_with_its_user_and_name(kit: Kit, stuck: Server) -> None:
    (kit.root / "a.txt").write_text("a\n")
    out = lprng(kit.root, "lpr", "-U", "alice", "-J", "quarterly", "-P", stuck.queue(),
                "a.txt")
    assert out.returncode == 0, out
    wait_until(lambda: len(kit.tickets("q")) == 2, what="the job to be received")
    listing = lprng(kit.root, "lpq", "-P", stuck.queue())
    assert listing.returncode == 0, listing
    text = listing.stdout.decode()
    rows = [line for line in text.splitlines() if "quarterly" in line]
    assert len(rows) == 1 and "alice@" in rows[0], text
    assert any("zed@" in line and "first.txt" in line for line in text.splitlines()), text
    short = lprng(kit.root, "lpq", "-s", "-P", stuck.queue())
    assert short.stdout.decode().strip().endswith("2 jobs"), short


def test_lprm_removes_a_held_job(kit: Kit, stuck: Server) -> None:
    (kit.root / "b.txt").write_text("b\n")
    assert lprng(kit.root, "lpr", "-P", stuck.queue(), "b.txt").returncode == 0
    job = wait_until(lambda: [i for i, t in kit.tickets("q").items() if t["user"] == "root"],
                     what="the job to be received")[0]
    held = kit.run("hold", "-P", "q", job)
    assert held.returncode == 0 and "held" in held.stdout, held
    assert kit.states("q")[job] == "held"
    out = lprng(kit.root, "lprm", "-P", stuck.queue(), str(int(job)))
    assert out.returncode == 0, out
    assert b"dequeued" in out.stdout, out
    assert job not in kit.tickets("q")
    zed = lprng(kit.root, "lprm", "-P", stuck.queue(), "1")  # root claims zed's: refused
    assert b"no permission" in zed.stdout, zed
    assert "zed" in {t["user"] for t in kit.tickets("q").values()}


def test_lpr_to_a_queue_that_does_not_exist_fails_and_the_daemon_prints_on(kit: Kit) -> None:
    need_lprng()
    kit.queue("q", kit.recorder())
    server = start_server(kit)
    (kit.root / "c.txt").write_text("c\n")
    out = lprng(kit.root, "lpr", "-P", f"nosuch@127.0.0.1%{server.port}", "c.txt",
                timeout=120)
    assert out.returncode != 0
    assert kit.tickets("q") == {}
    prints_another_job(kit, server)


def test_lpq_and_lprm_of_the_queue_all_reach_every_queue(kit: Kit) -> None:
    """``lpq -Pall@server`` and ``lprm -Pall@server``: each queue the server serves, as
    LPRng's own lpd answers them."""
    need_lprng()
    for name in ("q", "r"):
        kit.queue(name, kit.recorder())
    server = start_server(kit)
    wait_served(kit, "r", server.proc)
    every = server.queue("all")
    for name in ("q", "r"):
        assert kit.run("stop", "-P", name).returncode == 0
        (kit.root / f"{name}.txt").write_text(f"{name}\n")
        sent = lprng(kit.root, "lpr", "-P", server.queue(name), f"{name}.txt")
        assert sent.returncode == 0, sent
    wait_until(lambda: all(kit.tickets(n) for n in ("q", "r")), what="both jobs received")
    listing = lprng(kit.root, "lpq", "-P", every)
    text = listing.stdout.decode()
    assert listing.returncode == 0 and "q.txt" in text and "r.txt" in text, listing
    assert "ERROR" not in text, text
    removed = lprng(kit.root, "lprm", "-P", every, "all")
    assert removed.returncode == 0 and removed.stdout.count(b"dequeued") == 2, removed
    assert all(set(kit.states(n).values()) <= {"cancelled"} for n in ("q", "r"))
