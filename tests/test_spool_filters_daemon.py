"""``print -F`` by an ordinary user who may not write the spool: the job goes through the
print server as an LPD job whose print line carries the format, so the queue's filter for
that format runs (issue 15)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from localkit import made_user
from serverkit import printed
from spoolkit import kit_at, wait_served, wait_until


def test_a_users_format_reaches_the_job_through_the_daemon() -> None:
    with made_user() as user:
        root = Path(tempfile.mkdtemp(prefix="lpfilter-filterdaemon-"))
        root.chmod(0o755)
        try:
            with kit_at(root) as kit:
                kit.queue("q", kit.recorder(), vf="-$ /usr/bin/tr a-z A-Z")
                kit.printcap.chmod(0o644)
                (root / "run").mkdir(mode=0o700)
                kit.env["LPFILTER_SOCKET"] = str(root / "run" / "lpfilter.sock")
                doc = root / "doc.txt"
                doc.write_text("the user's page\n")
                doc.chmod(0o644)
                env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
                       "LPFILTER_PRINTCAP": str(kit.printcap), "LPFILTER_NO_CACHE": "1",
                       "LPFILTER_SOCKET": kit.env["LPFILTER_SOCKET"]}
                daemon = kit.start("watch")
                wait_served(kit, "q", daemon)
                wait_until(lambda: (root / "run" / "lpfilter.sock").exists(),
                           what="the socket")
                done = user.run("print", "-P", "q", "-F", "v", str(doc), env=env)
                assert (done.returncode, done.stdout, done.stderr) == (0, "q-000001\n", "")
                assert printed(kit, "q", 1) == [b"THE USER'S PAGE\n"]
                wait_until(lambda: kit.states("q").get("000001") == "done", what="done")
                assert kit.ticket("q", "000001")["print_format"] == "v"
                assert daemon.stop() == 0
        finally:
            shutil.rmtree(root)


def test_filters_run_as_the_spools_owner_and_root_filters_need_a_root_watcher() -> None:
    """A root watcher runs a user's queue's filter as that user (the spool's owner), a
    ROOT filter as root; a watcher run by the user refuses a ROOT filter's job clearly."""
    with made_user() as user:
        root = Path(tempfile.mkdtemp(prefix="lpfilter-filteruser-"))
        root.chmod(0o755)
        try:
            with kit_at(root) as kit:
                device = root / "device"
                device.touch()
                os.chown(device, user.uid, user.uid)
                for name, command in (("plain", "-$ /usr/bin/id -u"),
                                      ("rooted", "-$ ROOT /usr/bin/id -u")):
                    sd = kit.queue(name, str(device), accounting=False, **{"if": command})
                    os.chown(sd, user.uid, user.uid)
                kit.printcap.chmod(0o644)
                (root / "userlocks").mkdir(mode=0o700)
                os.chown(root / "userlocks", user.uid, user.uid)
                env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
                       "LPFILTER_PRINTCAP": str(kit.printcap), "LPFILTER_NO_CACHE": "1",
                       "LPFILTER_LOCK_DIR": str(root / "userlocks")}
                doc = root / "doc.txt"
                doc.write_text("page\n")
                doc.chmod(0o644)
                for name in ("plain", "rooted"):
                    done = user.run("print", "--no-wait", "-P", name, str(doc), env=env)
                    assert done.returncode == 0, done.stderr
                done = kit.run("watch", "--once", "-P", "plain", "-P", "rooted")
                assert done.returncode == 0, done.stderr
                assert sorted(device.read_text().split()) == sorted([str(user.uid), "0"])

                done = user.run("print", "--no-wait", "-P", "rooted", str(doc), env=env)
                assert done.returncode == 0, done.stderr
                done = user.run("watch", "--once", "-P", "rooted", env=env)
                assert "cannot run a ROOT filter" in done.stderr, done.stderr
                assert [t["state"] for t in kit.tickets("rooted").values()] == ["done",
                                                                               "failed"]
        finally:
            shutil.rmtree(root)


def test_an_owners_filters_run_in_the_owners_group_not_the_directorys(tmp_path: Path) -> None:
    """A spool chowned to a user but left in group root: the user's filters (and
    accounting programs) must not run with gid 0 (second review, M-b)."""
    import pwd as _pwd

    from localkit import made_user

    from lpfilter import printcap as _printcap
    from lpfilter.children.run import filter_owner
    with made_user() as user:
        sd = tmp_path / "sd"
        sd.mkdir()
        os.chown(sd, user.uid, 0)
        (tmp_path / "printcap").write_text(f"q:lp=/dev/null:sd={sd}\n")
        entry = _printcap.load([str(tmp_path / "printcap")]).lookup("q")
        assert filter_owner(entry, str(sd)) == (user.uid, _pwd.getpwuid(user.uid).pw_gid)
