"""Fresh practice problems for each concept of the notebook, as an ordinary Exercise.

Every problem is built from `random.Random(seed)` only, so the same seed gives the same
problems. Tensor values are small multiples of 0.5: they are exact in float32, so PyTorch's
gradients equal the by-hand formulas to the last bit and "exact" judging stays fair. Only the
learning rate of a gradient-descent step is a non-binary decimal (0.1, 0.01, ...), and that
prediction gets a tolerance a little wider than float32 rounding.

Each problem's code is self-contained (it creates its own tensors), so problems can run in
any order in the engine's shared namespace. `by_hand` and every misconception are formulas
over the problem's numbers in plain Python floats; a candidate problem whose answer is not
readable, or where a wrong model happens to give the right number, is drawn again.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from msgspec import Struct
from msgspec.structs import replace

from autograd_tutor.engine.answers import format_value, is_close
from autograd_tutor.engine.model import (
    EXACT,
    Exercise,
    Misconception,
    Prediction,
    Step,
    Template,
    Tolerance,
    Value,
)

# Names this module once used, and the catalogue's name for each (content/catalogue.toml).
RENAMED = {"zero-instead-of-none": "zero-not-none", "everything-cut": "detach-cuts-everything"}
MAX_COUNT = 50
MAX_ANSWER = 1000.0
MAX_DECIMALS = 3
# A wrong model this close to the right answer could not be told apart from it.
SEPARATION = Tolerance(relative=1e-3, absolute=1e-3)
# w - lr * grad rounds in float32 when lr is 0.1 or 0.01; the absolute part covers that.
FLOAT32 = Tolerance(relative=1e-6, absolute=1e-5)
LEARNING_RATES = (0.5, 0.2, 0.1, 0.05, 0.01)
MAX_TRIES = 200


def concepts(templates: Sequence[Template] = (),
             described: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every concept practice can draw problems for: the built-in ones, then those of the
    installed packs' templates (described from the catalogue)."""
    found = {name: (described or {}).get(name, "") for name in BUILDERS}
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


def aimed(concept: str, misconception: str, avoid: Value, seed: int,
          templates: Sequence[Template] = (), helpers: Helpers | None = None,
          tries: int = 40) -> Exercise | None:
    """One fresh problem for `concept` aimed at a mistake just made: one whose own
    misconception of that name gives a number other than `avoid` (the answer just typed),
    so the same slip can be told apart again. None when the concept has no problems."""
    if concept not in concepts(templates):
        return None
    fallback = None
    for offset in range(tries):
        problem = generate(concept, 1, seed + offset, templates, helpers)
        fallback = fallback or problem
        for prediction in problem.predictions:
            for wrong in prediction.misconceptions:
                if wrong.name == misconception and _differs(wrong.value, avoid):
                    return problem
    return fallback


def _differs(expression: str, avoid: Value) -> bool:
    """Whether a misconception's value (a constant, for generated problems) is not `avoid`;
    a value that reads the problem's code can't be known before it runs: assume it is."""
    from autograd_tutor.engine.expressions import (
        EvalError,
        ExprError,
        Scope,
        evaluate,
        parse_pack_expression,
    )

    try:
        value = evaluate(parse_pack_expression(expression), Scope({}, {}, None))
    except (EvalError, ExprError):
        return True
    return not is_close(value, avoid, SEPARATION)


def _check(concept: str, known: Mapping[str, str]) -> None:
    if concept not in known:
        raise ValueError(f"unknown concept {concept!r}; choose one of: {', '.join(known)}")


def _stream(rng: Random, concept: str | None, known: Mapping[str, str]) -> Iterator[str]:
    """Concept names, one per problem: the given one, or shuffled rounds of all of them so
    that a mix of six covers every concept. Shuffled lazily, to keep counts prefix-stable."""
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
    """One problem: from the built-in builder or one of the concept's templates."""
    sources: list[Callable[[Random, int], Step | None]] = []
    if concept in BUILDERS:
        sources.append(BUILDERS[concept])
    for template in templates:
        if template.concept == concept:
            sources.append(functools.partial(draw_template, template, helpers=helpers))
    build = sources[0] if len(sources) == 1 else rng.choice(sources)
    for _ in range(MAX_TRIES):
        step = build(rng, n)
        if step is not None:
            return step
    raise RuntimeError(f"could not draw a readable {concept} problem")  # pragma: no cover


# ---------------------------------------------------------------------------------------
# Pack templates: {param} placeholders drawn afresh, each draw checked by running PyTorch

Helpers = Mapping[str, Any]


def _draw(rng: Random, low: float, high: float, halves: bool) -> float:
    if halves:
        return rng.randint(int(math.ceil(2 * low)), int(math.floor(2 * high))) / 2
    return float(rng.randint(int(math.ceil(low)), int(math.floor(high))))


def fill_template(value: Any, values: Mapping[str, float]) -> Any:
    """Every text of a template with {name} replaced by its drawn value (other braces stay)."""
    if isinstance(value, str):
        for name, number in values.items():
            value = value.replace("{" + name + "}", format_value(number))
        return value
    if isinstance(value, tuple | list):
        return type(value)(fill_template(item, values) for item in value)
    if isinstance(value, dict):  # a template's raw TOML table
        return {key: fill_template(item, values) for key, item in value.items()}
    if isinstance(value, Struct):
        changes = {name: fill_template(getattr(value, name), values)
                   for name in value.__struct_fields__
                   if isinstance(getattr(value, name), str | tuple | Struct)}
        return replace(value, **changes)
    return value


def draw_template(template: Template, rng: Random, n: int,
                  helpers: Helpers | None = None) -> Step | None:
    """One problem from a template, or None when this draw is not a fair question: an
    expression fails, a misconception gives the right answer, or two coincide."""
    values = {name: _draw(rng, low, high, halves) for name, low, high, halves in template.params}
    step = fill_template(template.step, values)
    predictions = tuple(replace(p, id=f"p{n}.{p.id}") for p in step.predictions)
    step = replace(step, title=f"Problem {n}: {template.concept}",
                               predictions=predictions, pack=template.pack)
    return step if fair(step, helpers) is None else None


def fair(step: Step, helpers: Helpers | None = None) -> str | None:
    """Why a drawn problem is not fair to ask (None when it is): run it and compare."""
    from autograd_tutor.engine.runner import LessonError, Run

    exercise = Exercise(pack=step.pack, number=0, title="", level="", intro="", steps=(step,))
    run = Run(exercise, helpers=helpers or {})
    try:
        execution = run.execute(step)
        for prediction in step.predictions:
            if prediction.kind != "value":
                continue
            right = run.value(prediction.actual)
            seen: list[Value] = []
            for misconception in prediction.misconceptions:
                wrong = run.value(misconception.value)
                if is_close(wrong, right, SEPARATION):
                    return (f"misconception {misconception.name!r} gives the right answer, "
                            f"{format_value(wrong)}")
                if any(is_close(wrong, other, SEPARATION) for other in seen):
                    return (f"misconception {misconception.name!r} gives {format_value(wrong)}, "
                            "as another one does")
                seen.append(wrong)
        del execution
    except LessonError as error:
        return str(error)
    return None


# ---------------------------------------------------------------------------------------
# Shared pieces


def _half(rng: Random, low: int, high: int) -> float:
    """A nonzero multiple of 0.5 in [low, high]: readable, and exact in float32."""
    while True:
        value = rng.randint(2 * low, 2 * high) / 2
        if value:
            return value


def _lit(value: float) -> str:
    """A tensor literal as a learner would type it: 2.0, -1.5."""
    return f"{value:.1f}"


def _num(value: float) -> str:
    """A number inside a formula: integers without decimals, negatives in parentheses."""
    text = format_value(value)
    return f"({text})" if value < 0 else text


def _grad(name: str) -> str:
    """The expression that reads PyTorch's `.grad` of a tensor; None stays None."""
    return f"{name}.grad"


def _value(name: str) -> str:
    return name


def constant(value: Value) -> str:
    """A value as an expression: what a wrong model or the hand formula gave."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(float(value))


def _readable(value: float | None) -> bool:
    if value is None:
        return True
    scaled = value * 10**MAX_DECIMALS
    return abs(value) <= MAX_ANSWER and math.isclose(scaled, round(scaled), abs_tol=1e-6)


@dataclass(frozen=True)
class _Wrong:
    """A misconception whose number comes from running its wrong formula."""

    name: str
    explanation: str
    model: Callable[[], Value]


def _wrong(name: str, explanation: str, model: Callable[[], Value]) -> _Wrong:
    return _Wrong(RENAMED.get(name, name), explanation, model)


@dataclass(frozen=True)
class _Ask:
    """What a builder knows about one prediction before it becomes a `Prediction`."""

    label: str
    actual: str
    right: Callable[[], float | None]
    text: str
    hints: tuple[str, ...]
    wrongs: tuple[_Wrong, ...]
    feedback: str
    tolerance: Tolerance = EXACT


def _predict(n: int, concept: str, ask: _Ask) -> Prediction | None:
    """The Prediction, or None when the answer is unreadable or fewer than two wrong
    models stay distinct from the answer and from each other."""
    right = ask.right()
    if not _readable(right):
        return None
    kept: list[Misconception] = []
    seen: list[Value] = [right]
    for wrong in ask.wrongs:
        value = wrong.model()
        if not any(is_close(value, other, SEPARATION) for other in seen):
            kept.append(Misconception(wrong.name, constant(value), wrong.explanation))
            seen.append(value)
    if len(kept) < 2:
        return None
    return Prediction(
        id=f"p{n}.{ask.label}",
        label=ask.label,
        actual=ask.actual,
        by_hand=constant(right),
        by_hand_text=_braces(ask.text),
        hints=ask.hints,
        tolerance=ask.tolerance,
        concept=concept,
        misconceptions=tuple(kept),
        feedback=ask.feedback,
    )


def _braces(text: str) -> str:
    """Generated text has no placeholders: its braces are literal."""
    return text.replace("{", "{{").replace("}", "}}")


def _step(
    n: int,
    concept: str,
    asks: list[_Ask],
    *,
    setup: str,
    code: str,
    explanation: str,
    values: tuple[str, ...] = (),
    graph: str | None = None,
) -> Step | None:
    predictions = [_predict(n, concept, ask) for ask in asks]
    if any(p is None for p in predictions):
        return None
    return Step(
        title=f"Problem {n}: {concept}",
        setup=setup,
        code=code,
        predictions=tuple(p for p in predictions if p is not None),
        explanation=_braces(explanation),
        values=values,
        graph=graph,
    )


def _times(count: int, formula: str) -> str:
    return formula if count == 1 else f"{count} * ({formula})"


def _poly_text(coeffs: dict[int, float], var: str = "x") -> str:
    """Python-style polynomial, highest power first: 2*x**3 - x**2 + 4*x - 3."""
    text = ""
    for power in sorted(coeffs, reverse=True):
        coeff = coeffs[power]
        if coeff == 0:
            continue
        magnitude = format_value(abs(coeff))
        base = "" if power == 0 else var if power == 1 else f"{var}**{power}"
        if not base:
            term = magnitude
        else:
            term = base if abs(coeff) == 1 else f"{magnitude}*{base}"
        if not text:
            text = f"-{term}" if coeff < 0 else term
        else:
            text += f" - {term}" if coeff < 0 else f" + {term}"
    return text or "0"


def _poly_at(coeffs: dict[int, float], x: float) -> float:
    return sum(c * x**p for p, c in coeffs.items())


def _derivative(coeffs: dict[int, float]) -> dict[int, float]:
    return {p - 1: p * c for p, c in coeffs.items() if p > 0}


# ---------------------------------------------------------------------------------------
# polynomial


def _polynomial(rng: Random, n: int) -> Step | None:
    degree = rng.choice((2, 3))
    coeffs = {p: float(rng.randint(-4, 4)) for p in range(degree + 1)}
    coeffs[degree] = float(rng.choice((-3, -2, -1, 1, 2, 3)))
    x = _half(rng, -3, 3)
    slope = _derivative(coeffs)
    poly, dpoly = _poly_text(coeffs), _poly_text(slope)
    at_x = _poly_text(slope, f"({format_value(x)})")
    ask = _Ask(
        label="x.grad",
        actual=_grad("x"),
        right=lambda: _poly_at(slope, x),
        text=f"dy/dx = {dpoly} = {at_x} at x = {format_value(x)}",
        hints=(
            "x.grad is dy/dx, the slope of y at this x, not the value of y.",
            "Differentiate term by term: d(a*x**n)/dx = n*a*x**(n-1); a constant has slope 0.",
            f"dy/dx = {dpoly}. Now put in x = {format_value(x)}.",
        ),
        wrongs=(
            _wrong(
                "value-not-gradient",
                "That is y itself, the polynomial's value. `.grad` holds the slope dy/dx.",
                lambda: _poly_at(coeffs, x),
            ),
            _wrong(
                "exponent-not-brought-down",
                "You lowered each power without multiplying by it: d(x**n)/dx = n*x**(n-1).",
                lambda: _poly_at({p - 1: c for p, c in coeffs.items() if p > 0}, x),
            ),
            _wrong(
                "dropped-linear-term",
                "You left out the linear term. d(c*x)/dx = c, and every term adds to x.grad.",
                lambda: _poly_at(slope, x) - coeffs[1],
            ),
            _wrong(
                "kept-constant",
                "The constant term has slope 0: it shifts the curve but does not tilt it.",
                lambda: _poly_at(slope, x) + coeffs[0],
            ),
        ),
        feedback="Differentiate each term with the power rule, add them, then put in x.",
    )
    return _step(
        n,
        "polynomial",
        [ask],
        setup=(
            f"Take `y = {poly}` at **x = {format_value(x)}**. "
            "Predict what `y.backward()` leaves in `x.grad`."
        ),
        code=f"x = torch.tensor({_lit(x)}, requires_grad=True)\ny = {poly}\ny.backward()\n",
        explanation=f"`x.grad` is the slope: {dpoly} at x = {format_value(x)}.",
        values=("x", "y"),
        graph="y",
    )


# ---------------------------------------------------------------------------------------
# chain-rule


def _chain_rule(rng: Random, n: int) -> Step | None:
    return _shared_weight(rng, n) if rng.random() < 0.4 else _linear_chain(rng, n)


def _linear_chain(rng: Random, n: int) -> Step | None:
    x, w1, w2, b = (_half(rng, -3, 3) for _ in range(4))
    h_act = x * w1 + b
    sign = "A sign slipped: follow each local derivative's sign along the path."
    asks = {
        "x.grad": _Ask(
            "x.grad",
            _grad("x"),
            lambda: w2 * w1,
            f"dy/dx = w2 * w1 = {_num(w2)} * {_num(w1)}",
            (
                "Walk back from y: y = h_act * w2, h_act = h + b, h = x * w1.",
                "dy/dh_act = w2, dh_act/dh = 1, and dh/dx is the other factor of h.",
                "dy/dx = w2 * 1 * w1.",
            ),
            (
                _wrong(
                    "x-for-w1",
                    "dh/dx is w1, the other factor of h = x * w1, not x itself.",
                    lambda: w2 * x,
                ),
                _wrong(
                    "dropped-downstream",
                    "You stopped at h. The gradient of y also goes through y = h_act * w2, "
                    "so multiply by w2.",
                    lambda: w1,
                ),
                _wrong("sign-error", sign, lambda: -w2 * w1),
            ),
            "Multiply the local derivatives along the path y → h_act → h → x.",
        ),
        "w1.grad": _Ask(
            "w1.grad",
            _grad("w1"),
            lambda: w2 * x,
            f"dy/dw1 = w2 * x = {_num(w2)} * {_num(x)}",
            (
                "Walk back from y: y = h_act * w2, h_act = h + b, h = x * w1.",
                "dy/dh = w2, and dh/dw1 is the other factor of h = x * w1.",
                "dy/dw1 = w2 * x.",
            ),
            (
                _wrong(
                    "w1-for-x",
                    "dh/dw1 is x, the other factor of h = x * w1, not w1 itself.",
                    lambda: w2 * w1,
                ),
                _wrong(
                    "dropped-downstream",
                    "You stopped at h. The gradient also goes through y = h_act * w2, "
                    "so multiply by w2.",
                    lambda: x,
                ),
                _wrong("sign-error", sign, lambda: -w2 * x),
            ),
            "Multiply the local derivatives along the path y → h_act → h → w1.",
        ),
        "w2.grad": _Ask(
            "w2.grad",
            _grad("w2"),
            lambda: x * w1 + b,
            f"dy/dw2 = h_act = x * w1 + b = {_num(x)} * {_num(w1)} + {_num(b)}",
            (
                "y = h_act * w2: what multiplies w2?",
                "dy/dw2 = h_act, the forward value of h + b.",
            ),
            (
                _wrong(
                    "dropped-bias",
                    "You used h = x * w1. The factor next to w2 is h_act = h + b: "
                    "include the bias.",
                    lambda: x * w1,
                ),
                _wrong(
                    "value-not-gradient",
                    "That is y itself. dy/dw2 is the factor w2 is multiplied by, h_act.",
                    lambda: h_act * w2,
                ),
                _wrong("sign-error", sign, lambda: -h_act),
            ),
            "y = h_act * w2, so dy/dw2 is the forward value of h_act.",
        ),
        "b.grad": _Ask(
            "b.grad",
            _grad("b"),
            lambda: w2,
            f"dy/db = dy/dh_act * dh_act/db = w2 * 1 = {format_value(w2)}",
            (
                "b enters through h_act = h + b, and h_act enters y = h_act * w2.",
                "dh_act/db = 1; then multiply by dy/dh_act.",
            ),
            (
                _wrong(
                    "local-only",
                    "dh_act/db = 1 is only the local derivative; the chain rule multiplies "
                    "it by dy/dh_act = w2.",
                    lambda: 1.0,
                ),
                _wrong(
                    "forward-value",
                    "That is h_act's forward value. b's gradient is dy/dh_act * 1 = w2.",
                    lambda: h_act,
                ),
                _wrong("sign-error", sign, lambda: -w2),
            ),
            "dy/db = dy/dh_act * dh_act/db = w2 * 1.",
        ),
    }
    chosen = rng.sample(sorted(asks), 2)
    return _step(
        n,
        "chain-rule",
        [asks[label] for label in sorted(chosen, key=list(asks).index)],
        setup=(
            "A two-layer computation: h = x * w1, h_act = h + b, y = h_act * w2. "
            "Predict the gradients after `y.backward()`."
        ),
        code=(
            f"x = torch.tensor({_lit(x)}, requires_grad=True)\n"
            f"w1 = torch.tensor({_lit(w1)}, requires_grad=True)\n"
            f"w2 = torch.tensor({_lit(w2)}, requires_grad=True)\n"
            f"b = torch.tensor({_lit(b)}, requires_grad=True)\n"
            "\n"
            "h = x * w1\n"
            "h_act = h + b\n"
            "y = h_act * w2\n"
            "\n"
            "y.backward()\n"
        ),
        explanation="Each `.grad` is the product of the local derivatives along the path to y.",
        values=("h", "h_act", "y"),
        graph="y",
    )


def _shared_weight(rng: Random, n: int) -> Step | None:
    x, w, b = (_half(rng, -3, 3) for _ in range(3))
    h_act = x * w + b
    w_ask = _Ask(
        "w.grad",
        _grad("w"),
        lambda: h_act + w * x,
        f"dy/dw = h_act + w * x = {_num(h_act)} + {_num(w)} * {_num(x)}",
        (
            "w is used twice: inside h = x * w, and again in y = h_act * w.",
            "Each use is a path; their contributions add up in w.grad.",
            "Direct path: dy/dw = h_act. Path through h: w * dh/dw = w * x.",
        ),
        (
            _wrong(
                "dropped-path-through-h",
                "You kept only the direct use of w in y = h_act * w. w also feeds h = x * w, "
                "which adds w * x.",
                lambda: h_act,
            ),
            _wrong(
                "dropped-direct-path",
                "You kept only the path through h. y = h_act * w uses w directly too, "
                "which adds h_act.",
                lambda: w * x,
            ),
            _wrong(
                "multiplied-paths",
                "Gradients from two paths add, they do not multiply.",
                lambda: h_act * w * x,
            ),
        ),
        "Add the two paths: h_act (direct) + w * x (through h).",
    )
    others = {
        "x.grad": _Ask(
            "x.grad",
            _grad("x"),
            lambda: w * w,
            f"dy/dx = w * 1 * w = {_num(w)} * {_num(w)}",
            (
                "x reaches y through h = x * w and then y = h_act * w.",
                "dy/dh_act = w, dh_act/dh = 1, dh/dx = w.",
            ),
            (
                _wrong(
                    "dropped-downstream",
                    "You stopped at h. The gradient also goes through y = h_act * w, "
                    "so multiply by w again.",
                    lambda: w,
                ),
                _wrong(
                    "x-for-w",
                    "dh/dx is w, the other factor of h = x * w, not x itself.",
                    lambda: w * x,
                ),
            ),
            "Multiply the local derivatives along y → h_act → h → x.",
        ),
        "b.grad": _Ask(
            "b.grad",
            _grad("b"),
            lambda: w,
            f"dy/db = w * 1 = {format_value(w)}",
            (
                "b enters through h_act = h + b, then y = h_act * w.",
                "dh_act/db = 1; multiply by dy/dh_act.",
            ),
            (
                _wrong(
                    "local-only",
                    "dh_act/db = 1 is only the local derivative; multiply by dy/dh_act = w.",
                    lambda: 1.0,
                ),
                _wrong(
                    "forward-value",
                    "That is h_act's forward value. b's gradient is dy/dh_act * 1 = w.",
                    lambda: h_act,
                ),
            ),
            "dy/db = dy/dh_act * dh_act/db = w * 1.",
        ),
    }
    other = others[rng.choice(sorted(others))]
    return _step(
        n,
        "chain-rule",
        [w_ask, other],
        setup=(
            "The same weight `w` is used twice: h = x * w, h_act = h + b, y = h_act * w. "
            "Predict the gradients after `y.backward()`."
        ),
        code=(
            f"x = torch.tensor({_lit(x)}, requires_grad=True)\n"
            f"w = torch.tensor({_lit(w)}, requires_grad=True)\n"
            f"b = torch.tensor({_lit(b)}, requires_grad=True)\n"
            "\n"
            "h = x * w\n"
            "h_act = h + b\n"
            "y = h_act * w\n"
            "\n"
            "y.backward()\n"
        ),
        explanation=(
            "A tensor used in several places gets the **sum** of the gradients along every "
            "path from the output back to it."
        ),
        values=("h", "h_act", "y"),
        graph="y",
    )


# ---------------------------------------------------------------------------------------
# accumulation


def _quadratic(rng: Random) -> dict[int, float]:
    return {2: float(rng.randint(1, 3)), 1: float(rng.randint(-3, 3))}


def _accumulation(rng: Random, n: int) -> Step | None:
    x = _half(rng, -3, 3)
    k = rng.randint(2, 4)
    coeffs = _quadratic(rng)
    poly = _poly_text(coeffs)
    once = _poly_at(_derivative(coeffs), x)
    slope = _poly_text(_derivative(coeffs))
    ask = _Ask(
        "x.grad",
        _grad("x"),
        lambda: k * once,
        f"x.grad = {k} * dy/dx = {_times(k, slope)} at x = {format_value(x)}",
        (
            "What does each backward() do to the value already in x.grad?",
            "Each backward() ADDS its gradient to x.grad; nothing resets it in between.",
            f"One backward() gives dy/dx = {slope}. The loop runs {k} times.",
        ),
        (
            _wrong(
                "replaced-not-accumulated",
                "You expected each backward() to replace x.grad. PyTorch adds to it, so "
                f"{k} calls leave {k} gradients summed.",
                lambda: once,
            ),
            _wrong(
                "one-too-few",
                "The first backward() counts too: it fills the empty x.grad, and each later "
                "call adds one more gradient.",
                lambda: (k - 1) * once,
            ),
            _wrong(
                "accumulated-value",
                "You added up y's values. x.grad sums the gradients dy/dx, not the outputs.",
                lambda: k * _poly_at(coeffs, x),
            ),
        ),
        f"backward() adds to .grad: {k} calls give {k} times the single gradient.",
    )
    return _step(
        n,
        "accumulation",
        [ask],
        setup=(
            f"The same forward and backward pass runs {k} times in a loop, with nothing "
            "touching `x.grad` in between. Predict `x.grad` at the end."
        ),
        code=(
            f"x = torch.tensor({_lit(x)}, requires_grad=True)\n"
            f"for _ in range({k}):\n"
            f"    y = {poly}\n"
            "    y.backward()\n"
        ),
        explanation=(
            "Gradients **accumulate**: every `backward()` adds into `.grad`. That is why "
            "training loops clear them with `optimizer.zero_grad()`."
        ),
        values=("y",),
    )


# ---------------------------------------------------------------------------------------
# zeroing


def _loop(count: int, body: str) -> str:
    if count == 1:
        return f"y = {body}\ny.backward()\n"
    return f"for _ in range({count}):\n    y = {body}\n    y.backward()\n"


def _zeroing(rng: Random, n: int) -> Step | None:
    x = _half(rng, -3, 3)
    before, after = rng.randint(1, 3), rng.randint(1, 2)
    first, second = _quadratic(rng), _quadratic(rng)
    g1 = _poly_at(_derivative(first), x)
    g2 = _poly_at(_derivative(second), x)
    if g1 == 0:
        return None  # zero_() would have nothing to throw away
    slope2 = _poly_text(_derivative(second))
    ask = _Ask(
        "x.grad",
        _grad("x"),
        lambda: after * g2,
        f"x.grad = 0 + {_times(after, slope2)} at x = {format_value(x)}",
        (
            "What does x.grad.zero_() do to the gradients summed before it?",
            "zero_() sets x.grad to 0 in place; the backward() calls after it add onto 0.",
            f"After zero_(), count only the passes of y = {_poly_text(second)}: "
            f"each adds {slope2}.",
        ),
        (
            _wrong(
                "zero-ignored",
                "You added onto the old sum as if zero_() had not happened. zero_() set "
                "x.grad to 0, so only the passes after it count.",
                lambda: before * g1 + after * g2,
            ),
            _wrong(
                "zero-sticks",
                "zero_() cleared the old gradient, but the backward() after it adds a "
                "fresh one onto 0.",
                lambda: 0.0,
            ),
            _wrong(
                "replaced-not-accumulated",
                "After zero_(), the passes still accumulate: each backward() adds its "
                "gradient, it does not replace the previous one.",
                lambda: g2,
            ),
        ),
        "zero_() resets x.grad to 0; the backward() calls after it add up from there.",
    )
    return _step(
        n,
        "zeroing",
        [ask],
        setup=(
            "Some backward passes, then `x.grad.zero_()`, then more backward passes. "
            "Predict `x.grad` at the end."
        ),
        code=(
            f"x = torch.tensor({_lit(x)}, requires_grad=True)\n"
            + _loop(before, _poly_text(first))
            + "\nx.grad.zero_()\n\n"
            + _loop(after, _poly_text(second))
        ),
        explanation=(
            "`zero_()` throws the old sum away in place; only gradients computed after it "
            "remain. In training loops this is `optimizer.zero_grad()`."
        ),
    )


# ---------------------------------------------------------------------------------------
# gd-step


def _gd_step(rng: Random, n: int) -> Step | None:
    w, x, target = _half(rng, -3, 3), _half(rng, -2, 2), _half(rng, -4, 4)
    lr = rng.choice(LEARNING_RATES)
    error = w * x - target
    grad = 2 * error * x
    grad_ask = _Ask(
        "w.grad",
        _grad("w"),
        lambda: grad,
        f"dloss/dw = 2 * (w * x - y_true) * x = 2 * {_num(error)} * {_num(x)}",
        (
            "loss = (w * x - y_true) ** 2: an outer square around an inner w * x - y_true.",
            "Outer: d(u**2)/du = 2u. Inner: d(w * x - y_true)/dw = x.",
            "dloss/dw = 2 * (w * x - y_true) * x.",
        ),
        (
            _wrong(
                "forgot-factor-2",
                "The square brings down a 2: d(u**2)/du = 2u.",
                lambda: error * x,
            ),
            _wrong(
                "forgot-inner-derivative",
                "The chain rule also multiplies by the inner derivative d(w * x)/dw = x.",
                lambda: 2 * error,
            ),
            _wrong(
                "value-not-gradient",
                "That is the loss itself. w.grad is dloss/dw.",
                lambda: error**2,
            ),
        ),
        "dloss/dw = 2 * (w * x - y_true) * x.",
    )
    update_ask = _Ask(
        "w",
        _value("w"),
        lambda: w - lr * grad,
        f"w - lr * w.grad = {_num(w)} - {lr:g} * {_num(grad)}",
        (
            "Gradient descent moves w against its gradient, scaled by the learning rate.",
            "new w = old w - lr * w.grad.",
            f"Use the w.grad you predicted: {_num(w)} - {lr:g} * w.grad.",
        ),
        (
            _wrong(
                "ascent-not-descent",
                "You moved w along the gradient. Descent subtracts: w - lr * w.grad.",
                lambda: w + lr * grad,
            ),
            _wrong(
                "forgot-learning-rate",
                "The gradient is scaled by the learning rate before it is subtracted.",
                lambda: w - grad,
            ),
            _wrong(
                "step-not-new-value",
                "That is the size of the step, lr * w.grad. The new w is the old w minus it.",
                lambda: lr * grad,
            ),
        ),
        "One update: w = w - lr * w.grad.",
        tolerance=FLOAT32,
    )
    return _step(
        n,
        "gd-step",
        [grad_ask, update_ask],
        setup=(
            "One training step of the model y = w * x with a squared error loss. Predict "
            "`w.grad` after `backward()`, then `w` after the update."
        ),
        code=(
            f"w = torch.tensor({_lit(w)}, requires_grad=True)\n"
            f"x = torch.tensor({_lit(x)})\n"
            f"y_true = torch.tensor({_lit(target)})\n"
            f"lr = {lr!r}\n"
            "\n"
            "loss = (w * x - y_true) ** 2\n"
            "loss.backward()\n"
            "\n"
            "with torch.no_grad():\n"
            "    w -= lr * w.grad\n"
        ),
        explanation=(
            "Forward, loss, backward, then step against the gradient: `w -= lr * w.grad`, "
            "inside `torch.no_grad()` so the update itself is not recorded."
        ),
        values=("loss",),
    )


# ---------------------------------------------------------------------------------------
# detach


def _detach(rng: Random, n: int) -> Step | None:
    return _detach_partial(rng, n) if rng.random() < 0.5 else _detach_full(rng, n)


PASS_THROUGH = (
    "You let the gradient flow through `detach()`. The detached copy has b's value but no "
    "link back to a, so no gradient reaches a through it."
)


def _detach_full(rng: Random, n: int) -> Step | None:
    a, w = _half(rng, -3, 3), _half(rng, -2, 2)
    k = float(rng.randint(2, 4))
    b = k * a
    a_ask = _Ask(
        "a.grad",
        _grad("a"),
        lambda: None,
        "None: the only path from c back to a goes through detach()",
        (
            "Follow every path from c back to a. Which operations does each pass through?",
            "detach() returns a tensor with no history: the chain rule stops there.",
            "A leaf that no gradient reaches keeps .grad = None.",
        ),
        (
            _wrong(
                "detach-pass-through",
                PASS_THROUGH,
                lambda: 2 * b * w * k,
            ),
            _wrong(
                "zero-instead-of-none",
                "No gradient reached a at all, so PyTorch never created a.grad: it stays "
                "None, not 0.",
                lambda: 0.0,
            ),
        ),
        "detach() cuts the only path to a, so a.grad stays None.",
    )
    w_ask = _Ask(
        "w.grad",
        _grad("w"),
        lambda: b * b,
        f"dc/dw = b_detached ** 2 = {_num(b)} ** 2",
        (
            "w is used directly in c, without any detach on its path.",
            "c = b_detached ** 2 * w, so dc/dw is the factor next to w.",
        ),
        (
            _wrong(
                "everything-cut",
                "detach() only cuts the path through b_detached. w's own path to c is "
                "untouched, so w gets a gradient.",
                lambda: None,
            ),
            _wrong(
                "value-not-gradient",
                "That is c itself. dc/dw is the factor w is multiplied by.",
                lambda: b * b * w,
            ),
        ),
        "dc/dw = b_detached ** 2: w's path does not go through detach().",
    )
    return _step(
        n,
        "detach",
        [a_ask, w_ask],
        setup="b is detached before it is used. Predict `a.grad` and `w.grad` after backward.",
        code=(
            f"a = torch.tensor({_lit(a)}, requires_grad=True)\n"
            f"w = torch.tensor({_lit(w)}, requires_grad=True)\n"
            f"b = a * {int(k)}\n"
            "b_detached = b.detach()\n"
            "c = b_detached ** 2 * w\n"
            "\n"
            "c.backward()\n"
        ),
        explanation="`detach()` keeps the value and drops the history: gradients stop there.",
        values=("b", "c"),
        graph="c",
    )


def _detach_partial(rng: Random, n: int) -> Step | None:
    a = _half(rng, -3, 3)
    k = float(rng.randint(2, 4))
    b = k * a
    ask = _Ask(
        "a.grad",
        _grad("a"),
        lambda: b,
        f"dc/da = b_detached = {_num(k)} * {_num(a)} (the path through b is cut)",
        (
            "a reaches c on two paths: directly, and through b = a * k.",
            "The path through b goes through detach(): nothing flows back along it.",
            "Only the direct path counts: c = b_detached * a, so dc/da = b_detached.",
        ),
        (
            _wrong(
                "detach-pass-through",
                PASS_THROUGH + " Only the direct use of a counts.",
                lambda: 2 * k * a,
            ),
            _wrong(
                "everything-cut",
                "detach() cuts only the path through b. a is also used directly in c, so "
                "it gets that path's gradient.",
                lambda: None,
            ),
            _wrong(
                "zero-instead-of-none",
                "The direct path still carries a gradient: dc/da = b_detached.",
                lambda: 0.0,
            ),
        ),
        "Only the direct path reaches a: dc/da = b_detached.",
    )
    return _step(
        n,
        "detach",
        [ask],
        setup="a is used twice, once through a detached copy. Predict `a.grad`.",
        code=(
            f"a = torch.tensor({_lit(a)}, requires_grad=True)\n"
            f"b = a * {int(k)}\n"
            "b_detached = b.detach()\n"
            "c = b_detached * a\n"
            "\n"
            "c.backward()\n"
        ),
        explanation="`detach()` cuts one path; gradients still flow along the others.",
        values=("b", "c"),
        graph="c",
    )


BUILDERS: dict[str, Callable[[Random, int], Step | None]] = {
    "polynomial": _polynomial,
    "chain-rule": _chain_rule,
    "accumulation": _accumulation,
    "zeroing": _zeroing,
    "gd-step": _gd_step,
    "detach": _detach,
}

# The concepts the built-in builders draw for (described in the catalogue).
CONCEPTS: tuple[str, ...] = tuple(BUILDERS)
