"""``lpc`` with no command, as LPRng's and BSD's: each line of standard input is a command
(``stop q``, ``status``, ``?``), its errors said and the next line read, until ``quit``,
``exit`` or the end; ``lpc>`` prompts a terminal. The installed command as a process."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import time

from spoolkit import Kit, kit  # noqa: F401 - kit: a fixture

from lpfilter.spool.control import read_control
from lpfilter.spool.store import SpoolStore


def stopped(kit: Kit, queue: str) -> bool:
    store = SpoolStore(str(kit.sd(queue)), queue)
    try:
        return read_control(store.state).printing_disabled
    finally:
        store.close()


def test_each_line_is_a_command_until_quit(kit: Kit) -> None:
    kit.queue("q", "/dev/null")
    kit.queue("r", "/dev/null")
    lines = "status q\nstop q\n\nbogus\n-P q\nstop r\nquit\nstart q\n"
    run = subprocess.run(kit.argv("lpc"), input=lines, env=kit.env, cwd=kit.root, text=True,
                         capture_output=True, timeout=60, check=False)
    assert run.returncode == 2, run  # the worst line's: bogus, a usage error
    assert "invalid choice: 'bogus'" in run.stderr and "Traceback" not in run.stderr
    assert "lpfilter lpc: a command, please" in run.stderr  # a line of options only
    assert run.stdout.count("Printer: ") == 2 and "q@" in run.stdout, run.stdout
    assert stopped(kit, "q") and stopped(kit, "r")  # 'start q' came after quit


def test_p_applies_to_every_line_and_the_end_of_input_ends_it(kit: Kit) -> None:
    kit.queue("q", "/dev/null")
    run = subprocess.run(kit.argv("lpc", "-P", "q"), input="stop\n?\n", env=kit.env,
                         cwd=kit.root, text=True, capture_output=True, timeout=60, check=False)
    assert (run.returncode, run.stderr) == (0, ""), run
    assert "stopped" in run.stdout and "  help       this list" in run.stdout
    assert stopped(kit, "q")


def test_a_terminal_gets_the_prompt(kit: Kit) -> None:
    kit.queue("q", "/dev/null")
    main, child = pty.openpty()
    proc = subprocess.Popen(kit.argv("lpc"), stdin=child, stdout=child, stderr=child,
                            env=kit.env, cwd=kit.root)
    os.close(child)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"lpc> " not in seen and time.monotonic() < deadline:
            if select.select([main], [], [], 0.5)[0]:
                seen += os.read(main, 1024)
        assert b"lpc> " in seen, seen
        os.write(main, b"stop q\n")
        while seen.count(b"lpc> ") < 2 and time.monotonic() < deadline:
            if select.select([main], [], [], 0.5)[0]:
                seen += os.read(main, 1024)
        os.write(main, b"exit\n")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        os.close(main)
    assert b"q@" in seen and b"stopped" in seen, seen
    assert stopped(kit, "q")
