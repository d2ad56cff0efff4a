"""The tree, table and paths views: content checked against independent numbers, snapshots at a
fixed width, path sums for random expressions (hypothesis), large graphs, ASCII and escaping.

Snapshots live in tests/snapshots/; after an intended change of the views, regenerate them with
UPDATE_SNAPSHOTS=1 and review the diff.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import time
from pathlib import Path

import pytest
import torch
from budget import examples
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
    assert len(re.findall(r"#10 x \(leaf, AccumulateGrad\)", text)) == 1
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
    assert text.count("#10 x") == 3 and text.count("(leaf,") == 1  # drawn once, marked twice


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


@settings(max_examples=examples(60), deadline=None)
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


# Exercise 4: a graph of tensors --------------------------------------------------------

EX4 = """
torch.manual_seed(42)
X = torch.linspace(-3, 3, 20)
y_true = 2 * X + 1 + torch.randn(20) * 0.3
w = torch.tensor(0.0, requires_grad=True)
b = torch.tensor(0.0, requires_grad=True)
learning_rate = 0.01
y_pred = w * X + b
loss = ((y_true - y_pred) ** 2).mean()
loss.backward()
"""
EX4_WIDTHS = (100, 40)
TENSOR = r"tensor\[(\d+)\] (\[[^\]]*\])"
QUANTITY = rf"(?:{TENSOR}|[^\s\[]+)"
NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?"


def ex4_reference() -> dict:
    """Exercise 4's first backward, recomputed here: forward values, dloss/d(each tensor) by
    torch.autograd.grad, local derivatives by torch.autograd.functional.jacobian, grad_fn
    class names from the tensors themselves, and the graph's size from next_functions."""
    torch.manual_seed(42)
    X = torch.linspace(-3, 3, 20)
    y_true = 2 * X + 1 + torch.randn(20) * 0.3
    w = torch.tensor(0.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    mul = w * X
    y_pred = mul + b
    sub = y_true - y_pred
    pow_ = sub**2
    loss = pow_.mean()
    tensors = {"loss": loss, "pow": pow_, "sub": sub, "y_pred": y_pred, "mul": mul, "w": w,
               "b": b}
    grads = dict(zip(tensors, torch.autograd.grad(loss, list(tensors.values())), strict=True))
    jac = torch.autograd.functional.jacobian
    d = {name: t.detach() for name, t in tensors.items()}
    # (src, dst) -> (factors per element, summed into a smaller input)
    locals_ = {
        ("loss", "pow"): (jac(torch.mean, d["pow"]), False),
        ("pow", "sub"): (torch.diagonal(jac(lambda t: t**2, d["sub"])), False),
        ("sub", "y_pred"): (torch.diagonal(jac(lambda t: y_true - t, d["y_pred"])), False),
        ("y_pred", "mul"): (torch.diagonal(jac(lambda t: t + d["b"], d["mul"])), False),
        ("y_pred", "b"): (jac(lambda t: d["mul"] + t, d["b"]), True),
        ("mul", "w"): (jac(lambda t: t * X, d["w"]), True),
    }
    classes = {name: type(t.grad_fn).__name__ for name, t in tensors.items() if t.grad_fn}
    ops, leaves, constants, edges, stack, seen = 0, 0, 0, 0, [loss.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen.add(fn)
        if type(fn).__name__ == "AccumulateGrad":
            leaves += 1
            classes[next(n for n in ("w", "b") if fn.variable is tensors[n])] = type(fn).__name__
            continue
        ops += 1
        for next_fn, _ in fn.next_functions:
            constants += next_fn is None
            edges += next_fn is not None
            if next_fn is not None:
                stack.append(next_fn)
    values = {**{n: t.detach() for n, t in tensors.items()}, "X": X, "y_true": y_true}
    return {"values": values, "grads": grads, "locals": locals_, "classes": classes,
            "sizes": (ops + leaves + constants, ops, leaves, constants, edges)}


class NumberCheck:
    """Compares numbers as printed with independent ones, and counts every number it
    compared, so a test can tell that none in the text went unchecked."""

    def __init__(self) -> None:
        self.count = 0

    def number(self, text: str, expected: float) -> None:
        """Printed by `number()`: rounded to four decimals (float32 noise aside)."""
        self.count += 1
        shown = float(text.strip("()"))
        assert abs(shown - expected) <= 0.5e-4 + 1e-6 * abs(expected), (text, expected)

    def vector(self, text: str, expected: torch.Tensor) -> None:
        """`[-3.00, -2.68, -2.37, …]`: the first elements, to the decimals shown."""
        items = [t for t in text.strip("[]").split(", ") if t != "…"]
        decimals = max((len(t.split(".")[1]) for t in items if "." in t), default=0)
        flat = expected.reshape(-1)
        assert len(items) == min(3, flat.numel()) and text.endswith("…]")
        for item, value in zip(items, flat.tolist(), strict=False):
            self.count += 1
            assert abs(float(item) - value) <= 0.5 * 10**-decimals + 1e-7, (text, flat[:3])

    def quantity(self, text: str, expected: torch.Tensor) -> None:
        found = re.fullmatch(TENSOR, text)
        if found is None:
            assert expected.numel() == 1, (text, expected)
            self.number(text, expected.item())
            return
        self.count += 1  # the shape
        assert (int(found.group(1)),) == tuple(expected.shape), text
        self.vector(found.group(2), expected)

    def local(self, text: str, factors: torch.Tensor, summed: bool) -> None:
        """`1/20 each (mean)`, `(-1) each`, `[-3.00, …] elementwise, summed`."""
        assert text.endswith(", summed") == summed, text
        text = text.removesuffix(", summed")
        flat = factors.reshape(-1)
        each = re.fullmatch(rf"\(?({NUMBER})(?:/(\d+))?\)? each( \((\w+)\))?", text)
        if each is not None:
            assert torch.allclose(flat, flat[0].expand_as(flat)), (text, flat)  # uniform
            numerator, denominator = each.group(1), each.group(2)
            self.count += 1 + (denominator is not None)
            value = float(numerator) / (int(denominator) if denominator else 1)
            assert math.isclose(value, flat[0].item(), rel_tol=1e-6), (text, flat[0])
            return
        vector, kind = text.rsplit(" ", 1)
        assert kind == "elementwise", text
        self.vector(vector, flat)


def tree_entries(text: str) -> list[tuple[str | None, str]]:
    """(parent's text, own text) of every node line of a tree view, its wrapped lines joined:
    an entry starts at a `├`/`└` guide, and its parent is the nearest entry above whose
    guide stands further left (the root's entry starts with `#0`)."""
    entries: list[tuple[int, str]] = []  # (guide column, text)
    parents: list[int | None] = []
    for line in text[text.index("#0 "):].splitlines():
        marker = re.match(r"^([│ ]*)([├└])─* ", line)
        if line.startswith("#0 "):
            entries.append((-1, line))
            parents.append(None)
        elif marker is not None:
            column = len(marker.group(1))
            parents.append(next(i for i in range(len(entries) - 1, -1, -1)
                                if entries[i][0] < column))
            entries.append((column, line[marker.end():]))
        else:  # a wrapped line of the entry above
            column, own = entries[-1]
            entries[-1] = (column, f"{own} {line.lstrip('│ ')}")
    return [(None if parent is None else entries[parent][1], own)
            for parent, (_, own) in zip(parents, entries, strict=True)]


def node_name(entry: str) -> str:
    """`#4 y_pred = add (AddBackward0) ...` -> y_pred; `#1 pow (PowBackward0) ...` -> pow."""
    node = entry.split(" → ", 1)[-1]
    return re.match(r"#\d+ (\w+)", node).group(1)


def check_ex4_tree(text: str, ref: dict) -> None:
    """Every number of Exercise 4's tree (any width) against `ex4_reference`: the header's
    counts, each node's value and gradient, each edge's upstream, local factor and
    contribution; and PyTorch's class name beside every readable name."""
    check = NumberCheck()
    values, grads, classes = ref["values"], ref["grads"], ref["classes"]
    header = flat(text[: text.index("Each line")])
    nodes, ops, leaves, constants, edges = ref["sizes"]
    assert header == (f"Autograd graph of loss: {nodes} nodes ({ops} ops, {leaves} leaves, "
                      f"{constants} constants), {edges} edges carrying gradient")
    check.count += 5
    names = []
    for parent, entry in tree_entries(text):
        entry = " ".join(entry.split())
        edge, node = entry.split(" → ", 1) if parent is not None else (None, entry)
        name = node_name(entry)
        names.append(name)
        found = re.fullmatch(
            rf"#\d+ (?P<label>.+?)  ?value (?P<value>{QUANTITY}) ?grad (?P<grad>{QUANTITY})",
            node) or re.fullmatch(
            rf"#\d+ (?P<label>\w+) \(constant (?P<value>{QUANTITY}), no gradient\)", node)
        assert found is not None, node
        check.quantity(found["value"], values[name])
        if name in classes:  # ops and leaves; constants have no node of their own
            assert found["label"].endswith(f"({classes[name]})") or found["label"].endswith(
                f"(leaf, {classes[name]})"), found["label"]
            check.quantity(found["grad"], grads[name])
        if edge is None:
            continue
        source = node_name(parent)
        if edge == "no gradient":
            assert name in ("X", "y_true") and source in ("sub", "mul")
            continue
        step = re.fullmatch(rf"(?P<up>{QUANTITY}) × (?P<local>.+) = (?P<out>{QUANTITY})", edge)
        assert step is not None, edge
        factors, summed = ref["locals"][(source, name)]
        check.quantity(step["up"], grads[source])
        check.local(step["local"], factors, summed)
        check.quantity(step["out"], grads[name])  # every tensor here is used once
    assert sorted(names) == sorted([*grads, "X", "y_true"])
    numbers = re.findall(rf"(?<![\w.#]){NUMBER}(?![\w.])", text)
    assert check.count == len(numbers), (check.count, len(numbers))


@pytest.mark.parametrize("width", EX4_WIDTHS)
def test_ex4_tree_snapshot_every_number_from_torch(width):
    text = text_at(graph_of(EX4), "tree", width)
    check_snapshot("ex4_tree" if width == WIDTH else f"ex4_tree_{width}", text)
    check_ex4_tree(text, ex4_reference())


@pytest.mark.parametrize("view", ["table", "paths"])
@pytest.mark.parametrize("width", EX4_WIDTHS)
def test_ex4_table_and_paths_snapshots_numbers_from_torch(view, width):
    """Every number shown is one torch computes here: a first element of a tensor, gradient or
    local factor (to the decimals shown), or one of the loss, the leaves' gradients, the
    factors every element shares (1/20, -1, 1), the graph's counts and node ids. Each is
    whole at every width, and no tensor edge is a Jacobian or a mean."""
    text = text_at(graph_of(EX4), view, width)
    check_snapshot(f"ex4_{view}" if width == WIDTH else f"ex4_{view}_{width}", text)
    assert max(len(line) for line in text.splitlines()) <= width
    ref = ex4_reference()
    vectors = [*ref["values"].values(), *ref["grads"].values(),
               *(factors for factors, _ in ref["locals"].values())]
    elements = [v for t in vectors if t.numel() > 1 for v in t.reshape(-1)[:3].tolist()]
    uniform = [f.reshape(-1)[0].item() for f, _ in ref["locals"].values()
               if torch.allclose(f, f.reshape(-1)[0])]  # `1/20 each`, `(-1) each`, `1 each`
    scalars = [ref["values"]["loss"].item(), ref["grads"]["w"].item(), ref["grads"]["b"].item(),
               *uniform, 0.0, 1.0, 20.0, *ref["sizes"], *range(len(graph_of(EX4).nodes))]
    rest = re.sub(r"tensor\[20\]|#\d+|\b1/20\b", " ", text)
    tokens = re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\d)", rest)
    assert len(tokens) > 20
    for token in tokens:
        decimals = len(token.split(".")[1]) if "." in token else 0
        near = [abs(float(token) - a) <= 0.5e-4 + 1e-6 * abs(a) for a in scalars]
        near += [abs(float(token) - e) <= 0.5 * 10**-decimals + 1e-7 for e in elements]
        assert any(near), token
        assert whole(token, text), token  # not split across lines
    assert "1/20 each (mean)" in flat(text) and "Jacobian" not in text and " mean 0." not in text


def test_ex4_graph_json_carries_the_factors():
    data = json.loads(json.dumps(graph_of(EX4).to_json(), allow_nan=False))
    ref = ex4_reference()
    x_node = next(n for n in data["nodes"] if n["name"] == "X")
    assert x_node["value"]["first"] == pytest.approx(ref["values"]["X"][:4].tolist())
    into_w = next(e for e in data["edges"]
                  if data["nodes"][e["to"]]["name"] == "w")
    assert into_w["local"]["kind"] == "elementwise" and into_w["local"]["summed"] is True
    factors, _ = ref["locals"][("mul", "w")]
    assert into_w["local"]["factors"]["first"] == pytest.approx(factors[:4].reshape(-1).tolist())


# PyTorch's own node names -----------------------------------------------------------


def test_tree_names_every_node_as_pytorch_does():
    """Beside each readable op, the class PyTorch prints for grad_fn and next_functions; the
    classes and how often they occur come from walking torch's own graph here."""
    t = {n: torch.tensor(v, requires_grad=True)
         for n, v in {"x": 2.0, "w1": 3.0, "w2": -1.0, "b": 0.5}.items()}
    h = t["x"] * t["w1"]
    h_act = h + t["b"]
    y = h_act * t["w2"]
    counts: dict[str, int] = {}
    stack, seen = [y.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        counts[type(fn).__name__] = counts.get(type(fn).__name__, 0) + 1
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    for width in NARROW_WIDTHS:
        text = flat(re.sub("[│├└─]", " ", text_at(graph_of(EX2), "tree", width)))
        for name, op, tensor in (("y", "mul", y), ("h_act", "add", h_act), ("h", "mul", h)):
            assert f"{name} = {op} ({type(tensor.grad_fn).__name__})" in text, (name, width)
        for leaf in ("x", "w1", "w2", "b"):
            assert f"{leaf} (leaf, AccumulateGrad)" in text, (leaf, width)
        for class_name, count in counts.items():
            assert len(re.findall(rf"[(, ]{class_name}\)", text)) == count, (class_name, width)


# Constants and detached tensors ---------------------------------------------------------

EX5_PARTIAL = """
a = torch.tensor(2.0, requires_grad=True)
b = a * 3
c = b.detach() ** 2 + a
c.backward()
"""


def test_a_detached_tensor_is_named_by_the_expression_that_made_it():
    b = 2.0 * 3  # b = a * 3 at a = 2
    graph = graph_of(EX5_PARTIAL)
    tree = flat(text_of(graph, "tree"))
    assert f"b.detach() (constant {number(b)}, no gradient)" in tree
    assert not re.search(rf"#\d+ {number(b)} ", tree)  # not named by its value
    assert "b.detach() is a new leaf with no path back through b to a" in tree
    for view in VIEWS:
        assert "#3 b.detach()" in flat(text_of(graph, view)) or view == "paths", view
    assert "b.detach()" in flat(text_of(graph, "table"))


def constant_lines(text: str) -> list[str]:
    return sorted(re.findall(r"→ #\d+ ([^→]*?\(constant[^)]*\))", flat(text)))


def test_constants_read_the_same_in_tracked_and_untracked_graphs():
    """`b_detached ** 2` alone cannot be backpropagated (untracked); `+ a` makes it tracked.
    Its constants are drawn the same way in both, with the inputs torch gives PowBackward0
    (one: the exponent is not an input)."""
    untracked = EX5_DETACH
    tracked = EX5_DETACH.replace("c = b_detached ** 2", "c = b_detached ** 2 + a")
    a = torch.tensor(2.0, requires_grad=True)
    pow_inputs = len(((a * 3) ** 2).grad_fn.next_functions)
    lines = {}
    for name, code in (("untracked", untracked), ("tracked", tracked)):
        graph = graph_of(code)
        pow_node = next(n for n in graph.nodes if n.op == "pow")
        assert len(graph.outgoing[pow_node.id]) == pow_inputs, name
        lines[name] = constant_lines(text_of(graph, "tree"))
    assert lines["untracked"] == lines["tracked"] == [
        f"b_detached (constant {number(2.0 * 3)}, no gradient)"]
