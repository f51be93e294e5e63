"""A job received over LPD keeps its control file's lines for its filters (review of issue
15, I5): LPRng's lpd gives a filter every control-file line as ``-X`` (``-Z`` lpr's -Z
options, ``-I``, ``-W``, ``-M``...) and the data file's original name (its N line) as
``-N`` and ``-f`` (lprng-filters.md §2, Letters)."""
from __future__ import annotations

import json
import socket
from pathlib import Path

from receivekit import Client, Receiver, control_file, receiver  # noqa: F401 - a fixture
from serverkit import start_server
from spoolkit import Kit, kit, wait_until  # noqa: F401 - kit: a fixture
from test_spool_filters import PY, RECORDING

from lpfilter.commands import daemonprint
from lpfilter.job import JobState
from lpfilter.protocols import lpd, lpdcontrol
from lpfilter.spool.submit import JobOptions


def _send(port: int, names: lpd.JobNames, control: bytes, data: bytes) -> None:
    """One job over a real connection, control file first (as LPRng sends it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        for out in (lpd.receive_job("q"),
                    lpd.file_line(lpd.Subcommand.CONTROL_FILE, len(control), names.control),
                    control + b"\0",
                    lpd.file_line(lpd.Subcommand.DATA_FILE, len(data), names.data(0)),
                    data + b"\0"):
            sock.sendall(out)
            assert sock.recv(1) == b"\0"


def test_a_received_jobs_control_lines_reach_its_filter(kit: Kit) -> None:  # noqa: F811
    record = kit.root / "runs.jsonl"
    program = kit.program("record.py", RECORDING.format(python=PY, out=str(record)))
    kit.queue("q", kit.recorder(), user="root", **{"if": str(program)})  # in root's 0700 tmp_path
    server = start_server(kit)
    try:
        names = lpd.JobNames(7, "client")
        control = lpdcontrol.build(lpdcontrol.ControlFields(
            host="client", user="alice", job_name="MyJob", identifier="alice@client+7",
            files=(lpdcontrol.DataFile(names.data(0), "f", "job.txt"),),
            other=(("Z", "duplex"), ("I", "4"), ("W", "100"), ("M", "alice"))))
        _send(server.port, names, control, b"hello\n")
        wait_until(lambda: record.exists() and record.read_text().endswith("\n"),
                   what="the filter to run")
        argv = json.loads(record.read_text().splitlines()[0])["argv"]
    finally:
        assert server.proc.stop() == 0
    for option in ("-Zduplex", "-I4", "-W100", "-Malice", "-Njob.txt", "-fjob.txt",
                   "-JMyJob", "-Aalice@client+7", "-i4", "-nalice", "-hclient"):
        assert option in argv, (option, argv)


def test_the_ticket_keeps_the_lines_in_the_form_the_filters_read(
        receiver: Receiver) -> None:  # noqa: F811
    client = Client(receiver.port)
    cf = control_file(1, J="report", N="/home/alice/report.txt", Z="a=1,b=2",
                      R="acct7", Q="lp", D="2026-12-05-08:00:00.000")
    cf = cf.replace(b"\nfdfA", b"\nZsecond\nS\xe9t\nfdfA")  # a repeated letter, latin-1
    assert client.control("cfA001client", cf) == b"\0"
    assert client.data("dfA001client", b"page\n") == b"\0"
    client.finish()
    outcome = receiver.outcome()
    assert outcome.error is None
    (job,) = receiver.jobs()
    assert job.extra["control"] == {"N": "/home/alice/report.txt", "Z": "a=1,b=2",
                                    "R": "acct7", "Q": "lp", "S": "\xe9t",
                                    "D": "2026-12-05-08:00:00.000"}
    assert job.name == "report"


def test_a_local_clients_job_keeps_its_file_name_but_not_its_hold_line(
        tmp_path: Path) -> None:
    """lpfilter's own client (``print`` through the daemon) writes A, D and N, and its
    ``--hold`` line: the job is held, and the hold line is no line of the job's."""
    server = Receiver(tmp_path, local_user="alice")
    try:
        names = lpd.JobNames(42, "ws1")
        cf = daemonprint._control(names, "report", "doc.txt",
                                  JobOptions(user="alice", name="report", hold=True))
        client = Client(server.port)
        assert client.control(names.control, cf) == b"\0"
        assert client.data(names.data(0), b"page\n") == b"\0"
        client.finish()
        assert server.outcome().error is None
        (job,) = server.jobs()
    finally:
        server.close()
    assert job.state is JobState.HELD
    lines = job.extra["control"]
    assert (job.name, lines["N"]) == ("report", "doc.txt")  # -J report: J and N apart
    assert lines["D"][:2] == "20"
    assert "O" not in lines and "A" not in lines  # A: built from the job for its filters


def test_a_local_client_claims_no_identifier_and_no_more_copies_than_mc(
        tmp_path: Path) -> None:
    """A local user's own client: its A line (root@host+1) is not kept, so the filters
    get one built from the kernel's user; and the queue's mc (default 1) holds for it as
    for print -#, since on a closed spool the daemon is the only way in."""
    server = Receiver(tmp_path, local_user="alice")
    try:
        client = Client(server.port)
        cf = control_file(1, user="root", A="root@vm+1")
        assert client.control("cfA001client", cf) == b"\0"
        assert client.data("dfA001client", b"page\n") == b"\0"
        client.finish()
        assert server.outcome().error is None
        (job,) = server.jobs()
        assert (job.user, "A" in job.extra.get("control", {})) == ("alice", False)
        client = Client(server.port)
        three = control_file(2).replace(b"fdfA002client\n", b"fdfA002client\n" * 3)
        assert three.count(b"\nfdfA002client") == 3
        answer = client.control("cfA002client", three)
        assert answer[:1] == b"\x03"  # LPRng's "bad job", with the reason
        answer += client.finish()
        assert b"3 copies: queue q allows at most 1 (mc in the printcap)" in answer, answer
    finally:
        server.close()
