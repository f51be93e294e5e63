"""Instructions a command runs, counted by valgrind's callgrind (issue 16, round 12).

On this shared two-core machine the wall time of one command moves by a few ms from run
to run, more than a change of a few hundred microseconds in it. Callgrind counts the
instructions a process executes: the same for the same program, inputs and environment,
whatever else the machine is doing. So a small saving shows, and the interpreter's own
start can be told apart from what a command adds to it. It is slow (~50 ×), so each
command is counted once. Only the process started is counted, not its children.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchkit import BenchError

TIMEOUT = 300.0
#: What the console-script wrapper of a pip before 25.2 runs before it imports lpfilter
#: (``import re``, then its ``re.sub`` on ``sys.argv[0]``); pip 25.2 and later write one
#: without ``re`` (``wrapper``).
WRAPPER = "import re; re.sub(r'(-script\\.pyw|\\.exe)?$', '', 'lpfilter')"


def wrapper(script: Path) -> str:
    """The code of the installed ``lpfilter`` wrapper ``script`` with lpfilter's ``main`` a
    no-op: what every run of the command pays before lpfilter's first line; ``WRAPPER``
    where it is not such a wrapper (``python -m lpfilter``)."""
    try:
        text = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return WRAPPER
    if "from lpfilter.__main__ import main" not in text or "sys.exit(main())" not in text:
        return WRAPPER
    return text.replace("from lpfilter.__main__ import main", "main = int").replace(
        "sys.exit(main())", "main()")


def valgrind() -> str | None:
    return shutil.which("valgrind")


def under_callgrind(log: Path) -> list[str]:
    """The words that run a command under callgrind, its summary written to ``log``."""
    tool = valgrind()
    if tool is None:
        raise BenchError("valgrind is not installed")
    return [tool, "--tool=callgrind", "--callgrind-out-file=/dev/null", f"--log-file={log}"]


def collected(log: Path, what: str) -> int:
    """The instructions callgrind's summary in ``log`` says ``what`` ran."""
    found = re.search(r"Collected : (\d+)", log.read_text(errors="replace"))
    if found is None:
        raise BenchError(f"{what[:200]}: callgrind counted nothing")
    return int(found.group(1))


def count(argv: Sequence[str], env: Mapping[str, str], ok: Sequence[int] = (0,),
          stdin: Path | None = None, stdout: Any = subprocess.PIPE) -> tuple[int, str]:
    """The instructions ``argv`` ran, to its exit (one of ``ok``), and what it printed;
    its standard input is ``stdin`` (a file), else empty; its standard output ``stdout``
    (a file or socket: then nothing printed is returned), else a pipe."""
    with tempfile.TemporaryDirectory(prefix="lpfilter-callgrind-") as tmp:
        log = Path(tmp) / "callgrind.log"
        with open(stdin or "/dev/null", "rb") as given:
            done = subprocess.run([*under_callgrind(log), *argv], env=dict(env), stdin=given,
                                  stdout=stdout, stderr=subprocess.PIPE, text=True,
                                  timeout=TIMEOUT, check=False)
        if done.returncode not in ok:
            raise BenchError(f"{' '.join(argv)[:200]} under callgrind: exit status"
                             f" {done.returncode}: {done.stderr[-800:]}")
        return collected(log, " ".join(argv)), done.stdout or ""
