"""LPRng and CUPS habits of status (lpq) and cancel (lprm), issue 10 section 3, and status
naming each queue's log file (section 4): ``status -a``/``-l``, a DETAIL column cut only
between words, an active job's bytes and percent, control characters made visible;
``cancel QUEUE-NNNNNN`` without -P, ``-``/``all`` for every job of the user, ``-a`` for
every queue."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spoolkit import Kit, job_ids, kit, wait_served, wait_until  # noqa: F401 - kit: a fixture

from lpfilter.cli import main
from lpfilter.commands.status_cmd import cut_words, human_size
from lpfilter.spool.store import SpoolStore
from lpfilter.text import visible


class World:
    """Queues q, r and lp-color (alias color), each with its own sd and a pipe program
    that prints to ``printed``; the CLI run in-process."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str], extra: str = "") -> None:
        self.tmp, self.capsys = tmp, capsys
        self.prog = tmp / "prog.sh"
        self.program("cat >/dev/null\n")
        lines = []
        for name in ("q", "r", "lp-color"):
            (tmp / f"sd-{name}").mkdir()
            alias = "|color" if name == "lp-color" else ""
            lines.append(f"{name}{alias}:sd={tmp / f'sd-{name}'}:lp=|{self.prog}{extra}"
                         ":user=root\n")  # the program is in root's 0700 tmp_path
        self.printcap = tmp / "printcap"
        self.printcap.write_text("".join(lines))

    def program(self, body: str) -> None:
        self.prog.write_text("#!/bin/sh\n" + body)
        self.prog.chmod(0o755)

    def cli(self, *argv: str) -> tuple[int, str, str]:
        rc = main(list(argv))
        out, err = self.capsys.readouterr()
        return rc, out, err

    def spool(self, queue: str, *options: str, data: bytes = b"hello\n") -> str:
        """One job spooled with print --no-wait; returns its id as print showed it."""
        doc = self.tmp / "doc.txt"
        doc.write_bytes(data)
        rc, out, err = self.cli("print", "--no-wait", "-P", queue, *options, str(doc))
        assert rc == 0, err
        return out.strip()

    def ids(self, queue: str) -> list[str]:
        return [job.id for job in SpoolStore(str(self.tmp / f"sd-{queue}"), queue).jobs()]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> World:
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    made = World(tmp_path, capsys)
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(made.printcap))
    return made


# --- status -------------------------------------------------------------------------------
def test_status_a_shows_every_queue_as_all_does(world: World) -> None:
    world.spool("r")
    rc, out, err = world.cli("status", "-a")
    assert (rc, err) == (0, "")
    assert re.findall(r"(?m)^Queue (\S+):", out) == ["q", "r", "lp-color"]
    rc, out, err = world.cli("lpq", "--all")  # LPRng's table (test_lpq_lprng.py)
    assert (rc, err) == (0, "")
    assert re.findall(r"(?m)^Printer: ([^@]+)@", out) == ["q", "r", "lp-color"]
    data = json.loads(world.cli("status", "-a", "--json")[1])
    assert [d["queue"] for d in data] == ["q", "r", "lp-color"]


def test_status_and_cancel_take_the_queue_all_as_a(world: World) -> None:
    """``lpq -Pall`` and ``lprm -Pall``, as LPRng's clients take them: every queue."""
    world.spool("r")
    assert world.cli("status", "-P", "all") == world.cli("status", "-a")
    assert world.cli("lpq", "-P", "ALL", "--json")[1] == world.cli("status", "-a", "--json")[1]
    world.spool("q")
    assert world.cli("lprm", "-P", "all", "all") == (
        0, "q-000001: cancelled\nr-000001: cancelled\n", "")


def test_status_lists_only_the_users_and_numbers_named(world: World) -> None:
    """lpq's list (RFC 1179 §5.3): user names and job numbers pick the rows shown."""
    for user in ("alice", "bob", "alice"):
        world.spool("q", "-U", user)
    rows = lambda out: re.findall(r"(?m)^  (\d{6}) ", out)  # noqa: E731
    assert rows(world.cli("status", "-P", "q")[1]) == ["000001", "000002", "000003"]
    assert rows(world.cli("status", "-P", "q", "alice")[1]) == ["000001", "000003"]
    assert rows(world.cli("status", "-P", "q", "2", "3")[1]) == ["000002", "000003"]
    assert rows(world.cli("status", "-P", "q", "bob", "0001")[1]) == ["000001", "000002"]
    rc, out, err = world.cli("status", "-P", "q", "carol", "9")
    assert (rc, err) == (0, "") and "  no jobs" in out
    lprng = re.findall(r"(?m)^(\d+) +\S+\+(\d+) ", world.cli("lpq", "-P", "q", "alice")[1])
    assert lprng == [("1", "1"), ("3", "3")]  # LPRng's rows: rank, user@host+number
    data = json.loads(world.cli("status", "-P", "q", "--json", "bob")[1])
    assert [job["user"] for job in data["jobs"]] == ["bob"]
    long = world.cli("lpq", "-L", "-P", "q", "bob")  # LPRng's -L: every detail, as -l
    assert long[0] == 0 and "    user:" in long[1] and "alice" not in long[1], long


def test_status_s_is_one_line_a_queue(world: World) -> None:
    """``lpq -s``: ``queue@host N jobs``, the jobs not finished, the lpc state after."""
    world.spool("q")
    world.spool("q", "-U", "bob")
    world.spool("r")
    assert world.cli("cancel", "-P", "r", "1")[0] == 0  # finished: not counted
    assert world.cli("stop", "-P", "r")[0] == 0
    rc, out, err = world.cli("lpq", "-s", "-a")
    assert (rc, err) == (0, "")
    assert [re.sub(r"@\S+", "@HOST", line) for line in out.splitlines()] == [
        "q@HOST 2 jobs", "r@HOST 0 jobs (printing disabled)", "lp-color@HOST 0 jobs"], out
    assert re.fullmatch(r"q@\S+ 1 job\n", world.cli("status", "-s", "-P", "q", "bob")[1])
    rc, _, err = world.cli("status", "-s", "-l")
    assert rc == 2 and "not allowed with" in err


def test_status_names_each_queues_log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """lf relative to sd (default "log"), absolute, or none at all."""
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    printcap = tmp_path / "printcap"
    printcap.write_text(f"a:sd={tmp_path / 'a'}:lp=/dev/null\n"
                        f"b:sd={tmp_path / 'b'}:lp=/dev/null:lf=/var/log/lpfilter-b.log\n"
                        f"c:sd={tmp_path / 'c'}:lp=/dev/null:lf=\n")
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(printcap))
    assert main(["status", "-a"]) == 0
    logs = re.findall(r"(?m)^  log file: (.*)$", capsys.readouterr().out)
    assert logs == [str(tmp_path / "a" / "log"), "/var/log/lpfilter-b.log",
                    "none (the printcap's lf names no file)"]
    assert main(["status", "-P", "b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["log_file"] == "/var/log/lpfilter-b.log"


def _row(out: str, job: str) -> str:
    [row] = [line for line in out.splitlines() if line.startswith(f"  {job} ")]
    return row


def test_status_detail_is_cut_between_words(world: World) -> None:
    """A long last error is cut at a word boundary with '...' (it used to be cut at 60
    characters, mid-word); status -l shows it whole."""
    message = ("paper jam in tray 2: please open the front cover, remove the jammed sheets"
               " carefully and close it again")
    error = f"lp filter prog.sh exited 2 (JABORT): {message}"
    assert error[59] != " " and error[60] != " "  # 60 characters end inside a word
    world.program(f"cat >/dev/null\necho '{message}'\nexit 2\n")
    doc = world.tmp / "doc.txt"
    doc.write_bytes(b"x\n")
    assert world.cli("print", "-P", "q", str(doc))[0] == 6
    _, out, _ = world.cli("status", "-P", "q")
    detail = re.search(r" failed +1 +\S+  (.*)$", _row(out, "000001")).group(1)
    assert detail.endswith(" ...") and len(detail) <= 60
    kept = detail.removesuffix(" ...")
    assert error.startswith(kept) and error[len(kept)] in " ,:", detail  # between words
    assert f"last error:         {error}\n" in world.cli("status", "-l", "-P", "q")[1]


@given(st.lists(st.text(alphabet="ab,:", min_size=1, max_size=15), min_size=1, max_size=12),
       st.integers(min_value=10, max_value=80))
def test_cut_words_never_cuts_inside_a_word(words: list[str], width: int) -> None:
    text = " ".join(words)
    cut = cut_words(text, width)
    if len(text) <= width or " " not in text:  # a single word is never cut
        assert cut == text
        return
    assert cut.endswith(" ...")
    kept = cut.removesuffix(" ...")
    assert text.startswith(kept) and text[len(kept)] in " ,:"
    assert len(cut) <= width or kept.strip(" ,:") == words[0].strip(" ,:")


def test_status_long_shows_every_detail_uncut(world: World) -> None:
    long_name = "quarterly-report-for-the-board-of-directors.ps"
    title = "Q3 figures, final version, approved by finance"
    job = world.spool("q", "-J", long_name, "-T", title, "-U", "carol")
    world.cli("hold", job)
    rc, out, err = world.cli("status", "-l", "-P", "q")
    assert (rc, err) == (0, "")
    block = out.split("  job q-000001\n")[1]
    fields = dict(re.findall(r"(?m)^    ([a-z ]+):\s+(.*)$", block))
    assert fields["name"] == long_name and fields["title"] == title
    assert (fields["user"], fields["state"], fields["attempts"]) == ("carol", "held", "0")
    assert (fields["size"], fields["copies"]) == ("6 B (6 bytes)", "1")
    assert fields["bytes sent"] == "0" and fields["possible duplicate"] == "no"
    assert fields["next try"] == fields["started"] == fields["finished"] == "-"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fields["submitted"])
    assert set(fields) >= {"host", "source", "pages", "delivery", "worker", "last error"}
    table = world.cli("status", "-P", "q")[1]
    assert long_name not in table and long_name[:23] + "~" in table  # the table cuts it


def test_status_shows_control_characters_visibly(world: World) -> None:
    """A job name with a terminal escape must not reach the terminal of whoever runs
    status: it is shown as \\x1b, in the table and in -l."""
    world.spool("q", "-J", "evil\x1b[2J\x07name", "-T", "t\x1b]0;owned\x07")
    for argv in (("status", "-P", "q"), ("status", "-l", "-P", "q")):
        out = world.cli(*argv)[1]
        assert "\x1b" not in out and "\x07" not in out
        assert "evil\\x1b[2J\\x07name" in out
    assert "t\\x1b]0;owned\\x07" in world.cli("status", "-l", "-P", "q")[1]


@given(st.binary(max_size=60))
def test_visible_leaves_no_control_character(raw: bytes) -> None:
    """Whatever bytes a name or a printer message holds (undecodable ones included: byte
    0x9b must not come out as the C1 control CSI), no control character gets through."""
    text = raw.decode("utf-8", "surrogateescape")
    shown = visible(text)
    assert not any(unicodedata.category(ch) == "Cc" for ch in shown)
    shown.encode("utf-8")  # and it can be written
    if text.isprintable():
        assert shown == text


SLOW_READER = r'''#!{python} -IS
import os, sys, time
open(os.path.join({pids!r}, str(os.getpid())), "w").close()
sys.stdin.buffer.read(256 * 1024)
open({ready!r}, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists({go!r}) and time.monotonic() < deadline:
    time.sleep(0.05)
while sys.stdin.buffer.read(1 << 16):
    pass
'''


def test_an_active_job_shows_bytes_sent_and_percent(kit: Kit) -> None:
    """A real watcher sends 4 MiB to a program that reads 256 KiB and then stops reading:
    status (table, -l, --json) shows how far the send got, from the ticket the worker
    updates while sending."""
    ready, go = kit.root / "ready", kit.root / "go"
    program = kit.program("slow.py", SLOW_READER.format(
        python=sys.executable, pids=str(kit.pids), ready=str(ready), go=str(go)))
    kit.queue("q", f"|{program}")
    size = 4 << 20
    (kit.root / "big.bin").write_bytes(os.urandom(1024) * (size // 1024))
    watcher = kit.start("watch", "-P", "q")
    wait_served(kit, "q", watcher)
    [job] = job_ids(kit.run("print", "-P", "q", "--no-wait", str(kit.root / "big.bin")).stdout,
                    "q")
    wait_until(ready.exists, what="the program to read its first 256 KiB")

    def sending() -> tuple[int, str, str] | None:
        """(ticket's bytes_sent, bytes and percent status shows) once they agree on a
        count past the program's first read (the count stays put: the program stopped)."""
        found = re.search(r" active .*  sending: (\S+ \S+) of 4\.0 MiB \((\d+)%\)$",
                          _row(kit.run("status", "-P", "q").stdout, job))
        sent = kit.ticket("q", job)["bytes_sent"]
        if found is None or sent < 256 * 1024:
            return None
        shown = found.group(1), found.group(2)
        return (sent, *shown) if shown == (human_size(sent), str(sent * 100 // size)) else None

    sent, _, percent = wait_until(sending, timeout=30, interval=0.2,
                                  what="status to show the bytes sent")
    assert sent < size and 0 < int(percent) < 100  # the program stopped reading; it waits
    long = re.search(r"(?m)^    bytes sent: +(\d+) \((\S+ \S+) of 4\.0 MiB \((\d+)%\)\)$",
                     kit.run("status", "-l", "-P", "q").stdout)
    assert long, "status -l shows no bytes sent"
    count = int(long.group(1))
    assert long.groups()[1:] == (human_size(count), str(count * 100 // size))
    assert 256 * 1024 <= count < size
    [data] = json.loads(kit.run("status", "-P", "q", "--json").stdout)["jobs"]
    assert data["state"] == "active" and 256 * 1024 <= data["bytes_sent"] < size
    go.touch()
    wait_until(lambda: kit.states("q")[job] == "done", what="the job to print")
    assert kit.ticket("q", job)["bytes_sent"] == size
    assert watcher.stop() == 0


# --- cancel -------------------------------------------------------------------------------
def test_cancel_finds_the_queue_from_the_id(world: World) -> None:
    """No -P: the id names its queue (one with '-' in its name too, or an alias); the
    default queue (q, the first) is not touched; an unknown queue is a clear error."""
    for queue in ("q", "r", "lp-color"):
        world.spool(queue)
        world.spool(queue)
    assert world.cli("cancel", "r-000002") == (0, "r-000002: cancelled\n", "")
    assert world.cli("lprm", "lp-color-1", "color-000002") == (
        0, "lp-color-000001: cancelled\nlp-color-000002: cancelled\n", "")
    assert world.cli("hold", "R-000001") == (0, "r-000001: held\n", "")
    assert world.cli("cancel", "zz-000001") == (
        4, "", "lpfilter: zz-000001: no queue named 'zz' in the printcap (lpfilter status"
               " -a lists the queues)\n")
    assert world.cli("cancel", "r-000009") == (1, "", "lpfilter: r-000009: no such job\n")
    assert world.cli("cancel", "z\x1b[2J-000001") == (
        4, "", "lpfilter: z\\x1b[2J-000001: no queue named 'z\\x1b[2J' in the printcap"
               " (lpfilter status -a lists the queues)\n")
    assert world.cli("cancel", "\u00b2", "r-\u00b2") == (  # digits to isdigit(), not to int()
        2, "", "lpfilter: not a job id: \u00b2, r-\u00b2 (write it as print showed it,"
               " e.g. q-000012)\n")
    assert (world.ids("q"), world.ids("r"), world.ids("lp-color")) == (
        ["000001", "000002"], ["000001"], [])
    assert world.cli("cancel", "-P", "r", "1", "q-2") == (
        0, "r-000001: cancelled\nq-000002: cancelled\n", "")


@pytest.mark.parametrize("every", ["-", "all"])
def test_cancel_dash_or_all_removes_every_job_as_root(world: World, every: str) -> None:
    world.spool("q")
    world.spool("q", "-U", "carol")
    world.spool("r")
    assert world.cli("cancel", "-P", "q", every) == (
        0, "q-000001: cancelled\nq-000002: cancelled\n", "")
    assert (world.ids("q"), world.ids("r")) == ([], ["000001"])


def test_a_word_that_is_no_job_id_is_a_users_jobs_as_lprm_takes_it(world: World) -> None:
    """LPRng's ``lprm alice`` and CUPS' ``cancel -u alice``: the user's jobs not finished;
    a user with none is said (exit 0 as LPRng's lprm, 1 as cancel), with a hint when the
    word is a queue's name."""
    for user in ("alice", "bob", "alice"):
        world.spool("q", "-U", user)
    world.spool("r", "-U", "bob")
    assert world.cli("lprm", "-P", "q", "alice") == (
        0, "q-000001: cancelled\nq-000003: cancelled\n", "")
    assert world.cli("lprm", "-P", "q", "alice") == (
        0, "", "lpfilter: no job of user alice to cancel (a job id is written as print"
               " showed it, e.g. lp-000012)\n")
    assert world.cli("cancel", "-P", "q", "-u", "alice")[0] == 1
    rc, _, err = world.cli("lprm", "-P", "q", "r")  # (CUPS' cancel takes r as the queue)
    assert rc == 0 and "(r is a queue: -P r all takes its jobs)" in err, err
    assert world.cli("hold", "-a", "-u", "bob") == (0, "q-000002: held\nr-000001: held\n", "")
    rc, out, err = world.cli("release", "-P", "r", "bob", "7")
    assert (rc, err) == (1, "lpfilter: r-000007: no such job\n")
    assert out.startswith("r-000001: released"), out


def test_cancel_a_acts_on_every_queue(world: World) -> None:
    for queue in ("q", "r", "lp-color"):
        world.spool(queue)
    world.spool("r")
    assert world.cli("cancel", "-a", "2") == (0, "r-000002: cancelled\n", "")
    assert world.cli("cancel", "-a", "7") == (
        1, "", "lpfilter: job 000007: no such job in any queue\n")
    assert world.cli("cancel", "-a", "-P", "q", "all") == (
        2, "", "lpfilter: cancel: -a (every queue) and -P q do not go together\n")
    assert world.cli("lprm", "-a", "all") == (
        0, "q-000001: cancelled\nr-000001: cancelled\nlp-color-000001: cancelled\n", "")
    assert world.ids("q") == world.ids("r") == world.ids("lp-color") == []
    world.spool("q")
    assert world.cli("hold", "-a", "--all") == (0, "q-000002: held\n", "")


def test_cancel_a_passes_over_a_queue_without_jobs(world: World) -> None:
    """-a: a queue whose spool directory is missing (or never had a job) has no job to
    cancel; it does not stop the others."""
    world.printcap.write_text(world.printcap.read_text()
                              + f"gone:sd={world.tmp / 'missing'}:lp=/dev/null\n")
    world.spool("r")
    assert world.cli("cancel", "-a", "-") == (0, "r-000001: cancelled\n", "")
    rc, out, err = world.cli("cancel", "-P", "gone", "-")  # named, it is an error
    assert rc != 0 and out == "" and "queue gone" in err


NOBODY = ("import os, sys, lpfilter.cli as cli, lpfilter.printcap as pc\n"
          "import lpfilter.commands.jobctl_cmd, lpfilter.spool.store, lpfilter.spool.records\n"
          "import lpfilter.job, lpfilter.locks, lpfilter.commands.environment\n"
          "import lpfilter.commands.daemonclient, lpfilter.spool.jobctl\n"
          "cli.build_parser(); pc.load([os.environ['LPFILTER_PRINTCAP']])\n"
          "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
          "sys.exit(cli.main(sys.argv[1:]))\n")


@pytest.mark.parametrize(("argv", "rc", "out", "err"), [
    (["-P", "q", "-"], 0, "q-000001: cancelled\nq-000003: cancelled\n", ""),
    (["-a", "all"], 0, "q-000001: cancelled\nq-000003: cancelled\n", ""),
    (["-a"], 0, "q-000001: cancelled\nq-000003: cancelled\n", ""),  # CUPS' cancel -a
    (["-a", "q"], 0, "q-000001: cancelled\nq-000003: cancelled\n", ""),  # and -a DEST
    (["q-2", "q-3"], 5, "q-000003: cancelled\n",
     "lpfilter: q-000002: not your job (carol's)\n")])
def test_a_user_removes_only_their_own_jobs(argv: list[str], rc: int, out: str,
                                            err: str) -> None:
    """As uid 65534 (nobody): '-', '-a all' remove nobody's jobs and pass over carol's;
    naming carol's job is refused (exit 5)."""
    if os.getuid() != 0:
        pytest.skip("needs root to run a child as nobody and spool for other users")
    world = Path(tempfile.mkdtemp(prefix="lpfilter-nobody-"))
    try:
        world.chmod(0o755)
        (world / "sd").mkdir()
        (world / "printcap").write_text(f"q:sd={world / 'sd'}:lp=/dev/null\n")
        (world / "doc").write_text("hello\n")
        env = dict(os.environ, LPFILTER_PRINTCAP=str(world / "printcap"), HOME=str(world),
                   LPFILTER_NO_CACHE="1", LPFILTER_LOCK_DIR=str(world / "locks"))
        for user in ("nobody", "carol", "nobody"):
            subprocess.run([sys.executable, "-m", "lpfilter", "print", "--no-wait", "-U", user,
                            str(world / "doc")], env=env, check=True, timeout=30,
                           capture_output=True)
        for path in [world / "sd", *(world / "sd").rglob("*")]:
            os.chown(path, 65534, 65534, follow_symlinks=False)
        done = subprocess.run([sys.executable, "-c", NOBODY, "cancel", *argv], env=env,
                              cwd=world, timeout=30, capture_output=True, text=True,
                              check=False)
        assert (done.returncode, done.stdout, done.stderr) == (rc, out, err)
        left = [(j.id, j.user) for j in SpoolStore(str(world / "sd"), "q").jobs()]
        assert left == ([("000001", "nobody")] if rc else []) + [("000002", "carol")]
    finally:
        shutil.rmtree(world)


def test_cancel_all_says_nothing_of_finished_tickets(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """cancel -P q all answered 'already done' once per finished ticket kept for status
    (52 lines on a busy queue); only the jobs it acts on are named."""
    from lpfilter.cli import main
    (tmp_path / "sd").mkdir()
    (tmp_path / "printcap").write_text(f"q:sd={tmp_path / 'sd'}:lp=/dev/null\n")
    (tmp_path / "doc").write_text("a page\n")
    pc = ["--printcap", str(tmp_path / "printcap")]
    for _ in range(3):
        assert main([*pc, "print", "-P", "q", str(tmp_path / "doc")]) == 0
    assert main([*pc, "print", "--hold", "-P", "q", str(tmp_path / "doc")]) == 0
    capsys.readouterr()
    assert main([*pc, "cancel", "-P", "q", "all"]) == 0
    assert capsys.readouterr().out == "q-000004: cancelled\n"
