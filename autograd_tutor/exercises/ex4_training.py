"""Exercise 4: one training step phase by phase, then the notebook's 200-step loop."""

from __future__ import annotations

from autograd_tutor.exercises._helpers import grad_of, item, publish
from autograd_tutor.model import (
    Exercise,
    Figures,
    Misconception,
    Namespace,
    Prediction,
    Step,
    estimate,
    within_percent,
)

# The notebook's starting point; the by-hand formulas start from the same values.
W0 = 0.0
B0 = 0.0
STEPS = 200


Data = tuple[list[float], list[float]]


def _data(ns: Namespace) -> Data:
    return [float(v) for v in ns["X"].tolist()], [float(v) for v in ns["y_true"].tolist()]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def mse(data: Data, w: float, b: float) -> float:
    xs, ys = data
    return _mean([(y - (w * x + b)) ** 2 for x, y in zip(xs, ys, strict=True)])


def mse_gradient(data: Data, w: float, b: float) -> tuple[float, float]:
    """dL/dw = -2·mean((y - ŷ)·x) and dL/db = -2·mean(y - ŷ), the chain rule done by hand."""
    xs, ys = data
    errors = [y - (w * x + b) for x, y in zip(xs, ys, strict=True)]
    grad_w = -2 * _mean([e * x for e, x in zip(errors, xs, strict=True)])
    grad_b = -2 * _mean(errors)
    return grad_w, grad_b


def descend(ns: Namespace, steps: int) -> tuple[float, float]:
    """Gradient descent with the hand-derived gradient, in plain floats (no autograd)."""
    data, lr = _data(ns), float(ns["learning_rate"])
    w, b = W0, B0
    for _ in range(steps):
        grad_w, grad_b = mse_gradient(data, w, b)
        w, b = w - lr * grad_w, b - lr * grad_b
    return w, b


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """The exact least-squares line (normal equations, closed form): where descent heads."""
    mx, my = _mean(xs), _mean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sxy / sxx
    return slope, my - slope * mx


def least_squares(ns: Namespace) -> tuple[float, float]:
    return fit_line(*_data(ns))


def _closer(w: float, b: float) -> str:
    return "w" if abs(w - 2.0) < abs(b - 1.0) else "b"


def _closer_actual(ns: Namespace) -> str:
    w, b = ns["params"][39]
    return _closer(w, b)


def _closer_by_hand(ns: Namespace) -> str:
    return _closer(*descend(ns, 40))


def _mean_x2(ns: Namespace) -> float:
    xs, _ = _data(ns)
    return _mean([x * x for x in xs])


SETUP = Step(
    title="The data and the starting point",
    setup=(
        "Put everything together: one training step written by hand, the same "
        "forward-backward-update loop every deep learning model runs, without an optimizer.\n\n"
        "**Task:** fit a line **ŷ = w·x + b** to 20 points drawn from **y = 2x + 1** plus a "
        "little noise. Both parameters start at 0."
    ),
    code=(
        "# Simple data: y = 2x + 1, plus noise\n"
        "torch.manual_seed(42)\n"
        "X = torch.linspace(-3, 3, 20)\n"
        "y_true = 2 * X + 1 + torch.randn(20) * 0.3   # true line + noise\n"
        "\n"
        "# Learnable parameters, starting from 0\n"
        "w = torch.tensor(0.0, requires_grad=True)\n"
        "b = torch.tensor(0.0, requires_grad=True)\n"
        "\n"
        "learning_rate = 0.01\n"
        "\n"
        'print(f"Initial parameters: w = {w.item():.4f}, b = {b.item():.4f}")\n'
        'print(f"Target:             w = 2.0, b = 1.0")\n'
        'print(f"Learning rate: {learning_rate}")\n'
    ),
)

def _first_x(ns: Namespace) -> float:
    return _data(ns)[0][0]


PREDICT = Step(
    title="Phase 1: forward pass",
    setup=(
        "The forward pass makes a prediction for every point: `y_pred = w * X + b`. The first "
        "point has x = -3. Before any training, what does the model predict for it, `y_pred[0]`?"
    ),
    code="# Forward pass: predictions\ny_pred = w * X + b\n",
    predictions=(
        Prediction(
            id="y_pred@1",
            label="y_pred[0]",
            actual=lambda ns: float(ns["y_pred"][0].item()),
            by_hand=lambda ns: W0 * _first_x(ns) + B0,
            by_hand_text="w·x + b with w = b = 0",
            hints=(
                "The model knows nothing yet: what are w and b before training?",
                "w = 0 and b = 0, so w·x + b is the same for every x.",
            ),
            concept="gd-step",
            misconceptions=(
                Misconception(
                    "target-not-prediction",
                    "That is the true line's value at x = -3, what the model should learn to "
                    "predict. Before training it only knows w = b = 0.",
                    lambda ns: 2 * _first_x(ns) + 1,
                ),
                Misconception(
                    "data-not-prediction",
                    "That is the data point y_true[0] itself. The prediction comes from the "
                    "parameters, which start at 0.",
                    lambda ns: _data(ns)[1][0],
                ),
            ),
            wrong_feedback="With w = b = 0 every prediction is 0·x + 0.",
        ),
    ),
    explanation="An untrained model predicts 0 everywhere: all of the error is still to go.",
)

FORWARD = Step(
    title="Phase 2: the loss",
    setup=(
        "The loss measures how wrong the predictions are, with the mean squared error. "
        "With every prediction at 0, what is the first loss?"
    ),
    code="# Loss: mean of (y_true - y_pred)^2\nloss = ((y_true - y_pred) ** 2).mean()\n",
    predictions=(
        Prediction(
            id="loss@1",
            label="loss",
            actual=lambda ns: item(ns, "loss"),
            by_hand=lambda ns: mse(_data(ns), W0, B0),
            by_hand_text="mean((y − (w·x + b))²) with w = b = 0",
            hints=(
                "With w = b = 0 every prediction is 0, so the loss is the mean of y_true².",
                "Ignore the noise: mean((2x + 1)²) = 4·mean(x²) + 4·mean(x) + 1.",
                "The x values are symmetric around 0, so mean(x) = 0; mean(x²) is about 3.3.",
            ),
            tolerance=estimate(1.0),
            concept="gd-step",
            misconceptions=(
                Misconception(
                    "forgot-square",
                    "That is the mean error, not the mean *squared* error: square each "
                    "difference before averaging.",
                    lambda ns: _mean(_data(ns)[1]),
                ),
                Misconception(
                    "sum-not-mean",
                    "`.mean()` divides by the 20 points; you added the squared errors up.",
                    lambda ns: mse(_data(ns), W0, B0) * len(_data(ns)[0]),
                ),
            ),
            wrong_feedback="With w = b = 0 the loss is mean(y_true²), about 4·mean(x²) + 1.",
        ),
    ),
    explanation="The loss is one number summarising how far all 20 predictions are from the data.",
)

def first_gradient(ns: Namespace, index: int) -> float:
    """dL/dw (index 0) or dL/db (index 1) at the starting point, by hand."""
    return mse_gradient(_data(ns), W0, B0)[index]


def first_update(ns: Namespace, index: int, sign: float = -1.0, lr: float | None = None) -> float:
    """The parameter after one step; sign=+1 or lr=1 are the wrong models of the update."""
    start = (W0, B0)[index]
    rate = float(ns["learning_rate"]) if lr is None else lr
    return start + sign * rate * first_gradient(ns, index)


def gradient_misconceptions(index: int) -> tuple[Misconception, ...]:
    return (
        Misconception(
            "forgot-factor-2",
            "You dropped the factor 2 that the square brings down: d(e²)/de = 2e.",
            lambda ns: first_gradient(ns, index) / 2,
        ),
        Misconception(
            "sign-flipped",
            "The error is y − ŷ, and ŷ enters it with a minus sign: the gradient is negative "
            "when the predictions are too low.",
            lambda ns: -first_gradient(ns, index),
        ),
        Misconception(
            "forgot-mean",
            "`.mean()` divides by the number of points; you summed instead.",
            lambda ns: first_gradient(ns, index) * len(_data(ns)[0]),
        ),
    )


def update_misconceptions(index: int) -> tuple[Misconception, ...]:
    name = "wb"[index]
    return (
        Misconception(
            "sign-flipped",
            f"Gradient descent steps *against* the gradient: {name} − lr·grad. Adding it "
            "climbs the loss.",
            lambda ns: first_update(ns, index, sign=1.0),
        ),
        Misconception(
            "forgot-learning-rate",
            "The step is scaled by the learning rate, 0.01.",
            lambda ns: first_update(ns, index, lr=1.0),
        ),
    )


BACKWARD = Step(
    title="Phase 3: backward pass",
    setup=(
        "`loss.backward()` fills `w.grad` and `b.grad` with dloss/dw and dloss/db. "
        "By the chain rule through the mean and the square, "
        "dL/dw = −2·mean((y − ŷ)·x) and dL/db = −2·mean(y − ŷ)."
    ),
    code="loss.backward()\n",
    predictions=(
        Prediction(
            id="w.grad@1",
            label="w.grad",
            actual=grad_of("w"),
            by_hand=lambda ns: first_gradient(ns, 0),
            by_hand_text="−2·mean((y − ŷ)·x) with ŷ = 0",
            hints=(
                "With ŷ = 0, dL/dw = −2·mean(y·x). Ignore the noise: y ≈ 2x + 1.",
                "mean((2x + 1)·x) = 2·mean(x²) + mean(x) ≈ 2·3.3 + 0.",
            ),
            tolerance=estimate(0.5),
            concept="gd-step",
            misconceptions=gradient_misconceptions(0),
            wrong_feedback="dL/dw = −2·mean((y − ŷ)·x); with ŷ = 0 that is about −4·mean(x²).",
        ),
        Prediction(
            id="b.grad@1",
            label="b.grad",
            actual=grad_of("b"),
            by_hand=lambda ns: first_gradient(ns, 1),
            by_hand_text="−2·mean(y − ŷ) with ŷ = 0",
            hints=(
                "With ŷ = 0, dL/db = −2·mean(y).",
                "mean(2x + 1) = 2·mean(x) + 1 = 1, ignoring the noise.",
            ),
            tolerance=estimate(0.5),
            concept="gd-step",
            misconceptions=gradient_misconceptions(1),
            wrong_feedback="dL/db = −2·mean(y − ŷ); with ŷ = 0 that is about −2.",
        ),
    ),
    explanation=(
        "Both gradients are negative: raising w or b would lower the loss, so the update "
        "will raise both."
    ),
    graph_output="loss",
)

UPDATE = Step(
    title="Phase 4: update the parameters",
    setup=(
        "Step each parameter against its gradient: `w -= learning_rate * w.grad`. The update "
        "runs inside `torch.no_grad()` so that autograd does not record it as part of the "
        "model. Use the gradients you just saw."
    ),
    code=(
        "with torch.no_grad():\n"
        "    w -= learning_rate * w.grad\n"
        "    b -= learning_rate * b.grad\n"
    ),
    predictions=(
        Prediction(
            id="w@1",
            label="w after the first update",
            actual=lambda ns: item(ns, "w"),
            by_hand=lambda ns: first_update(ns, 0),
            by_hand_text="w − learning_rate · dL/dw",
            hints=("new w = 0 − 0.01 · w.grad.", "Minus times minus: w moves up."),
            tolerance=within_percent(2),
            concept="gd-step",
            misconceptions=update_misconceptions(0),
            wrong_feedback="w_new = w − learning_rate · w.grad.",
        ),
        Prediction(
            id="b@1",
            label="b after the first update",
            actual=lambda ns: item(ns, "b"),
            by_hand=lambda ns: first_update(ns, 1),
            by_hand_text="b − learning_rate · dL/db",
            hints=(
                "new b = 0 − 0.01 · b.grad.",
                "b.grad was negative, so b moves up by 0.01 times its size.",
            ),
            tolerance=within_percent(2),
            concept="gd-step",
            misconceptions=update_misconceptions(1),
            wrong_feedback="b_new = b − learning_rate · b.grad.",
        ),
    ),
    explanation="Both parameters moved towards their targets, by learning_rate × gradient.",
)

ZERO = Step(
    title="Phase 5: zero the gradients",
    setup=(
        "Before the next backward pass the old gradients must go, or they pile up "
        "(Exercise 3). What does `w.grad` hold after this?"
    ),
    code="w.grad.zero_()\nb.grad.zero_()\n",
    predictions=(
        Prediction(
            id="w.grad@zeroed",
            label="w.grad after zero_()",
            actual=grad_of("w"),
            by_hand=lambda ns: 0.0,
            by_hand_text="zero_() fills the tensor with 0",
            hints=(
                "zero_() changes the tensor in place; it does not remove it.",
                "Is there still a tensor in w.grad after zero_()? What does it hold?",
            ),
            concept="zeroing",
            misconceptions=(
                Misconception(
                    "zero-is-none",
                    "zero_() keeps the gradient tensor and fills it with 0, so w.grad is 0, "
                    "not None. (`optimizer.zero_grad()` sets gradients to None by default "
                    "since PyTorch 2.0; `.grad.zero_()` does not.)",
                    lambda ns: None,
                ),
            ),
            wrong_feedback="zero_() fills w.grad with 0 in place.",
        ),
    ),
    explanation="That is one complete training step. The loop repeats it 200 times.",
)


def _train_explanation(ns: Namespace) -> str:
    w_ls, b_ls = least_squares(ns)
    lr = float(ns["learning_rate"])
    rate_w = 1 - 2 * lr * _mean_x2(ns)
    rate_b = 1 - 2 * lr
    return (
        "**What you built** is the pattern of every training loop:\n\n"
        "1. **Forward:** compute predictions from the parameters\n"
        "2. **Loss:** measure how wrong they are\n"
        "3. **Backward:** compute how each parameter contributed to the error\n"
        "4. **Update:** nudge the parameters against their gradients\n"
        "5. **Zero:** clear the gradients so they do not accumulate\n\n"
        "In practice `torch.optim` does steps 4 and 5; now you know what it does.\n\n"
        f"**Why w ends near {w_ls:.3f}, not 2.0:** the noise is part of the data, and the "
        f"line that fits these 20 noisy points best (least squares) has w = {w_ls:.4f}, "
        f"b = {b_ls:.4f}. Gradient descent heads for that line, not for the line the data "
        "came from.\n\n"
        f"**Why b lags behind w:** w's gradient is scaled by mean(x²) = {_mean_x2(ns):.2f}, so "
        f"each step shrinks w's distance to its target by a factor {rate_w:.3f}; b's distance "
        f"only by {rate_b:.3f}. After {STEPS} steps w has all but arrived and b is still "
        "on its way."
    )


def _save_figures(ns: Namespace, target: Figures) -> list[str]:
    from autograd_tutor import plots  # matplotlib only when figures are drawn

    xs, ys = _data(ns)
    w, b = item(ns, "w"), item(ns, "b")
    best = fit_line(xs, ys)
    return publish(
        {
            "exercise4-loss": plots.loss_figure(list(ns["losses"])),
            "exercise4-fit": plots.fit_figure(xs, ys, w, b, best),
            "exercise4-least-squares": plots.least_squares_figure(
                xs, ys, w, b, *best, path=[(W0, B0), *ns["params"]]
            ),
        },
        target,
    )


TRAIN = Step(
    title="The whole loop: 200 steps",
    setup=(
        "Now the loop does all five phases 200 times, starting again from w = b = 0. "
        "It prints a progress line every 40 steps."
    ),
    code=(
        "# Start again from w = b = 0 and let the loop do every step\n"
        "w = torch.tensor(0.0, requires_grad=True)\n"
        "b = torch.tensor(0.0, requires_grad=True)\n"
        "losses = []\n"
        "params = []   # (w, b) after each step, kept for the reveal\n"
        "\n"
        "for step in range(200):\n"
        "    # Step 1: forward pass\n"
        "    y_pred = w * X + b\n"
        "    # Step 2: loss (mean squared error)\n"
        "    loss = ((y_true - y_pred) ** 2).mean()\n"
        "    # Step 3: backward pass\n"
        "    loss.backward()\n"
        "    # Step 4: update, not recorded by autograd\n"
        "    with torch.no_grad():\n"
        "        w -= learning_rate * w.grad\n"
        "        b -= learning_rate * b.grad\n"
        "    # Step 5: zero the gradients (Exercise 3!)\n"
        "    w.grad.zero_()\n"
        "    b.grad.zero_()\n"
        "\n"
        "    losses.append(loss.item())\n"
        "    params.append((w.item(), b.item()))\n"
        "\n"
        "    if (step + 1) % 40 == 0:\n"
        '        print(f"Step {step+1:3d}: loss = {loss.item():.4f}, "\n'
        '              f"w = {w.item():.4f}, b = {b.item():.4f}")\n'
        "\n"
        'print(f"\\nFinal: w = {w.item():.4f} (target: 2.0), "\n'
        '      f"b = {b.item():.4f} (target: 1.0)")\n'
    ),
    predictions=(
        Prediction(
            id="closer@40",
            label="which is closer to its target after 40 steps",
            actual=_closer_actual,
            by_hand=_closer_by_hand,
            by_hand_text="40 steps of descent with the hand-derived gradients",
            hints=(
                "Compare the gradients you saw in phase 3: which parameter gets the bigger push?",
                "w's gradient is scaled by mean(x²), about 3.3; b's is not.",
            ),
            concept="gd-step",
            choices=("w", "b"),
            wrong_feedback=(
                "w's gradient carries a factor mean(x²) ≈ 3.3, so w moves towards its target "
                "about three times faster than b."
            ),
        ),
        Prediction(
            id="w@200",
            label="w after 200 steps",
            actual=lambda ns: item(ns, "w"),
            by_hand=lambda ns: descend(ns, STEPS)[0],
            by_hand_text="200 steps of w −= lr·dL/dw, with dL/dw by hand",
            hints=(
                "The data came from y = 2x + 1, plus noise.",
                "w converges fast; it ends close to the best fit of the noisy data.",
            ),
            tolerance=estimate(0.03),
            concept="gd-step",
            misconceptions=(
                Misconception(
                    "true-line",
                    "That is the slope of the line the data came from. Training sees only "
                    "the 20 noisy points, and the line that fits them best is a little "
                    "flatter: that is where w goes.",
                    lambda ns: 2.0,
                ),
            ),
            wrong_feedback="w heads for the slope of the noisy data's best-fit line, near 2.",
        ),
        Prediction(
            id="b@200",
            label="b after 200 steps",
            actual=lambda ns: item(ns, "b"),
            by_hand=lambda ns: descend(ns, STEPS)[1],
            by_hand_text="200 steps of b −= lr·dL/db, with dL/db by hand",
            hints=(
                "The data came from y = 2x + 1, plus noise.",
                "b moves slower than w, but 200 steps at this rate get it close.",
            ),
            tolerance=estimate(0.03),
            concept="gd-step",
            misconceptions=(
                Misconception(
                    "true-line",
                    "That is the intercept of the line the data came from. Training heads "
                    "for the best fit of the noisy points instead, and b has not quite got "
                    "there after 200 steps.",
                    lambda ns: 1.0,
                ),
            ),
            wrong_feedback="b heads for the intercept of the noisy data's best-fit line, near 1.",
        ),
    ),
    explanation=_train_explanation,
    after=_save_figures,
    live=True,
)

EXERCISE = Exercise(
    number=4,
    title="Manual Training Step",
    level="Supported",
    intro=(
        "Write one training step by hand, phase by phase, predicting each result, then let "
        "the loop run 200 of them."
    ),
    steps=(SETUP, PREDICT, FORWARD, BACKWARD, UPDATE, ZERO, TRAIN),
    concepts=("gd-step", "zeroing"),
)
