"""The question pipeline, with no terminal in it: run a step's code, judge its predictions.

    run = Run(exercise, helpers=load_helpers(pack))
    execution = run.execute(step)               # PyTorch runs the step's exact code
    attempts = run.judge(step, guesses, execution)

Results pass between steps explicitly: `run.names` holds only what the code bound (and
`torch`), `run.answers` PyTorch's value of every judged prediction. The terminal session,
practice, review, `pack check` and the tests all drive this same object.
"""

from __future__ import annotations

import builtins
import importlib.util
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from msgspec import structs

from autograd_tutor.engine.answers import format_value, is_close, parse_outcome
from autograd_tutor.engine.expressions import (
    EvalError,
    ExprError,
    Scope,
    evaluate,
    fill,
    parse_pack_expression,
)
from autograd_tutor.engine.model import (
    Attempt,
    Exercise,
    Misconception,
    Pack,
    Prediction,
    Step,
    Tolerance,
    Value,
)


class LessonError(Exception):
    """The lesson itself is broken (its code raised unexpectedly, an expression failed).
    A user cannot cause this by typing; `pack check` finds it first."""


WAIT_SLICE = 0.05  # seconds between looks for a Ctrl-C while waiting for torch


class TorchLoader:
    """Imports torch in a background thread while the learner reads and thinks.

    `then` names modules to warm up after torch (e.g. the figures module), so a last reveal
    does not wait for them either; get() waits for torch only.
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
        # Ctrl-C must reach the main thread: the kernel may deliver SIGINT to any thread
        # that does not block it, and delivered here it would not wake the main thread's
        # wait for input (which then hangs).
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM,
                                                      signal.SIGHUP})
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
            # In short waits: Python runs a signal's handler only in the main thread, once
            # it wakes. A Ctrl-C that woke no wait (delivered to another thread, or while the
            # import is stuck on a lock) still ends the run within a moment.
            while not self._torch_ready.wait(WAIT_SLICE):
                pass
        if self._error is not None:
            raise self._error
        import torch

        return torch


def load_helpers(pack: Pack | None) -> dict[str, ModuleType | None]:
    """{pack name: its helpers.py as a module} (the pack author's code, like its steps)."""
    if pack is None:
        return {}
    return {pack.name: _helpers_module(pack)}


def _helpers_module(pack: Pack) -> ModuleType | None:
    if pack.helpers is None:
        return None
    name = f"autograd_tutor_pack_{pack.name.replace('-', '_')}_helpers"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, pack.helpers)
    if spec is None or spec.loader is None:
        raise LessonError(f"can't load {pack.helpers}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise LessonError(f"{pack.helpers} raised {type(error).__name__}: {error}") from None
    sys.modules[name] = module
    return module


@dataclass
class Guess:
    """What the learner answered for one prediction, before it is judged."""

    prediction: Prediction
    value: Value = None
    typed: str = ""
    skipped: bool = False
    hints_used: int = 0


@dataclass(frozen=True)
class Raised:
    """An exception the step's code raised: PyTorch's type and message, verbatim."""

    type: str
    message: str
    line: int | None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "line": self.line}


@dataclass
class Execution:
    """What running one step's code did."""

    output: list[str] = field(default_factory=list)
    error: Raised | None = None
    warnings: list[str] = field(default_factory=list)
    graph: Any = None

    @property
    def outcome(self) -> str:
        if self.error is not None:
            return "error"
        return "warning" if self.warnings else "runs"


@dataclass(frozen=True)
class Judged:
    """A judged prediction with what the reveal needs besides the record itself."""

    attempt: Attempt
    prediction: Prediction
    misconception: Misconception | None
    feedback: str
    by_hand_text: str
    consistency: str = ""  # how this answer breaks the chain rule with another, if it does


# A wrong model matches within 0.01% (learners type rounded numbers) or the tolerance.
def matching_tolerance(tolerance: Tolerance) -> Tolerance:
    return Tolerance(relative=max(tolerance.relative, 1e-4), absolute=tolerance.absolute)


class _Output:
    """Stands in for `print` in the step's builtins, so output lands in the reveal."""

    def __init__(self) -> None:
        self.buffer = ""

    def __call__(self, *args: object, sep: str | None = " ", end: str | None = "\n",
                 **_: object) -> None:
        self.buffer += (" " if sep is None else sep).join(str(a) for a in args)
        self.buffer += "\n" if end is None else end

    def take(self) -> list[str]:
        text, self.buffer = self.buffer, ""
        return text.rstrip("\n").split("\n") if text else []


LiveHook = Callable[[dict[str, Any]], Any]  # names -> a `range` stand-in with close()


class Run:
    """One run of one exercise (or one set of practice problems) through the engine."""

    def __init__(self, exercise: Exercise, helpers: Mapping[str, ModuleType | None] | None = None,
                 loader: TorchLoader | None = None, record_graphs: bool = False,
                 kind: str = "exercise") -> None:
        self.exercise = exercise
        self.helpers = dict(helpers or {})
        self._step: Step | None = None
        self.loader = loader or TorchLoader()
        self.record_graphs = record_graphs
        self.kind = kind
        self.names: dict[str, Any] = {}
        self.answers: dict[str, Value] = {}
        self._recorder: Any = None
        self._output = _Output()

    # Running ------------------------------------------------------------------------

    def execute(self, step: Step, live: LiveHook | None = None) -> Execution:
        """Run the step's exact code. An exception is kept for outcome predictions; without
        one to predict it, it means the lesson is broken (LessonError)."""
        torch = self.loader.get()
        self._step = step
        self.names["torch"] = torch
        own = dict(vars(builtins))
        own["print"] = self._output
        live_range = live(self.names) if live is not None and step.live else None
        if live_range is not None:
            own["range"] = live_range
        self.names["__builtins__"] = own
        filename = f"<{self.exercise.key}: {step.title}>"
        execution = Execution()
        recorder = self._recorder_for(step)
        before = len(recorder.attempts) if recorder is not None else 0
        try:
            code = compile(step.code, filename, "exec", dont_inherit=True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if recorder is not None:
                    with recorder:
                        self._exec(code, filename, execution)
                else:
                    self._exec(code, filename, execution)
        finally:
            if live_range is not None:
                live_range.close()  # a Ctrl-C mid-loop must not leave the live view running
            del self.names["__builtins__"]
        execution.warnings = [f"{w.category.__name__}: {w.message}" for w in caught]
        execution.output = self._output.take()
        if recorder is not None and len(recorder.attempts) > before:
            execution.graph = recorder.attempts[-1].named(self.names)
        if execution.error is not None and not any(p.is_outcome for p in step.predictions):
            error = execution.error
            raise LessonError(f"the code of step {step.title!r} raised {error.type}: "
                              f"{error.message} (line {error.line})")
        return execution

    def _exec(self, code: Any, filename: str, execution: Execution) -> None:
        try:
            exec(code, self.names)  # the lesson's own code, from a pack the user installed
        except Exception as error:
            execution.error = Raised(type(error).__name__, str(error),
                                     _line_in(error, filename))

    def _recorder_for(self, step: Step) -> Any:
        """One recorder for the whole run, so a graph shows forward values from earlier
        steps. Training loops run unrecorded: hooks on 200 backward passes only slow them."""
        if not self.record_graphs or step.live:
            return None
        if self._recorder is None:
            from autograd_tutor.engine.graph import GraphRecorder

            self._recorder = GraphRecorder()
        return self._recorder

    # Reading ------------------------------------------------------------------------

    def scope(self) -> Scope:
        pack = (self._step.pack if self._step is not None else "") or self.exercise.pack
        return Scope(self.names, self.answers, self.helpers.get(pack))

    def value(self, text: str) -> Any:
        """A pack expression's value over what the code left behind."""
        try:
            return evaluate(parse_pack_expression(text), self.scope())
        except (ExprError, EvalError) as error:
            raise LessonError(f"{text!r}: {error}") from None

    def render(self, text: str) -> str:
        """Text with its {placeholders} filled with PyTorch's values (only after a reveal)."""
        if "{" not in text:
            return text
        return fill(text, self._placeholder, _formatted)

    def _placeholder(self, name: str) -> Any:
        return self.answers[name] if name in self.answers else self.value(name)

    # Judging ------------------------------------------------------------------------

    def judge(self, step: Step, guesses: Iterable[Guess], execution: Execution) -> list[Judged]:
        self._step = step
        judged = [self._judge(guess, execution) for guess in guesses]
        for item in judged:
            self.answers[item.attempt.id] = item.attempt.actual
        if execution.graph is not None and len(judged) > 1:
            judged = _checked_against_each_other(judged, execution.graph)
        return judged

    def _actual(self, prediction: Prediction, execution: Execution) -> Value:
        if prediction.kind == "outcome":
            return execution.outcome
        if prediction.kind == "which":
            error = execution.error
            if error is None:
                return "(no error)"
            if re.search(prediction.error_match, error.message):
                return str(self.value(prediction.by_hand))
            return "(another error)"
        return _as_value(self.value(prediction.actual), prediction.actual)

    def _judge(self, guess: Guess, execution: Execution) -> Judged:
        prediction = guess.prediction
        actual = self._actual(prediction, execution)
        by_hand = _as_value(self.value(prediction.by_hand), prediction.by_hand)
        misconception = None
        feedback = ""
        if guess.skipped:
            correct: bool | None = None
        elif is_close(guess.value, actual, prediction.tolerance):
            correct = True
        else:
            correct = False
            misconception = self.match(prediction, guess.value, actual)
            # With no feedback of its own, a prediction's last (most specific) hint says why.
            fallback = prediction.feedback or (prediction.hints[-1] if prediction.hints else "")
            feedback = misconception.explanation if misconception else fallback
        raised = execution.error if prediction.kind in ("outcome", "which") else None
        attempt = Attempt(
            id=prediction.id, prediction=None if guess.skipped else guess.value,
            actual=actual, by_hand=by_hand, correct=correct, skipped=guess.skipped,
            pack=self.exercise.pack if self.kind == "exercise" else None,
            exercise=self.exercise.number if self.kind == "exercise" else None,
            kind=self.kind, typed=guess.typed, hints_used=guess.hints_used,
            misconception=misconception.name if misconception else None,
            concept=prediction.concept, tolerance=prediction.tolerance.describe(),
            error=raised.to_json() if raised else None,
            warnings=tuple(execution.warnings) if prediction.kind == "outcome" else (),
        )
        return Judged(attempt, prediction, misconception, feedback,
                      self.render(prediction.by_hand_text))

    def match(self, prediction: Prediction, value: Value, actual: Value) -> Misconception | None:
        tolerance = matching_tolerance(prediction.tolerance)
        for misconception in prediction.misconceptions:
            wrong = self.misconception_value(prediction, misconception)
            # A wrong model that happens to give the right number explains nothing.
            if is_close(wrong, actual, prediction.tolerance):
                continue
            if is_close(value, wrong, tolerance):
                return misconception
        return None

    def misconception_value(self, prediction: Prediction, misconception: Misconception) -> Value:
        if prediction.kind == "outcome":
            return parse_outcome(misconception.value)
        return _as_value(self.value(misconception.value), misconception.value)

    def unjudged(self, guesses: Iterable[Guess]) -> list[Attempt]:
        """Interrupted before PyTorch ran: what was typed, kept without a verdict."""
        return [Attempt(id=g.prediction.id, prediction=g.value, actual=None, by_hand=None,
                        correct=None, skipped=False,
                        pack=self.exercise.pack if self.kind == "exercise" else None,
                        exercise=self.exercise.number if self.kind == "exercise" else None,
                        kind=self.kind, typed=g.typed, hints_used=g.hints_used,
                        concept=g.prediction.concept,
                        tolerance=g.prediction.tolerance.describe(), judged=False)
                for g in guesses if not g.skipped]

    def plain_values(self, names: Iterable[str]) -> dict[str, Value]:
        """Forward values for the reveal: scalars only."""
        shown: dict[str, Value] = {}
        for name in names:
            if name in self.names:
                value = self.value(name)
                if isinstance(value, float):
                    shown[name] = value
        return shown


def _checked_against_each_other(judged: list[Judged], graph: Any) -> list[Judged]:
    """Mark the answers that break the chain rule with another answer of the step."""
    from autograd_tutor.engine.consistency import check

    found = check(graph, [(item.prediction, item.attempt) for item in judged])
    if not found:
        return judged
    result = []
    for item in judged:
        mine = [f for f in found if f.child == item.attempt.id]
        if mine:
            attempt = structs.replace(item.attempt, inconsistent_with=tuple(f.parent for f in mine))
            item = replace(item, attempt=attempt,
                           consistency=" ".join(f.sentence() for f in mine))
        result.append(item)
    return result


def _as_value(value: Any, text: str) -> Value:
    if value is None or isinstance(value, float | str):
        return value
    raise LessonError(f"{text!r} gives {type(value).__name__}, not a number, None or a word")


def _formatted(value: Any, spec: str) -> str:
    if spec and isinstance(value, float):
        return format(value, spec)
    if isinstance(value, list):
        return ", ".join(format_value(v) if isinstance(v, float) else str(v) for v in value)
    return format_value(value)


def _line_in(error: BaseException, filename: str) -> int | None:
    """The line of the step's code that raised (the last frame in that code)."""
    line = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
