"""Exercise 4's by-hand arithmetic, for what one expression cannot say.

Plain floats and lists of floats in, plain values out: no torch here. The engine passes
tensors as lists, so `xs` and `ys` are the data's x and y values.
"""

from __future__ import annotations

import math

# The notebook's starting point; every by-hand formula starts from the same values.
W0 = 0.0
B0 = 0.0
# The line the data comes from (y = 2x + 1, plus noise).
TRUE_W = 2.0
TRUE_B = 1.0


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def mse(xs: list[float], ys: list[float], w: float, b: float) -> float:
    return _mean([(y - (w * x + b)) ** 2 for x, y in zip(xs, ys, strict=True)])


def mse_gradient(xs: list[float], ys: list[float], w: float, b: float) -> list[float]:
    """[dL/dw, dL/db] = [-2·mean((y - ŷ)·x), -2·mean(y - ŷ)]: the chain rule done by hand."""
    errors = [y - (w * x + b) for x, y in zip(xs, ys, strict=True)]
    return [-2 * _mean([e * x for e, x in zip(errors, xs, strict=True)]), -2 * _mean(errors)]


def descend(xs: list[float], ys: list[float], lr: float, steps: float) -> list[float]:
    """[w, b] after `steps` of gradient descent from (W0, B0) with the hand-derived gradient."""
    w, b = W0, B0
    for _ in range(int(steps)):
        grad_w, grad_b = mse_gradient(xs, ys, w, b)
        w, b = w - lr * grad_w, b - lr * grad_b
    return [w, b]


def fit_line(xs: list[float], ys: list[float]) -> list[float]:
    """[slope, intercept] of the exact least-squares line: where descent heads."""
    mx, my = _mean(xs), _mean(ys)
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    slope = sxy / sxx
    return [slope, my - slope * mx]


def mean_square(xs: list[float]) -> float:
    return _mean([x * x for x in xs])


def true_line() -> list[float]:
    """[slope, intercept] of the line the data comes from: the figure draws it."""
    return [TRUE_W, TRUE_B]


def closer(w: float, b: float) -> str:
    """Which parameter is nearer its target (w = 2, b = 1) of the true line."""
    return "w" if abs(w - TRUE_W) < abs(b - TRUE_B) else "b"


def closer_after(xs: list[float], ys: list[float], lr: float, steps: float) -> str:
    return closer(*descend(xs, ys, lr, steps))


def path(params: list[list[float]]) -> list[list[float]]:
    """The training path with its starting point first."""
    return [[W0, B0], *params]


def nearer(value: float, true: float, lsq: float) -> str:
    """Which line's parameter `value` is nearer: "true" (the data's source) or "lsq"."""
    return "true" if abs(value - true) < abs(value - lsq) else "lsq"
