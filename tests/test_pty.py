"""The tutor in a real pseudo-terminal (pexpect): prompts, reveals, colours and Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import reference
from reference import typed

from autograd_tutor import exercises
from autograd_tutor.answers import format_value

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
TIMEOUT = 60


def plain(text: str) -> str:
    return ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "")


def spawn(*args: str, **env: str):
    """`python -m autograd_tutor ARGS` in a 40x100 pty; AUTOGRAD_TUTOR_HOME is the test's own
    temporary directory (set by the autouse fixture in conftest.py)."""
    environment = {**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm", **env}
    if "NO_COLOR" not in env:
        environment.pop("NO_COLOR", None)
    return pexpect.spawn(sys.executable, ["-m", "autograd_tutor", *args], dimensions=(40, 100),
                         env=environment, encoding="utf-8", timeout=TIMEOUT)


def finish(child) -> tuple[str, int | None]:
    """Read to the end; return everything printed since the last match, and the exit status."""
    child.expect(pexpect.EOF)
    rest = child.before
    child.close()
    return rest, child.exitstatus


def reveal_row(text: str, label: str) -> str:
    rows = [line for line in plain(text).splitlines() if "│" in line and f" {label} " in line]
    assert rows, plain(text)
    return rows[0]


def progress(home: Path) -> dict:
    return json.loads((home / "progress.json").read_text(encoding="utf-8"))


def test_exercise_1_wrong_then_right(tutor_env: Path) -> None:
    right = reference.ex1()["x.grad"]
    wrong = right - 4

    child = spawn("exercise", "1")
    child.expect_exact("Predict x.grad")
    before_prompt = plain(child.before)
    assert "The code that will run" in before_prompt
    for marker in ("against PyTorch", "Forward values", format_value(right)):
        assert marker not in before_prompt.split("The code that will run")[-1]
    child.sendline(typed(wrong))
    child.expect_exact("Your predictions against PyTorch")
    rest, status = finish(child)
    assert status == 0, plain(rest)
    row = reveal_row(rest, "x.grad")
    cells = [cell.strip() for cell in row.split("│")]
    assert format_value(wrong) in cells and format_value(right) in cells
    assert "wrong" in row
    assert "0 of 1 predictions right" in plain(rest)
    assert "Traceback" not in plain(rest)

    child = spawn("exercise", "1")
    child.expect_exact("Predict x.grad")
    child.sendline(typed(right))
    child.expect_exact("Your predictions against PyTorch")
    rest, status = finish(child)
    assert status == 0
    row = reveal_row(rest, "x.grad")
    assert "right" in row and "wrong" not in row
    assert "1 of 1 predictions right" in plain(rest)

    attempts = progress(tutor_env)["attempts"]
    assert [(a["prediction"], a["correct"]) for a in attempts] == [(wrong, False), (right, True)]


def test_exercise_3_answering_all_three_prompts() -> None:
    answers = reference.ex3()
    child = spawn("exercise", "3")
    for value in answers.values():
        child.expect_exact("Predict x.grad")
        child.sendline(typed(value))
    rest, status = finish(child)
    assert status == 0, plain(rest)
    assert "3 of 3 predictions right" in plain(rest)
    assert "Traceback" not in plain(rest)


def test_invalid_input_then_hint_in_a_terminal() -> None:
    child = spawn("exercise", "1")
    child.expect_exact("Predict x.grad")
    child.sendline("__import__('os')")
    child.expect_exact("Not counted")
    child.expect_exact("Predict x.grad")
    child.sendline("?")
    child.expect_exact("Hint 1/")
    child.expect_exact("Predict x.grad")
    child.sendline("skip")
    rest, status = finish(child)
    assert status == 0
    assert "skipped" in reveal_row(rest, "x.grad")


def test_list_in_a_terminal() -> None:
    child = spawn("list")
    rest, status = finish(child)
    assert status == 0
    text = plain(rest)
    for exercise in exercises.EXERCISES:
        assert exercise.title in text
    assert "not started" in text


def test_home_screen_in_a_terminal() -> None:
    child = spawn()
    rest, status = finish(child)
    assert status == 0
    text = plain(rest)
    assert "Welcome" in text and "autograd-tutor exercise 1" in text


def test_next_in_a_terminal_runs_exercise_1() -> None:
    child = spawn("next")
    child.expect_exact("Exercise 1")
    child.expect_exact("Predict x.grad")
    child.sendline(typed(reference.ex1()["x.grad"]))
    rest, status = finish(child)
    assert status == 0
    assert "right" in reveal_row(rest, "x.grad")
    assert "autograd-tutor exercise 2" in plain(rest)


def test_ctrl_c_at_a_prompt_exits_130_without_traceback(tutor_env: Path) -> None:
    answers = reference.ex3()
    child = spawn("exercise", "3")
    child.expect_exact("Predict x.grad")
    child.sendline(typed(answers["x.grad@1"]))
    child.expect_exact("Predict x.grad")
    child.sendintr()
    rest, status = finish(child)
    text = plain(rest)
    assert status == 130, text
    assert "interrupted" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert [a["id"] for a in progress(tutor_env)["attempts"]] == ["x.grad@1"]


def test_terminal_output_has_colour_but_not_with_no_color() -> None:
    child = spawn("exercise", "1")
    child.expect_exact("Predict x.grad")
    coloured = child.before
    child.sendline("skip")
    finish(child)
    assert "\x1b[" in coloured

    child = spawn("exercise", "1", NO_COLOR="1")
    child.expect_exact("Predict x.grad")
    before = child.before
    child.sendline("skip")
    rest, status = finish(child)
    assert status == 0
    assert "\x1b[" not in before + rest

    child = spawn("list", NO_COLOR="1")
    rest, status = finish(child)
    assert status == 0 and "\x1b[" not in rest
