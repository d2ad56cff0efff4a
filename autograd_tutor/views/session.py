"""Runs one exercise in the terminal: show a step, ask every prediction, let the engine run
PyTorch and judge, reveal, record.

The order is the point of the tool: nothing that could give a prediction away is printed
before the learner has answered it. The engine's `Run` does the computing; this module
only shows and asks.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from autograd_tutor.app.session import Recorder
from autograd_tutor.engine.answers import format_marked, format_value, parse_prediction
from autograd_tutor.engine.model import (
    OUTCOMES,
    Asked,
    Attempt,
    Exercise,
    Figures,
    Kind,
    Prediction,
    Step,
)
from autograd_tutor.engine.runner import (
    Execution,
    Guess,
    Judged,
    LessonError,
    Run,
    TorchLoader,
    asked,
)
from autograd_tutor.views import prompt
from autograd_tutor.views.figure_worker import FigureWorker
from autograd_tutor.views.prompt import Quit
from autograd_tutor.views.ui import INPUT_HELP, SKIPPED, UI, RevealRow, printable

PLOTS = "autograd_tutor.views.plots"  # the figures' module; importing it loads matplotlib

__all__ = ["Options", "Quit", "Session"]


@dataclass(frozen=True)
class Options:
    reveal: bool = False
    answers: Mapping[str, str] = field(default_factory=dict)
    plots_dir: Path = Path("autograd-tutor-plots")
    graph_view: str = "tree"
    fast: bool = False
    show: bool = False
    # After a wrong answer that matches a named misconception, offer one problem aimed at it
    # (the CLI turns this on only for a person at a terminal).
    retry: bool = False


class Session:
    """One run of one exercise. Attempts are saved after every step, so quitting loses nothing.

    `kind` is "exercise", or "practice"/"review" for generated problems (never completed).
    """

    def __init__(self, exercise: Exercise, ui: UI, recorder: Recorder, options: Options,
                 helpers: Mapping[str, ModuleType | None] | None = None,
                 kind: Asked = Asked.EXERCISE,
                 aimed: Callable[[Attempt, tuple[str, ...], tuple[str, ...], frozenset[str]],
                                 Exercise | None] | None = None
                 ) -> None:
        self.exercise = exercise
        self.ui = ui
        self.recorder = recorder
        self.options = options
        self.kind = kind
        self.run_id = uuid.uuid4().hex[:12]
        draws = any(step.figures for step in exercise.steps)
        # A --reveal run waits for nobody: its figures are drawn by a process of their own,
        # which loads matplotlib on another core meanwhile (unless this process has it
        # already). Otherwise matplotlib loads here while the learner thinks.
        early = options.reveal and not options.show and PLOTS not in sys.modules
        self.worker = FigureWorker() if draws and early else None
        loader = TorchLoader(then=(PLOTS,)
                             if draws and self.worker is None else ())
        self.engine = Run(exercise, helpers=helpers, loader=loader,
                          record_graphs=options.graph_view != "none", kind=kind)
        self.judged: list[Judged] = []
        self.completed = False
        self.saved = True
        self._told_how: set[str] = set()
        self.helpers = helpers
        # Draws the retry problem for a judged attempt, given the code of the steps so far
        # and of the later ones (a retry never shows what a later step is about).
        self.aimed = aimed
        self._earlier: tuple[str, ...] = ()
        self._later: tuple[str, ...] = ()
        self._later_names: frozenset[tuple[str, str]] = frozenset()

    @property
    def attempts(self) -> list[Attempt]:
        return [item.attempt for item in self.judged]

    # The flow -------------------------------------------------------------------------

    def run(self) -> list[Attempt]:
        if self.worker is not None:
            self.worker.start()
        try:
            if self.options.reveal:
                # Nothing to wait for: PyTorch loads while the first steps are printed.
                self.engine.loader.start()
            self.ui.exercise_header(self.exercise, numbered=self.kind == Asked.EXERCISE)
            total = len(self.exercise.steps)
            for index, step in enumerate(self.exercise.steps, start=1):
                steps = self.exercise.steps
                self._earlier = tuple(shown.code for shown in steps[:index])
                self._later = tuple(later.code for later in steps[index:])
                # The mistakes only later steps name (with the concept of the prediction
                # naming each): a retry about one would teach that step.
                earlier_names = {name for _, name in _mistakes(steps[:index])}
                self._later_names = frozenset(
                    (concept, name) for concept, name in _mistakes(steps[index:])
                    if name not in earlier_names)
                self.run_step(step, index, total)
        finally:
            if self.worker is not None:
                self.worker.close()
        self.completed = True
        # A --reveal run is a demonstration: the learner predicted nothing, so it stays open.
        if not self.options.reveal and self.kind == Asked.EXERCISE:
            self.saved &= self.recorder.complete(self.exercise, self.run_id)
        self.ui.markdown(self.exercise.closing)
        return self.attempts

    def run_step(self, step: Step, index: int, total: int) -> None:
        self.ui.step_header(step.title, index, total)
        self.ui.markdown(step.setup)
        self.ui.code(step.code)
        if not step.predictions:
            # Nothing to ask: run it now, so what it prints shows in its own step. (PyTorch
            # loads in the background from here, while the learner reads.)
            self.engine.loader.start()
            self.reveal(step, [], self.execute(step))  # its explanation, graph and figures
            return
        guesses: list[Guess] = []
        try:
            for prediction in step.predictions:
                if asked(prediction, guesses):
                    guesses.append(self.ask(prediction))
        except KeyboardInterrupt:
            self.keep_unjudged(guesses)
            raise
        except (Quit, EOFError):
            self.keep_judged(step, guesses)
            raise
        try:
            execution = self.execute(step)
            judged = self.engine.judge(step, guesses, execution)
        except (KeyboardInterrupt, LessonError):
            # Ctrl-C, or the lesson's own code is broken: what was typed is kept, unjudged.
            self.keep_unjudged(guesses)
            raise
        self.record(judged)
        self.reveal(step, judged, execution)
        self.offer_retry(judged)

    def keep_judged(self, step: Step, guesses: list[Guess]) -> None:
        """The learner stopped mid-step: judge what they answered, silently, and save it."""
        answered = [guess for guess in guesses if not guess.skipped]
        if answered:
            execution = self.execute(step, show_output=False)
            self.record(self.engine.judge(step, answered, execution))

    def keep_unjudged(self, guesses: list[Guess]) -> None:
        """Interrupted before PyTorch ran: keep what was typed, without a verdict."""
        self.saved &= self.recorder.record(self.engine.unjudged(guesses), self.run_id)

    # Asking ---------------------------------------------------------------------------

    def ask(self, prediction: Prediction) -> Guess:
        given = self.options.answers.get(prediction.id)
        if prediction.kind == Kind.WHICH and not self.options.reveal:
            self.ui.numbered_choices(prediction.choices)
        if given is not None:
            value = parse_prediction(given, prediction)  # validated by the CLI
            self.ui.text(f"{prompt_text(prediction)}{printable(given)}  (from --answer)", "cyan")
            return Guess(prediction, value, typed=given)
        if self.options.reveal:
            return Guess(prediction, skipped=True)
        how = "tensor" if prediction.tensor else prediction.kind
        if how not in self._told_how:
            self.ui.text(INPUT_HELP[how], "dim")
            self._told_how.add(how)
        # Load torch behind the learner's thinking time, once the first question is up.
        self.engine.loader.start()
        return prompt.ask(self.ui, Guess(prediction), prompt_text(prediction),
                          lambda typed: parse_prediction(typed, prediction), prediction.hints)

    # Running --------------------------------------------------------------------------

    def execute(self, step: Step, show_output: bool = True) -> Execution:
        live = None
        if step.live and show_output:
            from autograd_tutor.views.training_view import live_range

            # NO_COLOR promises no escape codes at all, and the animation is made of them.
            animate = (self.ui.env.interactive and not self.options.fast
                       and not self.ui.env.no_color)

            def live(names: dict[str, Any]) -> Any:
                return live_range(self.ui.out, names, animate=animate)

        execution = self.engine.execute(step, live=live)
        if show_output and not any(p.is_outcome for p in step.predictions):
            self.ui.program_output(execution.output + execution.warnings)
        return execution

    def record(self, judged: list[Judged]) -> None:
        self.judged.extend(judged)
        self.saved &= self.recorder.record([item.attempt for item in judged], self.run_id)

    def show_graph(self, execution: Execution) -> None:
        if execution.graph is None:
            return
        from autograd_tutor.views.graph_view import needs_ascii, render

        out = self.ui.out
        ascii_only = self.ui.env.dumb or needs_ascii(out)
        self.ui.graph(render(execution.graph, self.options.graph_view, width=out.width,
                             ascii=ascii_only))

    # Teaching on the spot -----------------------------------------------------------

    def offer_retry(self, judged: list[Judged]) -> None:
        """A named mistake: offer at once one fresh problem aimed at it (once per step), only
        when there is one: it is drawn before the offer is made, for the first of the step's
        named mistakes that one aims at."""
        if not self.options.retry or self.aimed is None:
            return
        missed = (item.attempt for item in judged
                  if item.attempt.correct is False and item.attempt.misconception
                  and item.attempt.concept)
        drawn = (self.aimed(attempt, self._earlier, self._later,
                            frozenset(name for concept, name in self._later_names
                                      if concept == attempt.concept))
                 for attempt in missed)
        problem = next((found for found in drawn if found is not None), None)
        if problem is None:
            return  # nothing aimed at these mistakes: offer nothing
        try:
            wanted = self.ui.ask("Try one aimed at this? [Y/n] ").strip().lower()
        except EOFError:
            return
        if wanted not in ("", "y", "yes"):
            return
        options = replace(self.options, retry=False)
        retry = Session(problem, self.ui, self.recorder, options, helpers=self.helpers,
                        kind=Asked.RETRY)
        try:
            retry.run()
        except Quit:
            pass  # q leaves the retry problem only
        self.saved &= retry.saved
        self.ui.text(f"Back to {self.exercise.title}.", "bold")

    # Revealing ------------------------------------------------------------------------

    def reveal(self, step: Step, judged: list[Judged], execution: Execution) -> None:
        if any(p.is_outcome for p in step.predictions):
            self.ui.outcome(step.code, execution.error, execution.warnings, execution.output)
        self.ui.values(self.engine.plain_values(step.values))
        if judged:
            self.ui.reveal([row(item) for item in judged], explained_after=bool(step.explanation))
        if step.graph:
            self.show_graph(execution)
        self.ui.markdown(self.engine.render(step.explanation))
        if step.figures:
            self.ui.markdown_lines(self.draw(step))

    def draw(self, step: Step) -> list[str]:
        from autograd_tutor.views import figures

        target = Figures(self.options.plots_dir, self.options.show)
        try:
            return figures.publish(step.figures, self.engine.value, target, self.worker)
        except OSError as error:
            where = self.options.plots_dir
            # mkdir on a symlink loop says "File exists": say what is really there.
            reason = ("it is a broken symbolic link or a link loop"
                      if where.is_symlink() and not where.exists()
                      else error.strerror or str(error))
            self.ui.warn(f"could not save a figure in {printable(str(where))}: {reason}; "
                         "choose another folder with --plots DIR")
            return []

    # Results --------------------------------------------------------------------------

    def score(self) -> tuple[int, int]:
        asked = [a for a in self.attempts if a.correct is not None]
        return sum(1 for a in asked if a.correct), len(asked)

    def to_json(self) -> dict[str, Any]:
        correct, asked = self.score()
        return {
            "pack": self.exercise.pack,
            "exercise": self.exercise.number,
            "title": self.exercise.title,
            "completed": self.completed,
            "score": {"correct": correct, "asked": asked},
            "steps": [a.to_json() for a in self.attempts],
        }


# What the prompt adds, per kind, to say what to type.
_TYPE_HINTS = {
    Kind.SHAPE: " (a shape, like (4, 3) or (3,))",
    Kind.FLAG: " (True or False)",
    Kind.DTYPE: " (a dtype, like float32)",
    Kind.GRAD_FN: " (a grad_fn's class name, or None)",
}


def prompt_text(prediction: Prediction) -> str:
    if prediction.kind == Kind.OUTCOME:
        return f"Predict what {prediction.code} does ({', '.join(OUTCOMES[:2])} or "\
               f"{OUTCOMES[2]}): "
    if prediction.kind == Kind.WHICH:
        return f"Predict which error {prediction.code} raises (1-{len(prediction.choices)}): "
    extra = ""
    if prediction.choices:
        extra = " (" + " or ".join(prediction.choices) + ")"
    elif prediction.kind in _TYPE_HINTS:
        extra = _TYPE_HINTS[prediction.kind]
    elif prediction.tolerance.is_estimate:
        extra = f" (an estimate: within {prediction.tolerance.describe()} counts)"
    return f"Predict {prediction.label}{extra}: "


def row(item: Judged) -> RevealRow:
    attempt = item.attempt
    predicted = SKIPPED if attempt.skipped else format_value(attempt.prediction)
    return RevealRow(
        label=item.prediction.label,
        predicted=predicted,
        actual=attempt.actual,
        by_hand=attempt.by_hand,
        by_hand_text=item.by_hand_text,
        correct=attempt.correct,
        feedback=item.feedback,
        marked=tuple(format_marked(attempt.prediction, item.wrong)) if item.wrong else (),
        detail=item.detail,
        consistency=item.consistency,
        kind=item.prediction.kind,
        named=bool(attempt.misconception),
    )


def _mistakes(steps: Sequence[Step]) -> frozenset[tuple[str, str]]:
    """(concept, misconception name) for each mistake the steps' predictions name."""
    return frozenset((p.concept, m.name) for step in steps for p in step.predictions
                     for m in p.misconceptions)
