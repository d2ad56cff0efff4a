"""Exercise 3: calling backward() again adds to .grad; zero_() is the fix."""

from __future__ import annotations

from autograd_tutor.exercises._helpers import grad_of, item
from autograd_tutor.model import Exercise, Misconception, Namespace, Prediction, Step


def _fresh(ns: Namespace) -> float:
    """The gradient of one backward pass of y = x**2, by hand."""
    return 2 * item(ns, "x")


TRAINING_PATTERN = (
    "```python\n"
    "optimizer.zero_grad()   # clear old gradients\n"
    "loss.backward()         # compute new gradients\n"
    "optimizer.step()        # update parameters\n"
    "```"
)

FIRST = Step(
    title="A first backward pass",
    setup=(
        "PyTorch has a habit that catches almost everyone. To see it, run the same "
        "backward pass a few times and predict `x.grad` before each one.\n\n"
        "First, one ordinary backward pass of **y = x²** at **x = 3**."
    ),
    code=(
        "x = torch.tensor(3.0, requires_grad=True)\n"
        "\n"
        "y = x ** 2\n"
        "y.backward()\n"
    ),
    predictions=(
        Prediction(
            id="x.grad@1",
            label="x.grad",
            actual=grad_of("x"),
            by_hand=_fresh,
            by_hand_text="dy/dx = 2x",
            hints=("x.grad is dy/dx for y = x², at x = 3.", "d(x²)/dx = 2x."),
            concept="polynomial",
            misconceptions=(
                Misconception(
                    "value-not-gradient",
                    "That is y = x², the value. x.grad is the slope dy/dx = 2x.",
                    lambda ns: item(ns, "x") ** 2,
                ),
                Misconception(
                    "exponent-not-brought-down",
                    "The power rule brings the exponent down: d(x²)/dx = 2x, not x.",
                    lambda ns: item(ns, "x"),
                ),
            ),
            wrong_feedback="For y = x², dy/dx = 2x.",
        ),
    ),
    show_values=("x", "y"),
    explanation="One backward pass, one gradient: `x.grad` holds dy/dx = 2x.",
    graph_output="y",
)

SECOND = Step(
    title="Backward again, without zeroing",
    setup=(
        "Build `y = x ** 2` again from the same `x` and call `backward()` a second time. "
        "Nothing touches `x.grad` in between.\n\n"
        "What does `x.grad` hold now?"
    ),
    code="y = x ** 2\ny.backward()\n",
    predictions=(
        Prediction(
            id="x.grad@2",
            label="x.grad",
            actual=grad_of("x"),
            by_hand=lambda ns: _fresh(ns) + _fresh(ns),
            by_hand_text="previous x.grad + 2x",
            hints=(
                "Does backward() replace x.grad, or do something with the value already there?",
                "backward() ADDS the new gradient to whatever .grad already holds.",
            ),
            concept="accumulation",
            misconceptions=(
                Misconception(
                    "replaced-not-accumulated",
                    "You expected the new gradient to replace the old one. PyTorch adds it: "
                    "x.grad was 2x after the first pass, and the second pass adds another 2x.",
                    _fresh,
                ),
                Misconception(
                    "multiplied",
                    "Gradients from separate backward passes are added, not multiplied.",
                    lambda ns: _fresh(ns) * _fresh(ns),
                ),
            ),
            wrong_feedback="backward() adds its gradient to the one already stored in x.grad.",
        ),
    ),
    explanation=(
        "The gradient **accumulated**: PyTorch added the new 2x to the 2x already in "
        "`x.grad`.\n\n"
        "**Why accumulate by default?** Some models (recurrent networks, or large batches "
        "split into pieces) call `backward()` several times before one parameter update, "
        "and adding makes that natural. In an ordinary training loop it is a trap: forget "
        "to clear the gradients and every update uses the sum of all past gradients."
    ),
    graph_output="y",
)

THIRD = Step(
    title="The fix: zero_() before backward",
    setup=(
        "Now reset the gradient in place with `x.grad.zero_()`, then do the forward and "
        "backward pass once more."
    ),
    code=(
        "x.grad.zero_()   # reset the stored gradient to 0, in place\n"
        "\n"
        "y = x ** 2\n"
        "y.backward()\n"
    ),
    predictions=(
        Prediction(
            id="x.grad@3",
            label="x.grad",
            actual=grad_of("x"),
            by_hand=lambda ns: 0.0 + _fresh(ns),
            by_hand_text="0 (after zero_) + 2x",
            hints=(
                "zero_() sets x.grad to 0. What does the next backward() add to it?",
                "0 + 2x.",
            ),
            concept="zeroing",
            misconceptions=(
                Misconception(
                    "zero-ignored",
                    "You added onto the old sum as if zero_() had not happened. zero_() set "
                    "x.grad to 0 in place, so the next backward() starts from 0.",
                    lambda ns: 3 * _fresh(ns),
                ),
                Misconception(
                    "zero-undone",
                    "zero_() is not undone by the next backward(): the old sum is gone, and "
                    "only the fresh gradient is added to 0.",
                    lambda ns: 2 * _fresh(ns),
                ),
                Misconception(
                    "zero-sticks",
                    "zero_() cleared the old gradient, but the backward() after it adds a "
                    "fresh one: 0 + 2x.",
                    lambda ns: 0.0,
                ),
            ),
            wrong_feedback="After zero_(), x.grad is 0; one backward() adds 2x.",
        ),
    ),
    explanation=(
        "With the gradient zeroed first, `x.grad` holds one fresh gradient again.\n\n"
        "**Rule:** clear gradients before each backward pass. In a training loop that is "
        "`optimizer.zero_grad()`, and the pattern you will write in every loop is:\n\n"
        + TRAINING_PATTERN
    ),
    graph_output="y",
)

EXERCISE = Exercise(
    number=3,
    title="The Accumulation Trap",
    level="Guided",
    intro=(
        "A subtle default that catches everyone: what happens to `.grad` when you call "
        "`backward()` more than once? Predict `x.grad` before each of three steps."
    ),
    steps=(FIRST, SECOND, THIRD),
    concepts=("accumulation", "zeroing"),
)
