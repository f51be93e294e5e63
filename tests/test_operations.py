"""Day-to-day operation (issue 10, sections 3 and 4): no printcap, one exit status for a
missing spool directory in every command."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

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
