"""``lpfilter demo``: the whole path on a virtual printer, in a temporary directory.

A JetDirect emulator on a free loopback port, a printcap with a PJL queue, a sample
document spooled and sent by the watcher's worker, the printer's status as it comes,
and at the end where the bytes landed and what accounting recorded. Nothing leaves the
machine.
"""
from __future__ import annotations

import argparse
import os
import sys

from lpfilter.status import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from lpfilter.commands.environment import Context
    from lpfilter.job import Job

PAGES = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the demo makes everything it needs in a new temporary directory."""


def sample_document() -> bytes:
    """A plain-text document of a few pages, each ended by a form feed, about 1 MiB."""
    pages = []
    for number in range(1, PAGES + 1):
        lines = [f"lpfilter demo, page {number} of {PAGES}", ""]
        lines += [f"{line:5d}  The quick brown fox jumps over the lazy dog. " * 2
                  for line in range(1, 3600)]
        pages.append("\n".join(lines))
    return "".join(page + "\n\f" for page in pages).encode()


def run(ctx: Context) -> ExitStatus:
    import tempfile

    from lpfilter import printcap
    from lpfilter.commands.terminal import TerminalObserver
    from lpfilter.emulator.jetdirect import Behaviour, VirtualPrinter
    from lpfilter.job import user_name
    from lpfilter.spool.store import SpoolStore
    from lpfilter.spool.submit import JobOptions, submit
    from lpfilter.spool.worker import QueueWorker
    out = ctx.stdout
    base = tempfile.mkdtemp(prefix="lpfilter-demo-")
    spool, printed = os.path.join(base, "spool"), os.path.join(base, "printer")
    os.mkdir(spool, 0o700)
    sample = os.path.join(base, "sample.txt")
    with open(sample, "wb") as document:
        document.write(sample_document())

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    behaviour = Behaviour(slow=8 * 1024 * 1024, end_delay=0.5)
    with VirtualPrinter("127.0.0.1", 0, output=printed, behaviour=behaviour) as printer:
        host, port = printer.address
        path = os.path.join(base, "printcap")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"demo|lpfilter demo queue:\\\n\t:lp={host}%{port}:sd={spool}:\\\n"
                         "\t:pjl:sync:pagecount:waitend=pjl:waitend_timeout#10:\\\n"
                         "\t:lf=log:af=acct:ps=status:cm=a JetDirect printer emulator:\\\n"
                         "\t:accounting_format=keyvalue:\n")
        open(os.path.join(spool, "acct"), "w").close()  # accounting only if the file exists
        say(f"virtual printer listening on {host}:{port} (a JetDirect emulator, loopback only)")
        say(f"printcap: {path}")
        entry = printcap.load([path]).lookup("demo")
        store = SpoolStore(spool, entry.name)
        store.ensure()
        job = submit(entry, store, sample, JobOptions(user_name(os.getuid()), "demo page"))
        say(f"spooled job demo-{job.id}: {job.size} bytes, {PAGES} pages, in {spool}")
        worker = QueueWorker(entry, lock_dir=os.path.join(base, "locks"))
        observer = TerminalObserver(sys.stdout if out is sys.stdout else out,
                                    force=True, after=0.0)
        worker.observer = observer
        worker.serve(burst=True, wait_retries=True,
                     until=lambda: (store.read(job.id) or job).final)
        observer.close()
    return _report(say, store.read(job.id) or job, base, path)


def _report(say: Callable[[str], None], final: Job, base: str, path: str) -> ExitStatus:
    """What became of the demo job, and where to look."""
    from lpfilter.job import JobState
    spool, printed = os.path.join(base, "spool"), os.path.join(base, "printer")
    if final.state is not JobState.DONE:
        say(f"the job ended {final.state}: {final.last_error}; look in {base}")
        return ExitStatus.JOB_FAILED
    confirmed = ("the printer confirmed it" if final.delivery == "confirmed"
                 else "the printer took it")
    pages = f", {final.pages} pages" if final.pages is not None else ""
    say(f"printed: {confirmed}{pages}, {final.bytes_sent} bytes sent")
    jobs = sorted(os.listdir(printed))
    if jobs:
        say(f"the printer received the bytes in {os.path.join(printed, jobs[-1])}")
    with open(os.path.join(spool, "acct"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if lines:
        say(f"accounting ({os.path.join(spool, 'acct')}): {lines[-1]}")
    say(f"log: {os.path.join(spool, 'log')}; try: lpfilter --printcap {path} status")
    say(f"(everything is in {base}; remove it when you are done)")
    return ExitStatus.OK
