"""A data filter's fd 1 is the output device itself, as under LPRng's lpd
(lprng-filters.md §3): the printer's TCP socket for ``lp=host%port``, the ``lp`` file for a
device queue, blocking; lpfilter's own pieces (PJL, ``ld``, banners, separators, ``fq``,
``tr``) around the runs in LPRng's order; the bytes counted; a printer that stops taking
data or resets is bounded and retried. An OF job and a character device keep the pipe."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from filterrunkit import lp_of as _lp
from filterrunkit import print_bytes as _print
from filterrunkit import printer  # noqa: F401 - a fixture
from filterrunkit import watch_once as _watch
from spoolkit import Kit, gone, kit, wait_until  # noqa: F401 - kit: a fixture

from lpfilter.emulator.jetdirect import Behaviour, VirtualPrinter
from lpfilter.protocols import pjl

PY = sys.executable

#: A data filter that says what its fd 1 is (S socket, F regular file, P pipe, ? other),
#: whether it is blocking (B) or not (N), records fd 1's target, then wraps its input.
FD_FILTER = r'''#!{python} -IS
import fcntl, json, os, stat, sys
mode = os.fstat(1).st_mode
kind = ("S" if stat.S_ISSOCK(mode) else "F" if stat.S_ISREG(mode) else
        "P" if stat.S_ISFIFO(mode) else "?")
blocking = "N" if fcntl.fcntl(1, fcntl.F_GETFL) & os.O_NONBLOCK else "B"
with open({out!r}, "a") as handle:
    handle.write(json.dumps(os.readlink("/proc/self/fd/1")) + "\n")
os.write(1, (kind + blocking + "<").encode() + sys.stdin.buffer.read() + b">")
'''




def _framed(kit: Kit) -> dict[str, object]:  # noqa: F811
    """ld, banners from programs, a form feed between copies and at the end, tr."""
    start = kit.program("start.sh", "#!/bin/sh\nprintf '<start>'\n")
    end = kit.program("end.sh", "#!/bin/sh\nprintf '<end>'\n")
    return {"ld": "<ld>", "tr": "<tr>", "ff_separator": True, "fq": True, "bs": str(start),
            "be": str(end), "mc": 2}


def _filter(kit: Kit) -> tuple[Path, Path]:  # noqa: F811
    record = kit.root / "fd1.jsonl"
    return kit.program("fd.py", FD_FILTER.format(python=PY, out=str(record))), record


def test_the_filter_writes_to_the_printers_socket_between_pjl_and_banners(
        kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    program, record = _filter(kit)
    kit.queue("q", _lp(printer), **{"if": str(program)}, pjl=True, **_framed(kit), user="root")
    job = _print(kit, "q", b"abc\n", "-K", "2")
    _watch(kit, "q")
    printer.wait_for("closed", 1, timeout=30)
    (printed,) = [r.path.read_bytes() for r in list(printer.records)]  # type: ignore[union-attr]
    name = re.search(rb'JOB NAME="([^"]*)"', printed)
    assert name is not None, printed
    job_name = name.group(1).decode()
    body = b"SB<abc\n>"  # a socket, blocking, the file from its start each copy
    assert printed == (pjl.job_start(job_name) + b"<ld><start>" + body + b"\f" + body
                       + b"<end>\f<tr>" + pjl.job_end(job_name))
    links = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(links) == 2 and all(link.startswith("socket:[") for link in links)
    ticket = kit.ticket("q", job)
    assert ticket["state"] == "done"
    # The printer's USTATUS JOB END, read after the filter gave the socket back.
    assert ticket["delivery"] == "confirmed" and ticket["bytes_sent"] == len(printed)
    [line] = [a for a in kit.accounting("q") if a["job"] == job]
    assert line["bytes"] == str(len(printed))


def test_the_filter_writes_to_the_device_file_itself(kit: Kit) -> None:  # noqa: F811
    device = kit.root / "device"
    device.write_bytes(b"before\n")
    program, record = _filter(kit)
    kit.queue("d", str(device), **{"if": str(program)}, **_framed(kit), user="root")
    job = _print(kit, "d", b"xyz\n", "-K", "2")
    _watch(kit, "d")
    body = b"FB<xyz\n>"
    assert device.read_bytes() == (b"before\n<ld><start>" + body + b"\f" + body
                                   + b"<end>\f<tr>")
    links = [json.loads(line) for line in record.read_text().splitlines()]
    assert links == [str(device), str(device)]
    assert kit.states("d") == {job: "done"}
    [line] = [a for a in kit.accounting("d") if a["job"] == job]
    assert line["bytes"] == str(len(device.read_bytes()) - len(b"before\n"))


@pytest.mark.parametrize(("code", "state"), [(1, "queued"), (2, "failed"), (3, "removed"),
                                             (6, "held")])
def test_exit_codes_still_decide_on_a_device_file(kit: Kit, code: int,  # noqa: F811
                                                  state: str) -> None:
    device = kit.root / "device"
    device.touch()
    program = kit.program("fail.sh", f"#!/bin/sh\ncat\necho 'jam {code}' >&2\nexit {code}\n")
    kit.queue("d", str(device), **{"if": f"-$ {program}"}, send_try=2, connect_interval=60,
              user="root")
    job = _print(kit, "d", b"data\n")
    _watch(kit, "d")
    ticket = kit.ticket("d", job)
    assert ticket["state"] == state and f"jam {code}" in ticket["last_error"]


def test_an_of_job_and_a_character_device_keep_the_pipe(kit: Kit,  # noqa: F811
                                                         printer: VirtualPrinter) -> None:
    program, record = _filter(kit)
    kit.queue("o", _lp(printer), **{"if": str(program), "of": "-$ /bin/cat"},
              suspend_of_filter=False, user="root")
    kit.queue("n", "/dev/null", **{"if": str(program)}, user="root")
    done = [_print(kit, queue, b"x\n") for queue in ("o", "n")]
    for queue in ("o", "n"):
        _watch(kit, queue)
    printer.wait_for("closed", 1, timeout=30)
    printed = [r.path.read_bytes() for r in list(printer.records)]  # type: ignore[union-attr]
    assert printed == [b"PB<x\n>"]
    links = [json.loads(line) for line in record.read_text().splitlines()]
    assert [link.split(":")[0] for link in links] == ["pipe", "pipe"]
    assert kit.states("o") == {done[0]: "done"} and kit.states("n") == {done[1]: "done"}


def test_a_printer_that_stops_reading_kills_the_filter_after_the_stall_limit(
        kit: Kit, tmp_path: Path) -> None:  # noqa: F811
    pid_file = kit.root / "cat.pid"
    program = kit.program("cat.sh", f"#!/bin/sh\necho $$ > {pid_file}\nexec cat\n")
    with VirtualPrinter("127.0.0.1", 0, str(tmp_path / "stalled"),
                        Behaviour(stall=True)) as stalled:
        kit.queue("q", _lp(stalled), **{"if": f"-$ {program}"}, stall_timeout=2, send_try=1,
                  user="root")
        job = _print(kit, "q", b"x" * (64 << 20))
        _watch(kit, "q")
    ticket = kit.ticket("q", job)
    assert ticket["state"] == "failed", ticket
    assert "the printer took no data for 2 s" in ticket["last_error"]
    assert gone(int(pid_file.read_text()))


def test_a_printer_reset_under_the_filter_is_retried_not_a_filter_failure(
        kit: Kit, tmp_path: Path) -> None:  # noqa: F811
    with VirtualPrinter("127.0.0.1", 0, str(tmp_path / "reset"),
                        Behaviour(reset_after=1000)) as resetting:
        kit.queue("q", _lp(resetting), **{"if": "-$ /bin/cat"}, send_try=2,
                  connect_interval=60, user="root")
        job = _print(kit, "q", b"y" * (32 << 20))
        _watch(kit, "q")
    ticket = kit.ticket("q", job)
    assert ticket["state"] == "queued", ticket
    assert "reset the connection" in ticket["last_error"]
    wait_until(lambda: not [p for p in os.listdir("/proc") if p.isdigit()
                            and _is_cat_of(int(p), kit)], what="no cat left running")


def _is_cat_of(pid: int, kit: Kit) -> bool:  # noqa: F811
    """Whether ``pid`` is a cat running in one of the kit's spool directories."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return exe.endswith("/cat") and cwd.startswith(str(kit.root))


def test_a_chattering_back_channel_waits_while_the_filter_writes(
        kit: Kit, tmp_path: Path) -> None:  # noqa: F811
    """1 MiB of back-channel noise: not read while cat owns the socket (the kernel holds
    it), read after; the job arrives whole."""
    data = bytes(range(256)) * (32 << 10)  # 8 MiB
    with VirtualPrinter("127.0.0.1", 0, str(tmp_path / "chatter"),
                        Behaviour(garbage=True)) as chatter:
        kit.queue("q", _lp(chatter), **{"if": "-$ /bin/cat"}, stall_timeout=60, user="root")
        job = _print(kit, "q", data)
        _watch(kit, "q")
        chatter.wait_for("closed", 1, timeout=30)
        printed = [r.path.read_bytes() for r in list(chatter.records)]  # type: ignore[union-attr]
    assert printed == [data]
    assert kit.states("q") == {job: "done"}


def test_cancel_kills_a_filter_writing_to_a_device_file(kit: Kit) -> None:  # noqa: F811
    device = kit.root / "device"
    device.touch()
    pid_file = kit.root / "slow.pid"
    program = kit.program("slow.sh", f"#!/bin/sh\necho $$ > {pid_file}\nprintf started\n"
                                     "exec sleep 600\n")
    kit.queue("d", str(device), **{"if": f"-$ {program}"}, user="root")
    job = _print(kit, "d", b"data\n")
    watch = kit.start("watch", "--once", "-P", "d")
    wait_until(lambda: device.read_bytes() == b"started", what="the filter's first bytes")
    done = kit.run("cancel", f"d-{job}")
    assert done.returncode == 0, done.stderr
    assert watch.wait(60) in (0, 8)
    assert kit.states("d")[job] == "cancelled"
    assert gone(int(pid_file.read_text()))


def test_a_silent_filter_on_a_device_file_is_killed_after_the_stall_limit(
        kit: Kit) -> None:  # noqa: F811
    device = kit.root / "device"
    device.touch()
    pid_file = kit.root / "silent.pid"
    program = kit.program("silent.sh", f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    kit.queue("d", str(device), **{"if": f"-$ {program}"}, stall_timeout=2, send_try=1, user="root")
    job = _print(kit, "d", b"data\n")
    _watch(kit, "d")
    ticket = kit.ticket("d", job)
    assert ticket["state"] == "failed" and "wrote nothing for 2 s" in ticket["last_error"]
    assert gone(int(pid_file.read_text()))


def test_a_bad_format_letter_is_said_on_the_direct_path_and_the_pipe(
        kit: Kit) -> None:  # noqa: F811
    """Format ``s`` (LPRng's bad formats: a i o s) prints as ``f``, said once as status
    before anything runs, whether the filter writes to the device file itself (``d``) or
    to the pipe (``n``, a character device)."""
    device = kit.root / "device"
    device.touch()
    program, _record = _filter(kit)
    for queue, lp in (("d", str(device)), ("n", "/dev/null")):
        kit.queue(queue, lp, **{"if": str(program)}, lf=str(kit.root / f"{queue}.log"),
                  user="root")
        job = _print(kit, queue, b"x\n", "-F", "s")
        _watch(kit, queue)
        said = (kit.root / f"{queue}.log").read_text()
        assert said.count("bad data file format 's', using 'f' format") == 1, said
        assert kit.states(queue) == {job: "done"}
    assert device.read_bytes() == b"FB<x\n>"
