"""lpfilter.logs: module loggers that are ``logging``'s own from the first record kept, and
the edge's deferred configuration (tests/test_startup.py: a quick command imports no logging).

In this process ``logging`` is imported (pytest) and nothing is deferred: records go to
``logging`` as they would from ``logging.getLogger(__name__)``. What a command does as a
process (``defer``) is run in a child interpreter.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_startup import site_env

from lpfilter import cli, logs

HERE = Path(__file__).resolve()


def child(code: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``code`` in a new interpreter (its stdout and stderr as text)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, env=env)


def test_a_record_is_loggings_own_with_the_callers_place(caplog: pytest.LogCaptureFixture,
                                                         ) -> None:
    log = logs.getLogger("lpfilter.test_logs")
    with caplog.at_level(logging.DEBUG, logger="lpfilter.test_logs"):
        log.debug("d %s", 1)
        log.info("i %s", 2)
        log.warning("w %s", 3)
        log.error("e %s", 4)
        log.log(logging.INFO, "l %s", 5)
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("x %s", 6)
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert got == [("lpfilter.test_logs", 10, "d 1"), ("lpfilter.test_logs", 20, "i 2"),
                   ("lpfilter.test_logs", 30, "w 3"), ("lpfilter.test_logs", 40, "e 4"),
                   ("lpfilter.test_logs", 20, "l 5"), ("lpfilter.test_logs", 40, "x 6")]
    # the file, function and line are the caller's (stacklevel), not lpfilter/logs.py's
    assert {Path(r.pathname) for r in caplog.records} == {HERE}
    assert {r.funcName for r in caplog.records} == {
        "test_a_record_is_loggings_own_with_the_callers_place"}
    assert caplog.records[-1].exc_info is not None
    assert caplog.records[-1].exc_info[0] is ValueError


def test_levels_are_loggings(caplog: pytest.LogCaptureFixture) -> None:
    """A logger's level set in ``logging`` decides, as for ``logging.getLogger``."""
    log = logs.getLogger("lpfilter.test_logs.levels")
    logging.getLogger("lpfilter.test_logs.levels").setLevel(logging.ERROR)
    try:
        with caplog.at_level(logging.DEBUG):
            log.warning("dropped")
            log.error("kept")
            assert not log.isEnabledFor(logging.WARNING) and log.isEnabledFor(logging.ERROR)
    finally:
        logging.getLogger("lpfilter.test_logs.levels").setLevel(logging.NOTSET)
    assert [r.getMessage() for r in caplog.records] == ["kept"]
    assert (logs.DEBUG, logs.INFO, logs.WARNING, logs.ERROR) == (
        logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)


DEFERRED = ("import sys\n"
            "from lpfilter import logs\n"
            "def configure():\n"
            "    import logging\n"
            "    print('configured', 'logging' in sys.modules, file=sys.stderr)\n"
            "    logging.basicConfig(level=logging.WARNING, format='P: %(message)s',"
            " stream=sys.stderr)\n"
            "logs.defer(logs.WARNING, configure)\n"
            "log = logs.getLogger('lpfilter.x')\n"
            "log.debug('d'); log.info('i'); log.log(logs.INFO, 'l')\n"
            "print('enabled', log.isEnabledFor(logs.INFO), file=sys.stderr)\n"
            "print('imported', 'logging' in sys.modules, file=sys.stderr)\n")


def test_a_deferred_level_drops_records_without_importing_logging() -> None:
    done = child(DEFERRED)
    assert done.stderr.splitlines() == ["enabled False", "imported False"]


def test_the_first_record_kept_configures_first_then_is_logged() -> None:
    done = child(DEFERRED + "log.warning('w %s', 1); log.error('e'); log.info('i2')\n"
                 "logs.settle()\n")  # nothing deferred any more: no second configure
    assert done.stderr.splitlines() == ["enabled False", "imported False",
                                        "configured True", "P: w 1", "P: e"]


def test_settle_configures_now_and_once() -> None:
    done = child(DEFERRED + "logs.settle(); logs.settle()\n"
                 "import logging\n"
                 "print('root', logging.getLogger().level, file=sys.stderr)\n"
                 "log.warning('w')\n")
    assert done.stderr.splitlines()[2:] == ["configured True", "root 30", "P: w"]


LOUD = ("import sys\n"
        "from lpfilter import logs\n"
        "def configure():\n"
        "    import logging\n"
        "    logging.basicConfig(level=logging.WARNING, format='P: %(message)s',"
        " stream=sys.stderr)\n"
        "    logging.getLogger('lpfilter.w').setLevel(logging.INFO)\n"
        "logs.defer(logs.WARNING, configure, ('lpfilter.w',))\n"
        "loud, child, other = (logs.getLogger(n) for n in ('lpfilter.w', 'lpfilter.w.x',"
        " 'lpfilter.wx'))\n"
        "loud.debug('d'); other.info('o')\n"
        "print('imported', 'logging' in sys.modules, file=sys.stderr)\n"
        "child.info('c'); loud.info('i'); other.info('o2'); other.warning('w')\n")


def test_watch_s_loud_loggers_keep_their_info_records_deferred() -> None:
    """``watch`` at the default level defers too (a cron pass that finds nothing imports
    no logging), but its own loggers' INFO records (start, each job's outcome) are kept:
    the first of them configures, as a warning would."""
    done = child(LOUD)
    assert done.stderr.splitlines() == ["imported False", "P: c", "P: i", "P: w"]


def test_a_record_made_while_another_thread_configures_waits_and_is_kept() -> None:
    """A watch's queues each have a thread: the second first record waits for the
    configuration the first one runs, rather than reach logging before its levels."""
    done = child("import sys, threading, time\n"
                 "from lpfilter import logs\n"
                 "def configure():\n"
                 "    import logging\n"
                 "    time.sleep(0.3)\n"
                 "    logging.basicConfig(level=logging.WARNING, format='P: %(message)s',"
                 " stream=sys.stderr)\n"
                 "    logging.getLogger('lpfilter.w').setLevel(logging.INFO)\n"
                 "logs.defer(logs.WARNING, configure, ('lpfilter.w',))\n"
                 "log = logs.getLogger('lpfilter.w')\n"
                 "threads = [threading.Thread(target=log.info, args=(word,))\n"
                 "           for word in ('t0', 't1')]\n"
                 "threads[0].start(); time.sleep(0.1); threads[1].start()\n"
                 "for t in threads: t.join(10)\n")
    assert sorted(done.stderr.splitlines()) == ["P: t0", "P: t1"], done.stderr


def test_a_cron_pass_logs_each_job_and_imports_no_logging_when_idle(tmp_path: Path) -> None:
    """``watch --once`` says each job's outcome as before; with nothing to do it imports
    no logging (its finally looks at watch's levels only if logging was imported)."""
    sd = tmp_path / "sd"
    sd.mkdir()
    out = tmp_path / "out"
    out.touch()
    (tmp_path / "printcap").write_text(f"q:lp={out}:sd={sd}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LPFILTER", "PYTHON"))}
    env.update(LPFILTER_PRINTCAP=str(tmp_path / "printcap"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), LPFILTER_LOCK_DIR=str(tmp_path / "lk"))
    code = ("import runpy, sys\nsys.argv = ['lpfilter', 'watch', '--once', '-P', 'q']\n"
            "try:\n    runpy.run_module('lpfilter', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as exc:\n"
            "    print('exit', exc.code, 'logging' in sys.modules, file=sys.stderr)\n")
    idle = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert idle.stderr.splitlines() == ["exit 0 False"], idle.stderr
    (tmp_path / "job").write_text("one\n")
    spooled = subprocess.run([sys.executable, "-m", "lpfilter", "print", "--no-wait", "-P", "q",
                              str(tmp_path / "job")], env=env, capture_output=True, text=True,
                             timeout=60, check=True)
    assert spooled.stdout.strip() == "q-000001"
    busy = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    lines = busy.stderr.splitlines()
    assert lines[-1] == "exit 0 True" and out.read_text() == "one\n", busy.stderr
    assert [line for line in lines[:-1] if "job 000001" in line and "done" in line], lines


@pytest.mark.parametrize("wait", [["--no-wait"], []])
def test_a_quick_command_s_warning_is_one_lpfilter_line(tmp_path: Path, wait: list[str],
                                                        ) -> None:
    """The deferred configuration is the edge's: a warning of ``print`` (a control file
    that is not lpfilter's) reaches stderr as ``lpfilter: ...``, once: print looks at the
    queue's state for a redirect, for each batch and (in the foreground) for a stop, and
    reads it once. The queue is stopped, as a bad state file stops it."""
    env = _site(tmp_path)
    (tmp_path / "sd" / ".lpfilter").mkdir(parents=True, exist_ok=True)
    (tmp_path / "sd" / ".lpfilter" / "control").write_bytes(b"\xff" * 10)
    done = subprocess.run([sys.executable, "-m", "lpfilter", "print", *wait, "-P", "q", "job"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
                          check=False)
    lines = done.stderr.splitlines()
    assert lines[0].startswith("lpfilter: ") and "control: not read (not text)" in lines[0]
    if wait:
        assert done.returncode == 0 and len(lines) == 1, done.stderr
    else:
        assert done.returncode == 8, done.stderr  # JOB_PENDING: queued, the queue stopped
        assert len(lines) == 2 and "is stopped (lpc stop)" in lines[1], done.stderr


def test_in_process_main_configures_at_once(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """``cli.main(argv)`` (tests, a program importing lpfilter) defers nothing: the
    configuration is made when the command starts, as before."""
    env = _site(tmp_path)
    logging.getLogger().setLevel(logging.DEBUG)
    assert cli.main(["status", "-P", "q"], env) == 0
    assert logging.getLogger().level == logging.WARNING  # the edge's basicConfig ran
    capsys.readouterr()


def test_a_deferred_configuration_does_not_outlive_the_next_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A program that ran ``cli.main()`` as its own command (which deferred) and then
    ``cli.main(['-v', ...])``: the second command's INFO level holds, not the first one's
    deferred WARNING."""
    env = _site(tmp_path)
    logs.defer(logs.WARNING, lambda: None)  # what the process's own command left
    try:
        assert cli.main(["-v", "status", "-P", "q"], env) == 0
        assert logs.getLogger("lpfilter.test_logs").isEnabledFor(logging.INFO)
    finally:
        logs.settle()
        logging.getLogger().setLevel(logging.WARNING)
    capsys.readouterr()


def _site(tmp_path: Path) -> dict[str, str]:
    """A printcap with queue q (lp=/dev/null), its own cache (warm: a cold one parses
    with pyparsing, which imports traceback), and a 1 KiB job file."""
    env = site_env(tmp_path, "/dev/null")
    subprocess.run([sys.executable, "-m", "lpfilter", "status", "-P", "q"], env=env, cwd=tmp_path,
                   capture_output=True, timeout=60, check=True)
    return env


def test_a_configuration_that_logs_or_fails_runs_once_and_never_waits_for_itself() -> None:
    """The deferred configuration runs under a lock that other threads' first records wait
    on: a record it makes itself must not wait for it (a daemon that hangs), and one that
    fails is not run again by the next record."""
    done = child("import sys\n"
                 "from lpfilter import logs\n"
                 "runs = []\n"
                 "def configure():\n"
                 "    runs.append(1)\n"
                 "    logs.getLogger('lpfilter.c').warning('from configure')\n"
                 "    if len(runs) == 1:\n"
                 "        raise OSError('no log device')\n"
                 "logs.defer(logs.WARNING, configure)\n"
                 "log = logs.getLogger('lpfilter.t')\n"
                 "try:\n    log.warning('first')\nexcept OSError as exc:\n"
                 "    print('failed:', exc, file=sys.stderr)\n"
                 "log.warning('second')\n"
                 "print('runs', len(runs), file=sys.stderr)\n")
    assert done.stderr.splitlines() == ["from configure", "failed: no log device", "second",
                                        "runs 1"], done.stderr
