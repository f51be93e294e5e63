"""A program lpfilter runs (an ``lp=|`` program, a data filter) that exits leaving a
background process holding its output pipe does not hold up the send: what is left of its
process group is ended once it exits, and its output's reader never waits for it."""
from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from filterrunkit import print_bytes, watch_once
from spoolkit import Kit, gone, kit  # noqa: F401 - a fixture

from lpfilter.children.orphans import records_dir


def _leaver(kit: Kit, name: str, pid_file: Path, *, status: int, body: str) -> Path:
    """A script that does ``body``, leaves ``sleep 600`` holding its output, exits."""
    return kit.program(name, f"#!/bin/sh\n{body}\n/bin/sleep 600 &\n"
                             f"echo $! > {pid_file}.new && mv {pid_file}.new {pid_file}\n"
                             f"exit {status}\n")


def _stop(pid_file: Path) -> None:
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


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


def test_a_failing_lp_pipe_leaving_a_background_process_fails_at_once(kit: Kit) -> None:  # noqa: F811
    pid_file = kit.root / "bg.pid"
    program = _leaver(kit, "p.sh", pid_file, status=2, body="cat > /dev/null")
    kit.queue("q", f"|{program}", send_try=1)
    job = print_bytes(kit, "q", b"hello\n")
    try:
        err = watch_once(kit, "q", timeout=60)
        assert kit.states("q")[job] == "failed", err
        assert gone(int(pid_file.read_text()))
    finally:
        _stop(pid_file)


def test_a_data_filter_leaving_a_background_process_on_stderr_does_not_linger(
        kit: Kit) -> None:  # noqa: F811
    """Into an lp=| program (the filter's output a pipe lpfilter streams from)."""
    pid_file, out = kit.root / "bg.pid", kit.root / "device.out"
    flt = _leaver(kit, "f.sh", pid_file, status=0, body="/bin/cat")
    device = kit.program("dev.sh", f"#!/bin/sh\ncat > {out}\n")
    kit.queue("q", f"|{device}", **{"if": str(flt)}, user="root")
    job = print_bytes(kit, "q", b"hello\n")
    try:
        err = watch_once(kit, "q", timeout=60)
        assert kit.states("q")[job] == "done", err
        assert out.read_bytes() == b"hello\n"
        assert gone(int(pid_file.read_text()))
    finally:
        _stop(pid_file)


def _escaper(kit: Kit, name: str, pid_file: Path, *, status: int, body: str) -> Path:
    """A script that does ``body``, leaves ``sleep 600`` in a session of its own (setsid:
    outside its process group) holding its output, and exits."""
    return kit.program(name, f"#!/bin/sh\n{body}\n/usr/bin/setsid /bin/sleep 600 &\n"
                             f"echo $! > {pid_file}.new && mv {pid_file}.new {pid_file}\n"
                             f"exit {status}\n")


def test_a_data_filter_whose_background_process_left_its_session_does_not_hold_the_send(
        kit: Kit) -> None:  # noqa: F811
    """The escaped process carries the filter's mark: it is ended once the filter exits,
    and only then does the filter's record go (without the fix: the send hangs)."""
    pid_file, out = kit.root / "bg.pid", kit.root / "device.out"
    flt = _escaper(kit, "f.sh", pid_file, status=0, body="/bin/cat")
    device = kit.program("dev.sh", f"#!/bin/sh\ncat > {out}\n")
    sd = kit.queue("q", f"|{device}", **{"if": str(flt)}, user="root")
    job = print_bytes(kit, "q", b"hello\n")
    try:
        err = watch_once(kit, "q", timeout=60)
        assert kit.states("q")[job] == "done", err
        assert out.read_bytes() == b"hello\n"
        assert gone(int(pid_file.read_text()))
        assert os.listdir(records_dir(str(sd))) == []
    finally:
        _stop(pid_file)


def test_an_lp_pipe_whose_background_process_left_its_session_fails_at_once(
        kit: Kit) -> None:  # noqa: F811
    pid_file = kit.root / "bg.pid"
    program = _escaper(kit, "p.sh", pid_file, status=1, body="cat > /dev/null")
    kit.queue("q", f"|{program}", send_try=1)
    job = print_bytes(kit, "q", b"hello\n")
    try:
        err = watch_once(kit, "q", timeout=60)
        assert kit.states("q")[job] == "failed", err
        assert gone(int(pid_file.read_text()))
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
    pid_file, out = kit.root / "bg.pid", kit.root / "device.out"
    flt = kit.program("f.sh", "#!/bin/sh\n/bin/cat\n/usr/bin/env -i /usr/bin/setsid"
                              f" /bin/sleep 600 &\necho $! > {pid_file}.new && mv"
                              f" {pid_file}.new {pid_file}\n/bin/sleep 0.5\nexit 0\n")
    device = kit.program("dev.sh", f"#!/bin/sh\ncat > {out}\n")
    kit.queue("q", f"|{device}", **{"if": str(flt)}, user="root", send_try=1)
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
    pid_file, out = kit.root / "bg.pid", kit.root / "device.out"
    flt = kit.program("f.sh", "#!/bin/sh\n/bin/cat\n/usr/bin/env -i /usr/bin/setsid"
                              f" /bin/sleep 600 &\necho $! > {pid_file}.new && mv"
                              f" {pid_file}.new {pid_file}\nexit 2\n")
    device = kit.program("dev.sh", f"#!/bin/sh\ncat > {out}\n")
    kit.queue("q", f"|{device}", **{"if": str(flt)}, user="root")
    job = print_bytes(kit, "q", b"hello\n")
    try:
        err = watch_once(kit, "q", timeout=60)
        assert kit.states("q")[job] == "failed", err
        # without the fix: the try failed for the held pipe, hiding JABORT
        assert "still holds its output open" not in err
    finally:
        _stop(pid_file)
