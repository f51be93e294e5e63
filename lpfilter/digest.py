"""SHA-256 without OpenSSL: the name of a parse-cache file and of a printer's lock.

``hashlib`` loads OpenSSL's library first (2-5 ms), more than the rest of a warm cache's
read, and a ``print`` that serves its own queue, or a cron pass that sends, paid it once
more to name its printer's lock. The interpreter's own SHA-256 module gives the same digest.
"""
from __future__ import annotations


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` in hex, as ``hashlib.sha256(data).hexdigest()``."""
    try:
        from _sha256 import sha256  # type: ignore[import-not-found] # Python 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found] # 3.12 and later
        except ImportError:
            from hashlib import sha256
    return str(sha256(data).hexdigest())
