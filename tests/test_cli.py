"""The command-line frame: option placement, printcap search, default queue, exit statuses,
error lines, the parse cache, and the installed ``lpfilter`` / ``python -m lpfilter``."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lpfilter.cli import COMMANDS, main
from lpfilter.commands import environment
from lpfilter.status import ExitStatus

PRINTCAP = """\
# a small printcap
.tmpl:sh:mx#100:sd=/var/spool/lpd/%P
first|one|Desc Ription:tc=.tmpl:lp=printer.example%9100:cm=queue %P
second:lp=/dev/null:mx=0x10:ah
ftpq:lp=ftp\\://alice\\:s3cret@printer.example/PORT1
"""


def write(tmp_path: Path, text: str = PRINTCAP, name: str = "printcap") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's usage status is ours too."""
    assert main([]) == ExitStatus.USAGE
    assert "usage:" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("lpfilter ")


def test_global_options_before_or_after_the_command(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`lpfilter --printcap F printcap` and `lpfilter printcap --printcap F` are the same."""
    path = str(write(tmp_path))
    assert main(["--printcap", path, "printcap", "-P", "second"]) == 0
    before = capsys.readouterr().out
    assert main(["printcap", "-P", "second", "--printcap", path]) == 0
    assert capsys.readouterr().out == before
    assert before == "second\n :ah\n :lp=/dev/null\n :mx=0x10\n"


def test_json_types_values_and_hides_passwords(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Flags are booleans, numbers integers, %P expanded, tc applied, FTP password masked."""
    path = str(write(tmp_path))
    first = run_json(capsys, "--printcap", path, "printcap", "-P", "one", "--json")
    assert first == {"name": "first", "aliases": ["one", "Desc Ription"], "options": {
        "cm": "queue first", "lp": "printer.example%9100", "mx": 100,
        "sd": "/var/spool/lpd/first", "sh": True}}
    ftp = run_json(capsys, "--printcap", path, "printcap", "-P", "ftpq", "--json")
    assert ftp["options"]["lp"] == "ftp\\://alice\\:***@printer.example/PORT1"
    assert main(["--printcap", path, "printcap", "--all"]) == 0
    assert "s3cret" not in capsys.readouterr().out


def test_a_password_in_any_key_is_hidden(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A URI's password in rm= or in a mistyped key (lpp=) is hidden too: printcap, its
    JSON, lpc client's text and a filter's PRINTCAP_ENTRY never show it."""
    from lpfilter.printcap.entrytext import entry_from_text, entry_to_text
    text = ("q:lp=/dev/null:rm=ftp\\://bob\\:hunter2@h/x"
            ":lpp=ftp\\://bob\\:hunter2@h/P:note=socket\\://u\\:hunter2@h\\:9100\n")
    path = str(write(tmp_path, text))
    assert main(["--printcap", path, "printcap", "-P", "q"]) == 0
    shown = capsys.readouterr().out
    assert "hunter2" not in shown and shown.count("***@h") == 3, shown
    data = run_json(capsys, "--printcap", path, "printcap", "-P", "q", "--json")
    assert "hunter2" not in json.dumps(data)
    assert data["options"]["lpp"] == "ftp\\://bob\\:***@h/P"
    assert "hunter2" not in entry_to_text(entry_from_text(text))


def test_all_lists_printers_in_lprng_order(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--all skips the punctuation-led template and keeps file order."""
    data = run_json(capsys, "--printcap", str(write(tmp_path)), "printcap", "--all", "--json")
    assert [e["name"] for e in data] == ["first", "second", "ftpq"]
    assert data[1]["options"] == {"ah": True, "lp": "/dev/null", "mx": 16}


def test_default_queue_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """-P, then PRINTER, then LPDEST, then the first printer of the printcap."""
    monkeypatch.setenv("LPFILTER_PRINTCAP", str(write(tmp_path)))

    def shown(*argv: str) -> str:
        assert main(["printcap", *argv]) == 0
        return capsys.readouterr().out.split("\n")[0].split("|")[0]

    assert shown() == "first"
    monkeypatch.setenv("LPDEST", "ftpq")
    assert shown() == "ftpq"
    monkeypatch.setenv("PRINTER", "second")
    assert shown() == "second"
    assert shown("-P", "one") == "first"


def test_printcap_search_path() -> None:
    """--printcap, then LPFILTER_PRINTCAP (':' or ';' separated), then /etc and ~/.printcap."""
    assert environment.printcap_paths("/a:/b", {"LPFILTER_PRINTCAP": "/c"}).paths == ("/a", "/b")
    assert environment.printcap_paths(None, {"LPFILTER_PRINTCAP": "/c;/d"}).paths == ("/c", "/d")
    default = environment.printcap_paths(None, {"HOME": "/home/u"})
    assert default.paths == ("/etc/printcap", "/home/u/.printcap")
    assert default.optional == ("/home/u/.printcap",)


def test_later_files_override_and_optional_file_may_be_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A later file's entry of the same name is merged over the earlier one (~/.printcap)."""
    system = write(tmp_path, "lp:lp=/dev/a:mx#1\n", "system")
    user = write(tmp_path, "lp|mine:mx#2:sh\n", "user")
    data = run_json(capsys, "--printcap", f"{system}:{user}", "printcap", "-P", "mine", "--json")
    assert data["options"] == {"lp": "/dev/a", "mx": 2, "sh": True}
    from lpfilter import printcap
    loaded = printcap.load([str(system), str(tmp_path / "absent")],
                           optional=[str(tmp_path / "absent")])
    assert loaded.problems == [] and loaded.printer_names() == ["lp"]


def test_printcap_programs_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--printcap", "|/bin/cat", "printcap"]) == ExitStatus.USAGE
    assert "does not run printcap programs" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "argv", "status", "message"), [
    (None, ["printcap"], ExitStatus.CONFIG, "missing (given by --printcap) does not exist"),
    ("lp:lp=/dev/x\n", ["printcap", "-P", "nope"], ExitStatus.NO_SUCH_PRINTER,
     "no printer named 'nope'"),
    ("lp:tc=missing:lp=/dev/x\n", ["printcap"], ExitStatus.CONFIG,
     ":1: tc entry 'missing' not found"),
    ("include /nonexistent/x\nlp:lp=/dev/x\n", ["printcap"], ExitStatus.CONFIG,
     ":1: cannot read included file /nonexistent/x"),
])
def test_errors_are_one_line_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               text: str | None, argv: list[str],
                                               status: ExitStatus, message: str) -> None:
    """User errors: one line on stderr, naming the file:line, and a documented status."""
    path = write(tmp_path, text) if text is not None else tmp_path / "missing"
    assert main(["--printcap", str(path), *argv]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lpfilter: ") and message in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "lp:tc=missing\n")
    assert main(["--debug", "--printcap", str(path), "printcap"]) == ExitStatus.CONFIG
    assert "Traceback" in capsys.readouterr().err


def test_internal_errors_are_reported_not_dumped(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A bug gives exit 70 and a hint to use --debug, not a traceback."""
    from lpfilter.commands import printcap_cmd

    def broken(ctx: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(printcap_cmd, "run", broken)
    assert main(["--printcap", str(write(tmp_path)), "printcap"]) == ExitStatus.INTERNAL
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and "--debug" in err
    assert "Traceback" not in err


def test_checkpc_statuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """0 when clean, 1 with problems (one FILE:LINE line each), 3 when unreadable."""
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    clean = write(tmp_path, f"lp:lp=/dev/null:sd={spool}\n", "clean")
    assert main(["--printcap", str(clean), "checkpc"]) == 0
    assert capsys.readouterr().out == ""
    bad = write(tmp_path, f"lp:lp=/dev/null:sd={spool}:sh=on\n", "bad")
    assert main(["--printcap", str(bad), "checkpc"]) == ExitStatus.FAILURE
    out, err = capsys.readouterr()
    assert out.startswith(f"{bad}:1: sh=on reads as 0") and "1 problem found" in err
    assert main(["--printcap", str(tmp_path / "none"), "checkpc"]) == ExitStatus.CONFIG
    capsys.readouterr()
    missing = tmp_path / "made" / "by" / "fix"
    absent = write(tmp_path, f"lp:lp=/dev/null:sd={missing}\n", "absent")
    assert main(["--printcap", str(absent), "checkpc", "-f"]) == 0  # LPRng's checkpc -f
    assert missing.is_dir() and oct(missing.stat().st_mode & 0o777) == "0o700"


def test_parse_cache_is_used_and_never_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A second run reads the cache; editing an included file invalidates it."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LPFILTER_CACHE_DIR", str(cache))
    included = write(tmp_path, "lp:lp=/dev/a\n", "included")
    top = write(tmp_path, f"include {included}\n:mx#1\n", "top")
    first = run_json(capsys, "--printcap", str(top), "printcap", "--json")
    pickles = list(cache.glob("*.cache"))
    assert len(pickles) == 1 and first["options"] == {"lp": "/dev/a", "mx": 1}
    assert run_json(capsys, "--printcap", str(top), "printcap", "--json") == first
    included.write_text("lp:lp=/dev/b:sh\n")
    os.utime(included, ns=(1, 1))  # a different mtime even on a coarse clock
    again = run_json(capsys, "--printcap", str(top), "printcap", "--json")
    assert again["options"] == {"lp": "/dev/b", "mx": 1, "sh": True}


def test_parse_cache_ignores_a_directory_others_can_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A group- or world-writable cache directory is never trusted (others could write it)."""
    cache = tmp_path / "shared-cache"
    cache.mkdir()
    cache.chmod(0o777)
    monkeypatch.setenv("LPFILTER_CACHE_DIR", str(cache))
    path = write(tmp_path)
    assert main(["--printcap", str(path), "printcap"]) == 0
    assert list(cache.iterdir()) == []
    monkeypatch.setenv("LPFILTER_NO_CACHE", "1")
    monkeypatch.setenv("LPFILTER_CACHE_DIR", str(tmp_path / "unused"))
    assert main(["--printcap", str(path), "printcap"]) == 0
    assert not (tmp_path / "unused").exists()


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          **kwargs)  # type: ignore[call-overload]


def test_installed_command_and_module(tmp_path: Path) -> None:
    """The console script and ``python -m lpfilter`` behave like main()."""
    path = str(write(tmp_path))
    exe = shutil.which("lpfilter", path=os.path.dirname(sys.executable)) or shutil.which(
        "lpfilter")
    assert exe, "the lpfilter console script is not installed"
    for argv in ([exe], [sys.executable, "-m", "lpfilter"]):
        done = _run([*argv, "--printcap", path, "printcap", "-P", "second"])
        assert (done.returncode, done.stdout) == (0, "second\n :ah\n :lp=/dev/null\n :mx=0x10\n")
        done = _run([*argv, "--printcap", path, "printcap", "-P", "nope"])
        assert done.returncode == ExitStatus.NO_SUCH_PRINTER and done.stdout == ""


def test_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """`lpfilter printcap --all | head -1`: no traceback when the reader goes away."""
    many = "".join(f"q{i}:lp=/dev/null:cm={'x' * 200}\n" for i in range(3000))
    path = str(write(tmp_path, many))
    done = _run(f"'{sys.executable}' -m lpfilter --printcap '{path}' printcap --all | head -1",
                shell=True)
    assert done.stdout == "q0\n" and done.stderr == ""


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for name in COMMANDS:
        assert main([name, "--help"]) == 0
        assert f"usage: lpfilter {name}" in capsys.readouterr().out


def _parsed(*argv: str) -> dict[str, object]:
    from lpfilter.cli import build_parser
    return vars(build_parser().parse_args(list(argv)))


@pytest.mark.parametrize(("command", "rest"), [
    ("print", ["-J", "x", "file"]), ("watch", ["--once"]), ("status", ["--json"]),
    ("lpq", []), ("cancel", ["12"]), ("lprm", ["--all"]), ("requeue", ["--all"]),
    ("hold", ["3"]), ("release", ["3"]), ("printcap", ["--json"])])
def test_global_P_is_the_commands_P(command: str, rest: list[str]) -> None:
    """`lpfilter -P q COMMAND` parses exactly as `lpfilter COMMAND -P q`, for every command
    that takes -P (attached, with =, and before other global options too)."""
    after = _parsed(command, "-P", "q", *rest)
    assert _parsed("-P", "q", command, *rest) == after
    assert _parsed("-Pq", command, *rest) == after
    assert _parsed("-P=q", "-v", command, *rest) == {**after, "verbose": 1}
    assert "global_queues" not in after


def test_global_P_repeats_for_watch_and_the_last_one_wins_elsewhere() -> None:
    assert _parsed("-P", "a", "-P", "b", "watch")["printers"] == ["a", "b"]
    assert _parsed("-P", "a", "watch", "-P", "b", "--once")["printers"] == ["a", "b"]
    assert _parsed("watch")["printers"] is None
    assert _parsed("-P", "a", "status", "-P", "b")["printer"] == "b"
    assert _parsed("-P", "status", "status")["printer"] == "status"  # a queue named status


def test_global_P_runs_the_command_on_that_queue(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """In-process and as the installed command: the queue before the command is used."""
    path = str(write(tmp_path))
    assert main(["--printcap", path, "-P", "second", "printcap"]) == 0
    assert capsys.readouterr().out == "second\n :ah\n :lp=/dev/null\n :mx=0x10\n"
    assert main(["-P", "nope", "--printcap", path, "printcap"]) == ExitStatus.NO_SUCH_PRINTER
    assert "'nope'" in capsys.readouterr().err
    done = _run([sys.executable, "-m", "lpfilter", "-P", "second", "printcap", "--printcap",
                 path])
    assert (done.returncode, done.stdout) == (0, "second\n :ah\n :lp=/dev/null\n :mx=0x10\n")


def _usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[str, str]:
    """(the usage's prog, the error line) of a command line argparse refuses."""
    assert main(argv) == ExitStatus.USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    usage = re.match(r"usage: (lpfilter(?: [\w-]+)?) ", lines[0])
    assert usage and lines[-1].startswith(f"{usage.group(1)}: error: "), captured.err
    return usage.group(1), lines[-1].split(": error: ", 1)[1]


@pytest.mark.parametrize(("argv", "prog", "error"), [
    (["print", "--bogus"], "lpfilter print", "unrecognized arguments: --bogus"),
    (["print", "-#", "two"], "lpfilter print", "argument -#/-K: invalid int value: 'two'"),
    (["status", "-P"], "lpfilter status", "argument -P: expected one argument"),
    (["status", "--bogus", "x"], "lpfilter status", "unrecognized arguments: --bogus"),  # x: a user
    (["lpq", "--bogus"], "lpfilter status", "unrecognized arguments: --bogus"),
    (["watch", "--once", "extra"], "lpfilter watch", "unrecognized arguments: extra"),
    (["cancel", "-P"], "lpfilter cancel", "argument -P: expected one argument"),
    (["-P", "q", "status", "--all"], "lpfilter status",
     "argument -a/--all: not allowed with argument -P"),
    (["-P", "q", "checkpc"], "lpfilter checkpc", "unrecognized arguments: -P q"),
    (["-P", "q", "demo"], "lpfilter demo", "unrecognized arguments: -P q"),
    (["--bogus", "status"], "lpfilter", "unrecognized arguments: --bogus"),
    (["--verb", "status"], "lpfilter", "unrecognized arguments: --verb"),  # no abbreviations:
    (["--deb", "-P", "q", "watch"], "lpfilter", "unrecognized arguments: --deb"),  # LPRng's
    (["-P"], "lpfilter", "argument -P: expected one argument")])
def test_usage_errors_show_the_usage_of_the_command(capsys: pytest.CaptureFixture[str],
                                                    argv: list[str], prog: str,
                                                    error: str) -> None:
    """A mistake after the command gets that command's usage; before it, the general one."""
    assert _usage_error(capsys, argv) == (prog, error)


def test_usage_error_of_the_installed_command(tmp_path: Path) -> None:
    done = _run([sys.executable, "-m", "lpfilter", "print", "--bogus"])
    assert done.returncode == ExitStatus.USAGE and done.stdout == ""
    assert done.stderr.startswith("usage: lpfilter print ")
    assert done.stderr.endswith("lpfilter print: error: unrecognized arguments: --bogus\n")


def test_global_P_reaches_filter_as_its_lprng_P(tmp_path: Path) -> None:
    """`lpfilter -P q filter` is `lpfilter filter -Pq`: the queue joins lpd's option list
    after the destination, where a -P of that list still wins."""
    from lpfilter.cli import _split_filter
    assert _split_filter(["-P", "lp", "filter"]) == (["filter"], ["-Plp"])
    assert _split_filter(["-v", "-Plp", "--printcap", "/pc", "filter", "host%9100", "-Jx"]) == (
        ["-v", "--printcap", "/pc", "filter"], ["host%9100", "-Plp", "-Jx"])
    assert _split_filter(["-P=a", "filter", "-Pb", "acct"]) == (["filter"], ["-Pa", "-Pb", "acct"])
    assert _split_filter(["-vvPlp", "filter", "-Jx"]) == (["-vv", "filter"], ["-Plp", "-Jx"])
    assert _split_filter(["-vP", "lp", "filter"]) == (["-v", "filter"], ["-Plp"])
    out, other = tmp_path / "out", tmp_path / "other"
    out.touch()
    other.touch()
    path = write(tmp_path, f"q:lp={out}:sd={tmp_path}\nwrong:lp={other}:sd={tmp_path}\n")
    (tmp_path / "doc").write_text("by hand\n")
    for queues in (["-P", "q"], ["-P", "wrong", "-Pq"]):
        with open(tmp_path / "doc", "rb") as doc:
            done = subprocess.run([sys.executable, "-m", "lpfilter", "--printcap", str(path),
                                   *queues[:2], "filter", *queues[2:]], stdin=doc,
                                  capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
    assert (out.read_text(), other.read_text()) == ("by hand\n" * 2, "")
