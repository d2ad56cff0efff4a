"""Parsing and judging predictions: numbers, arithmetic, None, and everything that is refused."""

from __future__ import annotations

import math
import operator
import re

import pytest
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd_tutor.engine.answers import (
    MAX_INPUT_LENGTH,
    AnswerError,
    format_value,
    is_close,
    parse_choice,
    parse_prediction,
    parse_value,
)
from autograd_tutor.engine.model import EXACT, OUTCOMES, Prediction, Tolerance, estimate

# Parsing what is accepted --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("34", 34.0),
        ("-3", -3.0),
        ("+3", 3.0),
        ("6.5", 6.5),
        (".5", 0.5),
        ("0", 0.0),
        ("  34  ", 34.0),
        ("1e-3", 1e-3),
        ("1E3", 1000.0),
        ("-2.5e2", -250.0),
        ("1_000", 1000.0),
        ("13/2", 6.5),
        ("3*9 + 4*3 - 5", 3 * 9 + 4 * 3 - 5),
        ("(2 + 3) * 4", 20.0),
        ("-(2 - 5)", 3.0),
        ("2**3", 8.0),
        ("2^3", 8.0),
        ("-2^2", -4.0),
        ("2**-1", 0.5),
        ("2 * 3 ** 2", 18.0),
        ("0.01 * -12.95", 0.01 * -12.95),
    ],
)
def test_parse_value_accepts_numbers_and_arithmetic(text: str, expected: float) -> None:
    value = parse_value(text)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("text", ["None", "none", "NONE", " None ", "null"])
def test_parse_value_none(text: str) -> None:
    assert parse_value(text) is None


def test_parse_value_returns_plain_float_not_int() -> None:
    assert type(parse_value("34")) is float
    assert type(parse_value("3*9 + 4*3 - 5")) is float


# Parsing what is refused ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # names, calls and attributes: nothing typed is looked up or run
        "x",
        "x.grad",
        "abc",
        "nan",
        "inf",
        "True",
        "__import__('os')",
        "__import__('os').system('echo pwned')",
        "abs(-3)",
        "print(1)",
        "(3).real",
        "(1).__class__",
        "lambda: 1",
        "[1, 2]",
        "(1, 2)",
        "{1: 2}",
        "'34'",
        "b'34'",
        "3 if 1 else 4",
        "1 < 2",
        "not 1",
        "~1",
        "1 // 2",
        "7 % 3",
        "1 << 2",
        "2 @ 3",
        "1j",
        "3 +",
        "= 3",
        "x = 3",
        "34; 35",
        "\x00",
        # huge numbers and exponents
        "2**1000",
        "10**65",
        "2**64**2",
        "(2**64)**64",
        "1e400",
        "-1e400",
        "1e300 * 1e300",
        "(-8)**(1/3)",
        # division by zero
        "1/0",
        "0/0",
        "1/(2 - 2)",
        "0**-1",
        # empty
        "",
        "   ",
        "\t\n",
        # very long
        "1" * (MAX_INPUT_LENGTH + 1),
        "1+" * 150 + "1",
        "(" * 150 + "1" + ")" * 150,
    ],
)
def test_parse_value_refuses(text: str) -> None:
    with pytest.raises(AnswerError) as problem:
        parse_value(text)
    message = str(problem.value)
    assert message and "\n" not in message
    assert "Traceback" not in message


def test_refusal_of_a_name_says_to_type_a_number() -> None:
    with pytest.raises(AnswerError, match="number"):
        parse_value("x")


def test_parse_value_never_runs_what_is_typed(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AnswerError):
        parse_value("__import__('pathlib').Path('touched').write_text('x')")
    assert not (tmp_path / "touched").exists()


# Judging -------------------------------------------------------------------------------


def test_none_only_matches_none() -> None:
    assert is_close(None, None)
    assert not is_close(0.0, None)
    assert not is_close(None, 0.0)
    assert not is_close(None, 34.0)
    assert not is_close(34.0, None, estimate(100.0))


def test_exact_tolerance_is_tight() -> None:
    actual = 34.0
    assert is_close(actual, actual)
    assert is_close(actual * (1 + 1e-8), actual)
    assert not is_close(actual * (1 + 1e-4), actual)
    assert not is_close(actual + 0.01, actual)
    assert not is_close(-actual, actual)
    assert is_close(0.0, 0.0)
    assert not is_close(1e-3, 0.0)


def test_estimates_use_their_absolute_tolerance() -> None:
    tolerance = estimate(0.05)
    assert tolerance.is_estimate and not EXACT.is_estimate
    assert is_close(1.99, 1.95, tolerance)
    assert is_close(1.91, 1.95, tolerance)
    assert not is_close(2.01, 1.95, tolerance)
    assert not is_close(1.85, 1.95, tolerance)
    assert "0.05" in tolerance.describe()


def test_custom_relative_tolerance() -> None:
    loose = Tolerance(relative=1e-2, absolute=0.0)
    assert is_close(100.5, 100.0, loose)
    assert not is_close(102.0, 100.0, loose)


def test_choices_match_exactly() -> None:
    assert is_close("w", "w")
    assert not is_close("w", "b")
    assert not is_close("w", None)


# Named choices -------------------------------------------------------------------------


def test_parse_choice_ignores_case_and_space() -> None:
    assert parse_choice("w", ("w", "b")) == "w"
    assert parse_choice(" B ", ("w", "b")) == "b"


@pytest.mark.parametrize("text", ["x", "", "wb", "1", "None"])
def test_parse_choice_refuses_other_words(text: str) -> None:
    with pytest.raises(AnswerError, match="w, b"):
        parse_choice(text, ("w", "b"))


def test_parse_prediction_dispatches_on_the_prediction_kind() -> None:
    choice = Prediction("closer", "closer", "c", "c", choices=("w", "b"))
    assert parse_prediction("13/2") == 6.5
    assert parse_prediction("W", choice) == "w"
    with pytest.raises(AnswerError):
        parse_prediction("6.5", choice)
    outcome = Prediction("o", "o", "", '"error"', kind="outcome", choices=OUTCOMES)
    for typed_word, word in (("ok", "runs"), ("E", "error"), (" w ", "warning"),
                             ("runs", "runs"), ("Error", "error")):
        assert parse_prediction(typed_word, outcome) == word
    with pytest.raises(AnswerError, match="runs, error or warning"):
        parse_prediction("maybe", outcome)
    which = Prediction("o:which", "which", "", '"b"', kind="which", choices=("a", "b", "c"))
    assert parse_prediction("2", which) == "b"
    assert parse_prediction("C", which) == "c"
    for bad in ("0", "4", "d"):
        with pytest.raises(AnswerError, match="1 to 3"):
            parse_prediction(bad, which)


# Formatting (used by the reveal and by the leak tests) ---------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(34.0, "34"), (-3.0, "-3"), (6.5, "6.5"), (None, "None"), ("w", "w"),
     (-12.953634262084961, "-12.9536"), (0.0, "0"), (1e-5, "0")],
)
def test_format_value(value, text) -> None:
    assert format_value(value) == text


# Properties ----------------------------------------------------------------------------


@settings(max_examples=examples(400), deadline=None)
@given(st.text(max_size=300))
def test_parse_value_on_any_text_returns_a_number_or_none_or_refuses(text: str) -> None:
    try:
        value = parse_value(text)
    except AnswerError:
        return
    assert value is None or (type(value) is float and math.isfinite(value))


ALPHABET = "0123456789.eE+-*/^()_ Nonex"


@settings(max_examples=examples(400), deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_parse_value_on_number_like_text_returns_a_number_or_none_or_refuses(text: str) -> None:
    try:
        value = parse_value(text)
    except AnswerError:
        return
    assert value is None or (type(value) is float and math.isfinite(value))


# Small arithmetic trees: (text, value) pairs built and evaluated here, independently.
# A value of None means the tree divides by zero somewhere, so parsing must refuse it.

OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}

Tree = tuple[str, float | None]

leaves = st.one_of(
    st.integers(min_value=0, max_value=999).map(lambda n: (str(n), float(n))),
    st.decimals(min_value=0, max_value=100, places=2, allow_nan=False).map(
        lambda d: (str(d), float(str(d)))
    ),
)


def combine(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    def binary(op: str, left: Tree, right: Tree) -> Tree:
        text = f"({left[0]} {op} {right[0]})"
        if left[1] is None or right[1] is None:
            return text, None
        if op == "/" and right[1] == 0:
            return text, None
        return text, OPERATORS[op](left[1], right[1])

    def negate(child: Tree) -> Tree:
        return f"-{child[0]}", None if child[1] is None else -child[1]

    def power(base: Tree, exponent: int) -> Tree:
        text = f"({base[0]})**{exponent}"
        return text, None if base[1] is None else base[1] ** float(exponent)

    return st.one_of(
        st.builds(binary, st.sampled_from(sorted(OPERATORS)), children, children),
        st.builds(negate, children),
        st.builds(power, children, st.integers(min_value=0, max_value=3)),
    )


trees = st.recursive(leaves, combine, max_leaves=8)


@settings(max_examples=examples(300), deadline=None)
@given(trees)
def test_parse_value_computes_arithmetic_trees(tree: Tree) -> None:
    text, expected = tree
    if len(text) > MAX_INPUT_LENGTH or (expected is not None and abs(expected) > 1e300):
        with pytest.raises(AnswerError):
            parse_value(text)
        return
    if expected is None:
        with pytest.raises(AnswerError, match="division by zero"):
            parse_value(text)
        return
    assert parse_value(text) == expected
    assert parse_value(text.replace("**", "^")) == expected


@pytest.mark.parametrize(("typed", "meant"), [("\u22125", "-5"), ("3 \u2212 1", "3 - 1"),
                                            ("\u22120.75", "-0.75")])
def test_the_minus_sign_the_tool_prints_is_accepted(typed: str, meant: str) -> None:
    assert parse_value(typed) == parse_value(meant)


@pytest.mark.parametrize(("typed", "dotted"), [("6,5", "6.5"), ("-0,25", "-0.25")])
def test_a_decimal_comma_gets_a_hint_to_use_a_dot(typed: str, dotted: str) -> None:
    with pytest.raises(AnswerError, match=f"use a dot for decimals: {re.escape(dotted)}"):
        parse_value(typed)


@pytest.mark.parametrize("typed", ["0x22", "0b11", "0o17", "-0X1F", "2 + 0b1"])
def test_hexadecimal_binary_and_octal_are_refused(typed: str) -> None:
    with pytest.raises(AnswerError, match="decimal number"):
        parse_value(typed)
