"""`pack check`: a pack is sound only when PyTorch agrees with every answer it declares.

Reading the pack (content.packs) finds problems of form: TOML, fields, names, expression
syntax. Then every exercise runs through the engine's runner, step by step, as a learner's
run would, and each prediction is checked:

- `actual` reads what the code computed (not a constant) and evaluates;
- `by_hand` agrees with it within the tolerance (the two columns check each other);
- every misconception's value differs from the right answer and from the others;
- an outcome's declared result is what PyTorch really did, and its error_match matches;
- nothing shown before the prediction's prompt contains its answer.

Practice templates must draw a fair problem within 200 tries; a coding part's solution must
pass its own check and its untouched scaffold must not. Each problem is reported as
`FILE: step N: prediction ID: what is wrong`.

The commands (`pack check`, `pack add`) call `check_in_sandbox`: the pack is read here, and
its code runs in the sandbox's child process (engine.sandbox), where `check_pack` runs
every step with a time limit of its own (so the problem names the step) and the child
as a whole has a hard limit besides. A step that loops forever, exits the process or starts
programs ends in a located problem; whatever it started is killed with the child.
`check_pack` itself runs in the calling process (the tests call it directly).
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from autograd_tutor.content.packs import FIGURE_KINDS, load_pack
from autograd_tutor.content.schema import Problem, Where
from autograd_tutor.engine import practice, sandbox
from autograd_tutor.engine.answers import format_value, is_close
from autograd_tutor.engine.expressions import ExprError, parse_pack_expression
from autograd_tutor.engine.model import Coding, Exercise, Prediction, Step, Tolerance, Value
from autograd_tutor.engine.runner import (
    Execution,
    Guess,
    LessonError,
    PackCodeError,
    Run,
    error_matches,
    load_helpers,
)

# by_hand is float64 arithmetic, PyTorch float32: "exact" allows float32's rounding.
AGREEMENT = Tolerance(relative=1e-5, absolute=1e-6)
TEMPLATE_TRIES = 200
TEMPLATE_SEED = 0


@dataclass
class CheckResult:
    name: str
    problems: list[Problem] = field(default_factory=list)
    exercises: int = 0
    predictions: int = 0
    templates: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> str:
        return (f"{self.exercises} exercises, {self.predictions} predictions, "
                f"{self.templates} practice templates checked with PyTorch")

    def to_json(self) -> dict[str, Any]:
        return {"pack": self.name, "ok": self.ok,
                "problems": [p.to_json() for p in self.problems]}

    def to_data(self) -> dict[str, Any]:
        """Everything, for the sandbox's channel (from_data reads it back)."""
        return {**self.to_json(), "exercises": self.exercises,
                "predictions": self.predictions, "templates": self.templates}

    @classmethod
    def from_data(cls, data: Any) -> CheckResult:
        """A result sent back by the child; TypeError/KeyError/ValueError if malformed."""
        if not isinstance(data, dict) or not isinstance(data["problems"], list):
            raise TypeError("not a check result")
        problems = []
        for item in data["problems"]:
            step, prediction = item["step"], item["prediction"]
            if not (isinstance(item["file"], str) and isinstance(item["message"], str)
                    and (step is None or type(step) is int)
                    and (prediction is None or isinstance(prediction, str))):
                raise TypeError("not a problem")
            problems.append(Problem(item["file"], step, prediction, item["message"]))
        counts = [data[key] for key in ("exercises", "predictions", "templates")]
        if not isinstance(data["pack"], str) or any(type(n) is not int for n in counts):
            raise TypeError("not a check result")
        return cls(data["pack"], problems, *counts)


# The hard limit of the child, beyond the step limits: a minute, and twice every step's.
HARD_MINIMUM = 60.0
# A coding part runs its solution and its scaffold, each with the check's time limit and
# the grace of a Python starting torch.
CODING_SECONDS = 2 * (20.0 + 15.0 + 30.0)
_CHILD_FUNCTION = "autograd_tutor.content.check:_check_in_child"


def check_in_sandbox(root: Path, step_seconds: float = sandbox.STEP_SECONDS,
                     limit: float | None = None) -> CheckResult:
    """`check_pack` in the sandbox's child process, each step limited to `step_seconds`,
    the whole to `limit` seconds (default: HARD_MINIMUM plus twice every step's limit)."""
    if not (root / "pack.toml").is_file():
        return check_pack(root)  # says why; there is no code to run
    pack, problems = load_pack(root)
    if pack is None or problems:
        return CheckResult(pack.name if pack else root.name, list(problems))
    if limit is None:
        units = sum(len(e.steps) for e in pack.exercises) + len(pack.practice) + 1
        codings = sum(1 for e in pack.exercises if e.coding is not None)
        limit = HARD_MINIMUM + 2 * step_seconds * units + CODING_SECONDS * codings
    outcome = sandbox.run_function(_CHILD_FUNCTION, [str(root), step_seconds], limit=limit)
    if outcome.returned:
        try:
            return CheckResult.from_data(outcome.value)
        except (TypeError, KeyError, ValueError):
            outcome.problem = "foreign"
    result = CheckResult(pack.name)
    result.problems.append(Problem("pack.toml", None, None, _no_result(outcome, limit)))
    return result


def _no_result(outcome: sandbox.Outcome, limit: float) -> str:
    """Why the child sent no result, in one line."""
    last = (outcome.output.strip().splitlines() or [""])[-1][:200]
    said = f" (its last output: {last})" if last else ""
    if outcome.stopped is not None:
        return "the check was interrupted; nothing was judged"
    if outcome.killed and not outcome.ready:
        return f"the check's Python process did not start in time{said}"
    if outcome.killed:
        return (f"the pack's code ran for more than {limit:g} s in all and was stopped "
                f"(code that blocks the time limit of its steps){said}")
    if outcome.problem == "not_started":
        return f"the check's Python process could not start{said}"
    if outcome.problem == "child_error":
        return (f"the check itself failed running the pack's code: {outcome.detail} (code "
                "that changes Python itself, such as its built-in functions, can cause this)")
    return (f"the pack's code ended the check's Python process before it finished (it "
            f"{outcome.exit_text()}: os._exit, a crash, or a signal){said}")


def _check_in_child(root: str, step_seconds: float) -> dict[str, Any]:
    """In the sandbox's child: check the pack, with each step limited to `step_seconds`."""
    sandbox.STEP_SECONDS = step_seconds
    import torch  # noqa: F401  (before the clock: the limit is for the pack's code)

    sandbox.ready()
    return check_pack(Path(root)).to_data()


def check_pack(root: Path) -> CheckResult:
    if not (root / "pack.toml").is_file():
        result = CheckResult(root.name)
        message = "no pack here" if not root.exists() else "not a pack directory"
        result.problems.append(Problem("pack.toml", None, None,
                                       f"{message}: {root} holds no pack.toml"))
        return result
    pack, problems = load_pack(root)
    result = CheckResult(pack.name if pack else root.name, list(problems))
    if pack is None or problems:
        return result  # the code is not run until the pack reads cleanly
    try:
        helpers = load_helpers(pack)
    except LessonError as error:
        result.problems.append(Problem("helpers.py", None, None, str(error)))
        return result
    for exercise in pack.exercises:
        _Exercise(exercise, helpers, result).check()
        if exercise.coding is not None:
            _check_coding(exercise, exercise.coding, result)
        result.exercises += 1
    for index, template in enumerate(pack.practice, start=1):
        _check_template(template, index, helpers, result)
    return result


class _Exercise:
    """Runs one exercise like a learner's run, checking each prediction before and after."""

    def __init__(self, exercise: Exercise, helpers: dict[str, Any], result: CheckResult):
        self.exercise = exercise
        self.run = Run(exercise, helpers=helpers)
        self.result = result
        self.shown: list[str] = [exercise.title, exercise.intro]
        self.revealed: list[Value] = []

    def where(self, step: int | None = None, prediction: str | None = None) -> Where:
        return Where(self.result.problems, self.exercise.source, step, prediction)

    def check(self) -> None:
        """Step by step in the session's order: a step's code runs once its questions are
        asked (at once when it asks none), and what it shows is seen by later prompts."""
        for index, step in enumerate(self.exercise.steps, start=1):
            self.shown += [step.title, step.setup, step.code]
            # What the learner has seen when each prompt appears (nothing of this step's run).
            step_text = [step.title, step.setup, step.code]
            before: list[tuple[str, str]] = []
            for prediction in step.predictions:
                step_text.append(prediction.label)
                self.shown.append(prediction.label)
                before.append(("\n".join(self.shown), "\n".join(step_text)))
            try:
                execution = self.run.execute(step)
            except PackCodeError as error:  # ran too long, or tried to end the program
                self.where(index).problem(str(error))
                return
            except LessonError as error:
                self.where(index).problem(f"code raises where no error is expected: {error}")
                return
            for prediction, (seen, this_step) in zip(step.predictions, before, strict=True):
                self.leaks(index, prediction, seen, this_step)
                self.prediction(index, step, prediction, execution)
            self.after(index, step, execution)

    def prediction(self, index: int, step: Step, prediction: Prediction,
                   execution: Execution) -> None:
        where = self.where(index, prediction.id)
        self.result.predictions += 1
        reported = len(self.result.problems)
        if prediction.kind == "outcome":
            self.outcome(where, prediction, execution)
        elif prediction.kind == "which":
            self.which(where, prediction, execution)
        else:
            self.value(where, prediction)
        try:
            judged = self.run.judge(step, [Guess(prediction, skipped=True)], execution)
        except LessonError as error:
            if len(self.result.problems) == reported:  # not already said above
                where.problem(str(error))
            self.run.answers[prediction.id] = None
            return
        self.revealed.append(judged[0].attempt.actual)
        self.shown += [judged[0].by_hand_text, prediction.feedback,
                       *(m.explanation for m in prediction.misconceptions)]

    def value(self, where: Where, prediction: Prediction) -> None:
        try:
            parsed = parse_pack_expression(prediction.actual)
        except ExprError:
            return  # reported when the pack was read
        if not parsed.reads_code:
            where.problem(f"actual {prediction.actual!r} is a constant; it must read what "
                          "PyTorch computed (e.g. x.grad)")
        actual = self.evaluate(where, "actual", prediction.actual)
        by_hand = self.evaluate(where, "by_hand", prediction.by_hand)
        if actual is _FAILED or by_hand is _FAILED:
            return
        if prediction.choices and actual not in prediction.choices:
            where.problem(f"actual gives {format_value(actual)}, which is not one of the "
                          f"choices {', '.join(prediction.choices)}")
        tolerance = Tolerance(max(prediction.tolerance.relative, AGREEMENT.relative),
                              max(prediction.tolerance.absolute, AGREEMENT.absolute))
        if not is_close(by_hand, actual, tolerance):
            where.problem(f"by_hand gives {format_value(by_hand)} but PyTorch gives "
                          f"{format_value(actual)} (tolerance {prediction.tolerance.describe()})")
        seen: dict[str, Value] = {}
        for misconception in prediction.misconceptions:
            wrong = self.evaluate(where, f"misconception {misconception.name!r}",
                                  misconception.value)
            if wrong is _FAILED:
                continue
            if is_close(wrong, actual, prediction.tolerance):
                where.problem(f"misconception {misconception.name!r} gives the right answer "
                              f"({format_value(actual)}), so it could never be recognised")
            for other, value in seen.items():
                if is_close(wrong, value, practice.SEPARATION):
                    where.problem(f"misconceptions {other!r} and {misconception.name!r} both "
                                  f"give {format_value(wrong)}: feedback could not tell them "
                                  "apart")
            seen[misconception.name] = wrong

    def outcome(self, where: Where, prediction: Prediction, execution: Execution) -> None:
        expected = self.run.value(prediction.by_hand)
        if execution.outcome != expected:
            what = (f"raised {execution.error.type}: {execution.error.message}"
                    if execution.error else
                    f"warned {execution.warnings[0]}" if execution.warnings else "ran")
            where.problem(f"the declared outcome is {expected!r}, but the code {what}")
        elif execution.error is not None and prediction.error_match and not self.matches(
                where, prediction.error_match, execution.error.message):
            where.problem(f"error_match {prediction.error_match!r} does not match PyTorch's "
                          f"message: {execution.error.message}")
        for misconception in prediction.misconceptions:
            if self.run.misconception_value(prediction, misconception) == execution.outcome:
                where.problem(f"misconception {misconception.name!r} gives the right outcome")

    def which(self, where: Where, prediction: Prediction, execution: Execution) -> None:
        error = execution.error
        if error is None:
            where.problem("error_choices are given, but the code raises no error to choose")
        elif not self.matches(where, prediction.error_match, error.message):
            where.problem(f"the error choice {self.run.value(prediction.by_hand)!r} does not "
                          f"match the real error (error_match {prediction.error_match!r} vs "
                          f"{error.message!r})")

    def matches(self, where: Where, pattern: str, message: str) -> bool:
        """Whether error_match matches; True (no second problem) when it can't be used."""
        try:
            return error_matches(pattern, message)
        except LessonError as error:
            where.problem(str(error))
            return True

    def after(self, index: int, step: Step, execution: Execution) -> None:
        where = self.where(index)
        for text, what in ((step.explanation, "explanation"),):
            try:
                self.shown.append(self.run.render(text))
            except (LessonError, KeyError) as error:
                where.problem(f"{what}: a placeholder fails: {error}")
        for spec in step.figures:
            for name, text in spec.args:
                self.evaluate(where, f"figure {spec.name!r} argument {name!r}", text)
            if spec.kind not in FIGURE_KINDS:
                where.problem(f"figure kind {spec.kind!r} is unknown")
        self.shown += execution.output + execution.warnings
        if execution.error is not None:
            self.shown.append(execution.error.message)

    def evaluate(self, where: Where, what: str, text: str) -> Any:
        try:
            return self.run.value(text)
        except LessonError as error:
            where.problem(f"{what}: {error}")
            return _FAILED

    def leaks(self, index: int, prediction: Prediction, seen: str, this_step: str) -> None:
        """Did the text shown before this prediction's prompt give its answer away?"""
        if prediction.kind != "value":
            return
        try:
            answer = self.run.value(prediction.actual)
        except LessonError:
            return  # reported with the prediction
        if not isinstance(answer, float) or not _telling(answer):
            return
        # An earlier reveal may show the same number legitimately; then only this step counts.
        earlier = any(isinstance(v, float) and is_close(v, answer) for v in self.revealed)
        text = this_step if earlier else seen
        for spelling in _spellings(answer):
            if re.search(rf"(?<![\w.]){re.escape(spelling)}(?![\w]|\.\d)", text):
                self.where(index, prediction.id).problem(
                    f"the text shown before this prediction contains its answer ({spelling})")
                return


_FAILED = object()


def _check_coding(exercise: Exercise, coding: Coding, result: CheckResult) -> None:
    """A coding part must judge: its solution passes its own check, and its untouched
    scaffold does not."""
    from autograd_tutor.engine import checker

    where = Where(result.problems, exercise.source)
    name = exercise.key
    solution, scaffold = coding.solution.name, coding.scaffold.name
    try:
        report, finished = checker.check_solution(coding, name)
        why = "; ".join(f"{d.title}: {d.explanation}" for d in report.diagnoses)
        if not finished:
            where.problem(f"[coding] solution {solution!r} does not run to its end: {why}")
            return
        reference = checker.run_reference(coding)
        if not report.passed:
            where.problem(f"[coding] solution {solution!r} fails its own check: {why}")
        report = checker.check_file(coding.scaffold, coding, name=name, reference=reference)
        if report.passed:
            where.problem(f"[coding] the untouched scaffold {scaffold!r} passes the check: "
                          "it can't tell a finished file from an unfinished one")
    except checker.PackModuleError as error:
        where.problem(f"[coding] {error}")


def _telling(value: float) -> bool:
    """Two or more significant digits: a number that gives itself away when printed.
    Single digits (0, 1, -1, 6) occur in code and prose for other reasons."""
    return math.isfinite(value) and (abs(value) >= 10 or not float(value).is_integer())


def _spellings(value: float) -> list[str]:
    """Ways the answer could be printed: the tool's own format and common roundings that
    still carry two significant digits."""
    found = {format_value(value), f"{value:.3g}", f"{value:.4g}", f"{value:.5g}"}
    if float(value).is_integer():
        found |= {f"{value:.1f}", f"{value:.2f}"}
    else:
        found |= {format_value(value, 2), format_value(value, 3)}
    return sorted(text for text in found
                  if len(re.sub(r"\D", "", text).lstrip("0")) >= 2 or text == format_value(value))


def _check_template(template: Any, index: int, helpers: dict[str, Any],
                    result: CheckResult) -> None:
    result.templates += 1
    rng = Random(TEMPLATE_SEED)
    try:
        for _ in range(TEMPLATE_TRIES):
            if practice.draw_template(template, rng, 1, helpers) is not None:
                return
    except PackCodeError as error:
        result.problems.append(Problem("pack.toml", index, None,
                                       f"practice template for {template.concept!r}: {error}"))
        return
    # Why not, said once, for the draw of every parameter's low bound.
    reason = practice.fair(practice.fill_template(template.step, {
        name: low for name, low, _, _ in template.params}), helpers)
    why = f" (for example: {reason})" if reason else ""
    result.problems.append(Problem("pack.toml", index, None,
                                   f"practice template for {template.concept!r} could not "
                                   f"draw a fair problem in {TEMPLATE_TRIES} tries{why}"))


def install(source: Path, target: Path) -> None:
    """Copy a checked pack into place: a full copy first, then one rename over the name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        shutil.copytree(source, staging / "pack", symlinks=False,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        old = None
        if target.exists():
            old = staging / "old"
            target.rename(old)
        (staging / "pack").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
