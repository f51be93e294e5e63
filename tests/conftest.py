"""Shared fixtures: every test gets its own parse-cache directory and a clean environment."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sharedkit import SHARED, require_shared


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the real /etc/printcap, the user's cache or a PRINTER from outside."""
    monkeypatch.setenv("LPFILTER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    for name in ("LPFILTER_PRINTCAP", "PRINTER", "LPDEST", "LPFILTER_NO_CACHE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared/ folder (cloned beside the repo): skipped when absent, unless
    CI is set (see sharedkit)."""
    return require_shared(SHARED)


@pytest.fixture
def fresh_python() -> Callable[[str], str]:
    """Runs code in a new interpreter (this one), checked, and gives what it printed: what
    a module imports is seen only in a process that had not imported it yet."""
    def run(code: str) -> str:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, timeout=60).stdout.strip()
    return run


def pytest_configure(config: pytest.Config) -> None:
    """An unclosed file or socket is a failure here, not a warning (as in pyftpdlib)."""
    config.addinivalue_line("filterwarnings", "error::ResourceWarning")
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnraisableExceptionWarning")
    # pyftpdlib (the test FTP server) still imports asyncore/asynchat on Python 3.11.
    config.addinivalue_line("filterwarnings",
                            "ignore:The asyn(core|chat) module is deprecated:DeprecationWarning")
    # A run started in the background of a non-interactive shell (``nohup pytest &``)
    # inherits SIGINT ignored, and so would every process a test starts (Python keeps an
    # ignored SIGINT ignored): the tests of Ctrl-C need it delivered. A handler here is
    # reset to the default in every child at exec.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Every thread a test starts must be gone when it ends (bounded wait)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    while leaked and time.monotonic() < deadline:
        time.sleep(0.05)
        leaked = [t for t in leaked if t.is_alive()]
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"
