"""By-hand helpers for the debugging pack: plain floats in, plain values out (no torch)."""

from __future__ import annotations

import math


def kind(value: float) -> str:
    """What sort of number a gradient is: "finite", "inf" or "nan"."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    return "finite"


def sqrt_slope_kind(x: float) -> str:
    """The slope of √x, 1/(2√x), worked out by hand: infinite at 0."""
    if x == 0:
        return "inf"
    return kind(1 / (2 * math.sqrt(x)))


def where_sqrt_kind(x: float, upstream: float) -> str:
    """What torch.where sends back to x through the branch it did not pick: the upstream 0
    times the branch's own slope. 0 · ∞ is not a number."""
    slope = math.inf if x == 0 else 1 / (2 * math.sqrt(x))
    return kind(upstream * slope)


def relu_slope(x: float) -> float:
    """relu's slope as PyTorch defines it: 1 where the input is > 0, else 0."""
    return 1.0 if x > 0 else 0.0


def clamp_min_slope(x: float, low: float) -> float:
    """clamp(min=low)'s slope: 1 where the input is at least the bound, else 0."""
    return 1.0 if x >= low else 0.0


def abs_slope(x: float) -> float:
    """|x|'s slope, sign(x), with sign(0) = 0."""
    return 0.0 if x == 0 else math.copysign(1.0, x)
