"""The curriculum's built-in packs beyond the notebook (higher-order, debugging), and the
course order every listing follows.

Every expected value here is this file's own PyTorch computation, mostly by another route
than the pack's code (torch.autograd.grad for .grad, torch.autograd.functional for
Hessians, the norm by torch.linalg): nothing is copied from the packs. The exercises' inputs
(x = 2, ...) are restated; their answers are computed.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from reference import Value, typed
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content import packs
from autograd_tutor.engine.store import Store

runner = CliRunner()
REL, ABS = 1e-5, 1e-6
COURSE = ["basics", "errors", "tensors", "modes", "higher-order", "custom-functions",
          "debugging"]
PACKS = ["higher-order", "debugging"]
Answers = dict[str, Value]


def leaf(value: float | list[float]) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64, requires_grad=True)


def d(output: torch.Tensor, inputs: torch.Tensor, **options: Any) -> torch.Tensor:
    (gradient,) = torch.autograd.grad(output, inputs, **options)
    return gradient


def outcome(code: Callable[[], object]) -> tuple[str, str]:
    """What running `code` does (runs or error) and the error's message."""
    try:
        code()
    except RuntimeError as error:
        return "error", str(error)
    return "runs", ""


def kind(value: float) -> str:
    return "nan" if math.isnan(value) else "inf" if math.isinf(value) else "finite"


# The reason each error names, as the learner's choice: read from PyTorch's own message.
REASONS = {
    "does not require grad": "nothing requires grad",
    "a second time": "graph already freed",
    "SqrtBackward0": "the square root's backward",
}


def reason(message: str) -> str:
    return next(choice for pattern, choice in REASONS.items() if pattern in message)


# higher-order --------------------------------------------------------------------------


def higher_order_1() -> Answers:
    x = leaf(2.0)
    g = d(x**3, x)
    before = x.grad
    dz = d(x**2 + x, x)  # what z.backward() would write; autograd.grad writes nothing
    return {"g": g.item(), "x.grad@functional": before, "x.grad@mixed": dz.item()}


def higher_order_2() -> Answers:
    x = leaf(3.0)
    g_plain = d(x**3, x)
    happened, message = outcome(lambda: d(g_plain, x))
    g = d(x**3, x, create_graph=True)
    return {"grad@2": happened, "grad@2:which": reason(message), "g2": d(g, x).item()}


def higher_order_3() -> Answers:
    def f(x: torch.Tensor) -> torch.Tensor:
        return x[0] ** 2 * x[1] + x[1] ** 3

    x = torch.tensor([1.0, 3.0], dtype=torch.float64)
    v = torch.tensor([2.0, -1.0], dtype=torch.float64)
    _, hv = torch.autograd.functional.hvp(f, x, v)
    return {"hv[0]": hv[0].item(), "hv[1]": hv[1].item()}


def higher_order_4() -> Answers:
    x = leaf(2.0)
    h = x**2
    l1, l2 = 3 * h, h**2
    l1.backward()
    happened, message = outcome(l2.backward)
    y = leaf(2.0)
    total = d(3 * y**2 + (y**2) ** 2, y)  # one pass over the sum of both losses
    x = leaf(2.0)
    h = x**2
    (3 * h).backward(retain_graph=True)
    kept, _ = outcome((h**2).backward)
    return {"l2.backward": happened, "l2.backward:which": reason(message),
            "l2.backward@kept": kept, "x.grad@kept": total.item()}


def higher_order_5() -> Answers:
    def f(x: torch.Tensor) -> torch.Tensor:
        return x[0] ** 2 + 3 * x[1] ** 2

    x = torch.tensor([2.0, 0.5], dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(f, x)
    g = torch.autograd.functional.jacobian(f, x)
    squared = 2 * hessian @ g  # d‖g‖²/dx = 2·H·g
    norm = hessian @ g / torch.linalg.vector_norm(g)  # d‖g‖/dx = H·g / ‖g‖
    return {"x.grad[0]@squared": squared[0].item(), "x.grad[1]@squared": squared[1].item(),
            "x.grad[1]@norm": norm[1].item()}


# debugging -----------------------------------------------------------------------------


def debugging_1() -> Answers:
    x = leaf(1.0)
    h = 4 * x
    y = h**2
    dy_dh, dy_dx = torch.autograd.grad(y, [h, x])
    # A hook that doubles dy/dh doubles everything below h: the chain rule is linear.
    return {"seen[0]": dy_dh.item(), "x.grad@looked": dy_dx.item(),
            "x.grad@doubled": (2 * dy_dh * d(4 * x, x)).item()}


def debugging_2() -> Answers:
    x = leaf(2.0)
    h = 3 * x
    dy_dh, dy_dx = torch.autograd.grad(h**2, [h, x])
    w = leaf(2.0)
    per_pass = d(w**2, w) + 1  # the hook's + 1 on each pass's gradient
    return {"h.grad": (2 * dy_dh).item(), "x.grad": (2 * dy_dx).item(),
            "w.grad": (2 * per_pass).item()}


def debugging_3() -> Answers:
    x = leaf([0.0, 4.0])
    plain = d(torch.sqrt(x).sum(), x)
    x = leaf([0.0, 4.0])
    guarded = d(torch.where(x > 0, torch.sqrt(x), torch.zeros_like(x)).sum(), x)
    x = leaf([0.0, 4.0])
    safe = torch.where(x > 0, x, torch.ones_like(x))
    fixed = d(torch.where(x > 0, torch.sqrt(safe), torch.zeros_like(x)).sum(), x)
    return {"x.grad[0]@sqrt": kind(plain[0].item()), "x.grad[1]": plain[1].item(),
            "x.grad[0]@where": kind(guarded[0].item()), "x.grad[0]@safe": fixed[0].item()}


def debugging_4() -> Answers:
    answers: Answers = {}
    for name, op in (("a", torch.relu), ("b", lambda t: t.clamp(min=0)), ("c", torch.abs)):
        t = leaf(0.0)
        answers[f"{name}.grad"] = d(op(t), t).item()
    return answers


def debugging_5() -> Answers:
    x = leaf([0.0, 4.0])

    def watched() -> None:
        with pytest.warns(UserWarning), torch.autograd.detect_anomaly():
            torch.where(x > 0, torch.sqrt(x), torch.zeros_like(x)).sum().backward()

    happened, message = outcome(watched)
    return {"y.backward": happened, "y.backward:which": reason(message),
            "x.grad@anomaly": None if x.grad is None else x.grad[1].item()}


def debugging_6() -> Answers:
    w = leaf([0.6, 0.8])
    grad = d(25 * (w**2).sum(), w)
    norm = torch.linalg.vector_norm(grad).item()
    return {"total": norm, "w.grad[0]": grad[0].item() * min(1.0, 5.0 / norm),
            "w.grad[1]@below": grad[1].item() * min(1.0, 500.0 / norm)}


REFERENCE: dict[str, Callable[[], Answers]] = {
    "higher-order/1": higher_order_1, "higher-order/2": higher_order_2,
    "higher-order/3": higher_order_3, "higher-order/4": higher_order_4,
    "higher-order/5": higher_order_5,
    "debugging/1": debugging_1, "debugging/2": debugging_2, "debugging/3": debugging_3,
    "debugging/4": debugging_4, "debugging/5": debugging_5, "debugging/6": debugging_6,
}


def wrong(key: str, right: Answers) -> tuple[str, Value, str]:
    """One plausible mistake per exercise: the prediction, the wrong value (this file's own
    model of the mistake) and the misconception it must be diagnosed as."""
    mistakes: dict[str, Callable[[], tuple[str, Value, str]]] = {
        "higher-order/1": lambda: ("x.grad@functional", right["g"], "functional-grad-stores"),
        "higher-order/2": lambda: ("g2", 3 * 3.0**2, "first-not-second"),
        "higher-order/3": lambda: ("hv[0]", 2 * 1.0 * 3.0, "hvp-is-gradient"),
        "higher-order/4": lambda: ("x.grad@kept", 2 * 2.0**2 * 2 * 2.0, "replaced-not-accumulated"),
        "higher-order/5": lambda: ("x.grad[0]@squared", 2 * (2 * 2.0), "penalty-hessian-dropped"),
        "debugging/1": lambda: ("x.grad@doubled", right["x.grad@looked"], "hook-return-ignored"),
        "debugging/2": lambda: ("h.grad", right["h.grad"] / 2, "retain-before-hook"),
        "debugging/3": lambda: ("x.grad[0]@where", "finite", "where-blocks-gradient"),
        "debugging/4": lambda: ("b.grad", right["a.grad"], "clamp-same-as-relu"),
        "debugging/5": lambda: ("y.backward", "runs", "anomaly-mode-only-logs"),
        "debugging/6": lambda: ("total", 5.0, "clip-returns-clipped-norm"),
    }
    return mistakes[key]()


def run_json(key: str, answers: Answers, *extra: str) -> dict[str, Any]:
    args = ["exercise", key, "--json", "--graph", "none", *extra]
    for pid, value in answers.items():
        outcome = pid.removesuffix(":which")
        if outcome != pid and answers.get(outcome) != "error":
            continue  # "which error?" is asked only after a predicted error
        args += ["--answer", f"{pid}={typed(value)}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def same(got: Value, expected: Value) -> bool:
    if expected is None or isinstance(expected, str):
        return got == expected
    return isinstance(got, float) and math.isclose(got, expected, rel_tol=REL, abs_tol=ABS)


@pytest.mark.parametrize("name", PACKS)
def test_pack_check_passes(name: str) -> None:
    result = runner.invoke(app, ["pack", "check", str(packs.BUILTIN_DIR / name), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["problems"] == []


def test_every_exercise_has_a_reference() -> None:
    keys = [f"{name}/{e.number}" for name in PACKS for e in packs.builtin(name).exercises]
    assert keys == list(REFERENCE)
    for key in keys:
        pack, number = packs.parse_key(key)
        ids = packs.builtin(pack).exercise(number).prediction_ids
        assert set(REFERENCE[key]()) <= set(ids)


@pytest.mark.parametrize("key", list(REFERENCE))
def test_the_reveal_shows_pytorchs_values(key: str) -> None:
    # A reveal predicts nothing, so no "which error?" follows an outcome.
    expected = {pid: v for pid, v in REFERENCE[key]().items() if not pid.endswith(":which")}
    report = run_json(key, {}, "--reveal")
    shown = {step["id"]: step for step in report["steps"]}
    assert set(shown) == set(expected)
    for pid, value in expected.items():
        assert same(shown[pid]["actual"], value), (pid, shown[pid]["actual"], value)
        assert same(shown[pid]["by_hand"], value) or shown[pid]["by_hand"] == value, pid


@pytest.mark.parametrize("key", list(REFERENCE))
def test_right_answers_are_right_and_complete_the_exercise(key: str) -> None:
    expected = REFERENCE[key]()
    report = run_json(key, expected)
    assert report["completed"] is True
    for step in report["steps"]:
        assert step["correct"] is True, step
    assert report["score"] == {"correct": len(expected), "asked": len(expected)}
    listing = runner.invoke(app, ["list", key.split("/")[0]])
    assert re.search(rf"{re.escape(key)}\b.*done", listing.output), listing.output


@pytest.mark.parametrize("key", list(REFERENCE))
def test_a_typical_mistake_is_named(key: str) -> None:
    right = REFERENCE[key]()
    pid, value, misconception = wrong(key, right)
    assert not same(value, right[pid])
    report = run_json(key, {**right, pid: value})
    step = next(step for step in report["steps"] if step["id"] == pid)
    assert step["correct"] is False
    assert step["misconception"] == misconception


# Practice: every concept of both packs draws problems whose answers PyTorch confirms and
# whose typical mistake is told apart from the right answer and named.

def read(names: dict[str, Any], expression: str) -> Value:
    value = eval(expression, {}, names)  # the problem's own ID, e.g. x.grad[0]
    return None if value is None else float(value)


def run_code(code: str) -> dict[str, Any]:
    names: dict[str, Any] = {"torch": torch}
    with warnings.catch_warnings():  # anomaly mode warns as it raises
        warnings.simplefilter("ignore")
        exec(code, names)
    return names


def number(pattern: str, code: str) -> float:
    found = re.search(pattern, code)
    assert found is not None, code
    return float(found.group(1))


def num(value: Any) -> float:
    return float(torch.as_tensor(value).detach())


def at_one(code: str) -> float:
    """The right-hand slope of a kink at 0: the same code one step to the right."""
    names = run_code(code.replace("torch.tensor(0.0", "torch.tensor(1.0"))
    return num(names["x"].grad)


# Per concept: the misconception a typical slip shows, and this file's model of that slip's
# number, read from the drawn problem's own run (and its code's literals).
SLIPS: dict[str, tuple[str, Callable[[dict[str, Any], str], Value]]] = {
    "functional-grad": ("functional-grad-replaces", lambda n, c: 3 * num(n["x"]) ** 2),
    "create-graph": ("first-not-second", lambda n, c: num(n["g"])),
    "hessian-vector": ("hvp-is-gradient", lambda n, c: num(n["g"][1])),
    "retain-graph": ("replaced-not-accumulated", lambda n, c: 4 * num(n["x"]) ** 3),
    "gradient-penalty": ("penalty-is-f-gradient", lambda n, c: num(n["g"][1])),
    "tensor-hooks": ("hook-return-ignored",
                     lambda n, c: 2 * num(n["h"]) * num(n["h"]) / num(n["x"])),
    "retained-vs-hooked": ("retain-before-hook", lambda n, c: 2 * num(n["h"])),
    "nan-gradients": ("where-cuts-none", lambda n, c: None),
    "kink-subgradients": ("kink-right-slope", lambda n, c: at_one(c)),
    "anomaly-detection": ("zero-not-none", lambda n, c: 0.0),
    "grad-norm-clipping": ("clip-not-applied",
                           lambda n, c: 2 * number(r"loss = (\d+) \*", c) * num(n["w"][0])),
}
CONCEPTS = [(name, concept) for name in PACKS for concept, _ in packs.builtin(name).concepts]


def test_every_concept_has_a_modelled_slip() -> None:
    assert sorted(SLIPS) == sorted(concept for _, concept in CONCEPTS)


@pytest.mark.parametrize(("pack", "concept"), CONCEPTS)
def test_practice_draws_fair_problems_for_every_concept(pack: str, concept: str) -> None:
    assert any(t.concept == concept for t in packs.builtin(pack).practice)
    misconception, slip = SLIPS[concept]
    problems = set()
    for seed in ("1", "2", "3", "4"):
        args = ["practice", "--concept", concept, "--count", "1", "--seed", seed, "--json"]
        shown = runner.invoke(app, [*args, "--reveal"])
        assert shown.exit_code == 0, shown.output
        (item,) = json.loads(shown.stdout)["items"]
        assert item["concept"] == concept
        names = run_code(item["code"])  # the drawn problem, run here on its own
        right = read(names, item["id"].split(".", 1)[1])
        assert same(item["actual"], right), (item["code"], item["actual"], right)
        problems.add(item["code"])
        # The slip gives another number than the truth, and is named when typed.
        wrong_value = slip(names, item["code"])
        assert not same(wrong_value, right), item["code"]
        answered = runner.invoke(app, args, input=f"{typed(wrong_value)}\nn\nn\n")
        assert answered.exit_code == 0, answered.output
        (judged,) = json.loads(answered.stdout)["items"]
        assert judged["code"] == item["code"]
        assert judged["correct"] is False
        assert judged["misconception"] == misconception, (item["code"], wrong_value)
    assert len(problems) > 1, "every seed drew the same problem"


# Course order ---------------------------------------------------------------------------


def test_course_order_is_data_and_the_built_in_packs_follow_it() -> None:
    assert list(packs.course_order()) == COURSE
    result = runner.invoke(app, ["pack", "list"])
    assert result.exit_code == 0
    shown = [name for name in re.findall(r"^│ ([a-z-]+)", result.output, re.M)]
    built_in = [name for name in COURSE if (packs.BUILTIN_DIR / name).is_dir()]
    assert shown == built_in


def test_list_next_and_progress_follow_the_course() -> None:
    home = runner.invoke(app, [])
    more = re.search(r"More packs: (.*?)\. See", " ".join(home.output.split()))
    assert more is not None, home.output
    listed = re.findall(r"([a-z-]+) \(\d+\)", more.group(1))
    assert listed == [n for n in COURSE[1:] if (packs.BUILTIN_DIR / n).is_dir()]
    # progress: exercises of a later pack after an earlier one, whatever the alphabet says.
    run_json("debugging/4", REFERENCE["debugging/4"]())
    run_json("higher-order/3", REFERENCE["higher-order/3"]())
    run_json("errors/10", {}, "--reveal")
    run_json("errors/2", {}, "--reveal")
    progress = runner.invoke(app, ["progress", "--json"])
    order = list(json.loads(progress.stdout)["exercises"])
    assert order == ["errors/2", "errors/10", "higher-order/3", "debugging/4"]
    table = runner.invoke(app, ["progress"]).output
    assert table.index("higher-order/3") < table.index("debugging/4")
    assert runner.invoke(app, ["list", "higher-order"]).exit_code == 0


def test_next_goes_on_in_course_order(tutor_env: Path) -> None:
    store = Store(tutor_env, warn=print)
    found = packs.installed(tutor_env)
    for name in ("basics", "errors"):
        for exercise in found.get(name).exercises:
            assert store.complete(name, exercise.number, "scripted")
    result = runner.invoke(app, ["next", "--reveal", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    after = [n for n in COURSE[2:] if (packs.BUILTIN_DIR / n).is_dir()][0]
    assert (report["pack"], report["exercise"]) == (after, 1)


@pytest.mark.parametrize(("key", "pid", "phrase"), [
    ("higher-order/1", "x.grad@mixed", "so it holds {}:"),
    ("higher-order/5", "x.grad[1]@norm", "g₁/‖g‖ = {}."),
    ("debugging/1", "x.grad@doubled", "2 · 2h · 4 = {}."),
])
def test_a_later_steps_explanation_shows_its_own_values(key: str, pid: str, phrase: str) -> None:
    """Regression: a placeholder such as {x.grad} read an earlier step's prediction of that
    ID instead of the tensor as this step left it."""
    from autograd_tutor.engine.answers import format_value

    result = runner.invoke(app, ["exercise", key, "--reveal", "--graph", "none"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    value = float(f"{REFERENCE[key]()[pid]:.4g}")
    assert phrase.format(format_value(value)) in text, text


OUTCOME_CASES = [(exercise, index, prediction) for name in PACKS
                 for exercise in packs.builtin(name).exercises
                 for index, step in enumerate(exercise.steps)
                 for prediction in step.predictions if prediction.kind == "outcome"]


@pytest.mark.parametrize("case", OUTCOME_CASES, ids=lambda case: f"{case[0].key}:{case[2].id}")
def test_nothing_before_an_outcome_prompt_gives_it_away(case: tuple[Any, int, Any]) -> None:
    """Stopped at the outcome's prompt: neither PyTorch's message nor the step's explanation
    has been printed (the message is this file's own run of the step's code)."""
    from autograd_tutor.views.session import prompt_text

    exercise, index, prediction = case
    args = ["exercise", packs.key_text(exercise), "--graph", "none"]
    typed_ = {"outcome": "runs", "which": "1", "value": "0"}  # any valid answer will do
    for step in exercise.steps[:index]:
        args += [f"--answer={p.id}={typed_[p.kind]}" for p in step.predictions
                 if p.kind != "which"]  # asked only after a predicted error
    result = runner.invoke(app, args, input="")
    assert result.exit_code == 1, result.output  # input ended at the outcome's prompt
    prompt = prompt_text(prediction).rstrip()
    before = " ".join(result.output[: result.output.rindex(prompt)].split())
    names: dict[str, Any] = {"torch": torch}
    for step in exercise.steps[:index]:
        outcome(lambda code=step.code: exec(code, names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        happened, message = outcome(lambda: exec(exercise.steps[index].code, names))
    if happened == "error":
        assert " ".join(message.split())[:40] not in before
    for sentence in " ".join(exercise.steps[index].explanation.split()).split(". ")[:2]:
        assert len(sentence) <= 30 or sentence[:30] not in before
