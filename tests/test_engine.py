"""The session engine's ordering and record-keeping promises, end to end through the CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pexpect
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.stats import by_concept

runner = CliRunner()


def test_a_step_without_questions_runs_after_the_next_question(tutor_env: Path) -> None:
    # Exercise 4 opens with a set-up cell; its output must not hold the first prompt back.
    result = runner.invoke(app, ["exercise", "4", "--graph", "none", "--fast"], input="0\n")
    assert result.exit_code == 1, result.output  # input ends at the second prompt
    output = result.output
    assert output.index("Predict y_pred") < output.index("Initial parameters: w = 0.0000")


def test_no_escape_codes_in_a_terminal_with_no_color(tutor_env: Path) -> None:
    env = {**os.environ, "TERM": "xterm", "NO_COLOR": "1"}
    answers = ["y_pred@1=0", "loss@1=14", "w.grad@1=-13", "b.grad@1=-2", "w@1=0.13", "b@1=0.02",
               "w.grad@zeroed=0", "closer@40=w", "w@200=1.95", "b@200=1.05"]
    args = ["-m", "autograd_tutor", "exercise", "4", "--graph", "none"]
    for pair in answers:
        args += ["--answer", pair]
    child = pexpect.spawn(sys.executable, args, env=env, dimensions=(40, 100),
                          encoding="utf-8", timeout=90)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "\x1b[" not in child.before


def test_a_file_with_records_that_are_not_objects_is_moved_aside(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True, exist_ok=True)
    damaged = '{"schema_version": 2, "attempts": [1], "completed": [], "checks": []}'
    (tutor_env / "progress.json").write_text(damaged, encoding="utf-8")
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output
    kept = [p for p in tutor_env.iterdir() if p.name.startswith("progress.json.damaged")]
    assert [p.read_text(encoding="utf-8") for p in kept] == [damaged]


def test_first_tries_count_each_practice_problem_once(tutor_env: Path) -> None:
    for seed in ("1", "2", "3"):
        result = runner.invoke(app, ["practice", "--concept", "polynomial", "--count", "2",
                                     "--seed", seed], input="0.123\n0.123\n")
        assert result.exit_code == 0, result.output
    rows = json.loads((tutor_env / "progress.json").read_text(encoding="utf-8"))["attempts"]
    (summary,) = by_concept(rows)
    assert summary.attempts == 6
    assert summary.first_tries == 6
