"""Fresh practice problems, drawn from the packs' templates and parameterised steps.

A problem is written once, as pack data: a `[[practice]]` template or an exercise step with
`params`, whose `{name}` placeholders are drawn afresh (whole numbers in [low, high], or
multiples of 0.5). This module only draws, fills and judges fairness: each draw runs with
PyTorch, and a draw where `by_hand` disagrees with PyTorch, a misconception gives the right
answer, or two misconceptions coincide, is drawn again. The same seed gives the same
problems. The engine knows no lesson: the concepts are those of the templates it is given.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from random import Random
from typing import TYPE_CHECKING, Any

from msgspec import Struct
from msgspec.structs import replace

from autograd_tutor.engine.answers import format_value, is_close
from autograd_tutor.engine.model import Exercise, Prediction, Step, Template, Tolerance, Value

if TYPE_CHECKING:
    from autograd_tutor.engine.runner import Run

MAX_COUNT = 50
# A wrong model this close to the right answer could not be told apart from it.
SEPARATION = Tolerance(relative=1e-3, absolute=1e-3)
# by_hand is float64 arithmetic, PyTorch float32: "exact" allows float32's rounding.
AGREEMENT = Tolerance(relative=1e-5, absolute=1e-6)
MAX_TRIES = 200
# Two lines of code this similar (numbers masked) do the same thing: `h.retain_grad()` and
# `z.retain_grad()`.
SIMILAR_CODE = 0.85

Helpers = Mapping[str, Any]


def concepts(templates: Sequence[Template] = (),
             described: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every concept practice can draw problems for (described from the catalogue), in the
    order their templates come."""
    found: dict[str, str] = {}
    for template in templates:
        found.setdefault(template.concept, (described or {}).get(template.concept, ""))
    return found


def generate(concept: str | None, count: int, seed: int,
             templates: Sequence[Template] = (), helpers: Helpers | None = None) -> Exercise:
    """`count` fresh problems for one concept, or a mix of all of them when concept is None.

    Problems are drawn one after another from one stream, so a larger count only appends:
    the first problems of `generate(c, 8, s)` are those of `generate(c, 5, s)`.
    """
    known = concepts(templates)
    if concept is not None:
        _check(concept, known)
    elif not known:
        raise ValueError("no practice templates are installed")
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_COUNT}, not {count}")
    rng = Random(seed)
    names = _stream(rng, concept, known)
    steps = [_problem(rng, next(names), n, templates, helpers) for n in range(1, count + 1)]
    title = "Practice" if concept is None else f"Practice: {concept}"
    return _exercise(title, steps, seed)


def generate_mix(chosen: Sequence[str], seed: int, templates: Sequence[Template] = (),
                 helpers: Helpers | None = None) -> Exercise:
    """One fresh problem for each named concept, in that order (the review queue's session)."""
    if not chosen:
        raise ValueError("name at least one concept")
    known = concepts(templates)
    for name in chosen:
        _check(name, known)
    rng = Random(seed)
    steps = [_problem(rng, name, n, templates, helpers) for n, name in enumerate(chosen, start=1)]
    return _exercise("Practice: " + ", ".join(dict.fromkeys(chosen)), steps, seed)


def aimed(concept: str, misconception: str, seed: int, templates: Sequence[Template] = (),
          helpers: Helpers | None = None, later: Sequence[str] = (),
          earlier: Sequence[str] = (), tries: int = 40,
          later_names: Collection[str] = ()) -> Exercise | None:
    """One fresh problem aimed at a mistake just made, or None when there is none to give.

    Only templates of `concept` that name `misconception` in a prediction of that concept
    are drawn from, and only a draw where that misconception's answer differs from the right
    one is kept (every draw is fair, `fair`): under the same slip the learner would get it
    wrong again, so the problem tests the mistake. A template whose code shows what one of
    the exercise's `later` steps adds to the `earlier` ones (its own step included) is never
    used: it would give that step away. Nor is one that names a mistake only a later step
    names (`later_names`): whatever its code, it is about what that step teaches.
    """
    candidates = [t for t in templates if t.concept == concept
                  and _names(t, misconception) and not _repeats(t.step.code, later, earlier)
                  and not set(later_names) & {m.name for p in t.step.predictions
                                         for m in p.misconceptions}]
    if not candidates:
        return None
    rng = Random(seed)
    for _ in range(tries):
        template = rng.choice(candidates)
        step = draw_template(template, rng, 1, helpers)
        if step is not None and _tests(step, misconception, helpers):
            return _exercise(f"Practice: {concept}", [step], seed)
    return None


def _names(template: Template, misconception: str) -> bool:
    return any(m.name == misconception for p in template.step.predictions
               if p.concept == template.concept for m in p.misconceptions)


def _tests(step: Step, misconception: str, helpers: Helpers | None) -> bool:
    """Whether the misconception's answer differs from the right one in this drawn problem."""
    from autograd_tutor.engine.runner import LessonError, Run

    run = Run(_exercise("", [step], 0), helpers=helpers or {})
    try:
        execution = run.execute(step)
        for prediction in step.predictions:
            if prediction.kind == "which":
                continue
            right = execution.outcome if prediction.kind == "outcome" else (
                run.value(prediction.actual))
            for wrong in prediction.misconceptions:
                if wrong.name == misconception and not is_close(
                        run.misconception_value(prediction, wrong), right, _apart(prediction)):
                    return True
    except LessonError:
        return False
    return False


def _same(a: Value, b: Value) -> bool:
    return is_close(a, b, SEPARATION)


def _apart(prediction: Prediction) -> Tolerance:
    """How far a wrong model's answer must be from the right one to be told apart: beyond
    the prediction's own tolerance, and beyond SEPARATION."""
    return Tolerance(max(prediction.tolerance.relative, SEPARATION.relative),
                     max(prediction.tolerance.absolute, SEPARATION.absolute))


NUMBER = re.compile(r"\{\w+\}(?:\.\d+)?|(?<![\w.])\d+(?:\.\d*)?(?:e-?\d+)?")


def _lines(code: str) -> set[str]:
    """Code's lines with numbers (and {param} placeholders) masked, comments and blank lines
    dropped, spaces collapsed: what is left is what each line does."""
    lines = (" ".join(NUMBER.sub("#", line.split("#")[0]).split()) for line in
             code.splitlines())
    return {line for line in lines if line}


def _repeats(code: str, later: Sequence[str], earlier: Sequence[str] = ()) -> bool:
    """Whether `code` shows, numbers and names of a letter aside, what one of the `later`
    steps is about: at least half of that step's new lines (those no earlier step showed),
    each matched by a line of `code` that is nearly the same."""
    mine = _lines(code)
    seen = set().union(*map(_lines, earlier)) if earlier else set()
    for other in later:
        new = _lines(other) - seen
        if not new:
            continue
        found = sum(1 for line in new if line in mine or any(
            difflib.SequenceMatcher(None, line, candidate, autojunk=False).ratio()
            >= SIMILAR_CODE for candidate in mine))
        if found * 2 >= len(new):
            return True
        seen |= _lines(other)
    return False


def _check(concept: str, known: Mapping[str, str]) -> None:
    if concept not in known:
        raise ValueError(f"unknown concept {concept!r}; choose one of: {', '.join(known)}")


def _stream(rng: Random, concept: str | None, known: Mapping[str, str]) -> Iterator[str]:
    """Concept names, one per problem: the given one, or shuffled rounds of all of them so
    that a mix covers every concept. Shuffled lazily, to keep counts prefix-stable."""
    while True:
        if concept is not None:
            yield concept
            continue
        names = list(known)
        rng.shuffle(names)
        yield from names


def _exercise(title: str, steps: list[Step], seed: int) -> Exercise:
    count = len(steps)
    return Exercise(
        pack="practice",
        number=seed,
        title=title,
        level="Practice",
        intro=(
            f"{count} fresh problem{'s' if count > 1 else ''} (seed {seed}). Each one runs "
            "real PyTorch after you predict; the same seed gives the same problems."
        ),
        steps=tuple(steps),
    )


def _problem(rng: Random, concept: str, n: int, templates: Sequence[Template] = (),
             helpers: Helpers | None = None) -> Step:
    """One problem, from one of the concept's templates chosen at random."""
    sources: list[Callable[[Random, int], Step | None]] = [
        functools.partial(draw_template, template, helpers=helpers)
        for template in templates if template.concept == concept]
    for _ in range(MAX_TRIES):
        build = sources[0] if len(sources) == 1 else rng.choice(sources)
        step = build(rng, n)
        if step is not None:
            return step
    raise RuntimeError(f"could not draw a fair {concept} problem")  # pragma: no cover


# ---------------------------------------------------------------------------------------
# Drawing: {param} placeholders drawn afresh, each draw checked by running PyTorch


def _draw(rng: Random, low: float, high: float, halves: bool) -> float:
    if halves:
        return rng.randint(int(math.ceil(2 * low)), int(math.floor(2 * high))) / 2
    return float(rng.randint(int(math.ceil(low)), int(math.floor(high))))


Params = Sequence[tuple[str, float, float, bool]]


def draw_values(params: Params, rng: Random) -> dict[str, str]:
    """One value for each parameter, as it is written into the template's text."""
    return spelled(params, {name: _draw(rng, low, high, halves)
                            for name, low, high, halves in params})


def spelled(params: Params, values: Mapping[str, float]) -> dict[str, str]:
    """Each value as the template's text shows it: a whole-number parameter without
    decimals (so `{a}.0` is a float literal), a multiple of 0.5 always with one (2.0, -1.5),
    so that it is a float literal in code as it is."""
    halves = {name: half for name, _, _, half in params}
    return {name: f"{value:.1f}" if halves.get(name) else format_value(value)
            for name, value in values.items()}


def fill_template(value: Any, values: Mapping[str, str]) -> Any:
    """Every text of a template with {name} replaced by its value (other braces stay)."""
    if isinstance(value, str):
        for name, text in values.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, tuple | list):
        return type(value)(fill_template(item, values) for item in value)
    if isinstance(value, dict):  # a template's raw TOML table
        return {key: fill_template(item, values) for key, item in value.items()}
    if isinstance(value, Struct):
        changes = {name: fill_template(getattr(value, name), values)
                   for name in value.__struct_fields__
                   if isinstance(getattr(value, name), str | tuple | Struct)
                   and name not in ("params", "at")}
        return replace(value, **changes)
    return value


def fill_step(template: Template, values: Mapping[str, str], n: int) -> Step:
    """The template's step with these values, titled and numbered as problem n."""
    step = fill_template(template.step, values)
    predictions = tuple(replace(p, id=f"p{n}.{p.id}") for p in step.predictions)
    return replace(step, title=f"Problem {n}: {template.concept}", predictions=predictions,
                   pack=template.pack, params=(), at=())


def draw_template(template: Template, rng: Random, n: int,
                  helpers: Helpers | None = None) -> Step | None:
    """One problem from a template, or None when this draw is not a fair question: an
    expression fails, by_hand disagrees with PyTorch, a misconception gives the right
    answer, or two coincide."""
    step = fill_step(template, draw_values(template.params, rng), n)
    return step if fair(step, helpers) is None else None


def fair(step: Step, helpers: Helpers | None = None) -> str | None:
    """Why a drawn problem is not fair to ask (None when it is): PyTorch disagrees with its
    own answers (`disagreement`), a misconception gives the right answer, or two coincide."""
    found = _examine(step, helpers, misconceptions=True)
    return None if found is None else " ".join(filter(None, (
        found[0] and f"prediction {found[0]}:", found[1])))


def disagreement(step: Step, helpers: Helpers | None = None) -> tuple[str | None, str] | None:
    """Where and why PyTorch and the step's own answers disagree (None when they agree): a
    `by_hand` beyond its tolerance, a declared outcome that is not what happened, or code
    that fails. Where is the prediction's ID (None for the code)."""
    return _examine(step, helpers, misconceptions=False)


def _examine(step: Step, helpers: Helpers | None,
             misconceptions: bool) -> tuple[str | None, str] | None:
    """A template whose code breaks out of its bounds (PackCodeError: a time limit, an
    exit) is not retried: the error goes to the caller, naming the pack.

    The drawn problem (its code and every expression read from it) runs as one bounded
    block, under one step's time limit: the blocks the run opens inside it are nested, so a
    draw sets the alarm and looks for processes the code started once, not once for each
    expression (that look, twice per block, was half of `pack check`'s own time)."""
    from autograd_tutor.engine import sandbox
    from autograd_tutor.engine.runner import PackCodeError, Run

    run = Run(_exercise("", [step], 0), helpers=helpers or {})
    run.loader.get()  # PyTorch loads before the clock starts: the limit is the pack's code's
    try:
        with sandbox.bounded(sandbox.STEP_SECONDS, f"the code of step {step.title!r}"):
            return _judged(run, step, misconceptions)
    except sandbox.Escaped as escaped:
        raise PackCodeError(str(escaped), step.pack or run.exercise.pack) from None


def _judged(run: Run, step: Step, misconceptions: bool) -> tuple[str | None, str] | None:
    """_examine's work, inside its bounded block."""
    from autograd_tutor.engine.runner import LessonError, PackCodeError

    try:
        execution = run.execute(step)
        for prediction in step.predictions:
            if prediction.kind == "which":
                continue
            if prediction.kind == "outcome":
                right: Value = execution.outcome
                declared = run.value(prediction.by_hand)
                if declared != right:
                    return prediction.id, (f"the declared outcome is {declared!r}, but the "
                                           f"code's is {right!r}")
            else:
                right = run.value(prediction.actual)
                by_hand = run.value(prediction.by_hand)
                tolerance = Tolerance(max(prediction.tolerance.relative, AGREEMENT.relative),
                                      max(prediction.tolerance.absolute, AGREEMENT.absolute))
                if not is_close(by_hand, right, tolerance):
                    return prediction.id, (f"by_hand gives {format_value(by_hand)} but "
                                           f"PyTorch gives {format_value(right)}")
            if not misconceptions:
                continue
            seen: list[Value] = []
            for misconception in prediction.misconceptions:
                value = run.misconception_value(prediction, misconception)
                if is_close(value, right, _apart(prediction)):
                    return prediction.id, (f"misconception {misconception.name!r} gives "
                                           f"the right answer, {format_value(value)}")
                if any(_same(value, other) for other in seen):
                    return prediction.id, (f"misconception {misconception.name!r} gives "
                                           f"{format_value(value)}, as another one does")
                seen.append(value)
    except PackCodeError:
        raise
    except LessonError as error:
        return None, str(error)
    return None
