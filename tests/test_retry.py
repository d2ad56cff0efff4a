"""The retry offered after a named mistake: offered only when a problem aimed at it exists,
drawn only where the mistake's answer differs from the right one, and never giving a later
step of the exercise away. A parameterised step is such a problem too.

Answers and mistakes are evaluated here on a plain run of each problem's code with torch,
not through the engine.
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content.check import check_pack
from autograd_tutor.content.packs import builtin, load_pack
from autograd_tutor.engine import practice
from autograd_tutor.engine.answers import is_close
from autograd_tutor.engine.model import Exercise, Prediction, Step, Template, Tolerance, Value

PACKS = (builtin("basics"), builtin("errors"))
TEMPLATES: tuple[Template, ...] = tuple(t for pack in PACKS for t in pack.practice)
FIXTURES = Path(__file__).parent / "fixtures" / "packs"
SEEDS = st.integers(min_value=0, max_value=2**24)
APART = Tolerance(relative=1e-3, absolute=1e-3)
runner = CliRunner()

# Every (concept, misconception) a built-in template aims at.
AIMED = sorted({(t.concept, m.name) for t in TEMPLATES for p in t.step.predictions
                if p.concept == t.concept for m in p.misconceptions})


def plain_run(code: str) -> tuple[str, dict[str, Any]]:
    """The code run by plain exec: what it did (runs, error or warning) and its names."""
    names: dict[str, Any] = {"torch": torch}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            exec(code, names)
        except Exception:
            return "error", names
    return ("warning" if caught else "runs"), names


def plain_value(expression: str, names: dict[str, Any]) -> Value:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = eval(expression, {"__builtins__": {}}, names)
    if isinstance(value, torch.Tensor):
        return value.item()
    return None if value is None else float(value)


def right_and_wrong(step: Step, prediction: Prediction, name: str) -> tuple[Value, Value]:
    """The right answer and the answer under misconception `name`, from a plain run."""
    outcome, names = plain_run(step.code)
    (wrong,) = [m for m in prediction.misconceptions if m.name == name]
    if prediction.kind == "outcome":
        return outcome, wrong.value.strip('"')
    return plain_value(prediction.actual, names), plain_value(wrong.value, names)


def aimed_at(problem: Exercise, concept: str, name: str) -> list[tuple[Value, Value]]:
    (step,) = problem.steps
    return [right_and_wrong(step, p, name) for p in step.predictions
            if p.concept == concept and any(m.name == name for m in p.misconceptions)]


@given(seed=SEEDS, pair=st.sampled_from(AIMED))
@settings(max_examples=examples(60), deadline=None)
def test_a_retry_is_never_equal_under_the_mistake(seed: int, pair: tuple[str, str]) -> None:
    concept, name = pair
    problem = practice.aimed(concept, name, seed, TEMPLATES)
    assert problem is not None, pair
    pairs = aimed_at(problem, concept, name)
    assert pairs, "the drawn problem does not name the misconception"
    assert any(not is_close(wrong, right, APART) for right, wrong in pairs), (
        problem.steps[0].code, pairs)


def steps_of(key: str, number: int) -> tuple[list[str], list[str]]:
    """The code of an exercise's steps up to step `number`, and after it."""
    pack, _, index = key.partition("/")
    codes = [s.code for s in builtin(pack).exercise(int(index)).steps]
    return codes[:number], codes[number:]


@given(seed=SEEDS)
@settings(max_examples=examples(30), deadline=None)
def test_after_none_after_zero_the_retry_has_another_answer(seed: int) -> None:
    """Basics 4, `w.grad` after zero_(): typing None is the none-after-zero mistake. The
    retry must be a problem where that mistake gives a wrong answer (once it was a zeroing
    problem with a backward() after zero_(), where None and the truth both gave -8)."""
    exercise = builtin("basics").exercise(4)
    index = next(i for i, s in enumerate(exercise.steps, start=1)
                 if any(p.id == "w.grad@zeroed" for p in s.predictions))
    earlier, later = steps_of("basics/4", index)
    problem = practice.aimed("zeroing", "none-after-zero", seed, TEMPLATES, later=later,
                             earlier=earlier)
    assert problem is not None
    for right, wrong in aimed_at(problem, "zeroing", "none-after-zero"):
        assert wrong is None and right is not None


def test_a_retry_never_teaches_what_only_a_later_step_names() -> None:
    """Basics 5, step 2: `a.grad` through detach() is the detach-pass-through mistake. Every
    detach template also asks about a path detach() does not cut, with the mistakes of step 3
    ("Cutting one of two paths"); drawn after step 2, it taught step 3 in other words."""
    exercise = builtin("basics").exercise(5)
    index = next(i for i, s in enumerate(exercise.steps, start=1)
                 if any(p.id == "a.grad@detach" for p in s.predictions))
    earlier, later = steps_of("basics/5", index)

    def named(steps: Any) -> set[str]:
        return {m.name for s in steps for p in s.predictions for m in p.misconceptions}

    only_later = named(exercise.steps[index:]) - named(exercise.steps[:index])
    assert only_later  # step 3 names mistakes step 2 does not
    spoilers = [t for t in TEMPLATES if t.concept == "detach" and named([t.step]) & only_later]
    assert spoilers  # without the rule, these would be drawn
    for seed in range(10):
        problem = practice.aimed("detach", "detach-pass-through", seed, TEMPLATES,
                                 later=later, earlier=earlier, later_names=only_later)
        assert problem is None or not named(problem.steps) & only_later


@pytest.mark.parametrize(("key", "number", "concept", "name", "spoiler"), [
    # errors/3's next step is the fix `y.sum().backward()`; errors/5's, `torch.no_grad()`.
    ("errors/3", 1, "non-scalar", "implicit-sum", ".sum().backward()"),
    ("errors/5", 1, "leaf-update", "leaf-edit-allowed", "no_grad"),
    ("errors/6", 1, "non-leaf-grad", "grad-of-the-leaf", "retain_grad"),
])
def test_a_retry_never_repeats_a_later_step(key: str, number: int, concept: str, name: str,
                                            spoiler: str) -> None:
    earlier, later = steps_of(key, number)
    assert any(spoiler in code for code in later)
    for seed in range(25):
        problem = practice.aimed(concept, name, seed, TEMPLATES, later=later, earlier=earlier)
        assert problem is not None
        assert spoiler not in problem.steps[0].code


def test_without_the_later_steps_the_spoiling_template_would_be_drawn() -> None:
    """The exclusion above is what keeps the fix out: the pack does hold such a template."""
    drawn = {practice.aimed("leaf-update", "ascent-not-descent", seed, TEMPLATES)
             .steps[0].code.count("no_grad") for seed in range(10)}  # type: ignore[union-attr]
    assert drawn == {1}
    _, later = steps_of("errors/5", 1)
    assert practice.aimed("leaf-update", "ascent-not-descent", 0, TEMPLATES,
                          later=later) is None


def test_no_retry_when_nothing_aims_at_the_mistake() -> None:
    assert practice.aimed("polynomial", "sign-error", 1, TEMPLATES) is None
    assert practice.aimed("no-such-concept", "value-not-gradient", 1, TEMPLATES) is None
    assert practice.aimed("polynomial", "value-not-gradient", 1, ()) is None


# --- a parameterised step is checked at every draw and is a practice problem -------------


def fixed_pack(tmp_path: Path) -> Path:
    """The coincident-by-hand fixture with its by_hand corrected: d²(x³)/dx² = 6x."""
    root = tmp_path / "twice"
    shutil.copytree(FIXTURES / "coincident-by-hand", root)
    exercise = root / "square.toml"
    exercise.write_text(exercise.read_text().replace('by_hand = "3 * x ** 2"',
                                                     'by_hand = "6 * x"'))
    return root


def test_a_by_hand_right_only_at_the_shown_point_fails_pack_check(tmp_path: Path) -> None:
    # At x = 2 (the step's `at`) 3x² and the truth agree; the check must still fail.
    x = torch.tensor(2.0, requires_grad=True)
    (slope,) = torch.autograd.grad(x**3, x, create_graph=True)
    slope.backward()
    assert x.grad is not None and x.grad.item() == 3 * 2.0**2
    result = check_pack(FIXTURES / "coincident-by-hand")
    (problem,) = result.problems
    assert (problem.file, problem.step, problem.prediction) == ("square.toml", 1, "x.grad")
    assert "must agree at every draw" in problem.message
    assert check_pack(fixed_pack(tmp_path)).ok


def test_a_parameterised_step_is_shown_at_its_point_and_drawn_for_practice(
        tmp_path: Path) -> None:
    pack, problems = load_pack(fixed_pack(tmp_path))
    assert pack is not None and not problems
    (step,) = pack.exercises[0].steps
    assert "torch.tensor(2.0" in step.code and "x = 2." in step.setup
    (template,) = pack.practice
    assert template.concept == "polynomial" and template.origin == "square.toml: step 1"
    seen = set()
    for seed in range(8):
        (drawn,) = practice.generate("polynomial", 1, seed, pack.practice).steps
        _, names = plain_run(drawn.code)
        x = names["x"]
        seen.add(x.item())
        # The answer, by torch here: the second derivative of x³ is 6x.
        again = x.detach().clone().requires_grad_(True)
        (first,) = torch.autograd.grad(again**3, again, create_graph=True)
        (second,) = torch.autograd.grad(first, again)
        assert names["x"].grad.item() == second.item()
    assert len(seen) > 1


# --- the offer at the prompt -------------------------------------------------------------


@pytest.fixture
def at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """CliRunner's input and output, taken for a terminal: the retry may be offered."""
    monkeypatch.setattr("autograd_tutor.views.env._isatty", lambda stream: True)
    monkeypatch.setattr("autograd_tutor.views.ui._wait_for_a_line", lambda stream: None)
    monkeypatch.setenv("NO_COLOR", "1")


def misnamed_pack(tmp_path: Path) -> Path:
    """A pack whose mistake, sign-error on a polynomial, no practice problem aims at."""
    root = tmp_path / "packs" / "signs"
    shutil.copytree(FIXTURES / "valid", root)
    (root / "pack.toml").write_text((root / "pack.toml").read_text()
                                    .replace('name = "tiny"', 'name = "signs"'))
    exercise = root / "square.toml"
    text = exercise.read_text().replace('hints = ["d(x²)/dx = 2x.", "Put in x."]',
                                        'hints = ["d(x²)/dx = 2x."]\nconcept = "polynomial"')
    text = text.replace('name = "exponent-not-brought-down"\nvalue = "x"',
                        'name = "sign-error"\nvalue = "-2 * x"')
    exercise.write_text(text)
    return root


def test_the_offer_comes_only_with_a_problem_to_give(tmp_path: Path, at_a_terminal: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = misnamed_pack(tmp_path)
    assert check_pack(root).ok
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(root.parent))
    x = torch.tensor(7.0, requires_grad=True)
    (x**2).backward()
    assert x.grad is not None
    mistake = -x.grad.item()  # the sign-error answer: no template aims at it
    result = runner.invoke(app, ["exercise", "signs/1", "--graph", "none"],
                           input=f"{mistake:g}\n")
    assert result.exit_code == 0, result.output
    assert "0 of 1" in result.output
    assert "aimed at this" not in result.output and "No practice problem" not in result.output

    # Basics 1: y's value for x.grad is value-not-gradient, which polynomial problems aim at.
    x = torch.tensor(3.0, requires_grad=True)
    y = x**3 + 2 * x**2 - 5 * x + 1
    result = runner.invoke(app, ["exercise", "1", "--graph", "none"],
                           input=f"{y.item():g}\nn\n")
    assert result.exit_code == 0, result.output
    assert "Try one aimed at this? [Y/n]" in result.output
    assert "No practice problem" not in result.output


def test_accepting_the_offer_asks_the_aimed_problem(at_a_terminal: None) -> None:
    x = torch.tensor(3.0, requires_grad=True)
    y = x**3 + 2 * x**2 - 5 * x + 1
    result = runner.invoke(app, ["exercise", "1", "--graph", "none"],
                           input=f"{y.item():g}\ny\nskip\n")
    assert result.exit_code == 0, result.output
    assert re.search(r"Problem 1: polynomial", result.output)
    assert "Back to Polynomial Gradient." in result.output


@pytest.mark.parametrize(("change", "fragment"), [
    ("at = { x = 2 }\n", "a step with 'params' needs 'at'"),
    ("params = { x = [1, 5] }\n", "a step with 'params' needs 'at'"),
    ("at = { x = 2 }", "at = { y = 2 }"),
    ("at = { x = 2 }", 'at = { x = "two" }'),
])
def test_a_step_s_params_and_at_go_together(tmp_path: Path, change: str, fragment: str) -> None:
    root = fixed_pack(tmp_path)
    exercise = root / "square.toml"
    text = exercise.read_text()
    if fragment.startswith("at = "):  # replace the step's `at`
        text = text.replace(change, fragment)
        expected = ("must name the same parameters" if "y =" in fragment
                    else "must be a finite number")
    else:  # drop one of the two
        text = text.replace(change, "")
        expected = fragment
    exercise.write_text(text)
    pack, problems = load_pack(root)
    assert any(p.file == "square.toml" and p.step == 1 and expected in p.message
               for p in problems), [str(p) for p in problems]
