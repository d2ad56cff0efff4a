"""The tutor in a real pseudo-terminal (pexpect): prompts, reveals, colours and Ctrl-C. One
spawn per terminal behaviour; what needs no terminal (what a run prints and records) runs
in-process with Typer's CliRunner, whose input and output are not a terminal."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import reference
import torch
from reference import typed
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content.packs import builtin
from autograd_tutor.engine.answers import format_value
from autograd_tutor.engine.model import History
from autograd_tutor.engine.store import Store

BASICS = builtin()
runner = CliRunner()

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


def history(home: Path) -> History:
    """The stored history, read by the store itself (warnings printed, not hidden)."""
    return Store(home, warn=print).load()


def test_next_in_a_terminal_runs_exercise_1(tutor_env: Path) -> None:
    """At a terminal: colour, nothing revealed before the prompt, invalid input refused and the
    same prompt again, a hint on `?`, then a right answer revealed, recorded and the next
    exercise named."""
    right = reference.ex1()["x.grad"]
    child = spawn("next")
    child.expect_exact("Exercise 1")
    child.expect_exact("Predict x.grad")
    before_prompt = child.before
    assert "\x1b[" in before_prompt  # a terminal gets colour
    assert "The code that will run" in plain(before_prompt)
    for marker in ("against PyTorch", "Forward values", format_value(right)):
        assert marker not in plain(before_prompt).split("The code that will run")[-1]
    child.sendline("__import__('os')")
    child.expect_exact("Not counted")
    child.expect_exact("Predict x.grad")
    child.sendline("?")
    child.expect_exact("Hint 1/")
    child.expect_exact("Predict x.grad")
    child.sendline(typed(right))
    child.expect_exact("Your predictions against PyTorch")
    rest, status = finish(child)
    assert status == 0, plain(rest)
    row = reveal_row(rest, "x.grad")
    assert "right" in row and "wrong" not in row
    assert "1 of 1 predictions right" in plain(rest)
    assert "autograd-tutor exercise 2" in plain(rest)
    assert "Traceback" not in plain(rest)
    assert [(a.prediction, a.correct) for a in history(tutor_env).attempts] == [(right, True)]


def test_exercise_1_wrong_and_skipped_answers_are_revealed_and_recorded(tutor_env: Path) -> None:
    """What a wrong or a skipped answer shows and records needs no terminal: in-process."""
    right = reference.ex1()["x.grad"]
    wrong = right - 4
    result = runner.invoke(app, ["exercise", "1"], input=f"{typed(wrong)}\n")
    assert result.exit_code == 0, result.output
    row = reveal_row(result.output.split("Your predictions against PyTorch")[1], "x.grad")
    cells = [cell.strip() for cell in row.split("│")]
    assert format_value(wrong) in cells and format_value(right) in cells
    assert "wrong" in row
    assert "0 of 1 predictions right" in result.output
    assert "Traceback" not in result.output

    result = runner.invoke(app, ["exercise", "1"], input="skip\n")
    assert result.exit_code == 0, result.output
    assert "skipped" in reveal_row(result.output.split("Your predictions against PyTorch")[1],
                                   "x.grad")

    attempts = history(tutor_env).attempts
    assert [(a.prediction, a.correct) for a in attempts] == [(wrong, False), (None, None)]


def test_exercise_3_answering_all_three_prompts() -> None:
    """Three prompts in a row, all right: the prompts at a terminal are the pexpect tests'
    part, so this runs in-process."""
    answers = reference.ex3()
    result = runner.invoke(app, ["exercise", "3"],
                           input="".join(typed(value) + "\n" for value in answers.values()))
    assert result.exit_code == 0, result.output
    assert result.output.count("Predict x.grad:") == 3
    assert "3 of 3 predictions right" in result.output
    assert "Traceback" not in result.output


def test_home_screen_in_a_terminal() -> None:
    child = spawn()
    rest, status = finish(child)
    assert status == 0
    text = plain(rest)
    assert "Welcome" in text and "autograd-tutor exercise 1" in text


def test_list_in_a_terminal_has_colour_but_not_with_no_color() -> None:
    child = spawn("list")
    rest, status = finish(child)
    assert status == 0
    text = plain(rest)
    for exercise in BASICS.exercises:
        assert exercise.title in text
    assert "not started" in text
    assert "\x1b[" in rest

    child = spawn("list", NO_COLOR="1")
    rest, status = finish(child)
    assert status == 0 and "\x1b[" not in rest
    assert BASICS.exercises[0].title in rest


def test_no_escape_codes_in_an_exercise_with_no_color(tutor_env: Path) -> None:
    """NO_COLOR at a terminal: the code, reveal tables, a typed prompt and Exercise 4's
    training view (never animated then) carry no escape codes at all."""
    answers = reference.ex4()
    *given, last = answers
    args = ["exercise", "4", "--graph", "none"]
    for key in given:
        args += ["--answer", f"{key}={typed(answers[key])}"]
    child = spawn(*args, NO_COLOR="1")
    child.expect_exact("Predict b after 200 steps")
    before = child.before
    child.sendline(typed(answers[last]))
    rest, status = finish(child)
    assert status == 0, plain(rest)
    assert "\x1b[" not in before + rest
    assert f"{len(answers)} of {len(answers)} predictions right" in plain(rest)
    assert [a.id for a in history(tutor_env).attempts] == list(answers)


def detach_error() -> str:
    """What PyTorch itself raises for Exercise 5's 'with detach' code, run here directly."""
    import torch

    a = torch.tensor(2.0, requires_grad=True)
    b = a * 3
    c = b.detach() ** 2
    try:
        c.backward()
    except RuntimeError as error:
        return f"{type(error).__name__}: {error}"
    raise AssertionError("c.backward() did not raise")  # pragma: no cover


def test_exercise_5_outcome_prediction(tutor_env: Path) -> None:
    """Outcome and which-error prompts are read by the same prompt loop as numbers (shown at a
    terminal above), so this runs in-process."""
    answers = reference.ex5()
    expected = detach_error()
    outcome_prompt = "Predict what c.backward() does"
    lines = [typed(answers["a.grad"]), "maybe", "error", "1", "None",
             typed(answers["a.grad@partial"])]
    result = runner.invoke(app, ["exercise", "5"], input="".join(line + "\n" for line in lines))
    assert result.exit_code == 0, result.output
    output = result.output
    assert "Traceback" not in output

    # A word that is not an outcome: one line saying why, then the same prompt again.
    asked = output.split(outcome_prompt)
    assert len(asked) == 3, output
    after = [line.strip() for line in asked[1].splitlines()[1:] if line.strip()]
    assert len(after) == 1 and after[0].startswith("Not counted:"), after
    assert "Predict which error c.backward() raises" in asked[2]

    # Between the second a.grad prompt and the third: the detach step's reveal.
    text = output.split("Predict a.grad")[2]
    raised = [line.rstrip() for line in text.splitlines() if line.startswith("PyTorch raised ")]
    assert raised == [f"PyTorch raised {expected}"], text
    table = text.split("Your predictions against PyTorch", 1)[1]
    for label in ("c.backward()", "which error", "a.grad"):
        assert "right" in reveal_row(table, label)
    assert "5 of 5 predictions right" in output

    attempts = {a.id: a for a in history(tutor_env).attempts}
    outcome = attempts["c.backward@detach"]
    assert (outcome.prediction, outcome.actual, outcome.correct) == ("error", "error", True)
    assert outcome.error is not None
    assert f"{outcome.error['type']}: {outcome.error['message']}" == expected
    assert attempts["c.backward@detach:which"].correct is True
    assert (attempts["a.grad@detach"].prediction, attempts["a.grad@detach"].correct) \
        == (None, True)


def test_a_named_mistake_is_followed_by_an_aimed_problem() -> None:
    """Exercise 3: 6 at x.grad@2 is 'replaced, not accumulated'; the offer comes at once, and
    accepting it asks a new accumulation problem with numbers of its own."""
    right = reference.ex3()
    fresh = right["x.grad@1"]  # one pass: what the replace-model predicts for x.grad@2
    child = spawn("exercise", "3", "--graph", "none")
    child.expect_exact("Predict x.grad:")
    child.sendline(typed(right["x.grad@1"]))
    child.expect_exact("Predict x.grad:")
    child.sendline(typed(fresh))
    child.expect_exact("Try one aimed at this? [Y/n]")
    child.sendline("y")
    child.expect_exact("Practice: accumulation")
    child.expect_exact("The code that will run")
    child.expect(r"Predict (\S+):")
    shown = plain(child.before)
    code = "\n".join(line[2:].rstrip().removesuffix("│").rstrip()
                     for line in shown.splitlines() if line.startswith("│"))
    names: dict = {"torch": torch}
    exec(code, names)  # the problem's own code, run here: its answer, independently
    exercise_code = "".join(step.code for step in BASICS.exercise(3).steps)
    numbers = re.compile(r"\d+(?:\.\d+)?")
    assert set(numbers.findall(code)) != set(numbers.findall(exercise_code))
    child.sendline(typed(names["x"].grad.item()))
    child.expect_exact("Back to The Accumulation Trap.")
    child.expect_exact("Predict x.grad:")
    child.sendline(typed(right["x.grad@3"]))
    rest, status = finish(child)
    assert status == 0, rest


def test_piped_input_never_sees_the_offer() -> None:
    """Input that is not a terminal (CliRunner's, like a pipe's) gets the plain flow: the named
    mistake at x.grad@2 brings no offer."""
    right = reference.ex3()
    wrong = right["x.grad@1"]
    result = runner.invoke(app, ["exercise", "3"],
                           input=f"{typed(right['x.grad@1'])}\n{typed(wrong)}\n"
                                 f"{typed(right['x.grad@3'])}\n")
    assert result.exit_code == 0, result.output
    assert "2 of 3 predictions right" in result.output
    assert "aimed at this" not in result.output


def test_json_runs_in_a_terminal_never_see_the_offer() -> None:
    right = reference.ex3()
    child = spawn("exercise", "3", "--json", "--graph", "none")
    child.expect_exact("Predict x.grad:")
    child.sendline(typed(right["x.grad@1"]))
    child.expect_exact("Predict x.grad:")
    child.sendline(typed(right["x.grad@1"]))  # the replace-model's answer: a named mistake
    index = child.expect_exact(["Try one aimed at this?", "Predict x.grad:"])
    assert index == 1, "the offer appeared in a --json run"
    child.sendline(typed(right["x.grad@3"]))
    rest, status = finish(child)
    assert status == 0, rest


def test_a_mistake_in_the_errors_pack_gets_a_real_aimed_problem() -> None:
    """errors/1: predicting that the second backward() runs is 'runs-after-free'. Once the
    offer said "No practice problem for this concept yet"; now it is made only with a
    problem in hand, and the problem asks about a freed graph with numbers of its own."""
    child = spawn("exercise", "errors/1", "--graph", "none")
    child.expect_exact("Predict what the second y.backward() does")
    child.sendline("runs")
    while child.expect([r"Predict which error[^\n]*: ", r"Predict x\.grad: ",
                        re.escape("Try one aimed at this? [Y/n]")]) != 2:
        child.sendline("1" if "which" in child.after else "skip")
    child.sendline("")  # yes
    child.expect_exact("Practice: graph-freed")
    child.expect_exact("The code that will run")
    child.expect(r"Predict what (.+?) does")
    shown = plain(child.before)
    code = "\n".join(line[2:].rstrip().removesuffix("│").rstrip()
                     for line in shown.splitlines() if line.startswith("│"))
    names: dict = {"torch": torch}
    try:
        exec(code, names)  # the problem's own code, run here: what it really does
        outcome = "runs"
    except RuntimeError:
        outcome = "error"
    assert outcome == "error", code
    child.sendline(outcome)
    while child.expect([r"Predict ([^\n]*?): ", re.escape("Back to ")]) == 0:
        child.sendline("skip")
    child.expect(r"Predict [^\n]*: ")  # the exercise goes on at its next step
    child.sendline("skip")
    while child.expect([r"Predict [^\n]*: ", pexpect.EOF]) == 0:
        child.sendline("skip")
    child.close()
    assert child.exitstatus == 0
