"""``lpfilter virtual-printer``: a JetDirect emulator to test a printcap without paper.

Runs in the foreground until SIGTERM/SIGINT (or ``--jobs N``), one line per job on
standard output; the first line says where it listens, so a script can use ``--port 0``.
``--ftp`` emulates the JetDirect FTP print server instead (needs pyftpdlib).
"""
from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator

from lpfilter.status import ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from lpfilter.commands.environment import Context
    from lpfilter.emulator.jetdirect import JobRecord


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; only loopback"
                             " addresses unless --allow-remote)")
    parser.add_argument("--port", type=_count,
                        help="TCP port (default 9100, with --ftp 2121; 0 picks a free one)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --host that is not a loopback address")
    parser.add_argument("--output", metavar="DIR",
                        help="store each job's bytes in DIR/job-NNNN.prn (with --ftp:"
                             " DIR/PORTn/NAME; default: discard)")
    parser.add_argument("--jobs", type=_count, metavar="N",
                        help="exit after N connections (with --ftp: N files)")
    parser.add_argument("--pages", type=_count, metavar="N",
                        help="pages per job (default: its form feeds, at least 1)")
    ftp = parser.add_argument_group("FTP print server (--ftp)")
    ftp.add_argument("--ftp", action="store_true",
                     help="be a JetDirect FTP print server (directories PORT1..PORT3; needs"
                          " pyftpdlib: pip install 'lpfilter[ftp]')")
    ftp.add_argument("--sessions", type=_count, default=3, metavar="N",
                     help="control connections at once; one more is told 421 (default 3)")
    ftp.add_argument("--password", metavar="WORD",
                     help="the only password accepted (default: any user, any password)")
    ftp.add_argument("--no-pasv", action="store_true",
                     help="refuse passive mode (500 to PASV and EPSV)")
    behave = parser.add_argument_group("misbehaving (with --ftp only --close-after, --slow"
                                       " and --idle-timeout apply)")
    behave.add_argument("--refuse", type=_count, default=0, metavar="N",
                        help="refuse connections (ECONNREFUSED) for N windows at the start")
    behave.add_argument("--refuse-window", type=_seconds, default=1.0, metavar="SECONDS",
                        help="length of a --refuse window (default 1)")
    behave.add_argument("--reset-after", type=_count, metavar="BYTES",
                        help="reset each connection (RST) after BYTES bytes")
    behave.add_argument("--close-after", type=_count, metavar="BYTES",
                        help="close each connection after BYTES bytes (0: at once)")
    behave.add_argument("--stall", action="store_true", help="accept, then never read")
    behave.add_argument("--no-end", action="store_true",
                        help="never send PJL USTATUS JOB END")
    behave.add_argument("--end-delay", type=_seconds, default=0.0, metavar="SECONDS",
                        help="send USTATUS JOB END this long after the EOJ")
    behave.add_argument("--close-on-half-close", action="store_true",
                        help="close at once when the client half-closes, dropping replies")
    behave.add_argument("--slow", type=_count, metavar="BYTES_PER_SECOND",
                        help="read at most this fast")
    behave.add_argument("--garbage", action="store_true",
                        help="send random bytes on the back channel (at most 1 MiB)")
    behave.add_argument("--idle-timeout", type=_seconds, metavar="SECONDS",
                        help="close a connection idle this long (default 90, with --ftp 900"
                             " as JetDirect does; 0: never)")


def run(ctx: Context) -> ExitStatus:
    from lpfilter.emulator.jetdirect import Behaviour, VirtualPrinter
    from lpfilter.errors import LpfilterError, UsageError
    args = ctx.args
    if args.ftp:
        return _run_ftp(ctx)
    if args.port is None:
        args.port = 9100
    out: TextIO = ctx.stdout
    behaviour = Behaviour(pages=args.pages, reset_after=args.reset_after,
                          close_after=args.close_after, stall=args.stall, no_end=args.no_end,
                          end_delay=args.end_delay,
                          close_on_half_close=args.close_on_half_close,
                          slow=args.slow or None, garbage=args.garbage)

    def report(record: JobRecord) -> None:
        names = f" ({', '.join(record.names)})" if record.names else ""
        where = f" -> {record.path}" if record.path else ""
        print(f"job {record.number}{names}: {record.size} bytes, {record.pages} pages{where};"
              f" {record.ended}", file=out, flush=True)

    printer = VirtualPrinter(args.host, args.port, args.output, behaviour, jobs=args.jobs,
                             idle_timeout=90.0 if args.idle_timeout is None
                             else args.idle_timeout, refuse_window=args.refuse_window,
                             allow_remote=args.allow_remote, on_job=report)
    try:
        if args.refuse:
            printer.refuse(args.refuse)
        try:
            printer.open()
        except UnicodeError:  # (a ValueError: the idna codec refused --host, "a..b")
            raise _bad_host(args.host, args.port) from None
        except ValueError as exc:
            raise UsageError(f"{exc}: give --allow-remote to listen there") from None
        except OSError as exc:
            raise LpfilterError(f"cannot listen on {args.host} port {args.port}:"
                                f" {exc.strerror or exc}") from None
        with _stop_on_signals(printer.stop_soon):
            print("listening on %s %s" % printer.address, file=out, flush=True)
            printer.serve()
    finally:
        printer.close()
    return ExitStatus.OK


def _run_ftp(ctx: Context) -> ExitStatus:
    """The FTP print server: one line per received file."""
    import logging

    from lpfilter import logs
    from lpfilter.errors import LpfilterError, UsageError
    args = ctx.args
    out: TextIO = ctx.stdout
    try:
        from lpfilter.emulator.ftp import FtpBehaviour, FtpJob, VirtualFtpPrinter
    except ImportError:
        raise LpfilterError("the FTP virtual printer needs pyftpdlib: pip install"
                            " 'lpfilter[ftp]' (or pip install pyftpdlib)") from None
    logs.settle()  # the edge's configuration first: this reads and sets levels
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("pyftpdlib").setLevel(logging.WARNING)  # one line per file is ours
    received = 0

    def report(job: FtpJob) -> None:
        nonlocal received
        received += 1
        where = f" -> {job.path}" if job.path else ""
        ended = "complete" if job.complete else "incomplete: the connection was dropped"
        print(f"file {job.number} ({job.directory}/{job.name}): {job.size} bytes{where};"
              f" {ended}", file=out, flush=True)

    behaviour = FtpBehaviour(passive=not args.no_pasv, drop_after=args.close_after,
                             slow=args.slow or None)
    port = 2121 if args.port is None else args.port
    try:
        printer = VirtualFtpPrinter(args.host, port, args.output, behaviour,
                                    sessions=args.sessions,
                                    idle_timeout=900.0 if args.idle_timeout is None
                                    else args.idle_timeout, password=args.password,
                                    allow_remote=args.allow_remote, on_job=report)
    except UnicodeError:
        raise _bad_host(args.host, port) from None
    except ValueError as exc:
        raise UsageError(f"{exc}: give --allow-remote to listen there") from None
    except OSError as exc:
        raise LpfilterError(f"cannot listen on {args.host} port {port}:"
                            f" {exc.strerror or exc}") from None
    try:
        with _stop_on_signals(printer.stop):
            print("listening on %s %s (FTP)" % printer.address, file=out, flush=True)
            printer.serve(until=lambda: args.jobs is not None and received >= args.jobs)
    finally:
        printer.close()
    return ExitStatus.OK


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT only set the printer's stop flag; it ends within a tick."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, lambda *_: stop())
                for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _bad_host(host: str, port: int) -> Exception:
    """--host that no lookup can take (an empty or over-long label)."""
    from lpfilter.errors import UsageError
    return UsageError(f"cannot listen on {host} port {port}: not a valid host name or"
                      " address (give an address, such as 127.0.0.1 or ::1)")
