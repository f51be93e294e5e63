"""What ``status`` says about printer pools: a pool's servers and what each one is doing,
and the pool a server queue serves (as LPRng's lpq says "subservers lp2, lp3" and "serving
lp"); imported only for those queues (the server queue a pool's job prints on is in
status_cmd's job table)."""
from __future__ import annotations

import time

from lpfilter.text import visible

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.spool.queueinfo import QueueData


def lines(data: QueueData) -> list[str]:
    """The pool lines of one queue's status ([] for a queue that is neither pool nor server)."""
    found: list[str] = []
    if data.get("serving"):
        found.append(f"  serving pool {visible(str(data['serving']))} (its jobs print here too)")
    pool = data.get("pool")
    if not pool:
        return found
    board = {str(s.get("queue")): s for s in pool.get("board") or []}
    found.append(f"  subservers: {', '.join(visible(n) for n in pool['servers'])}")
    if not board:
        return found
    now = time.time()
    for name in pool["servers"]:
        state = board.get(name)
        if state is None:
            doing = "not usable (see lpfilter checkpc)"
        elif state.get("job"):
            doing = f"printing job {visible(str(state['job']))}"
        elif state.get("trouble") and float(state.get("back_at") or 0) > now:
            when = time.strftime("%H:%M:%S", time.localtime(float(state["back_at"])))
            doing = f"failing ({visible(str(state['trouble']))}); not used until {when}"
        elif state.get("trouble"):
            doing = f"failed last time ({visible(str(state['trouble']))}); tried again next"
        else:
            doing = "free"
        found.append(f"    {visible(name)}: {doing}")
    return found

