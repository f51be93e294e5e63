"""locks.own_start: this process's start time read from /proc, as psutil gives it to every
other process that looks (a lock's holder is checked with psutil against the start its
record names)."""
from __future__ import annotations

import os
import subprocess
import sys

import psutil

from lpfilter.locks import own_start, process_alive, process_start


def test_own_start_is_psutil_s_create_time() -> None:
    assert own_start() == psutil.Process().create_time() == process_start(os.getpid())
    assert process_alive(os.getpid(), own_start())


def test_a_forked_child_reads_its_own() -> None:
    """per_process: a child made by fork reads its start again (its record must name it,
    not its parent); compared with psutil's in the child."""
    own_start()  # the parent's, kept
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            mine = own_start()
            os.write(write_end, repr(mine == psutil.Process().create_time()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        got = reader.read()
    assert os.waitpid(pid, 0)[1] == 0
    assert got == b"True"


def test_a_pass_that_takes_its_lock_imports_no_psutil() -> None:
    """The point: a lock's record (watch --once, a daemon's start) needs no psutil."""
    code = ("import os, sys, tempfile\nfrom lpfilter.locks import ProcessLock\n"
            "lock = ProcessLock(os.path.join(tempfile.mkdtemp(), 'q.lock'), 'queue q')\n"
            "assert lock.acquire()\nprint('psutil' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
