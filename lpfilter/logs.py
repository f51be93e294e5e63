"""Module loggers that import ``logging`` only when a record is kept.

``logging`` brings ``traceback`` (with ``tokenize``, ``linecache`` and ``textwrap``),
``string``, ``weakref`` and ``threading``: about 6 ms, a fifth of what ``lpfilter print``
costs beyond the interpreter's own start (bench/README.md), and at its default level a quick
command keeps no record at all. So a module takes its logger here, ``log =
logs.getLogger(__name__)``: a handle on ``logging.getLogger(__name__)`` (the same logger,
handlers, levels and filters) that imports ``logging`` when a record is made.

The command edge (``lpfilter.cli``) is still the only place that configures logging. When it
runs as the process's own command at the default level, it calls ``defer(level,
configure)``: a record below ``level`` is then dropped without importing ``logging``, and the
first one at or above it runs ``configure`` first. A command that sets levels itself calls
``settle()`` first. Without a deferred configuration (``-v``, ``--debug``, the daemon, tests,
a program that imports lpfilter) every record goes to ``logging`` as it is.
"""
from __future__ import annotations

import _thread  # (threading's own lock, without threading's import)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from typing import Any

#: ``logging``'s own level numbers (fixed by its documentation), without importing it.
DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40


class _Deferred:
    """The edge's configuration, until the first record it keeps (at most one)."""

    def __init__(self) -> None:
        self.level: int | None = None
        self.configure: Callable[[], None] | None = None
        #: Loggers (and their children) whose INFO records are kept too (``watch``'s).
        self.loud: tuple[str, ...] = ()
        #: Held while the configuration runs: another thread's first record waits for it
        #: (a watch's queues each have a thread), rather than reach an unset level. An
        #: RLock: a record the configuration itself makes must not wait for itself.
        self.lock = _thread.RLock()


#: The process's logging configuration is global by nature (so is ``logging``'s own): this
#: holds only what the edge deferred, and only until the first record it keeps.
_DEFERRED = _Deferred()


def defer(level: int, configure: Callable[[], None], loud: tuple[str, ...] = ()) -> None:
    """Drop records below ``level`` unseen (but the INFO ones of ``loud`` loggers, which
    ``configure`` sets to INFO); run ``configure`` before the first other one."""
    _DEFERRED.level, _DEFERRED.configure, _DEFERRED.loud = level, configure, loud


def settle() -> None:
    """Run the deferred configuration now (before code sets ``logging``'s levels itself)."""
    with _DEFERRED.lock:  # (taken before it runs: run once, even if it fails or logs)
        configure, _DEFERRED.configure = _DEFERRED.configure, None
        if configure is not None:
            configure()
        forget()


def forget() -> None:
    """Drop a deferred configuration unrun (its command ended without a record kept)."""
    _DEFERRED.level = _DEFERRED.configure = None
    _DEFERRED.loud = ()


def _kept(level: int, name: str) -> bool:
    """Is a record at ``level`` of logger ``name`` kept? False only while a deferred level
    drops it."""
    if _DEFERRED.level is None:
        return True
    if level < _DEFERRED.level and not (level >= INFO and _loud(name)):
        return False
    settle()
    return True


def _loud(name: str) -> bool:
    return any(name == loud or name.startswith(f"{loud}.") for loud in _DEFERRED.loud)


class Logger:
    """``logging.getLogger(name)``, imported and looked up at the first record kept.
    ``stacklevel=2`` makes a record's file, line and function the caller's, not this
    module's."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<lpfilter.logs.Logger {self.name}>"

    def logger(self) -> logging.Logger:
        import logging
        return logging.getLogger(self.name)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's own name
        return _kept(level, self.name) and self.logger().isEnabledFor(level)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if _kept(DEBUG, self.name):
            self.logger().debug(msg, *args, stacklevel=2, **kwargs)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if _kept(INFO, self.name):
            self.logger().info(msg, *args, stacklevel=2, **kwargs)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if _kept(WARNING, self.name):
            self.logger().warning(msg, *args, stacklevel=2, **kwargs)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if _kept(ERROR, self.name):
            self.logger().error(msg, *args, stacklevel=2, **kwargs)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if _kept(ERROR, self.name):
            self.logger().exception(msg, *args, stacklevel=2, **kwargs)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if _kept(level, self.name):
            self.logger().log(level, msg, *args, stacklevel=2, **kwargs)


def getLogger(name: str) -> Logger:  # noqa: N802 - logging's own name
    """The module logger ``name`` (``logging.getLogger(name)`` from its first record)."""
    return Logger(name)
