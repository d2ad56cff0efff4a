"""Exercise 2: a two-layer computation, every .grad checked against the chain rule by hand."""

from __future__ import annotations

import warnings

from autograd_tutor.exercises._helpers import grad_of, item
from autograd_tutor.model import (
    Exercise,
    Figures,
    Misconception,
    Namespace,
    Prediction,
    Step,
)


def _v(ns: Namespace, name: str) -> float:
    return item(ns, name)


def _h_act(ns: Namespace) -> float:
    return _v(ns, "x") * _v(ns, "w1") + _v(ns, "b")


SIGN_FLIP = (
    "You lost the minus sign. The gradient arriving from the top is dy/dh_act = w2 = -1, "
    "and everything below h_act is multiplied by it: leaving that factor out, or its sign, "
    "gives this number."
)


def _predictions() -> tuple[Prediction, ...]:
    return (
        Prediction(
            id="x.grad",
            label="x.grad",
            actual=grad_of("x"),
            by_hand=lambda ns: _v(ns, "w2") * _v(ns, "w1"),
            by_hand_text="dy/dh · dh/dx = w2 · w1",
            hints=(
                "Follow the path y ← h_act ← h ← x and multiply the local derivatives on it.",
                "dy/dh_act = w2, dh_act/dh = 1, dh/dx = w1.",
            ),
            concept="chain-rule",
            misconceptions=(
                Misconception("sign-error", SIGN_FLIP, lambda ns: -_v(ns, "w2") * _v(ns, "w1")),
                Misconception(
                    "x-for-w1",
                    "You used x where w1 belongs: dh/dx is the other factor of the product, w1.",
                    lambda ns: _v(ns, "w2") * _v(ns, "x"),
                ),
            ),
            wrong_feedback="Multiply the local derivatives along the path from y down to x.",
        ),
        Prediction(
            id="w1.grad",
            label="w1.grad",
            actual=grad_of("w1"),
            by_hand=lambda ns: _v(ns, "w2") * _v(ns, "x"),
            by_hand_text="dy/dh · dh/dw1 = w2 · x",
            hints=(
                "Same path as x, but the last step is dh/dw1.",
                "h = x · w1, so dh/dw1 = x.",
            ),
            concept="chain-rule",
            misconceptions=(
                Misconception("sign-error", SIGN_FLIP, lambda ns: -_v(ns, "w2") * _v(ns, "x")),
                Misconception(
                    "w1-for-x",
                    "You used w1 where x belongs: d(x · w1)/dw1 is x.",
                    lambda ns: _v(ns, "w2") * _v(ns, "w1"),
                ),
            ),
            wrong_feedback="Multiply dy/dh = w2 by dh/dw1 = x.",
        ),
        Prediction(
            id="w2.grad",
            label="w2.grad",
            actual=grad_of("w2"),
            by_hand=_h_act,
            by_hand_text="dy/dw2 = h_act = x · w1 + b",
            hints=(
                "y = h_act · w2: the derivative with respect to one factor is the other factor.",
                "dy/dw2 = h_act. Compute h_act = x · w1 + b.",
            ),
            concept="chain-rule",
            misconceptions=(
                Misconception(
                    "forgot-bias",
                    "You used h instead of h_act: the bias b is added before w2 multiplies.",
                    lambda ns: _v(ns, "x") * _v(ns, "w1"),
                ),
                Misconception(
                    "output-not-gradient",
                    "That is y, the output (or h_act with a stray minus sign). dy/dw2 is the "
                    "factor w2 is multiplied by: h_act, which is positive.",
                    lambda ns: _h_act(ns) * _v(ns, "w2"),
                ),
            ),
            wrong_feedback="y = h_act · w2, so dy/dw2 = h_act.",
        ),
        Prediction(
            id="b.grad",
            label="b.grad",
            actual=grad_of("b"),
            by_hand=lambda ns: _v(ns, "w2") * 1.0,
            by_hand_text="dy/dh_act · dh_act/db = w2 · 1",
            hints=(
                "b is added: the local derivative of a sum with respect to either term is 1.",
                "dy/db = dy/dh_act · 1, and dy/dh_act = w2.",
            ),
            concept="chain-rule",
            misconceptions=(
                Misconception("sign-error", SIGN_FLIP, lambda ns: -_v(ns, "w2")),
                Misconception(
                    "bias-value",
                    "That is b's value. A gradient says how y changes when b changes.",
                    lambda ns: _v(ns, "b"),
                ),
            ),
            wrong_feedback="dy/db = w2 · 1: an addition passes the gradient through unchanged.",
        ),
        Prediction(
            id="h.grad",
            label="h.grad",
            actual=grad_of("h"),
            by_hand=lambda ns: _v(ns, "w2") * 1.0,
            by_hand_text="dy/dh_act · dh_act/dh = w2 · 1",
            hints=(
                "h is an intermediate; retain_grad() asks PyTorch to keep its gradient.",
                "h_act = h + b, so dh_act/dh = 1; multiply by dy/dh_act = w2.",
            ),
            concept="chain-rule",
            misconceptions=(
                Misconception("sign-error", SIGN_FLIP, lambda ns: -_v(ns, "w2")),
                Misconception(
                    "non-leaf-none",
                    "Without retain_grad() h.grad would be None, but this code calls "
                    "h.retain_grad(), so PyTorch keeps it.",
                    lambda ns: None,
                ),
            ),
            wrong_feedback="dy/dh = dy/dh_act · dh_act/dh = w2 · 1.",
        ),
        Prediction(
            id="h_act.grad",
            label="h_act.grad",
            actual=grad_of("h_act"),
            by_hand=lambda ns: _v(ns, "w2"),
            by_hand_text="dy/dh_act = w2",
            hints=(
                "h_act is the last step before y: one local derivative, no chain needed.",
                "y = h_act · w2: the derivative with respect to one factor is the other factor.",
            ),
            concept="chain-rule",
            misconceptions=(
                Misconception(
                    "value-not-gradient",
                    "That is h_act's value; its gradient is dy/dh_act = w2.",
                    _h_act,
                ),
                Misconception("sign-error", SIGN_FLIP, lambda ns: -_v(ns, "w2")),
                Misconception(
                    "non-leaf-none",
                    "Without retain_grad() h_act.grad would be None, but this code calls "
                    "h_act.retain_grad(), so PyTorch keeps it.",
                    lambda ns: None,
                ),
            ),
            wrong_feedback="y = h_act · w2, so dy/dh_act = w2.",
        ),
    )


def _without_retain_grad(ns: Namespace, figures: Figures) -> list[str]:
    """Show, from PyTorch itself, what reading a non-leaf's .grad does without retain_grad()."""
    torch = ns["torch"]
    x = torch.tensor(item(ns, "x"), requires_grad=True)
    h = x * item(ns, "w1")
    y = (h + item(ns, "b")) * item(ns, "w2")
    y.backward()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grad = h.grad
    message = str(caught[0].message).split(". ")[0] + "." if caught else "(no warning)"
    return [
        f"Without `retain_grad()`, PyTorch keeps no gradient on `h`: `h.grad` is **{grad}**, "
        f"and it warns: *{message}*"
    ]


STEP = Step(
    title="Backprop through a tiny network",
    setup=(
        "A two-layer computation with four inputs that all track gradients:\n\n"
        "```\n"
        "x = 2.0    w1 = 3.0    w2 = -1.0    b = 0.5\n\n"
        "h     = x * w1       # hidden\n"
        "h_act = h + b        # add bias\n"
        "y     = h_act * w2   # output\n"
        "```\n\n"
        "Each `.grad` will be d(y)/d(that variable). Work out all six with the chain rule: "
        "start at `y` and multiply local derivatives on the way down.\n\n"
        "`h` and `h_act` are not inputs but intermediate results; the code asks PyTorch to "
        "keep their gradients with `retain_grad()`."
    ),
    code=(
        "# Inputs that track gradients\n"
        "x = torch.tensor(2.0, requires_grad=True)\n"
        "w1 = torch.tensor(3.0, requires_grad=True)\n"
        "w2 = torch.tensor(-1.0, requires_grad=True)\n"
        "b = torch.tensor(0.5, requires_grad=True)\n"
        "\n"
        "# Forward pass\n"
        "h = x * w1           # hidden\n"
        "h_act = h + b        # add bias\n"
        "y = h_act * w2       # output\n"
        "\n"
        "# h and h_act are not leaves: ask PyTorch to keep their .grad too\n"
        "h.retain_grad()\n"
        "h_act.retain_grad()\n"
        "\n"
        "# Backward pass\n"
        "y.backward()\n"
    ),
    predictions=_predictions(),
    show_values=("h", "h_act", "y"),
    explanation=(
        "**Key insight**\n\n"
        "Autograd did exactly the chain rule you did by hand. It is bookkeeping, not magic: "
        "each `.grad` is d(output)/d(that variable), the product of local derivatives along "
        "the path from the output back to it (summed over paths when there are several).\n\n"
        "Only *leaves* (tensors you created with `requires_grad=True`) keep `.grad` after "
        "`backward()`. Intermediates like `h` pass their gradient on and forget it, to save "
        "memory, unless you ask for it with `retain_grad()`."
    ),
    after=_without_retain_grad,
    graph_output="y",
)

EXERCISE = Exercise(
    number=2,
    title="Reproduce a Backprop Network",
    level="Guided",
    intro=(
        "Reproduce a small two-layer computation and compare each `.grad` PyTorch computes "
        "with the one you get from the chain rule."
    ),
    steps=(STEP,),
    concepts=("chain-rule",),
)
