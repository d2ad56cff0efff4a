"""`pack check`: a pack is sound only when PyTorch agrees with every answer it declares.

Reading the pack (content.packs) finds problems of form: TOML, fields, names, expression
syntax. Then every exercise runs through the engine's runner, step by step, as a learner's
run would, and each prediction is checked:

- `actual` reads what the code computed (not a constant) and evaluates;
- `by_hand` agrees with it within the tolerance (the two columns check each other);
- every misconception's value differs from the right answer and from the others;
- an outcome's declared result is what PyTorch really did, and its error_match matches;
- `actual` gives what its kind asks for (a tensor, a shape, a flag, a dtype, a grad_fn);
- nothing shown before the prediction's prompt contains its answer, and a step's hidden
  `prepare` code prints nothing;
- no {placeholder} could mean both a prediction's answer and an expression.

Practice templates and parameterised steps must agree with PyTorch at 20 draws of their
params and draw a fair problem within 200 tries; a coding part's solution must pass its own
check and its untouched scaffold must not. Each problem is reported as
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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from autograd_tutor.content.leaks import Givens, Shown, find, read_code
from autograd_tutor.content.packs import FIGURE_KINDS, builtin_packs, load_pack, redefinitions
from autograd_tutor.content.schema import Problem, Where, visible
from autograd_tutor.engine import practice, sandbox
from autograd_tutor.engine.answers import (
    flat,
    format_value,
    is_close,
    shape_of,
    shape_text,
)
from autograd_tutor.engine.expressions import ExprError, parse_pack_expression, placeholders
from autograd_tutor.engine.model import (
    Coding,
    Exercise,
    Kind,
    Prediction,
    Step,
    Template,
    Tolerance,
    Value,
)
from autograd_tutor.engine.runner import (
    Execution,
    Guess,
    LessonError,
    PackCodeError,
    Run,
    as_value,
    error_matches,
    is_expression,
    load_helpers,
)

AGREEMENT = practice.AGREEMENT
TEMPLATE_TRIES = 200
# Draws of a template's params at which its by_hand must agree with PyTorch.
DRAWS = 20
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
        counts = [(self.exercises, "exercise"), (self.predictions, "prediction"),
                  (self.templates, "practice template")]
        return ", ".join(f"{n} {what}{'s' * (n != 1)}" for n, what in counts) + \
            " checked with PyTorch"

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
        return CheckResult(visible(pack.name if pack else root.name), list(problems))
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
    result = CheckResult(visible(pack.name))
    result.problems.append(Problem("pack.toml", None, None,
                                   visible(_no_result(outcome, limit))))
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
    _prompts_tell_nothing(pack.exercises, result)
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
        ids = set(self.exercise.prediction_ids)
        for index, step in enumerate(self.exercise.steps, start=1):
            ambiguous_placeholders(step, ids, self.where(index))
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
            except PackCodeError as error:  # ran too long, or tried to end the program
                self.where(index).problem(str(error))
                return
            except LessonError as error:
                self.where(index).problem(f"code raises where no error is expected: {error}")
                return
            if execution.hidden_output:
                self.where(index).problem(
                    "the hidden prepare code prints or warns, and the learner would never see "
                    f"it: {execution.hidden_output[0]!r}")
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
        if prediction.kind == Kind.OUTCOME:
            self.outcome(where, prediction, execution)
        elif prediction.kind == Kind.WHICH:
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
        actual = self.evaluate(where, "actual", prediction.actual, prediction.kind)
        by_hand = self.evaluate(where, "by_hand", prediction.by_hand, prediction.kind)
        if actual is _FAILED or by_hand is _FAILED:
            return
        if isinstance(actual, list) and not prediction.tensor:
            where.problem(f"actual gives a tensor of shape {shape_text(shape_of(actual) or ())}"
                          ", which a learner can type only in a pack of format = 2")
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
                                  misconception.value, prediction.kind)
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
            return  # nothing to choose; the outcome's check says whether one was declared
        if not self.matches(where, prediction.error_match, error.message):
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

    def evaluate(self, where: Where, what: str, text: str, kind: Kind | None = None) -> Any:
        """The expression's value; with a kind, as a value of that kind (a shape as "(3,)")."""
        try:
            value = self.run.value(text)
            return value if kind is None else as_value(value, text, kind)
        except LessonError as error:
            hint = ""
            if kind is not None and what == "actual":
                hint = ("; the kind follows from what actual reads (.shape, .requires_grad, "
                        ".is_leaf, .dtype, .grad_fn), or say it with kind = \"...\"")
            where.problem(f"{what}: {error}{hint}")
            return _FAILED

    def leaks(self, index: int, prediction: Prediction, seen: list[Shown], answer: Value,
              earlier: list[Value]) -> None:
        """Did the text shown before this prediction's prompt give its answer away?"""
        if isinstance(answer, list):
            self.tensor_leaks(index, prediction, answer, seen, earlier)
            return
        givens = Givens(frozenset(self.literals), frozenset(self.bound))
        leak = find(answer, prediction.kind, prediction.label, prediction.id, seen, index,
                    earlier, givens)
        if leak is not None:
            self.where(index, prediction.id).problem(leak.message())

    def tensor_leaks(self, index: int, prediction: Prediction, answer: list[Any],
                     seen: list[Shown], earlier_answers: list[Value]) -> None:
        """A tensor's elements, in order, among the numbers of the shown text (however it
        is printed: [2, 0, 20], tensor([ 2.,  0., 20.]), 2 0 20)."""
        elements = flat(answer)
        if len(elements) < 2 or not any(_telling(v) for v in elements if isinstance(v, float)):
            return
        earlier = any(isinstance(v, list) and is_close(v, answer) for v in earlier_answers)
        text = "\n".join(piece.text for piece in seen if not earlier or piece.step == index)
        numbers = [float(n) for n in _NUMBER.findall(text)]
        width = len(elements)
        for start in range(len(numbers) - width + 1):
            if all(is_close(n, e) for n, e in zip(numbers[start:start + width], elements,
                                                  strict=True)):
                self.where(index, prediction.id).problem(
                    "the text shown before this prediction contains its answer "
                    f"({format_value(answer)})")
                return


_FAILED = object()


def _check_coding(exercise: Exercise, coding: Coding, result: CheckResult) -> None:
    """A coding part must judge: its solution passes its own check, and its untouched
    scaffold does not.

    The two files run at the same time, each in a sandbox child of its own (most of either
    run is a Python starting and importing PyTorch, which the second core does meanwhile);
    the scaffold's run is judged once the solution's, its reference, is in."""
    from autograd_tutor.engine import checker

    where = Where(result.problems, exercise.source)
    name = exercise.key
    solution, scaffold = coding.solution.name, coding.scaffold.name
    # Its own sandbox child, started from a thread: it is waited for however this ends.
    with ThreadPoolExecutor(max_workers=1) as pool:
        scaffold_run = pool.submit(checker._run_child, coding.scaffold.resolve(),
                                   checker.DEFAULT_TIMEOUT, checker.child_spec(coding))
        try:
            report, finished = checker.check_solution(coding, name)
            why = "; ".join(f"{d.title}: {d.explanation}" for d in report.diagnoses)
            if not finished:
                where.problem(f"[coding] solution {solution!r} does not run to its end: {why}")
                return
            reference = checker.run_reference(coding)
            if not report.passed:
                where.problem(f"[coding] solution {solution!r} fails its own check: {why}")
            report = checker.check_file(coding.scaffold, coding, name=name, reference=reference,
                                        ran=scaffold_run.result())
            if report.passed:
                where.problem(f"[coding] the untouched scaffold {scaffold!r} passes the check: "
                              "it can't tell a finished file from an unfinished one")
        except checker.PackModuleError as error:
            where.problem(f"[coding] {error}")


def _telling(value: float) -> bool:
    """Two or more significant digits: a tensor element that gives itself away when printed
    (single digits such as 0, 1, -1 occur in code and prose for other reasons)."""
    return math.isfinite(value) and (abs(value) >= 10 or not float(value).is_integer())
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def ambiguous_placeholders(step: Step, ids: set[str], where: Where) -> None:
    """A {placeholder} that is both a prediction's ID and an expression could mean the
    learner's earlier answer or the value now (they differ once the code changes it)."""
    texts = [("explanation", step.explanation),
             *((f"by_hand_text of {p.id}", p.by_hand_text) for p in step.predictions)]
    for what, text in texts:
        try:
            found = placeholders(text)
        except ExprError:
            continue  # reported when the pack was read
        for name, _ in found:
            if name in ids and is_expression(name):
                where.problem(f"placeholder {{{name}}} in {what} is both a prediction ID and "
                              f"an expression: write {{answer(\"{name}\")}} for the answer, or "
                              "an expression that names no prediction")


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


def _check_template(template: Template, index: int, helpers: dict[str, Any],
                    result: CheckResult) -> None:
    """A template (or parameterised step) must agree with PyTorch at every one of DRAWS
    draws of its params, so that a by_hand right by coincidence at one point is caught, and
    must be able to draw a fair problem (one whose misconceptions all differ)."""
    result.templates += 1
    file, _, step = template.origin.rpartition(": step ")
    where = (Where(result.problems, file, int(step)) if file and step.isdigit()
             else Where(result.problems, "pack.toml", index))
    what = ("practice template" if not template.origin else "parameterised step") + \
        f" for {template.concept!r}"
    rng = Random(TEMPLATE_SEED)
    try:
        for _ in range(DRAWS):
            values = practice.draw_values(template.params, rng)
            found = practice.disagreement(practice.fill_step(template, values, 1), helpers)
            if found is not None:
                prediction, why = found
                shown = ", ".join(f"{name} = {value}" for name, value in values.items())
                # The drawn problem's IDs are numbered (p1.ID): name the step's own.
                where.at(prediction=prediction and prediction.removeprefix("p1.")).problem(
                    f"{what}, drawn with {shown}: {why}; it must agree at every draw")
                return
        for _ in range(TEMPLATE_TRIES):
            if practice.draw_template(template, rng, 1, helpers) is not None:
                return
    except PackCodeError as error:
        where.problem(f"{what}: {error}")
        return
    # Why not, said once, for the draw of every parameter's low bound.
    low = practice.spelled(template.params, {name: low for name, low, _, _ in template.params})
    reason = practice.fair(practice.fill_step(template, low, 1), helpers)
    why = f" (for example: {reason})" if reason else ""
    where.problem(f"{what} could not draw a fair problem in {TEMPLATE_TRIES} tries{why}")
