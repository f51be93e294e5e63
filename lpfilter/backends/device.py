"""``lp=/path``: a device or file, opened for append and never created (as LPRng does).

A missing or unopenable device is a transient failure (LPRng retries an open that
fails): a printer switched off or a USB device not yet there is not a reason to fail.
"""
from __future__ import annotations

import errno
import os
import stat

from lpfilter.backends.request import SendRequest, SendResult
from lpfilter.backends.settings import DeviceSettings
from lpfilter.backends.stream import Pump, send_body
from lpfilter.errors import JobRefused, TransientError

Request = SendRequest[DeviceSettings]


def _lock_device(fd: int, request: Request) -> None:
    """``lk``: lock the device against other programs, still hearing cancel and shutdown."""
    import fcntl
    import time

    from lpfilter.backends.stream import TICK
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        request.check()
        time.sleep(TICK)


class DeviceBackend:
    """Write the job to a device or an existing file."""

    def send(self, request: Request) -> SendResult:
        path = request.destination.display()
        settings = request.settings
        flags = os.O_RDWR if settings.read_write else os.O_WRONLY
        flags |= os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
        # A file is appended to, never truncated (LPRng's O_APPEND); on a character device
        # O_APPEND means nothing but stops sendfile(2), so it is left out there.
        try:
            regular = not stat.S_ISCHR(os.stat(path).st_mode)
        except OSError:
            regular = True
        flags |= os.O_APPEND if regular else 0
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise TransientError(f"{path} does not exist (lpfilter never creates the lp"
                                 " device or file; create it or fix lp)") from None
        except OSError as exc:
            raise TransientError(f"cannot open {path}: {exc.strerror}") from None
        try:
            if settings.lock:
                _lock_device(fd, request)
            pump = Pump(fd, interrupted=request.reporter.interrupted,
                        first_byte=request.reporter.first_byte, idle_timeout=settings.stall,
                        progress=request.progress, sendfile=not regular, what=path)
            try:
                if request.direct is None:  # no data filter writes to the device itself
                    sent = send_body(pump, request, settings.framing)
                else:  # (see jetdirect._stream)
                    from lpfilter.backends.lend import send_lent
                    sent = send_lent(pump, request, settings.framing)
            finally:
                pump.close()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EIO, errno.EPIPE, errno.ENXIO):
                raise TransientError(f"writing {path}: {exc.strerror}") from None
            raise JobRefused(f"writing {path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return SendResult(sent, "sent", message=f"{sent} bytes written to {path}")
