"""The live training view: sparkline properties, and `live_range` as a drop-in for range."""

from __future__ import annotations

import io
import math
import re

import pytest
import torch
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from autograd_tutor.views.training_view import BLOCKS, live_range, sparkline

ANSI = re.compile(r"\x1b\[")
ANSI_CODE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
FINITE = st.floats(allow_nan=False, allow_infinity=False)
PROPERTY = settings(max_examples=examples(200), deadline=None)

# The notebook's Exercise 4 loop, exactly as the engine runs it.
NOTEBOOK_LOOP = """
for step in range(200):
    y_pred = w * X + b
    loss = ((y_true - y_pred) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= learning_rate * w.grad
        b -= learning_rate * b.grad
    w.grad.zero_()
    b.grad.zero_()
    losses.append(loss.item())
    if (step + 1) % 40 == 0:
        print(f"Step {step+1:3d}: loss = {loss.item():.4f}, w = {w.item():.4f}, b = {b.item():.4f}")
"""


def notebook_namespace() -> dict:
    torch.manual_seed(42)
    X = torch.linspace(-3, 3, 20)
    return {
        "torch": torch,
        "X": X,
        "y_true": 2 * X + 1 + torch.randn(20) * 0.3,
        "w": torch.tensor(0.0, requires_grad=True),
        "b": torch.tensor(0.0, requires_grad=True),
        "learning_rate": 0.01,
        "losses": [],
    }


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def plain() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=100), out


# --- sparkline ----------------------------------------------------------------------------


@PROPERTY
@given(st.lists(FINITE, max_size=300), st.integers(min_value=0, max_value=120))
def test_sparkline_length_and_alphabet(values, width):
    line = sparkline(values, width)
    assert len(line) == min(len(values), max(width, 0))
    assert set(line) <= set(BLOCKS)


@PROPERTY
@given(st.lists(FINITE, min_size=1, max_size=60))
def test_sparkline_keeps_the_order_of_values(values):
    line = sparkline(values, 60)
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            if a < b:
                assert BLOCKS.index(line[i]) <= BLOCKS.index(line[j])


@PROPERTY
@given(st.lists(FINITE, min_size=2, max_size=60, unique=True))
def test_sparkline_spans_lowest_to_highest_block(values):
    line = sparkline(values, 60)
    assert line[values.index(min(values))] == BLOCKS[0]
    assert line[values.index(max(values))] == BLOCKS[-1]


def test_sparkline_edge_cases():
    assert sparkline([], 10) == ""
    assert sparkline([1.0, 2.0], 0) == ""
    assert sparkline([5.0, 5.0, 5.0], 10) == BLOCKS[0] * 3


def test_sparkline_squeezes_long_series_in_order():
    line = sparkline([float(v) for v in range(1000)], 8)
    assert line == BLOCKS


def test_sparkline_of_a_falling_loss_falls():
    line = sparkline([13.9 * 0.97**i for i in range(200)], 40)
    assert line[0] == BLOCKS[-1] and line[-1] == BLOCKS[0]
    assert all(BLOCKS.index(a) >= BLOCKS.index(b) for a, b in zip(line, line[1:], strict=False))


# --- live_range ---------------------------------------------------------------------------


@pytest.mark.parametrize("animate", [False, True])
@pytest.mark.parametrize("args", [(200,), (0,), (3, 10), (10, 0, -3)])
def test_live_range_yields_what_range_yields(animate, args):
    console, _ = terminal()
    steps = live_range(console, {"losses": []}, animate, duration=0)
    assert list(steps(*args)) == list(range(*args))


def test_live_range_rejects_what_range_rejects():
    console, _ = plain()
    with pytest.raises(TypeError):
        live_range(console, {}, False)(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("animate", [False, True])
def test_nothing_is_written_to_a_non_terminal(animate):
    console, out = plain()
    ns = notebook_namespace()
    ns["range"] = live_range(console, ns, animate, duration=0)
    exec(NOTEBOOK_LOOP.replace("print(", "console.print("), {**ns, "console": console}, ns)
    assert len(ns["losses"]) == 200
    assert not ANSI.search(out.getvalue())
    assert "Step 200" in out.getvalue()
    assert "200/200" not in out.getvalue()


def test_animate_false_writes_nothing_even_to_a_terminal():
    console, out = terminal()
    steps = live_range(console, {"losses": [1.0], "w": 2.0, "b": 1.0}, False, duration=0)
    assert list(steps(5)) == [0, 1, 2, 3, 4]
    assert out.getvalue() == ""


def test_the_view_shows_progress_loss_w_b_and_the_sparkline():
    console, out = terminal()
    ns = notebook_namespace()
    ns["range"] = live_range(console, ns, True, duration=0)
    exec(NOTEBOOK_LOOP, ns)

    shown = out.getvalue()
    w, b = ns["w"].item(), ns["b"].item()
    assert "200/200" in shown
    assert f"w = {w:.4f}" in shown and f"b = {b:.4f}" in shown
    assert f"{ns['losses'][-1]:.4f}" in shown
    # The loss falls fast then slowly; the view draws it on a log scale so the tail shows.
    assert sparkline([math.log10(value) for value in ns["losses"]], 60) in shown


def test_the_view_does_not_change_training():
    plain_ns = notebook_namespace()
    exec(NOTEBOOK_LOOP.replace("print(", "str("), plain_ns)
    console, _ = terminal()
    live_ns = notebook_namespace()
    live_ns["range"] = live_range(console, live_ns, True, duration=0)
    exec(NOTEBOOK_LOOP.replace("print(", "str("), live_ns)
    assert live_ns["losses"] == plain_ns["losses"]
    assert live_ns["w"].item() == plain_ns["w"].item()
    assert live_ns["b"].item() == plain_ns["b"].item()


def test_prints_in_the_loop_still_appear():
    # Live redirects stdout while it runs, so the notebook's print()s land above the view.
    console, out = terminal()
    ns = notebook_namespace()
    ns["range"] = live_range(console, ns, True, duration=0)
    exec(NOTEBOOK_LOOP, ns)
    shown = ANSI_CODE.sub("", out.getvalue())
    for step in (40, 80, 120, 160, 200):
        assert f"Step {step:3d}: loss = " in shown


@pytest.mark.parametrize("ending", ["raise", "break"])
def test_leaving_the_loop_early_stops_the_display(ending):
    console, _ = terminal()
    ns: dict = {"losses": []}
    steps = live_range(console, ns, True, duration=0)
    code = f"for i in steps(10):\n    losses.append(float(i))\n    if i == 3:\n        {ending}\n"
    if ending == "raise":
        code = code.replace("raise", "raise ValueError('boom')")
        with pytest.raises(ValueError):
            exec(code, {"steps": steps, **ns})
    else:
        exec(code, {"steps": steps, **ns})
    # A display left running would make this second one fail ("Only one live display").
    assert list(steps(3)) == [0, 1, 2]
