"""Plain frozen records shared by the content, the engine and the presentation.

Nothing here imports torch. A lesson is data: its computations are code strings that run
with PyTorch and expressions (strings, read by `engine.expressions`) over what that code
left behind, so reading every installed pack stays cheap.

The records are msgspec Structs, not dataclasses: Python 3.11 compiles every dataclass's
generated methods from source at import (for these records, about a tenth of `list`'s
start-up), while a Struct class is made in C. So are the other records that `list` imports;
types used only inside one command's work stay dataclasses. The annotations are real types,
not strings: msgspec decodes the pack cache by them without compiling any.
"""

from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from msgspec import Struct, field

# A value a learner can predict or PyTorch can produce: a number, None (no gradient or no
# grad_fn), a tensor of several elements (a nested list of floats), a flag (True/False), or
# a word: one of a prediction's named choices ("w", "error" for an outcome), a dtype
# ("float32"), a grad_fn's class name ("MulBackward0") or a shape, written "(4, 3)".
Value = float | bool | str | list[Any] | None


class Kind(StrEnum):
    """What a prediction asks for, and so what the learner types and how it is judged.

    VALUE is a number, None or a tensor of several elements (or one of `choices`); SHAPE,
    FLAG, DTYPE and GRAD_FN read `.shape`, `.requires_grad`/`.is_leaf` (or a comparison),
    `.dtype` and `.grad_fn`; OUTCOME is what a line does (runs, error, warning) and WHICH
    which of a few errors it raises. A StrEnum: stored and compared as its text.
    """

    VALUE = "value"
    SHAPE = "shape"
    FLAG = "flag"
    DTYPE = "dtype"
    GRAD_FN = "grad_fn"
    OUTCOME = "outcome"
    WHICH = "which"


class Asked(StrEnum):
    """Where an attempt was made, its `Attempt.kind`: an exercise of a pack, a practice or
    review problem, or the fresh problem offered after a miss. A StrEnum: stored as text."""

    EXERCISE = "exercise"
    PRACTICE = "practice"
    REVIEW = "review"
    RETRY = "retry"


# The kinds whose answer `actual` reads (every kind but OUTCOME and WHICH).
READ_KINDS = (Kind.VALUE, Kind.SHAPE, Kind.FLAG, Kind.DTYPE, Kind.GRAD_FN)

OUTCOMES = ("runs", "error", "warning")
# The answer to "which error?" where the code raised none (asked after a predicted error).
NO_ERROR = "(no error)"
# What a learner may type for each outcome.
OUTCOME_WORDS = {"runs": "runs", "run": "runs", "ok": "runs", "ran": "runs",
                 "error": "error", "e": "error", "err": "error",
                 "warning": "warning", "w": "warning", "warn": "warning"}


# The one table of renamed names: each misconception name older versions stored, and the
# name it is now (the catalogue declares only the new ones). The store migrates stored
# history by it (engine.legacy); the catalogue reads it (content.packs).
RENAMED = {
    "zero-instead-of-none": "zero-not-none",
    "zero-is-none": "none-after-zero",
    "everything-cut": "detach-cuts-everything",
    # "sign-flipped" named two mistakes: the gradient's sign (Exercise 4's gradients, see
    # `legacy.renamed`) and a step along the gradient (its updates, and the gd-step practice); in
    # chain-rule practice it was the lost minus sign of Exercise 2.
    "sign-flipped": "ascent-not-descent",
}


# The one registry of figure kinds: each kind a step may ask for, and the arguments it
# needs. `pack check` reads it; views.figures draws each kind (and fails to load without
# a drawing for every one).
FIGURE_KINDS: dict[str, tuple[str, ...]] = {
    "loss": ("losses",),
    "fit": ("xs", "ys", "w", "b"),
    "least-squares": ("xs", "ys", "w", "b", "best"),
    "detach": ("without", "with"),
}


class Param(NamedTuple):
    """A drawn parameter: integers in [low, high], or multiples of 0.5 with `halves`.
    A named tuple, so the pack cache stores it as the array it was."""

    name: str
    low: float
    high: float
    halves: bool


class DeclaredName(NamedTuple):
    """A misconception a pack declares in its pack.toml."""

    name: str
    title: str
    explanation: str


class Figures(Struct, frozen=True):
    """Where a step's figures go, and whether to open them in windows too."""

    directory: Path
    show: bool = False


class Tolerance(Struct, frozen=True):
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


class Misconception(Struct, frozen=True):
    """A wrong mental model. `value` is an expression: what that model gives for this step."""

    name: str
    value: str
    explanation: str
    title: str = ""


class Prediction(Struct, frozen=True):
    """One quantity the learner predicts before PyTorch runs.

    `actual` is an expression read from what the step's code left behind; `by_hand` computes
    the same quantity without autograd, so the two columns check each other.
    `kind` (a Kind) follows from what `actual` reads: see Kind. An outcome's `code` is the
    line the prompt names.
    """

    id: str
    label: str
    actual: str
    by_hand: str
    by_hand_text: str = ""
    hints: tuple[str, ...] = ()
    tolerance: Tolerance = EXACT
    concept: str = ""
    misconceptions: tuple[Misconception, ...] = ()
    # The general explanation for a wrong answer that matches no misconception.
    feedback: str = ""
    # When set, the answer is one of these words instead of a number.
    choices: tuple[str, ...] = ()
    kind: Kind = Kind.VALUE
    code: str = ""
    # Outcome predictions: the regular expression the real error's message must match.
    error_match: str = ""
    # A value of a format-2 pack: the answer may be a tensor of several elements, and the
    # learner may type one (format 1 asks for numbers only).
    tensor: bool = False

    @property
    def is_outcome(self) -> bool:
        return self.kind == Kind.OUTCOME


class FigureSpec(Struct, frozen=True):
    """A figure drawn after a step's reveal: `kind` names a drawing in views.plots, `args`
    maps its parameters to expressions."""

    name: str
    kind: str
    args: tuple[tuple[str, str], ...] = ()


class Step(Struct, frozen=True):
    """One notebook cell: prose, the exact code that runs, predictions, then the explanation."""

    title: str
    setup: str
    code: str
    predictions: tuple[Prediction, ...] = ()
    # Markdown after the reveal; {ID} and {expression} placeholders are filled only then.
    explanation: str = ""
    # Names whose forward values the reveal shows (e.g. ("y",) or ("h", "h_act", "y")).
    values: tuple[str, ...] = ()
    # The tensor whose autograd graph the reveal draws.
    graph: str | None = None
    # Show a live training view while the code's `for ... in range(n)` loop runs.
    live: bool = False
    figures: tuple[FigureSpec, ...] = ()
    # The pack whose helpers its expressions call (a practice problem's template's pack);
    # empty for the exercise's own.
    pack: str = ""
    # Hidden code: runs just before `code`, binds names as it does, and is never shown.
    prepare: str = ""
    # A parameterised step: the params drawn for practice, as a template's, and the values
    # (name, value) the exercise itself shows (already filled in).
    params: tuple[Param, ...] = ()
    at: tuple[tuple[str, float], ...] = ()


class Gradcheck(Struct, frozen=True):
    """`torch.autograd.gradcheck` of a learner's custom autograd.Function: the class's name
    in their file, and the shapes of its inputs (double tensors drawn with the part's seed)."""

    function: str
    shapes: tuple[tuple[int, ...], ...] = ((4,),)


class Coding(Struct, frozen=True):
    """An exercise's coding part (`[coding]`): a scaffold the learner finishes, the pack's
    reference solution, the names read back from a run, and how a run is judged: compared
    with the solution's run under the same seed, gradcheck of a custom Function, and the
    pack's own named diagnoses (functions of `module`, given the run's results, each
    returning a diagnosis or None)."""

    scaffold: Path
    solution: Path
    names: tuple[str, ...]  # read back after the file runs; each must be defined
    optional: tuple[str, ...] = ()  # read back when the file defines them
    compare: tuple[str, ...] = ()  # element-wise against the solution's run
    tolerance: float = 1e-6
    seed: int = 0
    gradcheck: Gradcheck | None = None
    module: Path | None = None  # the pack's file holding `diagnoses` and `summary`
    diagnoses: tuple[str, ...] = ()
    summary: str = ""  # a function of `module` giving the report's own lines and fields
    default_file: str = ""


class Exercise(Struct, frozen=True):
    """One exercise of a pack: its intro, its steps in order, and an optional coding mode."""

    pack: str
    number: int
    title: str
    level: str
    intro: str
    steps: tuple[Step, ...]
    closing: str = ""
    coding: Coding | None = None
    source: str = ""  # the file it was read from, for messages

    @property
    def key(self) -> str:
        return f"{self.pack}/{self.number}"

    @property
    def predictions(self) -> tuple[Prediction, ...]:
        return tuple(p for step in self.steps for p in step.predictions)

    @property
    def prediction_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.predictions)

    @property
    def concepts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.concept for p in self.predictions if p.concept))


class Template(Struct, frozen=True):
    """A practice template: a step whose `{param}` placeholders are drawn afresh each time."""

    concept: str
    step: Step
    params: tuple[Param, ...]
    pack: str = ""
    # For a parameterised step of an exercise: where it is ("3-non-scalar.toml: step 2").
    origin: str = ""


class Pack(Struct, frozen=True):
    """A lesson pack as read: its exercises, the names it adds to the catalogue, its practice."""

    name: str
    title: str
    root: Path
    exercises: tuple[Exercise, ...]
    concepts: tuple[tuple[str, str], ...] = ()
    misconceptions: tuple[DeclaredName, ...] = ()
    practice: tuple[Template, ...] = ()
    helpers: Path | None = None
    builtin: bool = False

    def exercise(self, number: int) -> Exercise:
        for exercise in self.exercises:
            if exercise.number == number:
                return exercise
        raise KeyError(number)


class Attempt(Struct, frozen=True):
    """One judged prediction: what the reveal shows, the JSON reports and the store keeps.

    `kind` says where it was asked (an `Asked`: exercise, practice, review or retry); `pack`
    and `exercise` name the exercise (None for generated practice problems).
    """

    id: str
    prediction: Value
    actual: Value
    by_hand: Value
    correct: bool | None
    skipped: bool
    pack: str | None = None
    exercise: int | None = None
    kind: Asked = Asked.EXERCISE
    typed: str = ""
    hints_used: int = 0
    misconception: str | None = None
    concept: str = ""
    tolerance: str = "exact"
    time: str = ""
    run: str = ""
    # False when the run was interrupted before PyTorch could judge the prediction.
    judged: bool = True
    # Outcome predictions: what PyTorch raised or warned, verbatim.
    error: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    # IDs of the learner's other answers in this step that this one breaks the chain rule with.
    inconsistent_with: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The one JSON shape of a judged prediction (`exercise --json` steps, practice items)."""
        shape: dict[str, Any] = {
            "id": self.id,
            "prediction": self.prediction,
            "actual": self.actual,
            "by_hand": self.by_hand,
            "correct": self.correct,
            "skipped": self.skipped,
            "tolerance": self.tolerance,
            "misconception": self.misconception,
            "hints_used": self.hints_used,
        }
        if self.error is not None:
            shape["error"] = self.error
        if self.warnings:
            shape["warnings"] = list(self.warnings)
        if self.inconsistent_with:
            shape["inconsistent_with"] = list(self.inconsistent_with)
        return shape

    def to_row(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in self.__struct_fields__}
        row["warnings"] = list(self.warnings)
        row["inconsistent_with"] = list(self.inconsistent_with)
        return row


ATTEMPT_FIELDS = Attempt.__struct_fields__


class Completion(Struct, frozen=True):
    """A finished run of an exercise (`run` is the session's id)."""

    pack: str
    exercise: int
    run: str
    time: str


class Check(Struct, frozen=True):
    """One judged file of a coding mode (`autograd-tutor check`)."""

    pack: str
    exercise: int
    passed: bool
    file: str
    time: str


class History(Struct):
    """Everything the store holds, typed."""

    attempts: list[Attempt] = field(default_factory=list)
    completed: list[Completion] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
