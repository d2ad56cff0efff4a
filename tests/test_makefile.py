"""The Makefile's two entry points: `make run` installs the tutor alone (a learner needs no
test tools), `make test` adds the test and dev tools. Checked by a dry run (`make -n`) of a
fresh clone's venv, so nothing is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(target: str, venv: Path) -> str:
    # -B: every rule as if nothing were built yet, as in a fresh clone.
    done = subprocess.run(["make", "-n", "-B", target, f"VENV={venv}"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return done.stdout


def pip_installs(commands: str) -> list[str]:
    return [line for line in commands.splitlines() if "pip install" in line and " -e " in line]


def test_make_run_installs_the_package_alone(tmp_path: Path) -> None:
    installs = pip_installs(dry_run("run", tmp_path / "venv"))
    assert installs, "make run installs the tutor"
    assert all("[test" not in line and "dev]" not in line for line in installs), installs


def test_make_test_installs_the_test_and_dev_tools(tmp_path: Path) -> None:
    installs = pip_installs(dry_run("test", tmp_path / "venv"))
    assert any("[test,dev]" in line for line in installs), installs
