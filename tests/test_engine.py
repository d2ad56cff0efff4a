"""The session engine's ordering and record-keeping promises, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.engine.model import Completion
from autograd_tutor.engine.stats import by_concept
from autograd_tutor.engine.store import Store

runner = CliRunner()


def test_a_step_without_questions_shows_its_output_in_its_own_step(tutor_env: Path) -> None:
    # Exercise 4 opens with a set-up cell: what it prints belongs to it, before Step 2.
    result = runner.invoke(app, ["exercise", "4", "--graph", "none", "--fast"], input="0\n")
    assert result.exit_code == 1, result.output  # input ends at the second prompt
    output = result.output
    assert output.index("Initial parameters: w = 0.0000") < output.index("Step 2/8")
    assert output.index("Step 2/8") < output.index("Predict y_pred")


def test_a_row_that_is_not_an_object_is_set_aside(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True, exist_ok=True)
    good = {"type": "completed", "pack": "basics", "exercise": 1, "run": "r",
            "time": "2024-01-01T00:00:00+00:00"}
    content = '{"schema_version": 3}\n1\n' + json.dumps(good) + "\n"
    (tutor_env / "progress.jsonl").write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output
    kept = [p for p in tutor_env.iterdir() if p.name.startswith("progress.jsonl.damaged")]
    assert [p.read_text(encoding="utf-8").split() for p in kept] == [["1"]]
    # The good row is still there: exercise 1 shows as done.
    row = next(line for line in result.stdout.splitlines() if "Polynomial Gradient" in line)
    assert "done" in row
    assert Store(tutor_env, warn=print).load().completed == [
        Completion("basics", 1, "r", "2024-01-01T00:00:00+00:00")]


def test_an_old_file_with_records_that_are_not_objects_is_kept_whole(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True, exist_ok=True)
    old = '{"schema_version": 2, "attempts": [1], "completed": [], "checks": []}'
    (tutor_env / "progress.json").write_text(old, encoding="utf-8")
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    kept = [p for p in tutor_env.iterdir() if p.name.startswith("progress.json")
            and p.name not in ("progress.jsonl", "progress.jsonl.lock")]
    assert [p.read_text(encoding="utf-8") for p in kept] == [old]


def test_first_tries_count_each_practice_problem_once(tutor_env: Path) -> None:
    for seed in ("1", "2", "3"):
        result = runner.invoke(app, ["practice", "--concept", "polynomial", "--count", "2",
                                     "--seed", seed], input="0.123\n0.123\n")
        assert result.exit_code == 0, result.output
    warnings: list[str] = []
    rows = Store(tutor_env, warn=warnings.append).load().attempts
    assert warnings == []
    assert len(rows) == 6 and all(row.kind == "practice" for row in rows)
    (summary,) = by_concept(rows)
    assert summary.attempts == len(rows)
    assert summary.first_tries == len({(row.run, row.id) for row in rows}) == 6
