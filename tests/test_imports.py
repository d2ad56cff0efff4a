"""`--help`, `list` and the home screen stay light: torch and matplotlib are never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "matplotlib")

# Runs each command through CliRunner in a fresh interpreter, then reports which heavy modules
# ended up in sys.modules. Where os.fork exists, one interpreter imports the CLI once and each
# command runs in a child forked from it, so every command starts from that same fresh state
# (nothing another command imported or cached); each child writes its report to a pipe.
PROBE = """
import json, os, sys, traceback
from typer.testing import CliRunner
from autograd_tutor.cli import app
commands, heavy, homes = (json.loads(arg) for arg in sys.argv[1:])

def report(args, home):
    result = CliRunner().invoke(app, args, env={"AUTOGRAD_TUTOR_HOME": home})
    return json.dumps({"args": args, "exit_code": result.exit_code,
                       "loaded": {name: name in sys.modules for name in heavy}})

for args, home in zip(commands, homes):
    if not hasattr(os, "fork"):  # then the caller launches one interpreter a command
        print(report(args, home))
        continue
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.write(write, report(args, home).encode())
        except BaseException:
            traceback.print_exc()
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        print(pipe.read())
    os.waitpid(pid, 0)
"""

LIGHT = [
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
]


def fresh_env(home: Path) -> dict[str, str]:
    return {**os.environ, "AUTOGRAD_TUTOR_HOME": str(home), "NO_COLOR": "1"}


def launch(commands: list[list[str]], tmp_path: Path) -> list[dict]:
    """One interpreter for all `commands` (each in a fresh home), one report a command."""
    homes = [str(tmp_path / f"home{number}") for number in range(len(commands))]
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *(json.dumps(arg) for arg in (commands, HEAVY, homes))],
        capture_output=True, text=True, timeout=120, env=fresh_env(tmp_path),
    )
    assert completed.returncode == 0, completed.stderr
    reports = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    assert [report["args"] for report in reports] == commands, completed.stderr
    return reports


def probe(commands: list[list[str]], tmp_path: Path) -> list[dict]:
    """Every command's report: from one launch with fork, else one launch a command."""
    if hasattr(os, "fork"):
        return launch(commands, tmp_path)
    return [report for number, args in enumerate(commands)
            for report in launch([args], tmp_path / str(number))]


def test_light_commands_do_not_import_torch_or_matplotlib(tmp_path: Path) -> None:
    reports = probe([args for args, _ in LIGHT], tmp_path)
    assert [(r["args"], r["exit_code"]) for r in reports] == LIGHT
    heavy = [(r["args"], name) for r in reports for name, loaded in r["loaded"].items() if loaded]
    assert heavy == []


def test_instructor_commands_do_not_import_torch_or_matplotlib(tmp_path: Path) -> None:
    """export, report (without --plot), pack new and pack import read and write files only.
    Each runs in a fresh home; the files one writes are there for the next."""
    export = str(tmp_path / "learner.json")
    seed = str(Path(__file__).parent / "fixtures" / "autograd-notebook.ipynb")
    commands = [
        ["export", "--output", export],
        ["report", export],
        ["report", export, "--json"],
        ["report", str(tmp_path / "missing.json")],
        ["pack", "new", "fresh", "--dir", str(tmp_path)],
        ["pack", "import", seed, "--dir", str(tmp_path)],
        ["pack", "new", "Bad Name", "--dir", str(tmp_path)],
    ]
    reports = probe(commands, tmp_path)
    assert [r["exit_code"] for r in reports] == [0, 0, 0, 1, 0, 0, 2]
    heavy = [(r["args"], name) for r in reports for name, loaded in r["loaded"].items() if loaded]
    assert heavy == []


def test_the_probe_sees_torch_when_an_exercise_runs(tmp_path: Path) -> None:
    """The same probe does notice torch, so the checks above are not vacuous; and a command
    after it in the same launch starts without it."""
    exercise = ["exercise", "1", "--reveal", "--plots", str(tmp_path / "plots")]
    ran, after = probe([exercise, ["--help"]], tmp_path)
    assert ran["exit_code"] == 0 and after["exit_code"] == 0
    assert ran["loaded"]["torch"] is True
    assert after["loaded"] == {name: False for name in HEAVY}


def test_console_script_import_time_has_no_torch_or_matplotlib(tmp_path: Path) -> None:
    """The real entry point (the start-up the probe above skips), with -X importtime: every
    module imported is listed on stderr. `list` reads the packs and draws a table."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "autograd_tutor", "list"],
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
