"""Ground truth for the tests: every exercise's answers, recomputed here with PyTorch directly.

Nothing in this module imports the tutor. Each function redoes the notebook's computation the
plain way (mostly with `torch.autograd.grad` rather than `.backward()`), so a test that
compares the tool's reveal with these values checks the tool against PyTorch itself, not
against numbers copied from the tool.

Values are floats (or None, or a choice like "w"), keyed by the exercise's prediction IDs.
"""

from __future__ import annotations

import functools
import warnings

import torch

Value = float | str | None

# The notebook's inputs. These are the exercises' *inputs*, not their answers.
EX1_X = 3.0
EX2_INPUTS = {"x": 2.0, "w1": 3.0, "w2": -1.0, "b": 0.5}
EX3_X = 3.0
EX4_SEED, EX4_POINTS, EX4_NOISE, EX4_LR, EX4_STEPS = 42, 20, 0.3, 0.01, 200
EX4_TRUE_W, EX4_TRUE_B = 2.0, 1.0
EX5_A = 2.0


def ex1() -> dict[str, Value]:
    x = torch.tensor(EX1_X, requires_grad=True)
    y = x**3 + 2 * x**2 - 5 * x + 1
    (dy_dx,) = torch.autograd.grad(y, x)
    return {"x.grad": dy_dx.item()}


def ex2() -> dict[str, Value]:
    leaves = {name: torch.tensor(value, requires_grad=True) for name, value in EX2_INPUTS.items()}
    h = leaves["x"] * leaves["w1"]
    h_act = h + leaves["b"]
    y = h_act * leaves["w2"]
    names = ["x", "w1", "w2", "b"]
    grads = torch.autograd.grad(y, [leaves[n] for n in names] + [h, h_act])
    values: dict[str, Value] = {f"{n}.grad": g.item() for n, g in zip(names, grads, strict=False)}
    values["h.grad"] = grads[4].item()
    values["h_act.grad"] = grads[5].item()
    # In prompt order: the order backward visits the graph, from y down.
    order = ["w2.grad", "h_act.grad", "b.grad", "h.grad", "w1.grad", "x.grad"]
    answers = {key: values[key] for key in order}
    # The same network without retain_grad(): what reading h.grad does, and what it holds.
    x = torch.tensor(EX2_INPUTS["x"], requires_grad=True)
    h = x * EX2_INPUTS["w1"]
    ((h + EX2_INPUTS["b"]) * EX2_INPUTS["w2"]).backward()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        held = h.grad
    answers["h.grad@read"] = "warning" if caught else "runs"
    answers["h.grad@plain"] = None if held is None else held.item()
    return answers


def ex2_forward() -> dict[str, float]:
    x, w1, w2, b = (torch.tensor(EX2_INPUTS[n]) for n in ("x", "w1", "w2", "b"))
    h = x * w1
    h_act = h + b
    return {"h": h.item(), "h_act": h_act.item(), "y": (h_act * w2).item()}


def ex3() -> dict[str, Value]:
    x = torch.tensor(EX3_X, requires_grad=True)
    (x**2).backward()
    first = x.grad.item()
    (x**2).backward()
    second = x.grad.item()
    x.grad.zero_()
    (x**2).backward()
    third = x.grad.item()
    return {"x.grad@1": first, "x.grad@2": second, "x.grad@3": third}


def ex4_data() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(EX4_SEED)
    xs = torch.linspace(-3, 3, EX4_POINTS)
    ys = EX4_TRUE_W * xs + EX4_TRUE_B + torch.randn(EX4_POINTS) * EX4_NOISE
    return xs, ys


def _mse(w: torch.Tensor, b: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    return ((ys - (w * xs + b)) ** 2).mean()


@functools.cache
def ex4_training() -> tuple[list[float], list[tuple[float, float]]]:
    """The notebook's 200-step loop: (losses, (w, b) after each step)."""
    xs, ys = ex4_data()
    w = torch.tensor(0.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    losses, params = [], []
    for _ in range(EX4_STEPS):
        loss = _mse(w, b, xs, ys)
        grad_w, grad_b = torch.autograd.grad(loss, [w, b])
        with torch.no_grad():
            w -= EX4_LR * grad_w
            b -= EX4_LR * grad_b
        losses.append(loss.item())
        params.append((w.item(), b.item()))
    return losses, params


def ex4() -> dict[str, Value]:
    xs, ys = ex4_data()
    w = torch.tensor(0.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    loss = _mse(w, b, xs, ys)
    grad_w, grad_b = torch.autograd.grad(loss, [w, b])
    with torch.no_grad():
        w_1 = w - EX4_LR * grad_w
        b_1 = b - EX4_LR * grad_b
    zeroed = grad_w.clone().zero_()
    _, params = ex4_training()
    w40, b40 = params[39]
    w200, b200 = params[-1]
    # The least-squares line of the points, by the normal equations in float64.
    design = torch.stack([xs, torch.ones_like(xs)], dim=1).double()
    lsq_w, lsq_b = torch.linalg.solve(design.T @ design, design.T @ ys.double()).tolist()
    return {
        "y_pred@1": (w * xs + b)[0].item(),
        "loss@1": loss.item(),
        "w.grad@1": grad_w.item(),
        "b.grad@1": grad_b.item(),
        "w@1": w_1.item(),
        "b@1": b_1.item(),
        "w.grad@zeroed": zeroed.item(),
        "closer@40": "w" if abs(w40 - EX4_TRUE_W) < abs(b40 - EX4_TRUE_B) else "b",
        "w@200": "true" if abs(w200 - EX4_TRUE_W) < abs(w200 - lsq_w) else "lsq",
        "b@200": "true" if abs(b200 - EX4_TRUE_B) < abs(b200 - lsq_b) else "lsq",
    }


def ex5_detach_error() -> tuple[str, Value]:
    """Run the notebook's 'with detach' cell: PyTorch's error message, and a.grad after it."""
    a = torch.tensor(EX5_A, requires_grad=True)
    c = (a * 3).detach() ** 2
    try:
        c.backward()
    except RuntimeError as error:
        message = str(error)
    else:  # pragma: no cover - would mean PyTorch changed its behaviour
        raise AssertionError("c.backward() did not raise")
    return message, None if a.grad is None else a.grad.item()


def ex5() -> dict[str, Value]:
    a = torch.tensor(EX5_A, requires_grad=True)
    (full,) = torch.autograd.grad((a * 3) ** 2, a)
    _, after_detach = ex5_detach_error()
    a = torch.tensor(EX5_A, requires_grad=True)
    (partial,) = torch.autograd.grad((a * 3).detach() ** 2 + a, a)
    # What c.backward() does, seen by running it: it raises, so the outcome is "error"; the
    # choice is the lesson's name for this error (its label, not PyTorch's words).
    outcome = "error" if ex5_detach_error()[0] else "runs"
    return {"a.grad": full.item(), "c.backward@detach": outcome,
            "c.backward@detach:which": "nothing requires grad",
            "a.grad@detach": after_detach, "a.grad@partial": partial.item()}


ANSWERS = {1: ex1, 2: ex2, 3: ex3, 4: ex4, 5: ex5}


@functools.cache
def answers(number: int) -> dict[str, Value]:
    """The right answer to every prediction of exercise `number`, in prompt order."""
    return ANSWERS[number]()


def typed(value: Value) -> str:
    """How a learner (or a test) types a value at the prompt or in --answer."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return value
    return repr(float(value))
