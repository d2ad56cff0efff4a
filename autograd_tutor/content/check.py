"""`pack check`: a pack is sound only when PyTorch agrees with every answer it declares.

Reading the pack (content.packs) finds problems of form: TOML, fields, names, expression
syntax. Then every exercise runs through the engine's runner, step by step, as a learner's
run would, and each prediction is checked:

- `actual` reads what the code computed (not a constant) and evaluates;
- `by_hand` agrees with it within the tolerance (the two columns check each other);
- every misconception's value differs from the right answer and from the others;
- an outcome's declared result is what PyTorch really did, and its error_match matches;
- nothing shown before the prediction's prompt contains its answer.

Practice templates must draw a fair problem within 200 tries; coding modes must find their
data. Each problem is reported as `FILE: step N: prediction ID: what is wrong`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from autograd_tutor.content.packs import FIGURE_KINDS, builtin_packs, load_pack, redefinitions
from autograd_tutor.content.schema import Problem, Where, visible
from autograd_tutor.engine import practice
from autograd_tutor.engine.answers import format_value, is_close
from autograd_tutor.engine.expressions import ExprError, parse_pack_expression
from autograd_tutor.engine.model import Exercise, Prediction, Step, Tolerance, Value
from autograd_tutor.engine.runner import Execution, Guess, LessonError, Run, load_helpers

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


def check_pack(root: Path) -> CheckResult:
    if not (root / "pack.toml").is_file():
        result = CheckResult(visible(root.name))
        message = "no pack here" if not root.exists() else "not a pack directory"
        result.problems.append(Problem("pack.toml", None, None,
                                       visible(f"{message}: {root} holds no pack.toml")))
        return result
    pack, problems = load_pack(root)
    if pack is not None:  # the catalogue's names were checked as the pack was read
        problems += [Problem("pack.toml", None, None, message)
                     for message in redefinitions(pack, builtin_packs(), catalogue=False)]
    # A name that is not a valid one is still shown, but never as escape codes.
    result = CheckResult(visible(pack.name if pack else root.name), list(problems))
    if pack is None or problems:
        return result  # the code is not run until the pack reads cleanly
    try:
        helpers = load_helpers(pack)
    except LessonError as error:
        result.problems.append(Problem("helpers.py", None, None, str(error)))
        return result
    for exercise in pack.exercises:
        _Exercise(exercise, helpers, result).check()
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
        elif execution.error is not None and prediction.error_match and not re.search(
                prediction.error_match, execution.error.message):
            where.problem(f"error_match {prediction.error_match!r} does not match PyTorch's "
                          f"message: {execution.error.message}")
        for misconception in prediction.misconceptions:
            if self.run.misconception_value(prediction, misconception) == execution.outcome:
                where.problem(f"misconception {misconception.name!r} gives the right outcome")

    def which(self, where: Where, prediction: Prediction, execution: Execution) -> None:
        error = execution.error
        if error is None:
            where.problem("error_choices are given, but the code raises no error to choose")
        elif not re.search(prediction.error_match, error.message):
            where.problem(f"the error choice {self.run.value(prediction.by_hand)!r} does not "
                          f"match the real error (error_match {prediction.error_match!r} vs "
                          f"{error.message!r})")

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
    for _ in range(TEMPLATE_TRIES):
        if practice.draw_template(template, rng, 1, helpers) is not None:
            return
    # Why not, said once, for the draw of every parameter's low bound.
    reason = practice.fair(practice.fill_template(template.step, {
        name: low for name, low, _, _ in template.params}), helpers)
    why = f" (for example: {reason})" if reason else ""
    result.problems.append(Problem("pack.toml", index, None,
                                   f"practice template for {template.concept!r} could not "
                                   f"draw a fair problem in {TEMPLATE_TRIES} tries{why}"))
