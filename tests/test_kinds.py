"""Predictions of every kind PyTorch has: tensors, shapes, flags, dtypes and grad_fns.

For each kind: what learners type (and a one-line message for what they can't), judging,
the reveal, `--json` and the history. The exercises are the format-2 example pack's; every
expected value is computed here by this file's own torch code.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import hypothesis
import pytest
import torch
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content.packs import load_pack
from autograd_tutor.engine.answers import (
    AnswerError,
    format_marked,
    format_value,
    is_close,
    parse_dtype,
    parse_flag,
    parse_grad_fn,
    parse_prediction,
    parse_shape,
    parse_value,
    tensor_verdict,
    wrong_elements,
)
from autograd_tutor.engine.expressions import (
    ExprError,
    Scope,
    evaluate,
    parse_pack_expression,
    result_kind,
)
from autograd_tutor.engine.model import Attempt, Kind
from autograd_tutor.engine.runner import Guess, Run, load_helpers
from autograd_tutor.engine.store import Store, attempt_from
from autograd_tutor.views.env import Environment
from autograd_tutor.views.session import row
from autograd_tutor.views.ui import UI

runner = CliRunner()
EXAMPLE = Path(__file__).parent.parent / "examples" / "packs" / "shapes-and-flags"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(EXAMPLE.parent))
    return EXAMPLE


# What each exercise computes, by this file's own torch code ------------------------------


def vectors() -> dict[str, object]:
    x = torch.tensor([1.0, 0.0, 5.0, 2.0], requires_grad=True)
    (x**2).sum().backward()
    inputs = torch.ones(2, 3)
    w = torch.full((3, 2), 0.5, requires_grad=True)
    out = inputs @ w
    out.sum().backward()
    assert x.grad is not None and w.grad is not None
    return {"x.grad": x.grad.tolist(), "x.grad.shape": tuple(x.grad.shape),
            "W.grad": w.grad.tolist(), "W.grad.shape": tuple(w.grad.shape),
            "out.shape": tuple(out.shape)}


def flags() -> dict[str, object]:
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = a * 3
    c = b.detach()
    n = torch.tensor([1, 2, 3])
    h = (a * 3 + 1).exp()
    assert h.grad_fn is not None
    return {"b.requires_grad": b.requires_grad, "b.is_leaf": b.is_leaf,
            "c.requires_grad": c.requires_grad,
            "n.dtype": str(n.dtype).removeprefix("torch."),
            "h.grad_fn": type(h.grad_fn).__name__}


def shape_text(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"


# Parsing what learners type ---------------------------------------------------------------


@pytest.mark.parametrize(("typed", "value"), [
    ("[2, 0, 20]", [2.0, 0.0, 20.0]),
    ("2 0 20", [2.0, 0.0, 20.0]),
    ("2, 0, 20", [2.0, 0.0, 20.0]),
    ("[[1, 2], [3, 4]]", [[1.0, 2.0], [3.0, 4.0]]),
    ("[-1.5, 1/2]", [-1.5, 0.5]),
    ("\u22121 2", [-1.0, 2.0]),
    ("7", 7.0),
    ("None", None),
])
def test_a_tensor_is_typed_as_its_elements(typed: str, value: object) -> None:
    assert parse_value(typed, tensor=True) == value


@pytest.mark.parametrize("typed", ["[2, 0, 20]", "2 0 20", "2, 0"])
def test_only_a_format_2_value_takes_a_tensor(typed: str) -> None:
    """Format 1 asks for numbers only: there, "34 35" is a typing slip, not a tensor."""
    with pytest.raises(AnswerError):
        parse_value(typed)
    pack, _ = load_pack(EXAMPLE)
    assert pack is not None
    (x_grad,) = [p for p in pack.exercise(1).predictions if p.id == "x.grad"]
    assert x_grad.tensor and isinstance(parse_prediction(typed, x_grad), list)


@pytest.mark.parametrize("typed", ["[1, [2]]", "[[1, 2], [3]]", "[]", "[x, 2]", "[1, 2] + 3",
                                   "[" * 10 + "1" + "]" * 10, "[" + "1, " * 100 + "1]"])
def test_a_tensor_that_is_not_one_gets_a_one_line_message(typed: str) -> None:
    with pytest.raises(AnswerError) as problem:
        parse_value(typed, tensor=True)
    assert str(problem.value) and "\n" not in str(problem.value)


@pytest.mark.parametrize(("typed", "shape"), [
    ("(3,)", "(3,)"), ("3", "(3,)"), ("(4, 3)", "(4, 3)"), ("4x3", "(4, 3)"),
    ("4 x 3", "(4, 3)"), ("[4, 3]", "(4, 3)"), ("torch.Size([4, 3])", "(4, 3)"),
    ("()", "()"), ("( )", "()"), ("torch.Size([])", "()"), ("(2, 3, 4)", "(2, 3, 4)"),
])
def test_a_shape_is_typed_as_learners_write_it(typed: str, shape: str) -> None:
    assert parse_shape(typed) == shape


@pytest.mark.parametrize(("typed", "flag"), [
    ("True", True), ("false", False), ("yes", True), ("no", False), ("t", True), ("F", False),
])
def test_a_flag_is_true_or_false(typed: str, flag: bool) -> None:
    assert parse_flag(typed) is flag


@pytest.mark.parametrize(("typed", "dtype"), [
    ("float32", "float32"), ("torch.int64", "int64"), ("long", "int64"), ("Float64", "float64"),
    ("bool", "bool"),
])
def test_a_dtype_is_a_word(typed: str, dtype: str) -> None:
    assert parse_dtype(typed) == dtype


@pytest.mark.parametrize(("typed", "grad_fn"), [
    ("MulBackward0", "MulBackward0"), ("None", None), ("<AddBackward0 object at 0x1>",
                                                       "AddBackward0"),
])
def test_a_grad_fn_is_a_class_name_or_none(typed: str, grad_fn: str | None) -> None:
    assert parse_grad_fn(typed) == grad_fn


@pytest.mark.parametrize(("parse", "typed"), [
    (parse_shape, "three"), (parse_shape, "(3, -1)"), (parse_shape, "(1.5,)"),
    (parse_shape, "(" + "1, " * 7 + "1)"),
    (parse_flag, "maybe"), (parse_flag, "1"),
    (parse_dtype, "flot32"), (parse_dtype, ""),
    (parse_grad_fn, "Mul Backward"), (parse_grad_fn, "2"),
])
def test_what_is_not_a_value_of_the_kind_gets_a_one_line_message(parse, typed: str) -> None:
    with pytest.raises(AnswerError) as problem:
        parse(typed)
    assert str(problem.value) and "\n" not in str(problem.value)


def test_choices_narrow_a_word_kind() -> None:
    pack, _ = load_pack(EXAMPLE)
    assert pack is not None
    grad_fn = next(p for p in pack.exercise(2).predictions if p.id == "h.grad_fn")
    assert grad_fn.kind == Kind.GRAD_FN
    assert parse_prediction("expbackward0", grad_fn) == "ExpBackward0"
    with pytest.raises(AnswerError, match="type one of"):
        parse_prediction("SumBackward0", grad_fn)


# The kind follows from what `actual` reads -----------------------------------------------


def test_the_kind_follows_from_what_actual_reads() -> None:
    pack, problems = load_pack(EXAMPLE)
    assert pack is not None and not problems
    kinds = {p.id: p.kind for e in pack.exercises for p in e.predictions}
    assert kinds == {"x.grad": Kind.VALUE, "x.grad.shape": Kind.SHAPE,
                     "W.grad.shape": Kind.SHAPE, "W.grad": Kind.VALUE,
                     "b.requires_grad": Kind.FLAG, "b.is_leaf": Kind.FLAG,
                     "c.requires_grad": Kind.FLAG, "n.dtype": Kind.DTYPE,
                     "h.grad_fn": Kind.GRAD_FN}


def test_expressions_read_shapes_flags_dtypes_and_grad_fns() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    names = {"x": x, "y": y, "d": x.detach()}
    cases = {
        "x.shape": tuple(x.shape), "x.grad.shape": tuple(x.grad.shape), "y.shape": (),
        "x.requires_grad": x.requires_grad, "d.requires_grad": False, "y.is_leaf": y.is_leaf,
        "x.dtype": str(x.dtype).removeprefix("torch."), "y.grad_fn": type(y.grad_fn).__name__,
        "x.grad_fn": None, "x.numel()": float(x.numel()), "numel(x)": float(x.numel()),
        "x.shape == (1, 3)": tuple(x.shape) == (1, 3), "True": True,
        "x.grad == [[2, 2, 2]]": x.grad.tolist() == [[2.0, 2.0, 2.0]],
        "x.grad.shape != (3,)": tuple(x.grad.shape) != (3,), "x.shape[1]": float(x.shape[1]),
        "2 * x": (2 * x.detach()).tolist(), "-x[0]": (-x.detach()[0]).tolist(),
    }
    for text, expected in cases.items():
        assert evaluate(parse_pack_expression(text), Scope(names, {})) == expected, text
    assert result_kind(parse_pack_expression("x.grad.shape")) == "shape"
    assert result_kind(parse_pack_expression("x.is_leaf")) == "flag"
    assert result_kind(parse_pack_expression("x.shape == (1, 3)")) == "flag"
    assert result_kind(parse_pack_expression("y.grad_fn")) == "grad_fn"
    assert result_kind(parse_pack_expression("x.grad")) == "value"


@pytest.mark.parametrize("text", ["x.foo", "x.grad.grad", "(x + 1).shape", "x < 1",
                                  "x == 1 == 1", "x.numel(2)", "x.data", "x.__class__"])
def test_expressions_still_refuse_what_is_not_whitelisted(text: str) -> None:
    with pytest.raises(ExprError):
        parse_pack_expression(text)


# Judging and the reveal, through the engine ------------------------------------------------


def judged_step(exercise_number: int, step_number: int, answers: dict[str, str]):
    pack, _ = load_pack(EXAMPLE)
    assert pack is not None
    exercise = pack.exercise(exercise_number)
    run = Run(exercise, helpers=load_helpers(pack))
    judged = []
    for number, step in enumerate(exercise.steps, start=1):
        execution = run.execute(step)
        guesses = [Guess(p, parse_prediction(answers[p.id], p), typed=answers[p.id])
                   if p.id in answers else Guess(p, skipped=True) for p in step.predictions]
        judged = run.judge(step, guesses, execution)
        if number == step_number:
            return {item.attempt.id: item for item in judged}
    raise AssertionError("no such step")


def test_a_tensor_is_judged_element_by_element() -> None:
    expected = vectors()
    right = " ".join(format_value(v) for v in expected["x.grad"])  # typed as 2 0 10
    judged = judged_step(1, 1, {"x.grad": right, "x.grad.shape": "4"})
    assert judged["x.grad"].attempt.actual == expected["x.grad"]
    assert judged["x.grad"].attempt.correct is True
    assert judged["x.grad.shape"].attempt.actual == shape_text(expected["x.grad.shape"])
    assert judged["x.grad.shape"].attempt.correct is True
    # x itself, [1, 0, 5, 2]: the power rule without its exponent.
    wrong = judged_step(1, 1, {"x.grad": "[1, 0, 5, 2]", "x.grad.shape": "()"})
    assert wrong["x.grad"].attempt.correct is False
    assert wrong["x.grad"].attempt.misconception == "exponent-not-brought-down"
    assert wrong["x.grad.shape"].attempt.misconception == "grad-is-scalar"
    x_grad = expected["x.grad"]
    assert list(wrong["x.grad"].wrong) == [i for i, v in enumerate([1.0, 0.0, 5.0, 2.0])
                                           if v != x_grad[i]]


def test_the_reveal_says_right_values_wrong_shape_apart_from_wrong_values() -> None:
    expected = vectors()
    w_grad = torch.tensor(expected["W.grad"])
    transposed = format_value(w_grad.T.tolist())
    judged = judged_step(1, 2, {"W.grad": transposed, "W.grad.shape": "2x3"})
    item = judged["W.grad"]
    assert item.attempt.correct is False
    assert item.detail.startswith("right values, wrong shape")
    assert shape_text(expected["W.grad.shape"]) in item.detail
    assert judged["W.grad.shape"].attempt.actual == shape_text(expected["W.grad.shape"])
    assert judged["W.grad.shape"].attempt.correct is False
    one_off = w_grad.clone()
    one_off[2, 1] += 1
    judged = judged_step(1, 2, {"W.grad": format_value(one_off.tolist())})
    item = judged["W.grad"]
    assert item.detail == f"wrong values: 1 of {w_grad.numel()} elements"
    assert item.wrong == (w_grad.numel() - 1,)


def test_the_reveal_marks_the_wrong_elements_in_red() -> None:
    judged = judged_step(1, 1, {"x.grad": "[2, 7, 10, 4]"})
    item = judged["x.grad"]
    right = vectors()["x.grad"]
    assert [i for i, v in enumerate([2.0, 7.0, 10.0, 4.0]) if v != right[i]] == list(item.wrong)
    out = io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=io.StringIO(),
                      stdin_isatty=False, stdout_isatty=True, stderr_isatty=False,
                      no_color=False, dumb=False, width=100)
    UI(env).reveal([row(item)])
    text = out.getvalue()
    assert "\x1b[1;31m7\x1b[0m" in text  # the wrong element, bold red
    assert "\x1b[1;31m2\x1b[0m" not in text and "\x1b[1;31m10\x1b[0m" not in text
    assert "\x1b[1;31m4\x1b[0m" not in text
    assert "wrong values: 1 of 4 elements" in text


def test_marking_and_verdicts_of_tensors() -> None:
    assert format_marked([[1.0, 2.0], [3.0, 4.0]], [2]) == [
        ("[", False), ("[", False), ("1", False), (", ", False), ("2", False), ("]", False),
        (", ", False), ("[", False), ("3", True), (", ", False), ("4", False), ("]", False),
        ("]", False)]
    assert wrong_elements([1.0, 2.0], [1.0, 2.0, 3.0]) == [0, 1]
    assert tensor_verdict([1.0, 2.0, 3.0], [[1.0, 2.0, 3.0]]).startswith("right values, wrong")
    assert tensor_verdict([1.0, 2.0], [1.0, 2.0, 3.0]).startswith("wrong shape")
    assert is_close([5.0], 5.0) and not is_close(True, 1.0) and not is_close(0.0, False)
    assert is_close("MulBackward0", "mulbackward0") and not is_close("(3,)", [3.0])


def test_flags_dtypes_and_grad_fns_are_judged() -> None:
    expected = flags()
    answers = {"b.requires_grad": str(expected["b.requires_grad"]),
               "b.is_leaf": "yes" if not expected["b.is_leaf"] else "no",
               "c.requires_grad": "t" if expected["c.requires_grad"] else "f"}
    judged = judged_step(2, 1, answers)
    assert judged["b.requires_grad"].attempt.actual is expected["b.requires_grad"]
    assert judged["b.requires_grad"].attempt.correct is True
    assert judged["b.is_leaf"].attempt.correct is False
    assert judged["b.is_leaf"].attempt.misconception == "result-is-leaf"
    assert judged["c.requires_grad"].attempt.correct is True
    judged = judged_step(2, 2, {"n.dtype": f"torch.{expected['n.dtype']}",
                                "h.grad_fn": "MulBackward0"})
    assert judged["n.dtype"].attempt.actual == expected["n.dtype"]
    assert judged["n.dtype"].attempt.correct is True
    assert judged["h.grad_fn"].attempt.actual == expected["h.grad_fn"]
    assert judged["h.grad_fn"].attempt.correct is (expected["h.grad_fn"] == "MulBackward0")
    assert judged["h.grad_fn"].attempt.misconception == "grad-fn-of-first-op"


# Hidden code ---------------------------------------------------------------------------------


def test_prepare_runs_before_code_binds_names_and_is_never_shown(example: Path) -> None:
    result = runner.invoke(app, ["exercise", "shapes-and-flags/1", "--reveal", "--graph",
                                 "none"])
    assert result.exit_code == 0, result.output
    pack, _ = load_pack(EXAMPLE)
    assert pack is not None
    step = pack.exercise(1).steps[1]
    assert step.prepare.strip()
    for line in step.prepare.strip().splitlines():
        assert line.strip() not in result.output
    # PyTorch read W, made by the hidden code: its gradient's shape is in the reveal.
    assert shape_text(vectors()["W.grad.shape"]) in result.output


# --answer, --json, a typed mistake at the prompt, the history, progress ------------------


def test_json_reports_tensors_shapes_flags_and_words(example: Path, tutor_env: Path) -> None:
    v = vectors()
    f = flags()
    first = runner.invoke(app, ["exercise", "shapes-and-flags/1", "--json", "--graph", "none",
                                "-a", "x.grad=" + " ".join(map(format_value, v["x.grad"])),
                                "-a", "x.grad.shape=()", "-a", "W.grad.shape=4x3",
                                "-a", "W.grad=" + format_value(v["W.grad"])])
    assert first.exit_code == 0, first.output
    steps = {s["id"]: s for s in json.loads(first.stdout)["steps"]}
    assert steps["x.grad"]["prediction"] == v["x.grad"] == steps["x.grad"]["actual"]
    assert steps["W.grad"]["actual"] == v["W.grad"] and steps["W.grad"]["correct"] is True
    assert steps["x.grad.shape"]["prediction"] == "()"
    assert steps["x.grad.shape"]["actual"] == shape_text(v["x.grad.shape"])
    assert steps["x.grad.shape"]["correct"] is False
    second = runner.invoke(app, ["exercise", "shapes-and-flags/2", "--json", "--graph", "none",
                                 "-a", "b.requires_grad=no", "-a", "b.is_leaf=False",
                                 "-a", "c.requires_grad=f", "-a", "n.dtype=float32",
                                 "-a", "h.grad_fn=None"])
    assert second.exit_code == 0, second.output
    steps = {s["id"]: s for s in json.loads(second.stdout)["steps"]}
    assert steps["b.requires_grad"]["prediction"] is False
    assert steps["b.requires_grad"]["actual"] is f["b.requires_grad"]
    assert steps["n.dtype"]["actual"] == f["n.dtype"]
    assert steps["h.grad_fn"]["prediction"] is None
    assert steps["h.grad_fn"]["actual"] == f["h.grad_fn"]
    # The history keeps each kind as it was, and reads it back.
    kept = {a.id: a for a in Store(tutor_env, warn=print).load().attempts}
    assert kept["x.grad"].actual == v["x.grad"] and kept["x.grad"].typed.startswith("2 ")
    assert kept["W.grad"].prediction == v["W.grad"]
    assert kept["x.grad.shape"].actual == shape_text(v["x.grad.shape"])
    assert kept["b.requires_grad"].prediction is False
    assert kept["n.dtype"].actual == f["n.dtype"] and kept["h.grad_fn"].prediction is None
    progress = runner.invoke(app, ["progress"])
    assert progress.exit_code == 0 and "vector-grad" in progress.output
    assert "Traceback" not in progress.output
    review = runner.invoke(app, ["review"])
    assert review.exit_code == 0 and "Traceback" not in review.output


@pytest.mark.parametrize(("answer", "message"), [
    ("x.grad=[1, [2]]", "rows have different lengths"),
    ("x.grad.shape=three", "type a shape"),
])
def test_a_bad_answer_flag_is_a_usage_error(example: Path, answer: str, message: str) -> None:
    result = runner.invoke(app, ["exercise", "shapes-and-flags/1", "-a", answer])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("exercise", "prompt", "bad", "good", "message"), [
    ("1", "Predict x.grad:", "[1, [2]]", "2 0 10", "rows have different lengths"),
    ("1", "Predict x.grad.shape", "three", "(3,)", "type a shape"),
    ("2", "Predict b.requires_grad", "maybe", "yes", "type True or False"),
])
def test_a_typed_mistake_gets_one_line_and_the_same_prompt(example: Path, exercise: str,
                                                           prompt: str, bad: str, good: str,
                                                           message: str) -> None:
    ids = {"1": ["x.grad", "x.grad.shape"], "2": ["b.requires_grad", "b.is_leaf",
                                                  "c.requires_grad"]}[exercise]
    lines = []
    for pid in ids:
        lines += [bad, good] if prompt.endswith(pid) or prompt == f"Predict {pid}:" else ["skip"]
    result = runner.invoke(app, ["exercise", f"shapes-and-flags/{exercise}", "--graph", "none"],
                           input="\n".join(lines) + "\n")
    output = result.output
    complaint = next(line for line in output.splitlines() if line.startswith("Not counted"))
    assert message in complaint
    assert output.count(prompt) == 2  # asked again, the same way


def test_a_dtype_or_grad_fn_mistake_gets_one_line_and_the_same_prompt(example: Path) -> None:
    result = runner.invoke(app, ["exercise", "shapes-and-flags/2", "--graph", "none"],
                           input="skip\nskip\nskip\nflot\nint64\nSum\nExpBackward0\n")
    output = result.output
    complaints = [line for line in output.splitlines() if line.startswith("Not counted")]
    assert len(complaints) == 2
    assert "type a dtype" in complaints[0] and "type one of" in complaints[1]
    assert output.count("Predict n.dtype") == 2 and output.count("Predict h.grad_fn") == 2


def test_old_rows_and_rows_of_every_kind_read_back(tutor_env: Path) -> None:
    base = {"type": "attempt", "correct": True, "skipped": False,
            "time": "2024-01-01T00:00:00+00:00"}
    rows = [{**base, "id": "old", "prediction": 14, "actual": 14.0, "by_hand": 14.0},
            {**base, "id": "t", "prediction": [[1, 2], [3, 4]], "actual": [[1.0, 2.0], [3.0, 4.0]],
             "by_hand": [[1.0, 2.0], [3.0, 4.0]]},
            {**base, "id": "f", "prediction": False, "actual": False, "by_hand": False},
            {**base, "id": "s", "prediction": "(4, 3)", "actual": "(4, 3)", "by_hand": "(4, 3)"}]
    read = [attempt_from(r) for r in rows]
    assert read[0].prediction == 14.0 and isinstance(read[0].prediction, float)
    assert read[1].prediction == [[1.0, 2.0], [3.0, 4.0]]
    assert all(isinstance(v, float) for r in read[1].prediction for v in r)
    assert read[2].prediction is False
    for damaged in ([], [1, "a"], [float("inf")], [[[[[[[[[[1]]]]]]]]]]):
        with pytest.raises(ValueError):
            attempt_from({**base, "id": "d", "prediction": damaged, "actual": 1, "by_hand": 1})
    store = Store(tutor_env, warn=print)
    assert store.record([Attempt(id="t", prediction=[1.0, 2.0], actual=[1.0, 3.0],
                                 by_hand=[1.0, 3.0], correct=False, skipped=False,
                                 time="2024-01-01T00:00:00+00:00")])
    (kept,) = store.load().attempts
    assert kept.prediction == [1.0, 2.0] and kept.actual == [1.0, 3.0]


def test_prepare_output_and_errors_stay_out_of_the_shown_code_s() -> None:
    from autograd_tutor.engine.model import Exercise, Prediction, Step
    from autograd_tutor.engine.runner import LessonError

    ask = Prediction(id="x.grad", label="x.grad", actual="x.grad", by_hand="2 * x",
                     tensor=True)
    step = Step("s", "", "y = (x ** 2).sum()\ny.backward()\nprint('shown')", (ask,),
                prepare="import warnings\nx = torch.tensor([1.0, 3.0], requires_grad=True)\n"
                        "print('hidden')\nwarnings.warn('from hidden code')")
    run = Run(Exercise("p", 1, "t", "Guided", "", (step,)))
    execution = run.execute(step)
    assert execution.output == ["shown"] and execution.warnings == []
    assert execution.hidden_output == ["hidden", "UserWarning: from hidden code"]
    x = torch.tensor([1.0, 3.0], requires_grad=True)
    (x**2).sum().backward()
    (judged,) = run.judge(step, [Guess(ask, skipped=True)], execution)
    assert x.grad is not None and judged.attempt.actual == x.grad.tolist()
    broken = Step("b", "", "y = 1", prepare="1 / 0")
    with pytest.raises(LessonError, match="hidden prepare code of step 'b' raised "
                                          "ZeroDivisionError"):
        Run(Exercise("p", 1, "t", "Guided", "", (broken,))).execute(broken)


def test_practice_asks_and_records_a_tensor(example: Path, tutor_env: Path) -> None:
    result = runner.invoke(app, ["practice", "-c", "vector-grad", "-n", "1", "--seed", "3",
                                 "--json"], input="oops\n1 2\n")
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)["items"]
    x = torch.tensor([float(v) for v in item["code"].split("[")[1].split("]")[0].split(",")],
                     requires_grad=True)
    (x**2).sum().backward()
    assert x.grad is not None and item["actual"] == x.grad.tolist()
    assert item["prediction"] == [1.0, 2.0]
    assert item["correct"] is (x.grad.tolist() == [1.0, 2.0])
    (kept,) = Store(tutor_env, warn=print).load().attempts
    assert kept.prediction == [1.0, 2.0] and kept.actual == x.grad.tolist()


def test_a_placeholder_is_an_answer_only_when_it_says_so() -> None:
    """An earlier prediction's ID once replaced the expression spelled the same, so an
    explanation showed the old gradient for the new one."""
    from autograd_tutor.engine.model import Exercise, Prediction, Step

    ask = Prediction(id="x.grad", label="x.grad", actual="x.grad", by_hand="2 * x",
                     tensor=True)
    first = Step("first", "", "x = torch.tensor([1.0, 0.0, 10.0], requires_grad=True)\n"
                              "(x ** 2).sum().backward()", (ask,))
    second = Step("second", "", "x.grad.zero_()\n(x * x[0]).sum().backward()")
    run = Run(Exercise("p", 1, "t", "Guided", "", (first, second)))
    run.judge(first, [Guess(ask, skipped=True)], run.execute(first))
    run.execute(second)
    x = torch.tensor([1.0, 0.0, 10.0], requires_grad=True)
    (x**2).sum().backward()
    assert x.grad is not None
    earlier = x.grad.tolist()
    x.grad.zero_()
    (x * x[0]).sum().backward()
    now = x.grad.tolist()
    assert earlier != now
    shown = run.render('{answer("x.grad")} then {x.grad}')
    assert shown == (", ".join(map(format_value, earlier)) + " then "
                     + ", ".join(map(format_value, now)))


def test_a_dtype_choice_takes_any_spelling_of_it() -> None:
    assert parse_dtype("long", ("float32", "int64")) == "int64"
    assert parse_dtype("torch.float", ("float32", "int64")) == "float32"
    with pytest.raises(AnswerError, match="type one of: float32, int64"):
        parse_dtype("float64", ("float32", "int64"))


# Properties: whatever is typed, a value of the kind or a one-line message ---------------------

TENSORISH = "0123456789.,-+ []()x*/eE"


def _tensor_ok(value: object) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_tensor_ok(item) for item in value)
    return type(value) is float and value == value and abs(value) != float("inf")


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(st.text(max_size=80), st.text(alphabet=TENSORISH, max_size=60)))
@hypothesis.example("²")  # a digit to str.isdigit, not to int(): a shape's parts are ASCII digits
def test_any_text_is_a_value_of_its_kind_or_refused_in_one_line(text: str) -> None:
    for parse, ok in (
        (lambda t: parse_value(t, tensor=True),
         lambda v: v is None or _tensor_ok(v)),
        (parse_shape, lambda v: isinstance(v, str) and v.startswith("(") and v.endswith(")")),
        (parse_flag, lambda v: isinstance(v, bool)),
        (parse_dtype, lambda v: isinstance(v, str) and v.isidentifier()),
        (parse_grad_fn, lambda v: v is None or (isinstance(v, str) and v.isidentifier())),
    ):
        try:
            value = parse(text)
        except AnswerError as problem:
            assert str(problem) and "\n" not in str(problem)
            continue
        assert ok(value), (text, value)


@pytest.mark.parametrize("typed", ["4x", "x4", "4*", "4x3x", "4,,3"])
def test_a_shape_with_a_stray_separator_is_refused(typed: str) -> None:
    """A separator stands between two sizes: `4x` is a slip, not the shape (4,)."""
    with pytest.raises(AnswerError):
        parse_shape(typed)


def test_warnings_before_an_error_are_shown_with_it() -> None:
    """Code that warns and then raises: the reveal shows PyTorch's warning and its error."""
    import warnings

    from autograd_tutor.engine.runner import Raised

    x = torch.ones(2, requires_grad=True)
    y = x * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _ = y.grad  # a non-leaf's .grad: PyTorch warns
        try:
            y.backward()  # not a scalar: PyTorch raises
        except RuntimeError as error:
            raised = Raised(type(error).__name__, str(error), None)
    assert caught
    out = io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=io.StringIO(),
                      stdin_isatty=False, stdout_isatty=False, stderr_isatty=False,
                      no_color=True, dumb=False, width=100)
    UI(env).outcome("y.backward()", raised, [str(w.message) for w in caught], [])
    text = " ".join(out.getvalue().split())
    assert f"PyTorch warned: {' '.join(str(caught[0].message).split())}" in text
    assert f"PyTorch raised RuntimeError: {' '.join(raised.message.split())}" in text
