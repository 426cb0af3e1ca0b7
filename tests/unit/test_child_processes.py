"""The stream's reader process and the bootstrap's workers run this code, whatever folder
the daemon was started from: ``python -m`` puts the working directory first on a child's
path, where a folder named like one of our packages would be imported instead."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bootstrap.workers import worker_command
from sync.source import split

DECOY = "raise SystemExit('DECOY imported')\n"


@pytest.fixture
def decoy_cwd(tmp_path: Path) -> Path:
    """A working directory holding packages named as ours, each failing on import."""
    for package in ("sync", "sync/source", "bootstrap"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(DECOY)
    (tmp_path / "sync/source/split.py").write_text(DECOY)
    (tmp_path / "bootstrap/worker.py").write_text(DECOY)
    return tmp_path


@pytest.mark.parametrize(("name", "command", "ours"), [
    # Given no job on its input, the reader's child fails unpickling it.
    ("reader", split.child_command(), "sync/source/split.py"),
    # Given a descriptor that is no socket, a worker fails on it.
    ("worker", worker_command(999), "bootstrap/process.py"),
])
def test_a_child_runs_our_code_from_any_working_directory(
        decoy_cwd: Path, name: str, command: list[str], ours: str) -> None:
    done = subprocess.run(command, cwd=decoy_cwd, env=split._child_environment(),
                          input=b"", capture_output=True, timeout=60, check=False)
    errors = done.stderr.decode()
    assert "DECOY" not in errors, f"the {name} imported the working directory's package"
    assert done.returncode != 0
    assert ours in errors  # its own traceback: our module ran and failed as expected
