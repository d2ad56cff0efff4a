"""Parsing and judging predictions.

A learner types a number, a little arithmetic on numbers, or None; a tensor as its elements
(`[2, 0, 20]`, `2 0 20`, `[[1, 2], [3, 4]]`); a shape (`(4, 3)`, `4x3`, `3`, `()`); a flag
(True/False, yes/no, t/f); or a word (a dtype, a grad_fn's class name, a choice). The text is
parsed with `ast` and evaluated by walking a whitelist of node types: nothing typed is ever run.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from collections.abc import Callable
from typing import Any

from autograd_tutor.engine.model import (
    EXACT,
    OUTCOME_WORDS,
    Kind,
    Prediction,
    Tolerance,
    Value,
)

MAX_INPUT_LENGTH = 200
MAX_ELEMENTS = 64  # a tensor typed by a learner
MAX_DIMENSIONS = 6
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


def parse_value(text: str, tensor: bool = False) -> Value:
    """Turn what the learner typed into a float or None, or (with `tensor`) a tensor's
    elements as a nested list of floats; or raise AnswerError."""
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
    text = text.replace("^", "**")
    # A tensor's elements separated by spaces, as PyTorch prints them: 2 0 20.
    parts = text.split()
    if tensor and len(parts) > 1 and all(_NUMBER.fullmatch(part) for part in parts):
        text = "[" + ", ".join(parts) + "]"
    try:
        tree = ast.parse(text, filename=_SOURCE, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        also = ", or a tensor's elements like [2, 0, 20]" if tensor else " or None"
        raise AnswerError(f"can't read {text!r}: type a number (like 2.5 or 7/4){also}"
                          ) from None
    try:
        if tensor and isinstance(tree.body, ast.List | ast.Tuple):
            return _tensor(tree.body)
        value = _evaluate(tree.body)
    except RecursionError:
        raise AnswerError("that expression is nested too deeply") from None
    return _finite(value)


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _finite(value: float) -> float:
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise AnswerError("that number is too large; type a finite number")
    return value


def _tensor(node: ast.List | ast.Tuple) -> list[Any]:
    """A typed tensor: nested lists of numbers, every row the same length."""
    count = 0

    def elements(item: ast.expr, depth: int) -> Any:
        nonlocal count
        if isinstance(item, ast.List | ast.Tuple):
            if depth >= MAX_DIMENSIONS:
                raise AnswerError(f"a tensor here has at most {MAX_DIMENSIONS} dimensions")
            if not item.elts:
                raise AnswerError("an empty [] has no elements; type the tensor's numbers")
            return [elements(inner, depth + 1) for inner in item.elts]
        count += 1
        if count > MAX_ELEMENTS:
            raise AnswerError(f"a tensor here has at most {MAX_ELEMENTS} elements")
        return _finite(_evaluate(item))

    value = elements(node, 0)
    if shape_of(value) is None:
        raise AnswerError("the rows have different lengths; a tensor's rows are all as long")
    return list(value)


def shape_of(value: Any) -> tuple[int, ...] | None:
    """The shape of a number (()) or a nested list; None when its rows differ in length."""
    if not isinstance(value, list):
        return ()
    if not value:
        return (0,)
    inner = [shape_of(item) for item in value]
    if any(shape is None or shape != inner[0] for shape in inner):
        return None
    first = inner[0]
    assert first is not None
    return (len(value), *first)


def flat(value: Any) -> list[Any]:
    """A nested list's elements in order (a number is its only element)."""
    if not isinstance(value, list):
        return [value]
    return [element for item in value for element in flat(item)]


def shape_text(dims: tuple[int, ...] | list[int]) -> str:
    """A shape as the tool writes it: (), (3,), (4, 3)."""
    if len(dims) == 1:
        return f"({dims[0]},)"
    return "(" + ", ".join(str(d) for d in dims) + ")"


def parse_shape(text: str) -> str:
    """A shape typed as (4, 3), [4, 3], 4x3, 4 3, (3,) or 3; () for a scalar's."""
    wanted = text.strip().lower().replace("torch.size", "")
    if len(wanted) > MAX_INPUT_LENGTH:
        raise AnswerError(f"that is longer than {MAX_INPUT_LENGTH} characters; type a shape")
    inner = wanted.strip("()[] ")
    if wanted.strip() and not inner:  # (), [], ( ), ([]): a single number's shape
        return "()"
    # One separator between two sizes; only a trailing comma, as in (3,), may end it.
    parts = re.split(r"\s*[,x×*]\s*|\s+", inner.rstrip(", "))
    if not parts or not all(part.isascii() and part.isdigit() and len(part) <= 9
                             for part in parts):
        raise AnswerError("type a shape like (4, 3), 4x3 or (3,); () for a single number")
    if len(parts) > MAX_DIMENSIONS:
        raise AnswerError(f"a shape here has at most {MAX_DIMENSIONS} dimensions")
    return shape_text([int(part) for part in parts])


_FLAGS = {"true": True, "t": True, "yes": True, "y": True,
          "false": False, "f": False, "no": False, "n": False}


def parse_flag(text: str) -> bool:
    """True or False (yes/no, t/f too)."""
    flag = _FLAGS.get(text.strip().lower())
    if flag is None:
        raise AnswerError("type True or False (or yes/no, t/f)")
    return flag


# dtype names as PyTorch writes them, and what else a learner may call them.
DTYPES = ("float16", "bfloat16", "float32", "float64", "complex64", "complex128",
          "uint8", "int8", "int16", "int32", "int64", "bool")
_DTYPE_ALIASES = {"half": "float16", "float": "float32", "double": "float64",
                  "short": "int16", "int": "int32", "long": "int64",
                  "cfloat": "complex64", "cdouble": "complex128"}


def dtype_name(text: str) -> str | None:
    """A dtype's name as PyTorch writes it without `torch.` (None when it is none)."""
    word = text.strip().strip("'\"").lower().removeprefix("torch.")
    word = _DTYPE_ALIASES.get(word, word)
    return word if word in DTYPES else None


def parse_dtype(text: str, choices: tuple[str, ...] = ()) -> str:
    """A dtype typed as float32, torch.int64, long, ..."""
    if choices:
        return parse_choice(text, choices, key=lambda word: dtype_name(word) or word.lower())
    name = dtype_name(text)
    if name is None:
        raise AnswerError("type a dtype like float32, float64, int64 or bool")
    return name


def parse_grad_fn(text: str, choices: tuple[str, ...] = ()) -> str | None:
    """A grad_fn's class name (MulBackward0) or None (a leaf, or no graph)."""
    word = text.strip().strip("'\"")
    if word.startswith("<"):  # as Python prints it: <MulBackward0 object at 0x...>
        word = word[1:].split(" ")[0]
    if word.lower() in ("none", "null"):
        return None
    if choices:
        return parse_choice(word, choices)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,59}", word):
        raise AnswerError("type a grad_fn's class name, like MulBackward0, or None")
    return word


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


def parse_choice(text: str, choices: tuple[str, ...],
                 key: Callable[[str], str] = str.lower) -> str:
    """Match what was typed against a prediction's named choices, ignoring case."""
    wanted = key(text.strip())
    for choice in choices:
        if wanted == key(choice):
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
    kind = prediction.kind
    if kind == Kind.OUTCOME:
        return parse_outcome(text)
    if kind == Kind.WHICH:
        return parse_numbered_choice(text, prediction.choices)
    if kind == Kind.SHAPE:
        return parse_shape(text)
    if kind == Kind.FLAG:
        return parse_flag(text)
    if kind == Kind.DTYPE:
        return parse_dtype(text, prediction.choices)
    if kind == Kind.GRAD_FN:
        return parse_grad_fn(text, prediction.choices)
    if prediction.choices:
        return parse_choice(text, prediction.choices)
    return parse_value(text, tensor=prediction.tensor)


def is_close(predicted: Value, actual: Value, tolerance: Tolerance = EXACT) -> bool:
    """True when the prediction matches: None only matches None, a flag only the same flag,
    words ignoring case; numbers within tolerance, a tensor element by element (and only a
    tensor of the same shape; a one-element list stands for its number)."""
    if predicted is None or actual is None:
        return predicted is None and actual is None
    if isinstance(predicted, bool) or isinstance(actual, bool):
        return predicted is actual
    if isinstance(predicted, str) or isinstance(actual, str):
        return (isinstance(predicted, str) and isinstance(actual, str)
                and predicted.lower() == actual.lower())
    if isinstance(predicted, list) or isinstance(actual, list):
        return not wrong_elements(predicted, actual, tolerance)
    return math.isclose(
        predicted, actual, rel_tol=tolerance.relative, abs_tol=tolerance.absolute
    )


def _unwrapped(value: Any) -> Any:
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def wrong_elements(predicted: Value, actual: Value, tolerance: Tolerance = EXACT) -> list[int]:
    """The positions (in reading order) of the predicted tensor's wrong elements; every
    position when the shapes differ (a one-element list and its number are the same)."""
    if not isinstance(predicted, list) or not isinstance(actual, list):
        predicted, actual = _unwrapped(predicted), _unwrapped(actual)
    mine, theirs = flat(predicted), flat(actual)
    if shape_of(predicted) != shape_of(actual) or len(mine) != len(theirs):
        return list(range(len(mine)))
    return [index for index, (p, a) in enumerate(zip(mine, theirs, strict=True))
            if not (isinstance(p, float) and isinstance(a, float)
                    and math.isclose(p, a, rel_tol=tolerance.relative,
                                     abs_tol=tolerance.absolute))]


def tensor_verdict(predicted: Value, actual: Value, tolerance: Tolerance = EXACT) -> str:
    """What is wrong with a predicted tensor, in a few words ("" when nothing is, or when
    it is not a tensor at all)."""
    if not isinstance(predicted, list) and not isinstance(actual, list):
        return ""
    if predicted is None or actual is None or isinstance(predicted, bool | str) \
            or isinstance(actual, bool | str):
        return ""
    if not isinstance(predicted, list) or not isinstance(actual, list):
        predicted, actual = _unwrapped(predicted), _unwrapped(actual)
    mine, theirs = shape_of(predicted), shape_of(actual)
    if mine != theirs:
        if mine is not None and theirs is not None and len(flat(predicted)) == len(
                flat(actual)) and not wrong_elements(flat(predicted), flat(actual), tolerance):
            return (f"right values, wrong shape: PyTorch's is {shape_text(theirs)}, "
                    f"yours {shape_text(mine)}")
        if mine is not None and theirs is not None:
            return f"wrong shape: PyTorch's is {shape_text(theirs)}, yours {shape_text(mine)}"
        return "wrong shape"
    wrong = wrong_elements(predicted, actual, tolerance)
    if not wrong:
        return ""
    return f"wrong values: {len(wrong)} of {len(flat(actual))} elements"


def format_value(value: Value, digits: int = 4) -> str:
    """Readable, stable formatting: integers without decimals, None as None, a flag as
    True/False, a tensor as [2, 0, 20] or [[1, 2], [3, 4]]."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(format_value(item, digits) for item in value) + "]"
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def format_marked(value: Value, wrong: list[int] | tuple[int, ...],
                  digits: int = 4) -> list[tuple[str, bool]]:
    """A tensor formatted in pieces, each with whether it is a wrong element (for marking
    the wrong ones in red, as the reveal does)."""
    if not isinstance(value, list):
        return [(format_value(value, digits), bool(wrong))]
    pieces: list[tuple[str, bool]] = []
    position = 0
    wrong_set = set(wrong)

    def walk(item: Any) -> None:
        nonlocal position
        if isinstance(item, list):
            pieces.append(("[", False))
            for index, inner in enumerate(item):
                if index:
                    pieces.append((", ", False))
                walk(inner)
            pieces.append(("]", False))
        else:
            pieces.append((format_value(item, digits), position in wrong_set))
            position += 1

    walk(value)
    return pieces


MAX_ECHO = 200  # characters of a typed or untrusted text shown back, at most


def printable(text: str, limit: int | None = MAX_ECHO) -> str:
    """What a learner typed, safe to show: control characters (escape codes) become '?',
    and a very long line is shortened (to `limit`; None keeps it whole)."""
    clean = "".join(c if c.isprintable() or c == "\t" else "?" for c in text)
    if limit is not None and len(clean) > limit:
        clean = f"{clean[: limit // 2]}… ({len(clean)} characters)"
    return clean
