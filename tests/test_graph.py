"""Graph capture checked against PyTorch itself.

Each computation runs twice: once as code under a GraphRecorder (what the tutor does), and once
here, separately, on fresh tensors, with `torch.autograd.grad` giving the gradient of the output
with respect to every named intermediate. The captured values, gradients and local derivatives
must match those independent numbers; nothing expected is copied from the tool.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable

import pytest
import torch

from autograd_tutor.engine.graph import (
    CONSTANT,
    ELEMENTWISE,
    JACOBIAN,
    LEAF,
    OP,
    REDUCTION,
    UNTRACKED,
    CapturedGraph,
    GraphRecorder,
    LocalFactor,
    TensorSummary,
    capture,
    op_name,
)

Build = Callable[[], dict[str, torch.Tensor]]


def run(code: str, ns: dict | None = None) -> tuple[GraphRecorder, dict]:
    ns = {"torch": torch} if ns is None else ns
    with GraphRecorder() as rec:
        exec(code, ns)
    return rec, ns


def reference(build: Build, output: str) -> tuple[dict[str, float], dict[str, float | None]]:
    """Values of every named tensor, and d(output)/d(tensor) by torch.autograd.grad."""
    tensors = build()
    out = tensors[output]
    names = [n for n, t in tensors.items() if t.requires_grad]
    grads = torch.autograd.grad(out, [tensors[n] for n in names], allow_unused=True)
    values = {n: t.item() for n, t in tensors.items() if t.numel() == 1}
    pairs = zip(names, grads, strict=True)
    return values, {n: (g.item() if g is not None else None) for n, g in pairs}


def close(a: float | None, b: float | None, rel: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-6)


def check_graph(graph: CapturedGraph, build: Build, output: str) -> None:
    """Every named node's value and gradient, and every edge between named nodes, match."""
    values, grads = reference(build, output)
    assert graph.output.name == output
    for node in graph.nodes:
        if node.name in values:
            assert close(node.value, values[node.name]), node
        if node.name in grads and node.kind in (OP, LEAF):
            assert close(node.grad, grads[node.name]), node
    check_edges(graph, build)
    check_sums(graph)


def paths_between(graph: CapturedGraph, src: int, dst: int) -> int:
    counts = {src: 1}
    for node in graph.nodes[src:]:  # ids are topological
        for edge in graph.outgoing[node.id]:
            counts[edge.dst] = counts.get(edge.dst, 0) + counts.get(node.id, 0)
    return counts.get(dst, 0)


def check_edges(graph: CapturedGraph, build: Build) -> None:
    """A local derivative between two named neighbours is d(src)/d(dst), by PyTorch, when
    the direct edges are the only paths between them."""
    for edge in graph.edges:
        src, dst = graph.nodes[edge.src], graph.nodes[edge.dst]
        if not (src.name and dst.name) or dst.kind == CONSTANT:
            continue
        uses = sum(1 for e in graph.edges if e.src == edge.src and e.dst == edge.dst)
        if paths_between(graph, edge.src, edge.dst) != uses:
            continue
        tensors = build()
        (local,) = torch.autograd.grad(tensors[src.name], tensors[dst.name])
        assert close(edge.local * uses, local.item()), (edge, src, dst)
        assert close(edge.contribution, edge.upstream * edge.local)


def check_sums(graph: CapturedGraph) -> None:
    """What arrives at a node is the sum of what its incoming edges carry."""
    for node in graph.nodes:
        incoming = [e.contribution for e in graph.incoming[node.id]]
        if incoming and all(isinstance(c, float) for c in incoming):
            assert close(node.grad, math.fsum(incoming)), node


# Exercise 1 ---------------------------------------------------------------------------

EX1_CODE = """
x = torch.tensor(3.0, requires_grad=True)
cube = x**3
square = x**2
twice = 2*square
first = cube + twice
linear = 5*x
diff = first - linear
y = diff + 1
y.backward()
"""


def ex1_build() -> dict[str, torch.Tensor]:
    x = torch.tensor(3.0, requires_grad=True)
    cube, square, linear = x**3, x**2, 5 * x
    twice = 2 * square
    first = cube + twice
    diff = first - linear
    return dict(x=x, cube=cube, square=square, twice=twice, first=first, linear=linear,
                diff=diff, y=diff + 1)


def test_ex1_polynomial_matches_pytorch():
    rec, ns = run(EX1_CODE)
    assert len(rec.graphs) == 1
    graph = rec.graphs[0].named(ns)
    check_graph(graph, ex1_build, "y")
    x = graph.by_name("x")
    assert x is not None and x.kind == LEAF and x.class_name == "AccumulateGrad"
    assert close(x.grad, ns["x"].grad.item())
    assert x.grad_before is None and close(x.grad_after, ns["x"].grad.item())


def test_ex1_as_written_in_the_notebook():
    rec, ns = run("x = torch.tensor(3.0, requires_grad=True)\ny = x**3 + 2*x**2 - 5*x + 1\n"
                  "y.backward()\n")
    graph = rec.graphs[0].named(ns)
    x = 3.0
    assert close(graph.output.value, x**3 + 2 * x**2 - 5 * x + 1)
    assert close(graph.by_name("x").grad, 3 * x**2 + 4 * x - 5)
    # Three uses of x: three edges into it, whose contributions are the three terms.
    into_x = sorted(e.contribution for e in graph.incoming[graph.by_name("x").id])
    assert into_x == pytest.approx(sorted([3 * x**2, 2 * 2 * x, -5.0]))
    # The constants 1, 2 and 5 are inputs that get no gradient.
    constants = sorted(n.value for n in graph.nodes if n.kind == CONSTANT)
    assert constants == [1.0, 2.0, 5.0]
    assert {n.op for n in graph.nodes if n.kind == OP} == {"add", "sub", "mul", "pow"}


def test_ids_are_topological_with_the_output_first():
    rec, ns = run(EX1_CODE)
    graph = rec.graphs[0]
    assert graph.output_id == 0 and graph.roots == (0,)
    assert all(e.src < e.dst for e in graph.edges)
    assert [n.id for n in graph.nodes] == list(range(len(graph.nodes)))


# Exercise 2 ---------------------------------------------------------------------------

EX2_CODE = """
x = torch.tensor(2.0, requires_grad=True)
w1 = torch.tensor(3.0, requires_grad=True)
w2 = torch.tensor(-1.0, requires_grad=True)
b = torch.tensor(0.5, requires_grad=True)
h = x * w1
h_act = h + b
y = h_act * w2
y.backward()
"""


def ex2_build() -> dict[str, torch.Tensor]:
    t = {n: torch.tensor(v, requires_grad=True)
         for n, v in {"x": 2.0, "w1": 3.0, "w2": -1.0, "b": 0.5}.items()}
    h = t["x"] * t["w1"]
    h_act = h + t["b"]
    return {**t, "h": h, "h_act": h_act, "y": h_act * t["w2"]}


def test_ex2_network_matches_pytorch():
    rec, ns = run(EX2_CODE)
    graph = rec.graphs[0].named(ns)
    check_graph(graph, ex2_build, "y")
    assert {n.name for n in graph.leaves} == {"x", "w1", "w2", "b"}
    assert [graph.nodes[e.dst].name for e in graph.outgoing[graph.by_name("h").id]] == ["x", "w1"]
    for leaf in graph.leaves:
        assert close(leaf.grad, ns[leaf.name].grad.item())


# Exercise 3 ---------------------------------------------------------------------------

EX3_CODE = """
x = torch.tensor(3.0, requires_grad=True)
y = x ** 2
y.backward()
y = x ** 2
y.backward()
x.grad.zero_()
y = x ** 2
y.backward()
"""


def test_ex3_accumulation_is_recorded():
    rec, ns = run(EX3_CODE)
    assert len(rec.graphs) == 3
    x0 = torch.tensor(3.0, requires_grad=True)
    (fresh,) = torch.autograd.grad(x0**2, x0)
    g = fresh.item()
    leaves = [graph.named(ns).by_name("x") for graph in rec.graphs]
    assert [leaf.grad for leaf in leaves] == pytest.approx([g, g, g])
    assert [leaf.grad_before for leaf in leaves] == [None, pytest.approx(g), 0.0]
    assert [leaf.grad_after for leaf in leaves] == pytest.approx([g, 2 * g, g])
    assert [leaf.accumulated for leaf in leaves] == [False, True, True]


def test_torch_autograd_backward_is_captured_too():
    rec, ns = run("x = torch.tensor(3.0, requires_grad=True)\ny = x * x\n"
                  "torch.autograd.backward(y)\n")
    assert len(rec.graphs) == 1
    assert close(rec.graphs[0].named(ns).by_name("x").grad, 2 * 3.0)


# Exercise 4 ---------------------------------------------------------------------------

EX4_CODE = """
torch.manual_seed(42)
X = torch.linspace(-3, 3, 20)
y_true = 2 * X + 1 + torch.randn(20) * 0.3
w = torch.tensor(0.0, requires_grad=True)
b = torch.tensor(0.0, requires_grad=True)
learning_rate = 0.01
for step in range(200):
    y_pred = w * X + b
    loss = ((y_true - y_pred) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= learning_rate * w.grad
        b -= learning_rate * b.grad
    w.grad.zero_()
    b.grad.zero_()
"""


def ex4_reference() -> list[tuple[float, float, float, float, float, torch.Tensor]]:
    """Per step: w, b, loss, dloss/dw, dloss/db and dloss/dy_pred, by autograd.grad."""
    torch.manual_seed(42)
    X = torch.linspace(-3, 3, 20)
    y_true = 2 * X + 1 + torch.randn(20) * 0.3
    w, b = torch.tensor(0.0), torch.tensor(0.0)
    steps = []
    for _ in range(200):
        w_, b_ = w.clone().requires_grad_(), b.clone().requires_grad_()
        y_pred = w_ * X + b_
        loss = ((y_true - y_pred) ** 2).mean()
        gw, gb, gy = torch.autograd.grad(loss, [w_, b_, y_pred])
        steps.append((w.item(), b.item(), loss.item(), gw.item(), gb.item(), gy))
        w, b = w - 0.01 * gw, b - 0.01 * gb
    return steps


def test_ex4_training_loop_every_step_matches_pytorch():
    rec, ns = run(EX4_CODE)
    steps = ex4_reference()
    assert len(rec.graphs) == len(steps)
    for graph, (w, b, loss, _gw, _gb, _gy) in zip(rec.graphs, steps, strict=True):
        assert close(graph.output.value, loss, 1e-5)
        leaves = sorted(leaf.value for leaf in graph.leaves)
        assert leaves == pytest.approx(sorted([w, b]), rel=1e-5, abs=1e-6)
    last = rec.graphs[-1].named(ns)
    w, b, loss, gw, gb, gy = steps[-1]
    assert close(last.by_name("w").grad, gw, 1e-4)
    assert close(last.by_name("b").grad, gb, 1e-4)
    assert last.by_name("w").grad_before == 0.0  # zeroed at the end of the previous step
    y_pred = last.by_name("y_pred")
    assert isinstance(y_pred.grad, TensorSummary) and y_pred.grad.shape == (20,)
    assert math.isclose(y_pred.grad.sum, gy.sum().item(), rel_tol=1e-4, abs_tol=1e-6)
    assert math.isclose(y_pred.grad.max, gy.max().item(), rel_tol=1e-4, abs_tol=1e-6)
    # X and y_true do not require grad: constant inputs, named, with their values.
    X = last.by_name("X")
    assert X.kind == CONSTANT and isinstance(X.value, TensorSummary)
    assert X.value.min == -3.0 and X.value.max == 3.0
    assert last.by_name("y_true").kind == CONSTANT
    # A tensor edge's local derivative is one factor per element: d(w * X)_i / dw = X_i,
    # summed into the scalar w; the contribution is still PyTorch's dloss/dw.
    edge = next(e for e in last.edges if last.nodes[e.dst].name == "w")
    assert isinstance(edge.local, LocalFactor) and edge.local.kind == ELEMENTWISE
    assert edge.local.summed and edge.local.factors.shape == (20,)
    assert edge.local.factors.first == pytest.approx(ns["X"][:4].tolist())
    assert close(edge.contribution, gw, 1e-4)
    assert X.value.first == pytest.approx(ns["X"][:4].tolist())
    assert y_pred.grad.first == pytest.approx(gy[:4].tolist(), rel=1e-4, abs=1e-6)


def jacobian_rows(fn, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """d(fn)/d(input) by torch.autograd.functional.jacobian, independent of any hook."""
    found = torch.autograd.functional.jacobian(fn, inputs)
    return [j.reshape(fn(*inputs).numel(), -1) for j in found]


def test_tensor_local_factors_match_torch_jacobians():
    """Elementwise: the Jacobian's diagonal; broadcast: its column; reduction: its row."""
    code = """
torch.manual_seed(0)
X = torch.randn(6)
y = torch.randn(6)
w = torch.tensor(0.7, requires_grad=True)
v = torch.randn(6, requires_grad=True)
m = w * X
s = torch.sin(m + v)
d = (y - s) ** 2
loss = d.sum() + v.mean()
loss.backward()
"""
    rec, ns = run(code)
    graph = rec.graphs[0].named(ns)
    X, y, w, v = (ns[n].detach() for n in ("X", "y", "w", "v"))
    m = w * X

    def local(src: str, dst_name: str) -> LocalFactor:
        node = next(n for n in graph.nodes if (n.name or n.op) == src)
        (edge,) = [e for e in graph.outgoing[node.id]
                   if (graph.nodes[e.dst].name or graph.nodes[e.dst].op) == dst_name]
        assert isinstance(edge.local, LocalFactor), edge
        return edge.local

    # m = w * X: a scalar w broadcast over X; d m_i / dw = X_i, summed into w.
    (by_w,) = jacobian_rows(lambda w_: w_ * X, w)
    factor = local("m", "w")
    assert factor.kind == ELEMENTWISE and factor.summed
    assert factor.factors.first == pytest.approx(by_w[:4, 0].tolist(), rel=1e-5)
    # sin: elementwise, same shape, d sin(u)_i / du_i = cos(u_i).
    u = m + v
    (by_u,) = jacobian_rows(torch.sin, u)
    factor = local("s", "add")
    assert factor.kind == ELEMENTWISE and not factor.summed
    assert factor.factors.first == pytest.approx(torch.diagonal(by_u)[:4].tolist(), rel=1e-5)
    # d = (y - s) ** 2: d d_i / d sub_i = 2 sub_i.
    sub = y - torch.sin(u)
    (by_sub,) = jacobian_rows(lambda t: t**2, sub)
    factor = local("d", "sub")
    assert factor.factors.first == pytest.approx(torch.diagonal(by_sub)[:4].tolist(), rel=1e-5)
    # Reductions: d.sum() gives 1 to every element, v.mean() 1/6.
    for src, dst, fn, inputs in (("sum", "d", torch.sum, sub**2), ("mean", "v", torch.mean, v)):
        factor = local(src, dst)
        (row,) = jacobian_rows(fn, inputs)
        assert factor.kind == REDUCTION and not factor.summed
        assert factor.uniform == pytest.approx(row[0, 0].item())
        assert factor.factors.first == pytest.approx(row[0, :4].tolist())


def test_zero_upstream_tensor_factors_are_asked_from_the_node():
    # relu zeroes part of the gradient: contribution / upstream cannot give the factor there.
    rec, ns = run("x = torch.tensor([-1.0, 2.0, 3.0], requires_grad=True)\n"
                  "h = x * x\ny = (torch.relu(h - 5) * 3).sum()\ny.backward()\n")
    graph = rec.graphs[0].named(ns)
    h = graph.by_name("h")
    factors = [e.local for e in graph.outgoing[h.id]]
    x = ns["x"].detach()
    (by_x,) = jacobian_rows(lambda t: t * x, x)  # d(x * x)/d(first x) with the second held
    for factor in factors:
        assert factor.kind == ELEMENTWISE
        assert factor.factors.first == pytest.approx(torch.diagonal(by_x).tolist())


def test_ops_that_mix_elements_have_a_jacobian():
    rec, ns = run("A = torch.randn(3, 3, requires_grad=True)\nx = torch.randn(3)\n"
                  "y = torch.softmax(A @ x, 0)\nz = (y * y).sum()\nz.backward()\n")
    graph = rec.graphs[0]
    kinds = {graph.nodes[e.src].op: e.local.kind for e in graph.edges
             if isinstance(e.local, LocalFactor)}
    assert kinds["softmax"] == JACOBIAN and kinds["mv"] == JACOBIAN
    assert kinds["mul"] == ELEMENTWISE and kinds["sum"] == REDUCTION


def test_constant_slots_are_matched_to_the_arguments_that_need_no_gradient():
    # F.linear(x, weight, bias) runs as an addmm whose slots are (bias, x, weight.t()): the
    # empty slot is x, never the weight (a leaf that does get a gradient).
    rec, ns = run("torch.manual_seed(0)\nlayer = torch.nn.Linear(3, 2)\nx = torch.randn(4, 3)\n"
                  "loss = layer(x).sum()\nloss.backward()\n")
    graph = rec.graphs[0].named(ns)
    addmm = next(n for n in graph.nodes if n.op == "addmm")
    fns = [fn for fn, _ in ns["loss"].grad_fn.next_functions[0][0].next_functions]
    inputs = [graph.nodes[e.dst] for e in graph.outgoing[addmm.id]]
    assert [fn is None for fn in fns] == [n.kind == CONSTANT for n in inputs]
    assert next(n for n in inputs if n.kind == CONSTANT).name == "x"
    assert all(e.contribution is not None for e in graph.edges
               if graph.nodes[e.dst].kind == LEAF)


def test_summaries_keep_the_first_elements():
    rec, ns = run("v = torch.arange(100.0, requires_grad=True)\ny = (v * 2).sum()\n"
                  "y.backward()\n")
    v = rec.graphs[0].named(ns).by_name("v")
    assert v.value.first == (0.0, 1.0, 2.0, 3.0) and v.value.shape == (100,)
    assert v.grad.first == (2.0,) * 4
    data = json.loads(json.dumps(rec.graphs[0].to_json(), allow_nan=False))
    assert data["nodes"][v.id]["value"]["first"] == [0.0, 1.0, 2.0, 3.0]
    local = next(e["local"] for e in data["edges"] if e["to"] == v.id)
    assert local["kind"] == "elementwise" and local["factors"]["first"] == [2.0] * 4


# Exercise 5 ---------------------------------------------------------------------------


def test_ex5_without_detach_matches_pytorch():
    code = ("a = torch.tensor(2.0, requires_grad=True)\nb = a * 3\nc = b ** 2\nc.backward()\n")
    rec, ns = run(code)

    def build():
        a = torch.tensor(2.0, requires_grad=True)
        b = a * 3
        return {"a": a, "b": b, "c": b**2}

    check_graph(rec.graphs[0].named(ns), build, "c")


EX5_DETACH = """
a = torch.tensor(2.0, requires_grad=True)
b = a * 3
b_detached = b.detach()
c = b_detached ** 2
c.backward()
"""


def test_ex5_detach_raises_unchanged_and_records_no_graph():
    ns = {"torch": torch}
    with pytest.raises(RuntimeError) as caught, GraphRecorder() as rec:
        exec(EX5_DETACH, ns)
    # The same code without the recorder raises the same error.
    with pytest.raises(RuntimeError) as plain:
        exec(EX5_DETACH, {"torch": torch})
    assert str(caught.value) == str(plain.value)
    assert type(caught.value) is type(plain.value)
    assert rec.graphs == []
    assert ns["a"].grad is None
    failed = rec.attempts[0].named(ns)
    assert failed.error is not None and str(plain.value).splitlines()[0] in failed.error
    assert failed.output.name == "c" and failed.output.kind == UNTRACKED
    assert close(failed.output.value, (2.0 * 3) ** 2)
    cut = failed.by_name("b_detached")
    assert cut.detached_from == "b" and cut.cut_leaves == ("a",)
    assert close(cut.value, 2.0 * 3)


def test_ex5_detached_leaf_variant_has_no_path_back():
    code = EX5_DETACH.replace("c = b_detached", "b_detached.requires_grad_()\nc = b_detached")
    rec, ns = run(code)
    graph = rec.graphs[0].named(ns)
    leaf = graph.by_name("b_detached")
    assert leaf.kind == LEAF and leaf.detached_from == "b" and leaf.cut_leaves == ("a",)
    assert graph.by_name("a") is None and graph.by_name("b") is None
    x = torch.tensor(6.0, requires_grad=True)
    (expected,) = torch.autograd.grad(x**2, x)
    assert close(leaf.grad, expected.item())
    assert ns["a"].grad is None


def test_ex5_detached_constant_next_to_a_live_path():
    code = EX5_DETACH.replace("c = b_detached ** 2", "c = b_detached ** 2 + a * b")
    rec, ns = run(code)
    graph = rec.graphs[0].named(ns)

    def build():
        a = torch.tensor(2.0, requires_grad=True)
        b = a * 3
        b_detached = b.detach()
        return {"a": a, "b": b, "b_detached": b_detached, "c": b_detached**2 + a * b}

    check_graph(graph, build, "c")
    constant = graph.by_name("b_detached")
    assert constant.kind == CONSTANT and constant.detached_from == "b"


def test_data_attribute_counts_as_detach():
    code = EX5_DETACH.replace("b.detach()", "b.data").replace(
        "c = b_detached ** 2", "c = b_detached ** 2 + a")
    rec, ns = run(code)
    node = rec.graphs[0].named(ns).by_name("b_detached")
    assert node.detached_from == "b" and node.detached_by == "data"


EX5_PARTIAL = """
a = torch.tensor(2.0, requires_grad=True)
b = a * 3
c = b.detach() ** 2 + a
c.backward()
"""


def test_an_unnamed_detached_tensor_is_named_by_the_expression_that_made_it():
    rec, ns = run(EX5_PARTIAL)
    graph = rec.graphs[0].named(ns)
    (cut,) = [n for n in graph.nodes if n.detached_from is not None]
    assert cut.name is None and cut.label == "b.detach()" and cut.kind == CONSTANT
    assert close(cut.value, 2.0 * 3)
    rec, ns = run(EX5_PARTIAL.replace("b.detach()", "b.data"))
    assert any(n.label == "b.data" for n in rec.graphs[0].named(ns).nodes)


def next_function_count(code: str, name: str) -> int:
    """How many inputs PyTorch gives the node of `name`, computed with grad: next_functions."""
    ns = {"torch": torch}
    exec(code.replace(".detach()", "").replace("c.backward()\n", ""), ns)
    return len(ns[name].grad_fn.next_functions)


def test_untracked_results_show_the_inputs_a_tracked_node_would_have():
    # `b_detached ** 2`: PowBackward0 has one input (the exponent is not one), so the
    # untracked pow shows one input, as the tracked pow of `b ** 2` does.
    ns = {"torch": torch}
    with pytest.raises(RuntimeError), GraphRecorder() as rec:
        exec(EX5_DETACH, ns)
    failed = rec.attempts[0].named(ns)
    assert len(failed.outgoing[failed.output_id]) == next_function_count(EX5_DETACH, "c") == 1
    # `b_detached * 3`: the 3 is an input of MulBackward0 (a None slot), tracked or not.
    code = EX5_DETACH.replace("b_detached ** 2", "b_detached * 3")
    with pytest.raises(RuntimeError), GraphRecorder() as rec:
        exec(code, ns)
    failed = rec.attempts[0].named(ns)
    inputs = [failed.nodes[e.dst] for e in failed.outgoing[failed.output_id]]
    assert len(inputs) == next_function_count(code, "c") == 2
    assert [n.label for n in inputs] == ["b_detached", "3"]
    # Inside a tracked graph too: `b.detach() ** 2 + a`.
    rec, ns = run(EX5_PARTIAL)
    graph = rec.graphs[0].named(ns)
    pow_node = next(n for n in graph.nodes if n.op == "pow")
    assert [graph.nodes[e.dst].label for e in graph.outgoing[pow_node.id]] == ["b.detach()"]


def test_rerunning_an_untracked_call_keeps_the_random_state():
    # The recorder calls dropout again to find its inputs: the learner's random numbers after
    # it must be the ones they would be without the recorder.
    code = ("a = torch.tensor([1.0, 2.0], requires_grad=True)\n"
            "b = torch.nn.functional.dropout(a.detach(), 0.5)\nc = b * 2\n")
    torch.manual_seed(3)
    with GraphRecorder() as rec:
        exec(code, {"torch": torch})
        with pytest.raises(RuntimeError):
            exec(code + "c.sum().backward()\n", {"torch": torch})
    after = torch.rand(3)
    torch.manual_seed(3)
    exec(code, {"torch": torch})
    exec(code, {"torch": torch})
    assert torch.equal(after, torch.rand(3))
    failed = rec.attempts[-1]
    assert any(n.op == "dropout" for n in failed.nodes)  # the failed backward was explained


# Diamonds ---------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "local", "grad"), [
    ("y = x * x", lambda x: x, lambda x: 2 * x),
    ("y = x + x", lambda x: 1.0, lambda x: 2.0),
])
def test_a_tensor_used_twice_gives_two_edges(code, local, grad):
    rec, ns = run("x = torch.tensor(1.5, requires_grad=True)\n" + code + "\ny.backward()\n")
    graph = rec.graphs[0].named(ns)
    x = graph.by_name("x")
    edges = graph.incoming[x.id]
    assert len(graph.nodes) == 2 and [e.slot for e in edges] == [0, 1]
    assert [e.local for e in edges] == pytest.approx([local(1.5)] * 2)
    assert close(x.grad, grad(1.5))
    t = torch.tensor(1.5, requires_grad=True)
    (expected,) = torch.autograd.grad(eval(code.split("=")[1], {"x": t}), t)
    assert close(x.grad, expected.item())


def test_shared_intermediate():
    code = ("x = torch.tensor(0.5, requires_grad=True)\n"
            "w = torch.tensor(-2.0, requires_grad=True)\nh = x * w\ny = h * h + h\ny.backward()\n")
    rec, ns = run(code)
    graph = rec.graphs[0].named(ns)

    def build():
        x = torch.tensor(0.5, requires_grad=True)
        w = torch.tensor(-2.0, requires_grad=True)
        h = x * w
        return {"x": x, "w": w, "h": h, "y": h * h + h}

    check_graph(graph, build, "y")
    h = graph.by_name("h")
    assert len(graph.incoming[h.id]) == 3  # h*h twice, + h once


def test_zero_upstream_still_gives_local_derivatives():
    # relu kills the gradient: 0/0 cannot give the local derivative, the node is asked.
    code = ("x = torch.tensor(-1.0, requires_grad=True)\n"
            "w = torch.tensor(2.0, requires_grad=True)\nh = x * w\ny = torch.relu(h) * 3\n"
            "y.backward()\n")
    rec, ns = run(code)
    graph = rec.graphs[0].named(ns)
    h = graph.by_name("h")
    assert h.grad == 0.0
    locals_ = {graph.nodes[e.dst].name: e.local for e in graph.outgoing[h.id]}
    assert locals_ == {"x": 2.0, "w": -1.0}


# Robustness --------------------------------------------------------------------------


def test_other_exceptions_propagate_and_the_recorder_still_closes():
    ns = {"torch": torch}
    with pytest.raises(ZeroDivisionError), GraphRecorder() as rec:
        exec("x = torch.tensor(1.0, requires_grad=True)\n(x * 2).backward()\n1 / 0\n", ns)
    assert len(rec.graphs) == 1
    # The mode is gone: new backward calls are not recorded any more.
    y = ns["x"] * 3
    y.backward()
    assert len(rec.attempts) == 1


def test_second_backward_without_retain_graph_fails_and_is_kept_as_failed():
    code = "x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\ny.backward()\ny.backward()\n"
    with pytest.raises(RuntimeError, match="second time"), GraphRecorder() as rec:
        exec(code, {"torch": torch})
    assert len(rec.graphs) == 1 and len(rec.attempts) == 2
    assert "second time" in rec.attempts[1].error


def test_retain_graph_twice_gives_two_graphs_and_hooks_are_removed():
    code = ("x = torch.tensor(2.0, requires_grad=True)\ny = x ** 3\n"
            "y.backward(retain_graph=True)\ny.backward(retain_graph=True)\n")
    rec, ns = run(code)
    first, second = (g.named(ns).by_name("x") for g in rec.graphs)
    assert close(first.grad, 3 * 2.0**2) and close(second.grad, 3 * 2.0**2)
    assert close(second.grad_before, first.grad_after)
    # Each backward saw its own hooks once: no duplicated gradients.
    assert close(second.grad_after, 2 * 3 * 2.0**2)
    ns["y"].backward()  # outside the recorder, the hooks are gone
    assert len(rec.attempts) == 2


def test_non_scalar_output_with_explicit_gradient():
    rec, ns = run("v = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
                  "out = v * v\nout.backward(torch.ones(3))\n")
    graph = rec.graphs[0].named(ns)
    v = graph.by_name("v")
    assert isinstance(v.grad, TensorSummary)
    assert v.grad.sum == pytest.approx(2 * (1.0 + 2.0 + 3.0))


def test_capture_function_for_the_playground():
    with GraphRecorder() as rec:
        x = torch.tensor(3.0, requires_grad=True)
        y = torch.sin(x) * x
    graph = capture(y, {"x": x, "y": y}, recorder=rec)
    xr = torch.tensor(3.0, requires_grad=True)
    (expected,) = torch.autograd.grad(torch.sin(xr) * xr, xr)
    assert close(graph.by_name("x").grad, expected.item())
    sin = next(n for n in graph.nodes if n.op == "sin")
    assert close(sin.value, math.sin(3.0))


def test_capture_inside_the_recorder_records_once():
    with GraphRecorder() as rec:
        x = torch.tensor(2.0, requires_grad=True)
        graph = capture(x * x * x, {"x": x}, recorder=rec)
    assert len(rec.attempts) == 1
    assert close(graph.by_name("x").grad, 3 * 2.0**2)


def test_capture_without_recorder_knows_output_and_leaf_values_only():
    x = torch.tensor(3.0, requires_grad=True)
    y = torch.sin(x) * x
    graph = capture(y, {"x": x, "y": y})
    assert close(graph.output.value, math.sin(3.0) * 3.0)
    assert next(n for n in graph.nodes if n.op == "sin").value is None
    assert close(graph.by_name("x").value, 3.0)


def test_capture_raises_like_backward():
    with pytest.raises(RuntimeError, match="does not require grad"):
        capture(torch.tensor(1.0))


def test_json_is_plain_and_strict():
    rec, ns = run(EX1_CODE.replace("y = diff + 1", "y = diff + 1 + torch.log(-x) * 0"))
    text = json.dumps(rec.graphs[0].named(ns).to_json(), allow_nan=False)
    data = json.loads(text)
    assert {"id", "op", "kind", "class_name", "name", "value", "grad"} <= set(data["nodes"][0])
    assert {"from", "to", "local", "contribution", "upstream"} <= set(data["edges"][0])


def test_op_names():
    assert op_name("MulBackward0") == "mul"
    assert op_name("PowBackward1") == "pow"
    assert op_name("AddmmBackward0") == "addmm"
    assert op_name("NativeLayerNormBackward0") == "native_layer_norm"
    assert op_name("AccumulateGrad") == "leaf"
    assert op_name("torch::autograd::AccumulateGrad") == "leaf"


def test_ten_thousand_nodes_are_captured_quickly():
    start = time.perf_counter()
    with GraphRecorder() as rec:
        w = torch.tensor(0.5, requires_grad=True)
        h = torch.tensor(1.0)
        for _ in range(5_000):
            h = h * w + 0.1
        h.backward()
    elapsed = time.perf_counter() - start
    graph = rec.graphs[0]
    assert len(graph.nodes) >= 10_000
    assert elapsed < 5.0  # about 0.5 s here; generous for slow CI machines
    assert close(graph.named({"w": w}).by_name("w").grad, w.grad.item())
