"""Outcome predictions: what the code does (runs, error or warning), and which error.

Every message checked here comes from an independent run of the same code in the test:
plain `exec` with torch, outside the tutor. No message text is written in a test.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content.packs import builtin, key_text
from autograd_tutor.engine.model import Exercise, Prediction
from autograd_tutor.views.session import prompt_text
from autograd_tutor.views.ui import INPUT_HELP

runner = CliRunner()
PACKS = [builtin("basics"), builtin("errors")]


def outcome_cases() -> list[tuple[Exercise, int, Prediction]]:
    return [(exercise, index, prediction)
            for pack in PACKS for exercise in pack.exercises
            for index, step in enumerate(exercise.steps)
            for prediction in step.predictions if prediction.kind == "outcome"]


def independent_run(exercise: Exercise, upto: int) -> dict[str, Any]:
    """Run the exercise's code up to step `upto` the plain way: what that step raised or
    warned, and the names it left."""
    names: dict[str, Any] = {"torch": torch}
    result: dict[str, Any] = {"error": None, "warnings": [], "names": names}
    for index, step in enumerate(exercise.steps[: upto + 1]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                exec(step.code, names)
            except Exception as error:  # the lesson: PyTorch refuses
                if index == upto:
                    result["error"] = (type(error).__name__, str(error))
        if index == upto:
            result["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    return result


def args_up_to(exercise: Exercise, index: int, prediction: Prediction) -> list[str]:
    """`exercise` with every prediction before `prediction` (in step `index`) answered by
    --answer (any valid answer will do: runs for an outcome, so no "which error?" follows)."""
    args = ["exercise", key_text(exercise), "--graph", "none"]
    typed = {"outcome": "runs", "value": "0"}
    for step in exercise.steps[: index + 1]:
        for p in step.predictions:
            if p is prediction:
                return args
            if p.kind != "which":
                args.append(f"--answer={p.id}={typed[p.kind]}")
    raise AssertionError(f"{prediction.id} is not in step {index + 1}")


def ids(case: tuple[Exercise, int, Prediction]) -> str:
    return f"{case[0].key}:{case[2].id}"


@pytest.mark.parametrize("case", outcome_cases(), ids=ids)
def test_the_revealed_outcome_is_pytorchs_own(case: tuple[Exercise, int, Prediction],
                                             tmp_path) -> None:
    exercise, index, prediction = case
    truth = independent_run(exercise, index)
    expected = "error" if truth["error"] else "warning" if truth["warnings"] else "runs"
    result = runner.invoke(app, ["exercise", key_text(exercise), "--reveal", "--json",
                                 "--graph", "none", "--plots", str(tmp_path)])
    assert result.exit_code == 0, result.output
    step = {s["id"]: s for s in json.loads(result.stdout)["steps"]}[prediction.id]
    assert step["actual"] == expected
    if truth["error"]:
        kind, message = truth["error"]
        assert step["error"]["type"] == kind and step["error"]["message"] == message
        flat = " ".join(result.stderr.split())
        assert f"PyTorch raised {kind}: {' '.join(message.split())}" in flat
    else:
        assert "error" not in step
    if expected == "warning":
        assert step["warnings"] == truth["warnings"]


def test_outcome_answers_through_a_pipe_and_answer_options() -> None:
    """Exercise 5: 'e' and '2' typed, then --answer with the words; bad words refused."""
    basics = PACKS[0]
    ex5 = basics.exercise(5)
    piped = runner.invoke(app, ["exercise", "5", "--json", "--graph", "none"],
                          input="36\nmaybe\ne\n7\n2\nNone\n1\n")
    assert piped.exit_code == 0, piped.output
    report = {s["id"]: s for s in json.loads(piped.stdout)["steps"]}
    assert report["c.backward@detach"]["prediction"] == "error"
    assert report["c.backward@detach"]["correct"] is True
    which = ex5.steps[1].predictions[1]
    assert report["c.backward@detach:which"]["prediction"] == which.choices[1]
    assert report["c.backward@detach:which"]["correct"] is False
    not_counted = [line for line in piped.stderr.splitlines() if line.startswith("Not counted")]
    assert len(not_counted) == 2  # 'maybe' at the outcome, '7' at the numbered choice
    answered = runner.invoke(app, ["exercise", "5", "--json", "--graph", "none",
                                   "-a", "c.backward@detach=runs"],
                             input="36\nNone\n1\n")
    assert answered.exit_code == 0, answered.output
    report = {s["id"]: s for s in json.loads(answered.stdout)["steps"]}
    assert report["c.backward@detach"]["correct"] is False
    assert report["c.backward@detach"]["misconception"] == "detach-pass-through"
    assert "c.backward@detach:which" not in report  # asked only after a predicted error
    chosen = runner.invoke(app, ["exercise", "5", "--json", "--graph", "none",
                                 "-a", "c.backward@detach=error",
                                 "-a", "c.backward@detach:which=nothing requires grad"],
                           input="36\nNone\n1\n")
    assert chosen.exit_code == 0, chosen.output
    report = {s["id"]: s for s in json.loads(chosen.stdout)["steps"]}
    assert report["c.backward@detach:which"]["correct"] is True
    bad = runner.invoke(app, ["exercise", "5", "-a", "c.backward@detach=perhaps"])
    assert bad.exit_code == 2 and "runs, error or warning" in bad.output


@pytest.mark.parametrize("case", outcome_cases(), ids=ids)
def test_nothing_before_an_outcome_prompt_gives_it_away(case: tuple[Exercise, int, Prediction]
                                                        ) -> None:
    """Stop at the outcome's prompt (reveal of every earlier prediction on): neither PyTorch's
    message nor the step's explanation has been printed yet."""
    exercise, index, prediction = case
    result = runner.invoke(app, args_up_to(exercise, index, prediction), input="")
    assert result.exit_code == 1, result.output  # input ended at the outcome's prompt
    text = result.output
    prompt = prompt_text(prediction).rstrip()
    assert prompt in text
    before = " ".join(text[: text.rindex(prompt)].split())
    truth = independent_run(exercise, index)
    if truth["error"]:
        message = " ".join(truth["error"][1].split())
        assert message[:40] not in before
    for warning in truth["warnings"]:
        assert " ".join(warning.split())[:40] not in before
    explanation = " ".join(exercise.steps[index].explanation.split())
    for sentence in explanation.split(". ")[:2]:
        if len(sentence) > 30:
            assert sentence[:30] not in before


def follow_up(text: str, prediction: Prediction) -> str:
    """What was printed from the outcome's prompt on."""
    return text[text.rindex(prompt_text(prediction).rstrip()):]


@pytest.mark.parametrize("case", outcome_cases(), ids=ids)
def test_which_error_is_asked_only_after_a_predicted_error(
        case: tuple[Exercise, int, Prediction]) -> None:
    """Whether "which error?" comes depends on the learner's answer alone: never after runs
    or warning, and after error at every outcome of the pack, whatever PyTorch does."""
    exercise, index, prediction = case
    args = args_up_to(exercise, index, prediction)
    asked = {}
    for word in ("runs", "warning", "error"):
        result = runner.invoke(app, args, input=f"{word}\n")
        assert result.exit_code == 1, result.output  # input ended at the next prompt
        asked[word] = "Predict which error" in follow_up(result.output, prediction)
    assert asked == {"runs": False, "warning": False, "error": True}


def test_every_pack_has_outcomes_that_raise_and_outcomes_that_do_not() -> None:
    """The test above would prove nothing if every outcome question raised: PyTorch says which
    do (run here, outside the tutor)."""
    for pack in PACKS:
        raised = {independent_run(exercise, index)["error"] is not None
                  for exercise, index, _ in outcome_cases() if exercise.pack == pack.name}
        assert raised == {True, False}, pack.name


def test_a_which_answer_needs_a_predicted_error_and_is_unscored_when_none_came(tmp_path) -> None:
    """--answer follows the prompt's rule; an error predicted where PyTorch raised none keeps
    the chosen error but scores only the outcome."""
    errors = PACKS[1]
    case = next((e, i, p) for e, i, p in outcome_cases()
                if e.pack == "errors" and independent_run(e, i)["error"] is None)
    exercise, index, prediction = case
    which = f"{prediction.id}:which"
    lone = runner.invoke(app, ["exercise", key_text(exercise), "-a", f"{which}=1"])
    assert lone.exit_code == 2 and f"{prediction.id}=error" in lone.output
    after_runs = runner.invoke(app, ["exercise", key_text(exercise), "-a", f"{which}=1",
                                     "-a", f"{prediction.id}=runs"])
    assert after_runs.exit_code == 2
    args = args_up_to(exercise, index, prediction) + [
        "--json", "--plots", str(tmp_path), "-a", f"{prediction.id}=error", "-a", f"{which}=1"]
    later = [p for step in exercise.steps for p in step.predictions
             if p.kind == "value" and f"--answer={p.id}=0" not in args]
    args += [f"--answer={p.id}=0" for p in later]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    steps = {s["id"]: s for s in json.loads(result.stdout)["steps"]}
    assert steps[prediction.id]["correct"] is False
    chosen = errors.exercise(exercise.number).steps[index].predictions
    assert steps[which]["prediction"] == next(p for p in chosen if p.id == which).choices[0]
    assert steps[which]["correct"] is None and steps[which]["skipped"] is False
    assert "not scored" in result.stderr


def test_reveal_asks_no_which_question(tmp_path) -> None:
    """--reveal predicts nothing, so no error was predicted: no "which error?" row either."""
    outcomes: dict[str, list[str]] = {}
    for exercise, _, prediction in outcome_cases():
        outcomes.setdefault(key_text(exercise), []).append(prediction.id)
    for key, found in outcomes.items():
        result = runner.invoke(app, ["exercise", key, "--reveal", "--json", "--graph", "none",
                                     "--plots", str(tmp_path)])
        assert result.exit_code == 0, result.output
        ids = [s["id"] for s in json.loads(result.stdout)["steps"]]
        for outcome in found:
            assert outcome in ids and f"{outcome}:which" not in ids


def test_basics_2_asks_what_reading_h_grad_does_without_retain_grad(tmp_path) -> None:
    """The step once asked a question it never let the learner answer. PyTorch, run here:
    reading .grad of an intermediate that kept none warns and gives None."""
    x = torch.tensor(2.0, requires_grad=True)
    h = x * 3.0
    y = (h + 0.5) * -1.0
    y.backward()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        held = h.grad
    expected = "warning" if caught else "runs"
    step = builtin("basics").exercise(2).steps[1]
    outcome, value = step.predictions[0], step.predictions[-1]
    assert outcome.kind == "outcome" and value.label == "h.grad"
    result = runner.invoke(app, ["exercise", "2", "--json", "--graph", "none",
                                 "--plots", str(tmp_path), "-a", f"{outcome.id}={expected}",
                                 "-a", f"{value.id}={held}"],
                           input="0\n" * len(builtin("basics").exercise(2).steps[0].predictions))
    assert result.exit_code == 0, result.output
    steps = {s["id"]: s for s in json.loads(result.stdout)["steps"]}
    assert steps[outcome.id]["actual"] == expected == "warning"
    assert steps[outcome.id]["correct"] is True
    assert steps[value.id]["actual"] is held is None and steps[value.id]["correct"] is True


# Words that say what code did: none may be shown before the question whose answer it is.
SAYS = {
    "error": ("raise", "raises", "refuse", "refuses", "fails", "error", "uses up", "used up",
              "freed", "the first line", "can it", "can a tensor"),
    "warning": ("warn", "warns", "warning"),
    "runs": ("fix", "the fix", "works", "runs fine"),
}


def words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower().replace("()", "")))


@pytest.mark.parametrize("case", outcome_cases(), ids=ids)
def test_the_words_before_an_outcome_say_nothing_of_it(case: tuple[Exercise, int, Prediction]
                                                       ) -> None:
    """The exercise's title and intro and the step's own text, as printed up to the outcome's
    prompt, name neither what PyTorch did (run here) nor the right error's name (the choices
    themselves are listed only after a predicted error)."""
    exercise, index, prediction = case
    truth = independent_run(exercise, index)
    did = "error" if truth["error"] else "warning" if truth["warnings"] else "runs"
    step = exercise.steps[index]
    result = runner.invoke(app, args_up_to(exercise, index, prediction), input="",
                           env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    text = result.output[: result.output.rindex(prompt_text(prediction).rstrip())]
    for help_text in INPUT_HELP.values():  # the tool's own words of how to type
        for line in help_text.splitlines():
            text = text.replace(line, "")
    first = text.find(exercise.steps[0].title)
    here = text.find(step.title, text.find(exercise.steps[index - 1].title) + 1
                     if index else first)
    assert 0 <= first <= here, text
    shown = words(text[:first] + text[here:])
    for said in SAYS[did]:
        assert not re.search(rf"\b{words(said)}\b", shown), (said, shown)
    which = next((p for p in step.predictions if p.id == f"{prediction.id}:which"), None)
    if which is not None and did == "error":
        assert words(which.by_hand.strip('"')) not in shown
