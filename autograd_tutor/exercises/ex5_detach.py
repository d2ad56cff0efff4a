"""Exercise 5: detach() cuts the graph; what PyTorch really does when nothing is left to track."""

from __future__ import annotations

from autograd_tutor.answers import format_value
from autograd_tutor.exercises._helpers import grad_of, item, publish
from autograd_tutor.model import (
    Exercise,
    Figures,
    Misconception,
    Namespace,
    Prediction,
    Step,
)


def _a(ns: Namespace) -> float:
    return item(ns, "a")


def _full_chain(ns: Namespace) -> float:
    """dc/da = dc/db · db/da = 2b · 3, with b = 3a."""
    return 2 * (3 * _a(ns)) * 3


NOT_ZERO = (
    "0 and None are different answers. 0 would mean 'a gradient was computed and it is "
    "zero'. None means no gradient was ever computed for `a`: no backward pass reached it."
)

WITHOUT = Step(
    title="Without detach: the gradient flows all the way back",
    setup=(
        "Sometimes gradients should flow through part of a computation but not all of it. "
        "`detach()` returns a tensor with the same value that is cut off from the graph.\n\n"
        "First the chain **a → b → c** as usual, with **b = a·3** and **c = b²**, at **a = 2**."
    ),
    code=(
        "a = torch.tensor(2.0, requires_grad=True)\n"
        "b = a * 3\n"
        "c = b ** 2\n"
        "\n"
        "c.backward()\n"
    ),
    predictions=(
        Prediction(
            id="a.grad",
            label="a.grad",
            actual=grad_of("a"),
            by_hand=_full_chain,
            by_hand_text="dc/db · db/da = 2b · 3",
            hints=(
                "Chain rule: dc/da = dc/db · db/da.",
                "dc/db = 2b and db/da = 3, with b = 3a.",
            ),
            concept="chain-rule",
            misconceptions=(
                Misconception(
                    "outer-only",
                    "That is only dc/db = 2b. The chain rule also multiplies by db/da = 3.",
                    lambda ns: 2 * 3 * _a(ns),
                ),
                Misconception(
                    "inner-only",
                    "That is only db/da = 3. Multiply by dc/db = 2b as well.",
                    lambda ns: 3.0,
                ),
                Misconception(
                    "exponent-not-brought-down",
                    "d(b²)/db = 2b: the power rule brings the 2 down.",
                    lambda ns: 3 * _a(ns) * 3,
                ),
            ),
            wrong_feedback="dc/da = dc/db · db/da = 2b · 3.",
        ),
    ),
    show_values=("a", "b", "c"),
    explanation="The gradient flowed from `c` through `b` back to `a`: dc/da = 2b · 3.",
    graph_output="c",
)


WITH = Step(
    title="With detach: the path is cut",
    setup=(
        "Now the same chain, but `c` is built from `b.detach()`: a tensor with b's value "
        "and no memory of how it was computed.\n\n"
        "After this code, what is `a.grad`? (If you think no gradient reaches `a`, "
        "type `None`.)"
    ),
    code=(
        "a = torch.tensor(2.0, requires_grad=True)\n"
        "b = a * 3\n"
        "b_detached = b.detach()   # same value as b, no connection to a\n"
        "c = b_detached ** 2\n"
        "\n"
        "c.backward()\n"
    ),
    predictions=(
        Prediction(
            id="a.grad@detach",
            label="a.grad",
            actual=grad_of("a"),
            by_hand=lambda ns: None,
            by_hand_text="no path from c back to a: no gradient (None)",
            hints=(
                "detach() returns a tensor that autograd treats as a constant.",
                "Is there any path from c back to a that backward() could follow?",
                "If backward never reaches a, a.grad is never set at all.",
            ),
            concept="detach",
            misconceptions=(
                Misconception(
                    "detach-pass-through",
                    "You treated detach() as if it changed nothing. It keeps b's value but cuts "
                    "the graph: nothing after b_detached can send a gradient back to a.",
                    _full_chain,
                ),
                Misconception("zero-not-none", NOT_ZERO, lambda ns: 0.0),
            ),
            wrong_feedback="With the only path cut, no gradient reaches a: a.grad stays None.",
        ),
    ),
    show_values=("a", "b_detached", "c"),
    expects_error=True,
    explanation=(
        "`b_detached` is a plain tensor: same value as `b`, but no history. Here that goes "
        "further than the notebook's printout suggests: *nothing* in `c`'s history requires "
        "a gradient, so `c.backward()` has no graph to walk and PyTorch raises an error "
        "instead. `a` was never reached, so `a.grad` stays **None**: not 0, but *no gradient "
        "at all*.\n\n"
        "Used on purpose, this cut is how pretrained layers are frozen, how target networks "
        "in reinforcement learning are held still, and how stop-gradient tricks in "
        "contrastive learning work."
    ),
)


def _diagram(ns: Namespace, target: Figures) -> list[str]:
    from autograd_tutor import plots  # matplotlib only when figures are drawn

    grads = ns["_recorded"]
    figure = plots.detach_figure(
        grad_without=f"grad={format_value(grads['a.grad'])}",
        grad_with=f"grad={format_value(grads['a.grad@detach'])}",
    )
    return publish({"exercise5-detach": figure}, target)


PARTIAL = Step(
    title="Cutting one of two paths",
    setup=(
        "Usually `detach()` cuts one path and leaves others. Here `c` depends on `a` twice: "
        "through `b.detach() ** 2`, and directly through `+ a`."
    ),
    code=(
        "a = torch.tensor(2.0, requires_grad=True)\n"
        "b = a * 3\n"
        "c = b.detach() ** 2 + a   # one path through b (cut), one straight from a\n"
        "\n"
        "c.backward()\n"
    ),
    predictions=(
        Prediction(
            id="a.grad@partial",
            label="a.grad",
            actual=grad_of("a"),
            by_hand=lambda ns: 0.0 + 1.0,
            by_hand_text="cut path contributes nothing + d(a)/da = 1",
            hints=(
                "Gradients from separate paths add up. Which paths are still connected?",
                "The b.detach() path is cut; the `+ a` path has local derivative 1.",
            ),
            concept="detach",
            misconceptions=(
                Misconception(
                    "detach-pass-through",
                    "You let the gradient through the detached path too. Only the `+ a` path "
                    "is connected; the b.detach() path contributes nothing.",
                    lambda ns: _full_chain(ns) + 1.0,
                ),
                Misconception(
                    "detach-cuts-everything",
                    "detach() cut only the path through b. The direct `+ a` path still "
                    "carries a gradient back to a.",
                    lambda ns: None,
                ),
                Misconception(
                    "zero-for-cut",
                    "The `+ a` term still sends d(a)/da = 1 back to a.",
                    lambda ns: 0.0,
                ),
            ),
            wrong_feedback="Only the `+ a` path is connected, and its local derivative is 1.",
        ),
    ),
    show_values=("a", "b", "c"),
    explanation=(
        "Only the connected path counts: the `+ a` term sends 1 back to `a`, the detached "
        "path sends nothing. `detach()` is surgical: it cuts exactly one edge of the graph."
    ),
    after=_diagram,
    graph_output="c",
)

TAKEAWAYS = (
    "**Key takeaways**\n\n"
    "1. **`requires_grad=True`** tells PyTorch to record operations on a tensor, building a "
    "computation graph.\n"
    "2. **`.backward()`** walks that graph backwards, applying the chain rule to compute a "
    "gradient for every tensor that requires one.\n"
    "3. **Gradients accumulate** by default: zero them (`optimizer.zero_grad()`) before each "
    "backward pass.\n"
    "4. **`torch.no_grad()`** turns recording off inside its block: essential for parameter "
    "updates and inference.\n"
    "5. **`.detach()`** cuts a tensor out of the graph: the value stays, the gradient path "
    "is gone.\n\n"
    "The training loop you will write again and again:\n\n"
    "```python\n"
    "optimizer.zero_grad()             # clear old gradients\n"
    "output = model(input)             # forward pass\n"
    "loss = criterion(output, target)  # compute the loss\n"
    "loss.backward()                   # backward pass: compute gradients\n"
    "optimizer.step()                  # update parameters\n"
    "```\n\n"
    "Autograd is not magic. It is the chain rule, applied systematically, and you have now "
    "checked that with your own predictions."
)

EXERCISE = Exercise(
    number=5,
    title="Stopping Gradients with detach()",
    level="Stretch",
    intro=(
        "Stop gradient flow on purpose: build a chain a → b → c, cut it with `detach()`, "
        "and see what reaches `a`."
    ),
    steps=(WITHOUT, WITH, PARTIAL),
    closing=TAKEAWAYS,
    concepts=("chain-rule", "detach"),
)
