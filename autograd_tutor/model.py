"""Small frozen dataclasses shared by the content, the engine and the presentation.

Nothing here imports torch: exercises describe their computations as code strings and
callables that receive the namespace the code ran in, so listing exercises stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A value a learner can predict or PyTorch can produce: a number, None (no gradient),
# or one of a prediction's named choices (e.g. "w" or "b").
Value = float | str | None
Namespace = dict[str, Any]
# Text that may depend on what the code computed (filled in only after the reveal).
Text = str | Callable[[Namespace], str]


@dataclass(frozen=True)
class Figures:
    """Where a step's figures go, and whether to open them in windows too."""

    directory: Path
    show: bool = False


@dataclass(frozen=True)
class Tolerance:
    """How close a prediction must be. `relative` for exact gradients, `absolute` for estimates."""

    relative: float = 1e-6
    absolute: float = 1e-9

    @property
    def is_estimate(self) -> bool:
        return self.absolute >= 1e-3 or self.relative >= 1e-3

    def describe(self) -> str:
        if not self.is_estimate:
            return "exact"
        if self.relative >= 1e-3:
            return f"±{self.relative:.0%}"
        return f"±{self.absolute:g}"


EXACT = Tolerance()


def estimate(absolute: float) -> Tolerance:
    return Tolerance(relative=0.0, absolute=absolute)


def within_percent(percent: float) -> Tolerance:
    """For numbers the learner derives from earlier (rounded) reveals."""
    return Tolerance(relative=percent / 100, absolute=1e-9)


@dataclass(frozen=True)
class Misconception:
    """A wrong mental model: `wrong_value` runs that model on the step's namespace."""

    name: str
    explanation: str
    wrong_value: Callable[[Namespace], Value]


@dataclass(frozen=True)
class Prediction:
    """One quantity the learner predicts before PyTorch runs.

    `actual` reads PyTorch's value from the namespace the step's code ran in; `by_hand`
    computes the same quantity from the chain-rule formula, without autograd.
    """

    id: str
    label: str
    actual: Callable[[Namespace], Value]
    by_hand: Callable[[Namespace], Value]
    by_hand_text: Text
    hints: tuple[str, ...] = ()
    tolerance: Tolerance = EXACT
    concept: str = ""
    misconceptions: tuple[Misconception, ...] = ()
    # The general explanation for a wrong answer that matches no misconception.
    wrong_feedback: str = ""
    # When set, the answer is one of these words instead of a number.
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One notebook cell: prose, the exact code that runs, predictions, then the explanation."""

    title: str
    setup: str
    code: str
    predictions: tuple[Prediction, ...] = ()
    explanation: Text = ""
    # Runs after the reveal (figures, demonstrations); returns markdown lines to show.
    after: Callable[[Namespace, Figures], list[str]] | None = None
    # Show a live training view while the code's `for ... in range(n)` loop runs.
    live: bool = False
    # Names whose forward values the reveal shows (e.g. ("y",) or ("h", "h_act", "y")).
    show_values: tuple[str, ...] = ()
    # The expected exception, when the lesson is that PyTorch refuses (Exercise 5).
    expects_error: bool = False
    # The tensor whose autograd graph the reveal draws, and the names of its tensors.
    graph_output: str | None = None


@dataclass(frozen=True)
class Exercise:
    number: int
    title: str
    level: str
    intro: str
    steps: tuple[Step, ...]
    closing: str = ""
    concepts: tuple[str, ...] = field(default_factory=tuple)

    @property
    def predictions(self) -> tuple[Prediction, ...]:
        return tuple(p for step in self.steps for p in step.predictions)

    @property
    def prediction_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.predictions)


@dataclass(frozen=True)
class Attempt:
    """What happened to one prediction in one run; this is what the progress file records."""

    exercise: int
    id: str
    prediction: Value
    actual: Value
    by_hand: Value
    correct: bool | None
    skipped: bool
    typed: str = ""
    hints_used: int = 0
    misconception: str | None = None
    concept: str = ""
    time: str = ""
    run: str = ""
    # False when the run was interrupted before PyTorch could judge the prediction.
    judged: bool = True
