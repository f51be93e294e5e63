"""``lpfilter filter ftp://...`` as LPRng's output device (``:lp=|/.../lpfilter filter
ftp\\://HOST/PORT1:``) against the JetDirect FTP emulator (pyftpdlib on 127.0.0.1, port
0, in a thread): the installed program on lpd's socketpair with the recorded argv and
environment. Checked: the file the server stored, the STOR name, the status lines (no
password in them) and LPRng's exit code."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from filterkit import LPFILTER, Lpd, lp_pipe, lpd  # noqa: F401
from ftpkit import MakeServer, Server, ftp_server, hang_guard  # noqa: F401

PASSWORD = "Pw-5e1c0Xk"  # distinctive: must never show in a status line
DATA = bytes(range(256)) * 64 + b"\r\n\n\r" + b"\x00" * 16 + b"\x1a\x04\xff"
SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def ftp_entry(lpd: Lpd, destination: str) -> str:
    """The lp=| line as a printcap holds it: colons escaped."""
    return lpd.entry(f"|{LPFILTER} filter {destination.replace(':', chr(92) + ':')}")


def stor_names(server: Server) -> list[str]:
    return [arg for verb, arg in list(server.seen.commands) if verb == "STOR"]


@pytest.mark.parametrize("escaped", [False, True], ids=["plain", "printcap-escaped"])
def test_file_arrives_byte_for_byte(lpd: Lpd, ftp_server: MakeServer, escaped: bool) -> None:
    server = ftp_server()
    destination = server.lp("PORT1", escaped=escaped)
    run = lp_pipe(lpd, lpd.argv(destination), lpd.env(ftp_entry(lpd, destination)), DATA)
    assert run.rc == 0, run.text
    (stored,) = server.files(1)
    assert Path(stored.path).read_bytes() == DATA and stored.directory == "PORT1"
    assert stor_names(server) == ["q1-507-MyJob"] and stored.name == "q1-507-MyJob"
    host, port = server.printer.address
    assert run.lines == [f"job sent to ftp://{host}:{port}/PORT1, {len(DATA)} bytes"]
    assert ("TYPE", "I") in server.seen.commands
    assert not [n for n in os.listdir(lpd.spool) if n.startswith(".lpfilter")]


@pytest.mark.parametrize("escaped", [False, True], ids=["plain", "printcap-escaped"])
def test_a_password_in_the_destination_is_refused_before_connecting(
        lpd: Lpd, ftp_server: MakeServer, escaped: bool) -> None:
    """Issue 11 item 3: the argv of ``lp=|lpfilter filter ftp://user:pw@...`` is in
    /proc/PID/cmdline for every local user. Refused (LPRng's abort, 2) with one status line
    naming the safe ways, the password masked, and no connection to the server."""
    server = ftp_server(password=PASSWORD)
    destination = server.lp("PORT2", "printuser", PASSWORD, escaped=escaped)
    run = lp_pipe(lpd, lpd.argv(destination), lpd.env(ftp_entry(lpd, destination)), DATA)
    assert run.rc == 2, run.text
    (line,) = run.lines
    host, port = server.printer.address
    assert line.startswith(f"lpfilter filter: destination ftp://printuser:***@{host}:{port}"
                           "/PORT2: a password on a command line is visible to every local"
                           " user")
    assert "ftp_password_file" in line and "~/.netrc" in line
    assert PASSWORD not in run.text
    assert server.seen.logins == [] and not server.seen.commands and not server.printer.jobs


def test_a_password_in_the_destination_is_refused_by_hand_too(tmp_path: Path) -> None:
    """By hand, with no printcap at all: refused before anything is read or connected."""
    done = subprocess.run([LPFILTER, "filter", f"ftp://u:{PASSWORD}@127.0.0.1:9/PORT1",
                           "-Pq1"], input=b"job", capture_output=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=20,
                          check=False)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.decode().splitlines()
    assert "ftp://u:***@127.0.0.1:9/PORT1: a password on a command line" in line
    assert PASSWORD not in line


def test_user_and_password_file_from_printcap_entry(lpd: Lpd, ftp_server: MakeServer) -> None:
    """The documented way under lpd: ftp_user and a private ftp_password_file."""
    server = ftp_server(password=PASSWORD)
    secret = lpd.root / "ftp-secret"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    destination = server.lp("PORT1", escaped=False)
    entry = lpd.entry(f"|{LPFILTER} filter {destination.replace(':', chr(92) + ':')}",
                      ftp_user="printuser", ftp_password_file=str(secret))
    run = lp_pipe(lpd, lpd.argv(destination), lpd.env(entry), DATA)
    assert run.rc == 0, run.text
    assert server.seen.logins == ["printuser"] and PASSWORD not in run.text
    (stored,) = server.files(1)
    assert Path(stored.path).read_bytes() == DATA


def test_wrong_password_530_aborts_the_job(lpd: Lpd, ftp_server: MakeServer) -> None:
    server = ftp_server(password=PASSWORD)
    secret = lpd.root / "ftp-secret"
    secret.write_text("not-" + PASSWORD + "\n")
    secret.chmod(0o600)
    destination = server.lp("PORT1", escaped=False)
    entry = lpd.entry(f"|{LPFILTER} filter {destination.replace(':', chr(92) + ':')}",
                      ftp_user="printuser", ftp_password_file=str(secret))
    run = lp_pipe(lpd, lpd.argv(destination), lpd.env(entry), DATA)
    assert run.rc == 2, run.text
    host, port = server.printer.address
    (line,) = run.lines
    assert line.startswith(f"job refused: ftp://{host}:{port}/PORT1")
    assert "530" in line and "login refused" in line
    assert PASSWORD not in run.text and not server.printer.jobs


def test_missing_directory_550_aborts_the_job(lpd: Lpd, ftp_server: MakeServer) -> None:
    server = ftp_server()
    destination = server.lp("NO-SUCH-DIR", escaped=False)
    run = lp_pipe(lpd, lpd.argv(destination), lpd.env(ftp_entry(lpd, destination)), DATA)
    assert run.rc == 2, run.text
    host, port = server.printer.address
    (line,) = run.lines
    assert line.startswith(f"job refused: ftp://{host}:{port}/NO-SUCH-DIR")
    assert "CWD NO-SUCH-DIR" in line and "550" in line and "no such directory" in line
    assert not server.printer.jobs and not stor_names(server)


def test_nothing_listening_is_busy_retry_later(lpd: Lpd, ftp_server: MakeServer) -> None:
    """The server is closed: its port refuses, which a JetDirect does when busy."""
    server = ftp_server()
    destination = server.lp("PORT1", escaped=False)
    server.printer.close()
    run = lp_pipe(lpd, lpd.argv(destination), lpd.env(ftp_entry(lpd, destination)), DATA)
    assert run.rc == 1, run.text
    assert len(run.lines) == 1 and run.lines[0].startswith("printer busy, retrying later")


@pytest.mark.parametrize("letter", ["J", "N"])
def test_hostile_job_name_gives_a_safe_stor_name(lpd: Lpd, ftp_server: MakeServer,
                                                  tmp_path: Path, letter: str) -> None:
    canary = tmp_path / "pwned"
    hostile = (f"../../etc/x\r\nDELE PORT1/y;$(touch {canary})`touch {canary}`"
               " \"q\" 'q' Grüße\x07")
    server = ftp_server()
    destination = server.lp("PORT1", escaped=False)
    # -N only reaches a data filter; an lp=| program is given it here as -J's fallback.
    argv = lpd.argv(destination, J=hostile if letter == "J" else "")
    if letter == "N":
        argv.insert(1, f"-N{hostile}")
    run = lp_pipe(lpd, argv, lpd.env(ftp_entry(lpd, destination)), DATA)
    assert run.rc == 0, run.text
    (name,) = stor_names(server)
    assert SAFE.match(name) and name.startswith("q1-507-"), name
    (stored,) = server.files(1)
    assert stored.directory == "PORT1" and Path(stored.path).read_bytes() == DATA
    assert not canary.exists()
    assert [verb for verb, _ in server.seen.commands if verb == "DELE"] == []
    assert len(run.lines) == 1
