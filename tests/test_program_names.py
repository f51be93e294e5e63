"""lpfilter as LPRng's and CUPS's programs: the installed command linked as ``lpr``,
``lpq``, ``lprm``, ``lpc``, ``lp``, ``cancel`` or ``checkpc`` is that command
(``lpr -P q f`` is ``lpfilter lpr -P q f``); under any other name, and as ``python -m
lpfilter``, it is lpfilter itself. Real links to the installed script, real spools."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from spoolkit import Kit, job_ids, kit  # noqa: F401 - kit: a fixture

from lpfilter.commands.registry import PROGRAMS, WORDS

LPFILTER = Path(sys.executable).with_name("lpfilter")


@pytest.fixture
def links(kit: Kit) -> Path:
    """A directory of links to the installed ``lpfilter``, one per program name and one
    named ``myprint``; queue q (no watcher) in the kit's printcap."""
    kit.queue("q", "/dev/null")
    (kit.root / "doc.txt").write_text("a page\n")
    where = kit.root / "bin"
    where.mkdir()
    for name in (*PROGRAMS, "myprint"):
        (where / name).symlink_to(LPFILTER)
    return where


def run(kit: Kit, program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(program), *args], env=kit.env, cwd=kit.root, text=True,
                          capture_output=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)


def test_each_program_name_is_its_command(kit: Kit, links: Path) -> None:
    printed = run(kit, links / "lpr", "-P", "q", "--no-wait", "doc.txt")
    assert printed.returncode == 0, printed.stderr
    [first] = job_ids(printed.stdout, "q")
    shown = run(kit, links / "lpq", "-P", "q", "-s")
    assert (shown.returncode, shown.stdout.split()[1:]) == (0, ["1", "job"]), shown
    held = run(kit, links / "lp", "-d", "q", "-H", "hold", "doc.txt")
    assert held.stdout.startswith("request id is q-"), held
    listed = run(kit, links / "lpstat", "-v", "-o", "q")  # -v: lpstat's devices, not verbose
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0] == "device for q: /dev/null", listed.stdout
    assert [row.split()[0] for row in listed.stdout.splitlines()[1:]] == [
        f"q-{first}", held.stdout.split()[3]]
    assert run(kit, links / "lprm", "-P", "q").stdout == f"q-{first}: cancelled\n"
    stopped = run(kit, links / "lpc", "stop", "q")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped
    cancelled = run(kit, links / "cancel", "-P", "q", "all")
    assert cancelled.returncode == 0 and cancelled.stdout.endswith(": cancelled\n"), cancelled
    checked = run(kit, links / "checkpc")
    assert checked.returncode in (0, 1) and "usage:" not in checked.stderr, checked
    assert kit.states("q") == {}


def test_another_name_is_lpfilter_itself(kit: Kit, links: Path) -> None:
    """A link named neither as a program nor as a command word: lpfilter's own line, so
    ``lpr`` is never read as a word of it (``myprint lpr`` is ``lpfilter lpr``)."""
    bare = run(kit, links / "myprint")
    assert bare.returncode == 2 and bare.stderr.startswith("usage: lpfilter"), bare
    printed = run(kit, links / "myprint", "lpr", "-P", "q", "--no-wait", "doc.txt")
    assert printed.returncode == 0 and printed.stdout.startswith("q-"), printed
    module = subprocess.run([sys.executable, "-m", "lpfilter", "status", "-P", "q", "-s"],
                            env=kit.env, cwd=kit.root, text=True, capture_output=True,
                            timeout=60, check=False)
    assert module.returncode == 0 and module.stdout.split()[1:] == ["1", "job"], module


def test_every_program_name_is_a_command_word() -> None:
    assert set(WORDS) >= PROGRAMS
    assert not {"print", "status", "watch", "hold", "stop", "start"} & PROGRAMS
    assert os.path.basename(str(LPFILTER)) == "lpfilter"
