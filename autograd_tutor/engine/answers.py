"""Parsing and judging predictions.

A learner types a number, a little arithmetic on numbers, or None. The text is parsed with
`ast` and evaluated by walking a whitelist of node types: nothing typed is ever run.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from collections.abc import Callable

from autograd_tutor.engine.model import EXACT, OUTCOME_WORDS, Prediction, Tolerance, Value

MAX_INPUT_LENGTH = 200
MAX_EXPONENT = 64
MAX_MAGNITUDE = 1e300

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


# Python warns about some typos ("1if 2") while parsing; a learner should see our one-line
# message, not a SyntaxWarning. A filter for this parser's own filename, set once: a
# catch_warnings block would race with the thread that imports torch meanwhile.
_SOURCE = "<prediction>"
# (An invalid escape such as "\\_" is a DeprecationWarning before Python 3.12.)
for _category in (SyntaxWarning, DeprecationWarning):
    warnings.filterwarnings("ignore", category=_category, module=r"<prediction>\Z")


class AnswerError(ValueError):
    """The text is not a prediction; the message says what to type instead."""


def parse_value(text: str) -> Value:
    """Turn what the learner typed into a float or None, or raise AnswerError."""
    text = text.strip()
    if not text:
        raise AnswerError("type a number (like 2.5 or 7/4) or None")
    if len(text) > MAX_INPUT_LENGTH:
        raise AnswerError(f"that is longer than {MAX_INPUT_LENGTH} characters; type a number")
    if text.lower() in {"none", "null"}:
        return None
    # The minus sign the tool itself prints (U+2212) means minus; a decimal comma is common.
    text = text.replace("\u2212", "-")
    if re.fullmatch(r"[-+]?\d+,\d+", text):
        raise AnswerError(f"use a dot for decimals: {text.replace(',', '.')}")
    if re.search(r"(?<![\w.])0[xXbBoO]", text):
        raise AnswerError(f"can't read {text!r}: type a decimal number (like 2.5 or 7/4)")
    try:
        tree = ast.parse(text.replace("^", "**"), filename=_SOURCE, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise AnswerError(f"can't read {text!r}: type a number (like 2.5 or 7/4) or None") from None
    try:
        value = _evaluate(tree.body)
    except RecursionError:
        raise AnswerError("that expression is nested too deeply") from None
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise AnswerError("that number is too large; type a finite number")
    return value


def _evaluate(node: ast.expr) -> float:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise AnswerError(f"only numbers are allowed, not {node.value!r}")
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        return _apply(node.op, left, right)
    if isinstance(node, ast.Name):
        raise AnswerError(f"{node.id!r} is a name; predict a number (or None)")
    raise AnswerError("only numbers, + - * / ** and parentheses are allowed")


def _apply(op: ast.operator, left: float, right: float) -> float:
    if isinstance(op, ast.Pow):
        if abs(right) > MAX_EXPONENT:
            raise AnswerError(f"exponents above {MAX_EXPONENT} are not needed here")
        if left < 0 and not float(right).is_integer():
            raise AnswerError("a negative number to a fractional power is not a real number")
    if isinstance(op, ast.Div) and right == 0:
        raise AnswerError("division by zero")
    try:
        return _BINARY[type(op)](left, right)
    except (OverflowError, ZeroDivisionError):
        raise AnswerError("that number is too large; type a finite number") from None


def parse_choice(text: str, choices: tuple[str, ...]) -> str:
    """Match what was typed against a prediction's named choices, ignoring case."""
    wanted = text.strip().lower()
    for choice in choices:
        if wanted == choice.lower():
            return choice
    raise AnswerError("type one of: " + ", ".join(choices))


def parse_outcome(text: str) -> str:
    """What the learner thinks the code does: runs, error or warning (ok, e, w too)."""
    word = OUTCOME_WORDS.get(text.strip().strip('"').lower())
    if word is None:
        raise AnswerError("type runs, error or warning (or ok, e, w)")
    return word


def parse_numbered_choice(text: str, choices: tuple[str, ...]) -> str:
    """A numbered choice, typed as its number (1, 2, ...) or its name."""
    wanted = text.strip()
    if wanted.isdigit() and 1 <= int(wanted) <= len(choices):
        return choices[int(wanted) - 1]
    try:
        return parse_choice(wanted, choices)
    except AnswerError:
        raise AnswerError(f"type a number from 1 to {len(choices)}, or the error's name"
                          ) from None


def parse_prediction(text: str, prediction: Prediction | None = None) -> Value:
    """What the learner typed for this prediction, or AnswerError saying what to type."""
    if prediction is None:
        return parse_value(text)
    if prediction.kind == "outcome":
        return parse_outcome(text)
    if prediction.kind == "which":
        return parse_numbered_choice(text, prediction.choices)
    if prediction.choices:
        return parse_choice(text, prediction.choices)
    return parse_value(text)


def is_close(predicted: Value, actual: Value, tolerance: Tolerance = EXACT) -> bool:
    """True when the prediction matches: None only matches None; numbers within tolerance."""
    if predicted is None or actual is None:
        return predicted is None and actual is None
    if isinstance(predicted, str) or isinstance(actual, str):
        return predicted == actual
    return math.isclose(
        predicted, actual, rel_tol=tolerance.relative, abs_tol=tolerance.absolute
    )


def format_value(value: Value, digits: int = 4) -> str:
    """Readable, stable formatting: integers without decimals, None as None."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return value
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")
