"""``of=`` with LPRng's suspend protocol, banners (``bp``/``bs``/``be``, ``hl``, ``sh``,
``print -h``, ``ab``, built-in ones), filters forwarded to a real LPRng lpd with
``lpd_bounce``, and a 100 MB filter output streamed with the worker's memory flat
(lprng-filters.md §1, §6)."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from lpdkit import RealLpd, real_lpd  # noqa: F401 - a fixture
from filterrunkit import lp_of as _lp
from filterrunkit import print_bytes as _print
from filterrunkit import printer  # noqa: F401 - a fixture
from filterrunkit import watch_once
from filterkit import of_filter
from spoolkit import Kit, kit, wait_until  # noqa: F401 - a fixture

from lpfilter.emulator.jetdirect import Behaviour, VirtualPrinter


def _watch(kit: Kit, queue: str) -> str:  # noqa: F811
    return watch_once(kit, queue, timeout=300)


def _printed(printer: VirtualPrinter) -> bytes:
    printer.wait_for("closed", 1, timeout=30)
    return next(iter(printer.records)).path.read_bytes()  # type: ignore[union-attr]


def _of(kit: Kit) -> tuple[Path, Path]:  # noqa: F811
    log = kit.root / "of.log"
    return of_filter(kit.root, log=log, upper=True), log


def test_of_carries_leader_and_trailer_and_is_suspended_for_the_data(
        kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    of, log = _of(kit)
    kit.queue("q", _lp(printer), of=str(of), ld="<ld>", tr="<tr>", mc=2, sf=False,
              **{"if": "-$ /bin/cat"}, user="root")
    job = _print(kit, "q", b"abc\n", "-K", "2")
    _watch(kit, "q")
    # Leader, the separating form feed and trailer through the OF (upper-cased), the
    # data from the data filter straight to the printer, in LPRng's order.
    assert _printed(printer) == b"<LD>abc\n\fabc\n<TR>"
    assert log.read_text().splitlines() == ["started -Fo", "stopping", "continued", "stopping",
                                            "continued", "ended"]
    assert kit.states("q") == {job: "done"}


def test_without_suspend_the_of_is_restarted(kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    of, log = _of(kit)
    kit.queue("q", _lp(printer), of=str(of), ld="<ld>", tr="<tr>", suspend_of_filter=False,
              user="root")
    _print(kit, "q", b"abc\n")
    _watch(kit, "q")
    assert _printed(printer) == b"<LD>abc\n<TR>"
    assert log.read_text().splitlines() == ["started -Fo", "ended", "started -Fo", "ended"]


def test_an_of_that_never_stops_fails_the_try_bounded(kit: Kit,  # noqa: F811
                                                       printer: VirtualPrinter) -> None:
    # It writes a byte every 0.1 s (so the stream never stalls) and never stops itself.
    ticker = kit.program("ticker.sh", "#!/bin/sh\nwhile :; do printf .; sleep 0.1; done\n")
    kit.queue("q", _lp(printer), of=f"-$ {ticker}", stall_timeout=2, send_try=1, user="root")
    job = _print(kit, "q", b"abc\n")
    _watch(kit, "q")
    ticket = kit.ticket("q", job)
    assert ticket["state"] == "failed"
    assert "did not stop itself within 2 s" in ticket["last_error"]


#: A banner program: prints the banner user it is given (LPRng's -L option).
BANNER = """#!/bin/sh
for arg; do case $arg in -L*) echo "BANNER $arg";; esac; done
"""


@pytest.mark.parametrize(("options", "args", "expected"), [
    ({}, (), b"BANNER -Lroot\nabc\n"),
    ({"hl": True}, (), b"abc\nBANNER -Lroot\n"),
    ({"sh": True}, (), b"abc\n"),
    ({}, ("-h",), b"abc\n"),
    ({"ab": True}, ("-h",), b"BANNER -Lroot\nabc\n"),
])
def test_banner_program_before_or_after_or_none(kit: Kit, printer: VirtualPrinter,  # noqa: F811
                                                options: dict[str, object],
                                                args: tuple[str, ...], expected: bytes) -> None:
    banner = kit.program("banner.sh", BANNER)
    kit.queue("q", _lp(printer), bp=str(banner), **options, user="root")
    _print(kit, "q", b"abc\n", "-U", "root", *args)
    _watch(kit, "q")
    assert _printed(printer).replace(b"-Auser", b"-Lroot") == expected


def test_bs_and_be_programs_and_ld_fo_fq_tr_order(kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    start = kit.program("start.sh", "#!/bin/sh\necho START\n")
    end = kit.program("end.sh", "#!/bin/sh\necho END\n")
    kit.queue("q", _lp(printer), bs=str(start), be=str(end), ld="<ld>", tr="<tr>", fo=True,
              fq=True, **{"if": "-$ /usr/bin/tr a-z A-Z"}, user="root")
    _print(kit, "q", b"abc\n")
    _watch(kit, "q")
    assert _printed(printer) == b"<ld>\fSTART\nABC\nEND\n\f<tr>"


def test_built_in_banners(kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    kit.queue("q", _lp(printer), generate_banner=True, user="root")
    _print(kit, "q", b"abc\n", "-J", "Report")
    _watch(kit, "q")
    printed = _printed(printer)
    assert printed.endswith(b"\fabc\n")
    for words in (b"Job:    Report (q-000001)", b"Queue:  q", b"User:"):
        assert words in printed


def test_no_banner_program_and_no_built_in_banner_sends_the_job_as_spooled(
        kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    kit.queue("q", _lp(printer), ld="<ld>", user="root")
    _print(kit, "q", b"abc\n")
    _watch(kit, "q")
    assert _printed(printer) == b"<ld>abc\n"


def test_filtered_job_forwarded_to_real_lprng_lpd_with_lpd_bounce(
        kit: Kit, real_lpd: RealLpd) -> None:  # noqa: F811
    kit.queue("q", real_lpd.queue, lpd_bounce=True, mc=2,
              **{"if": "-$ /usr/bin/tr a-z A-Z"}, user="root")
    job = _print(kit, "q", b"hello lpd\n", "-K", "2")
    _watch(kit, "q")
    assert real_lpd.wait_printed(20) == b"HELLO LPD\nHELLO LPD\n"
    assert kit.states("q") == {job: "done"}


def test_lpd_without_lpd_bounce_forwards_the_job_unfiltered(
        kit: Kit, real_lpd: RealLpd) -> None:  # noqa: F811
    kit.queue("q", real_lpd.queue, **{"if": "-$ /usr/bin/tr a-z A-Z"}, user="root")
    _print(kit, "q", b"hello lpd\n")
    _watch(kit, "q")
    assert real_lpd.wait_printed(10) == b"hello lpd\n"


def test_a_100_mb_filter_output_streams_with_memory_flat(kit: Kit, tmp_path: Path) -> None:  # noqa: F811
    size = 100 * 1024 * 1024
    with VirtualPrinter("127.0.0.1", 0, str(tmp_path / "printed"), Behaviour(pages=1)) as vp:
        kit.queue("q", _lp(vp), **{"if": f"-$ /usr/bin/head -c {size} /dev/zero"}, user="root")
        _print(kit, "q", b"small input\n")
        watch = kit.start("watch", "--once", "-P", "q")
        process = psutil.Process(watch.pid)
        peak = 0
        deadline = time.monotonic() + 300
        while watch.popen.poll() is None and time.monotonic() < deadline:
            try:
                peak = max(peak, process.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.02)
        assert watch.wait(30) == 0, watch.stderr()
        vp.wait_for("closed", 1, timeout=30)
        record = next(iter(vp.records))
    assert record.size == size
    # The whole output held in memory would be 100 MiB by itself; the worker (Python and
    # lpfilter loaded) stays far below.
    assert 0 < peak < 100 * 1024 * 1024, f"peak RSS {peak / 2**20:.0f} MiB"


def test_short_banner_is_bl_expanded(kit: Kit, printer: VirtualPrinter) -> None:  # noqa: F811
    kit.queue("q", _lp(printer), sb=True, user="root")
    _print(kit, "q", b"abc\n", "-C", "Z", "-J", "MyJob", "-U", "root")
    _watch(kit, "q")
    line, _, rest = _printed(printer).partition(b"\n")
    assert line.startswith(b"Z:root Job: MyJob Date: 20") and line.endswith(b".000")
    assert rest == b"abc\n"


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_killed_watcher_takes_its_filters_with_it(kit: Kit,  # noqa: F811
                                                   printer: VirtualPrinter) -> None:
    """I3: SIGKILL of the watcher while the OF filter has stopped itself and the data
    filter runs: both die with it (no OF left stopped for ever, no filter left running)."""
    log = kit.root / "of.log"
    of = of_filter(kit.root, log=log, upper=True)
    pidfile = kit.root / "if.pid"
    slow = kit.program("slow.sh", f"#!/bin/sh\necho $$ > {pidfile}\nexec /bin/sleep 300\n")
    kit.queue("q", _lp(printer), of=str(of), **{"if": f"-$ {slow}"}, sb=True, user="root")
    _print(kit, "q", b"hello\n")
    watcher = kit.start("watch", "--once", "-P", "q")
    filters: list[int] = []
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(),
                   what="the data filter started")
        filters = [int(pidfile.read_text())]
        filters += [p.pid for p in psutil.Process(watcher.popen.pid).children()
                    if any(str(of) in a for a in p.cmdline())]
        assert len(filters) == 2 and "stopping" in log.read_text()
        os.kill(watcher.popen.pid, signal.SIGKILL)
        watcher.popen.wait(timeout=30)
        wait_until(lambda: all(_gone(pid) for pid in filters), what="the filters ended")
    finally:
        for pid in filters:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
