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

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from autograd_tutor.content.leaks import Givens, Shown, find, read_code
from autograd_tutor.content.packs import FIGURE_KINDS, load_pack
from autograd_tutor.content.schema import Problem, Where
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
    _prompts_tell_nothing(pack.exercises, result)
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
        self.shown: list[Shown] = [Shown("the exercise's title", exercise.title, 0),
                                   Shown("the intro", exercise.intro, 0)]
        self.revealed: list[Value] = []
        self.literals: set[float] = set()
        self.bound: set[tuple[str, float]] = set()

    def where(self, step: int | None = None, prediction: str | None = None) -> Where:
        return Where(self.result.problems, self.exercise.source, step, prediction)

    def check(self) -> None:
        """Step by step in the session's order: a step's code runs once its questions are
        asked (at once when it asks none), and what it shows is seen by later prompts."""
        for index, step in enumerate(self.exercise.steps, start=1):
            prose, literals, bound = read_code(step.code)
            self.literals |= literals
            self.bound |= bound
            self.shown += [Shown(f"step {index}'s title", step.title, index),
                           Shown(f"step {index}'s setup", step.setup, index),
                           Shown(f"step {index}'s code", prose, index)]
            # What the learner has seen when each prompt appears (nothing of this step's run).
            before: list[list[Shown]] = []
            for prediction in step.predictions:  # its own label is in its prompt
                self.shown.append(Shown(f"the label of {prediction.id!r}", prediction.label,
                                        index))
                before.append(list(self.shown))
            try:
                execution = self.run.execute(step)
            except LessonError as error:
                self.where(index).problem(f"code raises where no error is expected: {error}")
                return
            earlier = list(self.revealed)  # this step's answers are revealed after it
            for prediction, seen in zip(step.predictions, before, strict=True):
                answer = self.prediction(index, step, prediction, execution)
                if answer is not _FAILED:
                    self.leaks(index, prediction, seen, answer, earlier)
            self.after(index, step, execution)

    def prediction(self, index: int, step: Step, prediction: Prediction,
                   execution: Execution) -> Any:
        """Check one prediction; its answer (the pack's declared one for an outcome or which
        error, PyTorch's for a value), or _FAILED."""
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
            return _FAILED
        attempt = judged[0].attempt
        self.revealed.append(attempt.actual)
        self.reveal(index, judged[0].by_hand_text, prediction.feedback,
                    *(m.explanation for m in prediction.misconceptions))
        return attempt.actual if prediction.kind == "value" else attempt.by_hand

    def reveal(self, index: int, *texts: str) -> None:
        self.shown += [Shown(f"step {index}'s reveal", text, index, reveal=True)
                       for text in texts if text]

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
            return  # nothing to choose; the outcome's check says whether one was declared
        if not re.search(prediction.error_match, error.message):
            where.problem(f"the error choice {self.run.value(prediction.by_hand)!r} does not "
                          f"match the real error (error_match {prediction.error_match!r} vs "
                          f"{error.message!r})")

    def after(self, index: int, step: Step, execution: Execution) -> None:
        where = self.where(index)
        for text, what in ((step.explanation, "explanation"),):
            try:
                self.reveal(index, self.run.render(text))
            except (LessonError, KeyError) as error:
                where.problem(f"{what}: a placeholder fails: {error}")
        for spec in step.figures:
            for name, text in spec.args:
                self.evaluate(where, f"figure {spec.name!r} argument {name!r}", text)
            if spec.kind not in FIGURE_KINDS:
                where.problem(f"figure kind {spec.kind!r} is unknown")
        self.reveal(index, *execution.output, *execution.warnings)
        if execution.error is not None:
            self.reveal(index, execution.error.message)

    def evaluate(self, where: Where, what: str, text: str) -> Any:
        try:
            return self.run.value(text)
        except LessonError as error:
            where.problem(f"{what}: {error}")
            return _FAILED

    def leaks(self, index: int, prediction: Prediction, seen: list[Shown], answer: Value,
              earlier: list[Value]) -> None:
        """Did the text shown before this prediction's prompt give its answer away?"""
        givens = Givens(frozenset(self.literals), frozenset(self.bound))
        leak = find(answer, prediction.kind, prediction.label, prediction.id, seen, index,
                    earlier, givens)
        if leak is not None:
            self.where(index, prediction.id).problem(leak.message())


_FAILED = object()


def _prompts_tell_nothing(exercises: Sequence[Exercise], result: CheckResult) -> None:
    """The prompts a learner sees must not depend on what PyTorch does.

    Within a step the engine asks every question before the code runs, and "which error?"
    only after the learner's own `error` (runner.asked), so a step's prompts follow from the
    learner's answers. What is left is the pack's own choice of questions, which a learner
    comes to read across its exercises:
    - "which error?" follows a predicted error at every outcome question or at none: offered
      only where the code raises, its coming says the code raised;
    - two or more outcome questions may not all have the same answer: then being asked says
      what the code does.
    """
    outcomes = [(exercise, index, prediction)
                for exercise in exercises
                for index, step in enumerate(exercise.steps, start=1)
                for prediction in step.predictions if prediction.kind == "outcome"]
    followed = {prediction.id: any(p.kind == "which" and p.code == prediction.code
                                   and p.id == f"{prediction.id}:which"
                                   for p in exercise.steps[index - 1].predictions)
                for exercise, index, prediction in outcomes}
    if any(followed.values()):
        example = next((e, p) for e, _, p in outcomes if followed[p.id])
        for exercise, index, prediction in outcomes:
            if not followed[prediction.id]:
                Where(result.problems, exercise.source, index, prediction.id).problem(
                    f"a learner who predicts error is asked which error at "
                    f"{example[0].key} {example[1].id!r} but not here, so whether that "
                    "question comes tells what the code does; give this outcome "
                    "error_choices too")
    answers = {prediction.by_hand.strip('"') for _, _, prediction in outcomes}
    if len(outcomes) >= 2 and len(answers) == 1:
        exercise, index, prediction = outcomes[0]
        Where(result.problems, exercise.source, index, prediction.id).problem(
            f"all {len(outcomes)} outcome questions of this pack have the answer "
            f"{answers.pop()!r}, so being asked tells it; ask one where the code does "
            "something else")


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
