"""Teaching on the spot: answers checked against each other, feedback said once, scores
that are never overwritten by an abandoned run, and the misconceptions the issue named."""

from __future__ import annotations

import json
from pathlib import Path

import reference
import torch
from reference import typed
from typer.testing import CliRunner

from autograd_tutor.cli import app

runner = CliRunner()


def ex2_json(answers: dict[str, reference.Value]) -> tuple[dict, str]:
    args = ["exercise", "2", "--json"]
    for key, value in answers.items():
        args += ["--answer", f"{key}={typed(value)}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return {s["id"]: s for s in json.loads(result.stdout)["steps"]}, result.stderr


def test_answers_that_break_the_chain_rule_are_named() -> None:
    right = reference.ex2()
    # A b.grad no misconception explains: the broken chain is the explanation.
    answers = {**right, "h_act.grad": right["h_act.grad"], "b.grad": right["b.grad"] + 7}
    steps, text = ex2_json(answers)
    assert steps["b.grad"]["misconception"] is None
    assert steps["b.grad"]["inconsistent_with"] == ["h_act.grad"]
    assert "inconsistent_with" not in steps["h_act.grad"]
    # The local factor of h_act = h + b with respect to b, from PyTorch itself.
    b = torch.tensor(reference.EX2_INPUTS["b"], requires_grad=True)
    (b + 1.0).backward()
    assert b.grad is not None
    flat = " ".join(text.split())
    assert "Your b.grad (" in flat and "does not follow from your h_act.grad (" in flat
    assert f"∂h_act/∂b = {right['h_act.grad']:g} × {b.grad.item():g} =" in flat


def test_one_explanation_per_mistake_when_a_misconception_is_named() -> None:
    """w1.grad and x.grad swapped: each answer matches a named misconception and also breaks
    the chain with h.grad. One paragraph each, not that paragraph and the chain sentence."""
    right = reference.ex2()
    swapped = {**right, "w1.grad": right["x.grad"], "x.grad": right["w1.grad"]}
    steps, text = ex2_json(swapped)
    for key in ("w1.grad", "x.grad"):
        assert steps[key]["misconception"] and steps[key]["inconsistent_with"] == ["h.grad"]
    whys = [line for line in text.splitlines() if line.startswith("Why ")]
    assert len(whys) == 2
    assert "does not follow from" not in text


def test_wrong_but_consistent_answers_pass_without_comment() -> None:
    """Every answer with the sign of w2 lost: wrong, but each follows from the one above."""
    right = reference.ex2()
    flipped = {key: -value if key != "w2.grad" and isinstance(value, float) else value
               for key, value in right.items()}
    steps, text = ex2_json(flipped)
    assert all("inconsistent_with" not in step for step in steps.values())
    assert "does not follow from" not in text


def test_one_paragraph_for_the_same_slip_in_several_answers() -> None:
    right = reference.ex2()
    flipped = {key: -value if key != "w2.grad" and isinstance(value, float) else value
               for key, value in right.items()}
    steps, text = ex2_json(flipped)
    slipped = [key for key, step in steps.items() if step["misconception"] == "sign-error"]
    assert len(slipped) >= 3
    assert text.count("You lost the minus sign") == 1
    header = next(line for line in text.splitlines() if line.startswith("Why "))
    for key in slipped:  # the paragraph once, naming every answer it explains
        assert f"{key} is not" in header


def test_an_abandoned_run_never_overwrites_the_finished_score() -> None:
    right = reference.ex3()
    ids = list(right)
    wrong = {key: value + 1 for key, value in right.items()}
    first = ["--answer", f"{ids[0]}={typed(right[ids[0]])}",
             "--answer", f"{ids[1]}={typed(wrong[ids[1]])}",
             "--answer", f"{ids[2]}={typed(wrong[ids[2]])}"]
    assert runner.invoke(app, ["exercise", "3", *first]).exit_code == 0
    quit_early = runner.invoke(app, ["exercise", "3"], input=f"{typed(right[ids[0]])}\nq\n")
    assert quit_early.exit_code == 1
    row = next(line for line in runner.invoke(app, ["list"]).output.splitlines()
               if "Accumulation" in line)
    assert "done" in row and "1/3" in row and "1/1" not in row.split("(")[0]
    progress = runner.invoke(app, ["progress", "--json"])
    runs = {a["run"] for a in json.loads(progress.stdout)["attempts"]}
    assert len(runs) == 2  # every run is kept, and shown
    table = runner.invoke(app, ["progress"]).output
    section = table[table.index("Every run"):]
    assert "1/3" in section and "1/1" in section and "yes" in section and "no" in section


def test_exercise_1_names_the_dropped_coefficient() -> None:
    """2x² differentiated as 2x: the wrong model's number, computed with torch here."""
    x = torch.tensor(reference.EX1_X, requires_grad=True)
    wrong = (x**3 + x**2 - 5 * x + 1)  # 2x² treated as x², whose slope is 2x
    wrong.backward()
    assert x.grad is not None
    result = runner.invoke(app, ["exercise", "1", "--json", "--answer",
                                 f"x.grad={typed(x.grad.item())}"])
    assert result.exit_code == 0
    (step,) = json.loads(result.stdout)["steps"]
    assert step["correct"] is False and step["misconception"] == "coefficient-dropped"


def test_practice_hints_draw_paths_with_the_tools_arrow(tmp_path: Path) -> None:
    """The tool draws a path with →; an ASCII -> in one hint was the odd one out."""
    import msgspec

    from autograd_tutor.content import packs

    found = packs.installed(tmp_path)
    steps = [t.step for t in found.templates()] + [
        step for pack in found.packs.values() for e in pack.exercises for step in e.steps]
    assert steps
    for step in steps:
        for prediction in step.predictions:  # hints, feedback, misconceptions
            assert "->" not in repr(msgspec.to_builtins(prediction)), prediction.id


def test_the_keys_help_says_what_skip_does() -> None:
    """skip leaves a prediction unscored; the answer shows at the reveal, as for any other."""
    result = runner.invoke(app, ["exercise", "1"], input="skip\n")
    assert result.exit_code == 0, result.output
    keys = next(line for line in result.output.splitlines() if "skip =" in line)
    assert "skip = leave it unscored" in keys and "show the answer" not in keys


def test_exercise_3_opens_once() -> None:
    """The intro says the default catches everyone; the first step does not say it again."""
    result = runner.invoke(app, ["exercise", "3", "--reveal", "--graph", "none"])
    assert result.exit_code == 0, result.output
    assert " ".join(result.output.split()).count("catches") == 1


def test_outcome_rows_leave_the_by_hand_column_empty() -> None:
    """What code does is not worked out by hand: no by-hand text in those rows."""
    from autograd_tutor.content.packs import builtin

    errors = builtin("errors")
    outcome = next(e for e in errors.exercises if any(p.kind == "outcome"
                                                      for p in e.predictions))
    label = next(p.label for p in outcome.predictions if p.kind == "outcome")
    result = runner.invoke(app, ["exercise", f"errors/{outcome.number}", "--reveal",
                                 "--graph", "none"])
    assert result.exit_code == 0, result.output
    assert "lesson's answer" not in result.output
    row = next(line for line in result.output.splitlines() if label.split()[0] in line
               and "│" in line)
    by_hand = row.split("│")[4]
    assert by_hand.strip() == ""


def test_a_wrong_outcome_is_explained_once_by_the_steps_explanation() -> None:
    """The step's explanation is about what the code did: no "Why ... is not runs"
    paragraph first that says the same."""
    from autograd_tutor.content.packs import builtin

    errors = builtin("errors")
    exercise, step = next((e, s) for e in errors.exercises for s in e.steps
                          if s.explanation and any(p.kind == "outcome" and p.by_hand != '"runs"'
                                                   for p in s.predictions))
    outcome = next(p for p in step.predictions if p.kind == "outcome")
    result = runner.invoke(app, ["exercise", f"errors/{exercise.number}", "--graph", "none",
                                 "--answer", f"{outcome.id}=runs"], input="1\n" * 20)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"Why {outcome.label} is not runs" not in text
    opening = " ".join(step.explanation.split()[:4]).replace("`", "").replace("*", "")
    assert opening in text.replace("*", "")
