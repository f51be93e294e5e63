"""A job without an OF filter, run by the sending thread straight into the backend's
descriptor: each data filter's fd 1 is the printer's socket or the ``lp`` file, as under
LPRng's lpd (lprng-filters.md §3), and no pipe or copying thread stands in between.

The order is ``Feed``'s (LPRng's ``Print_job``): ``ld`` (and a form feed if ``fo``), the
start banner, each copy through the data filter with the separator between copies, the end
banner, a form feed if ``fq``, ``tr``. lpfilter's own pieces go through the backend's
``Outlet.write`` between runs; a filter runs while the outlet is lent to it (blocking, read
and written by nobody else) and is waited for by ``Outlet.wait``: cancel, shutdown and the
stall limit kill it (with whatever it started) before the descriptor is taken back.
Banner and ``pr`` programs write temporary files, as in the pipe path, and are waited for
the same way. A filter's exit status means what it means in the pipe path
(``children.exits``), unless the printer reset the connection under it: then that is the
reason, and the try is retried. What a successful filter left running is killed: it must
not write into the printer after lpfilter's next piece.
"""
from __future__ import annotations

import os

from lpfilter.errors import LpfilterError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lpfilter.backends.request import Outlet
    from lpfilter.filters.feed import Feed
    from lpfilter.children.run import Running


class DirectJob:
    """A job's ``Feed`` as the backend's ``DirectSource``: written into the lent
    descriptor by the sending thread, or started into its pipe."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.what = feed.what

    def start(self) -> None:
        self.feed.start()

    def write_to(self, out: Outlet) -> None:
        self.feed.say_notes()
        produce(self.feed, out)


def produce(feed: Feed, out: Outlet) -> None:
    """The whole job into ``out`` (see the module's docstring)."""
    plan = feed.plan
    assert plan.of is None

    def await_exit(process: Running) -> None:
        try:
            out.wait(process.pid, feed.what)
        except BaseException:
            process.kill()
            raise

    feed.await_exit = await_exit
    out.write(plan.leader)
    if plan.start_banner is not None:
        out.write(feed._banner(plan.start_banner))
    body = feed._prepared()
    for copy in range(max(1, plan.copies)):
        if copy and plan.separator:
            out.write(plan.separator)
        os.lseek(body, 0, os.SEEK_SET)
        if plan.data is None:
            out.copy_file(body)
        else:
            _run_data_filter(feed, out, body)
    if plan.end_banner is not None:
        out.write(feed._banner(plan.end_banner))
    out.write(plan.trailer)


def _run_data_filter(feed: Feed, out: Outlet, body: int) -> None:
    """One copy: the data filter with fd 0 the file and fd 1 the printer itself."""
    assert feed.plan.data is not None
    with out.lend():
        process = feed.start_process(feed.plan.data, stdin=body, stdout=out.fd)
        try:
            feed._done(process)
        except LpfilterError:
            out.check()
            raise
        finally:
            process.kill_group()
