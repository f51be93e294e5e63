"""lpfilter.memo: a result computed once, and once again in a forked child where asked."""
from __future__ import annotations

import os

from lpfilter.memo import once, per_process


def _counted(result: object) -> tuple[list[int], object]:
    calls: list[int] = []

    def compute() -> object:
        """Its doc string."""
        calls.append(os.getpid())
        return result

    return calls, compute


def test_once_computes_at_the_first_call_only_even_a_false_result() -> None:
    for result in (None, 0, "", [], "name"):
        calls, compute = _counted(result)
        kept = once(compute)  # type: ignore[arg-type]
        assert calls == []  # nothing at decoration
        assert kept() is result and kept() is result
        assert len(calls) == 1
        assert (kept.__name__, kept.__doc__) == ("compute", "Its doc string.")


def _in_child(function: object) -> bytes:
    """What ``function()`` returns in a forked child, as its repr."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write and leave at once, no cleanup of the parent's state
        try:
            os.write(write_end, repr(function()).encode())  # type: ignore[operator]
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as reader:
            got = reader.read()
    finally:
        assert os.waitpid(pid, 0)[1] == 0
    return got


def test_per_process_computes_again_in_a_forked_child_and_once_does_not() -> None:
    def pid() -> int:
        return os.getpid()

    mine, inherited = per_process(pid), once(pid)
    assert mine() == inherited() == os.getpid()
    assert int(_in_child(mine)) != os.getpid()  # the child's own
    assert int(_in_child(inherited)) == os.getpid()  # the parent's, kept
    assert mine() == os.getpid()  # the parent's is computed again, and right
