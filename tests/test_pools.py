"""Printer pools (``sv=``): a pool's jobs print on the first free of its server queues'
printers. Real printers: lpfilter's JetDirect emulator on loopback (port 0) in a thread, a
bound port that listens to nobody (connection refused), one that resets; lpfilter as
processes (``print``, ``watch`` and its print server), LPRng's lpr for a forwarded job."""
from __future__ import annotations

import json
import os
import signal
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lpdkit import need_lprng
from serverkit import ask, lprng, send_job, start_server
from spoolkit import Kit, kit, wait_served, wait_until, write_files  # noqa: F401 - fixture

from lpfilter import printcap
from lpfilter.cli import main
from lpfilter.emulator.jetdirect import Behaviour, VirtualPrinter
from lpfilter.job import Job, JobState
from lpfilter.locks import ProcessLock
from lpfilter.protocols import lpd
from lpfilter.spool.journalformat import Kind, decode, first_lsn
from lpfilter.spool import poolboard
from lpfilter.spool.serve import make_worker
from lpfilter.spool.printers import device_key

MakePrinter = Callable[..., VirtualPrinter]


@pytest.fixture
def make_printer(tmp_path: Path) -> Iterator[MakePrinter]:
    """make_printer(**Behaviour fields): a started emulator on a free loopback port."""
    started: list[VirtualPrinter] = []

    def make(port: int = 0, **behaviour: object) -> VirtualPrinter:
        out = tmp_path / f"printer-{len(started)}"
        printer = VirtualPrinter("127.0.0.1", port, out,
                                 Behaviour(**behaviour))  # type: ignore[arg-type]
        started.append(printer.start())
        assert printer.wait_listening()
        return printer

    yield make
    for printer in started:
        printer.stop()


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port bound by nobody's listener: every connection is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def server_queue(kit: Kit, name: str, port: int, pool: str = "pool", **options: object) -> None:
    kit.queue(name, f"127.0.0.1%{port}", ss=pool, **options)


def pool_queue(kit: Kit, servers: list[str], name: str = "pool", **options: object) -> Path:
    """A pool queue: a spool directory and sv=, no lp."""
    sd = kit.queue(name, "unused", **options)
    kit.queues[name] = kit.queues[name].replace(":lp=unused", f":sv={','.join(servers)}")
    kit.write_printcap()
    return sd


def jobs_on(printer: VirtualPrinter) -> list[bytes]:
    """The complete jobs a printer stored (a connection it reset stored only a part)."""
    found = []
    for record in list(printer.records):
        if record.path is not None and record.path.exists():
            found.append(record.path.read_bytes())
    return found


def contents(paths: list[Path]) -> dict[bytes, str]:
    return {p.read_bytes(): p.name for p in paths}


def done(kit: Kit, count: int, queue: str = "pool") -> bool:
    states = kit.states(queue)
    return len(states) == count and all(s == "done" for s in states.values())


@pytest.mark.parametrize("trouble", ["refuses", "resets"])
def test_thirty_jobs_print_once_each_on_the_two_good_printers(
        kit: Kit, make_printer: MakePrinter, dead_port: int, trouble: str) -> None:
    bad = dead_port if trouble == "refuses" else make_printer(reset_after=8).address[1]
    good = [make_printer(), make_printer()]
    server_queue(kit, "q1", bad)
    server_queue(kit, "q2", good[0].address[1])
    server_queue(kit, "q3", good[1].address[1])
    pool_queue(kit, ["q1", "q2", "q3"])
    files = write_files(kit.root / "in", 30)
    out = kit.run("print", "-P", "pool", *map(str, files), timeout=180)
    assert out.returncode == 0, out.stderr
    wanted = contents(files)
    printed = [data for printer in good for data in jobs_on(printer)]
    assert sorted(printed) == sorted(wanted), "each job exactly once on a good printer"
    assert all(jobs_on(printer) for printer in good), "both good printers took jobs"
    tickets = kit.tickets("pool")
    assert len(tickets) == 30 and {t["state"] for t in tickets.values()} == {"done"}
    assert {t["extra"]["server"] for t in tickets.values()} == {"q2", "q3"}
    assert all(t["attempts"] == 1 for t in tickets.values()), "q1's failures are not counted"
    failed_on_q1 = [line for line in (kit.sd("pool") / "log").read_text().splitlines()
                    if "q1: " in line and "another printer of the pool takes it" in line]
    assert failed_on_q1, "q1 was tried and its job went to another printer"
    if trouble == "resets":  # bytes reached q1's printer: the job is flagged, not hidden
        assert any(t["possible_duplicate"] for t in tickets.values())
    else:
        assert not any(t["possible_duplicate"] for t in tickets.values())


def test_a_busy_printer_is_skipped_while_the_others_take_the_jobs(
        kit: Kit, make_printer: MakePrinter) -> None:
    busy, free = make_printer(slow=1000), [make_printer(), make_printer()]
    server_queue(kit, "q1", busy.address[1])
    server_queue(kit, "q2", free[0].address[1])
    server_queue(kit, "q3", free[1].address[1])
    pool_queue(kit, ["q1", "q2", "q3"])
    daemon = kit.start("watch")
    for queue in ("pool", "q1", "q2", "q3"):
        wait_served(kit, queue, daemon)
    # q1's own job: 4 MiB to a printer taking 1000 bytes a second holds it for the test.
    (kit.root / "own.bin").write_bytes(os.urandom(4 << 20))
    assert kit.run("print", "-P", "q1", "own.bin").returncode == 0
    wait_until(lambda: kit.tickets("q1") and next(iter(kit.tickets("q1").values()))[
        "send_started"], what="q1's own job to be printing")
    files = write_files(kit.root / "in", 10)
    assert kit.run("print", "-P", "pool", *map(str, files)).returncode == 0
    wait_until(lambda: done(kit, 10), timeout=60, what="the pool's jobs")
    assert sorted(d for p in free for d in jobs_on(p)) == sorted(contents(files))
    assert len(busy.events("open")) == 1, "the busy printer got q1's own job, no other"
    assert {t["extra"]["server"] for t in kit.tickets("pool").values()} <= {"q2", "q3"}
    assert list(kit.states("q1").values()) == ["active"]
    status = kit.run("status", "-P", "pool")
    assert "subservers: q1, q2, q3" in status.stdout, status.stdout
    server = kit.run("status", "-P", "q1")
    assert "serving pool pool" in server.stdout, server.stdout


def test_all_printers_down_jobs_wait_with_the_reason_then_print_when_one_is_back(
        kit: Kit, make_printer: MakePrinter) -> None:
    ports = []
    holders = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        holders.append(sock)
        ports.append(sock.getsockname()[1])
    server_queue(kit, "q1", ports[0])
    server_queue(kit, "q2", ports[1])
    pool_queue(kit, ["q1", "q2"])
    daemon = kit.start("watch")
    wait_served(kit, "pool", daemon)
    files = write_files(kit.root / "in", 3)
    assert kit.run("print", "-P", "pool", *map(str, files)).returncode == 0

    def every_printer_failed() -> bool:
        errors = [t["last_error"] for t in kit.tickets("pool").values()]
        return any(e.startswith("every printer of pool pool failed it") for e in errors)

    def all_waiting() -> bool:  # a job may still be on its way to the second printer
        return every_printer_failed() and set(kit.states("pool").values()) == {"queued"}

    try:
        wait_until(all_waiting, timeout=60, what="each printer of the pool to fail")
        waiting_then_back(kit, make_printer, ports, holders, files)
    finally:
        for sock in holders:
            sock.close()


def waiting_then_back(kit: Kit, make_printer: MakePrinter, ports: list[int],
                      holders: list[socket.socket], files: list[Path]) -> None:
    status = kit.run("status", "-P", "pool").stdout
    for name, port in (("q1", ports[0]), ("q2", ports[1])):  # the board: each one's trouble
        assert f"    {name}: fail" in status, status
        assert f"(127.0.0.1%{port}: printer busy or switched off)" in status, status
    holders[0].close()
    back = make_printer(port=ports[0])
    wait_until(lambda: done(kit, 3), timeout=60, what="the jobs to print on q1's printer")
    assert sorted(jobs_on(back)) == sorted(contents(files))
    assert all(t["attempts"] == 1 for t in kit.tickets("pool").values()), \
        "an unreachable printer's tries are not counted (no send_try set)"
    holders[1].close()


def test_a_job_received_over_lpd_for_the_pool_prints_on_a_server(
        kit: Kit, make_printer: MakePrinter) -> None:
    printer = make_printer()
    server_queue(kit, "q1", printer.address[1])
    pool_queue(kit, ["q1"])
    server = start_server(kit, queue="pool")
    send_job(server.port, b"through the print server\n", queue="pool")
    wait_until(lambda: done(kit, 1), what="the received job to print")
    assert jobs_on(printer) == [b"through the print server\n"]
    answer = ask(server.port, lpd.status("pool", long=True)).decode()
    assert answer.startswith("Printer: pool@") and "  (subservers q1)\n" in answer, answer
    answer = ask(server.port, lpd.status("q1", long=True)).decode()
    assert "  (serving pool)\n" in answer, answer
    # A local queue forwarding to the pool (lp=pool@host%port), printed by lpfilter itself.
    kit.queue("fwd", server.queue("pool"))
    (kit.root / "fwd.txt").write_text("forwarded to the pool\n")
    out = kit.run("print", "-P", "fwd", "fwd.txt")
    assert out.returncode == 0, out.stderr
    wait_until(lambda: done(kit, 2), what="the forwarded job to print")
    assert sorted(jobs_on(printer)) == [b"forwarded to the pool\n",
                                        b"through the print server\n"]


def test_lprngs_lpr_to_the_pool_prints_on_a_server(kit: Kit, make_printer: MakePrinter) -> None:
    need_lprng()
    printer = make_printer()
    server_queue(kit, "q1", printer.address[1])
    server_queue(kit, "q2", printer.address[1])  # two queues, one printer: one at a time
    pool_queue(kit, ["q1", "q2"])
    server = start_server(kit, queue="pool")
    data = os.urandom(20_000)
    (kit.root / "job.bin").write_bytes(data)
    out = lprng(kit.root, "lpr", "-P", server.queue("pool"), "job.bin")
    assert out.returncode == 0, out
    wait_until(lambda: done(kit, 1), what="lpr's job to print")
    assert jobs_on(printer) == [data]


def test_a_pool_marks_its_jobs_a_batch_at_a_time(kit: Kit, make_printer: MakePrinter) -> None:
    """A pool's servers took the old path for every job: a durable JOB record before its
    first byte and a durable outcome, two fdatasyncs a job, where a plain queue's worker
    writes one durable MARK for up to 64 jobs. A round now marks the job a server claims
    and the next due ones, so the jobs' sends are START and FIRST records, not synced."""
    printers = [make_printer(), make_printer()]
    for n, printer in enumerate(printers, 1):
        server_queue(kit, f"q{n}", printer.address[1])
    pool_queue(kit, ["q1", "q2"])
    files = write_files(kit.root / "in", 40)
    out = kit.run("print", "-P", "pool", *map(str, files), timeout=180)
    assert out.returncode == 0, out.stderr
    printed = [data for printer in printers for data in jobs_on(printer)]
    assert sorted(printed) == sorted(contents(files)), "each job exactly once"
    data = (kit.sd("pool") / ".lpfilter" / "journal").read_bytes()
    records, _ = decode(data, first_lsn(data))
    kinds = Counter(record.kind for record in records)
    assert kinds[Kind.START] == kinds[Kind.FIRST] == 40, kinds
    assert 1 <= kinds[Kind.MARK] <= 4, kinds  # one a batch (and a server's that raced it)
    assert kinds[Kind.JOB] <= 40 + 40 + 1, kinds  # spooled, ended (and a reservation)
    assert {t["state"] for t in kit.tickets("pool").values()} == {"done"}


def test_a_pools_round_lists_its_jobs_when_told_not_at_each_jobs_end(
        kit: Kit, make_printer: MakePrinter) -> None:
    """A round listed the pool's unfinished tickets (a copy of each) after every job a
    server ended: quadratic, a pool of two printers took ~240 jobs/s where a plain queue
    takes 1,100. It lists them at its start, when woken, when files came in or a job was
    put back to wait, and when a server finds none left: a few times a pass."""
    printers = [make_printer(), make_printer()]
    for n, printer in enumerate(printers, 1):
        server_queue(kit, f"q{n}", printer.address[1])
    pool_queue(kit, ["q1", "q2"])
    files = write_files(kit.root / "in", 60)
    out = kit.run("print", "--no-wait", "-P", "pool", *map(str, files))
    assert out.returncode == 0, out.stderr
    entry = printcap.load([str(kit.printcap)]).lookup("pool")
    worker = make_worker(entry, lock_dir=str(kit.lock_dir))
    listings = [0]
    listing = worker.store.jobs

    def counted(*, finished: bool = True) -> list[Job]:
        listings[0] += 1
        return listing(finished=finished)

    worker.store.jobs = counted  # type: ignore[method-assign]
    summary = worker.serve(burst=True)
    assert summary.counts.get(JobState.DONE) == 60, summary
    printed = [data for printer in printers for data in jobs_on(printer)]
    assert sorted(printed) == sorted(contents(files))
    assert listings[0] < 20, listings[0]  # 60 and more when each job's end listed them


def test_the_board_is_rewritten_at_most_every_quarter_second(tmp_path: Path) -> None:
    """The board (which server prints which job, for status) was a new file twice a job;
    a change now waits while the last write is younger than poolboard.EVERY, until the
    dispatcher finds it due or the round ends (``now``)."""
    clock = [100.0]
    board = poolboard.Board(clock=lambda: clock[0])

    def put(job: str, *, now: bool = False) -> None:
        board.put(str(tmp_path), [{"queue": "q1", "job": job, "trouble": "", "back_at": 0.0}],
                  None, now=now)

    def shown() -> str:
        servers = poolboard.read(str(tmp_path))
        assert servers is not None
        return servers[0]["job"]

    put("000001")
    assert shown() == "000001" and not board.owed
    put("000002")
    assert shown() == "000001" and board.owed and not board.due()
    clock[0] += poolboard.EVERY
    assert board.due()
    put("000003")
    assert shown() == "000003" and not board.owed
    put("000004", now=True)
    assert shown() == "000004" and not board.due()


def test_sigkill_mid_run_every_job_prints_and_only_flagged_ones_twice(
        kit: Kit, make_printer: MakePrinter) -> None:
    printers = [make_printer(slow=16384) for _ in range(3)]
    for n, printer in enumerate(printers, 1):
        server_queue(kit, f"q{n}", printer.address[1])
    pool_queue(kit, ["q1", "q2", "q3"])
    files = []
    for n in range(9):
        path = kit.root / f"big{n}.bin"
        path.write_bytes(f"job {n} ".encode() + os.urandom(48_000))
        files.append(path)
    daemon = kit.start("watch")
    wait_served(kit, "pool", daemon)
    assert kit.run("print", "-P", "pool", *map(str, files)).returncode == 0

    def midway() -> bool:
        tickets = kit.tickets("pool").values()
        return any(t["state"] == "active" and t["send_started"] for t in tickets) and any(
            t["state"] == "done" for t in tickets)

    wait_until(midway, timeout=60, what="some jobs printed and some being sent")
    daemon.signal(signal.SIGKILL)
    daemon.wait()
    again = kit.start("watch")
    wait_until(lambda: done(kit, 9), timeout=120, what="every job after the restart")
    again.stop()
    wanted = contents(files)
    printed = [data for printer in printers for data in jobs_on(printer) if data in wanted]
    assert set(printed) == set(wanted), "every job printed at least once"
    tickets = {t["name"]: t for t in kit.tickets("pool").values()}
    for data in set(printed):
        if printed.count(data) > 1:
            assert tickets[wanted[data]]["possible_duplicate"], wanted[data]


def test_checkpc_says_which_sv_queue_is_missing(kit: Kit, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    server_queue(kit, "q1", 9)
    server_queue(kit, "q2", 9, pool="other")
    pool_queue(kit, ["q1", "q2", "nosuch"])
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(kit.printcap))
    assert main(["checkpc"]) == 1
    out = capsys.readouterr().out
    assert "queue pool: sv lists 'nosuch': no printer named 'nosuch'" in out, out
    assert "queue q2: ss=other names no queue" in out, out
    assert "not acted on" not in out, out  # sv and ss are acted on now
    assert "no :lp" not in out, out  # a pool needs no lp


def test_checkpc_accepts_a_pool_without_lp(kit: Kit, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    server_queue(kit, "q1", 9)
    server_queue(kit, "q2", 9)
    pool_queue(kit, ["q1", "q2"])
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(kit.printcap))
    assert main(["checkpc"]) == 0, capsys.readouterr()
    assert capsys.readouterr().out == ""


def test_status_json_names_the_pools_servers(kit: Kit, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    server_queue(kit, "q1", 9)
    pool_queue(kit, ["q1"])
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(kit.printcap))
    assert main(["status", "-P", "pool", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["destination"] == "pool of q1"
    assert data["pool"] == {"servers": ["q1"], "board": None}


def test_sighup_after_a_server_queue_changes_sends_the_pools_jobs_to_its_new_printer(
        kit: Kit, make_printer: MakePrinter) -> None:
    old, new = make_printer(), make_printer()
    server_queue(kit, "q1", old.address[1])
    pool_queue(kit, ["q1"])
    daemon = kit.start("watch", "-P", "pool")
    wait_served(kit, "pool", daemon)
    (kit.root / "a.txt").write_text("before\n")
    assert kit.run("print", "-P", "pool", "a.txt").returncode == 0
    wait_until(lambda: done(kit, 1), what="the first job")
    server_queue(kit, "q1", new.address[1])  # only the server queue's lp changes
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: "queue pool changed in the printcap; restarting it" in daemon.stderr(),
               what="the pool to restart")
    wait_served(kit, "pool", daemon)
    (kit.root / "b.txt").write_text("after\n")
    assert kit.run("print", "-P", "pool", "b.txt").returncode == 0
    wait_until(lambda: done(kit, 2), what="the second job")
    assert (jobs_on(old), jobs_on(new)) == ([b"before\n"], [b"after\n"])


def test_a_file_dropped_into_the_pool_prints_on_a_free_server_while_another_is_busy(
        kit: Kit, make_printer: MakePrinter) -> None:
    slow, fast = make_printer(slow=1000), make_printer()
    server_queue(kit, "q1", slow.address[1])
    server_queue(kit, "q2", fast.address[1])
    pool_queue(kit, ["q1", "q2"])
    daemon = kit.start("watch", "-P", "pool")
    wait_served(kit, "pool", daemon)
    # q2's printer is in use by someone else (its lock held, as another queue would), so
    # the big job goes to q1, whose printer takes 1000 bytes a second: a long send.
    other = ProcessLock(str(kit.lock_dir / device_key(f"127.0.0.1%{fast.address[1]}")), "test")
    assert other.acquire()
    (kit.root / "big.bin").write_bytes(os.urandom(4 << 20))
    assert kit.run("print", "-P", "pool", "big.bin").returncode == 0
    wait_until(lambda: [t for t in kit.tickets("pool").values()
                        if t["state"] == "active" and t["extra"].get("server") == "q1"],
               what="the big job to print on q1")
    other.release()
    dropped = kit.root / "dropped.txt"
    dropped.write_text("dropped into the pool\n")
    os.rename(dropped, kit.sd("pool") / "dropped.txt")
    wait_until(lambda: jobs_on(fast) == [b"dropped into the pool\n"], timeout=60,
               what="the dropped file to print on q2")
    # the printer has the bytes a moment before the worker has written the job done
    wait_until(lambda: sorted(kit.states("pool").values()) == ["active", "done"],
               what="the dropped job done while the big one still prints")


def test_a_server_whose_program_refuses_every_job_leaves_them_to_the_other(
        kit: Kit) -> None:
    refuse = kit.program("refuse.sh", "#!/bin/sh\ncat >/dev/null\necho out of paper\nexit 2\n")
    kit.queue("q1", f"|{refuse}", ss="pool")
    kit.queue("q2", kit.recorder(), ss="pool")
    pool_queue(kit, ["q1", "q2"])
    files = write_files(kit.root / "in", 6)
    out = kit.run("print", "-P", "pool", *map(str, files), timeout=120)
    assert out.returncode == 0, out.stderr
    printed = sorted(line[0] for line in kit.log_lines())
    assert printed == ["q2"] * 6, "the recorder ran for each job, as server q2 (PRINTER=q2)"
    assert sorted(p.read_bytes() for p in kit.out.glob("q2-*.out")) == sorted(contents(files))
    log = (kit.sd("pool") / "log").read_text()
    assert "q1: lp filter refuse.sh exited 2 (JABORT): out of paper; another printer" in log, log
    tickets = kit.tickets("pool").values()
    assert {t["state"] for t in tickets} == {"done"} and {t["attempts"] for t in tickets} == {1}


def test_a_job_every_server_refuses_fails_once_with_each_ones_reason(kit: Kit) -> None:
    refuse = kit.program("refuse.sh", "#!/bin/sh\ncat >/dev/null\necho out of paper\nexit 2\n")
    kit.queue("q1", f"|{refuse}", ss="pool")
    kit.queue("q2", f"|{refuse}", ss="pool")
    pool_queue(kit, ["q1", "q2"])
    (kit.root / "a.txt").write_text("nobody prints this\n")
    out = kit.run("print", "-P", "pool", "a.txt", timeout=120)
    assert out.returncode == 6, out.stderr  # the job failed
    (ticket,) = kit.tickets("pool").values()
    assert (ticket["state"], ticket["attempts"]) == ("failed", 1)
    assert ticket["last_error"] == (
        "every printer of pool pool failed it (q1: lp filter refuse.sh exited 2 (JABORT): out of"
        " paper; q2: lp filter refuse.sh exited 2 (JABORT): out of paper)")


def test_lpc_stop_holds_the_pool_and_a_stopped_server_is_passed_over(
        kit: Kit, make_printer: MakePrinter) -> None:
    """A stopped pool prints nothing until started; a server queue stopped with lpc takes
    none of the pool's jobs, the others print them."""
    printers = [make_printer(), make_printer()]
    server_queue(kit, "q1", printers[0].address[1])
    server_queue(kit, "q2", printers[1].address[1])
    pool_queue(kit, ["q1", "q2"])
    assert kit.run("lpc", "stop", "pool").returncode == 0
    assert kit.run("lpc", "stop", "q1").returncode == 0
    daemon = kit.start("watch")
    for queue in ("pool", "q1", "q2"):
        wait_served(kit, queue, daemon)
    files = write_files(kit.root / "in", 6)
    assert kit.run("print", "--no-wait", "-P", "pool", *map(str, files)).returncode == 0
    wait_until(lambda: len(kit.states("pool")) == 6, what="the pool's jobs queued")
    assert set(kit.states("pool").values()) == {"queued"}  # stopped: nothing printed
    assert kit.run("lpc", "start", "pool").returncode == 0
    wait_until(lambda: done(kit, 6), timeout=60, what="the pool's jobs")
    assert jobs_on(printers[0]) == []  # q1 is stopped: passed over
    assert sorted(jobs_on(printers[1])) == sorted(contents(files))


def test_a_job_put_back_in_a_round_keeps_the_print_order(tmp_path: Path) -> None:
    """A pool job whose try failed goes back among the due jobs in print order: it was
    put back by its number, ahead of a job lpc topq put first meanwhile."""
    import threading
    from types import SimpleNamespace

    from lpfilter.spool.outcome import WorkSummary
    from lpfilter.spool.poolround import Round
    from lpfilter.spool.store import SpoolStore
    store = SpoolStore(str(tmp_path), "pool")
    store.ensure("test")
    jobs = [Job(f"00000{n}", "pool", "u", "f", 1, float(n)) for n in (1, 2, 3)]
    store.write_all(jobs, durable=False)
    pool = SimpleNamespace(store=store, entry=SimpleNamespace(flag=lambda name: False),
                           early=set(), clock=lambda: 10.0, lock=threading.RLock(),
                           failed_by={})
    current = Round(pool, WorkSummary(), None)  # type: ignore[arg-type]
    current.refill()
    server = SimpleNamespace(queue="s1")
    assert current.claim(server) == "000001"  # type: ignore[arg-type]
    jobs[2].extra = {"topq": 5.0}  # lpc topq 3, while 1 is being sent
    store.write(jobs[2], durable=False)
    current.done("000001", JobState.QUEUED)  # its try failed: queued, due again
    if current.stale:  # (as the round's dispatcher does before it hands a job out)
        current.refill()
    assert current.pending == ["000003", "000001", "000002"]
    store.close()


def test_a_job_one_server_failed_is_tried_again_while_the_other_is_stopped(
        kit: Kit, make_printer: MakePrinter) -> None:
    """Found by an audit: pool sv=m1,m2 with m2 stopped (lpc stop); m1 refused the job
    once. The job waited for m2, the one server that had not failed it, for as long as m2
    stayed stopped, though m1 printed again (and printed later jobs). A stopped server is
    no server that may take it: the pool's retry policy tries it again on m1."""
    away = socket.socket()  # m1's port: refused until a printer listens there
    away.bind(("127.0.0.1", 0))
    port = away.getsockname()[1]
    server_queue(kit, "m1", port)
    server_queue(kit, "m2", make_printer().address[1])
    pool_queue(kit, ["m1", "m2"])
    assert kit.run("lpc", "stop", "m2").returncode == 0
    daemon = kit.start("watch")
    for queue in ("pool", "m1", "m2"):
        wait_served(kit, queue, daemon)
    (kit.root / "doc").write_bytes(b"the job\n")
    assert kit.run("print", "--no-wait", "-P", "pool", str(kit.root / "doc")).returncode == 0
    log = kit.sd("pool") / "log"
    wait_until(lambda: log.exists() and "m1: " in log.read_text(), what="m1's refusal")
    away.close()
    printer = make_printer(port)
    wait_until(lambda: done(kit, 1), what="the job printed on m1", timeout=60)
    assert jobs_on(printer) == [b"the job\n"]
    assert daemon.stop() == 0
