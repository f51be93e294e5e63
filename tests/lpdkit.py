"""LPD peers for the tests: LPRng's real ``lpd`` (Debian package ``lprng``) and a scripted
RFC 1179 receiver that misbehaves on request.

The real lpd (fixture ``real_lpd``)
-----------------------------------
LPRng reads its configuration only from ``/etc/lprng`` (``lpd.conf``, ``lpd.perms``), and its
clients (``lpr``, ``lpq``, ``lprm``, ``lpc``) read the same files. So lpd runs as
``unshare -m --propagation private sh -c 'mount --bind DIR /etc/lprng && exec lpd -F'``: a
private mount namespace (the bind mount never reaches the host, whose files are never
changed), and ``exec`` keeps lpd's pid the one the test started. The clients run in that same
namespace with ``nsenter -t LPD_PID -m`` (``RealLpd.client``), so they read the test's
configuration too. Everything else lives in the test's temporary directory. ``lpd.conf``:

* ``printcap_path=DIR/printcap``, ``lpd_printcap_path=`` (empty): the only printcap read is
  the test's; ``/etc/printcap`` (absent on the test machine, LPRng's default) is never read.
* ``perms_path=DIR/lpd.perms`` holding ``DEFAULT ACCEPT``: Debian's shipped lpd.perms lets
  only root on the server stop a queue or remove others' jobs; tests need ``lpc stop`` and
  ``lprm`` from loopback.
* ``lpd_listen_port=127.0.0.1%PORT``: the ``ipaddr%`` form binds the loopback address only,
  on a port found free just before (never 515). ``lpd_port=PORT``: the clients' default port,
  so a client without ``%PORT`` still reaches this lpd, never a host lpd.
* ``unix_socket_path=off``: no socket at ``/var/run/lprng/socket``, which a host lpd owns;
  clients talk TCP to 127.0.0.1, the way lpfilter's backend will.
* ``lockfile=DIR/lpd``: lpd's pid/lock file (lpd appends ``.PORT``), not ``/var/spool/lpd``.
* ``user=0``, ``group=0``: lpd and its queue processes keep the uid/gid they started with
  (root here, needed for ``unshare -m``), so the spool and printer file under the test's 0700
  temporary directory need no chown.
* ``server_tmp_dir``/``default_tmp_dir=DIR/tmp``: no files left in ``/tmp``.
* ``syslog_device=/dev/null``, ``sendmail=`` (empty): no console writes, no mail.
* ``check_for_nonprintable@``: lpr sends binary data as it is (tests send every byte value).
* ``done_jobs=0``: a printed job leaves the queue, so ``lpq`` lists only waiting jobs.

lpd runs with ``-F``: in the foreground (its pid stays the test's child, stopped by pid), its
log on stderr, kept in ``DIR/lpd.log`` for failure messages. It counts as started once its
own processes listen on 127.0.0.1:PORT (psutil) and a connection there is accepted (at most
20 s); lpd exits when another program took the port first, and is started again on a new one.
At the end lpd and every process it forked get SIGTERM (SIGKILL after 10 s), by pid, and the
fixture fails if any of them is still running. The printcap has one queue::

    q:sd=DIR/spool/q:lp=DIR/printed:sh:sf:ff_separator@:fo@:fq@:tr=:

``lp=`` a plain file: lpd opens it for appending and copies each data file into it, no
filter; ``sh`` (no banner), ``sf``/``ff_separator@`` (no form feed between files),
``fo@``/``fq@``/``tr=`` (nothing on open, at the end, or as a trailer): the file holds
exactly the jobs' bytes, one after another.

The scripted server (fixture ``scripted_lpd``, class in tests/lpdscript.py)
---------------------------------------------------------------------------
A thread serving 127.0.0.1 port 0, one connection at a time: the receive-job side of RFC 1179
(``\\x02queue``, then ``\\x02``/``\\x03`` subcommands, each file acked twice, see
shared/reference/lpd-protocol.md §2-§3). ``mode`` picks the misbehaviour (``MODES``): a
non-zero ack plus a text line at one ack point, closing instead of the ack after a data file's
content (the final ack of a one-file job), or stalling (accept, never read). It records every
connection's request line and each file's announced name, count and received bytes. Reads
are bounded in size and time; the fixture stops it (thread joined) at the end of the test.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from lpdscript import MODES, ScriptedLpd

__all__ = ["MODES", "MakeScripted", "RealLpd", "ScriptedLpd", "need_lprng", "real_lpd", "running",
           "scripted_lpd", "start_lpd", "stop_lpd"]

LPD = "/usr/sbin/lpd"
CLIENTS = {"lpr": "/usr/bin/lpr", "lpq": "/usr/bin/lpq", "lprm": "/usr/bin/lprm",
           "lpc": "/usr/sbin/lpc"}

CONF = """\
printcap_path={root}/printcap
lpd_printcap_path=
perms_path={root}/lpd.perms
lpd_listen_port=127.0.0.1%{port}
lpd_port={port}
unix_socket_path=off
lockfile={root}/lpd
user=0
group=0
server_tmp_dir={root}/tmp
default_tmp_dir={root}/tmp
syslog_device=/dev/null
sendmail=
check_for_nonprintable@
done_jobs=0
"""
PRINTCAP = "q:sd={root}/spool/q:lp={root}/printed:sh:sf:ff_separator@:fo@:fq@:tr=:\n"


def need_lprng() -> None:
    """Skip, saying why, when this machine cannot run LPRng in a private mount namespace;
    under CI (which installs lprng, .ci/run) fail instead."""
    missing = [path for path in (LPD, *CLIENTS.values()) if not os.access(path, os.X_OK)]
    reason = ""
    if missing:
        reason = f"LPRng is not installed ({', '.join(missing)}): apt-get install lprng"
    elif not (shutil.which("unshare") and shutil.which("nsenter")):
        reason = "unshare/nsenter (util-linux) are not installed"
    elif os.geteuid() != 0:
        reason = "running LPRng's lpd in a private mount namespace (unshare -m) needs root"
    if not reason:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, and .ci/run installs it)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now (lpd binds it moments later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RealLpd:
    """A running LPRng lpd: its pid (``proc``), port, printer file and directory."""

    proc: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def printed(self) -> Path:
        """The file lpd's queue ``q`` prints into."""
        return self.root / "printed"

    @property
    def queue(self) -> str:
        """``q@127.0.0.1%PORT``: the queue as LPRng's clients name a remote one."""
        return f"q@127.0.0.1%{self.port}"

    def client(self, name: str, *args: str, stdin: bytes = b"",
               timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        """Run LPRng's ``lpr``/``lpq``/``lprm``/``lpc`` with ``args`` in lpd's mount namespace
        (so it reads this lpd's configuration), working directory the kit's directory."""
        argv = ["nsenter", "-t", str(self.proc.pid), "-m", f"--wd={self.root}",
                CLIENTS[name], *args]
        return subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout,
                              check=False)

    def log(self) -> str:
        return (self.root / "lpd.log").read_text(errors="replace")

    def processes(self) -> list[psutil.Process]:
        """lpd and every process it started that is still there."""
        try:
            main = psutil.Process(self.proc.pid)
            return [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def listening(self) -> set[tuple[str, int]]:
        """The TCP addresses lpd's processes listen on: its own, not another program that
        took the port meanwhile."""
        found = set()
        for process in self.processes():
            try:
                found |= {(conn.laddr[0], conn.laddr[1]) for conn in process.net_connections("tcp")
                          if conn.status == psutil.CONN_LISTEN}
            except psutil.NoSuchProcess:
                pass
        return found

    def wait_printed(self, size: int, timeout: float = 30,
                     nudge: Callable[[], object] | None = None) -> bytes:
        """The printer file's bytes once it holds at least ``size`` bytes (bounded wait).
        ``nudge`` is repeated every 10 s while nothing arrives: LPRng's lpd has been seen, on
        a loaded machine, to leave a queue idle after the first ``lpc start``."""
        start = time.monotonic()
        deadline, nudged = start + timeout, start
        while self.printed.stat().st_size < size:
            assert self.proc.poll() is None, f"lpd exited:\n{self.log()}"
            assert time.monotonic() < deadline, (
                f"lpd printed {self.printed.stat().st_size} of {size} bytes in "
                f"{timeout:g} s:\n{self.log()}")
            if nudge is not None and time.monotonic() - nudged > 10:
                nudge()
                nudged = time.monotonic()
            time.sleep(0.05)
        return self.printed.read_bytes()


def start_lpd(root: Path, attempts: int = 3) -> RealLpd:
    """Write the configuration under ``root``, start lpd and wait (at most 20 s) until it
    listens on its port and accepts connections there; a port another program took between
    the probe and lpd's bind is replaced by a new one (at most ``attempts`` starts)."""
    etc = root / "etc"
    for folder in (etc, root / "spool" / "q", root / "tmp"):
        folder.mkdir(parents=True)
    (root / "lpd.perms").write_text("DEFAULT ACCEPT\n")
    (root / "printcap").write_text(PRINTCAP.format(root=root))
    (root / "printed").touch()
    for _attempt in range(attempts):
        port = free_port()
        (etc / "lpd.conf").write_text(CONF.format(root=root, port=port))
        lpd = _launch(root, port)
        if lpd is not None:
            return lpd
    pytest.fail(f"LPRng's lpd did not listen on 127.0.0.1 ({attempts} ports tried):\n"
                f"{(root / 'lpd.log').read_text(errors='replace')}")


def _launch(root: Path, port: int) -> RealLpd | None:
    """lpd started on ``port`` and listening there, or None (stopped) if it did not."""
    script = 'mount --bind "$1" /etc/lprng && exec "$2" -F'
    with (root / "lpd.log").open("ab") as log:
        proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
             str(root / "etc"), LPD], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT)
    lpd = RealLpd(proc, port, root)
    deadline = time.monotonic() + 20
    while not (lpd.listening() == {("127.0.0.1", port)} and accepts(port)):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_lpd(lpd)
            return None
        time.sleep(0.05)
    return lpd


def stop_lpd(lpd: RealLpd) -> None:
    """Stop lpd and every process it started, by pid: SIGTERM, then SIGKILL after 10 s."""
    processes = lpd.processes()
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=10)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    if lpd.proc.poll() is None:
        lpd.proc.kill()
    lpd.proc.wait(timeout=10)


def running(pids: set[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie has ended; only its parent's wait is due)."""
    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            pass
    return left


@pytest.fixture
def real_lpd(tmp_path: Path) -> Iterator[RealLpd]:
    """LPRng's lpd serving queue ``q`` on 127.0.0.1 (skipped with the reason when LPRng or
    unshare is missing, failed under CI); stopped with all its processes afterwards."""
    need_lprng()
    lpd = start_lpd(tmp_path / "lpd")
    started = {process.pid for process in lpd.processes()}
    try:
        yield lpd
    finally:
        started |= {process.pid for process in lpd.processes()}
        stop_lpd(lpd)
        left = running(started)
        assert not left, f"lpd processes left behind: {left}"


MakeScripted = Callable[..., ScriptedLpd]


@pytest.fixture
def scripted_lpd() -> Iterator[MakeScripted]:
    """scripted_lpd(mode="accept", code=1, text=None): a started scripted LPD server
    (see lpdscript.MODES); every one is stopped (thread joined) after the test."""
    started: list[ScriptedLpd] = []

    def make(mode: str = "accept", code: int = 1, text: str | None = None) -> ScriptedLpd:
        server = ScriptedLpd(mode, code, text)
        started.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()
