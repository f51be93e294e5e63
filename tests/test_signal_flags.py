"""Signal handlers only set flags (the guide's rule), because Python runs a handler in the
main thread between two of its bytecodes, also inside ``threading.Event``'s own code
while that thread holds the Event's lock (``clear``, ``set``, ``wait``). A handler that
called ``Event.set`` then waited for that lock forever: the daemon's SIGHUP while its
loop cleared the last reload, a second SIGTERM during its shutdown's ``stop.set``. Here
the handlers run with those locks held by the main thread, in a child process bounded in
time (a handler that takes the lock hangs it), and a real daemon takes reloads and a
stop. (The virtual printer's: test_virtual_printer.py.)"""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from spoolkit import Kit, kit, wait_served  # noqa: F401 - the fixture

#: Holds every Event lock of the watcher in the main thread and calls its handlers.
WATCHER_HANDLERS = textwrap.dedent("""
    import signal, threading
    from lpfilter.spool.watcher import Watcher
    watcher = Watcher(lambda: [], lock_dir="/nonexistent", once=False)
    events = [v for v in vars(watcher).values() if isinstance(v, threading.Event)]
    for event in events:
        event._cond.acquire()   # as inside Event.clear/set/wait, when the signal comes
    watcher._on_hup(signal.SIGHUP, None)
    watcher._on_stop(signal.SIGTERM, None)
    for event in events:
        event._cond.release()
    print("returned")
""")


def test_the_daemons_handlers_take_no_lock_the_main_thread_may_hold() -> None:
    done = subprocess.run([sys.executable, "-c", WATCHER_HANDLERS], capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, "returned\n"), done.stderr


def test_a_daemon_rereads_on_each_sighup_and_stops_on_sigterm(kit: Kit) -> None:  # noqa: F811
    kit.queue("q", "/dev/null")
    watcher = kit.start("watch", "-P", "q")
    wait_served(kit, "q", watcher)
    for _ in range(3):
        watcher.signal(signal.SIGHUP)
        time.sleep(0.2)
    assert watcher.popen.poll() is None, watcher.stderr()
    assert watcher.stop() == 0, watcher.stderr()
    assert "Traceback" not in watcher.stderr()
