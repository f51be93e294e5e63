"""The signals that stop a filter (lprm, lpd stopping): SIGTERM, SIGINT and SIGHUP.

Their handlers only name the signal to the run, which stops its send within a tick.
They are set through ``_signal``, the C module behind ``signal``: importing ``signal``
builds its three enums, ~3 M instructions (~0.7 ms) of every ``lpfilter filter`` that
lpd starts for a job (bench/README.md, round 12), and a filter needs none of them.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    import signal
    from typing import Any
else:
    try:
        import _signal as signal
    except ImportError:  # an interpreter without it has signal's own
        import signal

#: The signals a filter stops on, and the names it says them by.
STOPS = {int(signal.SIGTERM): "SIGTERM", int(signal.SIGINT): "SIGINT",
         int(signal.SIGHUP): "SIGHUP"}


def catch(stop: Callable[[str], None]) -> dict[int, Any]:
    """Make each of STOPS call ``stop`` with its name; the handlers that were there, for
    ``restore``. None is set ({}) where no handler may be set: outside the main thread
    (a test's), where ``signal.signal`` raises ValueError."""
    def handler(signum: int, _frame: object) -> None:
        stop(STOPS.get(signum, str(signum)))

    try:
        return {signum: signal.signal(signum, handler) for signum in STOPS}
    except ValueError:
        return {}


def restore(previous: dict[int, Any]) -> None:
    """Give back the handlers that ``catch`` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)
