"""Small readers shared by the exercise modules: they turn tensors in a namespace into floats."""

from __future__ import annotations

from collections.abc import Callable

from autograd_tutor.model import Namespace, Value


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
