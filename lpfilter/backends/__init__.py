"""Backends: how a job's bytes reach a printer, one per ``lp=`` form.

Every backend has the same tiny interface: ``send(request) -> SendResult``, raising
``TransientError`` (try again later), ``JobRefused``/``HoldJob``/``RemoveJob`` (this job is
done trying) or ``JobInterrupted`` (stopped on purpose). The request (``request.py``)
carries the backend's own typed settings (``settings.settings_for``: read from the printcap
entry for each send) and the caller's ``Reporter``. The registry here maps a destination
kind to its backend class and imports it only when a job needs it; ``settings.SETTINGS``
maps it to its settings class.
"""
from __future__ import annotations

import sys

from lpfilter.backends.request import Backend, Reporter, SendRequest, SendResult
from lpfilter.errors import JobRefused

__all__ = ["Backend", "Reporter", "SendRequest", "SendResult", "backend_for", "preload"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.printcap.destination import Destination


_REGISTRY: dict[str, str] = {
    "device": "lpfilter.backends.device:DeviceBackend",
    "pipe": "lpfilter.backends.pipe:PipeBackend",
    "socket": "lpfilter.backends.jetdirect:JetDirectBackend",
    "ftp": "lpfilter.backends.ftp:FtpBackend",
    "lpd": "lpfilter.backends.lpd:LpdBackend",
}


def backend_for(destination: Destination) -> Backend:
    """The backend for a destination; a form without one fails the job with a clear reason."""
    target = _REGISTRY.get(destination.kind)
    if target is None:
        reason = getattr(destination, "reason", None) or (
            f"no backend for {destination.kind} destinations in this lpfilter version")
        raise JobRefused(f"lp={destination.display()}: {reason}")
    module, _, name = target.partition(":")
    cls = getattr(_imported(module), name)
    return cls()  # type: ignore[no-any-return]


def preload(destination: Destination) -> None:
    """Import the destination's backend now. ``lpfilter filter`` does it before it reads
    the job, so that the import (2-3 ms) is not between the job's last byte from lpd and
    its first at the printer; a kind without a backend is refused later, by ``backend_for``."""
    target = _REGISTRY.get(destination.kind)
    if target is not None:
        _imported(target.partition(":")[0])


def _imported(module: str) -> object:
    """``__import__`` itself, as commands.registry does: the importlib package brings
    warnings with it (0.5 ms of every ``lpfilter filter``)."""
    __import__(module)
    return sys.modules[module]
