"""Runs one exercise: show a step, ask every prediction, run PyTorch, reveal, record.

The order is the point of the tool: nothing that could give a prediction away is printed
before the learner has answered it.
"""

from __future__ import annotations

import importlib
import threading
import uuid
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from autograd_tutor.answers import AnswerError, format_value, is_close, parse_prediction
from autograd_tutor.model import (
    Attempt,
    Exercise,
    Figures,
    Misconception,
    Namespace,
    Prediction,
    Step,
    Text,
    Tolerance,
    Value,
)
from autograd_tutor.store import Store, now
from autograd_tutor.ui import INPUT_HELP, UI, RevealRow

QUIT_WORDS = {"q", "quit", "exit"}
HINT_WORDS = {"?", "hint"}
SKIP_WORDS = {"skip", "s"}


class Quit(Exception):
    """The learner typed q at a prompt."""


class TorchLoader:
    """Imports torch in a background thread while the learner reads and thinks.

    `then` names modules to warm up after torch, e.g. matplotlib for an exercise that draws
    figures, so its last reveal does not wait for them either; get() waits for torch only.
    """

    def __init__(self, then: tuple[str, ...] = ()) -> None:
        self._then = then
        self._thread: threading.Thread | None = None
        self._torch_ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            import torch  # noqa: F401  (warms the module cache for get())
        except BaseException as error:  # reported by get() in the main thread
            self._error = error
            return
        finally:
            self._torch_ready.set()
        for name in self._then:
            try:
                importlib.import_module(name)
            except Exception:  # the main thread imports it again when needed and reports it
                return

    def get(self) -> ModuleType:
        if self._thread is not None:
            self._torch_ready.wait()
        if self._error is not None:
            raise self._error
        import torch

        return torch


@dataclass(frozen=True)
class Options:
    reveal: bool = False
    answers: Mapping[str, str] = field(default_factory=dict)
    plots_dir: Path = Path("autograd-tutor-plots")
    graph_view: str = "tree"
    fast: bool = False
    show: bool = False


@dataclass
class Guess:
    prediction: Prediction
    value: Value = None
    typed: str = ""
    skipped: bool = False
    hints_used: int = 0


@dataclass(frozen=True)
class Outcome:
    """A judged prediction: what the reveal shows, the JSON reports and the store keeps."""

    guess: Guess
    actual: Value
    by_hand: Value
    correct: bool | None
    misconception: Misconception | None
    feedback: str

    @property
    def id(self) -> str:
        return self.guess.prediction.id

    def to_json(self) -> dict[str, Any]:
        prediction = self.guess.prediction
        return {
            "id": prediction.id,
            "prediction": None if self.guess.skipped else self.guess.value,
            "actual": self.actual,
            "by_hand": self.by_hand,
            "correct": self.correct,
            "skipped": self.guess.skipped,
            "tolerance": prediction.tolerance.describe(),
            "misconception": self.misconception.name if self.misconception else None,
            "hints_used": self.guess.hints_used,
        }


def judge(guess: Guess, ns: Namespace) -> Outcome:
    prediction = guess.prediction
    actual = prediction.actual(ns)
    by_hand = prediction.by_hand(ns)
    if guess.skipped:
        return Outcome(guess, actual, by_hand, None, None, "")
    if is_close(guess.value, actual, prediction.tolerance):
        return Outcome(guess, actual, by_hand, True, None, "")
    matched = match_misconception(prediction, guess.value, actual, ns)
    feedback = matched.explanation if matched else prediction.wrong_feedback
    return Outcome(guess, actual, by_hand, False, matched, feedback)


def matching_tolerance(tolerance: Tolerance) -> Tolerance:
    """Learners type rounded numbers; a wrong model matches within 0.01% or the step's tolerance."""
    return Tolerance(relative=max(tolerance.relative, 1e-4), absolute=tolerance.absolute)


def match_misconception(
    prediction: Prediction, value: Value, actual: Value, ns: Namespace
) -> Misconception | None:
    tolerance = matching_tolerance(prediction.tolerance)
    for misconception in prediction.misconceptions:
        wrong = misconception.wrong_value(ns)
        # A wrong model that happens to give the right number explains nothing.
        if is_close(wrong, actual, prediction.tolerance):
            continue
        if is_close(value, wrong, tolerance):
            return misconception
    return None


def render_text(text: Text, ns: Namespace) -> str:
    return text(ns) if callable(text) else text


class ProgramOutput:
    """Stands in for `print` inside the exercise code, so its output lands in the reveal."""

    def __init__(self) -> None:
        self.buffer = ""

    def __call__(self, *args: object, sep: str = " ", end: str = "\n", **_: object) -> None:
        self.buffer += sep.join(str(arg) for arg in args) + end

    def take(self) -> list[str]:
        text, self.buffer = self.buffer, ""
        return text.rstrip("\n").split("\n") if text else []


class Session:
    """One run of one exercise. Attempts are saved after every step, so quitting loses nothing."""

    def __init__(self, exercise: Exercise, ui: UI, store: Store, options: Options) -> None:
        self.exercise = exercise
        self.ui = ui
        self.store = store
        self.options = options
        self.run_id = uuid.uuid4().hex[:12]
        # While the learner thinks, matplotlib can load too, for the figures at the end.
        draws = not options.reveal and any(step.after is not None for step in exercise.steps)
        self.loader = TorchLoader(then=("autograd_tutor.plots",) if draws else ())
        self.outcomes: list[Outcome] = []
        self.completed = False
        self.ns: Namespace = {"_recorded": {}}
        self.output = ProgramOutput()
        self._told_how = False
        self.recorder: Any = None
        self.pending: list[Step] = []
        self.graph: Any = None

    # The flow -------------------------------------------------------------------------

    def run(self) -> list[Outcome]:
        self.ui.exercise_header(self.exercise)
        total = len(self.exercise.steps)
        for index, step in enumerate(self.exercise.steps, start=1):
            self.run_step(step, index, total)
        self.completed = True
        # A --reveal run is a demonstration: the learner predicted nothing, so it stays open.
        if not self.options.reveal and self.exercise.number > 0:
            self.store.complete(self.exercise.number, self.run_id)
        self.ui.markdown(self.exercise.closing)
        return self.outcomes

    def run_step(self, step: Step, index: int, total: int) -> None:
        self.ui.step_header(step, index, total)
        self.ui.markdown(step.setup)
        self.ui.code(step.code)
        if not step.predictions and index < total:
            # Nothing to ask: run it together with the next step, so the first question
            # never waits for PyTorch.
            self.pending.append(step)
            return
        guesses: list[Guess] = []
        try:
            for prediction in step.predictions:
                guesses.append(self.ask(prediction))
        except KeyboardInterrupt:
            self.keep_unjudged(guesses)
            raise
        except (Quit, EOFError):
            self.keep_judged(step, guesses)
            raise
        try:
            self.run_pending()
            self.execute(step)
        except KeyboardInterrupt:
            self.keep_unjudged(guesses)
            raise
        outcomes = [judge(guess, self.ns) for guess in guesses]
        self.record(outcomes)
        self.reveal(step, outcomes)

    def run_pending(self, show_output: bool = True) -> None:
        while self.pending:
            step = self.pending.pop(0)
            self.execute(step, show_output=show_output)

    def keep_judged(self, step: Step, guesses: list[Guess]) -> None:
        """The learner stopped mid-step: judge what they answered, silently, and save it."""
        answered = [guess for guess in guesses if not guess.skipped]
        if answered:
            self.run_pending(show_output=False)
            self.execute(step, show_output=False)
            self.record([judge(guess, self.ns) for guess in answered])

    def keep_unjudged(self, guesses: list[Guess]) -> None:
        """Interrupted before PyTorch ran: keep what was typed, without a verdict."""
        answered = [guess for guess in guesses if not guess.skipped]
        self.store.record(replace(self.attempt(Outcome(guess, None, None, None, None, "")),
                                  judged=False) for guess in answered)

    # Asking ---------------------------------------------------------------------------

    def ask(self, prediction: Prediction) -> Guess:
        given = self.options.answers.get(prediction.id)
        if given is not None:
            value = parse_prediction(given, prediction.choices)  # validated by the CLI
            self.ui.text(f"{self.prompt_text(prediction)}{given}  (from --answer)", "cyan")
            return Guess(prediction, value, typed=given)
        if self.options.reveal:
            return Guess(prediction, skipped=True)
        if not self._told_how:
            self.ui.text(INPUT_HELP, "dim")
            self._told_how = True
        # Load torch behind the learner's thinking time, once the first question is up.
        self.loader.start()
        return self.prompt(prediction)

    def prompt_text(self, prediction: Prediction) -> str:
        extra = ""
        if prediction.choices:
            extra = " (" + " or ".join(prediction.choices) + ")"
        elif prediction.tolerance.is_estimate:
            extra = f" (an estimate: within {prediction.tolerance.describe()} counts)"
        return f"Predict {prediction.label}{extra}: "

    def prompt(self, prediction: Prediction) -> Guess:
        guess = Guess(prediction)
        while True:
            typed = self.ui.ask(self.prompt_text(prediction)).strip()
            word = typed.lower()
            if word in QUIT_WORDS:
                raise Quit
            if word in HINT_WORDS:
                self.hint(guess)
                continue
            if word in SKIP_WORDS:
                guess.skipped = True
                return guess
            try:
                guess.value = parse_prediction(typed, prediction.choices)
            except AnswerError as problem:
                self.ui.text(f"Not counted: {problem}.", "yellow", soft_wrap=True)
                continue
            guess.typed = typed
            return guess

    def hint(self, guess: Guess) -> None:
        hints = guess.prediction.hints
        if guess.hints_used < len(hints):
            guess.hints_used += 1
            number = f"Hint {guess.hints_used}/{len(hints)}: "
            self.ui.text(number + hints[guess.hints_used - 1], "magenta")
        else:
            self.ui.text("No more hints. Type your best guess, or skip to see the answer.",
                         "magenta")

    # Running --------------------------------------------------------------------------

    def execute(self, step: Step, show_output: bool = True) -> None:
        torch = self.loader.get()
        self.ns["torch"] = torch
        self.ns["print"] = self.output
        self.ns.pop("_error", None)
        if step.live and show_output:
            from autograd_tutor.training_view import live_range

            # NO_COLOR promises no escape codes at all, and the animation is made of them.
            animate = self.ui.env.interactive and not self.options.fast and not self.ui.env.no_color
            self.ns["range"] = live_range(self.ui.out, self.ns, animate=animate)
        code = compile(step.code, f"<exercise {self.exercise.number}: {step.title}>", "exec")
        recorder = self.recorder_for(step)
        attempts_before = len(recorder.attempts) if recorder else 0
        with recorder if recorder is not None else nullcontext():
            try:
                exec(code, self.ns)  # the tutor's own exercise code, never learner input
            except Exception as error:
                if not step.expects_error:
                    raise
                self.ns["_error"] = error
            finally:
                live = self.ns.pop("range", None)
                if live is not None:
                    live.close()  # a Ctrl-C mid-loop must not leave the live view running
        self.graph = None
        if recorder is not None and len(recorder.attempts) > attempts_before:
            self.graph = recorder.attempts[-1].named(self.ns)
        lines = self.output.take()
        raised = self.ns.get("_error")
        if raised is not None:
            lines.append(f"PyTorch raised {type(raised).__name__}: {raised}")
        if show_output:
            self.ui.program_output(lines)

    def record(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self.ns["_recorded"][outcome.id] = outcome.actual
        self.outcomes.extend(outcomes)
        self.store.record(self.attempt(outcome) for outcome in outcomes)

    def attempt(self, outcome: Outcome) -> Attempt:
        guess = outcome.guess
        return Attempt(
            exercise=self.exercise.number,
            id=outcome.id,
            prediction=None if guess.skipped else guess.value,
            actual=outcome.actual,
            by_hand=outcome.by_hand,
            correct=outcome.correct,
            skipped=guess.skipped,
            typed=guess.typed,
            hints_used=guess.hints_used,
            misconception=outcome.misconception.name if outcome.misconception else None,
            concept=guess.prediction.concept,
            time=now(),
            run=self.run_id,
        )

    def recorder_for(self, step: Step) -> Any:
        """One recorder for the whole run, so a graph shows forward values from earlier steps.
        Training loops run unrecorded: hooks on 200 backward passes would only slow them."""
        if self.options.graph_view == "none" or step.live:
            return None
        if self.recorder is None:
            from autograd_tutor.graph import GraphRecorder

            self.recorder = GraphRecorder()
        return self.recorder

    def show_graph(self) -> None:
        if self.graph is None:
            return
        from autograd_tutor.graph_view import needs_ascii, render

        out = self.ui.out
        ascii_only = self.ui.env.dumb or needs_ascii(out)
        self.ui.graph(render(self.graph, self.options.graph_view, width=out.width,
                             ascii=ascii_only))

    # Revealing ------------------------------------------------------------------------

    def reveal(self, step: Step, outcomes: list[Outcome]) -> None:
        values = {name: _scalar(self.ns[name]) for name in step.show_values if name in self.ns}
        self.ui.values(values)
        if outcomes:
            self.ui.reveal([self.row(outcome) for outcome in outcomes])
        if step.graph_output or step.expects_error:
            self.show_graph()
        self.ui.markdown(render_text(step.explanation, self.ns))
        if step.after is not None:
            self.ui.markdown_lines(self.run_after(step))

    def run_after(self, step: Step) -> list[str]:
        assert step.after is not None
        try:
            return step.after(self.ns, Figures(self.options.plots_dir, self.options.show))
        except OSError as error:
            self.ui.warn(f"could not save a figure in {self.options.plots_dir}: "
                         f"{error.strerror or error}")
            return []

    def row(self, outcome: Outcome) -> RevealRow:
        guess = outcome.guess
        prediction = guess.prediction
        predicted = "(skipped)" if guess.skipped else format_value(guess.value)
        return RevealRow(
            label=prediction.label,
            predicted=predicted,
            actual=outcome.actual,
            by_hand=outcome.by_hand,
            by_hand_text=render_text(prediction.by_hand_text, self.ns),
            correct=outcome.correct,
            feedback=outcome.feedback,
        )

    # Results --------------------------------------------------------------------------

    def score(self) -> tuple[int, int]:
        asked = [outcome for outcome in self.outcomes if outcome.correct is not None]
        return sum(1 for outcome in asked if outcome.correct), len(asked)

    def to_json(self) -> dict[str, Any]:
        correct, asked = self.score()
        return {
            "exercise": self.exercise.number,
            "title": self.exercise.title,
            "completed": self.completed,
            "score": {"correct": correct, "asked": asked},
            "steps": [outcome.to_json() for outcome in self.outcomes],
        }


def _scalar(value: Any) -> Value:
    if hasattr(value, "numel") and value.numel() == 1:
        return float(value.item())
    if isinstance(value, int | float):
        return float(value)
    return None
