"""lpd's filter stops on SIGTERM, SIGINT and SIGHUP through ``_signal`` (filtermode/stops.py):
the names it says, and the handlers it gives back. (test_filter_device sends the signals to
a real filter; test_startup checks that the filter imports no ``signal``.)"""
from __future__ import annotations

import signal
import threading

from lpfilter.filtermode import stops

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def test_catch_names_each_signal_and_restore_gives_back_the_handlers() -> None:
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    seen: list[str] = []
    previous = stops.catch(seen.append)
    try:
        assert set(previous) == {int(signum) for signum in STOP_SIGNALS}
        for signum in STOP_SIGNALS:
            signal.raise_signal(signum)
    finally:
        stops.restore(previous)
    assert seen == ["SIGTERM", "SIGINT", "SIGHUP"]
    assert {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} == before


def test_outside_the_main_thread_no_handler_is_set() -> None:
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    got: list[dict[int, object]] = []
    thread = threading.Thread(target=lambda: got.append(stops.catch(lambda _name: None)))
    thread.start()
    thread.join(10)
    assert got == [{}]
    assert {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} == before
