"""``lpq`` (the word, and lpfilter linked as lpq) shows a queue as LPRng's lpq does: the
lines lpfilter's print server answers LPRng's lpq with, byte for byte, for the same
queue; ``status`` keeps lpfilter's table, ``lpq -l``/``-s``/``--json`` their own forms.
A real daemon with a printer that hangs on the first job, LPRng's own lpq against it, and
in-process commands on real spools."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from localkit import local_server, made_user, world
from lpdkit import need_lprng
from serverkit import Server, ask, lprng, send_job, start_server
from spoolkit import Kit, kit, wait_until  # noqa: F401 - kit: a fixture
from test_lpstat import spool_as
from test_program_names import LPFILTER

from lpfilter.cli import main
from lpfilter.server.status import HEADER


@pytest.fixture
def stuck(kit: Kit) -> Server:  # noqa: F811
    """A daemon whose printer hangs on the first job: zed's printing, alice's and bob's
    waiting, bob's held."""
    kit.queue("q", kit.recorder())
    (kit.out / "hang").touch()
    server = start_server(kit)
    for number, user in ((1, "zed"), (2, "alice"), (3, "bob")):
        send_job(server.port, f"{user}\n".encode(), user=user, name=f"{user}.txt",
                 number=number)
    wait_until(lambda: (kit.out / "q-000001.ready").exists(), what="the first job printing")
    assert kit.run("hold", "-P", "q", "000003").returncode == 0
    return server


def test_lpq_is_the_servers_answer_to_lprngs_lpq(kit: Kit, stuck: Server) -> None:  # noqa: F811
    for items in ((), ("bob",), ("2",)):
        answer = ask(stuck.port, b"\x04q" + b"".join(b" " + i.encode() for i in items)
                     + b"\n").decode()
        shown = kit.run("lpq", "-P", "q", *items)
        assert (shown.returncode, shown.stdout, shown.stderr) == (0, answer, ""), items
    lines = kit.run("lpq", "-P", "q").stdout.splitlines()
    assert lines[0].startswith("Printer: q@") and lines[1] == " Queue: 2 printable jobs"
    assert lines[2] == " Holding: 1 held job in queue"  # LPRng's line (3.8.B, its lpd)
    assert lines[3].startswith(" Server: served by pid ")
    assert lines[4] == HEADER and not lines[5].startswith(" ")  # rows from column 0
    assert [row.split()[:2] for row in lines[5:]] == [
        ["active", "zed@client+1"], ["2", "alice@client+2"], ["hold", "bob@client+3"]]
    assert kit.run("lpq", "-P", "q", "alice").stdout.splitlines()[5].split()[0] == "2"


def test_lprngs_lpq_and_lpfilters_show_the_same_rows(kit: Kit, stuck: Server) -> None:  # noqa: F811
    need_lprng()
    theirs = lprng(kit.root, "lpq", "-P", stuck.queue())
    assert theirs.returncode == 0, theirs
    ours = kit.run("lpq", "-P", "q").stdout
    rows = [line for line in ours.splitlines() if "@client+" in line]
    assert len(rows) == 3 and all(row in theirs.stdout.decode() for row in rows), (
        theirs.stdout, ours)


def test_status_and_lpqs_other_forms_are_as_they_were(kit: Kit, stuck: Server) -> None:  # noqa: F811
    table = kit.run("status", "-P", "q").stdout
    assert table.startswith("Queue q: lp=|") and "  JOB      USER" in table
    # LPRng's short line counts the printable jobs and then the held ones (its lpd's
    # Get_queue_status), the server's answer and lpq -s alike.
    assert kit.run("lpq", "-P", "q", "-s").stdout.endswith(" 2 jobs (1 held)\n")
    assert ask(stuck.port, b"\x03q\n").decode().endswith(" 2 jobs (1 held)\n")
    assert ask(stuck.port, b"\x03q bob\n").decode().endswith(" 0 jobs (1 held)\n")
    digits = re.compile(r"\d")  # (the two are read a moment apart: ages, sending progress)
    assert digits.sub("0", kit.run("lpq", "-l", "-P", "q").stdout) == digits.sub(
        "0", kit.run("status", "-l", "-P", "q").stdout)
    data = json.loads(kit.run("lpq", "--json", "-P", "q").stdout)
    assert [job["user"] for job in data["jobs"]] == ["zed", "alice", "bob"]


def test_a_queue_lpq_cannot_show_is_lprngs_line_and_exit_5(
        kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    kit.queue("r", "/dev/null")
    kit.queues["lp"] = f"lp:lp=/dev/null:sd={kit.root / 'never-made'}"
    kit.write_printcap()
    env = dict(kit.env)
    assert main(["lpq", "-a"], env) == 5
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("Printer: r@")
    [line] = [row for row in out.splitlines() if row.startswith("Printer: lp@")]
    assert " - queue lp: spool directory " in line and "checkpc --fix" in line
    assert err.count("lpfilter: queue lp: spool directory") == 1, err


def test_the_lpq_link_shows_lprngs_table(kit: Kit, tmp_path: Path) -> None:  # noqa: F811
    """Linked as lpq, on a queue with no watcher: no server active, one row a job."""
    kit.queue("q", "/dev/null")
    (kit.root / "doc.txt").write_text("a page\n")
    assert kit.run("print", "--no-wait", "-P", "q", "doc.txt").returncode == 0
    (tmp_path / "lpq").symlink_to(LPFILTER)
    done = subprocess.run([str(tmp_path / "lpq"), "-P", "q"], env=kit.env, cwd=kit.root,
                          text=True, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1:3] == [" Queue: 1 printable job", " Server: no server active"]
    assert lines[4].split()[:2] == ["1", "root@" + lines[4].split()[1].split("@")[1]]
    assert lines[4].split()[4:6] == ["doc.txt", "7"]


def test_an_ordinary_user_sees_lprngs_table_through_the_print_server() -> None:
    """The spool is root's (0700): the user's lpq shows the print server's view of it in
    LPRng's table, as the server itself would answer LPRng's lpq."""
    with made_user() as user, world() as made:
        root_env = {"LPFILTER_PRINTCAP": str(made.printcap),
                    "LPFILTER_LOCK_DIR": str(made.root / "rootlocks")}
        spool_as(root_env, "q", "root", "alice")
        with local_server(made):
            done = user.run("lpq", "-P", "q", "alice", env=made.env())
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith("Printer: q@") and lines[1] == " Queue: 2 printable jobs"
        assert [row.split()[:2] for row in lines[4:]] == [["2", lines[4].split()[1]]]
        assert lines[4].split()[1].startswith("alice@")


def test_the_printer_line_carries_cm_else_the_last_alias_as_lprngs_lpd_writes_it(
        kit: Kit, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """LPRng's lpd adds `` 'comment'`` to the Printer line: ``cm``, else the entry's last
    name when it has several (Get_queue_status); lpfilter's server and lpq alike."""
    kit.queue("q|laser|Second floor", "/dev/null")
    kit.queue("r", "/dev/null", cm="Label\x1bprinter")
    kit.queue("s", "/dev/null")
    env = dict(kit.env)
    assert main(["lpq", "-a"], env) == 0
    heads = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("Printer: ")]
    assert [head.split("@", 1)[1].split(" ", 1)[1:] for head in heads] == [
        ["'Second floor'"], ["'Label\\x1bprinter'"], []], heads
