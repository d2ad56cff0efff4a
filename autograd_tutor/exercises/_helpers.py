"""Small readers shared by the exercise modules: they turn tensors in a namespace into floats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autograd_tutor.model import Figures, Namespace, Value


def item(ns: Namespace, name: str) -> float:
    """The forward value of a scalar tensor (or a plain number) in the namespace."""
    value = ns[name]
    return float(value.item() if hasattr(value, "item") else value)


def grad_of(name: str) -> Callable[[Namespace], Value]:
    """Reads PyTorch's `.grad` of a tensor; None stays None (that is the lesson of Exercise 5)."""

    def read(ns: Namespace) -> Value:
        grad = ns[name].grad
        return None if grad is None else float(grad.item())

    return read


def publish(figures: dict[str, Any], target: Figures) -> list[str]:
    """Save each figure as NAME.png in the plots folder; open windows when asked and possible."""
    from autograd_tutor import plots  # matplotlib only when figures are drawn

    lines = [f"Saved figure: `{plots.save(figure, target.directory / (name + '.png'))}`"
             for name, figure in figures.items()]
    if target.show and not plots.show(figures.values()):
        lines.append("No display is available to show the figures; they are saved above.")
    return lines
