"""Day-to-day operation (issue 10, sections 3 and 4): no printcap, one exit status for a
missing spool directory in every command."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from spoolkit import kit_at, wait_until

from lpfilter import config
from lpfilter.cli import main
from lpfilter.status import ExitStatus

REPO = Path(__file__).resolve().parents[1]


# --- no printcap --------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["default", "--printcap", "LPFILTER_PRINTCAP"])
@pytest.mark.parametrize("command", [["status"], ["checkpc"], ["watch", "--once"],
                                     ["printcap", "--all"]])
def test_no_printcap_says_how_to_name_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], source: str,
                                          command: list[str]) -> None:
    """No printcap at all: one line naming the file, --printcap, LPFILTER_PRINTCAP and an
    example printcap that exists on this machine; the config status (3)."""
    missing = tmp_path / "no-printcap"
    monkeypatch.setattr(config, "SYSTEM_PRINTCAP", str(missing))
    monkeypatch.setenv("HOME", str(tmp_path))
    argv = list(command)
    if source == "--printcap":
        argv = ["--printcap", str(missing), *argv]
    elif source == "LPFILTER_PRINTCAP":
        monkeypatch.setenv("LPFILTER_PRINTCAP", str(missing))
    assert main(argv) == ExitStatus.CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lpfilter: no printcap found: "), err
    named = "the default" if source == "default" else f"given by {source}"
    assert f"{missing} ({named}) does not exist" in err, err
    for word in ("--printcap FILE", "LPFILTER_PRINTCAP=FILE", "etc/printcap.example"):
        assert word in err, word
    shown = re.search(r"start from (?:etc/printcap\.example \(installed as )?(/\S+?)\)?$", err)
    assert shown and Path(shown.group(1)).is_file(), err  # a path the user can open
    assert Path(shown.group(1)).read_bytes() == (REPO / "etc" / "printcap.example").read_bytes()


# --- a missing spool directory: one status (ACCESS, 5) for every command ------------------

MISSING_SPOOL_COMMANDS = [
    ["print", "-P", "q", "DOC"], ["print", "-P", "q", "--no-wait", "DOC"],
    ["watch", "--once", "-P", "q"], ["watch", "--once", "--all"],
    ["status", "-P", "q"], ["status", "--all"], ["status", "-P", "q", "--json"],
    ["cancel", "-P", "q", "1"], ["lprm", "-P", "q", "--all"], ["requeue", "-P", "q", "--all"],
    ["hold", "-P", "q", "1"], ["release", "-P", "q", "--all"]]


@pytest.mark.parametrize("argv", MISSING_SPOOL_COMMANDS, ids=" ".join)
def test_a_missing_spool_directory_is_the_same_status_everywhere(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Every command that meets a missing sd says so in one line naming it and the fix,
    and exits 5; status shows the queue with the problem, never as an empty queue."""
    sd = tmp_path / "spool-q"
    printcap = tmp_path / "printcap"
    printcap.write_text(f"q:sd={sd}:lp=/dev/null\n")
    (tmp_path / "doc.txt").write_text("hello\n")
    argv = [str(tmp_path / "doc.txt") if a == "DOC" else a for a in argv]
    assert main(["--printcap", str(printcap), *argv]) == ExitStatus.ACCESS
    out, err = capsys.readouterr()
    line = (f"lpfilter: queue q: spool directory {sd} does not exist; run 'lpfilter checkpc"
            " --fix' to create it\n")
    assert err == line
    assert "no jobs" not in out
    if argv[0] == "status":
        assert ("no spool directory" in out) if "--json" not in argv else (
            '"error": "queue q: spool directory' in out)
    assert not sd.exists()


def test_a_daemon_that_cannot_start_a_queue_for_want_of_its_spool_directory_exits_5(
        tmp_path: Path) -> None:
    """The daemon keeps running (the directory may appear) but says why the queue does not
    start, and exits 5 when stopped, as every other command does."""
    with kit_at(tmp_path) as kit:
        sd = kit.queue("q", "/dev/null", accounting=False)
        sd.rmdir()
        daemon = kit.start("watch", "-P", "q")
        wait_until(lambda: "does not exist" in daemon.stderr(), what="the daemon's error line")
        assert daemon.popen.poll() is None
        assert daemon.stop() == ExitStatus.ACCESS
        assert (f"queue q: spool directory {sd} does not exist; run 'lpfilter checkpc --fix'"
                in daemon.stderr())


def test_exit_status_page_names_the_missing_spool_directory_for_every_command() -> None:
    from test_docs import MAN1, plain, section
    five = plain(section(MAN1.read_text(encoding="utf-8"), "EXIT STATUS").split(".B 5\n")[1]
                 .split(".TP")[0])
    assert "missing spool directory" in five
    for command in ("print", "watch", "status", "cancel", "requeue", "hold", "release"):
        assert command in five, command
