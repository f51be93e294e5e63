"""The test suite passes on a fresh clone with nothing beside it (issue 10, section 5).

Tests that read the shared printcap corpus (``../shared/printcaps``) skip with a reason
when it is absent, unless ``CI`` is set: CI always has it, so there its absence fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sharedkit import REPO, require_shared, shared_path


def test_require_shared_skips_with_a_reason_without_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_shared(tmp_path / "shared", {})
    reason = str(skipped.value)
    assert str(tmp_path / "shared" / "printcaps") in reason
    assert "LPFILTER_SHARED" in reason and "beside the repository" in reason


@pytest.mark.parametrize("ci", ["true", "1"])
def test_require_shared_fails_under_ci(tmp_path: Path, ci: str) -> None:
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_shared(tmp_path / "shared", {"CI": ci})


def test_require_shared_returns_a_present_corpus(tmp_path: Path) -> None:
    (tmp_path / "shared" / "printcaps").mkdir(parents=True)
    assert require_shared(tmp_path / "shared", {"CI": "1"}) == tmp_path / "shared"
    assert shared_path({"LPFILTER_SHARED": str(tmp_path / "x")}) == tmp_path / "x"
    assert shared_path({}) == REPO.parent / "shared"


def _run_copy(clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/test_corpus.py", "tests/test_printcap_properties.py::test_corpus_present",
         "tests/test_printcap_properties.py::test_real_printcaps_read"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_corpus_tests_skip_on_a_fresh_clone_and_fail_under_ci(tmp_path: Path) -> None:
    """A copy of the tests with no shared/ beside it: the corpus tests skip, naming the
    missing folder; with CI set they fail."""
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "tests", clone / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "LPFILTER_SHARED")}
    alone = _run_copy(clone, env)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert "skipped" in alone.stdout and "failed" not in alone.stdout
    assert str(tmp_path / "shared" / "printcaps") in alone.stdout  # the reason, with -rs
    in_ci = _run_copy(clone, {**env, "CI": "true"})
    assert in_ci.returncode == 1, in_ci.stdout + in_ci.stderr
    assert "CI is set" in in_ci.stdout and "failed" in in_ci.stdout
