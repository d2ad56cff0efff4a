"""What a run of x_sin_x.py means: the learner's mistakes, recognised from what it left.

The engine gives each function the learner's run and the solution's (plain data: see the
docs on coding parts) and takes a diagnosis (a dict of name, title, explanation) or None.
No torch here: the values come as lists of floats.
"""

from __future__ import annotations

import math
from typing import Any

Diagnosis = dict[str, str]
CLOSE = 1e-4


def _diagnosis(name: str, title: str, explanation: str) -> Diagnosis:
    return {"name": name, "title": title, "explanation": explanation}


def _numbers(run: dict[str, Any] | None, name: str) -> list[float] | None:
    if run is None:
        return None
    value = run["values"].get(name)
    return None if value is None else value.get("numbers")


def _inputs(run: dict[str, Any], reference: dict[str, Any] | None
            ) -> tuple[list[float], list[float], list[float]] | None:
    """x, the loss's weights (grad_output) and the learner's grad, when all are there."""
    xs, grads = _numbers(run, "x"), _numbers(run, "grad")
    weights = _numbers(run, "weights") or _numbers(reference, "weights")
    if xs is None or grads is None or weights is None:
        return None
    if not (len(xs) == len(grads) == len(weights)):
        return None
    return xs, weights, grads


def _matches(grads: list[float], expected: list[float]) -> bool:
    return all(math.isclose(g, e, rel_tol=CLOSE, abs_tol=CLOSE)
               for g, e in zip(grads, expected, strict=True))


def _right(xs: list[float], weights: list[float]) -> list[float]:
    return [w * (math.sin(x) + x * math.cos(x)) for x, w in zip(xs, weights, strict=True)]


def unfinished(run: dict[str, Any], reference: dict[str, Any] | None) -> Diagnosis | None:
    error = run["error"]
    if error is None or error["type"] != "NotImplementedError":
        return None
    if not error["message"].startswith("TODO"):
        return None
    return _diagnosis(
        "unfinished", "backward is not written yet",
        f"backward still raises: {error['message']}. Replace the raise with a return of "
        "the gradient of the loss with respect to x: grad_output times dy/dx.")


def dropped_grad_output(run: dict[str, Any], reference: dict[str, Any] | None
                        ) -> Diagnosis | None:
    """backward returns dy/dx itself, not grad_output * dy/dx."""
    found = _inputs(run, reference)
    if run["outcome"] != "finished" or found is None:
        return None
    xs, weights, grads = found
    local = [math.sin(x) + x * math.cos(x) for x in xs]
    if not _matches(grads, local) or _matches(grads, _right(xs, weights)):
        return None
    return _diagnosis(
        "dropped_grad_output", "backward leaves out grad_output",
        "x.grad holds sin(x) + x·cos(x) itself: your backward returns the local derivative "
        "and ignores grad_output. The loss here is sum(weights · y), so grad_output is "
        "weights, and the chain rule asks for grad_output · (sin x + x·cos x). gradcheck "
        "catches it too: it calls backward with one grad_output per output element.")


def half_product_rule(run: dict[str, Any], reference: dict[str, Any] | None
                      ) -> Diagnosis | None:
    """backward keeps only one term of the product rule."""
    found = _inputs(run, reference)
    if run["outcome"] != "finished" or found is None:
        return None
    xs, weights, grads = found
    for term, text in (([x * math.cos(x) for x in xs], "x·cos(x), one term of the product rule"),
                       ([math.sin(x) for x in xs], "sin(x), one term of the product rule"),
                       ([math.cos(x) for x in xs], "cos(x), the slope of sin(x) alone")):
        with_output = [w * t for w, t in zip(weights, term, strict=True)]
        if _matches(grads, with_output):
            held = f"{text}, times grad_output"
        elif _matches(grads, term):
            held = f"{text}, and grad_output is missing too"
        else:
            continue
        return _diagnosis(
            "half_product_rule", "only part of the product rule",
            f"x.grad holds {held}. Both factors of x·sin(x) depend on x, so "
            "dy/dx = sin(x) + x·cos(x), and backward returns grad_output times that.")
    return None
