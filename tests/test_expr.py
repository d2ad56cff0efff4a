"""The playground's expression parser: valid input equals the same function written in Python
and run through PyTorch; hostile input gives ExprError only, and nothing is ever run."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd_tutor
from autograd_tutor.engine.expressions import (
    FUNCTIONS,
    MAX_DEPTH,
    ExprError,
    Expression,
    parse_expression,
)

F64 = torch.float64


def value_and_grads(fn, values: dict[str, float]) -> tuple[float, dict[str, float]]:
    """Run a plain Python function of torch tensors; return its value and gradients."""
    tensors = {n: torch.tensor(v, dtype=F64, requires_grad=True) for n, v in values.items()}
    out = fn(**tensors)
    grads = torch.autograd.grad(out, list(tensors.values()), allow_unused=True)
    return out.item(), {n: (g.item() if g is not None else 0.0)
                        for n, g in zip(tensors, grads, strict=True)}


def parsed_value_and_grads(expression: Expression, values: dict[str, float]):
    tensors = {n: torch.tensor(v, dtype=F64, requires_grad=True) for n, v in values.items()}
    out = expression.build(tensors)
    out.backward()
    return out.item(), {n: (t.grad.item() if t.grad is not None else 0.0)
                        for n, t in tensors.items()}


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


# Valid expressions ---------------------------------------------------------------------

CASES = [
    ("x**3 + 2*x**2 - 5*x + 1", lambda x: x**3 + 2 * x**2 - 5 * x + 1, {"x": 3.0}),
    ("(x*w1 + b)*w2", lambda x, w1, b, w2: (x * w1 + b) * w2,
     {"x": 2.0, "w1": 3.0, "b": 0.5, "w2": -1.0}),
    ("x*x", lambda x: x * x, {"x": -1.5}),
    ("x + x", lambda x: x + x, {"x": 4.0}),
    ("-x**2", lambda x: -x**2, {"x": 3.0}),
    ("+x - -x", lambda x: +x - -x, {"x": 2.0}),
    ("2**x", lambda x: 2**x, {"x": 1.5}),
    ("x**y", lambda x, y: x**y, {"x": 2.0, "y": 0.5}),
    ("1/x", lambda x: 1 / x, {"x": 4.0}),
    ("x/0", lambda x: x / 0.0, {"x": 1.0}),
    ("sin(x)*cos(x) + tan(x)", lambda x: torch.sin(x) * torch.cos(x) + torch.tan(x), {"x": 0.3}),
    ("exp(-x) + log(x) + sqrt(x)", lambda x: torch.exp(-x) + torch.log(x) + torch.sqrt(x),
     {"x": 2.0}),
    ("abs(x) + tanh(x) + sigmoid(x) + relu(x)",
     lambda x: torch.abs(x) + torch.tanh(x) + torch.sigmoid(x) + torch.relu(x), {"x": -0.7}),
    ("relu(x*w - 1)", lambda x, w: torch.relu(x * w - 1), {"x": 0.1, "w": 2.0}),
    ("log(x)", lambda x: torch.log(x), {"x": -1.0}),
    ("sin(2) * x", lambda x: torch.sin(torch.tensor(2.0, dtype=F64)) * x, {"x": 1.0}),
    ("2*3*x", lambda x: 2 * 3 * x, {"x": 1.25}),
    ("x**(1/2)", lambda x: x ** (1 / 2), {"x": 9.0}),
    ("((((x))))", lambda x: x, {"x": 1.0}),
    ("  x +\t1 ", lambda x: x + 1, {"x": 1.0}),
    ("x1 * long_name", lambda x1, long_name: x1 * long_name, {"x1": 2.0, "long_name": 5.0}),
]


@pytest.mark.parametrize(("text", "fn", "values"), CASES, ids=[c[0] for c in CASES])
def test_same_as_python_through_torch(text, fn, values):
    expression = parse_expression(text)
    assert set(expression.variables) == set(values)
    value, grads = parsed_value_and_grads(expression, values)
    ref_value, ref_grads = value_and_grads(fn, values)
    assert same(value, ref_value)
    for name in values:
        assert same(grads[name], ref_grads[name]), name


def test_variables_in_order_of_first_use():
    assert parse_expression("w*x + b*x + w").variables == ("w", "x", "b")
    assert parse_expression("2 + 3").variables == ()


def test_constant_expressions_follow_torch():
    assert parse_expression("2 + 3").build({}).item() == 5.0
    assert math.isinf(parse_expression("1/0").build({}).item())
    assert math.isnan(parse_expression("(-8)**(1/3)").build({}).item())


def test_allowed_names():
    parse_expression("x*w", allowed={"x": 1, "w": 2})
    with pytest.raises(ExprError, match="unknown names: y, z"):
        parse_expression("x*y + z", allowed={"x": 1})


def test_build_needs_every_variable():
    with pytest.raises(ExprError, match="no value for w"):
        parse_expression("x*w").build({"x": torch.tensor(1.0)})


# Random expressions against the same expression through torch --------------------------

NAMES = ("x", "y")


@st.composite
def trees(draw, depth: int = 0):
    """(text for the parser, Python function of torch tensors) built side by side."""
    if depth >= 4 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            name = draw(st.sampled_from(NAMES))
            return name, lambda env, name=name: env[name]
        number = draw(st.sampled_from((0.5, 1.0, 2.0, 3.0)))
        return repr(number), lambda env, number=number: number
    kind = draw(st.sampled_from(("bin", "bin", "neg", "fn")))
    if kind == "neg":
        text, fn = draw(trees(depth + 1))
        return f"(-({text}))", lambda env: -fn(env)
    if kind == "fn":
        name = draw(st.sampled_from(FUNCTIONS))
        text, fn = draw(trees(depth + 1))
        torch_fn = getattr(torch, name)

        def call(env, fn=fn, torch_fn=torch_fn):
            arg = fn(env)
            return torch_fn(arg if torch.is_tensor(arg) else torch.tensor(arg, dtype=F64))

        return f"{name}({text})", call
    op = draw(st.sampled_from(("+", "-", "*", "/", "**")))
    (lt, lf), (rt, rf) = draw(trees(depth + 1)), draw(trees(depth + 1))
    if op == "**":  # keep exponents small numbers, as a person would write them
        rt, rf = (t := draw(st.sampled_from(("2.0", "3.0", "0.5")))), (lambda env, t=t: float(t))
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
           "/": lambda a, b: a / b, "**": lambda a, b: a**b}

    def binary(env, lf=lf, rf=rf, f=ops[op]):
        a, b = lf(env), rf(env)
        if not torch.is_tensor(a) and not torch.is_tensor(b):
            a = torch.tensor(a, dtype=F64)
        return f(a, b)

    return f"({lt} {op} {rt})", binary


@settings(max_examples=examples(150), deadline=None)
@given(trees(), st.floats(-3, 3), st.floats(-3, 3))
def test_random_expressions_match_torch(tree, x, y):
    text, fn = tree
    expression = parse_expression(text)
    values = {"x": x, "y": y}
    tensors = {n: torch.tensor(v, dtype=F64, requires_grad=True) for n, v in values.items()}
    ours = expression.build(tensors)
    ref = fn(tensors)
    ref = ref if torch.is_tensor(ref) else torch.tensor(ref, dtype=F64)
    assert same(ours.item(), ref.item())
    if ours.requires_grad:
        grads = torch.autograd.grad(ours, list(tensors.values()), allow_unused=True)
        ref_tensors = {n: torch.tensor(v, dtype=F64, requires_grad=True)
                       for n, v in values.items()}
        ref_out = fn(ref_tensors)
        ref_grads = torch.autograd.grad(ref_out, list(ref_tensors.values()), allow_unused=True)
        for g, r in zip(grads, ref_grads, strict=True):
            assert (g is None) == (r is None)
            if g is not None:
                assert same(g.item(), r.item())


# Hostile input -------------------------------------------------------------------------

HOSTILE = [
    "__import__('os')",
    "__import__('os').system('echo hi')",
    "open('pwned', 'w')",
    "eval('1')",
    "exec('x=1')",
    "x.real",
    "x.__class__.__bases__",
    "().__class__",
    "os.system('ls')",
    "lambda: 1",
    "(lambda x: x)(2)",
    "[i for i in range(3)]",
    "{i for i in x}",
    "{i: i for i in x}",
    "sum(i for i in x)",
    "2**10**10",
    "9**9**9**9",
    "x**1000",
    "x**-100",
    "x**(10**400)",
    "1e400",
    "1" * 400,
    "(" * 100 + "x" + ")" * 100,
    "-" * 100 + "x",
    "sin(" * 45 + "x" + ")" * 45,
    "+".join(["x"] * 200),
    "",
    "   ",
    "\t",
    "x\n+1",
    "x\r",
    "ｘ + 1",
    "x + é",
    "π * x",
    "x\u200b+1",
    "\x00",
    "x; y",
    "import os",
    "x = 1",
    "x := 1",
    "x if x else 1",
    "x < 1",
    "x and y",
    "not x",
    "~x",
    "x // 2",
    "x % 2",
    "x @ y",
    "x[0]",
    "x[1:2]",
    "'a'",
    "b'a'",
    "f'{x}'",
    "True",
    "None",
    "...",
    "1j",
    "[x]",
    "(x, y)",
    "{x}",
    "{'a': x}",
    "*x",
    "sin",
    "sin(x, y)",
    "sin()",
    "sin(x=1)",
    "sin(*x)",
    "foo(x)",
    "_x",
    "__builtins__",
    "x" * 31,
    "await x",
    "yield x",
    "x +",
    "sin(x",
    ")",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_gives_expr_error_only(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExprError) as caught:
        parse_expression(text)
    assert str(caught.value)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # nothing was run


@settings(max_examples=examples(400), deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_gives_expr_error(text):
    try:
        expression = parse_expression(text)
    except ExprError:
        return
    assert isinstance(expression, Expression)


@settings(max_examples=examples(300), deadline=None)
@given(st.text(alphabet="xy0123456789.+-*/()e ", max_size=40))
def test_arithmetic_soup_parses_or_gives_expr_error(text):
    try:
        expression = parse_expression(text)
    except ExprError:
        return
    tensors = {n: torch.tensor(1.5, dtype=F64, requires_grad=True) for n in expression.variables}
    expression.build(tensors)  # must not raise either


@pytest.mark.parametrize(("text", "column", "snippet"), [
    ("x + foo(2)", 5, "foo"),
    ("__import__('os')", 1, "__import__"),
    ("x + os.system('ls')", 5, "os.system"),
    ("x + é", 5, "é"),
    ("2 * x**1000", 8, "1000"),
    ("x * (lambda: 1)", 6, "lambda: 1"),
    ("  x + )", 7, ")"),
])
def test_errors_point_at_the_offending_part(text, column, snippet):
    with pytest.raises(ExprError) as caught:
        parse_expression(text)
    assert caught.value.column == column
    assert f"column {column}: {snippet!r}" in str(caught.value)
    assert caught.value.caret().splitlines()[1] == " " * (column - 1) + "^" * len(snippet)


def test_messages_name_what_is_wrong():
    cases = {
        "foo(x)": "unknown function 'foo'",
        "x.real": "attribute access",
        "lambda: 1": "lambda",
        "[i for i in x]": "comprehension",
        "2**10**10": "exponents larger than",
        "": "empty",
        "2x": "write 2*x",
        "sin": "sin is a function",
        "sin(x, y)": "exactly one argument",
        "ｘ": "FULLWIDTH LATIN SMALL LETTER X",
        "sin(" * 45 + "x" + ")" * 45: f"more than {MAX_DEPTH} levels",
        "x +": "at the end of the expression",
    }
    for text, fragment in cases.items():
        with pytest.raises(ExprError, match=None) as caught:
            parse_expression(text)
        assert fragment in str(caught.value), text


def test_parsing_does_not_import_torch():
    code = ("import sys\nfrom autograd_tutor.engine.expressions import parse_expression\n"
            "import autograd_tutor.views.graph_view\n"
            "parse_expression('sin(x)**2 + w')\nprint('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_typos_python_warns_about_give_only_our_error(tmp_path):
    """`1if x` makes Python's parser warn "invalid decimal literal"; the learner sees only the
    parser's one-line error (the filter is on the parser's own filename, no catch_warnings)."""
    code = ("import warnings\nwarnings.simplefilter('default')\n"
            "from autograd_tutor.engine.expressions import ExprError, parse_expression\n"
            "for text in ('1if x', '0x1for x', '1_000if x else 2'):\n"
            "    try:\n        parse_expression(text)\n"
            "    except ExprError as error:\n        print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert "Warning" not in result.stderr and result.stderr == ""
    assert len(result.stdout.splitlines()) == 3  # each one the parser's own error
    cli = subprocess.run([sys.executable, "-m", "autograd_tutor", "graph", "1if x", "--at", "x=1"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "AUTOGRAD_TUTOR_HOME": str(tmp_path), "NO_COLOR": "1"})
    assert cli.returncode == 2
    assert "SyntaxWarning" not in cli.stderr and "Traceback" not in cli.stderr
    assert "error: cannot read the expression" in cli.stderr


@pytest.mark.parametrize(("module", "call"), [
    ("autograd_tutor.engine.expressions", "parse_expression(text)"),
    ("autograd_tutor.engine.answers", "parse_value(text)"),
])
def test_a_typo_python_warns_about_while_parsing_stays_quiet(module: str, call: str) -> None:
    """Found by the token soup: an invalid escape in what was typed is a warning of Python's
    (DeprecationWarning before 3.12, SyntaxWarning after), never shown to the learner."""
    code = (f"from {module} import *\ntext = '\"\\\\_\"'\n"
            f"try:\n    {call}\nexcept Exception:\n    pass\n")
    result = subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-W",
                             "always::SyntaxWarning", "-c", code], capture_output=True,
                            text=True, timeout=60, env=autograd_tutor.child_environment())
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr
