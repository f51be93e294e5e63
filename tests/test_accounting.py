"""LPRng's accounting (lprng-filters.md §8): ``jobstart``/``jobend`` lines from ``as``/``ae``
compared with the lines the real lpd recorded, written to an ``af`` file (only an existing
one unless ``create_files``, never through a link), to ``af=|program`` and to
``af=host%port`` (a real loopback server); ``as``/``ae`` programs; lpfilter's own key=value
line kept as ``accounting_format=keyvalue``; accounting that fails never fails a job."""
from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest
from localkit import made_user
from spoolkit import Kit, kit  # noqa: F401 - fixture
from test_filter_command import FACTS, entry

from lpfilter import cli
from lpfilter.filters.accounting import Target, accounting_format, line, target, wanted
from lpfilter.filters.command import JobFacts

#: The lines lpd appended to <sd>/acct for the lab's job (reference §8).
RECORDED_START = ("jobstart '-Hlocalhost' '-nroot' '-Pq1'  '-b18'"
                  " '-t2026-11-21-04:12:41.000' '-CZ' '-JMyJob'\n")


def test_lines_match_lprngs_recorded_lines() -> None:
    e = entry()
    assert line(e.string("as") or "", e, FACTS) == RECORDED_START
    assert line(e.string("ae") or "", e, FACTS) == "jobend" + RECORDED_START[len("jobstart"):]


def test_template_tokens_quoted_unknown_dropped_and_values_made_safe() -> None:
    e = entry(":as=start $P $0n $-J $g ${cm} ${nokey} $M end")
    facts: JobFacts = FACTS.replace(job_name="it's\na\x1b[2Jjob",
                                          control_lines={"M": "ann@ws"})
    assert line(e.string("as") or "", e, facts) == (
        "start '-Pq1' '-n' 'root' 'it_s\\na\\x1b[2Jjob'  'Test queue one' '0' '-Mann@ws' end\n")


def test_targets_and_switches() -> None:
    assert target(entry()) == Target("file", "acct")
    assert target(entry(":af=|/usr/bin/acct -x")) == Target("program", "|/usr/bin/acct -x")
    assert target(entry(":af=loghost%9999")) == Target("host", "loghost", 9999)
    assert target(entry(":af=/var/log/acct%1")) == Target("file", "/var/log/acct%1")
    assert target(entry(":af=")) is None
    assert accounting_format(entry()) == "lprng"
    assert accounting_format(entry(":accounting_format=keyvalue")) == "keyvalue"
    assert wanted(entry()) and not wanted(entry(":la@"))
    assert wanted(entry(":la@:lp=q@h")) and not wanted(entry(":lp=q@h:ar@"))


# --- the spool writes them ------------------------------------------------------------------
LINE = re.compile(r"^(jobstart|jobend) '-H[^']+' '-n[^']+' '-Pq'  '-b(\d+)'"
                  r" '-t\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d\.000' '-CA' '-J([^']*)'$")


def _queue(kit: Kit, **options: object) -> tuple[Path, Path]:  # noqa: F811
    device = kit.root / "device"
    device.touch()
    sd = kit.queue("q", str(device), accounting=False, **options, user="root")
    return sd, device


def _print(kit: Kit, doc_text: str = "hello\n", *args: str) -> None:  # noqa: F811
    doc = kit.root / "doc"
    doc.write_text(doc_text)
    done = kit.run("print", "-P", "q", *args, str(doc))
    assert done.returncode == 0, done.stderr


def test_af_file_gets_jobstart_and_jobend(kit: Kit) -> None:  # noqa: F811
    sd, device = _queue(kit)
    (sd / "acct").touch()
    _print(kit, "hello\n", "-J", "a'b")
    lines = (sd / "acct").read_text().splitlines()
    assert [LINE.match(x).groups() for x in lines] == [  # type: ignore[union-attr]
        ("jobstart", "6", "a_b"), ("jobend", "6", "a_b")], lines
    assert device.read_text() == "hello\n"


def test_af_file_absent_is_not_created_unless_create_files(kit: Kit,  # noqa: F811
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    sd, device = _queue(kit)
    doc = kit.root / "doc"
    doc.write_text("x\n")
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(kit.printcap))
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(kit.lock_dir))
    assert cli.main(["print", "-P", "q", str(doc)]) == 0
    assert not (sd / "acct").exists() and device.read_text() == "x\n"
    kit.queue("q", str(device), accounting=False, create_files=True, user="root")
    assert cli.main(["print", "-P", "q", str(doc)]) == 0
    assert [x.split()[0] for x in (sd / "acct").read_text().splitlines()] == [
        "jobstart", "jobend"]
    assert (sd / "acct").stat().st_mode & 0o777 == 0o600
    capsys.readouterr()


def test_af_symlink_is_not_followed_and_the_job_prints(kit: Kit) -> None:  # noqa: F811
    sd, device = _queue(kit, create_files=True)
    victim = kit.root / "victim"
    victim.write_text("keep\n")
    (sd / "acct").symlink_to(victim)
    doc = kit.root / "doc"
    doc.write_text("data\n")
    done = kit.run("print", "-P", "q", str(doc))
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "keep\n" and device.read_text() == "data\n"
    assert f"accounting to af=acct failed: cannot write {sd / 'acct'}:" in done.stderr
    assert "the jobs are not affected" in done.stderr
    assert kit.states("q") == {"000001": "done"}


def test_af_program_gets_the_lines_on_stdin(kit: Kit) -> None:  # noqa: F811
    got = kit.root / "got"
    program = kit.program("acct.sh", f"#!/bin/sh\necho \"$PRINTER $# $1\" >> {got}\n"
                                     f"cat >> {got}\n")
    _queue(kit, af=f"|{program}")
    _print(kit)
    lines = got.read_text().splitlines()
    assert len(lines) == 4, lines
    assert lines[0].startswith("q ") and lines[2].startswith("q ")
    assert LINE.match(lines[1]).group(1) == "jobstart"  # type: ignore[union-attr]
    assert LINE.match(lines[3]).group(1) == "jobend"  # type: ignore[union-attr]


def test_af_host_port_sends_each_line_over_tcp(kit: Kit) -> None:  # noqa: F811
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(30)
    received: list[bytes] = []

    def serve() -> None:
        for _ in range(2):
            conn, _addr = server.accept()
            with conn:
                conn.settimeout(30)
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                received.append(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        _queue(kit, af=f"127.0.0.1%{server.getsockname()[1]}")
        _print(kit)
        thread.join(timeout=30)
    finally:
        server.close()
    assert not thread.is_alive()
    assert [LINE.match(d.decode().rstrip("\n")).group(1)  # type: ignore[union-attr]
            for d in received] == ["jobstart", "jobend"]
    assert all(d.endswith(b"\n") and d.count(b"\n") == 1 for d in received)


def test_af_to_a_host_name_the_resolver_refuses_is_said_and_the_job_prints(
        kit: Kit) -> None:  # noqa: F811
    """An empty label (``a..b``): the idna codec's UnicodeError, not an OSError, was an
    internal error of the job; it is accounting's trouble, said once."""
    _sd, device = _queue(kit, af="a..b%9999")
    doc = kit.root / "doc"
    doc.write_text("data\n")
    done = kit.run("print", "-P", "q", str(doc))
    assert done.returncode == 0, done.stderr
    assert device.read_text() == "data\n" and kit.states("q") == {"000001": "done"}
    assert "accounting to af=a..b%9999 failed: cannot send to a..b%9999" in done.stderr
    assert "internal error" not in done.stderr and done.stderr.count("accounting") == 1


def test_as_and_ae_programs_run_with_the_filter_command_line(kit: Kit) -> None:  # noqa: F811
    got = kit.root / "got"
    program = kit.program("rec.sh", f"#!/bin/sh\necho \"$0 $*\" >> {got}\n")
    sd, _device = _queue(kit, **{"as": f"{program} start", "ae": f"|{program} end $-P"})
    (sd / "acct").touch()
    _print(kit)
    start, end = got.read_text().splitlines()
    assert re.match(rf"{re.escape(str(program))} start -A\S+\+1 -CA -D\S+ -Ff -H\S+ ", start)
    assert " -Pq " in start and " -edf" not in start and start.endswith(" acct")
    assert re.match(rf"{re.escape(str(program))} end q -A\S+\+1 -CA -D", end)
    assert (sd / "acct").read_text() == ""  # a program, not a line


def test_keyvalue_format_keeps_lpfilters_own_line(kit: Kit) -> None:  # noqa: F811
    sd, _device = _queue(kit, accounting_format="keyvalue")
    (sd / "acct").touch()
    _print(kit)
    (only,) = (sd / "acct").read_text().splitlines()
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d queue=q job=000001 user=\S+ bytes=6 "
                    r"pages=- seconds=[\d.]+ outcome=done attempts=1 duplicate=no"
                    r" delivery=sent$", only), only


def test_la_off_writes_nothing(kit: Kit) -> None:  # noqa: F811
    sd, device = _queue(kit, la=False)
    (sd / "acct").touch()
    _print(kit)
    assert (sd / "acct").read_text() == "" and device.read_text() == "hello\n"


def test_each_attempt_has_its_pair_of_lines(kit: Kit) -> None:  # noqa: F811
    marker = kit.root / "failed-once"
    program = kit.program("flaky.sh", f"#!/bin/sh\ncat > /dev/null\n"
                                      f"[ -e {marker} ] && exit 0\ntouch {marker}\nexit 1\n")
    sd = kit.queue("q", f"|{program}", accounting=False, send_try=3, user="root")
    (sd / "acct").touch()
    _print(kit)
    assert [x.split()[0] for x in (sd / "acct").read_text().splitlines()] == [
        "jobstart", "jobend", "jobstart", "jobend"]
    assert kit.states("q") == {"000001": "done"}


@pytest.mark.parametrize("af", ["127.0.0.1%{closed}", "|{fails}", "|{hangs}", "|relative"],
                         ids=["refused", "exit-1", "hangs", "not-absolute"])
def test_failing_accounting_never_fails_the_job(kit: Kit, af: str) -> None:  # noqa: F811
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there now
    fails = kit.program("fails.sh", "#!/bin/sh\necho no ledger today\nexit 1\n")
    hangs = kit.program("hangs.sh", "#!/bin/sh\nexec sleep 300\n")
    _sd, device = _queue(kit, af=af.format(closed=port, fails=fails, hangs=hangs),
                         connect_timeout=1)
    doc = kit.root / "doc"
    doc.write_text("data\n")
    done = kit.run("print", "-P", "q", str(doc))
    assert done.returncode == 0, done.stderr
    assert device.read_text() == "data\n" and kit.states("q") == {"000001": "done"}
    assert "accounting to af=" in done.stderr and "the jobs are not affected" in done.stderr
    assert done.stderr.count("accounting to") == 1, done.stderr  # said once, not per line
    if "fails" in af:
        assert "exited 1 (JFAIL): no ledger today" in done.stderr
    if "closed" in af:
        assert f"cannot send to 127.0.0.1%{port}: Connection refused" in done.stderr
    assert _children_named("hangs.sh") == []


def _children_named(name: str) -> list[int]:
    """Processes still running the program (a hanging accounting program is killed)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if name.encode() in cmdline and b"sleep" in cmdline:
                found.append(int(pid))
    return found


def test_checkpc_no_longer_notes_the_accounting_keys(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    sd = tmp_path / "spool"
    sd.mkdir(mode=0o700)
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:sd={sd}:lp=/dev/null:as=jobstart $P:ae=|/bin/true"
                        ":af=loghost%9999:la:ar:create_files:accounting_format=keyvalue\n")
    assert cli.main(["--printcap", str(printcap), "checkpc"]) == 0
    assert capsys.readouterr() == ("", "")


def test_an_attempt_that_never_reaches_the_printer_writes_no_lines(kit: Kit) -> None:  # noqa: F811
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there: every try is refused
    sd = kit.queue("q", f"127.0.0.1%{port}", accounting=False, send_try=2,
                   connect_timeout=2, user="root")
    (sd / "acct").touch()
    doc = kit.root / "doc"
    doc.write_text("x\n")
    done = kit.run("print", "-P", "q", str(doc))
    assert done.returncode != 0
    assert kit.ticket("q", "000001")["unreachable_tries"] >= 1
    assert (sd / "acct").read_text() == ""


def test_accounting_programs_run_as_the_filters_do(kit: Kit) -> None:  # noqa: F811
    """I4: a root watcher runs ae= and af=| programs (as= is a line for af) as it runs the
    queue's filter: as the spool's owner, not as root."""
    with made_user() as user:
        where = Path(tempfile.mkdtemp(prefix="lpfilter-acct-"))
        try:
            where.chmod(0o755)  # the user must reach the programs (tmp_path is root's)
            out = where / "uids"
            out.touch(mode=0o666)
            out.chmod(0o666)
            script = f"#!/bin/sh\necho \"$1 $(id -u)\" >> {out}\ncat >/dev/null\n"
            rec = where / "rec.sh"
            rec.write_text(script)
            rec.chmod(0o755)
            device = kit.root / "device"
            device.touch()
            sd = kit.queue("q", str(device), accounting=False,
                           **{"if": f"{rec} if", "as": "jobstart $P", "ae": f"|{rec} ae",
                              "af": f"|{rec} af"}, user="root")
            doc = kit.root / "doc"
            doc.write_text("hello\n")
            done = kit.run("print", "--no-wait", "-P", "q", str(doc))
            assert done.returncode == 0, done.stderr
            for path in [sd, *sd.rglob("*")]:
                os.lchown(path, user.uid, user.uid)
            watch = kit.run("watch", "--once", "-P", "q", timeout=120)
            assert watch.returncode == 0, watch.stderr
            assert kit.states("q") == {"000001": "done"}
            got = sorted(out.read_text().splitlines())
            assert got == sorted(f"{who} {user.uid}" for who in ("if", "ae", "af"))
        finally:
            shutil.rmtree(where)


def test_an_attempt_without_a_jobstart_gets_no_jobend(tmp_path: Path) -> None:
    """The af file looked for once when an attempt starts: made during the attempt, it
    gets that attempt's neither line (no jobend without its jobstart) and the next
    attempt's both; there from the start, both lines. (The worker's loop: the default
    af=acct that no one made costs one lookup a job, not two.)"""
    from lpfilter.job import Job, JobState
    from lpfilter.printcap.entrytext import entry_from_text
    from lpfilter.spool.accounting import Accounting
    from lpfilter.spool.records import QueueRecords
    e = entry_from_text(f"q:sd={tmp_path}:lp=/dev/null\n")
    accounting = Accounting(e, QueueRecords(e))
    acct = tmp_path / "acct"
    job = Job("000001", "q", "ann", "a.txt", 5, 0.0)
    accounting.start(job)
    acct.touch()
    accounting.end(job, JobState.DONE)
    assert acct.read_text() == ""
    accounting.start(job)
    accounting.end(job, JobState.DONE)
    assert [x.split()[0] for x in acct.read_text().splitlines()] == ["jobstart", "jobend"]
