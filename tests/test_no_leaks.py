"""Nothing printed before a prediction's prompt gives that prediction's answer away.

For every exercise and every prediction, the CLI is driven with stdin that answers the earlier
predictions and then ends, so the run stops exactly at that prediction's prompt. Everything
printed up to and including the prompt line is then searched for the answer, which is
computed independently with PyTorch (`reference.py`).

Two strengths of check, because "gives the answer away" depends on the answer:

- Answers with two or more significant digits (34, 36, 12, 6.5, -12.95, 1.95, ...) must not
  appear anywhere before the prompt, in any common spelling (34, 34.0, 13.86, 13.9, ...),
  matched as whole numbers so 3 never matches inside 30 or 0.3.
- Tiny answers (single-digit integers, None, a named choice such as "w") occur legitimately
  in code and prose (`+ 1`, `w2 = -1.0`, "or None"). For them the check is that nothing of
  the current step's execution or reveal was printed before the prompt (no forward values,
  no program output, no reveal table), and that no line states the quantity's value
  (`a.grad = None`, `x.grad: 6`, `x.grad is 1`).

An earlier step's reveal may legitimately show the same number when two predictions share an
answer (Exercise 3: the first and third x.grad are both one fresh gradient); then only the
text printed since the current step began is searched.

Earlier predictions are answered both right and wrong: a wrong answer brings up feedback
text, which must not leak later answers either.
"""

from __future__ import annotations

import re

import pytest
import reference
from reference import Value, typed
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content.packs import builtin
from autograd_tutor.engine.answers import format_value
from autograd_tutor.engine.model import Exercise, Prediction, Step
from autograd_tutor.views.session import prompt_text

BASICS = builtin()

runner = CliRunner()

# Printed only once a step's code has run: never allowed between a step's start and its prompt.
REVEAL_MARKERS = (
    "against PyTorch",
    "Forward values",
    "By hand",
    "You predicted",
    "Output:",
    "PyTorch raised",
    "Saved figure",
)


def cases() -> list[tuple[int, int]]:
    """(exercise, index in the prompts a learner answering right sees)."""
    return [
        (exercise.number, index)
        for exercise in BASICS.exercises
        for index in range(len(reference.answers(exercise.number)))
    ]


def asked(exercise: Exercise) -> list[Prediction]:
    """The predictions a learner answering right is asked, in order ("which error?" only
    after an error)."""
    by_id = {p.id: p for p in exercise.predictions}
    return [by_id[key] for key in reference.answers(exercise.number)]


def step_of(exercise: Exercise, prediction: Prediction) -> Step:
    return next(step for step in exercise.steps if prediction in step.predictions)


def is_tiny(value: Value) -> bool:
    if value is None or isinstance(value, str):
        return True
    return float(value).is_integer() and abs(value) < 10


def spellings(value: float) -> set[str]:
    """Ways the answer could be printed: the tool's own format and common roundings."""
    found = {format_value(value), f"{value:.3g}", f"{value:.4g}", f"{value:.5g}"}
    if float(value).is_integer():
        found |= {f"{value:.1f}", f"{value:.2f}", f"{int(value)}."}
    else:
        found |= {format_value(value, 2), format_value(value, 3)}
    # Keep roundings that still carry two significant digits (0.0213 -> "0.02" is dropped).
    return {text for text in found
            if len(re.sub(r"\D", "", text).lstrip("0")) >= 2 or text == format_value(value)}


def number_pattern(text: str) -> re.Pattern[str]:
    """`text` as a whole number: not inside a longer number, word or decimal."""
    return re.compile(r"(?<![\w.])" + re.escape(text) + r"(?![\w]|\.\d)")


def wrong_value(prediction: Prediction, answer: Value, index: int) -> str:
    """A wrong answer of the prediction's own kind."""
    if prediction.kind == "outcome":
        return "runs" if answer != "runs" else "error"
    if prediction.kind == "which":
        return next(str(n) for n, choice in enumerate(prediction.choices, start=1)
                    if choice != answer)
    if isinstance(answer, str):
        return next(choice for choice in prediction.choices if choice != answer)
    return str(900 + index)  # far from every answer in the exercises


def stop_at(number: int, index: int, earlier: str) -> tuple[str, list[str]]:
    """Run exercise `number` answering predictions before `index`, then end the input.

    Returns the output up to the end of the prompt line for prediction `index`, with the
    learner's own typed input removed from the earlier prompt lines.
    """
    exercise = BASICS.exercise(number)
    answers = list(reference.answers(number).values())
    prompts = asked(exercise)
    if earlier == "right":
        lines = [typed(answers[i]) for i in range(index)]
    else:
        # Only a predicted error leads to "which error?": answer that outcome with error.
        lines = [typed(answers[i]) if i + 1 < len(prompts) and prompts[i + 1].kind == "which"
                 else wrong_value(prompts[i], answers[i], i) for i in range(index)]
    result = runner.invoke(app, ["exercise", str(number)],
                           input="".join(line + "\n" for line in lines),
                           env={"COLUMNS": "160"})
    assert result.exit_code == 1, result.output  # input ended at the prompt
    assert "Traceback" not in result.output
    output = result.output
    start = output.rfind(prompt_text(prompts[index]).rstrip())
    assert start >= 0, output
    end = output.find("\n", start)
    prefix_lines = output[: len(output) if end < 0 else end].splitlines()

    # Remove the echo of what was typed at the earlier prompts: the learner's own words.
    typed_lines = iter(lines)
    masked = []
    for number_of_line, line in enumerate(prefix_lines):
        if line.startswith("Predict ") and number_of_line < len(prefix_lines) - 1:
            answer = next(typed_lines)
            assert line.rstrip().endswith(answer), (line, answer)
            line = line.rstrip()[: -len(answer)]
        masked.append(line)
    assert next(typed_lines, None) is None, "a prompt was not found"
    return "\n".join(masked), lines


def shown_earlier(exercise: Exercise, index: int) -> bool:
    """Did an earlier step reveal a prediction with the same answer (as the tool shows it)?"""
    values = list(reference.answers(exercise.number).values())
    current = asked(exercise)[index]
    step = step_of(exercise, current)
    return any(
        format_value(values[i]) == format_value(values[index])
        and step_of(exercise, asked(exercise)[i]) is not step
        for i in range(index)
    )


def current_step_text(text: str, step: Step) -> str:
    start = text.rfind(step.title)
    assert start >= 0, f"step title {step.title!r} not shown before its prompt"
    return text[start:]


def quantity(prediction: Prediction) -> str:
    """The name a statement of the answer would use: 'a.grad' for 'a.grad', 'w' for 'w after'."""
    return prediction.label.split()[0]


@pytest.mark.parametrize("earlier", ["right", "wrong"])
@pytest.mark.parametrize(("number", "index"), cases())
def test_nothing_before_a_prompt_gives_its_answer_away(number: int, index: int,
                                                       earlier: str) -> None:
    exercise = BASICS.exercise(number)
    prediction = asked(exercise)[index]
    answer = reference.answers(number)[prediction.id]
    text, _ = stop_at(number, index, earlier)
    step = step_of(exercise, prediction)
    this_step = current_step_text(text, step)
    searched = this_step if shown_earlier(exercise, index) else text

    # 1. Nothing of this step's execution or reveal before the prompt.
    for marker in REVEAL_MARKERS:
        assert marker not in this_step, f"{marker!r} shown before 'Predict {prediction.label}'"

    # An outcome: neither PyTorch's message nor the step's explanation shows before it.
    if prediction.kind in ("outcome", "which"):
        message, _ = reference.ex5_detach_error()
        flat = " ".join(text.split())
        assert message not in flat and message[:40] not in flat
        explanation = " ".join(step.explanation.split())
        for sentence in explanation.split(". ")[:3]:
            assert sentence[:50] not in flat, sentence

    # 2. No statement of the value: "a.grad = None", "x.grad: 6", "x.grad is 34", "x.grad → 1".
    name = re.escape(quantity(prediction))
    shown = format_value(answer)
    statement = re.compile(
        rf"(?<![\w.]){name}\s*(?:=|==|:|is|→|->)\s*{re.escape(shown)}(?![\w]|\.\d)"
    )
    if isinstance(answer, float) and answer.is_integer():
        statement = re.compile(statement.pattern.replace(re.escape(shown),
                                                         re.escape(shown) + r"(?:\.0+)?"))
    match = statement.search(searched)
    assert match is None, f"{match.group(0)!r} printed before 'Predict {prediction.label}'"

    # 3. Answers with two or more significant digits: nowhere, in any common spelling.
    if not is_tiny(answer):
        assert isinstance(answer, float)
        for spelling in sorted(spellings(answer)):
            found = number_pattern(spelling).search(searched)
            assert found is None, (
                f"{spelling!r} (the answer to {prediction.id}) printed before its prompt: "
                f"...{searched[max(0, found.start() - 80): found.end() + 40]}..."
            )


def test_the_check_would_catch_a_leak() -> None:
    """The matching itself: whole numbers only, every spelling, statements of tiny values."""
    assert number_pattern("34").search("so dy/dx = 34 here")
    assert number_pattern("34.0").search("Expected: 34.0")
    assert not number_pattern("34").search("x = 340, 1.34, 34.5, v34")
    assert not number_pattern("3").search("30 and 0.3 and 3.5")
    assert {"13.86", "13.9", "13.861"} <= spellings(13.8612)
    assert {"34", "34.0"} <= spellings(34.0)
    assert {"-12.95", "-12.9536"} <= spellings(-12.9536)
    assert is_tiny(1.0) and is_tiny(-1.0) and is_tiny(None) and is_tiny("w")
    assert not is_tiny(12.0) and not is_tiny(6.5)


def test_every_prediction_is_covered() -> None:
    """Every prediction but a "which error?" where the code raises none (asked only after a
    wrong outcome, and then it is the outcome's reveal that follows)."""
    for exercise in BASICS.exercises:
        answers = reference.answers(exercise.number)
        left = [p for p in exercise.predictions if p.id not in answers]
        assert all(p.kind == "which" and answers[p.id.removesuffix(":which")] != "error"
                   for p in left), [p.id for p in left]
    assert len(cases()) == sum(len(reference.answers(n)) for n in range(1, 6))


def test_pack_checks_spellings_of_an_answer() -> None:
    """What `pack check` looks for: every spelling, and a given of the code only when tied."""
    from autograd_tutor.content.leaks import Givens, Shown, find, number_spellings

    digits, words = number_spellings(1 / 3)
    assert {"1/3", "0.3333", "0.333", "⅓"} <= set(digits) and words == []
    digits, words = number_spellings(-2.0)
    assert {"-2", "−2", "-2.0"} <= set(digits) and words == ["minus two"]

    def leak(text: str, value: float | str | None, literals: frozenset[float] = frozenset()
             ) -> str | None:
        found = find(value, "value", "b.grad[0]", "b.grad[0]@1", [Shown("the setup", text, 1)],
                     1, [], Givens(literals, frozenset()))
        return found.spelling if found else None

    assert leak("Its slope there: it is seven.", 7.0) == "seven"
    assert leak("A slope of 7 everywhere.", 7.0) == "7"
    assert leak("b is a 4×3 matrix of ones.", 4.0, frozenset({4.0, 3.0})) is None
    assert leak("b is a 4×3 matrix, and b.grad[0] = 4.", 4.0, frozenset({4.0, 3.0})) == "4"
    assert leak("It gives 4 in the end.", 4.0, frozenset({4.0})) == "4"
    assert leak("Type None if you think it holds nothing.", None) is None
    assert leak("Here b.grad[0] is None.", None) == "None"
    assert leak("(it is True)", "True") == "True"
