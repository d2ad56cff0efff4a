"""Exercise 1: the gradient of a polynomial, checked against the derivative by hand."""

from __future__ import annotations

from autograd_tutor.exercises._helpers import grad_of, item
from autograd_tutor.model import Exercise, Misconception, Namespace, Prediction, Step


def _dy_dx(ns: Namespace) -> float:
    x = item(ns, "x")
    return 3 * x**2 + 4 * x - 5


def _x(ns: Namespace) -> float:
    return item(ns, "x")


MISCONCEPTIONS = (
    Misconception(
        "value-not-gradient",
        "That is y itself, the polynomial's value. `.grad` holds the slope dy/dx, "
        "not the output of the function.",
        lambda ns: item(ns, "y"),
    ),
    Misconception(
        "exponent-not-brought-down",
        "You lowered each power without multiplying by it: the power rule gives "
        "d(x³)/dx = 3x² and d(2x²)/dx = 4x, not x² and 2x.",
        lambda ns: _x(ns) ** 2 + 2 * _x(ns) - 5,
    ),
    Misconception(
        "dropped-linear-term",
        "You left out the −5x term. Its derivative is −5, and PyTorch adds every term's "
        "contribution to x.grad.",
        lambda ns: 3 * _x(ns) ** 2 + 4 * _x(ns),
    ),
    Misconception(
        "kept-constant",
        "The constant +1 has slope 0: it moves the curve up but does not tilt it, so it "
        "adds nothing to dy/dx.",
        lambda ns: _dy_dx(ns) + 1,
    ),
)

STEP = Step(
    title="The slope of a polynomial",
    setup=(
        "Take the polynomial **y = x³ + 2x² − 5x + 1** at **x = 3**.\n\n"
        "`requires_grad=True` asks PyTorch to record every operation done to `x`. "
        "`y.backward()` then works out dy/dx from that record and stores it in `x.grad`.\n\n"
        "Differentiate the polynomial yourself, put in x = 3, and predict what lands in `x.grad`."
    ),
    code=(
        "# requires_grad=True: PyTorch records every operation on x\n"
        "x = torch.tensor(3.0, requires_grad=True)\n"
        "\n"
        "# Forward pass: compute the polynomial\n"
        "y = x**3 + 2*x**2 - 5*x + 1\n"
        "\n"
        "# Backward pass: compute dy/dx and store it in x.grad\n"
        "y.backward()\n"
    ),
    predictions=(
        Prediction(
            id="x.grad",
            label="x.grad",
            actual=grad_of("x"),
            by_hand=_dy_dx,
            by_hand_text=lambda ns: f"dy/dx = 3x² + 4x − 5 at x = {item(ns, 'x'):g}",
            hints=(
                "x.grad is dy/dx, the slope of y at x = 3, not the value of y.",
                "Differentiate term by term: d(xⁿ)/dx = n·xⁿ⁻¹, and a constant has slope 0.",
                "dy/dx = 3x² + 4x − 5. Now put in x = 3.",
            ),
            concept="polynomial",
            misconceptions=MISCONCEPTIONS,
            wrong_feedback=(
                "Differentiate each term with the power rule and add the results: "
                "3x² from x³, 4x from 2x², −5 from −5x, nothing from the constant."
            ),
        ),
    ),
    show_values=("x", "y"),
    explanation=(
        "**What just happened**\n\n"
        "- `requires_grad=True` made PyTorch keep a record of every operation on `x`: "
        "the power, the multiplications, the sums.\n"
        "- `y.backward()` walked that record from `y` back to `x`, applying the chain rule "
        "at each operation and adding up the contributions.\n"
        "- The total landed in `x.grad`, and it matches the derivative you get by hand.\n\n"
        "A network with millions of parameters is trained by exactly this mechanism. "
        "The mathematics is the same; there are just more chain-rule steps."
    ),
    graph_output="y",
)

EXERCISE = Exercise(
    number=1,
    title="Polynomial Gradient",
    level="Guided",
    intro=(
        "Start simple: let PyTorch compute the gradient of a polynomial, "
        "and check it against the derivative you work out by hand."
    ),
    steps=(STEP,),
    concepts=("polynomial",),
)
