"""Issue 11 item 4: control characters from users (a job name, title or user from -J, -T,
-U, a hot-folder file name, a printer program echoing them) never reach a terminal or a
log raw. status, the queue's log (lf), its status file (ps), the accounting line (af),
print's messages, the terminal's printer lines and filter's status lines show them made
visible (lpfilter.text.visible), one record per line."""
from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
from spoolkit import Kit, kit  # noqa: F401 - kit: a fixture

from lpfilter.cli import main
from lpfilter.commands.terminal import TerminalObserver
from lpfilter.job import Job

NAME = "a\x1b[2Jb\nforged\rline\x07"
TITLE = "t\x1b]0;owned\x07\r\nX"
USER = "bob\x1b[31m\nqueue=q job=999 user=root"
SHOWN_NAME = "a\\x1b[2Jb\\nforged\\rline\\x07"
SHOWN_USER = "bob\\x1b[31m\\nqueue=q job=999 user=root"
#: What a program reads back to the terminal, the log and the status file: the job's name.
ECHO = '#!/bin/sh\ncat >/dev/null\nprintf "printing %s" "$LPFILTER_JOB_NAME" >&2\nexit {code}\n'
#: Every record the log writes: date, time, queue[pid], text.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d q\[\d+\] \S.*$")


def clean(text: str) -> bool:
    """No control character other than the line ends between records."""
    return all(c.isprintable() or c == "\n" for c in text)


def _queue(kit: Kit, code: int) -> Path:
    program = kit.program("echo.sh", ECHO.format(code=code))
    return kit.queue("q", f"|{program}", lf="log", ps="status", af="acct", send_try=1)


@pytest.mark.parametrize("code", [0, 2], ids=["printed", "refused"])
def test_job_name_title_and_user_from_print(kit: Kit, code: int) -> None:  # noqa: F811
    sd = _queue(kit, code)
    doc = kit.root / "doc"
    doc.write_text("hello\n")
    done = kit.run("print", "--no-wait", "-P", "q", "-J", NAME, "-T", TITLE, "-U", USER,
                   str(doc))
    assert done.returncode == 0, done.stderr
    watch = kit.run("watch", "--once", "-P", "q")
    assert watch.returncode == (0 if code == 0 else 6), watch.stderr
    assert clean(watch.stderr) and SHOWN_NAME in watch.stderr
    log = (sd / "log").read_text()
    assert clean(log) and all(LOG_LINE.match(line) for line in log.splitlines()), log
    # The program's own line break makes two printer lines; the rest stays in each.
    assert "job 000001: printer: printing a\\x1b[2Jb\n" in log
    assert "job 000001: printer: forged\\rline\\x07\n" in log
    status_file = (sd / "status").read_text()
    assert clean(status_file) and status_file.count("\n") == 1, status_file
    (account,) = (sd / "acct").read_text().splitlines()
    assert clean(account) and f" user={SHOWN_USER} " in account, account
    for argv in (["status", "-P", "q"], ["status", "-l", "-P", "q"]):
        shown = kit.run(*argv)
        assert shown.returncode == 0 and clean(shown.stdout), shown.stdout
    long = kit.run("status", "-l", "-P", "q").stdout
    assert f"name:               {SHOWN_NAME}\n" in long
    assert "title:              t\\x1b]0;owned\\x07\\r\\nX\n" in long


def test_print_says_why_a_job_failed_with_the_name_visible(kit: Kit) -> None:  # noqa: F811
    """A foreground print reports the failed job's reason, which echoes the name."""
    _queue(kit, 2)
    doc = kit.root / "doc"
    doc.write_text("hello\n")
    done = kit.run("print", "-P", "q", "-J", NAME, str(doc))
    assert done.returncode == 6, done.stderr
    assert clean(done.stderr) and "printing a\\x1b[2Jb / forged\\rline\\x07" in done.stderr, (
        done.stderr)


def test_a_hot_folder_file_name(kit: Kit) -> None:  # noqa: F811
    sd = _queue(kit, 0)
    (sd / "hot\x1b[31m\nforged line").write_text("hot job\n")
    watch = kit.run("watch", "--once", "-P", "q")
    assert watch.returncode == 0, watch.stderr
    log = (sd / "log").read_text()
    assert clean(log) and all(LOG_LINE.match(line) for line in log.splitlines()), log
    assert "took hot\\x1b[31m\\nforged line from the spool directory" in log
    shown = kit.run("status", "-P", "q").stdout
    assert clean(shown) and "hot\\x1b[31m\\nforged line" in shown


def test_the_terminals_printer_lines() -> None:
    """print in the foreground shows the printer's lines on the terminal: visible."""
    stream = io.StringIO()
    observer = TerminalObserver(stream, force=True)
    job = Job("000001", "q", "me", "name", 5, 0.0)
    observer.status(job, "printing a\x1b[2Jb\nforged")
    assert stream.getvalue() == "lpfilter: q-000001: printer: printing a\\x1b[2Jb\\nforged\n"


def test_an_error_message_echoing_the_command_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever an error message repeats from the command line is one visible line."""
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:sd={tmp_path}:lp=/dev/null\n")
    status = main(["--printcap", str(printcap), "print", "-P", "no\x1b[2J\nsuch", "x"])
    err = capsys.readouterr().err
    assert status == 4 and err.count("\n") == 1 and clean(err), err
    assert "no\\x1b[2J\\nsuch" in err


def test_filter_status_lines_and_accounting_show_escapes(tmp_path: Path) -> None:
    """filter's status line (the error before sending) and its accounting items: the
    control characters are shown as escapes, not blanked out."""
    from filterkit import LPFILTER
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
           "PRINTCAP_ENTRY": "q1\n :lp=/dev/null\n", "LPFILTER_LOCK_DIR": str(tmp_path / "locks")}
    done = subprocess.run([LPFILTER, "filter", "|/bin/prog\x1b[2J\nINJECTED", "-Pq1"],
                          input=b"job", capture_output=True, env=env, cwd=tmp_path, timeout=20,
                          check=False)
    assert done.returncode == 2
    (line,) = done.stderr.decode().splitlines()
    assert "|/bin/prog\\x1b[2J\\nINJECTED" in line, line
    from lpfilter.filtermode.accounting import line as account_line
    text = account_line(queue="q1", user="u\x1b\n", host="h", name="it's\r", bytes_sent=1,
                        pages=None, seconds=0.0, outcome="sent", when=0.0)
    assert "'-nu\\x1b\\n'" in text and "'-Jit_s\\r'" in text and text.count("\n") == 1


def test_status_of_a_pattern_queue_named_with_control_characters(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A '*' entry takes the name asked for (in sd=%P too): status showed it raw in the
    missing spool directory line and on standard error."""
    printcap = tmp_path / "printcap"
    printcap.write_text(f"*:sd={tmp_path}/%P:lp=/dev/null\n")
    status = main(["--printcap", str(printcap), "status", "-P", "a\x1b[2Jb"])
    out, err = capsys.readouterr()
    assert status == 5 and clean(out) and clean(err), out + err
    assert f"no spool directory: {tmp_path}/a\\x1b[2jb does not exist" in out
    assert err.count("\n") == 1 and "a\\x1b[2jb" in err


def test_print_and_cancel_echo_a_pattern_queue_name_visible(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """print's job id line and cancel's lines repeat the queue name given with -P."""
    (tmp_path / "sd").mkdir()
    printcap = tmp_path / "printcap"
    printcap.write_text(f"*:sd={tmp_path / 'sd'}:lp=/dev/null\n")
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    doc = tmp_path / "doc"
    doc.write_text("hello\n")
    queue = "a\x1b[2Jb"
    assert main(["--printcap", str(printcap), "print", "--no-wait", "-P", queue, str(doc)]) == 0
    assert capsys.readouterr().out == "a\\x1b[2jb-000001\n"
    assert main(["--printcap", str(printcap), "cancel", "-P", queue, "1", "7"]) == 1
    out, err = capsys.readouterr()
    assert out == "a\\x1b[2jb-000001: cancelled\n" and clean(err), err
    assert err == "lpfilter: a\\x1b[2jb-000007: no such job\n"
