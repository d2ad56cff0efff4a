"""Every command that had no real-terminal test, run in a pseudo-terminal with pexpect: practice,
review, progress, reset, check 4, graph (with and without --predict) and exercise 4 --code.

Each run is `python -m autograd_tutor ...` in a 40x100 pty with its own progress directory.
Expected answers are computed here: practice problems are regenerated with the same seed and
their code run with torch; the graph's gradient comes from the derivative's formula.
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

from autograd_tutor.cli import all_helpers
from autograd_tutor.content.packs import builtin_catalogue, installed
from autograd_tutor.engine import review
from autograd_tutor.engine.expressions import Scope, evaluate, parse_pack_expression
from autograd_tutor.engine.model import Attempt, History, Step, Value
from autograd_tutor.engine.practice import generate, generate_mix
from autograd_tutor.engine.store import FILE_NAME, SCHEMA_VERSION, Store
from autograd_tutor.views.graph_view import number
from autograd_tutor.views.session import prompt_text

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
FIXTURES = Path(__file__).parent / "fixtures" / "check4"
TIMEOUT = 90
MISSED = "chain-rule"


def plain(text: str) -> str:
    return ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "")


def flat(text: str) -> str:
    return " ".join(plain(text).split())


def spawn(home: Path, *args: str, cwd: Path | None = None):
    """`python -m autograd_tutor ARGS` in a 40x100 pty, with `home` as the progress folder."""
    env = {**os.environ, "AUTOGRAD_TUTOR_HOME": str(home), "TERM": "xterm", "COLUMNS": "100",
           "LINES": "40"}
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


def run(home: Path, *args: str, cwd: Path | None = None) -> tuple[str, int | None]:
    return finish(spawn(home, *args, cwd=cwd))


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


def test_practice_with_a_seed_answered_right(tmp_path: Path) -> None:
    seed = 2024
    found = installed(tmp_path)  # practice draws from every installed pack too
    steps = generate(None, 1, seed, found.templates(), all_helpers(found)).steps
    child = spawn(tmp_path, "practice", "--seed", str(seed), "--count", "1")
    child.expect_exact(f"seed {seed}")
    asked = answer_every_prompt(child, steps)
    rest, status = finish(child)
    no_traceback(rest)
    assert status == 0, rest
    assert f"{asked} of {asked} predictions right" in flat(rest)
    rows = progress(tmp_path).attempts
    assert len(rows) == asked and all(row.correct for row in rows)


# review -----------------------------------------------------------------------------


def test_review_of_a_concept_missed_long_ago(tmp_path: Path) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=30)
    write_progress(tmp_path, [attempt(False, long_ago)])
    assert review.due(progress(tmp_path).attempts, datetime.now(UTC)) == [MISSED]

    child = spawn(tmp_path, "review", "--count", "1")
    child.expect_exact(f"Due for review: {MISSED}")
    child.expect(r"\(seed (\d+)\)")
    seed = int(child.match.group(1))
    found = installed(tmp_path)
    asked = answer_every_prompt(child, generate_mix([MISSED], seed, found.templates(),
                                                    all_helpers(found)).steps)
    rest, status = finish(child)
    no_traceback(rest)
    assert status == 0, rest
    assert f"{asked} of {asked} predictions right" in flat(rest)
    rows = progress(tmp_path).attempts
    assert len(rows) == 1 + asked
    assert all(row.correct and row.concept == MISSED for row in rows[1:])
    # Answered right once due: the card moves on, so nothing is due now.
    assert review.due(rows, datetime.now(UTC)) == []

    rest, status = run(tmp_path, "review")
    assert status == 0 and "Nothing is due" in flat(rest)
    no_traceback(rest)


# progress ---------------------------------------------------------------------------


def test_progress_with_and_without_history(tmp_path: Path) -> None:
    rest, status = run(tmp_path, "progress")
    assert status == 0 and "No predictions recorded yet" in flat(rest)
    no_traceback(rest)

    start = datetime.now(UTC) - timedelta(days=2)
    write_progress(tmp_path, [attempt(False, start), attempt(True, start + timedelta(hours=1))])
    rest, status = run(tmp_path, "progress")
    no_traceback(rest)
    assert status == 0, rest
    text = flat(rest)
    assert "Progress by exercise" in text and "Progress by concept" in text
    # The misconception is shown by its catalogue title ("sign-error" -> its human title).
    assert MISSED in text and builtin_catalogue().title("sign-error") in text


# reset ------------------------------------------------------------------------------


def test_reset_yes_deletes_without_asking(tmp_path: Path) -> None:
    write_progress(tmp_path, [attempt(False, datetime.now(UTC))])
    rest, status = run(tmp_path, "reset", "--yes")
    no_traceback(rest)
    assert status == 0, rest
    assert "Progress of all exercises deleted" in flat(rest)
    assert progress(tmp_path).attempts == []


def test_reset_asks_and_y_deletes(tmp_path: Path) -> None:
    write_progress(tmp_path, [attempt(False, datetime.now(UTC))])
    child = spawn(tmp_path, "reset")
    child.expect_exact("[y/N]")
    child.sendline("y")
    rest, status = finish(child)
    no_traceback(rest)
    assert status == 0, rest
    assert "deleted" in flat(rest)
    assert progress(tmp_path).attempts == []


def test_reset_asks_and_anything_else_keeps_everything(tmp_path: Path) -> None:
    write_progress(tmp_path, [attempt(False, datetime.now(UTC))])
    child = spawn(tmp_path, "reset")
    child.expect_exact("[y/N]")
    child.sendline("n")
    rest, status = finish(child)
    no_traceback(rest)
    assert status == 1 and "Nothing deleted" in flat(rest)
    assert len(progress(tmp_path).attempts) == 1


# check 4 ----------------------------------------------------------------------------


@pytest.mark.parametrize(("fixture", "status", "verdict"), [
    ("correct.py", 0, "passed"),
    ("sign_flipped.py", 1, "not passed yet"),
])
def test_check_4_passing_and_failing(tmp_path: Path, fixture: str, status: int,
                                     verdict: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(FIXTURES / fixture, work / fixture)
    rest, got = run(tmp_path / "home", "check", "4", fixture, cwd=work)
    no_traceback(rest)
    assert got == status, rest
    assert f"check 4: {fixture}: {verdict}" in flat(rest)
    (row,) = progress(tmp_path / "home").checks
    assert row.passed is (status == 0)


# graph ------------------------------------------------------------------------------


def test_graph_shows_value_gradient_and_tree(tmp_path: Path) -> None:
    x = 3.0
    rest, status = run(tmp_path, "graph", "x**2", "--at", "x=3")
    no_traceback(rest)
    assert status == 0, rest
    text = flat(rest)
    assert f"value f = {number(x**2)}" in text
    assert f"df/dx = {number(2 * x)}" in text  # d(x**2)/dx = 2x
    assert "Autograd graph of f" in text and "(leaf, AccumulateGrad)" in text


def test_graph_predict_asks_first_then_judges(tmp_path: Path) -> None:
    x = 3.0
    child = spawn(tmp_path, "graph", "x**2", "--at", "x=3", "--predict")
    child.expect_exact("Predict d(x**2)/dx at x=3")
    assert "df/dx" not in plain(child.before)  # nothing revealed before the answer
    child.sendline(number(2 * x))
    rest, status = finish(child)
    no_traceback(rest)
    assert status == 0, rest
    assert f"you predicted {number(2 * x)}: right" in flat(rest)


# exercise 4 --code ------------------------------------------------------------------


def test_exercise_4_code_writes_then_refuses_to_overwrite(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    rest, status = run(tmp_path / "home", "exercise", "4", "--code", "loop.py", cwd=work)
    no_traceback(rest)
    assert status == 0, rest
    assert "Wrote the scaffold to loop.py" in flat(rest)
    written = (work / "loop.py").read_text(encoding="utf-8")
    assert "TODO" in written

    (work / "loop.py").write_text(written + "# my work\n", encoding="utf-8")
    rest, status = run(tmp_path / "home", "exercise", "4", "--code", "loop.py", cwd=work)
    no_traceback(rest)
    assert status == 1, rest
    assert "already exists" in flat(rest) and "--force" in flat(rest)
    assert (work / "loop.py").read_text(encoding="utf-8").endswith("# my work\n")

    rest, status = run(tmp_path / "home", "exercise", "4", "--code", "loop.py", "--force",
                       cwd=work)
    assert status == 0, rest
    assert (work / "loop.py").read_text(encoding="utf-8") == written
