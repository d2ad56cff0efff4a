"""The question pipeline, with no terminal in it: run a step's code, judge its predictions.

    run = Run(exercise, helpers=load_helpers(pack))
    execution = run.execute(step)               # PyTorch runs the step's exact code
    attempts = run.judge(step, guesses, execution)

Results pass between steps explicitly: `run.names` holds only what the code bound (and
`torch`), `run.answers` PyTorch's value of every judged prediction. The terminal session,
practice, review, `pack check` and the tests all drive this same object.

A pack's code (its steps, its helpers.py, expressions that call the helpers) runs in this
process, bounded by the sandbox (engine.sandbox.bounded): a time limit per step, an exit
(sys.exit, os._exit) turned into a PackCodeError, and every process it started killed when
it ends. `pack check` runs all of this inside the sandbox's child process besides.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from msgspec import structs

from autograd_tutor.engine import sandbox
from autograd_tutor.engine.answers import (
    AnswerError,
    dtype_name,
    format_value,
    is_close,
    parse_outcome,
    parse_shape,
    shape_of,
    shape_text,
    tensor_verdict,
    wrong_elements,
)
from autograd_tutor.engine.expressions import (
    EvalError,
    ExprError,
    Scope,
    evaluate,
    fill,
    parse_pack_expression,
    spec_problem,
)
from autograd_tutor.engine.model import (
    NO_ERROR,
    Asked,
    Attempt,
    Exercise,
    Kind,
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


class PackCodeError(LessonError):
    """A pack's code broke out of its bounds: it ran past its time limit or tried to end
    the program. `pack` names the pack; trying its code again would do the same."""

    def __init__(self, message: str, pack: str = "") -> None:
        super().__init__(message)
        self.pack = pack


# Matching error_match gets this long: a pattern can backtrack for ages on a long message.
REGEX_SECONDS = 0.5


def error_matches(pattern: str, message: str) -> bool:
    """Whether a pack's error_match finds a match in PyTorch's message, within
    REGEX_SECONDS (the `regex` module's timeout; its syntax is `re`'s)."""
    import regex

    try:
        return regex.search(pattern, message, timeout=REGEX_SECONDS) is not None
    except TimeoutError:
        raise LessonError(f"error_match {pattern!r} took more than {REGEX_SECONDS:g} s to "
                          "match (a pattern that backtracks; simplify it)") from None
    except (regex.error, ValueError, TypeError) as error:
        raise LessonError(f"error_match {pattern!r} can't be used: {error}") from None


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
    """{pack name: its helpers.py as a module} (the pack author's code, like its steps).
    Raises LessonError when it can't be loaded (PackCodeError when it escaped its bounds)."""
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
        with sandbox.bounded(sandbox.STEP_SECONDS, str(pack.helpers)):
            try:
                spec.loader.exec_module(module)
            except Exception as error:
                raise LessonError(f"{pack.helpers} raised {sandbox.error_text(error)}") from None
    except sandbox.Escaped as escaped:
        raise PackCodeError(str(escaped), pack.name) from None
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


WHICH_SUFFIX = ":which"  # the ID of an outcome's "which error?" is the outcome's ID + this


def asked(prediction: Prediction, earlier: Iterable[Guess]) -> bool:
    """Whether the learner is asked `prediction`, given their answers earlier in its step.

    Only the learner's own answers decide, never what PyTorch did, so whether a question
    comes gives nothing away: "which error?" follows only a predicted `error` (a learner
    who predicted runs or warning, or skipped, is judged on the outcome alone)."""
    if prediction.kind != "which":
        return True
    outcome = prediction.id.removesuffix(WHICH_SUFFIX)
    return any(guess.prediction.id == outcome and not guess.skipped and guess.value == "error"
               for guess in earlier)


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
    # What the step's hidden `prepare` code printed or warned (shown nowhere; pack check
    # reports it, since it would otherwise be lost or mistaken for the shown code's).
    hidden_output: list[str] = field(default_factory=list)

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
    # A predicted tensor: what is wrong with it ("right values, wrong shape: ...") and the
    # positions of its wrong elements in reading order, for the reveal to mark.
    detail: str = ""
    wrong: tuple[int, ...] = ()


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
                 kind: Asked = Asked.EXERCISE) -> None:
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
        plain_builtins = dict(own)  # the hidden code's: its loops are not the live view's
        live_range = live(self.names) if live is not None and step.live else None
        if live_range is not None:
            own["range"] = live_range
        self.names["__builtins__"] = own
        filename = f"<{self.exercise.key}: {step.title}>"
        execution = Execution()
        hidden = Execution()
        hidden_name = f"<{self.exercise.key}: {step.title} (prepare)>"
        recorder = self._recorder_for(step)
        before = len(recorder.attempts) if recorder is not None else 0
        prepared = 0  # warnings the hidden code gave
        try:
            code = compile(step.code, filename, "exec", dont_inherit=True)
            prepare = (compile(step.prepare, hidden_name, "exec", dont_inherit=True)
                       if step.prepare else None)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with recorder if recorder is not None else contextlib.nullcontext():
                    if prepare is not None:
                        self.names["__builtins__"] = plain_builtins
                        self._exec(prepare, hidden_name, hidden)
                        self.names["__builtins__"] = own
                        prepared = len(caught)
                        hidden.output = self._output.take()
                    if hidden.error is None:
                        self._exec(code, filename, execution)
        finally:
            if live_range is not None:
                live_range.close()  # a Ctrl-C mid-loop must not leave the live view running
            del self.names["__builtins__"]
        if hidden.error is not None:
            error = hidden.error
            raise LessonError(f"the hidden prepare code of step {step.title!r} raised "
                              f"{error.type}: {error.message} (line {error.line})")
        execution.hidden_output = hidden.output + [
            f"{w.category.__name__}: {w.message}" for w in caught[:prepared]]
        execution.warnings = [f"{w.category.__name__}: {w.message}" for w in caught[prepared:]]
        execution.output = self._output.take()
        if recorder is not None and len(recorder.attempts) > before:
            execution.graph = recorder.attempts[-1].named(self.names)
        if execution.error is not None and not any(p.is_outcome for p in step.predictions):
            error = execution.error
            raise LessonError(f"the code of step {step.title!r} raised {error.type}: "
                              f"{error.message} (line {error.line})")
        return execution

    def _exec(self, code: Any, filename: str, execution: Execution) -> None:
        step = self._step
        title = step.title if step is not None else filename
        try:
            with sandbox.bounded(sandbox.STEP_SECONDS, f"the code of step {title!r}"):
                try:
                    exec(code, self.names)  # the lesson's own code, from a pack the user added
                except Exception as error:
                    execution.error = Raised(type(error).__name__, str(error),
                                             _line_in(error, filename))
        except sandbox.Escaped as escaped:
            raise PackCodeError(str(escaped), self._pack()) from None

    def _pack(self) -> str:
        return (self._step.pack if self._step is not None else "") or self.exercise.pack

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
        return Scope(self.names, self.answers, self.helpers.get(self._pack()))

    def value(self, text: str) -> Any:
        """A pack expression's value over what the code left behind. It may run the pack's
        code (its helpers, a property of an object the step made): bounded like a step."""
        scope = self.scope()
        try:
            with sandbox.bounded(sandbox.STEP_SECONDS, f"the expression {text!r}"):
                return evaluate(parse_pack_expression(text), scope)
        except (ExprError, EvalError) as error:
            raise LessonError(f"{text!r}: {error}") from None
        except sandbox.Escaped as escaped:
            raise PackCodeError(str(escaped), self._pack()) from None

    def render(self, text: str) -> str:
        """Text with its {placeholders} filled with PyTorch's values (only after a reveal)."""
        if "{" not in text:
            return text
        return fill(text, self._placeholder, _formatted)

    def _placeholder(self, name: str) -> Any:
        """{answer("ID")} is an earlier answer, {expression} the expression's value now. A
        placeholder that is no expression but names an answer ({loss@1}) is that answer (as
        format 1 allowed); `pack check` refuses one that could be read either way."""
        if name in self.answers and not is_expression(name):
            return self.answers[name]
        return self.value(name)

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
        if prediction.kind == Kind.OUTCOME:
            return execution.outcome
        if prediction.kind == Kind.WHICH:
            error = execution.error
            if error is None:
                return NO_ERROR
            if error_matches(prediction.error_match, error.message):
                return str(self.value(prediction.by_hand))
            return "(another error)"
        return as_value(self.value(prediction.actual), prediction.actual, prediction.kind)

    def _judge(self, guess: Guess, execution: Execution) -> Judged:
        prediction = guess.prediction
        actual = self._actual(prediction, execution)
        by_hand = as_value(self.value(prediction.by_hand), prediction.by_hand, prediction.kind)
        misconception = None
        feedback = ""
        detail = ""
        wrong: tuple[int, ...] = ()
        if guess.skipped:
            correct: bool | None = None
        elif prediction.kind == Kind.WHICH and execution.error is None:
            # An error was predicted and none came: that is judged once, by the outcome.
            correct = None
        elif is_close(guess.value, actual, prediction.tolerance):
            correct = True
        else:
            correct = False
            misconception = self.match(prediction, guess.value, actual)
            # With no feedback of its own, a prediction's last (most specific) hint says why.
            fallback = prediction.feedback or (prediction.hints[-1] if prediction.hints else "")
            feedback = misconception.explanation if misconception else fallback
            detail = tensor_verdict(guess.value, actual, prediction.tolerance)
            if isinstance(guess.value, list):
                wrong = tuple(wrong_elements(guess.value, actual, prediction.tolerance))
        raised = execution.error if prediction.kind in (Kind.OUTCOME, Kind.WHICH) else None
        attempt = Attempt(
            id=prediction.id, prediction=None if guess.skipped else guess.value,
            actual=actual, by_hand=by_hand, correct=correct, skipped=guess.skipped,
            pack=self.exercise.pack if self.kind == Asked.EXERCISE else None,
            exercise=self.exercise.number if self.kind == Asked.EXERCISE else None,
            kind=self.kind, typed=guess.typed, hints_used=guess.hints_used,
            misconception=misconception.name if misconception else None,
            concept=prediction.concept, tolerance=prediction.tolerance.describe(),
            error=raised.to_json() if raised else None,
            warnings=tuple(execution.warnings) if prediction.kind == Kind.OUTCOME else (),
        )
        return Judged(attempt, prediction, misconception, feedback,
                      self.render(prediction.by_hand_text), detail=detail, wrong=wrong)

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
        if prediction.kind == Kind.OUTCOME:
            return parse_outcome(misconception.value)
        return as_value(self.value(misconception.value), misconception.value, prediction.kind)

    def unjudged(self, guesses: Iterable[Guess]) -> list[Attempt]:
        """Interrupted before PyTorch ran: what was typed, kept without a verdict."""
        return [Attempt(id=g.prediction.id, prediction=g.value, actual=None, by_hand=None,
                        correct=None, skipped=False,
                        pack=self.exercise.pack if self.kind == Asked.EXERCISE else None,
                        exercise=self.exercise.number if self.kind == Asked.EXERCISE else None,
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


_WANTED = {
    Kind.VALUE: "a number, None or a tensor",
    Kind.SHAPE: "a shape (like (4, 3))",
    Kind.FLAG: "True or False",
    Kind.DTYPE: "a dtype (like float32)",
    Kind.GRAD_FN: "a grad_fn's class name (like MulBackward0) or None",
}


def describe(value: Any) -> str:
    """What a value is, in a few words, for a message about a kind that does not fit."""
    if isinstance(value, bool):
        return f"{value}, a flag"
    if isinstance(value, tuple):
        return f"{shape_text(value) if all(isinstance(v, int) for v in value) else value}, " \
               "a shape"
    if isinstance(value, list):
        shape = shape_of(value)
        return f"a tensor of shape {shape_text(shape)}" if shape else "a ragged list"
    if isinstance(value, str):
        return f"the word {value!r}"
    return format_value(value) if value is None or isinstance(value, float) else \
        type(value).__name__


def as_value(value: Any, text: str, kind: Kind = Kind.VALUE) -> Value:
    """An evaluated expression as a value of the prediction's kind, or LessonError saying
    which kind it is instead (`pack check` reports it: the kind follows from `actual`)."""
    found: Value | None = None
    ok = False
    if kind == Kind.VALUE:
        if isinstance(value, tuple) and not all(isinstance(v, int) for v in value):
            value = list(value)  # a tuple literal of numbers: a tensor's elements
        if value is None or isinstance(value, float | str) and not isinstance(value, bool):
            found, ok = value, True
        elif isinstance(value, list) and shape_of(value) is not None:
            found, ok = value, True
    elif kind == Kind.SHAPE:
        if isinstance(value, tuple | list) and all(
                isinstance(v, int) and not isinstance(v, bool)
                or isinstance(v, float) and v.is_integer() and v >= 0 for v in value):
            found, ok = shape_text([int(v) for v in value]), True
        elif isinstance(value, str):
            try:
                found, ok = parse_shape(value), True
            except AnswerError:
                ok = False
    elif kind == Kind.FLAG:
        found, ok = value, isinstance(value, bool)
    elif kind == Kind.DTYPE:
        name = dtype_name(value) if isinstance(value, str) else None
        found, ok = name, name is not None
    elif kind == Kind.GRAD_FN:
        found, ok = value, value is None or isinstance(value, str) and value.isidentifier()
    else:
        found, ok = value, value is None or isinstance(value, str)
    if not ok:
        raise LessonError(f"{text!r} gives {describe(value)}, not {_WANTED.get(kind, kind)}")
    return found


def is_expression(text: str) -> bool:
    """Whether a placeholder's text parses as a pack expression."""
    try:
        parse_pack_expression(text)
    except ExprError:
        return False
    return True


def _formatted(value: Any, spec: str) -> str:
    # A spec `pack check` would refuse (an installed pack is read without running it) is
    # ignored rather than allowed to end the run after its prompt.
    if spec and isinstance(value, float) and spec_problem(spec) is None:
        return format(value, spec)
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return shape_text(value)
    if isinstance(value, list):
        return ", ".join(format_value(v) if isinstance(v, float | list) else str(v)
                         for v in value)
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
