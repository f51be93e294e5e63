"""``lp=|/path/to/lpfilter filter HOST%PORT`` served by lpfilter's own spool: the pipe
backend hands the program PRINTCAP_ENTRY and the job's names, so the queue's keys (here
``pjl``) reach the printer and the framing (``ld``/``tr``) is added once, by the spool."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from lpfilter.cli import main
from lpfilter.emulator.jetdirect import Behaviour, VirtualPrinter
from lpfilter.printcap.entrytext import entry_from_text, entry_to_text
from lpfilter.spool.store import SpoolStore

LPFILTER = str(Path(sys.executable).with_name("lpfilter"))


def test_entry_text_round_trips_through_the_printcap_reader() -> None:
    text = ("q1|queue1\n :cm=Test queue one\n :lp=127.0.0.1%9100\n :mx#0\n :pjl\n :sh@\n"
            " :ld=\\033E\n :sd=/var/spool/%P\n")
    entry = entry_from_text(text)
    again = entry_from_text(entry_to_text(entry))
    assert again.names == ["q1", "queue1"]
    for name, _option in entry.items():
        assert again.get(name) == entry.get(name), name
    assert again.string("sd") == "/var/spool/q1"  # % codes expanded, as lpd does
    assert entry_to_text(entry).startswith("q1|queue1\n :")


def test_the_watcher_runs_lpfilter_filter_with_the_queues_keys(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    job = b"%!PS\nshowpage\n"
    with VirtualPrinter("127.0.0.1", 0, str(tmp_path / "out"), Behaviour(pages=2)) as printer:
        host, port = printer.address
        printcap = tmp_path / "printcap"
        printcap.write_text(
            f"lp:sd={spool}:lp=|{LPFILTER} filter {host}%{port}:pjl:ld=<LD>:tr=<TR>"
            ":connect_timeout#2:stall_timeout#5:waitend_timeout#3:send_try#1"
            ":user=root\n")  # root's 0700 tmp_path: lp=| runs as root, not daemon
        source = tmp_path / "report.ps"
        source.write_bytes(job)
        env = {"HOME": str(tmp_path), "LPFILTER_LOCK_DIR": str(tmp_path / "locks"),
               "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        status = main(["--printcap", str(printcap), "print", "-P", "lp", "-J", "Report",
                       str(source)], env)
        assert status == 0
        assert printer.wait_for("closed", 1, timeout=20)
        records = list(printer.records)
    assert len(records) == 1
    received = records[0].path.read_bytes()  # type: ignore[union-attr]
    # PJL from the queue's pjl key (only PRINTCAP_ENTRY told the filter), the job's own
    # name from LPFILTER_JOB_NAME, and the spool's framing once, inside the PJL job.
    assert received.startswith(b"\x1b%-12345X@PJL\r\n@PJL JOB NAME=\"lp-000001 Report\"")
    assert received.count(b"<LD>") == 1 and received.count(b"<TR>") == 1
    assert b"<LD>" + job + b"<TR>" in received
    tickets = list(SpoolStore(str(spool), "lp").jobs())
    assert [t.state for t in tickets] == ["done"]


def test_as_an_of_filter_it_refuses_at_once(capsys: object) -> None:
    """An OF filter must stop itself on lpd's \\031\\001; lpfilter filter does not, so it
    says so and exits 2 rather than hang lpd."""
    status = main(["filter", "-Fo", "-Pq1", "-w80", "acct"],
                  {"PRINTCAP_ENTRY": "q1\n :lp=/dev/null\n :of=/usr/bin/lpfilter filter\n"})
    assert status == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err.count("\n") == 1 and "not an of= filter" in err


def test_under_the_watcher_without_a_destination_the_job_fails_with_the_reason(
        tmp_path: Path) -> None:
    """lp=|lpfilter filter with no destination under lpfilter's own spool: standard output
    is the pipe back to the spool, not a printer, so the job fails saying why."""
    spool = tmp_path / "spool"
    spool.mkdir()
    printcap = tmp_path / "printcap"
    printcap.write_text(f"lp:sd={spool}:lp=|{LPFILTER} filter:send_try#1:user=root\n")
    source = tmp_path / "doc.txt"
    source.write_bytes(b"text\n")
    env = {"HOME": str(tmp_path), "LPFILTER_LOCK_DIR": str(tmp_path / "locks")}
    status = main(["--printcap", str(printcap), "print", "-P", "lp", str(source)], env)
    assert status == 6
    [ticket] = list(SpoolStore(str(spool), "lp").jobs())
    assert ticket.state == "failed" and "no destination" in ticket.last_error
