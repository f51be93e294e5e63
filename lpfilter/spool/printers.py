"""A worker's hold on its printer between jobs: the printer lock and the kept backends.

The printer (device) lock is one file per destination, shared by every queue and process
that prints there, so one job at a time uses a printer. Backends are kept across a batch
(an FTP session stays open) and closed when the queue runs dry, or before waiting for the
printer lock: a worker that waits holds no session another may need.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from lpfilter import logs
from lpfilter.backends import Backend, backend_for
from lpfilter.backends.settings import settings_for
from lpfilter.locks import ProcessLock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.backends.settings import SendSettings
    from lpfilter.printcap.destination import Destination
    from lpfilter.printcap.entry import Entry

log = logs.getLogger(__name__)


def device_key(display: str) -> str:
    """A lock-file name for a printer: queues sharing a printer share this name."""
    from lpfilter.digest import sha256_hex  # (only a pass that sends: see digest.py)
    digest = sha256_hex(display.encode("utf-8", "surrogateescape"))[:16]
    safe = "".join(c if c.isalnum() else "_" for c in display)[:40]
    return f"device-{safe}-{digest}.lock"


class PrinterAccess:
    """One worker's printer lock and kept backends."""

    def __init__(self, lock_dir: str, purpose: str) -> None:
        self.lock_dir = lock_dir
        self.purpose = purpose
        self._device: ProcessLock | None = None
        self._lock_path: tuple[str, str] | None = None  # (a printer's display, its lock)
        self._backends: dict[str, Backend] = {}
        self._target: tuple[Entry, Destination] | None = None
        self._settings: tuple[Entry, Destination, SendSettings] | None = None

    def target(self, entry: Entry) -> Destination:
        """``entry``'s destination, classified once (an entry never changes; a reread
        printcap gives a new one): ~12 µs a job of a small-job burst's ~1 ms."""
        if self._target is None or self._target[0] is not entry:
            self._target = (entry, entry.destination())
        return self._target[1]

    def settings(self, destination: Destination, entry: Entry) -> SendSettings:
        """The backend's typed settings, built once from ``entry`` (~30 µs a job). One
        that cannot be read raises at each job, as before: only a success is kept."""
        kept = self._settings
        if kept is None or kept[0] is not entry or kept[1] != destination:
            kept = self._settings = (entry, destination, settings_for(destination, entry))
        return kept[2]

    def lock(self, destination: Destination, stop: Callable[[], bool]) -> ProcessLock | None:
        """The printer lock, waited for until ``stop()``; None when stopped first."""
        display = destination.display()
        if self._lock_path is None or self._lock_path[0] != display:  # (a digest: once)
            self._lock_path = (display, os.path.join(self.lock_dir, device_key(display)))
        path = self._lock_path[1]
        if self._device is None or self._device.path != path:
            if self._device is not None:
                self._device.release()
            self._device = ProcessLock(path, self.purpose)
        if not self._device.acquire():
            self.close_backends()
            if not self._device.acquire(timeout=float("inf"), stop=stop):
                return None
        return self._device

    def backend(self, destination: Destination) -> Backend:
        """The kept backend for ``destination`` (a new one for a new destination)."""
        key = f"{destination.kind} {destination.display()}"
        if key not in self._backends:
            self.close_backends()
            self._backends[key] = backend_for(destination)
        return self._backends[key]

    def close_backends(self) -> None:
        """End what backends keep open between jobs (an FTP session: QUIT)."""
        backends, self._backends = self._backends, {}
        for backend in backends.values():
            close = getattr(backend, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - closing must not stop the queue
                    log.exception("%s: closing a backend failed", self.purpose)

    def close(self) -> None:
        self.close_backends()
        if self._device is not None:
            self._device.release()
            self._device = None
