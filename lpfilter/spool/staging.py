"""A job's data file being written: a new file in the queue's tmp/, locked by its writer.

Why the lock (and the check after it): orphan cleanup (remove_unlocked) removes files in
tmp/ that no writer holds, so a file a killed process left goes at the next start
(immediately, unlike an age limit); it may take a file between its creation and the
writer's lock (it holds the lock only while it unlinks: the writer waits), so once
locked the writer checks the name is still its file, and makes another if not.
"""
from __future__ import annotations

import fcntl
import os

from lpfilter.errors import AccessError
from lpfilter.safefiles import give, same_file


def stage(tmp_dir: str, job_id: str, owner: int, queue: str) -> tuple[int, str]:
    """A new file in ``tmp_dir`` for a job's data, given to ``owner``: (fd, path), locked
    till closed."""
    for attempt in range(5):
        path = os.path.join(tmp_dir, f"{job_id}{'-%d' % attempt if attempt else ''}.data")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if same_file(fd, path):
                give(fd, owner)
                return fd, path
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed by a cleanup before our lock: make it again
    raise AccessError(f"queue {queue}: staged files in {tmp_dir} keep vanishing (something"
                      " else removes them)", queue=queue)
