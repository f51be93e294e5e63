"""A site's shared printcap: one file on every host, `oh=` giving each host its part.

Two lpfilter daemons on this machine play two hosts: each runs in its own UTS namespace
(`unshare -u`) under its own host name, so LPRng's `oh=` selection (printcap/model.py)
picks a different entry of the same file for each. The workstation "desk" forwards queue
`laser` to the print server "printhost", whose `laser` prints.
"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
from serverkit import printed
from spoolkit import Kit, Proc, kit_at, wait_served

ROOT_NEEDED = "a UTS namespace (unshare -u) to give each daemon its own host name needs root"


def _as_host(kit: Kit, host: str, *args: str) -> list[str]:
    """``lpfilter ARGS`` run under host name ``host`` (a UTS namespace of its own)."""
    return ["unshare", "-u", "sh", "-c", 'hostname "$0" && exec "$@"', host, *kit.argv(*args)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(kit: Kit, host: str, queue: str, *args: str) -> Proc:
    kit.env["LPFILTER_SOCKET"] = str(kit.root / "lpfilter.sock")
    proc = kit.spawn(_as_host(kit, host, "watch", *args))
    wait_served(kit, queue, proc)
    return proc


def test_one_printcap_two_hosts_oh_selects_each_hosts_part(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        if os.environ.get("CI"):
            pytest.fail(ROOT_NEEDED)
        pytest.skip(ROOT_NEEDED)
    shared = tmp_path / "printcap"
    port = _free_port()
    (tmp_path / "printhost").mkdir()
    (tmp_path / "desk").mkdir()
    with kit_at(tmp_path / "printhost") as server, kit_at(tmp_path / "desk") as desk:
        server.queue("laser", server.recorder(), write=False, oh="printhost")
        desk.queue("laser", f"laser@127.0.0.1%{port}", write=False, oh="desk")
        shared.write_text(f"{desk.queues['laser']}\n{server.queues['laser']}\n")
        for kit in (server, desk):
            kit.env["LPFILTER_PRINTCAP"] = str(shared)
        server_proc = _start(server, "printhost", "laser", "--listen", f"127.0.0.1:{port}")
        desk_proc = _start(desk, "desk", "laser")
        document = tmp_path / "report.txt"
        document.write_bytes(b"from desk, printed on printhost\n" * 100)
        sent = desk.spawn(_as_host(desk, "desk", "print", "-P", "laser", str(document)))
        assert sent.wait(timeout=60) == 0, sent.stderr()
        assert printed(server, "laser") == [document.read_bytes()]
        (ticket,) = server.tickets("laser").values()
        assert ticket["peer"] == "127.0.0.1" and ticket["name"] == "report.txt"
        (forwarded,) = desk.tickets("laser").values()
        assert forwarded["state"] == "done"
        assert server_proc.stop() == 0 and desk_proc.stop() == 0
