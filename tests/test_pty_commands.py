"""The commands beyond exercises: practice, review, progress, reset, check 4, graph (with and
without --predict) and exercise 4 --code. What only a terminal shows (a prompt answered as it
appears, a confirmation, a check run from a terminal) is run in a 40x100 pty with pexpect, one
spawn per behaviour; what a command prints and records runs in-process with Typer's CliRunner.

Each run has its own progress directory (the autouse fixture in conftest.py). Expected answers
are computed here: practice problems are regenerated with the same seed and their code run
with torch; the graph's gradient comes from the derivative's formula.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from autograd_tutor.app.practice import PracticeSources
from autograd_tutor.cli import app
from autograd_tutor.content.packs import builtin_catalogue, installed
from autograd_tutor.engine import review
from autograd_tutor.engine.expressions import Scope, evaluate, parse_pack_expression
from autograd_tutor.engine.model import Attempt, History, Step, Value
from autograd_tutor.engine.practice import generate, generate_mix
from autograd_tutor.engine.store import FILE_NAME, SCHEMA_VERSION, Store
from autograd_tutor.views.graph_view import number
from autograd_tutor.views.session import prompt_text

pexpect = pytest.importorskip("pexpect")

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
FIXTURES = Path(__file__).parent / "fixtures" / "check4"
TIMEOUT = 90
MISSED = "chain-rule"
runner = CliRunner()

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")


def plain(text: str) -> str:
    return ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "")


def flat(text: str) -> str:
    return " ".join(plain(text).split())


def spawn(*args: str, cwd: Path | None = None):
    """`python -m autograd_tutor ARGS` in a 40x100 pty; AUTOGRAD_TUTOR_HOME is the test's own
    (set by the autouse fixture in conftest.py)."""
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100", "LINES": "40"}
    for name in ("NO_COLOR", "FORCE_COLOR", "AUTOGRAD_TUTOR_DEBUG"):
        env.pop(name, None)
    return pexpect.spawn(sys.executable, ["-m", "autograd_tutor", *args], dimensions=(40, 100),
                         env=env, encoding="utf-8", timeout=TIMEOUT,
                         cwd=str(cwd) if cwd is not None else None)


def finish(child) -> tuple[str, int | None]:
    """Everything printed since the last match, up to the end; and the exit status."""
    child.expect(pexpect.EOF)
    rest = child.before
    child.close()
    return plain(rest), child.exitstatus


def run(*args: str, input: str | None = None) -> tuple[str, int]:
    """The command in-process: its output (stdout and stderr) and exit status."""
    result = runner.invoke(app, list(args), input=input)
    return result.output, result.exit_code


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text


def progress(home: Path) -> History:
    """The stored history, read by the store itself (warnings printed, not hidden)."""
    return Store(home, warn=print).load()


def write_progress(home: Path, attempts: list[Attempt]) -> None:
    """A progress file in the store's own format: the schema header, then one attempt row a
    line."""
    home.mkdir(parents=True, exist_ok=True)
    lines = [{"schema_version": SCHEMA_VERSION},
             *({"type": "attempt", **a.to_row()} for a in attempts)]
    (home / FILE_NAME).write_text("".join(json.dumps(line) + "\n" for line in lines),
                                  encoding="utf-8")


def attempt(correct: bool, when: datetime, concept: str = MISSED) -> Attempt:
    right = -3.0  # Exercise 2's x.grad = w2 * w1 with w1 = 3, w2 = -1
    typed = right if correct else -right
    return Attempt(
        pack="basics", exercise=2, id="x.grad", prediction=typed, actual=right, by_hand=right,
        correct=correct, skipped=False, typed=repr(typed), concept=concept,
        misconception=None if correct else "sign-error",
        time=when.isoformat(timespec="seconds"), run="scripted",
    )


def answers_of(step: Step) -> list[tuple[str, Value]]:
    """Each prediction's prompt and value, read from the step's code run here with torch
    (the prediction's expression only says which tensor to read)."""
    ns: dict[str, Any] = {"torch": torch}
    exec(step.code, ns)
    scope = Scope(ns, {}, None)
    return [(prompt_text(p).rstrip(), evaluate(parse_pack_expression(p.actual), scope))
            for p in step.predictions]


def typed(value: Value) -> str:
    return "None" if value is None else repr(float(value))


def answer_every_prompt(child, steps: tuple[Step, ...]) -> int:
    count = 0
    for step in steps:
        for prompt, value in answers_of(step):
            child.expect_exact(prompt)
            child.sendline(typed(value))
            count += 1
    return count


# practice ---------------------------------------------------------------------------


def test_practice_with_a_seed_answered_right(tutor_env: Path) -> None:
    """A seed makes the problems known in advance, so their answers can be piped in-process;
    answering generated problems as they appear at a terminal is the review test below."""
    seed = 2024
    found = installed(tutor_env)  # practice draws from every installed pack too
    steps = generate(None, 1, seed, found.templates(), PracticeSources(print, found).helpers).steps
    answers = [value for step in steps for _, value in answers_of(step)]
    output, status = run("practice", "--seed", str(seed), "--count", "1",
                         input="".join(typed(value) + "\n" for value in answers))
    no_traceback(output)
    assert status == 0, output
    assert f"seed {seed}" in output
    assert f"{len(answers)} of {len(answers)} predictions right" in flat(output)
    rows = progress(tutor_env).attempts
    assert len(rows) == len(answers) and all(row.correct for row in rows)


# review -----------------------------------------------------------------------------


def test_review_of_a_concept_missed_long_ago(tutor_env: Path) -> None:
    """In a terminal: the seed is printed before the first prompt, so the problems can be
    solved here as they are asked."""
    long_ago = datetime.now(UTC) - timedelta(days=30)
    write_progress(tutor_env, [attempt(False, long_ago)])
    assert review.due(progress(tutor_env).attempts, datetime.now(UTC)) == [MISSED]

    child = spawn("review", "--count", "1")
    child.expect_exact(f"Due for review: {MISSED}")
    child.expect(r"\(seed (\d+)\)")
    seed = int(child.match.group(1))
    found = installed(tutor_env)
    asked = answer_every_prompt(child, generate_mix([MISSED], seed, found.templates(),
                                                    PracticeSources(print, found).helpers).steps)
    rest, status = finish(child)
    no_traceback(rest)
    assert status == 0, rest
    assert f"{asked} of {asked} predictions right" in flat(rest)
    rows = progress(tutor_env).attempts
    assert len(rows) == 1 + asked
    assert all(row.correct and row.concept == MISSED for row in rows[1:])
    # Answered right once due: the card moves on, so nothing is due now.
    assert review.due(rows, datetime.now(UTC)) == []

    output, status = run("review")
    assert status == 0 and "Nothing is due" in flat(output)
    no_traceback(output)


# progress ---------------------------------------------------------------------------


def test_progress_with_and_without_history(tutor_env: Path) -> None:
    output, status = run("progress")
    assert status == 0 and "No predictions recorded yet" in flat(output)
    no_traceback(output)

    start = datetime.now(UTC) - timedelta(days=2)
    write_progress(tutor_env, [attempt(False, start), attempt(True, start + timedelta(hours=1))])
    output, status = run("progress")
    no_traceback(output)
    assert status == 0, output
    text = flat(output)
    assert "Progress by exercise" in text and "Progress by concept" in text
    # The misconception is shown by its catalogue title ("sign-error" -> its human title).
    assert MISSED in text and builtin_catalogue().title("sign-error") in text


# reset ------------------------------------------------------------------------------


def test_reset_yes_deletes_without_asking(tutor_env: Path) -> None:
    write_progress(tutor_env, [attempt(False, datetime.now(UTC))])
    output, status = run("reset", "--yes")
    no_traceback(output)
    assert status == 0, output
    assert "[y/N]" not in output
    assert "Progress of all exercises deleted" in flat(output)
    assert progress(tutor_env).attempts == []


def test_reset_asks_in_a_terminal_and_y_deletes(tutor_env: Path) -> None:
    write_progress(tutor_env, [attempt(False, datetime.now(UTC))])
    child = spawn("reset")
    child.expect_exact("[y/N]")
    child.sendline("y")
    rest, status = finish(child)
    no_traceback(rest)
    assert status == 0, rest
    assert "deleted" in flat(rest)
    assert progress(tutor_env).attempts == []


def test_reset_asks_and_anything_else_keeps_everything(tutor_env: Path) -> None:
    """The answer is read the same way from a pipe (the terminal's prompt is shown above)."""
    write_progress(tutor_env, [attempt(False, datetime.now(UTC))])
    output, status = run("reset", input="n\n")
    no_traceback(output)
    assert "[y/N]" in output
    assert status == 1 and "Nothing deleted" in flat(output)
    assert len(progress(tutor_env).attempts) == 1


# check 4 ----------------------------------------------------------------------------


def copied(fixture: str, tutor_env: Path) -> Path:
    """A folder holding a copy of the check fixture, beside the test's progress folder."""
    work = tutor_env.parent / "work"
    work.mkdir()
    shutil.copy(FIXTURES / fixture, work / fixture)
    return work


def test_check_4_failing_in_a_terminal(tutor_env: Path) -> None:
    """The learner's file runs in a child of a process at a terminal: the verdict, exit 1,
    and the record."""
    fixture = "sign_flipped.py"
    rest, status = finish(spawn("check", "4", fixture, cwd=copied(fixture, tutor_env)))
    no_traceback(rest)
    assert status == 1, rest
    assert f"check 4: {fixture}: not passed yet" in flat(rest)
    (row,) = progress(tutor_env).checks
    assert row.passed is False


def test_check_4_passing(tutor_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passing differs from failing only in the verdict (judged in test_checker.py): the
    command's message, exit 0 and the record, in-process."""
    fixture = "correct.py"
    monkeypatch.chdir(copied(fixture, tutor_env))
    output, status = run("check", "4", fixture)
    no_traceback(output)
    assert status == 0, output
    assert f"check 4: {fixture}: passed" in flat(output)
    (row,) = progress(tutor_env).checks
    assert row.passed is True


# graph ------------------------------------------------------------------------------


def test_graph_shows_value_gradient_and_tree() -> None:
    x = 3.0
    output, status = run("graph", "x**2", "--at", "x=3")
    no_traceback(output)
    assert status == 0, output
    text = flat(output)
    assert f"value f = {number(x**2)}" in text
    assert f"df/dx = {number(2 * x)}" in text  # d(x**2)/dx = 2x
    assert "Autograd graph of f" in text and "(leaf, AccumulateGrad)" in text


def test_graph_predict_in_a_terminal_asks_first_then_judges() -> None:
    """Each gradient is asked before anything is revealed, `?` gives a hint and the same
    prompt, then each prediction is judged beside PyTorch's value and the tree is drawn."""
    x, w = 3.0, 2.0
    dx, dw = 2 * x * w, x**2  # d(x**2*w)/dx and /dw
    child = spawn("graph", "x**2*w", "--at", "x=3", "--at", "w=2", "--predict", "--view", "tree")
    child.expect_exact("Predict d(x**2*w)/dx at x=3, w=2")
    assert "df/dx" not in plain(child.before)  # nothing revealed before the answer
    child.sendline("?")
    child.expect_exact("Hint 1/2")
    child.expect_exact("Predict d(x**2*w)/dx")
    child.sendline(number(dx))
    child.expect_exact("Predict d(x**2*w)/dw")
    assert "df/d" not in plain(child.before)
    child.sendline(number(dw + 1))  # off by one
    rest, status = finish(child)
    no_traceback(rest)
    assert status == 0, rest
    text = flat(rest)
    assert f"value f = {number(x**2 * w)}" in text
    assert f"df/dx = {number(dx)} (x.grad) you predicted {number(dx)}: right" in text
    assert f"df/dw = {number(dw)} (w.grad) you predicted {number(dw + 1)}: wrong" in text
    assert "Autograd graph of f" in text and "(leaf, AccumulateGrad)" in text


# exercise 4 --code ------------------------------------------------------------------


def test_exercise_4_code_writes_then_refuses_to_overwrite(tutor_env: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    work = tutor_env.parent / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    output, status = run("exercise", "4", "--code", "loop.py")
    no_traceback(output)
    assert status == 0, output
    assert "Wrote the scaffold to loop.py" in flat(output)
    written = (work / "loop.py").read_text(encoding="utf-8")
    assert "TODO" in written

    (work / "loop.py").write_text(written + "# my work\n", encoding="utf-8")
    output, status = run("exercise", "4", "--code", "loop.py")
    no_traceback(output)
    assert status == 1, output
    assert "already exists" in flat(output) and "--force" in flat(output)
    assert (work / "loop.py").read_text(encoding="utf-8").endswith("# my work\n")

    output, status = run("exercise", "4", "--code", "loop.py", "--force")
    assert status == 0, output
    assert (work / "loop.py").read_text(encoding="utf-8") == written


def test_pack_check_in_a_terminal_asks_before_running_a_packs_code(tmp_path: Path) -> None:
    """A pack from outside the built-in set runs code with the user's permissions: in a
    terminal, pack check says so and asks first; no runs nothing (exit 1)."""
    pack = tmp_path / "p"
    shutil.copytree(Path(__file__).parent.parent / "examples" / "packs" / "two-paths", pack)
    child = spawn("pack", "check", str(pack))
    child.expect(r"Run its code now\? \[y/N\] ")
    assert "runs its own Python code" in flat(child.before)
    child.sendline("n")
    output, status = finish(child)
    assert status == 1
    assert "Nothing was run" in output and "ok" not in output
