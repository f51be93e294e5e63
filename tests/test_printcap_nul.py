"""Issue 11 item 6: a NUL byte in a printcap value (sd, lf, af, ps, lp, a password file,
any key) or in an include's file name is a printcap error naming file:line: a problem
line for checkpc, the usual one-line error (exit 3) for the other commands, never an
internal error (70) from a path that reaches the file system."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lpfilter.cli import main

KEYS = ["sd", "lf", "af", "ps", "lp", "ftp_password_file", "cm"]


def _printcap(tmp_path: Path, key: str) -> Path:
    (tmp_path / "sd").mkdir(mode=0o700)
    (tmp_path / "good").mkdir(mode=0o700)
    values = {"sd": str(tmp_path / "sd"), "lp": "/dev/null", key: f"{tmp_path}/x\0y"}
    if key == "lp":
        values["lp"] = "ftp\\://printuser\\:se\0cret@printer/PORT1"
    options = "".join(f":{k}={v}" for k, v in values.items())
    printcap = tmp_path / "printcap"
    printcap.write_bytes(f"good:sd={tmp_path / 'good'}:lp=/dev/null\n"
                         f"q\n  {options}\n".encode())
    return printcap


def _line(tmp_path: Path, key: str) -> str:
    """The start of the message: file:line, then the key and its value, NUL shown."""
    value = f"{tmp_path}/x\\x00y" if key != "lp" else "ftp\\://printuser\\:***@printer/PORT1"
    return f"{tmp_path}/printcap:3: {key}={value}"


@pytest.mark.parametrize("key", KEYS)
def test_checkpc_reports_a_nul_byte_as_a_problem_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str) -> None:
    printcap = _printcap(tmp_path, key)
    status = main(["--printcap", str(printcap), "checkpc"], {"HOME": str(tmp_path)})
    out, err = capsys.readouterr()
    assert status == 1, out + err
    (line,) = [text for text in out.splitlines() if "NUL" in text]
    assert line.startswith(_line(tmp_path, key)) and "\\x00" in line, line
    assert "remove it" in line and "secret" not in out + err and "\0" not in out + err
    assert err == "lpfilter: checkpc: 1 problem found\n"


@pytest.mark.parametrize("argv", [
    ["status", "--all"], ["status", "-P", "q"], ["status", "--json", "-P", "q"],
    ["watch", "--once", "-P", "q"], ["print", "--no-wait", "-P", "q"],
    ["cancel", "-P", "q", "all"], ["printcap", "-P", "q"]])
@pytest.mark.parametrize("key", KEYS)
def test_other_commands_give_the_one_line_printcap_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, argv: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    printcap = _printcap(tmp_path, key)
    monkeypatch.setenv("LPFILTER_LOCK_DIR", str(tmp_path / "locks"))
    doc = tmp_path / "doc"
    doc.write_text("hello\n")
    extra = [str(doc)] if argv[0] == "print" else []
    status = main(["--printcap", str(printcap), *argv, *extra])
    out, err = capsys.readouterr()
    assert status == 3, out + err
    assert err.startswith(f"lpfilter: {_line(tmp_path, key)}") and err.count("\n") == 1, err
    assert "NUL byte" in err and "secret" not in err and "\0" not in err


def test_the_other_queues_still_work(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    printcap = _printcap(tmp_path, "sd")
    status = main(["--printcap", str(printcap), "status", "-P", "good"])
    out, err = capsys.readouterr()
    assert (status, err) == (0, ""), err
    assert out.startswith("Queue good:")


def test_a_nul_byte_in_an_include_name(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    printcap = tmp_path / "printcap"
    printcap.write_bytes(f"include {tmp_path}/a\0b\nq:sd={tmp_path}:lp=/dev/null\n".encode())
    assert main(["--printcap", str(printcap), "checkpc"], {"HOME": str(tmp_path)}) == 1
    out = capsys.readouterr().out
    assert f"printcap:1: include {tmp_path}/a\\x00b: a NUL byte in the file name" in out
    assert main(["--printcap", str(printcap), "status", "-P", "q"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("lpfilter: ") and err.count("\n") == 1 and "NUL byte" in err


def test_installed_program_no_traceback(tmp_path: Path) -> None:
    """The installed command, as a user runs it: exit 3, one line, no traceback."""
    printcap = _printcap(tmp_path, "sd")
    done = subprocess.run([sys.executable, "-m", "lpfilter", "--printcap", str(printcap),
                           "status", "--all"], capture_output=True, text=True, timeout=60,
                          check=False, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"lpfilter: {printcap}:3: sd=")


def test_a_nul_byte_in_the_all_list(tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The all entry is no queue: checkpc reports its line as a problem (it exited 3
    when the printer list was read through the queue lookup)."""
    (tmp_path / "good").mkdir(mode=0o700)
    printcap = tmp_path / "printcap"
    printcap.write_bytes(f"all:all=good,q\0x\ngood:sd={tmp_path / 'good'}:lp=/dev/null\n"
                         .encode())
    assert main(["--printcap", str(printcap), "checkpc"], {"HOME": str(tmp_path)}) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{printcap}:1: all=good,q\\x00x: a NUL byte"), out
    assert main(["--printcap", str(printcap), "status", "--all"]) == 0
    assert capsys.readouterr().out.startswith("Queue good:")
