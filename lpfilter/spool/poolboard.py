"""A pool's board: which server queue prints which job, and which is failing, for status.

The pool's worker rewrites ``.lpfilter/pool.json`` in the pool's spool directory when a
server takes a job, ends one, or fails (news, not a record: not fsynced); ``status``
reads it while a process serves the pool. Kept apart from ``spool/pool.py`` so that
``status`` does not import the worker.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

from lpfilter.errors import AccessError
from lpfilter.safefiles import atomic_write, open_regular

BOARD = "pool.json"
#: A board is a few hundred bytes; more is not one lpfilter wrote.
BOARD_MAX = 1 << 16
#: While jobs follow each other, the board is rewritten at most this often: a new file
#: each time, twice a job, was most of a pool's time (bench/README.md, round 9).
EVERY = 0.25


TYPE_CHECKING = False
if TYPE_CHECKING:  # for mypy only: a TypedDict is a dict at run time (and costs to build)
    from typing import TypedDict

    class ServerState(TypedDict):
        """One server queue of a pool, as status shows it."""

        queue: str
        #: The pool's job it is sending now ("" when none).
        job: str
        #: Why its printer is not used now ("" when it works).
        trouble: str
        #: Until when it is not used (0: it is).
        back_at: float
    from typing import Any


def write(state_dir: str, servers: list[ServerState], owner: int | None) -> None:
    """Replace the board (whole or old, never half)."""
    data = json.dumps({"servers": servers}, ensure_ascii=False).encode()
    atomic_write(os.path.join(state_dir, BOARD), data, 0o644, durable=False, owner=owner)


class Board:
    """The pool's board as its worker writes it: a change is written at once when the
    last write is EVERY seconds old, else it waits (``owed``) until the pool's dispatcher,
    which looks at least once a second, finds it ``due``, or the round ends."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._at = float("-inf")
        self.owed = False

    def put(self, state_dir: str, servers: list[ServerState], owner: int | None, *,
            now: bool = False) -> None:
        """The board changed: written now when ``now`` or when due (OSError: the caller's)."""
        self.owed = True
        if now or self.due():
            self.owed, self._at = False, self.clock()
            write(state_dir, servers, owner)

    def due(self) -> bool:
        return self.owed and self.clock() - self._at >= EVERY


def stuck(pool: str, servers: list[tuple[str, str]], problems: list[str],
          resting: list[float]) -> str:
    """The pool's status line when no server (queue, trouble) can take a due job now."""
    if not servers:
        why = "; ".join(problems) or "sv names no queue"
        return f"pool {pool} has no server queue to print on ({why})"
    troubles = "; ".join(f"{queue}: {trouble}" for queue, trouble in servers if trouble)
    when = time.strftime("%H:%M:%S", time.localtime(min(resting))) if resting else "later"
    return (f"no printer of pool {pool} can take a job now ({troubles or 'all busy'});"
            f" next try at {when}")


def read(state_dir: str) -> list[ServerState] | None:
    """The board, None when there is none (or it is not one lpfilter wrote)."""
    try:
        fd, info = open_regular(os.path.join(state_dir, BOARD))
    except (OSError, AccessError):  # none, or not a regular file (never followed)
        return None
    try:
        if info.st_size > BOARD_MAX:
            return None
        with open(fd, "rb", closefd=False) as handle:
            data: Any = json.loads(handle.read(BOARD_MAX))
    except (OSError, ValueError, TypeError, RecursionError):  # (nested too deeply)
        return None
    finally:
        os.close(fd)
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, list):
        return None
    try:
        return [{"queue": s["queue"], "job": str(s.get("job") or ""),
                 "trouble": str(s.get("trouble") or ""), "back_at": float(s.get("back_at") or 0)}
                for s in servers if isinstance(s, dict) and isinstance(s.get("queue"), str)]
    except (ValueError, TypeError, OverflowError):
        return None
