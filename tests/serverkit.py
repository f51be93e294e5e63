"""Helpers for tests of lpfilter's print server: a real ``lpfilter watch --listen
127.0.0.1:0`` process, raw RFC 1179 clients, and LPRng's real ``lpr``/``lpq``/``lprm``.

LPRng's clients read only ``/etc/lprng``; they run as
``unshare -m --propagation private sh -c 'mount --bind DIR /etc/lprng && exec CLIENT ...'``
(a private mount namespace: the host's files are never changed) with an ``lpd.conf`` whose
``originate_port=`` is empty (as bench/lpd_bench.py: else root's clients bind ports
721-731 and run out under load), ``unix_socket_path=off`` and an empty printcap, so they
talk TCP to the ``queue@127.0.0.1%PORT`` they are given and nothing else, and
``connect_interval=0``: lpr retries a refused job at once (three tries), not 10 s apart.
"""
from __future__ import annotations

import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from spoolkit import Kit, Proc, wait_served, wait_until

from lpfilter.protocols import lpd, lpdcontrol

LPRNG_CONF = """\
printcap_path={root}/lprng-printcap
lpd_printcap_path=
unix_socket_path=off
originate_port=
default_tmp_dir={root}/lprng-tmp
syslog_device=/dev/null
sendmail=
check_for_nonprintable@
connect_interval=0
"""
CLIENTS = {"lpr": "/usr/bin/lpr", "lpq": "/usr/bin/lpq", "lprm": "/usr/bin/lprm"}
_LISTENING = re.compile(r"print server on 127\.0\.0\.1:(\d+)")


@dataclass
class Server:
    """A running ``lpfilter watch`` with a TCP listener: its process and port."""

    proc: Proc
    port: int

    def queue(self, name: str = "q") -> str:
        return f"{name}@127.0.0.1%{self.port}"


def start_server(kit: Kit, *args: str, queue: str = "q") -> Server:
    """``watch --listen 127.0.0.1:0 ARGS``; returns once it listens and serves ``queue``."""
    kit.env["LPFILTER_SOCKET"] = str(kit.root / "lpfilter.sock")
    proc = kit.start("watch", "--listen", "127.0.0.1:0", *args)

    def port() -> int:
        if proc.popen.poll() is not None:
            raise AssertionError(f"watch exited {proc.popen.returncode}: {proc.stderr()}")
        found = _LISTENING.search(proc.stderr())
        return int(found.group(1)) if found else 0

    number = wait_until(port, what="the print server to listen")
    wait_served(kit, queue, proc)
    return Server(proc, number)


def ask(port: int, request: bytes, *, source: str = "127.0.0.1", timeout: float = 20) -> bytes:
    """Send ``request`` and read everything until the server closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(source, 0)) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server closed first (a refused host): read what it said
            pass
        return read_all(sock)


def read_all(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    chunks = []
    size = 0
    while size <= limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def send_job(port: int, data: bytes, *, queue: str = "q", user: str = "alice",
             name: str = "job.txt", number: int = 1, host: str = "client",
             source: str = "127.0.0.1", other: tuple[tuple[str, str], ...] = ()) -> None:
    """A job as LPRng's lpr sends it (control file first, ``other`` lines such as -Z's
    among its lines); every acknowledgement must be 0."""
    names = lpd.JobNames(number, host)
    control = lpdcontrol.build(lpdcontrol.ControlFields(
        host=host, user=user, job_name=name, other=other,
        files=(lpdcontrol.DataFile(names.data(0), "f", name),)))
    with socket.create_connection(("127.0.0.1", port), timeout=20,
                                  source_address=(source, 0)) as sock:
        def step(out: bytes) -> None:
            sock.sendall(out)
            got = sock.recv(1)
            assert got == b"\0", f"acknowledgement {got!r} after {out[:40]!r}"
        step(lpd.receive_job(queue))
        step(lpd.file_line(lpd.Subcommand.CONTROL_FILE, len(control), names.control))
        step(control + b"\0")
        step(lpd.file_line(lpd.Subcommand.DATA_FILE, len(data), names.data(0)))
        step(data + b"\0")


def printed(kit: Kit, queue: str = "q", count: int = 1) -> list[bytes]:
    """The data of the first ``count`` jobs the queue printed (the recorder's files)."""
    def outputs() -> list[bytes] | None:
        done = sorted(kit.out.glob(f"{queue}-*.out"))
        return [p.read_bytes() for p in done] if len(done) >= count else None
    return wait_until(outputs, what=f"{count} jobs printed on {queue}")


def prints_another_job(kit: Kit, server: Server, data: bytes | None = None) -> None:
    """The daemon is still up and prints a new client's job."""
    data = data or f"still printing {time.monotonic_ns()}\n".encode()
    before = len(list(kit.out.glob("q-*.out")))
    number = 900 + before % 100  # a new job number: the same control file would be a resend
    send_job(server.port, data, user="carol", name="after.txt", number=number)
    assert data in printed(kit, "q", before + 1)
    assert server.proc.popen.poll() is None


def lprng_etc(root: Path) -> Path:
    """A private /etc/lprng for LPRng's clients (see the module's docstring)."""
    etc = root / "lprng-etc"
    if not etc.exists():
        etc.mkdir()
        (root / "lprng-tmp").mkdir()
        (root / "lprng-printcap").write_text("")
        (etc / "lpd.conf").write_text(LPRNG_CONF.format(root=root))
    return etc


def lprng(root: Path, client: str, *args: str, stdin: bytes = b"",
          timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run one of LPRng's clients with the private configuration."""
    etc = lprng_etc(root)
    script = 'mount --bind "$1" /etc/lprng && shift && exec "$@"'
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(etc),
            CLIENTS[client], *args]
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout,
                          check=False, cwd=root)
