"""``lpfilter filter`` under lpd: LPRng ``af`` accounting, and hostile option values.

Accounting (lprng-filters.md §8): a line is appended to the ``af`` file (relative to the
spool directory, lpd's cwd) only when it exists. Hostile values: whatever a user puts in
``lpr -J/-T``, a file name (-N, -f), a user or host name arrives in one argv element and
must never reach a shell, end a PJL line or close its quoted value, split a status line or
an accounting line. Real subprocesses on lpd's socketpair, the JetDirect emulator."""
from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest
from filterkit import (  # noqa: F401
    LPFILTER,
    UEL,
    Lpd,
    MakePrinter,
    data_filter,
    dest,
    lp_pipe,
    lpd,
    pjl_job,
    printer,
    stored,
)
from ftpkit import hang_guard  # noqa: F401

DATA = b"one\x0ctwo\x0c"
#: Status lines a good run writes back (and nothing else).
GOOD_LINE = re.compile(r"^(job .* (start|end, \d+ pages)|job confirmed by printer, \d+ pages)$")
#: A quoted PJL value: printable ASCII without '"' or '\'.
PJL_SAFE = re.compile(rb"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")


def device_entry(lpd: Lpd, where: str, *flags: str) -> str:
    return lpd.entry(f"|{LPFILTER} filter {where}", *flags)


def acct_lines(lpd: Lpd) -> list[str]:
    return lpd.acct().read_text().splitlines() if lpd.acct().exists() else []


def items(line: str) -> list[str]:
    """The quoted items of an accounting line, without their quotes."""
    return re.findall(r"'([^']*)'", line)


# --- accounting ---------------------------------------------------------------------------
def test_one_accounting_line_per_run_when_acct_exists(lpd: Lpd, printer: MakePrinter) -> None:
    emulator = printer(pages=2)
    where = dest(emulator)
    lpd.acct().write_text("jobstart '-Hlocalhost' '-nroot' '-Pq1'\n")  # lpd's own line
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where, "pjl")), DATA)
    assert run.rc == 0, run.text
    emulator.refuse(5)
    run = lp_pipe(lpd, lpd.argv(where, j="508", n="alice"),
                  lpd.env(device_entry(lpd, where, "pjl")), DATA)
    assert run.rc == 1, run.text
    first_line, done, failed = acct_lines(lpd)
    assert first_line.startswith("jobstart ")
    sent = len(stored(emulator))
    assert {"-Pq1", "-nroot", "-Hlocalhost", "-JMyJob", f"-b{sent}", "-p2",
            "outcome=confirmed"} <= set(items(done)), done
    assert {"-Pq1", "-nalice", "-b0", "outcome=failed"} <= set(items(failed)), failed


def test_no_accounting_file_none_is_created(lpd: Lpd, printer: MakePrinter) -> None:
    emulator = printer()
    where = dest(emulator)
    run = lp_pipe(lpd, lpd.argv(where), lpd.env(device_entry(lpd, where, "pjl")), DATA)
    assert run.rc == 0, run.text
    assert not lpd.acct().exists()
    assert list(lpd.spool.iterdir()) == []


def test_absolute_accounting_file_in_data_filter_mode(lpd: Lpd, tmp_path: Path) -> None:
    acct = tmp_path / "var-acct"
    acct.touch()
    device = tmp_path / "device"
    entry = lpd.entry(str(device), **{"if": f"{LPFILTER} filter"})
    with open(device, "ab") as out:
        run = data_filter(lpd, lpd.argv(lp_pipe=False, a=str(acct)), lpd.env(entry), DATA,
                          out.fileno())
    assert run.rc == 0, run.text
    (line,) = acct.read_text().splitlines()
    assert {"-Pq1", f"-b{len(DATA)}", "outcome=sent"} <= set(items(line)), line
    assert not lpd.acct().exists()


# --- hostile values -----------------------------------------------------------------------
def hostile(canary: Path) -> str:
    """Quotes, line ends, a PJL command, command substitutions, shell operators, escape
    and control characters, a Unicode line separator: everything but NUL."""
    return ("Ev\"il'\n@PJL SET COPIES=99\r\n\\\x1b%-12345X"
            f"$(touch {canary}.1)"
            f"`touch {canary}.2`;touch {canary}.3|touch {canary}.4&&touch {canary}.5"
            "\x07\t\x7f\u2028INJECTED LINE\x85\x1f ${IFS} <x >y end")


def canaries(canary: Path) -> list[Path]:
    return [p for p in canary.parent.iterdir() if p.name.startswith(canary.name)]


def check_pjl_stream(body: bytes, data: bytes) -> None:
    """Exactly one PJL job around ``data``; its quoted name is clean."""
    names = re.findall(rb'@PJL JOB NAME="(.*?)"\r\n', body, re.S)
    assert len(names) == 1, body[:300]
    assert PJL_SAFE.match(names[0]), names[0]
    assert body == pjl_job(names[0].decode("ascii"), data)
    assert body.count(UEL) == 3


def check_lines(run_text: str) -> None:
    lines = run_text.splitlines()
    assert all(GOOD_LINE.match(line) for line in lines), lines
    assert len(lines) == 3 and not any(line.startswith("INJECTED") for line in lines)


def check_accounting(lpd: Lpd) -> None:
    text = lpd.acct().read_text()
    assert text.count("\n") == 1 and text.endswith("\n"), text
    assert text[:-1].isprintable() and text.count("'") % 2 == 0, text


@pytest.mark.parametrize("letter", ["J", "T", "n", "L", "H", "A", "Z"])
def test_hostile_value_as_lpds_device(lpd: Lpd, printer: MakePrinter, tmp_path: Path,
                                      letter: str) -> None:
    canary = tmp_path / "pwned"
    emulator = printer(pages=2)
    where = dest(emulator)
    lpd.acct().touch()
    argv = lpd.argv(where, **{letter: hostile(canary)})
    run = lp_pipe(lpd, argv, lpd.env(device_entry(lpd, where, "pjl")), DATA)
    assert run.rc == 0, run.text
    assert canaries(canary) == []
    check_pjl_stream(stored(emulator), DATA)
    check_lines(run.text)
    check_accounting(lpd)


@pytest.mark.parametrize("letter", ["N", "f", "e"])
def test_hostile_file_name_in_data_filter_mode(lpd: Lpd, printer: MakePrinter,
                                               tmp_path: Path, letter: str) -> None:
    """-N, -f and -e (file names) reach only a data filter; -J is dropped (empty) so the
    name falls back to them."""
    canary = tmp_path / "pwned"
    emulator = printer(pages=2)
    lpd.acct().touch()
    entry = lpd.entry(dest(emulator), "pjl", **{"if": f"{LPFILTER} filter"})
    argv = lpd.argv(lp_pipe=False, J="", **{letter: hostile(canary)})
    with socket.create_connection(emulator.address) as conn:
        run = data_filter(lpd, argv, lpd.env(entry), DATA, conn.fileno())
        conn.shutdown(socket.SHUT_WR)
    assert run.rc == 0, run.text
    assert canaries(canary) == []
    check_pjl_stream(stored(emulator), DATA)
    check_lines(run.text)
    check_accounting(lpd)


def test_hostile_values_everywhere_at_once(lpd: Lpd, printer: MakePrinter,
                                           tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    emulator = printer()
    where = dest(emulator)
    lpd.acct().touch()
    values = {k: hostile(canary) for k in "ACDHIJLQSTWZbhijnst"}
    argv = lpd.argv(where, **values)
    env = lpd.env(device_entry(lpd, where, "pjl"), HF=hostile(canary), USER=hostile(canary))
    run = lp_pipe(lpd, argv, env, DATA)
    assert run.rc == 0, run.text
    assert canaries(canary) == []
    check_pjl_stream(stored(emulator), DATA)
    check_lines(run.text)
    check_accounting(lpd)


@pytest.mark.parametrize("under_lpd", [False, True], ids=["queue-by-hand", "destination"])
def test_errors_before_sending_are_one_status_line_too(tmp_path: Path,
                                                       under_lpd: bool) -> None:
    """Every line lpd (or a person) reads is one status line: also the errors found before
    any byte moves (no such queue, a destination no backend takes), not only those that
    FilterRun.say writes."""
    printcap = tmp_path / "printcap"
    printcap.write_text("lp:lp=127.0.0.1%9\n")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
           "LPFILTER_LOCK_DIR": str(tmp_path / "locks")}
    if under_lpd:
        argv = ["filter", "|/bin/prog\nINJECTED LINE", "-Pq1", "acct"]
        env["PRINTCAP_ENTRY"] = "q1\n :lp=/dev/null\n"
    else:
        argv = ["--printcap", str(printcap), "filter", "-Pno\nINJECTED LINE"]
    done = subprocess.run([LPFILTER, *argv], input=b"job", capture_output=True, env=env,
                          cwd=tmp_path, timeout=20, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and not lines[0].startswith("INJECTED"), lines
