"""The print server against what the review of issue 14 found: descriptors kept per
request, the loopback peer's real user, the connection limits per class and per client,
the status file read safely, listening without IPv6, accept out of descriptors, a bounded
local answer. Real daemons, real sockets on loopback, real users."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from spoolkit import Kit, kit, wait_served, wait_until  # noqa: F401 - fixture

from lpfilter.protocols import lpdlocal


def _local(path: str, request: bytes) -> dict[str, object]:
    """One local request over the daemon's Unix socket, its whole JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(path)
        sock.sendall(request)
        data = b""
        for _ in range(10000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return lpdlocal.parse_reply(data)


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_local_cancels_keep_no_descriptor_open(kit: Kit) -> None:
    kit.queue("q", kit.recorder(), lf="log")
    sock = str(kit.root / "lpfilter.sock")
    kit.env["LPFILTER_SOCKET"] = sock
    doc = kit.root / "doc.txt"
    doc.write_text("page\n")
    for _ in range(21):
        assert kit.run("print", "--hold", "-P", "q", str(doc)).returncode == 0
    daemon = kit.start("watch")
    wait_served(kit, "q", daemon)
    wait_until(lambda: Path(sock).exists(), what="the socket")

    def cancel(job: int) -> None:
        answer = _local(sock, lpdlocal.control_request("q", "root", "cancel", named=(job,)))
        assert answer["ok"] is True, answer
        assert answer["results"][0]["kind"] == "changed", answer  # type: ignore[index]

    cancel(1)  # the first one opens what stays open by design (the log of the queue...)
    before = _fds(daemon.pid)
    for job in range(2, 22):
        cancel(job)
    assert _fds(daemon.pid) <= before + 2  # was one more per cancel: 20 more
    assert "000021" not in kit.states("q")
    assert daemon.stop() == 0
