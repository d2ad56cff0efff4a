"""Practice problems, drawn from the built-in packs' templates: every answer is checked
against PyTorch and an independent formula.

`actual` (PyTorch, float32, read by the engine's runner) and `by_hand` (the template's
formula) are compared for every prediction; each of the basics pack's concepts also gets a
check computed here, from the code text alone: a finite difference, torch.autograd.grad on a
float64 re-run, or a re-run of a modified program. Every concept of every built-in pack is
drawn fairly: its misconceptions, evaluated here on a plain re-run of the code, differ from
the right answer and from each other.
"""

from __future__ import annotations

import ast
import math
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from autograd_tutor.content.packs import builtin, builtin_catalogue
from autograd_tutor.engine import practice
from autograd_tutor.engine.answers import is_close
from autograd_tutor.engine.model import Exercise, Prediction, Step, Tolerance, Value
from autograd_tutor.engine.runner import Run, load_helpers

Namespace = dict[str, Any]

BASICS = builtin("basics")
PACKS = (BASICS, builtin("errors"))
# The basics pack's six concepts, drawn as the engine's Python builders once drew them.
TEMPLATES = BASICS.practice
CONCEPTS = tuple(practice.concepts(TEMPLATES))
EVERY_TEMPLATE = tuple(t for pack in PACKS for t in pack.practice)
HELPERS: dict[str, Any] = {k: v for pack in PACKS for k, v in load_helpers(pack).items()}

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
NAMES = st.sampled_from(sorted(CONCEPTS))
CLOSE = Tolerance(relative=1e-9, absolute=1e-9)
APART = Tolerance(relative=1e-3, absolute=1e-3)
PROPERTY = settings(max_examples=examples(100), deadline=None)


def run(code: str) -> Namespace:
    """The code run by plain exec, without the engine."""
    ns: Namespace = {"torch": torch}
    exec(code, ns)
    return ns


def exercise_of(steps_: tuple[Step, ...]) -> Exercise:
    return Exercise(pack="practice", number=0, title="Practice", level="Practice", intro="",
                    steps=steps_)


def execute(step: Step, code: str | None = None) -> Run:
    """The step run by the engine (with other code when given), ready for `Run.value`."""
    if code is not None:
        step = replace(step, code=code)
    engine = Run(exercise_of((step,)), helpers=HELPERS, kind="practice")
    engine.execute(step)
    return engine


def actual(step: Step, p: Prediction, code: str | None = None) -> Value:
    """PyTorch's answer to a prediction, read through its `actual` expression."""
    return execute(step, code).value(p.actual)


@contextmanager
def float64() -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def read(ns: Namespace, expression: str) -> Value:
    """The predicted quantity read straight from the namespace by Python, without the
    engine: `x.grad`, `w`, `y_pred[0]`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = eval(expression, {"__builtins__": {}}, ns)
    return None if value is None else float(value.item())


def same(a: Value, b: Value, tolerance: Tolerance = CLOSE) -> bool:
    return is_close(a, b, tolerance)


def generate(concept: str | None, count: int, seed: int) -> Exercise:
    return practice.generate(concept, count, seed, TEMPLATES, HELPERS)


def generate_mix(names: list[str], seed: int) -> Exercise:
    return practice.generate_mix(names, seed, TEMPLATES, HELPERS)


def steps(concept: str | None, seed: int, count: int = 3) -> tuple[Step, ...]:
    return generate(concept, count, seed).steps


# --- every concept: PyTorch, by_hand and a float64 re-run agree ---------------------------


@PROPERTY
@given(seed=SEEDS, concept=NAMES)
def test_actual_matches_pytorch_and_the_formula(seed: int, concept: str) -> None:
    for step in steps(concept, seed):
        engine = execute(step)
        with float64():
            ns64 = run(step.code)
        for p in step.predictions:
            answer = engine.value(p.actual)
            by_hand = engine.value(p.by_hand)
            assert same(answer, read(engine.names, p.actual), Tolerance(0.0, 0.0))
            assert is_close(by_hand, answer, p.tolerance), (step.code, p.id)
            closeness = APART if p.tolerance.is_estimate else CLOSE
            assert same(by_hand, read(ns64, p.actual), closeness), (step.code, p.id)


# --- one concept-specific check each, computed from the code text ------------------------


def assigned(code: str, name: str) -> str:
    """The source of the right-hand side assigned to `name` (first assignment)."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == name:
            return ast.unparse(node.value)
    raise AssertionError(f"{name} is not assigned in\n{code}")


def tensor_literal(code: str, name: str) -> float:
    call = ast.parse(assigned(code, name), mode="eval").body
    assert isinstance(call, ast.Call)
    return float(ast.literal_eval(call.args[0]))


def without(code: str, marker: str) -> str:
    return "\n".join(line for line in code.splitlines() if marker not in line) + "\n"


def autograd(code: str, output: str, labels: list[str]) -> list[Value]:
    """Gradients by torch.autograd.grad in float64, with the code's own backward() removed."""
    with float64():
        ns = run(without(code, ".backward()"))
        leaves = [ns[label.removesuffix(".grad")] for label in labels]
        grads = torch.autograd.grad(ns[output], leaves, allow_unused=True)
    return [None if g is None else g.item() for g in grads]


def misconception(engine: Run, p: Prediction, name: str) -> Value:
    (match,) = [m for m in p.misconceptions if m.name == name]
    return engine.value(match.value)


@PROPERTY
@given(seed=SEEDS)
def test_polynomial_matches_a_finite_difference(seed: int) -> None:
    for step in steps("polynomial", seed):
        (p,) = step.predictions
        expression = assigned(step.code, "y")
        x = tensor_literal(step.code, "x")

        def f(t: float, expression: str = expression) -> float:
            return float(eval(expression, {"x": t}))

        h = 1e-4
        slope = (f(x + h) - f(x - h)) / (2 * h)
        answer = actual(step, p)
        assert isinstance(answer, float)
        assert math.isclose(answer, slope, rel_tol=1e-6, abs_tol=1e-5)


@PROPERTY
@given(seed=SEEDS)
def test_chain_rule_matches_autograd_grad(seed: int) -> None:
    for step in steps("chain-rule", seed):
        labels = [p.label for p in step.predictions]
        engine = execute(step)
        expected = autograd(step.code, "y" if "\ny = " in step.code else "c", labels)
        assert [engine.value(p.actual) for p in step.predictions] == pytest.approx(expected)


@PROPERTY
@given(seed=SEEDS)
def test_accumulation_is_k_times_one_backward(seed: int) -> None:
    for step in steps("accumulation", seed):
        (p,) = step.predictions
        k = int(re.findall(r"range\((\d+)\)", step.code)[0])
        once = actual(step, p, step.code.replace(f"range({k})", "range(1)"))
        engine = execute(step)
        answer = engine.value(p.actual)
        assert answer is not None and once is not None
        assert answer == k * once
        assert misconception(engine, p, "replaced-not-accumulated") == once


@PROPERTY
@given(seed=SEEDS)
def test_zeroing_keeps_only_what_follows_zero(seed: int) -> None:
    for step in steps("zeroing", seed):
        (p,) = step.predictions
        first_line, rest = step.code.split("\n", 1)
        after_zero = rest.split("x.grad.zero_()\n", 1)[1]
        engine = execute(step)
        if after_zero.strip():
            assert engine.value(p.actual) == actual(step, p, first_line + "\n" + after_zero)
        else:  # nothing after zero_(): the gradient tensor is kept, filled with 0
            assert engine.value(p.actual) == 0.0
            assert misconception(engine, p, "none-after-zero") is None
        ignored = actual(step, p, without(step.code, "zero_()"))
        assert misconception(engine, p, "zero-ignored") == ignored


@PROPERTY
@given(seed=SEEDS)
def test_gd_step_is_w_minus_lr_times_grad(seed: int) -> None:
    for step in steps("gd-step", seed):
        if "lr = " not in step.code:
            continue  # other gd-step problems: test_least_squares_is_where_descent_stops,
            # test_every_concept_draws_fair_problems
        grad_p, w_p = step.predictions
        engine = execute(step)
        (grad,) = autograd(step.code.split("loss.backward()")[0], "loss", ["w.grad"])
        assert engine.value(grad_p.actual) == pytest.approx(grad)
        assert grad is not None
        expected = tensor_literal(step.code, "w") - engine.names["lr"] * grad
        assert engine.value(w_p.actual) == pytest.approx(expected, rel=1e-6, abs=1e-5)


@PROPERTY
@given(seed=SEEDS)
def test_detach_matches_autograd_and_pass_through(seed: int) -> None:
    for step in steps("detach", seed):
        labels = [p.label for p in step.predictions]
        engine = execute(step)
        assert [engine.value(p.actual) for p in step.predictions] == pytest.approx(
            autograd(step.code, "c", labels)
        )
        # The wrong model "detach is a pass-through", run for real: drop the detach.
        a = next(p for p in step.predictions if p.label == "a.grad")
        through = actual(step, a, step.code.replace(".detach()", ""))
        assert misconception(engine, a, "detach-pass-through") == through


@PROPERTY
@given(seed=SEEDS)
def test_least_squares_is_where_descent_stops(seed: int) -> None:
    problems = [s for s in steps("gd-step", seed, 6) if "range(50)" in s.code]
    for step in problems:
        (p,) = step.predictions
        ns = run(step.code)
        xs, ys = ns["X"].double(), ns["y_true"].double()
        slope = float((xs * ys).sum() / (xs * xs).sum())  # the normal equation, in float64
        answer = actual(step, p)
        assert isinstance(answer, float)
        assert answer == pytest.approx(slope, abs=1e-4)
        # The data's own line gives another answer: the mistake can be told apart.
        assert not is_close(misconception(execute(step), p, "true-line"), answer, p.tolerance)


def test_detach_covers_both_a_cut_and_a_partial_cut() -> None:
    answers = {
        actual(s, p) is None
        for seed in range(20)
        for s in steps("detach", seed)
        for p in s.predictions
        if p.label == "a.grad"
    }
    assert answers == {True, False}


# --- reproducible, readable, and wrong models never equal the answer ---------------------


def snapshot(steps_: tuple[Step, ...]) -> list[object]:
    return [
        (
            s.title,
            s.setup,
            s.code,
            [
                (
                    p.id,
                    p.actual,
                    p.by_hand,
                    p.by_hand_text,
                    p.hints,
                    [(m.name, m.value, m.explanation) for m in p.misconceptions],
                )
                for p in s.predictions
            ],
        )
        for s in steps_
    ]


@PROPERTY
@given(seed=SEEDS, concept=st.one_of(st.none(), NAMES))
def test_a_seed_reproduces_the_same_problems(seed: int, concept: str | None) -> None:
    first, again = steps(concept, seed, 4), steps(concept, seed, 4)
    assert snapshot(first) == snapshot(again)
    assert [actual(s, p) for s in first for p in s.predictions] == [
        actual(s, p) for s in again for p in s.predictions
    ]


@given(seed=SEEDS, concept=st.one_of(st.none(), NAMES), count=st.integers(1, 8))
@settings(max_examples=examples(30), deadline=None)
def test_a_larger_count_only_appends(seed: int, concept: str | None, count: int) -> None:
    assert (
        snapshot(steps(concept, seed, count)) == snapshot(steps(concept, seed, count + 4))[:count]
    )


@given(seed=SEEDS, names=st.lists(NAMES, min_size=1, max_size=6))
@settings(max_examples=examples(30), deadline=None)
def test_generate_mix_gives_one_problem_per_named_concept(seed: int, names: list[str]) -> None:
    exercise = generate_mix(names, seed)
    assert [s.predictions[0].concept for s in exercise.steps] == names
    assert snapshot(exercise.steps) == snapshot(generate_mix(names, seed).steps)
    for step in exercise.steps:
        engine = execute(step)
        for p in step.predictions:
            assert is_close(engine.value(p.by_hand), engine.value(p.actual), p.tolerance)


def test_generate_mix_refuses_unknown_or_no_concepts() -> None:
    with pytest.raises(ValueError, match="chain-rule"):
        generate_mix(["polynomial", "backprop"], 1)
    with pytest.raises(ValueError):
        generate_mix([], 1)


def test_different_seeds_give_different_problems() -> None:
    codes = {steps("polynomial", seed, 1)[0].code for seed in range(30)}
    assert len(codes) > 20


def significant_digits(number: float) -> int:
    digits = repr(abs(number)).replace(".", "").lstrip("0").rstrip("0")
    return max(len(digits), 1)


@PROPERTY
@given(seed=SEEDS, concept=NAMES)
def test_numbers_stay_readable(seed: int, concept: str) -> None:
    for step in steps(concept, seed):
        tree = ast.parse(step.code)
        counts = {id(node.args[0]) for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and ast.unparse(node.func) == "range" and node.args}
        for node in ast.walk(tree):
            if id(node) in counts:
                continue  # how many times a loop runs
            if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
                assert significant_digits(node.value) <= 4, step.code
                assert abs(node.value) <= 10, step.code
        for p in step.predictions:
            answer = actual(step, p)
            assert answer is None or isinstance(answer, float)
            if answer is not None:
                assert abs(answer) <= 1000
                assert round(answer, 3) == pytest.approx(answer, abs=1e-5)


@PROPERTY
@given(seed=SEEDS, concept=NAMES)
def test_no_misconception_gives_the_right_answer(seed: int, concept: str) -> None:
    for step in steps(concept, seed):
        engine = execute(step)
        for p in step.predictions:
            assert len(p.misconceptions) >= 1
            assert len({m.name for m in p.misconceptions}) == len(p.misconceptions)
            values = [engine.value(m.value) for m in p.misconceptions]
            for value in values:
                assert not is_close(value, engine.value(p.actual), APART), (step.code, p.id)
                assert not is_close(value, engine.value(p.by_hand), p.tolerance)
            # Two wrong models with one number could not tell the learner which one it was.
            for i, value in enumerate(values):
                assert not any(is_close(value, other, APART) for other in values[:i])


# --- every concept of every built-in pack: fair draws, checked on a plain re-run ----------

ALL_NAMES = st.sampled_from(sorted(practice.concepts(EVERY_TEMPLATE)))


def plain_outcome(code: str) -> tuple[str, Namespace]:
    """What the code does when run by plain exec: runs, error or warning; and its names."""
    ns: Namespace = {"torch": torch}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            exec(code, ns)
        except Exception:
            return "error", ns
    return ("warning" if caught else "runs"), ns


def plain_value(expression: str, ns: Namespace) -> Value:
    """A prediction's expression evaluated by Python over the plain run's names."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = eval(expression, {"__builtins__": {}}, ns)
    if isinstance(value, torch.Tensor):
        return value.item()
    return None if value is None else float(value)


@PROPERTY
@given(seed=SEEDS, concept=ALL_NAMES)
def test_every_concept_draws_fair_problems(seed: int, concept: str) -> None:
    """For every built-in concept, a drawn problem's answers agree with a plain run of its
    code, and no misconception gives the right answer or another one's."""
    exercise = practice.generate(concept, 2, seed, EVERY_TEMPLATE, HELPERS)
    for step in exercise.steps:
        outcome, ns = plain_outcome(step.code)
        for p in step.predictions:
            assert p.concept == concept
            if p.kind == "outcome":
                right: Value = outcome
                wrongs = [m.value.strip('"') for m in p.misconceptions]
                assert outcome == p.by_hand.strip('"'), (step.code, p.id)
            else:
                right = plain_value(p.actual, ns)
                assert is_close(plain_value(p.by_hand, ns), right,
                                Tolerance(max(p.tolerance.relative, 1e-5),
                                          max(p.tolerance.absolute, 1e-6))), (step.code, p.id)
                wrongs = [plain_value(m.value, ns) for m in p.misconceptions]
            apart = Tolerance(max(p.tolerance.relative, 1e-3), max(p.tolerance.absolute, 1e-3))
            for i, wrong in enumerate(wrongs):
                assert not is_close(wrong, right, apart), (step.code, p.id, wrong)
                assert not any(is_close(wrong, other, APART) for other in wrongs[:i])


# --- the shape the engine relies on ------------------------------------------------------


@PROPERTY
@given(seed=SEEDS, concept=st.one_of(st.none(), NAMES))
def test_predictions_are_well_formed(seed: int, concept: str | None) -> None:
    exercise = generate(concept, 5, seed)
    assert (exercise.pack, exercise.level) == ("practice", "Practice")
    assert len(set(exercise.prediction_ids)) == len(exercise.prediction_ids)
    for n, step in enumerate(exercise.steps, start=1):
        for p in step.predictions:
            assert p.id.startswith(f"p{n}.")
            assert p.concept in CONCEPTS
            assert concept is None or p.concept == concept
            assert 1 <= len(p.hints) <= 3
            assert p.kind == "value"
            assert p.by_hand_text and p.feedback
    assert set(exercise.concepts) == {p.concept for p in exercise.predictions}


@given(seed=SEEDS)
@settings(max_examples=examples(20), deadline=None)
def test_steps_are_self_contained(seed: int) -> None:
    """Run in reverse order in one shared namespace, each step still gives its own answers."""
    problems = steps(None, seed, 6)
    alone = [[actual(s, p) for p in s.predictions] for s in problems]
    shared = Run(exercise_of(problems), helpers=HELPERS, kind="practice")  # one namespace
    together = []
    for s in reversed(problems):
        shared.execute(s)
        together.append([shared.value(p.actual) for p in s.predictions])
    assert list(reversed(together)) == alone


def test_a_mix_of_six_covers_every_concept() -> None:
    for seed in range(10):
        assert sorted(generate(None, 6, seed).concepts) == sorted(CONCEPTS)


def test_every_concept_has_a_description() -> None:
    assert isinstance(CONCEPTS, tuple)
    assert set(CONCEPTS) == {
        "polynomial",
        "chain-rule",
        "accumulation",
        "zeroing",
        "gd-step",
        "detach",
    }
    # The descriptions live in the catalogue; practice.concepts() reads them from there.
    described = builtin_catalogue().concepts
    assert all(described.get(name) and "\n" not in described[name] for name in CONCEPTS)
    listed = practice.concepts(TEMPLATES, described=described)
    assert list(listed) == list(CONCEPTS)
    assert all(listed[name] == described[name] for name in CONCEPTS)


def test_every_concept_of_every_built_in_pack_has_practice() -> None:
    for pack in PACKS:
        used = {p.concept for exercise in pack.exercises for p in exercise.predictions
                if p.concept}
        assert used <= set(practice.concepts(pack.practice)), (pack.name, sorted(
            used - set(practice.concepts(pack.practice))))


def test_practice_is_pack_data_only() -> None:
    """The engine keeps drawing, filling and fairness: no built-in problem, no old names."""
    assert not hasattr(practice, "BUILDERS")
    assert not hasattr(practice, "RENAMED")
    assert practice.concepts() == {}


def test_unknown_concept_lists_the_valid_names() -> None:
    with pytest.raises(ValueError) as error:
        generate("backprop", 3, 1)
    for name in CONCEPTS:
        assert name in str(error.value)


@pytest.mark.parametrize("count", [0, -1, 51])
def test_count_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="count"):
        generate(None, count, 1)


def test_importing_practice_does_not_import_torch() -> None:
    code = "import sys, autograd_tutor.engine.practice; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
