"""The suite itself on a clone without ../shared: tests that need it skip with one reason, unless
RDISTILL_REQUIRE_SHARED is set (.ci/run sets it beside ../shared), when they fail instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# One test that reads the collections, one that reads the trec_eval files, one that needs neither.
NODES = ["tests/test_cli.py::test_closed_pipe_is_quiet", "tests/test_formats.py::test_reader_accepts_tabs_padding_and_gzip",
         "tests/test_cli.py::test_bad_input_is_one_line_and_exit_2"]


def pytest_in(shared: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "RDISTILL_REQUIRE_SHARED"}
    environ.update(RDISTILL_SHARED=str(shared), PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *NODES], cwd=ROOT,
                          capture_output=True, text=True, env=environ, timeout=300)


def test_without_shared_data_tests_skip_with_their_reason(tmp_path: Path) -> None:
    proc = pytest_in(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 passed, 2 skipped" in proc.stdout
    assert f"{tmp_path}/data is absent: this test needs the real collections" in proc.stdout
    assert f"{tmp_path}/conformance/trec_eval is absent: this test needs the trec_eval conformance files" in proc.stdout


def test_require_shared_turns_those_skips_into_failures(tmp_path: Path) -> None:
    proc = pytest_in(tmp_path, RDISTILL_REQUIRE_SHARED="1")
    assert proc.returncode == 1
    assert "1 passed, 2 errors" in proc.stdout  # failed in setup, before the test body runs
    assert f"RDISTILL_REQUIRE_SHARED is set but {tmp_path}/data is absent" in proc.stdout
