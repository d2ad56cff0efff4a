"""`--help`, `list` and the home screen stay light: torch and matplotlib are never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "matplotlib")

# Runs the CLI in a fresh interpreter through CliRunner, then reports which heavy modules
# ended up in sys.modules.
PROBE = """
import json, sys
from typer.testing import CliRunner
from autograd_tutor.cli import app
result = CliRunner().invoke(app, json.loads(sys.argv[1]))
heavy = json.loads(sys.argv[2])
print(json.dumps({"exit_code": result.exit_code,
                  "loaded": {name: name in sys.modules for name in heavy}}))
"""


def fresh_env(home: Path) -> dict[str, str]:
    return {**os.environ, "AUTOGRAD_TUTOR_HOME": str(home), "NO_COLOR": "1"}


def probe(args: list[str], home: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True, text=True, timeout=120, env=fresh_env(home),
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["--help"], 0),
        (["list"], 0),
        ([], 0),
        (["exercise", "--help"], 0),
        (["next", "--help"], 0),
        (["exercise", "9"], 2),
        (["exercise", "1", "--answer", "nope=1"], 2),
        (["pack", "list"], 0),
        (["list", "basics"], 0),
        (["progress"], 0),
        (["--version"], 0),
    ],
    ids=["help", "list", "home", "exercise-help", "next-help", "bad-number", "bad-answer",
         "pack-list", "list-pack", "progress", "version"],
)
def test_light_commands_do_not_import_torch_or_matplotlib(args: list[str], exit_code: int,
                                                          tmp_path: Path) -> None:
    report = probe(args, tmp_path)
    assert report["exit_code"] == exit_code
    assert report["loaded"] == {name: False for name in HEAVY}


def test_the_probe_sees_torch_when_an_exercise_runs(tmp_path: Path) -> None:
    """The same probe does notice torch, so the checks above are not vacuous."""
    report = probe(["exercise", "1", "--reveal", "--plots", str(tmp_path / "plots")], tmp_path)
    assert report["exit_code"] == 0
    assert report["loaded"]["torch"] is True


@pytest.mark.parametrize("args", [["--help"], ["list"], []], ids=["help", "list", "home"])
def test_console_script_import_time_has_no_torch_or_matplotlib(args: list[str],
                                                               tmp_path: Path) -> None:
    """The real entry point, with -X importtime: every module imported is listed on stderr."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "autograd_tutor", *args],
        capture_output=True, text=True, timeout=120, env=fresh_env(tmp_path),
    )
    assert completed.returncode == 0, completed.stderr
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in completed.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "autograd_tutor.cli" in imported
    for name in HEAVY:
        assert not any(module == name or module.startswith(name + ".") for module in imported)
