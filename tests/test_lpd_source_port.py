"""``lpd_reserved_port`` (issue 13): as root, LPD forwarding connects from a port in
LPRng's ``originate_port`` range (default 512-1023; ``721 731`` for RFC 1179's), the highest
free one first, skipping ports in use; off by default, and never for a process that may not
bind such ports (then an ordinary port, as LPRng's clients do). The scripted server records
the port each connection came from."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from lpdkit import MakeScripted, scripted_lpd  # noqa: F401 - scripted_lpd is a fixture
from spoolkit import Kit, kit  # noqa: F401 - kit is a fixture

from lpfilter.backends.settings import LpdSettings, settings_for
from lpfilter.printcap import load

ROOT = os.geteuid() == 0


def _send_one(kit: Kit, server_port: int, **options: object) -> None:  # noqa: F811
    kit.queue("q", f"q@127.0.0.1%{server_port}", **options)
    path = kit.root / "job.bin"
    path.write_bytes(b"source port\n")
    assert kit.run("print", "-P", "q", "--no-wait", str(path)).returncode == 0
    assert kit.run("watch", "--once", "-P", "q").returncode == 0
    assert set(kit.states("q").values()) == {"done"}


def _hold(sock: socket.socket, high: int, low: int) -> int:
    """Bind ``sock`` to the highest port from ``high`` down that is free; that port."""
    for port in range(high, low - 1, -1):
        try:
            sock.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
    raise AssertionError(f"no free port in {low}-{high}")


def test_an_ordinary_source_port_by_default(kit: Kit, scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server = scripted_lpd()
    _send_one(kit, server.port)
    server.stop()
    (connection,) = server.connections
    assert connection.peer_port >= 1024


def test_lpd_reserved_port_takes_the_highest_free_port_of_originate_port(
        kit: Kit, scripted_lpd: MakeScripted) -> None:  # noqa: F811
    server = scripted_lpd()
    held = 0
    with socket.socket() as taken:
        if ROOT:  # a port of the range in use (the highest one free now) is skipped
            held = _hold(taken, 1023, 600)
        _send_one(kit, server.port, lpd_reserved_port=True, originate_port="600 1023")
    server.stop()
    (connection,) = server.connections
    if ROOT:
        assert 600 <= connection.peer_port <= 1023 and connection.peer_port != held
    else:  # a non-root process cannot bind below 1024: an ordinary port
        assert connection.peer_port >= 1024


def test_originate_port_settings(tmp_path: Path) -> None:
    (tmp_path / "printcap").write_text("a:lp=q@h\n"
                                       "b:lp=q@h:lpd_reserved_port:originate_port=721 731\n"
                                       "c:lp=q@h:lpd_reserved_port:originate_port=junk\n"
                                       "d:lp=q@h:lpd_reserved_port\n")
    pc = load([str(tmp_path / "printcap")])
    found = {}
    for name in "abcd":
        entry = pc.lookup(name)
        settings = settings_for(entry.destination(), entry)
        assert isinstance(settings, LpdSettings)
        found[name] = settings.source_ports
    if ROOT:
        assert found == {"a": None, "b": (721, 731), "c": (512, 1023), "d": (512, 1023)}
    else:
        assert found == dict.fromkeys("abcd")
