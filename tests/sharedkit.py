"""Where the shared printcap corpus is, and what a test does when it is not there.

The corpus (``shared/printcaps``, with ``shared/reference``) is cloned beside the repository
in CI. A fresh clone with nothing beside it must still pass the README's test command, so
the tests that read the corpus skip, saying why, unless ``CI`` is set: there its absence is
a failure. ``LPFILTER_SHARED`` names the folder when it lives elsewhere.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_path(environ: Mapping[str, str] = os.environ) -> Path:
    """``$LPFILTER_SHARED``, else ``shared`` beside the repository."""
    return Path(environ.get("LPFILTER_SHARED") or REPO.parent / "shared")


SHARED = shared_path()
CORPUS = SHARED / "printcaps"


def require_shared(path: Path = SHARED, environ: Mapping[str, str] = os.environ) -> Path:
    """``path`` if it holds ``printcaps``; else skip (fail when ``CI`` is set), saying why."""
    if (path / "printcaps").is_dir():
        return path
    reason = (f"the shared printcap corpus is not at {path / 'printcaps'}: clone shared/"
              " beside the repository, or name it with LPFILTER_SHARED=DIR")
    if environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, and CI always has it)")
    pytest.skip(reason)
