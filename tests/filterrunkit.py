"""What the tests of filters under lpfilter's own spool share: a virtual JetDirect printer
on a free loopback port, the ``lp=`` naming it, ``print --no-wait`` of some bytes and one
``watch --once`` pass (never an internal error)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from spoolkit import Kit

from lpfilter.emulator.jetdirect import Behaviour, VirtualPrinter


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[VirtualPrinter]:
    with VirtualPrinter("127.0.0.1", 0, str(tmp_path / "printed"), Behaviour(pages=1)) as vp:
        yield vp


def lp_of(printer: VirtualPrinter) -> str:
    host, port = printer.address
    return f"{host}%{port}"


def print_bytes(kit: Kit, queue: str, data: bytes, *args: str) -> str:
    """Spool ``data`` as a job of ``queue``; returns its number."""
    source = kit.root / "doc.txt"
    source.write_bytes(data)
    done = kit.run("print", "--no-wait", "-P", queue, *args, str(source))
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1].removeprefix(f"{queue}-")


def watch_once(kit: Kit, queue: str, timeout: float = 120) -> str:
    """One pass; its stderr (a failed job's line). Never an internal error."""
    watch = kit.run("watch", "--once", "-P", queue, timeout=timeout)
    assert watch.returncode != 70 and "Traceback" not in watch.stderr, watch.stderr
    return watch.stderr
