"""Waiting for a child's exit without reaping it: the one loop behind ``Running.wait_for``,
the ``lp=|`` backend's wait and the lent descriptor's (``backends.lend``).

Never reaped here: whoever waits (``Running.wait``) ends what is left of the child's
process group first, while its pid is still the group's id. Through a pidfd (poll(2),
not select(2): a descriptor past 1023 is fine), or polled every ``POLL`` seconds where
the kernel has none.
"""
from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from types import TracebackType

#: Between two looks at a child's state when there is no pidfd.
POLL = 0.02


def pid_exited(pid: int) -> bool:
    """Whether child ``pid`` has exited (a zombie), without reaping it; one already
    reaped (no longer a child) counts as exited."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class ExitWait:
    """A child's exit waited for in bounded steps (``within``), its pidfd opened once;
    a context manager that closes it."""

    def __init__(self, pid: int, exited: Callable[[], bool] | None = None) -> None:
        #: Whether it has exited: ``pid_exited``, unless the caller knows better
        #: (``Running.exited`` also reads its ``Popen``'s return code).
        self.exited = exited or (lambda: pid_exited(pid))
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except OSError:  # no pidfd (an old kernel, or reaped): polled
            self._pidfd = None

    def within(self, timeout: float) -> bool:
        """Whether it has exited, waiting at most ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        while not self.exited():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._pidfd is None:
                time.sleep(min(left, POLL))
            else:
                poller = select.poll()
                poller.register(self._pidfd, select.POLLIN)
                poller.poll(left * 1000)
        return True

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def __enter__(self) -> ExitWait:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
