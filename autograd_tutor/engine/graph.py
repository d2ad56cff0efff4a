"""Capture the autograd graph PyTorch really builds, with values and gradients (no rendering).

Usage by the engine::

    with GraphRecorder() as rec:
        exec(code, ns)                      # any code; it may call .backward() or raise
    for graph in rec.graphs:                # one CapturedGraph per successful .backward()
        graph = graph.named(ns)             # nodes named after the variables in ns

How it works: a `TorchFunctionMode` sees every torch call made inside the `with` block. It
records the forward value of every tensor that has a `grad_fn` (keyed by that node), which
tensors were made by `.detach()`, and the inputs of untracked results. When the code calls
`Tensor.backward` or `torch.autograd.backward`, the recorder walks `grad_fn.next_functions`
from the output, puts a pre-hook (the gradient arriving at a node) and a post-hook (the
gradient sent along each edge) on every node, notes every leaf's `.grad`, runs the real
backward, removes the hooks and builds a `CapturedGraph`. Every step is linear in the number
of nodes. If backward raises, the exception propagates unchanged; the attempt is kept in
`rec.attempts` with `error` set, but not in `rec.graphs`.

Tensors are kept as summaries: shape, sum, mean, min, max and their first elements. The local
derivative on an edge is a number between one-element tensors; between bigger tensors it is a
`LocalFactor`: the factor of every element for an elementwise op (`2 * diff` for `diff ** 2`,
with a broadcast input's gradient summed), the gradient of a scalar for a reduction (`1/20`
each for a mean of 20), or a Jacobian that is not shown. The factors are what the node itself
sends back for a gradient of ones: calling a node directly skips the engine's summing over a
broadcast, so that call gives one factor per element of the output.

Edges point the way the gradient flows, like `next_functions`: `src` is the node that
uses a tensor in the forward pass, `dst` is the node that produced it (its input).

torch is imported only when a recorder starts or a graph is named, so importing this module
(or `graph_view`) stays cheap.
"""

from __future__ import annotations

import gc
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from typing import Any

LEAF_CLASS = "AccumulateGrad"
OP, LEAF, CONSTANT, UNTRACKED = "op", "leaf", "constant", "untracked"
ELEMENTWISE, REDUCTION, JACOBIAN = "elementwise", "reduction", "jacobian"  # LocalFactor kinds
SUMMARY_LIST_LIMIT = 64  # tensors up to this size are summarised in Python, bigger ones by torch
FIRST_ELEMENTS = 4  # elements a summary keeps (the views show three and `…`, or all four)
# Ops whose output element i depends on element i of each input only (after broadcasting):
# their local derivative is one factor per element. Readable names, as `op_name` gives them.
ELEMENTWISE_OPS = frozenset(
    """abs acos acosh add addcdiv addcmul asin asinh atan atan2 atanh ceil clamp clamp_max
    clamp_min clone copysign cos cosh deg2rad digamma div elu erf erfc erfinv exp exp2 expm1
    floor fmod frac gelu hardsigmoid hardswish hardtanh hypot leaky_relu lerp lgamma log log10
    log1p log2 log_sigmoid logit maximum minimum mish mul neg polygamma pow rad2deg reciprocal
    relu remainder round rsqrt rsub sgn sigmoid sign silu sin sinc sinh softplus sqrt square
    sub tan tanh threshold to_copy trunc where xlogy""".split()
)
UNTRACKED_LIMIT = 200  # nodes shown when explaining why a result has no grad_fn
CUT_WALK_LIMIT = 10_000  # nodes walked to name the leaves behind a detached tensor
# Nodes per backward whose local derivatives are asked from the node itself (the gradient
# reaching them is 0, e.g. vanished, or a tensor input was broadcast); each ask re-runs the
# node's backward once.
FALLBACK_LIMIT = 1_000
# Tensor nodes per backward whose local factors are summarised; beyond, edges say "Jacobian".
TENSOR_LOCAL_LIMIT = 1_000


@dataclass(frozen=True)
class TensorSummary:
    """What the views show of a tensor with more than one element."""

    shape: tuple[int, ...]
    sum: float
    mean: float
    min: float
    max: float
    first: tuple[float, ...] = ()  # the first FIRST_ELEMENTS elements, in row-major order

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "first": [_json_float(v) for v in self.first],
            "sum": _json_float(self.sum),
            "mean": _json_float(self.mean),
            "min": _json_float(self.min),
            "max": _json_float(self.max),
        }


# A forward value or a gradient: a number for one-element tensors, a summary for bigger
# tensors, None when unknown or absent (no gradient reached it, value not recorded).
Quantity = float | TensorSummary | None


@dataclass(frozen=True)
class LocalFactor:
    """The local derivative on an edge between tensors, when it is not one number.

    ELEMENTWISE: output element i is made from input element i, so the gradient sent is
    upstream x factor, element by element (`factors` has the output's shape); `summed` when
    the input was broadcast (a scalar `w` in `w * X`): its gradient adds those elements up.
    REDUCTION: a scalar made from the whole input (mean, sum, norm...): element i of the input
    gets upstream x factor i (`factors` has the input's shape: 1/20 each for a mean of 20).
    JACOBIAN: anything else (matmul, softmax, reshapes...): a matrix, not summarised.
    """

    kind: str
    op: str = ""  # the node's readable op: "mean", "mul"
    factors: TensorSummary | None = None  # None when not known (JACOBIAN, or not recorded)
    summed: bool = False

    @property
    def uniform(self) -> float | None:
        """The factor of every element when they are all the same (1/20 for a mean)."""
        f = self.factors
        if f is None or f.numel == 0 or not (math.isfinite(f.min) and math.isfinite(f.max)):
            return None
        if math.isclose(f.min, f.max, rel_tol=1e-6, abs_tol=1e-12):
            return f.first[0] if f.first else f.mean
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "op": self.op,
            "factors": quantity_json(self.factors),
            "summed": self.summed,
        }


Local = float | LocalFactor | None


@dataclass(frozen=True)
class GraphNode:
    """One node of the graph: an op (`grad_fn`), a leaf (`AccumulateGrad`), a constant input,
    or (only when explaining a failed backward) a result computed without tracking."""

    id: int
    kind: str  # "op" | "leaf" | "constant" | "untracked"
    op: str  # readable: "mul", "pow", "leaf", "constant"
    class_name: str  # PyTorch's class: "MulBackward0", "AccumulateGrad", "" for constants
    name: str | None = None  # the variable holding this tensor, once `named()` saw it
    value: Quantity = None  # forward value
    grad: Quantity = None  # gradient that arrived at this node in this backward
    grad_before: Quantity = None  # leaves: .grad before this backward (None: no .grad yet)
    grad_after: Quantity = None  # leaves: .grad after this backward
    detached_from: str | None = None  # made by .detach(): the source's name ("" if unnamed)
    cut_leaves: tuple[str, ...] = ()  # named leaves behind the detached source
    detached_by: str = "detach()"  # how: "detach()" or "data" (`b.data`)

    @property
    def label(self) -> str:
        """The variable's name; else the expression that made a detached tensor
        (`b.detach()`); else a constant's value; else the op."""
        if self.name:
            return self.name
        if self.detached_from is not None:
            return self.detach_text
        if self.kind == CONSTANT and isinstance(self.value, float):
            return _number_text(self.value)
        return self.op

    @property
    def detach_text(self) -> str:
        """`b.detach()` (or `b.data`); `.detach()` when the source tensor has no name."""
        return f"{self.detached_from or ''}.{self.detached_by}"

    @property
    def accumulated(self) -> bool:
        """True when .grad already held something, so this backward added to it (Exercise 3)."""
        return self.kind == LEAF and self.grad_before is not None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "op": self.op,
            "kind": self.kind,
            "class_name": self.class_name,
            "value": quantity_json(self.value),
            "grad": quantity_json(self.grad),
        }
        if self.kind == LEAF:
            data["grad_before"] = quantity_json(self.grad_before)
            data["grad_after"] = quantity_json(self.grad_after)
        if self.detached_from is not None:
            data["detached_from"] = self.detached_from
            data["detached_by"] = self.detached_by
        return data


@dataclass(frozen=True)
class GraphEdge:
    """The gradient flowing from `src` to its input `dst`: upstream x local = contribution."""

    src: int
    dst: int
    slot: int  # position in src's next_functions: `x + x` has two edges, slots 0 and 1
    upstream: Quantity = None  # gradient that arrived at src
    local: Local = None  # d(src)/d(dst): a number, a LocalFactor for tensors, None if unknown
    contribution: Quantity = None  # gradient sent along this edge; None for constants

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.src,
            "to": self.dst,
            "slot": self.slot,
            "upstream": quantity_json(self.upstream),
            "local": self.local.to_json() if isinstance(self.local, LocalFactor)
            else quantity_json(self.local),
            "contribution": quantity_json(self.contribution),
        }


class _Refs:
    """The torch objects behind the nodes, so `named()` can match them to variables."""

    def __init__(self, objects: Sequence[object], sources: Mapping[int, object]) -> None:
        self.objects = list(objects)  # per node id: grad_fn, leaf tensor, constant tensor, None
        self.sources = dict(sources)  # node id -> tensor it was detached from


@dataclass(frozen=True)
class CapturedGraph:
    """The graph of one backward() call. Node ids are a topological order of the backward
    pass: the output is 0 and every edge goes from a smaller id to a larger one."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    output_id: int = 0
    error: str | None = None  # set when backward() raised
    _refs: _Refs | None = field(default=None, compare=False, repr=False)

    @property
    def output(self) -> GraphNode:
        return self.nodes[self.output_id]

    @cached_property
    def outgoing(self) -> tuple[tuple[GraphEdge, ...], ...]:
        """Per node, the edges to its inputs in slot order."""
        return _group(self.edges, len(self.nodes), lambda e: e.src)

    @cached_property
    def incoming(self) -> tuple[tuple[GraphEdge, ...], ...]:
        """Per node, the edges that bring it gradient (one per use of it)."""
        return _group(self.edges, len(self.nodes), lambda e: e.dst)

    @property
    def roots(self) -> tuple[int, ...]:
        return tuple(n.id for n in self.nodes if not self.incoming[n.id])

    @property
    def leaves(self) -> tuple[GraphNode, ...]:
        return tuple(n for n in self.nodes if n.kind == LEAF)

    def by_name(self, name: str) -> GraphNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    def named(self, ns: Mapping[str, object]) -> CapturedGraph:
        """A copy whose nodes carry the names of the variables in `ns` that hold them."""
        if self._refs is None:
            return self
        lookup = _name_lookup(ns)
        if not lookup:
            return self
        nodes = [self._named_node(node, lookup) for node in self.nodes]
        return replace(self, nodes=tuple(nodes))

    def _named_node(self, node: GraphNode, lookup: dict[int, str]) -> GraphNode:
        assert self._refs is not None
        ref = self._refs.objects[node.id]
        name = lookup.get(id(ref)) if ref is not None else None
        source = self._refs.sources.get(node.id)
        if source is None:
            return node if name is None else replace(node, name=name)
        source_name = lookup.get(id(source)) or lookup.get(id(getattr(source, "grad_fn", None)))
        return replace(
            node,
            name=name or node.name,
            detached_from=source_name or node.detached_from,
            cut_leaves=_leaf_names(source, lookup),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": [n.to_json() for n in self.nodes],
            "edges": [e.to_json() for e in self.edges],
        }


def _group(
    edges: Iterable[GraphEdge], size: int, key: Callable[[GraphEdge], int]
) -> tuple[tuple[GraphEdge, ...], ...]:
    groups: list[list[GraphEdge]] = [[] for _ in range(size)]
    for edge in edges:
        groups[key(edge)].append(edge)
    return tuple(tuple(g) for g in groups)


# ---------------------------------------------------------------------------------------
# Small helpers: readable op names, summaries, JSON


def op_name(class_name: str) -> str:
    """`MulBackward0` -> `mul`, `AddmmBackward0` -> `addmm`, `NativeLayerNormBackward0` ->
    `native_layer_norm`; the AccumulateGrad of a leaf is `leaf`."""
    if class_name.endswith(LEAF_CLASS):
        return LEAF
    base = re.sub(r"Backward\d*$", "", class_name) or class_name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()


def node_class_name(fn: object) -> str:
    name = type(fn).__name__
    return LEAF_CLASS if name.endswith(LEAF_CLASS) else name


def summarize(tensor: Any) -> Quantity:
    """A float for one-element tensors, a TensorSummary otherwise, None if not numeric."""
    try:
        if tensor.numel() == 1:
            return float(tensor.item())
        shape = tuple(int(s) for s in tensor.shape)
        if tensor.numel() == 0:
            return TensorSummary(shape, 0.0, math.nan, math.nan, math.nan)
        flat = tensor.detach().reshape(-1)
        if flat.numel() <= SUMMARY_LIST_LIMIT:
            values = [float(v) for v in flat.tolist()]
            total = math.fsum(values)
            return TensorSummary(
                shape, total, total / len(values), min(values), max(values),
                tuple(values[:FIRST_ELEMENTS]),
            )
        first = tuple(float(v) for v in flat[:FIRST_ELEMENTS].tolist())
        flat = flat.double()
        total = float(flat.sum().item())
        return TensorSummary(
            shape, total, total / flat.numel(), float(flat.min().item()), float(flat.max().item()),
            first,
        )
    except Exception:  # complex, sparse, meta tensors...: the graph just shows no value
        return None


def _json_float(value: float) -> float | None:
    # JSON has no NaN or infinity; null is the honest "not a number".
    return value if math.isfinite(value) else None


def quantity_json(value: Quantity) -> Any:
    if isinstance(value, TensorSummary):
        return value.to_json()
    if isinstance(value, float):
        return _json_float(value)
    return None


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


# ---------------------------------------------------------------------------------------
# Recording


@dataclass(frozen=True)
class _Plain:
    """A torch call whose tensor result has no grad_fn (its inputs need no gradient)."""

    result: object
    op: str
    args: tuple[object, ...]
    func: Any
    kwargs: dict[str, object]

    def inputs(self) -> list[tuple[int, object]]:
        """(slot, argument) of the inputs this call's node would have in next_functions had
        its tensors required grad, so that untracked results show their inputs the way
        tracked ones do (`b.detach() ** 2` shows b.detach(), not the exponent 2). Found by
        running the call again on copies that require grad (random state kept); when that
        cannot be done, every tensor and number argument."""
        every = [
            (slot, arg)
            for slot, arg in enumerate(_flatten(self.args))
            if _is_tensor(arg) or (isinstance(arg, (int, float)) and not isinstance(arg, bool))
        ]
        if "out" in self.kwargs:
            return every
        try:
            found = self._rerun()
        except Exception:
            return every
        return every if found is None else found

    def _rerun(self) -> list[tuple[int, object]] | None:
        import torch

        copies: dict[int, object] = {}  # id(copy) -> the argument it stands for

        def swap(arg: object) -> object:
            if isinstance(arg, (list, tuple)):
                return type(arg)(swap(a) for a in arg)
            if isinstance(arg, torch.Tensor) and (arg.is_floating_point() or arg.is_complex()):
                copy = arg.detach().clone().requires_grad_()
                copies[id(copy)] = arg
                return copy
            return arg

        args = tuple(swap(a) for a in self.args)
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            result = self.func(*args, **self.kwargs)
        fn = getattr(result, "grad_fn", None)
        if fn is None:
            return None
        nexts = fn.next_functions
        candidates = _constant_candidates(self.args, nexts)
        found: list[tuple[int, object]] = []
        for slot, (nxt, _) in enumerate(nexts):
            if nxt is None:
                if candidates is None:
                    return None
                found.append((slot, candidates[slot]))
                continue
            variable = getattr(nxt, "variable", None)
            if id(variable) not in copies:  # a composite op: not a direct input
                return None
            found.append((slot, copies[id(variable)]))
        return found


class GraphRecorder:
    """Context manager recording the graph of every backward() run inside it."""

    def __init__(self) -> None:
        self.attempts: list[CapturedGraph] = []  # every backward, including failed ones
        self._values: dict[object, Quantity] = {}  # grad_fn -> forward value of its output
        self._inputs: dict[object, tuple[object, ...]] = {}  # grad_fn -> args with constants
        # id(copy) -> (copy, source, "detach()" or "data")
        self._detached: dict[int, tuple[object, object, str]] = {}
        self._plain: dict[int, _Plain] = {}  # untracked results, by id
        self._mode: Any = None

    @property
    def graphs(self) -> list[CapturedGraph]:
        """One graph per backward() that finished, in order."""
        return [g for g in self.attempts if g.error is None]

    def __enter__(self) -> GraphRecorder:
        self._mode = _mode_class()(self)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        mode, self._mode = self._mode, None
        mode.__exit__(*exc)

    def record_backward(self, roots: Sequence[Any], run: Callable[[], object]) -> object:
        """Run `run()` (a real backward from `roots`) with hooks on every node; keep the graph.
        Exceptions from `run` propagate unchanged; capture problems never surface."""
        with _gc_paused():
            return self._record_backward(roots, run)

    def _record_backward(self, roots: Sequence[Any], run: Callable[[], object]) -> object:
        capture = None
        try:
            capture = _Capture(self, roots)
            capture.start()
        except Exception:
            if capture is not None:
                capture.close()
            capture = None
        try:
            result = run()
        except BaseException as error:
            self._finish(capture, roots, error)
            raise
        self._finish(capture, roots, None)
        return result

    def _finish(
        self, capture: _Capture | None, roots: Sequence[Any], error: BaseException | None
    ) -> None:
        message = None if error is None else _error_text(error)
        graph = None
        try:
            if capture is not None:
                capture.close()
                graph = capture.build(message)
            elif error is not None and roots and not roots[0].requires_grad:
                graph = self._untracked_graph(roots[0], message)
        except Exception:
            graph = None
        if graph is not None:
            self.attempts.append(graph)

    # Called by the mode after every torch call; must never raise.
    def note(
        self,
        func: Any,
        args: tuple[object, ...],
        result: object,
        kwargs: Mapping[str, object] | None = None,
    ) -> None:
        try:
            self._note(func, args, result, kwargs or {})
        except Exception:
            pass

    def _note(
        self, func: Any, args: tuple[object, ...], result: object, kwargs: Mapping[str, object]
    ) -> None:
        import torch

        if isinstance(result, (tuple, list)):
            for item in result:
                if isinstance(item, torch.Tensor) and item.grad_fn is not None:
                    self._values.setdefault(item.grad_fn, summarize(item))
            return
        if not isinstance(result, torch.Tensor):
            return
        fn = result.grad_fn
        if fn is not None:
            if fn not in self._values:
                self._values[fn] = summarize(result)
                if any(not _requires_grad(a) for a in args):
                    self._inputs[fn] = tuple(args)
            return
        how = _detach_kind(func)
        if how and args:
            self._detached[id(result)] = (result, args[0], how)
        elif _is_untracked_op(func, args, result):
            name = getattr(func, "__name__", "op")
            self._plain[id(result)] = _Plain(result, name, tuple(args), func, dict(kwargs))

    def _untracked_graph(self, output: Any, error: str | None) -> CapturedGraph:
        """Explain a result with no grad_fn: what it was computed from, and where it was cut."""
        builder = _Builder()
        builder.expand(self, [builder.add_tensor(self, output, UNTRACKED)])
        return builder.graph(error)

    def leads_to_cut(self, tensor: object) -> bool:
        """True when an untracked tensor was computed from a detached or tracked tensor,
        so its provenance shows a cut worth drawing (plain constants stay one node)."""
        start = self._plain.get(id(tensor))
        if start is None or start.result is not tensor:
            return False
        queue, seen = deque([tensor]), {id(tensor)}
        while queue and len(seen) < UNTRACKED_LIMIT:
            record = self._plain.get(id(queue.popleft()))
            for arg in _flatten(record.args) if record is not None else ():
                if not _is_tensor(arg) or id(arg) in seen:
                    continue
                entry = self._detached.get(id(arg))
                if (entry is not None and entry[0] is arg) or _requires_grad(arg):
                    return True
                seen.add(id(arg))
                queue.append(arg)
        return False


@cache
def _mode_class() -> type:
    """The TorchFunctionMode subclass, defined on first use so torch loads only when needed."""
    import torch
    from torch.overrides import TorchFunctionMode

    backward_functions = (torch.Tensor.backward, torch.autograd.backward)

    class _RecordingMode(TorchFunctionMode):
        def __init__(self, recorder: GraphRecorder) -> None:
            super().__init__()
            self.recorder = recorder

        def __torch_function__(
            self,
            func: Any,
            types: Any,
            args: tuple[Any, ...] = (),
            kwargs: dict[str, Any] | None = None,
        ) -> Any:
            kwargs = kwargs or {}
            if func in backward_functions:
                roots = _backward_roots(func, args, kwargs)
                return self.recorder.record_backward(roots, lambda: func(*args, **kwargs))
            result = func(*args, **kwargs)
            self.recorder.note(func, args, result, kwargs)
            return result

    return _RecordingMode


def _backward_roots(func: Any, args: tuple[object, ...], kwargs: Mapping[str, object]) -> list:
    import torch

    first = args[0] if args else kwargs.get("tensors", kwargs.get("self"))
    if func is torch.Tensor.backward:
        items: list[object] = [first]
    else:
        items = list(first) if isinstance(first, (tuple, list)) else [first]
    return [t for t in items if isinstance(t, torch.Tensor)]


def capture(
    output: Any,
    names: Mapping[str, object] | None = None,
    *,
    recorder: GraphRecorder | None = None,
    gradient: Any = None,
) -> CapturedGraph:
    """Run `output.backward()` and return its graph, named after `names`.

    Intermediate values are known only for tensors computed while a recorder was active:
    build `output` inside `with GraphRecorder() as rec:` and pass `recorder=rec`.
    Raises whatever backward raises (e.g. when `output` does not require grad).
    """
    rec = recorder if recorder is not None else GraphRecorder()
    before = len(rec.attempts)
    if rec._mode is not None:  # inside `with rec:` the mode records this backward itself
        output.backward(gradient)
    else:
        rec.record_backward([output], lambda: output.backward(gradient))
    if len(rec.attempts) == before:
        raise RuntimeError("the graph could not be captured")
    graph = rec.attempts[-1]
    return graph.named(names) if names else graph


# ---------------------------------------------------------------------------------------
# One backward pass: walk, hook, build


class _Capture:
    def __init__(self, recorder: GraphRecorder, roots: Sequence[Any]) -> None:
        from torch.autograd.graph import get_gradient_edge

        self.recorder = recorder
        self.roots = list(roots)
        self.fns: list[Any] = []
        self.index: dict[Any, int] = {}
        self.handles: list[Any] = []
        root_fns = []
        for tensor in self.roots:
            if tensor.requires_grad:
                root_fns.append(get_gradient_edge(tensor).node)
        if not root_fns:
            raise LookupError("nothing to walk: the output does not require grad")
        self._walk(root_fns)
        self.nexts = [fn.next_functions for fn in self.fns]
        count = len(self.fns)
        self.arriving: list[Quantity] = [None] * count
        self.multi_output = [False] * count
        self.sent: list[tuple[Quantity, ...] | None] = [None] * count
        self.local: dict[int, tuple[Local, ...]] = {}
        self.asked = 0  # nodes asked for their local derivatives (FALLBACK_LIMIT)
        self.leaf = [node_class_name(fn) == LEAF_CLASS for fn in self.fns]
        self.before: list[Quantity] = [
            _grad_of(fn.variable) if is_leaf else None
            for fn, is_leaf in zip(self.fns, self.leaf, strict=True)
        ]

    def _walk(self, root_fns: Sequence[Any]) -> None:
        stack = list(reversed(root_fns))
        while stack:
            fn = stack.pop()
            if fn in self.index:
                continue
            self.index[fn] = len(self.fns)
            self.fns.append(fn)
            stack.extend(n for n, _ in reversed(fn.next_functions) if n is not None)

    def start(self) -> None:
        """Hook every node; `close()` removes the hooks again.

        One post-hook per node is enough: it receives both the gradient that arrived at the
        node (grad_outputs) and what the node sent along each edge (grad_inputs). For a leaf's
        AccumulateGrad, grad_inputs is empty and grad_outputs is the gradient it adds to .grad.
        """
        for i, fn in enumerate(self.fns):
            self.handles.append(fn.register_hook(self._hook(i, fn)))

    def _hook(self, i: int, fn: Any) -> Callable[[Any, Any], None]:
        def hook(grad_inputs: Any, grad_outputs: Any) -> None:
            self.multi_output[i] = len(grad_outputs) != 1
            first = grad_outputs[0] if grad_outputs else None
            upstream = self.arriving[i] = summarize(first) if first is not None else None
            self.sent[i] = tuple(summarize(g) if g is not None else None for g in grad_inputs)
            if not grad_inputs or first is None or len(grad_outputs) != 1:
                return
            if first.numel() != 1 or any(g is not None and g.numel() != 1 for g in grad_inputs):
                if len(self.local) < TENSOR_LOCAL_LIMIT:
                    self.local[i] = self._tensor_locals(fn, first, grad_inputs)
            elif (
                isinstance(upstream, float)
                and (upstream == 0 or not math.isfinite(upstream))
                and self.asked < FALLBACK_LIMIT
            ):
                # contribution / upstream would be 0/0: ask the node itself for d(out)/d(in).
                self.asked += 1
                local = _call_with_ones(fn, first)
                if local is not None:
                    self.local[i] = tuple(
                        float(r.reshape(-1)[0]) if r is not None and r.numel() == 1 else None
                        for r in local
                    )

        return hook

    def _tensor_locals(self, fn: Any, upstream: Any, sent: Sequence[Any]) -> tuple[Local, ...]:
        """Per slot, the local derivative of a node where a tensor is involved: a number
        between one-element tensors, else a LocalFactor (see its kinds).

        contribution / upstream, element by element, gives the factors when the upstream has
        no zero and nothing was summed; otherwise the node is called once with a gradient of
        ones, which returns the factors of every element (a direct call does not sum over a
        broadcast input, as the engine does)."""
        op = op_name(node_class_name(fn))
        count = upstream.numel()
        scalar_out = count == 1
        elementwise = scalar_out or op in ELEMENTWISE_OPS
        ones: tuple[Any, ...] | None = None
        try:
            divisible = bool(upstream.isfinite().all() and (upstream != 0).all())
        except Exception:
            divisible = False
        locals_: list[Local] = []
        for g in sent:
            if g is None:
                locals_.append(None)
                continue
            if not elementwise:
                locals_.append(LocalFactor(JACOBIAN, op))
                continue
            whole = scalar_out or g.numel() == count  # not summed over a broadcast
            factors: Any = None
            if whole and divisible:
                factors = _divide(g, upstream)
            if factors is None:
                if ones is None and self.asked < FALLBACK_LIMIT:
                    self.asked += 1
                    ones = _call_with_ones(fn, upstream) or ()
                slot = len(locals_)
                found = ones[slot] if ones is not None and slot < len(ones) else None
                if found is not None and (scalar_out or found.numel() == count):
                    factors = found
            if scalar_out and g.numel() == 1:  # one number to one number
                locals_.append(float(factors.reshape(-1)[0]) if factors is not None else None)
                continue
            kind = REDUCTION if scalar_out else ELEMENTWISE
            summary = summarize(factors) if factors is not None else None
            locals_.append(
                LocalFactor(kind, op, summary if isinstance(summary, TensorSummary) else None,
                            summed=not whole)
            )
        return tuple(locals_)

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def build(self, error: str | None) -> CapturedGraph:
        builder = _Builder()
        for i, fn in enumerate(self.fns):
            builder.add_fn(self, i, fn)
        for i, fn in enumerate(self.fns):
            self._add_edges(builder, i, fn)
        return builder.graph(error)

    def _add_edges(self, builder: _Builder, i: int, fn: Any) -> None:
        args = self.recorder._inputs.get(fn)
        nexts = self.nexts[i]
        candidates = _constant_candidates(args, nexts) if args is not None else None
        upstream = None if self.multi_output[i] else self.arriving[i]
        sent = self.sent[i]
        for slot, (nxt, _) in enumerate(nexts):
            if nxt is None:
                arg = candidates[slot] if candidates is not None else None
                builder.edge(i, builder.add_constant(self.recorder, arg), slot)
                continue
            contribution = sent[slot] if sent is not None and slot < len(sent) else None
            local = self._local(i, slot, upstream, contribution)
            builder.edge(i, self.index[nxt], slot, upstream, local, contribution)

    def _local(self, i: int, slot: int, upstream: Quantity, contribution: Quantity) -> Local:
        fallback = self.local.get(i)
        if fallback is not None and slot < len(fallback):
            return fallback[slot]
        if isinstance(upstream, float) and isinstance(contribution, float) and upstream != 0:
            return contribution / upstream
        return None


class _Builder:
    """Collects nodes and edges, then numbers them output-first in topological order.

    Nodes are kept as plain field dicts and edges as tuples until the end, so each
    GraphNode/GraphEdge is made once (dataclasses.replace per node was the main cost).
    """

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.objects: list[object] = []
        self.sources: dict[int, object] = {}
        self.edges: list[tuple[int, int, int, Quantity, Local, Quantity]] = []
        self._tensor_ids: dict[int, int] = {}

    def _append(self, obj: object, **fields: Any) -> int:
        node_id = len(self.nodes)
        self.nodes.append(fields)
        self.objects.append(obj)
        if obj is not None and _is_tensor(obj):
            self._tensor_ids[id(obj)] = node_id
        return node_id

    def find(self, tensor: object) -> int | None:
        return self._tensor_ids.get(id(tensor))

    def edge(
        self,
        src: int,
        dst: int,
        slot: int,
        upstream: Quantity = None,
        local: Local = None,
        contribution: Quantity = None,
    ) -> None:
        self.edges.append((src, dst, slot, upstream, local, contribution))

    def add_fn(self, capture: _Capture, i: int, fn: Any) -> None:
        class_name = node_class_name(fn)
        if capture.leaf[i]:
            variable = fn.variable
            node_id = self._append(
                variable,
                kind=LEAF,
                op=LEAF,
                class_name=class_name,
                value=summarize(variable),
                grad=capture.arriving[i],
                grad_before=capture.before[i],
                grad_after=_grad_of(variable),
            )
            self._mark_detached(capture.recorder, node_id, variable)
            return
        value = capture.recorder._values.get(fn)
        if value is None:
            value = next((summarize(t) for t in capture.roots if t.grad_fn is fn), None)
        grad = None if capture.multi_output[i] else capture.arriving[i]
        op = op_name(class_name)
        self._append(fn, kind=OP, op=op, class_name=class_name, value=value, grad=grad)

    def add_number(self, value: float) -> int:
        return self._append(None, kind=CONSTANT, op=CONSTANT, class_name="", value=value)

    def add_constant(self, recorder: GraphRecorder, arg: object) -> int:
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            return self.add_number(float(arg))
        if not _is_tensor(arg):
            return self._append(None, kind=CONSTANT, op=CONSTANT, class_name="")
        known = self.find(arg)
        if known is not None:
            return known
        if recorder.leads_to_cut(arg):
            node_id = self.add_tensor(recorder, arg, UNTRACKED)
            self.expand(recorder, [node_id])
            return node_id
        return self.add_tensor(recorder, arg, CONSTANT)

    def expand(self, recorder: GraphRecorder, start: Sequence[int]) -> None:
        """Add what untracked results were computed from (their inputs, recursively)."""
        queue = deque(start)
        added = 0
        while queue and added < UNTRACKED_LIMIT:
            node_id = queue.popleft()
            obj = self.objects[node_id]
            record = recorder._plain.get(id(obj))
            if record is None or record.result is not obj:
                continue
            if self.nodes[node_id]["kind"] != UNTRACKED:
                continue
            for slot, arg in record.inputs():
                if isinstance(arg, (int, float)) and not isinstance(arg, bool):
                    child = self.add_number(float(arg))
                elif _is_tensor(arg):
                    known = self.find(arg)
                    child = (
                        known if known is not None else self.add_tensor(recorder, arg, UNTRACKED)
                    )
                    if known is None:
                        queue.append(child)
                else:
                    continue
                added += 1
                self.edge(node_id, child, slot)

    def add_tensor(self, recorder: GraphRecorder, tensor: Any, kind: str) -> int:
        """A tensor outside the tracked graph: a constant input or an untracked result."""
        fn = tensor.grad_fn
        if fn is not None:  # a tracked tensor seen from an untracked result (e.g. under no_grad)
            class_name = node_class_name(fn)
            op = op_name(class_name)
            value = summarize(tensor)
            return self._append(fn, kind=OP, op=op, class_name=class_name, value=value)
        record = recorder._plain.get(id(tensor))
        computed = kind == UNTRACKED and record is not None and record.result is tensor
        if computed:
            op = record.op if record is not None else CONSTANT
        elif tensor.requires_grad:
            kind = op = LEAF
        else:
            kind = op = CONSTANT
        node_id = self._append(tensor, kind=kind, op=op, class_name="", value=summarize(tensor))
        self._mark_detached(recorder, node_id, tensor)
        return node_id

    def _mark_detached(self, recorder: GraphRecorder, node_id: int, tensor: object) -> None:
        entry = recorder._detached.get(id(tensor))
        if entry is None or entry[0] is not tensor:
            return
        self.sources[node_id] = entry[1]
        self.nodes[node_id]["detached_from"] = ""  # `named()` puts the source's name here
        self.nodes[node_id]["detached_by"] = entry[2]

    def graph(self, error: str | None) -> CapturedGraph:
        self.edges.sort(key=lambda e: (e[0], e[2]))
        order = _topological_order(len(self.nodes), self.edges)
        new_id = [0] * len(order)
        for new, old in enumerate(order):
            new_id[old] = new
        nodes = tuple(GraphNode(id=new, **self.nodes[old]) for new, old in enumerate(order))
        edges = [
            GraphEdge(new_id[src], new_id[dst], slot, up, local, contribution)
            for src, dst, slot, up, local, contribution in self.edges
        ]
        edges.sort(key=lambda e: (e.src, e.slot))
        refs = _Refs(
            [self.objects[old] for old in order],
            {new_id[old]: source for old, source in self.sources.items()},
        )
        return CapturedGraph(nodes, tuple(edges), 0, error, refs)


def _topological_order(count: int, edges: Sequence[tuple[Any, ...]]) -> list[int]:
    """Kahn's algorithm from the output (node 0 of the builder); edges are sorted by
    (src, slot), so children are taken in slot order."""
    indegree = [0] * count
    children: list[list[int]] = [[] for _ in range(count)]
    for src, dst, *_ in edges:
        indegree[dst] += 1
        children[src].append(dst)
    queue = deque(i for i in range(count) if indegree[i] == 0)
    order: list[int] = []
    while queue:
        node = queue.popleft()
        order.append(node)
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    return order


# ---------------------------------------------------------------------------------------
# Helpers around torch objects (torch is loaded whenever these run)


def _is_tensor(obj: object) -> bool:
    import torch

    return isinstance(obj, torch.Tensor)


def _requires_grad(obj: object) -> bool:
    return _is_tensor(obj) and bool(getattr(obj, "requires_grad", False))


def _grad_of(tensor: Any) -> Quantity:
    grad = tensor.grad
    return summarize(grad) if grad is not None else None


def _detach_kind(func: Any) -> str:
    """"detach()" for `t.detach()`, "data" for `t.data`, "" for anything else."""
    if getattr(func, "__name__", None) == "detach":
        return "detach()"
    # `tensor.data` reaches the mode as the `data` descriptor's __get__.
    owner = getattr(func, "__self__", None)
    if getattr(func, "__name__", None) == "__get__" and getattr(owner, "__name__", "") == "data":
        return "data"
    return ""


def _is_untracked_op(func: Any, args: tuple[object, ...], result: Any) -> bool:
    if getattr(func, "__name__", None) == "__get__" or result.requires_grad:
        return False
    if any(a is result for a in args):  # in-place ops return their input
        return False
    return any(_is_tensor(a) for a in _flatten(args))


def _flatten(args: Iterable[object]) -> list[object]:
    flat: list[object] = []
    for arg in args:
        if isinstance(arg, (list, tuple)):
            flat.extend(arg)
        else:
            flat.append(arg)
    return flat


def _slot_candidates(args: tuple[object, ...], slots: int) -> list[object] | None:
    """Match next_functions slots to the op's arguments, when the counts make it unambiguous."""
    flat = _flatten(args)
    if len(flat) == slots:
        return flat
    tensors = [a for a in flat if _is_tensor(a)]
    return tensors if len(tensors) == slots else None


def _constant_candidates(args: tuple[object, ...], nexts: Sequence[Any]) -> list[object] | None:
    """Per slot, the argument behind each empty (None) slot of next_functions: by position
    when that gives no empty slot a tensor that requires grad (`F.linear(x, weight, bias)`
    is an addmm whose slots are bias, x, weight), else the arguments that need no gradient,
    in order, when there are as many as empty slots; None when neither fits."""
    empty = [slot for slot, (nxt, _) in enumerate(nexts) if nxt is None]
    candidates = _slot_candidates(args, len(nexts))
    if candidates is not None and not any(_requires_grad(candidates[s]) for s in empty):
        return candidates
    plain = [
        a
        for a in _flatten(args)
        if (_is_tensor(a) and not _requires_grad(a))
        or (isinstance(a, (int, float)) and not isinstance(a, bool))
    ]
    if len(plain) != len(empty):
        return None
    found: list[object] = [None] * len(nexts)
    for slot, arg in zip(empty, plain, strict=True):
        found[slot] = arg
    return found


def _call_with_ones(fn: Any, upstream: Any) -> tuple[Any, ...] | None:
    """What the node sends back, per slot, for a gradient of ones shaped like `upstream`:
    d(out)/d(in) element by element, not summed over broadcasts. None if it cannot be asked."""
    import torch

    try:
        with torch.no_grad():
            result = fn(torch.ones_like(upstream))
        items = result if isinstance(result, (tuple, list)) else (result,)
        return tuple(r if isinstance(r, torch.Tensor) else None for r in items)
    except Exception:
        return None


def _divide(sent: Any, upstream: Any) -> Any:
    """sent / upstream element by element (the local factors), or None if the shapes differ."""
    try:
        if upstream.numel() == 1:
            return sent / upstream.reshape(())
        return (sent.reshape(-1) / upstream.reshape(-1)).reshape(upstream.shape)
    except Exception:
        return None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during one backward: the hooks and the graph
    allocate many small objects, and full collections over a large graph dominated the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _error_text(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _name_lookup(ns: Mapping[str, object]) -> dict[int, str]:
    """id(tensor) and id(tensor.grad_fn) -> the first variable name holding it."""
    import torch

    lookup: dict[int, str] = {}
    for name, value in ns.items():
        if name.startswith("_") or not isinstance(value, torch.Tensor):
            continue
        lookup.setdefault(id(value), name)
        if value.grad_fn is not None:
            lookup.setdefault(id(value.grad_fn), name)
    return lookup


def _leaf_names(source: Any, lookup: Mapping[int, str]) -> tuple[str, ...]:
    """Names of the leaves a detached tensor's source was computed from (the cut paths)."""
    direct = lookup.get(id(source))
    fn = getattr(source, "grad_fn", None)
    if fn is None:
        return (direct,) if direct and getattr(source, "requires_grad", False) else ()
    names: list[str] = []
    seen: set[Any] = set()
    stack = [fn]
    while stack and len(seen) < CUT_WALK_LIMIT:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node_class_name(node) == LEAF_CLASS:
            name = lookup.get(id(node.variable))
            if name and name not in names:
                names.append(name)
            continue
        stack.extend(n for n, _ in reversed(node.next_functions) if n is not None)
    return tuple(names)
