"""The `graph` command: value, gradients and view; --predict prompts; --json; usage errors.
Expected numbers come from formulas or separate torch computations, never from the tool.
--predict in a real terminal is in test_pty_commands.py."""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass

import pytest
import torch
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from autograd_tutor.views.env import Environment
from autograd_tutor.views.graph_view import number
from autograd_tutor.views.playground import run_graph
from autograd_tutor.views.ui import UI


@dataclass
class Run:
    status: int
    out: str
    err: str


def play(expression: str, *at: str, stdin: str = "", **options) -> Run:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(stdin), stdout=out, stderr=err, stdin_isatty=False,
                      stdout_isatty=False, stderr_isatty=False, no_color=True, dumb=False)
    ui = UI(env, as_json=options.get("as_json", False))
    ui.out.width = ui.err.width = 100
    status = run_graph(expression, list(at), ui=ui, **options)
    return Run(status, out.getvalue(), err.getvalue())


def grads_of(fn, **values: float) -> tuple[float, dict[str, float]]:
    tensors = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True)
               for n, v in values.items()}
    out = fn(**tensors)
    grads = torch.autograd.grad(out, list(tensors.values()))
    return out.item(), {n: g.item() for n, g in zip(tensors, grads, strict=True)}


def flat(text: str) -> str:
    return " ".join(text.split())


# Human output --------------------------------------------------------------------------


def test_polynomial_paths_view():
    x = 3.0
    run = play("x**3 + 2*x**2 - 5*x + 1", "x=3", view="paths")
    assert run.status == EXIT_OK and run.err == ""
    text = flat(run.out)
    assert f"value f = {number(x**3 + 2 * x**2 - 5 * x + 1)}" in text
    assert f"df/dx = {number(3 * x**2 + 4 * x - 5)}" in text
    assert "27 + 12 - 5 = 34 = x.grad" in text


@pytest.mark.parametrize("view", ["tree", "table", "paths"])
def test_two_variables_every_view(view):
    value, grads = grads_of(lambda x, w: x * w + torch.sin(x), x=1.0, w=2.0)
    run = play("x*w + sin(x)", "x=1", "w=2", view=view)
    text = flat(run.out)
    assert run.status == EXIT_OK
    assert f"value f = {number(value)}" in text
    assert f"df/dx = {number(grads['x'])}" in text and f"df/dw = {number(grads['w'])}" in text
    assert "Autograd graph of f" in text


def test_view_none_prints_no_graph():
    run = play("x**2", "x=3", view="none")
    assert run.status == EXIT_OK and "Autograd graph" not in run.out
    assert f"df/dx = {number(2 * 3.0)}" in flat(run.out)


def test_at_values_use_the_answer_syntax():
    run = play("x**2", "x=-1/2")
    assert f"df/dx = {number(2 * -0.5)}" in flat(run.out)


def test_no_variables():
    run = play("2 + 3")
    assert run.status == EXIT_OK
    assert f"value f = {number(2 + 3)}" in flat(run.out) and "nothing to differentiate" in run.out


def test_expression_that_is_a_single_variable():
    run = play("x", "x=4")
    assert run.status == EXIT_OK and "dx/dx" not in run.out
    assert "df/dx = 1" in flat(run.out)


@pytest.mark.parametrize(("expression", "at", "fn"), [
    ("f + output", ("f=1", "output=2"), lambda f, output: f + output),
    ("f * output * result", ("f=2", "output=3", "result=5"),
     lambda f, output, result: f * output * result),
])
def test_variables_named_like_the_output(expression, at, fn):
    """The output takes a name no variable has; every leaf keeps its variable's name and each
    gradient line names the variable it is for."""
    values = {name: float(v) for name, v in (item.split("=") for item in at)}
    value, grads = grads_of(fn, **values)
    run = play(expression, *at, view="tree")
    text = flat(run.out)
    output = next(n for n in ("f", "output", "result", "f1") if n not in values)
    assert f"value {output} = {number(value)}" in text
    for name, grad in grads.items():
        assert f"d{output}/d{name} = {number(grad)} ({name}.grad)" in text
    assert f"Autograd graph of {output}" in text
    assert not re.search(r"d(\w+)/d\1 ", text)  # no `doutput/doutput`
    data = json.loads(play(expression, *at, as_json=True).out)
    leaves = [n for n in data["nodes"] if n["kind"] == "leaf"]
    assert sorted(n["name"] for n in leaves) == sorted(values)  # every leaf named
    for leaf in leaves:
        assert math.isclose(leaf["grad"], grads[leaf["name"]], rel_tol=1e-12)
    assert data["nodes"][0]["name"] == output


def test_depth_limits_the_tree():
    run = play("sin(cos(tan(exp(x))))", "x=0.1", depth=2)
    assert "below depth" in run.out


def test_nodes_by_op_counts_every_node():
    """Ops beyond the ones named are summed after an ellipsis, never dropped silently."""
    expression = "sigmoid(relu(sin(cos(tan(exp(log(sqrt(abs(tanh(x))))))))))*x/x-x"
    nodes = json.loads(play(expression, "x=0.5", as_json=True).out)["nodes"]
    line = flat(play(expression, "x=0.5", depth=2).out).split("Nodes by op: ")[1]
    named = [int(count) for count in re.findall(r"\w+ (\d+)(?= ·|\.$| · …)", line)]
    more = re.search(r"… and (\d+) more ops \((\d+) nodes\)", line)
    assert more is not None, line
    kinds = {node["op"] for node in nodes}
    assert len(named) + int(more.group(1)) == len(kinds)
    assert sum(named) + int(more.group(2)) == len(nodes)


def test_dumb_terminal_gets_ascii():
    out = io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=io.StringIO(), stdin_isatty=False,
                      stdout_isatty=False, stderr_isatty=False, no_color=True, dumb=True)
    assert run_graph("x*x + x", ["x=2"], ui=UI(env)) == EXIT_OK
    assert out.getvalue().isascii()


# JSON ----------------------------------------------------------------------------------


def test_json_is_one_object_with_independent_numbers():
    value, grads = grads_of(lambda x, w: x**2 * w + torch.exp(w), x=3.0, w=0.5)
    run = play("x**2*w + exp(w)", "x=3", "w=0.5", as_json=True)
    assert run.status == EXIT_OK and run.err == ""
    data = json.loads(run.out)
    assert run.out.strip().count("\n") == 0
    assert {"expression", "value", "gradients", "nodes", "edges"} <= set(data)
    assert data["expression"] == "x**2*w + exp(w)"
    assert math.isclose(data["value"], value, rel_tol=1e-12)
    assert data["gradients"].keys() == grads.keys()
    for name, grad in grads.items():
        assert math.isclose(data["gradients"][name], grad, rel_tol=1e-12)
    nodes = {n["id"]: n for n in data["nodes"]}
    assert all({"id", "op", "value", "grad"} <= set(n) for n in data["nodes"])
    assert all({"from", "to", "local", "contribution"} <= set(e) for e in data["edges"])
    leaf = next(n for n in data["nodes"] if n["name"] == "x")
    into_x = [e["contribution"] for e in data["edges"] if e["to"] == leaf["id"]]
    assert math.isclose(sum(into_x), grads["x"], rel_tol=1e-12)
    assert nodes[0]["name"] == "f" and math.isclose(nodes[0]["value"], value, rel_tol=1e-12)


def test_json_not_a_number_is_null():
    data = json.loads(play("log(x)", "x=-1", as_json=True).out)
    assert data["value"] is None
    assert data["gradients"]["x"] == pytest.approx(1 / -1.0)


def test_json_with_predictions_keeps_stdout_clean():
    run = play("x**2", "x=3", as_json=True, predict=True, stdin=f"{2 * 3}\n")
    data = json.loads(run.out)
    assert data["predictions"]["x"]["correct"] is True
    assert "Predict d(x**2)/dx" in run.err and "right" in run.err


# Predictions ---------------------------------------------------------------------------


def test_predict_asks_before_revealing():
    _, grads = grads_of(lambda x, w: x * w, x=2.0, w=5.0)
    answers = f"{number(grads['x'])}\n{number(grads['w'] + 1)}\n"
    run = play("x*w", "x=2", "w=5", predict=True, stdin=answers)
    assert run.status == EXIT_OK
    first_prompt = run.out.index("Predict d(x*w)/dx at x=2, w=5")
    assert run.out.index("Predict d(x*w)/dw") > first_prompt
    reveal = run.out.index("df/dx =")
    assert reveal > run.out.index("Predict d(x*w)/dw")  # nothing revealed before the answers
    text = flat(run.out)
    assert f"you predicted {number(grads['x'])}: right" in text
    assert f"you predicted {number(grads['w'] + 1)}: wrong" in text


def test_predict_hint_skip_and_invalid_input():
    run = play("x*w", "x=2", "w=5", predict=True, stdin="?\n?\n?\nnot a number\n10\nskip\n")
    assert run.status == EXIT_OK
    assert run.out.count("Predict d(x*w)/dx") == 5  # asked again after each hint and the error
    assert "Hint 1/2" in run.out and "Hint 2/2" in run.out and "No more hints" in run.out
    assert "Not counted" in run.out
    assert "you skipped" in run.out


def test_predict_four_significant_digits_are_enough():
    _, grads = grads_of(lambda x: torch.sin(x), x=1.0)
    typed = f"{grads['x']:.4f}"
    run = play("sin(x)", "x=1", predict=True, stdin=typed + "\n")
    assert f"you predicted {typed}: right" in flat(run.out)


def test_end_of_input_is_exit_1_with_one_line():
    run = play("x**2", "x=3", predict=True, stdin="")
    assert run.status == EXIT_FAILED
    assert run.err.strip().count("\n") == 0 and "input ended" in run.err


@pytest.mark.parametrize("stdin", ["3\n", "3\nq\n"], ids=["end-of-input", "q"])
def test_json_stopped_early_prints_what_was_done(stdin):
    _, grads = grads_of(lambda x, y: x * y, x=2.0, y=3.0)
    run = play("x*y", "x=2", "y=3", as_json=True, predict=True, stdin=stdin)
    assert run.status == EXIT_FAILED
    assert run.out.strip().count("\n") == 0
    data = json.loads(run.out)
    assert data["completed"] is False and data["expression"] == "x*y"
    assert data["at"] == {"x": 2.0, "y": 3.0}
    assert list(data["predictions"]) == ["x"]  # only the one answered
    assert data["predictions"]["x"]["prediction"] == 3.0
    assert data["predictions"]["x"]["correct"] is math.isclose(3.0, grads["x"])
    assert "gradients" not in data and "value" not in data  # nothing unasked is revealed


def test_json_completed_run_says_so():
    run = play("x*y", "x=2", "y=3", as_json=True, predict=True, stdin="3\n2\n")
    assert run.status == EXIT_OK and json.loads(run.out)["completed"] is True


def test_cli_json_stopped_early_exit_1_with_the_object():
    result = CliRunner().invoke(app, ["graph", "x*y", "--at", "x=2", "--at", "y=3", "--predict",
                                      "--json"], input="3\n")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["completed"] is False and list(data["predictions"]) == ["x"]


def test_q_stops():
    run = play("x**2", "x=3", predict=True, stdin="q\n")
    assert run.status == EXIT_FAILED and "df/dx" not in run.out


# Usage errors --------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "at", "fragment"), [
    ("x*w", ["x=1"], "no value for w"),
    ("x*w", [], "no value for x, w"),
    ("x", ["x=1", "y=2"], "--at y: not in the expression"),
    ("x", ["x"], "write NAME=NUMBER"),
    ("x", ["x=abc"], "--at 'x=abc'"),
    ("x", ["x=1", "x=2"], "given twice"),
    ("x", ["x=None"], "x needs a finite number"),
    ("x", ["x=nan"], "x needs a finite number"),
    ("x", ["x=-inf"], "x needs a finite number"),
    ("x", ["x=1/0"], "x needs a finite number"),
    ("x", ["1x=2"], "not a variable name"),
    ("x +", ["x=1"], "cannot read the expression"),
    ("__import__('os')", [], "unknown function '__import__'"),
    ("x.real", ["x=1"], "attribute access"),
    ("x**1000", ["x=1"], "exponents larger than"),
    ("", [], "empty"),
])
def test_usage_errors_exit_2_with_one_line(expression, at, fragment):
    run = play(expression, *at)
    assert run.status == EXIT_USAGE
    assert run.out == ""
    assert run.err.startswith("error: ") and run.err.strip().count("\n") == 0
    assert fragment in run.err


def test_bad_view_and_depth():
    assert play("x", "x=1", view="sideways").status == EXIT_USAGE
    assert play("x", "x=1", depth=0).status == EXIT_USAGE


def test_a_flat_sum_is_not_nested():
    """41 terms side by side are one level of nesting, not 41 (the limit is 40)."""
    terms = 41
    run = play(" + ".join(["x"] * terms), "x=3", as_json=True)
    assert run.status == EXIT_OK, run.err
    value, grads = grads_of(lambda x: torch.stack([x] * terms).sum(), x=3.0)
    data = json.loads(run.out)
    assert data["value"] == value and data["gradients"] == grads
    # Real nesting is still refused.
    assert "more than 40 levels" in play("(" * 41 + "x" + ")" * 41, "x=1").err


def test_a_large_finite_at_value_is_accepted():
    run = play("x*2", "x=1e308", as_json=True)
    assert run.status == EXIT_OK, run.err
    x = torch.tensor(1e308, dtype=torch.float64, requires_grad=True)
    (x * 2).backward()
    data = json.loads(run.out)
    assert data["at"] == {"x": 1e308} and data["gradients"] == {"x": x.grad.item()}
    beyond = play("x", "x=1e309")
    assert beyond.status == EXIT_USAGE and "too large for a float64" in beyond.err
    assert "finite" not in beyond.err


@pytest.mark.parametrize(("expression", "product"), [
    ("2x", "2*x"), ("x + 2.5y", "2.5*y"), ("3sin(x)", "3*sin(...)"), ("2(x + 1)", "2*(...)")])
def test_a_number_before_a_name_says_write_a_product(expression, product):
    run = play(expression, "x=3", "y=1")
    assert run.status == EXIT_USAGE
    assert f"write {product}" in run.err and "literal" not in run.err


def test_caret_means_power_as_in_predictions():
    run = play("x^3 + 2^x", "x=2", as_json=True)
    assert run.status == EXIT_OK, run.err
    value, grads = grads_of(lambda x: x**3 + 2**x, x=2.0)
    data = json.loads(run.out)
    assert math.isclose(data["value"], value) and math.isclose(data["gradients"]["x"],
                                                               grads["x"])


# Through the CLI -----------------------------------------------------------------------


def test_cli_graph_command():
    x = 3.0
    result = CliRunner().invoke(app, ["graph", "x**3 + 2*x**2 - 5*x + 1", "--at", "x=3",
                                      "--view", "paths"])
    assert result.exit_code == 0, result.output
    assert f"df/dx = {number(3 * x**2 + 4 * x - 5)}" in flat(result.output)


def test_cli_graph_json_and_usage_error():
    result = CliRunner().invoke(app, ["graph", "x*w", "--at", "x=2", "--at", "w=-1", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["gradients"] == {"x": -1.0, "w": 2.0}
    result = CliRunner().invoke(app, ["graph", "x*w", "--at", "x=2"])
    assert result.exit_code == 2 and "no value for w" in result.output
