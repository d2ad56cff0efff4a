"""Every value the tutor reveals is what PyTorch computes: checked against the tests' own torch.

The expected values come from `reference.py`, which recomputes each notebook cell with
PyTorch directly (no tutor code). The answers fed to the tutor are those same values, so
every prediction must also be judged right.
"""

from __future__ import annotations

import json
import math

import pytest
import reference
import torch
from reference import Value, typed
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content.packs import builtin
from autograd_tutor.engine.answers import format_value

BASICS = builtin()

runner = CliRunner()

# Exact gradients: float32 in PyTorch on both sides; the by-hand column is float64 maths.
REL, ABS = 1e-5, 1e-6


def run_json(number: int, answers: dict[str, Value], *extra: str) -> tuple[dict, str]:
    args = ["exercise", str(number), "--json", *extra]
    for key, value in answers.items():
        args += ["--answer", f"{key}={typed(value)}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def assert_same(got: Value, expected: Value, what: str) -> None:
    if expected is None or isinstance(expected, str):
        assert got == expected, what
    else:
        assert isinstance(got, float), what
        assert math.isclose(got, expected, rel_tol=REL, abs_tol=ABS), f"{what}: {got} != {expected}"


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_prediction_ids_are_the_documented_contract(number: int) -> None:
    answers = reference.answers(number)
    # "Which error?" is asked only after a predicted error: right answers ask it only where
    # the code raises.
    asked = [key for key in BASICS.exercise(number).prediction_ids
             if not key.endswith(":which") or answers.get(key.removesuffix(":which")) == "error"]
    assert asked == list(answers)


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_revealed_values_match_pytorch(number: int) -> None:
    expected = reference.answers(number)
    report, _ = run_json(number, expected)
    assert report["exercise"] == number
    assert [step["id"] for step in report["steps"]] == list(expected)
    for step in report["steps"]:
        assert_same(step["actual"], expected[step["id"]], f"actual of {step['id']}")
        assert_same(step["by_hand"], expected[step["id"]], f"by_hand of {step['id']}")
        assert step["correct"] is True, step
        assert step["skipped"] is False
    assert report["score"] == {"correct": len(expected), "asked": len(expected)}


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_revealed_values_match_pytorch_with_reveal(number: int) -> None:
    expected = reference.answers(number)
    report, text = run_json(number, {}, "--reveal")
    for step in report["steps"]:
        assert_same(step["actual"], expected[step["id"]], f"actual of {step['id']}")
        assert_same(step["by_hand"], expected[step["id"]], f"by_hand of {step['id']}")
        assert step["correct"] is None and step["skipped"] is True
    assert [step["id"] for step in report["steps"]] == [
        key for key in expected if not key.endswith(":which")]  # no error predicted
    # The human-readable reveal shows the same numbers, formatted.
    for key, value in expected.items():
        if not key.endswith(":which"):
            assert format_value(value) in text


def test_wrong_answers_are_judged_wrong() -> None:
    for number in (1, 2, 3, 5):
        expected = reference.answers(number)
        wrong = {key: _other(value) for key, value in expected.items()}
        # A wrong outcome is not an error here, so no "which error?" follows it.
        wrong = {key: value for key, value in wrong.items()
                 if not key.endswith(":which") or wrong[key.removesuffix(":which")] == "error"}
        report, _ = run_json(number, wrong)
        assert all(step["correct"] is False for step in report["steps"]), report


def _other(value: Value) -> Value:
    """A wrong answer of the same kind: another number, another outcome, another choice."""
    if value is None:
        return 0.0
    if value in ("runs", "error", "warning"):
        return "runs" if value != "runs" else "error"
    if isinstance(value, str):
        return "backward twice"
    return value + 1.0


def test_exercise_2_forward_values_and_intermediate_grads() -> None:
    forward = reference.ex2_forward()
    _, text = run_json(2, {}, "--reveal")
    line = next(line for line in text.splitlines() if line.startswith("Forward values"))
    for name, value in forward.items():
        assert f"{name} = {format_value(value)}" in line
    # Without retain_grad() a non-leaf's .grad is None: check PyTorch agrees, then the text.
    x = torch.tensor(reference.EX2_INPUTS["x"], requires_grad=True)
    h = x * reference.EX2_INPUTS["w1"]
    ((h + reference.EX2_INPUTS["b"]) * reference.EX2_INPUTS["w2"]).backward()
    with pytest.warns(UserWarning):
        assert h.grad is None
    assert "None" in text and "retain_grad()" in text


def test_exercise_3_accumulates_then_resets() -> None:
    expected = reference.ex3()
    # The second pass really adds, and zero_() really resets: the same as one fresh pass.
    x = torch.tensor(reference.EX3_X, requires_grad=True)
    (one_pass,) = torch.autograd.grad(x**2, x)
    assert expected["x.grad@1"] == one_pass.item()
    assert expected["x.grad@2"] == 2 * one_pass.item()
    assert expected["x.grad@3"] == one_pass.item()
    report, _ = run_json(3, expected)
    assert [s["actual"] for s in report["steps"]] == list(expected.values())


def test_exercise_4_training_log_and_losses() -> None:
    expected = reference.ex4()
    losses, params = reference.ex4_training()
    report, text = run_json(4, expected)
    assert all(step["correct"] for step in report["steps"])
    # The notebook's progress lines every 40 steps, with PyTorch's numbers.
    for step in range(40, reference.EX4_STEPS + 1, 40):
        w, b = params[step - 1]
        line = f"Step {step:3d}: loss = {losses[step - 1]:.4f}, w = {w:.4f}, b = {b:.4f}"
        assert line in text, line
    w, b = params[-1]
    assert f"Final: w = {w:.4f}" in text and f"b = {b:.4f}" in text
    # The least-squares fit the explanation names, from torch.linalg.
    xs, ys = reference.ex4_data()
    design = torch.stack([xs, torch.ones_like(xs)], dim=1).double()
    solution = torch.linalg.lstsq(design, ys.double().unsqueeze(1)).solution.squeeze(1)
    assert f"w = {solution[0].item():.4f}" in text
    assert f"b = {solution[1].item():.4f}" in text
    assert abs(w - solution[0].item()) < 0.01


def test_exercise_5_detach_cell_raises_and_leaves_a_grad_none() -> None:
    message, a_grad = reference.ex5_detach_error()
    assert a_grad is None
    assert "does not require grad" in message
    expected = reference.ex5()
    assert expected["a.grad@detach"] is None
    report, text = run_json(5, expected)
    by_id = {step["id"]: step for step in report["steps"]}
    assert by_id["a.grad@detach"]["actual"] is None
    assert by_id["a.grad@detach"]["by_hand"] is None
    assert by_id["a.grad@detach"]["prediction"] is None
    assert by_id["a.grad@detach"]["correct"] is True
    # The tutor tells the truth: PyTorch's own error, word for word, in the text and JSON.
    flat = " ".join(text.split())
    assert "RuntimeError" in flat and message in flat
    outcome = by_id["c.backward@detach"]
    assert outcome["actual"] == "error" and outcome["correct"] is True
    assert outcome["error"]["type"] == "RuntimeError"
    assert outcome["error"]["message"] == message
    code = BASICS.exercise(5).steps[1].code.rstrip("\n").split("\n")
    assert code[outcome["error"]["line"] - 1].strip() == "c.backward()"  # the line that raised


def test_exercise_5_partial_detach_keeps_the_direct_path() -> None:
    a = torch.tensor(reference.EX5_A, requires_grad=True)
    b = a * 3
    c = b.detach() ** 2 + a
    c.backward()
    assert a.grad is not None
    report, _ = run_json(5, {}, "--reveal")
    by_id = {step["id"]: step for step in report["steps"]}
    assert_same(by_id["a.grad@partial"]["actual"], a.grad.item(), "a.grad@partial")
    # The cut path contributes nothing: the full chain's gradient is not in the answer.
    assert by_id["a.grad@partial"]["actual"] != by_id["a.grad"]["actual"] + a.grad.item()


def test_exercise_5_zero_is_not_none() -> None:
    report, text = run_json(5, {"a.grad@detach": 0.0}, "--reveal")
    by_id = {step["id"]: step for step in report["steps"]}
    assert by_id["a.grad@detach"]["correct"] is False
    assert by_id["a.grad@detach"]["prediction"] == 0.0
    assert "None" in text and "0" in text
    assert by_id["a.grad@detach"]["misconception"] is not None
