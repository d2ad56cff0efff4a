"""The tree, table and paths views: content checked against independent numbers, snapshots at a
fixed width, path sums for random expressions (hypothesis), large graphs, ASCII and escaping.

Snapshots live in tests/snapshots/; after an intended change of the views, regenerate them with
UPDATE_SNAPSHOTS=1 and review the diff.
"""

from __future__ import annotations

import io
import math
import os
import re
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from autograd_tutor.engine.graph import CapturedGraph, GraphEdge, GraphNode, GraphRecorder
from autograd_tutor.views.graph_view import VIEWS, Paths, number, render

SNAPSHOTS = Path(__file__).parent / "snapshots"
WIDTH = 100

EX1 = """
x = torch.tensor(3.0, requires_grad=True)
y = x**3 + 2*x**2 - 5*x + 1
y.backward()
"""
EX5_FLOW = """
a = torch.tensor(2.0, requires_grad=True)
b = a * 3
c = b ** 2
c.backward()
"""
EX5_DETACH = """
a = torch.tensor(2.0, requires_grad=True)
b = a * 3
b_detached = b.detach()
c = b_detached ** 2
c.backward()
"""
EX3 = """
x = torch.tensor(3.0, requires_grad=True)
y = x ** 2
y.backward()
y = x ** 2
y.backward()
"""


def graph_of(code: str, last: bool = True) -> CapturedGraph:
    """The (last) graph the code's backward() built, named after its variables; a failed
    backward gives its failed attempt."""
    ns = {"torch": torch}
    with GraphRecorder() as rec:
        try:
            exec(code, ns)
        except RuntimeError:
            pass
    return rec.attempts[-1 if last else 0].named(ns)


def text_of(graph: CapturedGraph, view: str, ascii: bool = False, **options) -> str:
    console = Console(width=WIDTH, record=True, color_system=None)
    console.print(render(graph, view, width=WIDTH, depth=options.pop("depth", None),
                         ascii=ascii, **options))
    lines = console.export_text().splitlines()
    return "\n".join(line.rstrip() for line in lines) + "\n"


def flat(text: str) -> str:
    return " ".join(text.split())


# Snapshots ---------------------------------------------------------------------------


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize(("name", "code"), [
    ("ex1", EX1), ("ex5_flow", EX5_FLOW), ("ex5_detach", EX5_DETACH),
])
def test_snapshot(name, code, view):
    check_snapshot(f"{name}_{view}", text_of(graph_of(code), view))


def test_snapshot_ascii():
    check_snapshot("ex1_tree_ascii", text_of(graph_of(EX1), "tree", ascii=True))


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing snapshot {path.name}: run with UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")


# Exercise 1: the three paths ---------------------------------------------------------


def test_ex1_paths_are_the_three_terms_of_the_derivative():
    x = 3.0
    terms = [3 * x**2, 2 * (2 * x), -5.0]  # d/dx of x**3, 2*x**2 and -5*x
    graph = graph_of(EX1)
    paths = Paths(graph)
    leaf = graph.by_name("x")
    listed = paths.list(leaf.id, 10)
    assert [paths.product(p) for p in listed] == pytest.approx(terms)
    assert paths.count(leaf.id) == 3
    assert paths.total(leaf.id) == pytest.approx(sum(terms))
    text = flat(text_of(graph, "paths"))
    for term in terms:
        assert f"= {number(term)}" in text
    assert f"27 + 12 - 5 = {number(sum(terms))} = x.grad" in text


def test_ex1_table_has_edge_products_and_the_sum_line():
    x = 3.0
    text = flat(text_of(graph_of(EX1), "table"))
    assert f"1 × {number(3 * x**2)} = {number(3 * x**2)}" in text  # pow edge of x**3
    assert f"2 × {number(2 * x)} = {number(2 * 2 * x)}" in text  # pow edge of x**2, upstream 2
    assert "(-1) × 5 = -5" in text
    assert "sum into #10 x" in text and f"= {number(3 * x**2 + 4 * x - 5)}" in text
    for class_name in ("AddBackward0", "SubBackward0", "MulBackward0", "PowBackward0",
                       "AccumulateGrad"):
        assert class_name in text


def test_tree_draws_a_shared_node_once_and_marks_later_uses():
    text = text_of(graph_of(EX1), "tree")
    assert len(re.findall(r"#10 x \(leaf\)", text)) == 1
    assert len(re.findall(r"#10 x \(shown above\)", text)) == 2
    assert "used 3 times" in text


def test_x_plus_x_shows_two_edges():
    graph = graph_of("x = torch.tensor(2.0, requires_grad=True)\ny = x + x\ny.backward()\n")
    text = text_of(graph, "tree")
    assert text.count("1 × 1 = 1 → #1 x") == 2
    paths = flat(text_of(graph, "paths"))
    assert "2 paths" in paths and "1 + 1 = 2 = x.grad" in paths


# Exercise 3 and 5: accumulation and cuts ---------------------------------------------


def test_ex3_shows_previous_plus_incoming_equals_new_grad():
    g = 2 * 3.0  # d(x**2)/dx at 3
    expected = f"{number(g)} + {number(g)} = {number(2 * g)}"
    for view in VIEWS:
        assert expected in text_of(graph_of(EX3), view), view


def test_ex5_detach_views_say_the_path_is_cut():
    graph = graph_of(EX5_DETACH)
    for view in VIEWS:
        text = flat(text_of(graph, view))
        assert "element 0 of tensors does not require grad" in text
        assert "b_detached was made by b.detach(): a new leaf with no path back through b to a" \
            in text
    assert "c has no grad_fn" in flat(text_of(graph, "tree"))


def test_ex5_detached_leaf_variant():
    code = EX5_DETACH.replace("c = b_detached", "b_detached.requires_grad_()\nc = b_detached")
    text = flat(text_of(graph_of(code), "paths"))
    assert "b_detached: 1 path from c" in text
    assert "no path back through b to a" in text


# Large graphs ------------------------------------------------------------------------


def chain_graph(steps: int) -> tuple[CapturedGraph, torch.Tensor]:
    """y_{k+1} = y_k * w + y_k: every step doubles the paths to w (2**(steps+1) - 1)."""
    with GraphRecorder() as rec:
        w = torch.tensor(1.001, dtype=torch.float64, requires_grad=True)
        y = w
        for _ in range(steps):
            y = y * w + y
        y.backward()
    return rec.graphs[0].named({"w": w, "y": y}), w


def test_exponentially_many_paths_are_counted_not_listed():
    steps = 60
    graph, w = chain_graph(steps)
    leaf = graph.by_name("w")
    paths = Paths(graph)
    assert paths.count(leaf.id) == 2 ** (steps + 1) - 1
    assert paths.total(leaf.id) == pytest.approx(w.grad.item(), rel=1e-9)
    start = time.perf_counter()
    text = flat(text_of(graph, "paths", max_paths=5))
    assert time.perf_counter() - start < 5
    assert f"showing 5 of {2 ** (steps + 1) - 1:,} paths" in text
    assert f"together give {number(w.grad.item())} = w.grad" in text


def test_large_graph_views_are_cut_and_say_what_was_left_out():
    graph, _ = chain_graph(3000)
    assert len(graph.nodes) > 6000
    for view in VIEWS:
        start = time.perf_counter()
        text = text_of(graph, view)
        assert time.perf_counter() - start < 5, view
        assert len(text.splitlines()) < 200, view
        if view != "paths":
            assert re.search(r"showing [\d,]+ of [\d,]+ nodes; [\d,]+ left out", flat(text))
            assert "Nodes by op: add 3,000 · mul 3,000 · leaf 1" in flat(text)


def test_depth_limit():
    text = flat(text_of(graph_of(EX1), "tree", depth=2))
    assert "below depth" in text and "deeper than 2 levels" in text
    assert "27" not in text.split("showing")[0]  # the pow edge into x is deeper than 2


def test_views_fit_the_width():
    for code in (EX1, EX5_DETACH, EX3):
        for view in VIEWS:
            for line in text_of(graph_of(code), view).splitlines():
                assert len(line) <= WIDTH


# Narrow terminals: nothing cut, nothing split ------------------------------------------

EX2 = """
x = torch.tensor(2.0, requires_grad=True)
w1 = torch.tensor(3.0, requires_grad=True)
w2 = torch.tensor(-1.0, requires_grad=True)
b = torch.tensor(0.5, requires_grad=True)
h = x * w1
h_act = h + b
y = h_act * w2
h.retain_grad()
h_act.retain_grad()
y.backward()
"""
NARROW_WIDTHS = (40, 60, 100)


def text_at(graph: CapturedGraph, view: str, width: int, ascii: bool = False, **options) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(render(graph, view, width=width, ascii=ascii, **options))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def whole(token: str, text: str) -> bool:
    """`token` appears as a whole word: not split across lines, not part of a longer number
    or name (`-6.5` is not found in `-6` + newline + `.5`, nor `x` in `h_act`)."""
    return re.search(rf"(?<![\w.]){re.escape(token)}(?![\w.])", text) is not None


def class_names(output: torch.Tensor) -> set[str]:
    """grad_fn class names of the graph, walked here with torch's own next_functions."""
    names, stack = set(), [output.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is not None:
            names.add(type(fn).__name__)
            stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return names


def ex1_expected() -> dict[str, list[str]]:
    """Exercise 1 (y = x**3 + 2*x**2 - 5*x + 1 at x = 3) from the formula, per view."""
    x = 3.0
    values = [x**3 + 2 * x**2 - 5 * x + 1, x**3 + 2 * x**2 - 5 * x, x**3 + 2 * x**2, x**3,
              2 * x**2, x**2, 5 * x, x, 2, 5, 1]
    path_terms = [3 * x**2, 2 * (2 * x), -5.0]  # the three paths from y to x
    grads = [1.0, 2.0, -1.0, sum(path_terms)]  # y, sub, add, pow, mul: 1; x**2: 2; 5*x: -1
    labels = ["y", "x", "add", "sub", "pow", "mul"]
    t = torch.tensor(x, requires_grad=True)
    y = t**3 + 2 * t**2 - 5 * t + 1
    numbers = [number(v) for v in values + grads + path_terms]
    paths = labels + [number(v) for v in path_terms + [sum(path_terms)]]
    return {"tree": labels + numbers, "table": labels + numbers + sorted(class_names(y)),
            "paths": paths}


def ex2_expected() -> dict[str, list[str]]:
    """Exercise 2 from the chain rule by hand, per view."""
    x, w1, w2, b = 2.0, 3.0, -1.0, 0.5
    h = x * w1
    h_act = h + b
    y = h_act * w2
    leaf_grads = {"x": w2 * w1, "w1": w2 * x, "b": w2, "w2": h_act}
    grads = [1.0, w2, w2, *leaf_grads.values()]  # y, h_act, h, then the leaves
    values = [x, w1, w2, b, h, h_act, y]
    labels = ["y", "h_act", "h", "x", "w1", "w2", "b", "mul", "add"]
    tensors = {n: torch.tensor(v, requires_grad=True) for n, v in
               {"x": x, "w1": w1, "w2": w2, "b": b}.items()}
    out = (tensors["x"] * tensors["w1"] + tensors["b"]) * tensors["w2"]
    numbers = [number(v) for v in values + grads]
    locals_ = [number(v) for v in (w2, 1.0, w1, x, h_act)]  # local derivatives on the paths
    paths = labels[:7] + [number(v) for v in leaf_grads.values()] + locals_
    return {"tree": labels + numbers, "table": labels + numbers + sorted(class_names(out)),
            "paths": paths}


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
@pytest.mark.parametrize("width", NARROW_WIDTHS)
@pytest.mark.parametrize(("code", "expected"), [(EX1, ex1_expected), (EX2, ex2_expected)],
                         ids=["ex1", "ex2"])
def test_every_name_op_and_number_is_whole_at_every_width(code, expected, width, ascii):
    graph = graph_of(code)
    for view, tokens in expected().items():
        text = text_at(graph, view, width, ascii=ascii)
        assert max(len(line) for line in text.splitlines()) <= width, (view, width)
        missing = [token for token in tokens if not whole(token, text)]
        assert not missing, f"{view} at {width} columns: {missing} not whole in\n{text}"
        assert "…" not in text and "..." not in text, (view, width)  # nothing cut or left out
        assert "left out" not in text and "below depth" not in text, (view, width)


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize(("name", "code"), [("ex1", EX1), ("ex2", EX2)])
def test_snapshot_at_40_columns(name, code, view):
    check_snapshot(f"{name}_{view}_40", text_at(graph_of(code), view, 40))


@pytest.mark.parametrize("width", NARROW_WIDTHS)
def test_narrow_tree_reaches_every_node(width):
    text = text_at(graph_of(EX1), "tree", width)
    for node_id in range(11):  # Exercise 1 has 11 nodes; every one is drawn
        assert re.search(rf"#{node_id} ", text), (node_id, width)
    assert text.count("#10 x") == 3 and text.count("(leaf)") == 1  # drawn once, marked twice


def test_narrow_table_becomes_header_value_blocks_when_it_cannot_fit():
    text = text_at(graph_of(EX2), "table", 40)
    assert re.search(r"^\s+grad_fn: AccumulateGrad$", text, re.MULTILINE)
    assert re.search(rf"^\s+value: {re.escape(number(-6.5))}$", text, re.MULTILINE)
    wide = text_at(graph_of(EX2), "table", 100)
    assert "grad_fn:" not in wide  # a real table where it fits


def test_depth_cut_says_level_in_the_singular():
    text = flat(text_of(graph_of(EX1), "tree", depth=1))
    assert "deeper than 1 level)" in text and "1 levels" not in text


def test_a_graph_too_deep_for_a_narrow_terminal_is_cut_and_still_fits():
    graph, _ = chain_graph(200)
    text = text_at(graph, "tree", 40)
    assert max(len(line) for line in text.splitlines()) <= 40
    assert re.search(r"deeper than [\d,]+ levels", flat(text))


# ASCII and escaping ------------------------------------------------------------------


@pytest.mark.parametrize("view", VIEWS)
def test_ascii_mode_prints_only_ascii(view):
    for code in (EX1, EX5_DETACH, EX3):
        assert text_of(graph_of(code), view, ascii=True).isascii()


class AsciiFile(io.StringIO):
    """A stream that can only encode ASCII, like a terminal with LANG=C."""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "ascii"


def test_console_without_unicode_gets_ascii_automatically():
    console = Console(file=AsciiFile(), width=WIDTH, record=True, color_system=None)
    for view in VIEWS:
        console.print(render(graph_of(EX1), view, width=WIDTH))
    text = console.export_text()
    assert text.isascii() and "`-- " in text and " x " in text


def test_markup_in_names_and_ops_is_shown_literally():
    nodes = (
        GraphNode(0, "op", "[bold]evil[/bold]", "EvilBackward0", name="[red]y[/red]", value=1.0,
                  grad=1.0),
        GraphNode(1, "leaf", "leaf", "AccumulateGrad", name="[link=x]x[/link]", value=2.0,
                  grad=3.0),
    )
    graph = CapturedGraph(nodes, (GraphEdge(0, 1, 0, 1.0, 3.0, 3.0),))
    for view in VIEWS:
        text = text_of(graph, view)
        assert "[red]y[/red]" in text and "[link=x]x[/link]" in text, view
    assert "[bold]evil[/bold]" in text_of(graph, "tree")


# Property: path sums equal .grad -------------------------------------------------------

LEAVES = ("x", "w", "b")
OPS = ("+", "-", "*")


@st.composite
def expressions(draw, depth: int = 0):
    """Random expression trees over x, w, b, small numbers, + - * and a few functions."""
    if depth >= 4 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(LEAVES + ("2", "0.5", "3")))
    kind = draw(st.sampled_from(("op", "op", "op", "fn")))
    if kind == "fn":
        fn = draw(st.sampled_from(("torch.sin", "torch.tanh", "torch.exp", "torch.sigmoid")))
        argument = draw(expressions(depth + 1))
        # torch functions need a tensor; as_tensor leaves a float64 tensor as it is.
        return f"{fn}(torch.as_tensor({argument}, dtype=torch.float64))"
    op = draw(st.sampled_from(OPS))
    return f"({draw(expressions(depth + 1))} {op} {draw(expressions(depth + 1))})"


@settings(max_examples=60, deadline=None)
@given(expressions(), st.floats(-1.5, 1.5), st.floats(-1.5, 1.5), st.floats(-1.5, 1.5))
def test_path_sums_equal_grad(expression, x, w, b):
    values = {"x": x, "w": w, "b": b}
    code = "".join(f"{n} = torch.tensor({v!r}, dtype=torch.float64, requires_grad=True)\n"
                   for n, v in values.items())
    code += f"y = ({expression}) + 0 * (x + w + b)\ny.backward()\n"
    ns = {"torch": torch}
    with GraphRecorder() as rec:
        exec(code, ns)
    graph = rec.graphs[0].named(ns)
    paths = Paths(graph)
    for name in LEAVES:
        leaf = graph.by_name(name)
        assert leaf is not None
        grad = ns[name].grad.item()
        total = paths.total(leaf.id)
        assert total is not None and math.isclose(total, grad, rel_tol=1e-9, abs_tol=1e-9)
        listed = paths.list(leaf.id, 1000)
        if paths.count(leaf.id) <= 1000:
            assert len(listed) == paths.count(leaf.id)
            products = [paths.product(p) for p in listed]
            assert math.isclose(math.fsum(products), grad, rel_tol=1e-9, abs_tol=1e-9)
