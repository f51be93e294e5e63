"""A program lpfilter runs (an ``lp=|`` program, a data filter) that exits leaving a
background process holding its output pipe does not hold up the send: what is left of its
process group is ended once it exits, and its output's reader never waits for it."""
from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from filterrunkit import print_bytes, watch_once
from spoolkit import Kit, gone, kit  # noqa: F401 - a fixture

from lpfilter.children.orphans import records_dir


#: How the background process is started: in the program's group; in a session of its own
#: (setsid: outside the group, still carrying the filter's mark); out of reach (env -i: the
#: mark dropped as well).
IN_GROUP, OWN_SESSION, OUT_OF_REACH = "", "/usr/bin/setsid ", "/usr/bin/env -i /usr/bin/setsid "


def _leaver(kit: Kit, name: str, pid_file: Path, *, status: int, body: str,
            launcher: str = IN_GROUP, then: str = "") -> Path:
    """A script that does ``body``, leaves ``sleep 600`` (started through ``launcher``)
    holding its output, does ``then`` and exits ``status``."""
    return kit.program(name, f"#!/bin/sh\n{body}\n{launcher}/bin/sleep 600 &\n"
                             f"echo $! > {pid_file}.new && mv {pid_file}.new {pid_file}\n"
                             f"{then}\nexit {status}\n")


def _stop(pid_file: Path) -> None:
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _filtered_queue(kit: Kit, flt: Path, **keys: object) -> tuple[Path, Path]:
    """A queue whose if= is ``flt``, its output streamed to an lp=| program writing a
    file: (the spool directory, that file)."""
    out = kit.root / "device.out"
    device = kit.program("dev.sh", f"#!/bin/sh\ncat > {out}\n")
    return kit.queue("q", f"|{device}", **{"if": str(flt)}, user="root", **keys), out


def test_an_lp_pipe_leaving_a_background_process_finishes_and_ends_it(kit: Kit) -> None:  # noqa: F811
    pid_file = kit.root / "bg.pid"
    program = _leaver(kit, "p.sh", pid_file, status=0, body="cat > /dev/null")
    kit.queue("q", f"|{program}")
    job = print_bytes(kit, "q", b"hello\n")
    try:
        watch_once(kit, "q", timeout=60)  # without the fix: held for 600 s
        assert kit.states("q")[job] == "done"
        assert gone(int(pid_file.read_text()))
    finally:
        _stop(pid_file)


@pytest.mark.parametrize("launcher", [IN_GROUP, OWN_SESSION], ids=["in-group", "own-session"])
def test_a_failing_lp_pipe_leaving_a_background_process_fails_at_once(
        kit: Kit, launcher: str) -> None:  # noqa: F811
    pid_file = kit.root / "bg.pid"
    program = _leaver(kit, "p.sh", pid_file, status=2, body="cat > /dev/null",
                      launcher=launcher)
    kit.queue("q", f"|{program}", send_try=1)
    job = print_bytes(kit, "q", b"hello\n")
    try:
        err = watch_once(kit, "q", timeout=60)
        assert kit.states("q")[job] == "failed", err
        assert gone(int(pid_file.read_text()))
    finally:
        _stop(pid_file)


@pytest.mark.parametrize("launcher", [IN_GROUP, OWN_SESSION], ids=["in-group", "own-session"])
def test_a_data_filter_leaving_a_background_process_does_not_hold_the_send(
        kit: Kit, launcher: str) -> None:  # noqa: F811
    """Into an lp=| program (the filter's output a pipe lpfilter streams from). A process
    that left the group still carries the filter's mark: it is ended once the filter
    exits, and only then does the filter's record go (without the fix: the send hangs)."""
    pid_file = kit.root / "bg.pid"
    flt = _leaver(kit, "f.sh", pid_file, status=0, body="/bin/cat", launcher=launcher)
    sd, out = _filtered_queue(kit, flt)
    job = print_bytes(kit, "q", b"hello\n")
    try:
        err = watch_once(kit, "q", timeout=60)
        assert kit.states("q")[job] == "done", err
        assert out.read_bytes() == b"hello\n"
        assert gone(int(pid_file.read_text()))
        assert os.listdir(records_dir(str(sd))) == []
    finally:
        _stop(pid_file)


def test_a_session_member_in_another_process_group_is_ended(kit: Kit) -> None:  # noqa: F811
    pid_file = kit.root / "bg.pid"
    leave = (f"import os, time; os.setpgid(0, 0); open('{pid_file}.new', 'w').write("
             f"str(os.getpid())); os.rename('{pid_file}.new', '{pid_file}'); time.sleep(600)")
    program = kit.program("p.sh", "#!/bin/sh\ncat >/dev/null\n"
                                  f"/usr/bin/python3 -c \"{leave}\" </dev/null >/dev/null 2>&1 &\n"
                                  f"i=0; while [ ! -e {pid_file} ] && [ $i -lt 400 ]; do"
                                  " /bin/sleep 0.05; i=$((i+1)); done\nexit 0\n")
    kit.queue("q", f"|{program}")
    job = print_bytes(kit, "q", b"hello\n")
    try:
        err = watch_once(kit, "q", timeout=60)
        assert kit.states("q")[job] == "done", err
        pid = int(pid_file.read_text())
        assert gone(pid)
    finally:
        _stop(pid_file)


def test_a_data_filter_output_held_by_a_process_out_of_reach_fails_the_try(
        kit: Kit) -> None:  # noqa: F811
    """``env -i`` drops the mark: that process cannot be found, and the send gives up on
    the held pipe (bounded) with a line saying why, the job kept for another try."""
    pid_file = kit.root / "bg.pid"
    flt = _leaver(kit, "f.sh", pid_file, status=0, body="/bin/cat", launcher=OUT_OF_REACH,
                  then="/bin/sleep 0.5")
    _filtered_queue(kit, flt, send_try=1)
    job = print_bytes(kit, "q", b"hello\n")
    try:
        err = watch_once(kit, "q", timeout=60)  # without the fix: held for 600 s
        assert kit.states("q")[job] == "failed", err
        assert "still holds its output open" in err
    finally:
        _stop(pid_file)


def test_a_filters_own_failure_is_not_hidden_by_a_held_output(kit: Kit) -> None:  # noqa: F811
    """The filter exits 2 (JABORT: the job fails for good) leaving a process out of reach
    on its output: the job fails for the exit status, not retried for the held pipe."""
    pid_file = kit.root / "bg.pid"
    flt = _leaver(kit, "f.sh", pid_file, status=2, body="/bin/cat", launcher=OUT_OF_REACH)
    _filtered_queue(kit, flt)
    job = print_bytes(kit, "q", b"hello\n")
    try:
        err = watch_once(kit, "q", timeout=60)
        assert kit.states("q")[job] == "failed", err
        # without the fix: the try failed for the held pipe, hiding JABORT
        assert "still holds its output open" not in err
    finally:
        _stop(pid_file)
