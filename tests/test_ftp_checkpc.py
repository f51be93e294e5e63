"""checkpc looks at each FTP queue's ftp_password_file as the backend will: an absolute
path, the user's own file, no permission for group or others."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from localkit import need_root

from lpfilter.backends.ftpauth import netrc_problem
from lpfilter.cli import main

#: The installed command, so that checkpc finds the program lp=| names.
LPFILTER = str(Path(sys.executable).with_name("lpfilter"))


def _checkpc(tmp_path: Path, secret: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    printcap = tmp_path / "printcap"
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    printcap.write_text(f"f1:sd={spool}:lp=ftp\\://127.0.0.1/PORT1:ftp_password_file={secret}\n")
    status = main(["--printcap", str(printcap), "checkpc"], {"HOME": str(tmp_path)})
    return status, capsys.readouterr().out


def test_a_private_absolute_password_file_passes(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "ftp-password"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    status, out = _checkpc(tmp_path, str(secret), capsys)
    assert status == 0, out
    assert "s3cret" not in out


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_password_file_open_to_others_is_reported(tmp_path: Path, mode: int,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "ftp-password"
    secret.write_text("s3cret\n")
    os.chmod(secret, mode)
    status, out = _checkpc(tmp_path, str(secret), capsys)
    assert status == 1
    assert f"printcap:1: queue f1: ftp_password_file {secret} is open to other users" in out
    assert f"chmod 600 {secret}" in out and "s3cret" not in out


def test_a_relative_password_file_is_reported(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _checkpc(tmp_path, "ftp-password", capsys)
    assert status == 1
    assert "ftp_password_file ftp-password: a relative path" in out
    assert "give an absolute path" in out


@pytest.mark.parametrize(("line", "key", "shown"), [
    ("lp=|/usr/bin/lpfilter filter ftp\\://printuser\\:s3cret@printer/PORT1", "lp",
     "lp=|/usr/bin/lpfilter filter ftp://printuser:***@printer/PORT1"),
    ("lp=/dev/null:if=/usr/bin/lpfilter --debug filter ftp\\://u\\:s3cret@printer\\:2121/P -Pq",
     "if", "if=/usr/bin/lpfilter --debug filter ftp://u:***@printer:2121/P -Pq"),
    ("lp=/dev/null:filter=/usr/local/bin/lpfilter filter ftp\\://u\\:s3cret@printer/PORT1",
     "filter", "filter=/usr/local/bin/lpfilter filter ftp://u:***@printer/PORT1")])
def test_a_password_on_a_filter_command_line_is_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, key: str,
        shown: str) -> None:
    """Issue 11 item 3: lpd runs lp=| and filter programs with the line's words as their
    arguments, which every local user can read; checkpc says so at the line, masked."""
    printcap = tmp_path / "printcap"
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    printcap.write_text(f"f1:sd={spool}\n  :{line}\n")
    status = main(["--printcap", str(printcap), "checkpc"], {"HOME": str(tmp_path)})
    out = capsys.readouterr().out
    assert status == 1, out
    assert (f"printcap:2: {shown}: a password on a command line is visible to every local"
            " user") in out
    assert "ftp_password_file" in out and "~/.netrc" in out and "s3cret" not in out


@pytest.mark.parametrize("line", [
    "lp=|/usr/bin/lpfilter filter ftp\\://printuser@printer/PORT1",
    "lp=ftp\\://printuser\\:s3cret@printer/PORT1",
    "lp=|/usr/bin/lpfilter filter -Pq1",
    "lp=|/usr/bin/other-program ftp\\://u\\:s3cret@printer/PORT1"])
def test_no_password_on_a_command_line_is_not_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Without a password, or with it only in the printcap (lpfilter's own backends read
    it there: print and watch never put it on a command line), nothing is said."""
    printcap = tmp_path / "printcap"
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    printcap.write_text(f"f1:sd={spool}:{line}\n")
    main(["--printcap", str(printcap), "checkpc"], {"HOME": str(tmp_path)})
    assert "password on a command line" not in capsys.readouterr().out


@pytest.mark.parametrize("line", [
    "lp=|/usr/bin/lpfilter filter ftp\\://printuser\\:s3cret@printer/PORT1 -Pq",
    "lp=/dev/null:if=/usr/bin/lpfilter --debug filter ftp\\://u\\:s3cret@printer/PORT1"])
@pytest.mark.parametrize("json", [False, True])
def test_printcap_masks_a_password_in_a_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, json: bool) -> None:
    """``lpfilter printcap`` showed the password of a destination among a program's words
    (its masking knew only a value that is the URI itself)."""
    printcap = tmp_path / "printcap"
    printcap.write_text(f"f1:sd={tmp_path}:{line}\n")
    status = main(["--printcap", str(printcap), "printcap", "-P", "f1",
                   *(["--json"] if json else [])])
    out = capsys.readouterr().out
    assert status == 0 and "s3cret" not in out and "\\:***@printer/PORT1" in out, out


def test_an_unescaped_uri_in_a_command_line_is_said_once_and_masked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unescaped, LPRng cuts the URI at each ':' (lpd passes 'ftp' as the destination) and
    the password became an 'unknown key' that checkpc showed; now one line says how to
    write it, masked, with the password problem beside it."""
    printcap = tmp_path / "printcap"
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    printcap.write_text(f"f1:sd={spool}\n  :lp=|/usr/bin/lpfilter filter"
                        " ftp://printuser:s3cret@printer:2121/PORT1:mx#0:zzz\n")
    status = main(["--printcap", str(printcap), "checkpc"], {"HOME": str(tmp_path)})
    out = capsys.readouterr().out
    assert status == 1 and "s3cret" not in out, out
    shown = "lp=|/usr/bin/lpfilter filter ftp://printuser:***@printer:2121/PORT1"
    assert (f"printcap:2: {shown}: every unescaped ':' ends a printcap option, so lpd runs the"
            " program with 'ftp' as its destination") in out
    assert ("escape each ':' of the URI: lp=|/usr/bin/lpfilter filter"
            " ftp\\://printuser\\:***@printer\\:2121/PORT1\n") in out
    assert f"printcap:2: {shown}: a password on a command line" in out
    assert "unknown key 'zzz'" in out and "'//printuser'" not in out


def _checkpc_pipe(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                  options: str) -> tuple[int, str]:
    """A root-owned spool whose lp=| program is lpfilter filter to an FTP printer."""
    printcap = tmp_path / "printcap"
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700, exist_ok=True)
    printcap.write_text(f"f1:sd={spool}:lp=|{LPFILTER} filter"
                        f" ftp\\://127.0.0.1/PORT1{options}\n")
    status = main(["--printcap", str(printcap), "checkpc"], {"HOME": str(tmp_path)})
    return status, capsys.readouterr().out


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can enter (pytest's tmp_path is closed to all but root)."""
    made = Path(tempfile.mkdtemp(prefix="lpfilter-ftpsecret-"))
    made.chmod(0o755)
    try:
        yield made
    finally:
        shutil.rmtree(made)


def test_a_pipe_programs_password_file_is_checked_as_the_queues_filter_user(
        tmp_path: Path, open_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A root watcher runs lp=|lpfilter filter of a root-owned spool as daemon, which
    refuses a password file that is not its own: checkpc (as root) says so first."""
    need_root("checkpc as root, the program as daemon")
    secret = open_dir / "ftp-password"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    status, out = _checkpc_pipe(tmp_path, capsys, f":ftp_password_file={secret}")
    assert status == 1, out
    assert (f"printcap:1: queue f1: ftp_password_file {secret} belongs to root, but it is"
            " read by lpfilter filter running as daemon") in out, out
    assert f"chown daemon {secret}, or set user= to its owner" in out and "s3cret" not in out
    os.chown(secret, pwd.getpwnam("daemon").pw_uid, -1)
    assert _checkpc_pipe(tmp_path, capsys, f":ftp_password_file={secret}") == (0, "")
    os.chown(secret, 0, -1)
    assert _checkpc_pipe(tmp_path, capsys, f":ftp_password_file={secret}:user=root") == (0, "")


def test_a_netrc_the_pipe_programs_user_cannot_use_is_named(tmp_path: Path,
                                                             open_dir: Path) -> None:
    """The program gets the watcher's HOME (LPRng's); run as another user, the watcher's
    ~/.netrc is not its own; its own in a home it cannot enter is named too."""
    need_root("a file of root's")
    home = tmp_path / "home"
    home.mkdir()
    assert netrc_problem(str(home), (0, 0)) is None  # none there
    (home / ".netrc").write_text("machine printer login u password s3cret\n")
    daemon = (pwd.getpwnam("daemon").pw_uid, pwd.getpwnam("daemon").pw_gid)
    message = netrc_problem(str(home), daemon) or ""
    assert message.startswith(f"netrc file {home}/.netrc: lpfilter filter runs as daemon")
    assert "ftp_password_file belonging to daemon" in message and "s3cret" not in message
    assert netrc_problem(str(home), (0, 0)) is None  # root's own
    closed = open_dir / "home"
    closed.mkdir(mode=0o700)
    (closed / ".netrc").write_text("machine printer login u password s3cret\n")
    os.chown(closed / ".netrc", *daemon)
    assert netrc_problem(str(closed), daemon) == (
        f"netrc file {closed}/.netrc: lpfilter filter runs as daemon (the queue's filter"
        f" user, LPRng's user=) and may not enter the directory {closed}; move the file to"
        " a directory daemon can reach")
    closed.chmod(0o711)
    assert netrc_problem(str(closed), daemon) is None


def _daemon_reads(path: Path) -> bool:
    """Whether daemon, as a filter runs (its uid and gid, no other groups), can read it."""
    done = subprocess.run(["setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups",
                           "--", "/bin/cat", str(path)], capture_output=True, timeout=60,
                          check=False)
    return done.returncode == 0


def test_a_password_file_the_filter_user_cannot_reach_is_reported(
        tmp_path: Path, open_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """daemon's own file (mode 600) in a directory of root's that daemon may not enter,
    or reached through a link into it, cannot be read by the program: checkpc says so,
    as daemon really finds it (setpriv cat)."""
    need_root("checkpc as root, the program as daemon")
    locked = open_dir / "locked"
    locked.mkdir(mode=0o700)
    secret = locked / "pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    os.chown(secret, pwd.getpwnam("daemon").pw_uid, -1)
    link = open_dir / "pw-link"
    link.symlink_to(secret)
    for named in (secret, link):
        status, out = _checkpc_pipe(tmp_path, capsys, f":ftp_password_file={named}:user=daemon")
        assert status == 1 and not _daemon_reads(named), out
        assert (f"printcap:1: queue f1: ftp_password_file {named}: lpfilter filter runs as"
                f" daemon (the queue's filter user, LPRng's user=) and may not enter the"
                f" directory {locked}; move the file") in out, out
        assert "s3cret" not in out
    locked.chmod(0o711)
    secret.chmod(0o200)
    status, out = _checkpc_pipe(tmp_path, capsys, f":ftp_password_file={secret}:user=daemon")
    assert status == 1 and not _daemon_reads(secret), out
    assert f"ftp_password_file {secret}: lpfilter filter runs as daemon and may not read it" in out
    secret.chmod(0o600)
    for named in (secret, link):
        assert _checkpc_pipe(tmp_path, capsys, f":ftp_password_file={named}:user=daemon") == (0, "")
        assert _daemon_reads(named)
