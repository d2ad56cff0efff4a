"""Terminal views of a CapturedGraph: `tree`, `table` and `paths` (rich renderables).

    console.print(render(graph, "paths", width=console.width, depth=None, ascii=False))

Everything is built from `rich.text.Text` pieces, never from markup strings, so names and
values are shown literally. A tensor reads as its shape and first elements
(`tensor[20] [-3.00, -2.68, -2.37, …]`), and so do its gradients and an elementwise op's local
factors. Large graphs are cut to a node budget and a depth limit, and a closing line says what
was left out. On a narrow terminal nothing is cut to fit: a tree's guides narrow and its lines
wrap under them (a small graph is drawn to its full depth), a table's columns keep their
longest word (rich's `min_width`), and a table too wide even so becomes `header: value`
blocks. Path listing is capped per leaf; the sum over all paths is computed by dynamic
programming, so it stays linear however many paths there are.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from autograd_tutor.engine.answers import format_value
from autograd_tutor.engine.graph import (
    CONSTANT,
    FIRST_ELEMENTS,
    JACOBIAN,
    LEAF,
    REDUCTION,
    UNTRACKED,
    CapturedGraph,
    GraphEdge,
    GraphNode,
    Local,
    LocalFactor,
    Quantity,
    TensorSummary,
)
from autograd_tutor.views.ui import Fitted

VIEWS = ("tree", "table", "paths")
DEFAULT_MAX_NODES = 60  # tree lines / table rows before the view stops and says so
DEFAULT_MAX_PATHS = 12  # paths listed per leaf
MAX_LEAVES = 12  # leaves the paths view goes through
PATH_LABELS = 9  # a longer path is shown as its first and last few nodes
SHOWN_ELEMENTS = 3  # a tensor shows this many first elements, then `…` (all, up to FIRST_ELEMENTS)
MIN_WIDTH = 40
TREE_LABEL_ROOM = 36  # columns a tree line keeps for its text; the rest is for guides
TREE_MIN_ROOM = 18  # the least a tree line keeps when its text wraps (longest words fit)
TREE_CUT_LEVELS = 8  # a graph too deep to draw whole keeps wide guides if this many levels fit

NODES_TITLE = "Nodes, in the order backward() reaches them"
EDGES_TITLE = "Edges, the way the gradient flows (edges into one node add up)"
NAME, OP, VALUE, GRAD, NOTE, CUT = "bold cyan", "magenta", "green", "yellow", "dim", "bold red"


@dataclass(frozen=True)
class Symbols:
    times: str
    arrow: str
    ellipsis: str
    cut: str
    check: str
    cross: str
    dot: str


UNICODE = Symbols("×", "→", "…", "✂", "✓", "✗", "·")
ASCII = Symbols("x", "->", "...", "X", "ok", "!=", "-")


def needs_ascii(console: Console) -> bool:
    """True when the console's encoding cannot draw box characters and arrows."""
    return not console.encoding.lower().startswith("utf")


def render(
    graph: CapturedGraph,
    view: str = "tree",
    *,
    width: int = 100,
    depth: int | None = None,
    ascii: bool = False,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_paths: int = DEFAULT_MAX_PATHS,
) -> RenderableType:
    """A renderable for one view of `graph`. `depth` limits tree levels (None: as many as
    fit the width); `ascii` forces ASCII boxes, guides and symbols (also used automatically
    when the console cannot encode them)."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
    if depth is not None and depth < 1:
        raise ValueError("depth must be at least 1")
    return _GraphView(graph, view, width, depth, ascii, max(1, max_nodes), max(1, max_paths))


@dataclass(frozen=True)
class _GraphView:
    graph: CapturedGraph
    view: str
    width: int
    depth: int | None
    ascii: bool
    max_nodes: int
    max_paths: int

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        ascii_only = self.ascii or options.ascii_only
        width = max(MIN_WIDTH, min(self.width, options.max_width))
        inner = options.update(width=width)
        if ascii_only:
            inner = inner.copy()
            inner.encoding = "ascii"  # makes rich pick ASCII tree guides and table boxes
        ctx = _Context(self.graph, ASCII if ascii_only else UNICODE, width, ascii_only)
        for part in self._parts(ctx):
            yield from console.render(part, inner)

    def _parts(self, ctx: _Context) -> list[RenderableType]:
        parts: list[RenderableType] = [_header(ctx)]
        if self.view == "tree":
            parts += _tree_view(ctx, self.depth, self.max_nodes)
        elif self.view == "table":
            parts += _table_view(ctx, self.max_nodes)
        else:
            parts += _paths_view(ctx, self.max_paths)
        parts += _notes(ctx)
        return parts


class _Context:
    def __init__(self, graph: CapturedGraph, sym: Symbols, width: int, ascii_only: bool) -> None:
        self.graph = graph
        self.sym = sym
        self.width = width
        self.box = box.ASCII if ascii_only else box.SIMPLE_HEAD

    def ref(self, node_id: int) -> str:
        node = self.graph.nodes[node_id]
        return f"#{node_id} {node.label}"

    def quantity(self, value: Quantity, missing: str = "None") -> str:
        return quantity(value, missing, self.sym.ellipsis)


# ---------------------------------------------------------------------------------------
# Numbers


def number(value: float) -> str:
    """Short, stable text for a number: 34, -0.5, 0.3333, 1.5e-07, nan."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) < 1e-4 or abs(value) >= 1e9:
        return f"{value:.4g}"
    return format_value(value, 4)


def quantity(value: Quantity, missing: str = "None", ellipsis: str = "…") -> str:
    """A number, or a tensor's shape and first elements: `tensor[20] [-3.00, -2.68, -2.37, …]`."""
    if value is None:
        return missing
    if isinstance(value, TensorSummary):
        shape = "x".join(str(s) for s in value.shape)
        if not value.first:
            return f"tensor[{shape}]"
        return f"tensor[{shape}] {elements(value, ellipsis)}"
    return number(value)


def elements(summary: TensorSummary, ellipsis: str = "…") -> str:
    """`[-3.00, -2.68, -2.37, …]`: the first elements, with as many decimals as give the
    largest of them three significant digits (zeros every element ends in dropped), the way
    `print(tensor)` lines its numbers up. All of them when there are no more than
    FIRST_ELEMENTS."""
    values = list(summary.first)
    every = summary.numel <= min(FIRST_ELEMENTS, len(values))
    shown = values if every else values[:SHOWN_ELEMENTS]
    texts = shared_format(shown)
    return "[" + ", ".join(texts + ([] if every else [ellipsis])) + "]"


def shared_format(values: Sequence[float]) -> list[str]:
    """The numbers of one tensor, all with the same decimals: [-3.00, -2.68], [0.05, 0.05]."""
    finite = [v for v in values if math.isfinite(v)]
    largest = max((abs(v) for v in finite), default=0.0)
    if all(v.is_integer() and abs(v) < 1e15 for v in finite):
        return [number(v) for v in values]
    if largest < 1e-3 or largest >= 1e6:
        return [f"{v:.2e}" if math.isfinite(v) else number(v) for v in values]
    decimals = min(6, max(0, 2 - math.floor(math.log10(largest))))
    texts = [f"{v:.{decimals}f}" if math.isfinite(v) else number(v) for v in values]
    fixed = [i for i, v in enumerate(values) if math.isfinite(v)]
    while decimals > 0 and all(texts[i].endswith("0") for i in fixed):
        decimals -= 1
        for i in fixed:
            texts[i] = texts[i][: -2 if decimals == 0 else -1]  # the point goes with the last 0
    return [t[1:] if t.startswith("-") and not t.strip("-0.") else t for t in texts]


def factor(value: Quantity, ellipsis: str = "…") -> str:
    """A number inside a product: negative numbers in parentheses."""
    text = quantity(value, "?", ellipsis)
    return f"({text})" if text.startswith("-") else text


def fraction(value: float) -> str:
    """1/20 for 0.05 (a mean's factor), else the number, in parentheses when negative."""
    if value != 0 and abs(value) < 1 and math.isfinite(value):
        count = round(1 / abs(value))
        if count >= 2 and math.isclose(1 / abs(value), count, rel_tol=1e-5):
            return f"1/{count}" if value > 0 else f"(-1/{count})"
    return factor(value)


def known_local(local: Local) -> bool:
    """True when `local_text` has something to show: a number or elementwise factors."""
    if isinstance(local, float):
        return True
    return isinstance(local, LocalFactor) and local.kind != JACOBIAN and local.factors is not None


def local_text(local: Local, ellipsis: str = "…") -> str | None:
    """The local derivative of an edge as a factor: `27`, `(-1) each`, `1/20 each (mean)`,
    `[-3.00, -2.68, -2.37, …] elementwise, summed`; None for a Jacobian or when unknown."""
    if isinstance(local, float):
        return factor(local)
    if not isinstance(local, LocalFactor) or local.kind == JACOBIAN or local.factors is None:
        return None
    uniform = local.uniform
    if uniform is not None:
        text = f"{fraction(uniform)} each"
    elif local.kind == REDUCTION:
        text = f"{elements(local.factors, ellipsis)}, one per element"
    else:
        text = f"{elements(local.factors, ellipsis)} elementwise"
    if local.kind == REDUCTION:
        text += f" ({local.op})"
    return text + (", summed" if local.summed else "")


def sum_text(terms: Sequence[float]) -> str:
    """27 + 12 - 5 (later negative terms read as subtraction)."""
    pieces = [number(terms[0])]
    for term in terms[1:]:
        pieces.append(f"- {number(-term)}" if term < 0 else f"+ {number(term)}")
    return " ".join(pieces)


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def close(a: float, b: float) -> bool:
    # Float32 products along a path differ from PyTorch's sum in the last bits.
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)


# ---------------------------------------------------------------------------------------
# Pieces shared by the views


def _header(ctx: _Context) -> Text:
    graph = ctx.graph
    kinds = Counter(n.kind for n in graph.nodes)
    parts = []
    for kind, one, many in (
        ("op", "op", "ops"),
        (LEAF, "leaf", "leaves"),
        (CONSTANT, "constant", "constants"),
        (UNTRACKED, "untracked result", "untracked results"),
    ):
        if kinds[kind]:
            parts.append(plural(kinds[kind], one, many))
    gradient_edges = sum(1 for e in graph.edges if _carries_gradient(graph, e))
    text = Text.assemble(
        ("Autograd graph of ", ""),
        (graph.output.label, NAME),
        (f": {plural(len(graph.nodes), 'node')} ({', '.join(parts)}), ", ""),
        (f"{plural(gradient_edges, 'edge')} carrying gradient", ""),
    )
    if graph.error:
        text.append(f"\nbackward() raised {graph.error}", CUT)
    output = graph.output
    if output.kind in (UNTRACKED, CONSTANT) and graph.error:
        text.append(
            f"\n{output.label} has no grad_fn: nothing it was computed from requires grad, "
            "so backward() has no graph to follow.",
            NOTE,
        )
    return text


def detach_text(node: GraphNode) -> str:
    """`b.detach()` (or `b.data`), or `.detach()` when the source tensor has no name."""
    return node.detach_text


def _notes(ctx: _Context) -> list[RenderableType]:
    """Cut edges: every tensor made by .detach() is a new leaf with no path back."""
    lines: list[RenderableType] = []
    for node in ctx.graph.nodes:
        if node.detached_from is None:
            continue
        through = f" through {node.detached_from}" if node.detached_from else ""
        made = f" was made by {detach_text(node)}:" if node.name else " is"
        text = Text.assemble(
            (f"{ctx.sym.cut} ", CUT),
            (node.label, NAME),
            (f"{made} a new leaf with no path back{through}", ""),
        )
        if node.cut_leaves:
            text.append(" to ")
            text.append(", ".join(node.cut_leaves), NAME)
        text.append(". The chain rule stops here.")
        lines.append(text)
    return lines


def _carries_gradient(graph: CapturedGraph, edge: GraphEdge) -> bool:
    return graph.nodes[edge.dst].kind not in (CONSTANT, UNTRACKED)


def _node_text(ctx: _Context, node: GraphNode) -> Text:
    """`#3 h_act = add (AddBackward0)  value 6.5  grad -1`: the readable name beside
    PyTorch's class (what `grad_fn` and `next_functions` print), and what is special about
    the node. A constant reads the same whether its graph was tracked or not: its name (or the
    `b.detach()` that made it, or its value), then `(constant VALUE, no gradient)`."""
    text = Text(f"#{node.id} ", NOTE)
    if node.kind == CONSTANT:
        value = ctx.quantity(node.value) if node.value is not None else ""
        if node.name or node.detached_from is not None or isinstance(node.value, float):
            text.append(node.label, NAME if node.name else VALUE)
        else:  # an unnamed tensor: its value is its label
            text.append(value, VALUE)
            value = ""
        if value == node.label:
            value = ""
        text.append(f" (constant{' ' + value if value else ''}, no gradient)", NOTE)
        return _with_detach(ctx, node, text)
    if node.name:
        text.append(node.name, NAME)
        text.append(" = " if node.kind not in (LEAF,) else " ", "")
    if node.kind == LEAF:
        text.append("(leaf", OP)
        text.append(f", {node.class_name})" if node.class_name else ")", OP)
    else:
        text.append(node.op, OP)
        if node.kind == UNTRACKED:
            text.append(" (untracked: no grad_fn)", CUT)
        elif node.class_name:
            text.append(f" ({node.class_name})", NOTE)
    text.append("  value ", NOTE)
    text.append(ctx.quantity(node.value, "?"), VALUE)
    if node.kind != UNTRACKED:
        text.append("  grad ", NOTE)
        text.append(ctx.quantity(node.grad), GRAD)
    if node.accumulated:
        text.append(f"  .grad {_accumulation(ctx, node)}", GRAD)
    return _with_detach(ctx, node, text)


def _accumulation(ctx: _Context, node: GraphNode) -> str:
    """previous .grad + incoming = new .grad (Exercise 3)."""
    before, incoming, after = node.grad_before, node.grad, node.grad_after
    if isinstance(before, float) and isinstance(incoming, float):
        return f"{number(before)} + {factor(incoming)} = {ctx.quantity(after)}"
    return f"{ctx.quantity(before)} + {ctx.quantity(incoming)} = {ctx.quantity(after)}"


def _with_detach(ctx: _Context, node: GraphNode, text: Text) -> Text:
    if node.detached_from is not None:
        made = f": made by {detach_text(node)}" if node.name else ""
        text.append(f"  {ctx.sym.cut} cut{made}", CUT)
    return text


def _edge_text(ctx: _Context, edge: GraphEdge) -> Text:
    """upstream x local = contribution; between tensors the local factor is what it is per
    element (`[...] elementwise`, `(-1) each`, `1/20 each (mean)`), `, summed` when the input
    was broadcast; a Jacobian only for ops that mix elements (matmul, softmax...)."""
    sym = ctx.sym
    if edge.contribution is None:
        if ctx.graph.nodes[edge.dst].kind in (CONSTANT, UNTRACKED) or ctx.graph.error:
            return Text("no gradient", NOTE)
        return Text("nothing sent", NOTE)
    if isinstance(edge.local, float) and isinstance(edge.upstream, float):
        return Text(
            f"{factor(edge.upstream)} {sym.times} {factor(edge.local)} = "
            f"{ctx.quantity(edge.contribution)}",
            GRAD,
        )
    local = local_text(edge.local, sym.ellipsis) or "(Jacobian)"
    upstream = factor(edge.upstream, sym.ellipsis)
    return Text(f"{upstream} {sym.times} {local} = {ctx.quantity(edge.contribution)}", GRAD)


SHOWN_OPS = 6  # the most common ops named in "Nodes by op"; the others are counted


def _omitted(ctx: _Context, shown: int, reasons: Sequence[str]) -> Text | None:
    graph = ctx.graph
    hidden = len(graph.nodes) - shown
    if hidden <= 0:
        return None
    counts = Counter(n.op for n in graph.nodes)
    ops = counts.most_common(SHOWN_OPS)
    summary = f" {ctx.sym.dot} ".join(f"{op} {count:,}" for op, count in ops)
    rest = counts.total() - sum(count for _, count in ops)
    if rest:  # the ops not named are counted, never dropped silently
        kinds = len(counts) - len(ops)
        summary += (f" {ctx.sym.dot} {ctx.sym.ellipsis} and {kinds} more op"
                    f"{'s' * (kinds != 1)} ({plural(rest, 'node')})")
    return Text(
        f"{ctx.sym.ellipsis} showing {shown:,} of {len(graph.nodes):,} nodes; "
        f"{hidden:,} left out ({'; '.join(reasons)}). Nodes by op: {summary}.",
        NOTE,
    )


# ---------------------------------------------------------------------------------------
# tree


class _NarrowTree(Tree):
    """A tree whose guides take 3 or 2 columns a level instead of rich's 4."""

    def __init__(self, label: RenderableType, guide: int) -> None:
        super().__init__(label, guide_style="dim")
        if guide < 4:  # rendering reads the root's guides for every level
            self.ASCII_GUIDES = _narrow(Tree.ASCII_GUIDES, guide)
            self.TREE_GUIDES = [_narrow(guides, guide) for guides in Tree.TREE_GUIDES]


def _narrow(guides: tuple[str, str, str, str], width: int) -> tuple[str, str, str, str]:
    """`├── ` as `├─ ` or `├ `: the first width-1 characters, then the closing space."""
    space, cont, fork, end = (g[: width - 1] + g[-1] for g in guides)
    return space, cont, fork, end


def tree_height(graph: CapturedGraph) -> int:
    """Levels below the output on the longest output-to-input path: the deepest any node can
    be drawn. Node ids are topological, so one pass in id order finds it."""
    level = [-1] * len(graph.nodes)
    for root in graph.roots:
        level[root] = 0
    for node_id, edges in enumerate(graph.outgoing):
        if level[node_id] >= 0:
            for edge in edges:
                level[edge.dst] = max(level[edge.dst], level[node_id] + 1)
    return max(level, default=0)


def tree_layout(width: int, height: int) -> tuple[int, int]:
    """(columns per level, levels drawn) for a tree `height` levels deep.

    The whole tree when it fits: wide guides with room for each line if possible, then
    narrower guides, then less room (the text wraps under its guide). Only a tree that cannot
    fit even so is cut at a depth.
    """
    for room in (TREE_LABEL_ROOM, TREE_MIN_ROOM):
        for guide in (4, 3, 2):
            if height * guide + room <= width:
                return guide, max(1, height)
    wide = (width - TREE_LABEL_ROOM) // 4
    if wide >= TREE_CUT_LEVELS:
        return 4, wide
    return 2, max(1, (width - TREE_MIN_ROOM) // 2)


def _tree_view(ctx: _Context, depth: int | None, max_nodes: int) -> list[RenderableType]:
    graph = ctx.graph
    height = tree_height(graph)
    guide, fit = tree_layout(ctx.width, min(height, depth) if depth is not None else height)
    max_depth = min(depth, fit) if depth is not None else fit
    drawn: set[int] = set()
    lines = 0
    cut_by_depth = False
    trees: list[RenderableType] = [
        Text(
            f"Each line: upstream {ctx.sym.times} local = gradient sent {ctx.sym.arrow} "
            "the input receiving it (its value, its total grad)",
            NOTE,
        )
    ]
    stack: list[tuple[Tree, int, GraphEdge, int]] = []
    for root in graph.roots:
        tree = _NarrowTree(_node_text(ctx, graph.nodes[root]), guide)
        trees.append(tree)
        drawn.add(root)
        lines += 1
        stack.extend((tree, e.dst, e, 1) for e in reversed(graph.outgoing[root]))
        while stack and lines < max_nodes:
            parent, node_id, edge, level = stack.pop()
            label = _edge_text(ctx, edge)
            label.append(f" {ctx.sym.arrow} ", NOTE)
            lines += 1
            if node_id in drawn:
                label.append_text(Text(f"#{node_id} {graph.nodes[node_id].label}", NAME))
                label.append(" (shown above)", NOTE)
                parent.add(label)
                continue
            drawn.add(node_id)
            label.append_text(_node_text(ctx, graph.nodes[node_id]))
            uses = len(graph.incoming[node_id])
            if uses > 1:
                label.append(f"  used {uses} times", NOTE)
            branch = parent.add(label)
            children = graph.outgoing[node_id]
            if children and level >= max_depth:
                cut_by_depth = True
                branch.add(Text(f"{ctx.sym.ellipsis} {len(children)} input(s) below depth", NOTE))
            elif children:
                stack.extend((branch, e.dst, e, level + 1) for e in reversed(children))
    reasons = []
    if cut_by_depth:
        reasons.append(f"deeper than {plural(max_depth, 'level')}")
    if stack:
        reasons.append(f"the view stops after {max_nodes} lines")
    note = _omitted(ctx, len(drawn), reasons or ["not reached"])
    return trees + ([note] if note else [])


# ---------------------------------------------------------------------------------------
# table


def _table_view(ctx: _Context, max_nodes: int) -> list[RenderableType]:
    graph = ctx.graph
    shown = graph.nodes[:max_nodes]
    ids = {n.id for n in shown}
    parts: list[RenderableType] = [
        _FitTable(_nodes_table(ctx, shown, compact=False), _nodes_table(ctx, shown, compact=True))
    ]
    if any(e.contribution is not None for e in graph.edges):
        parts.append(
            _FitTable(_edges_table(ctx, ids, compact=False), _edges_table(ctx, ids, compact=True))
        )
    else:
        parts.append(Text("No edge carries a gradient.", NOTE))
    note = _omitted(ctx, len(shown), [f"the table stops after {max_nodes} nodes"])
    return parts + ([note] if note else [])


class _FitTable:
    """A table laid out by rich with its own column settings (`_column_settings`): columns of
    single words `no_wrap`, every column `min_width` its longest word, so rich wraps between
    words and never cuts a number.

    Hand-made here, because rich cannot do it:
    - choosing the padding by the width: the spaced table when it fits unwrapped, else the
      compact one; when neither does, the spaced one wrapped if its longest words fit, else
      the compact one;
    - keeping within the width while respecting every `min_width`: rich squeezes the widest
      columns first and only afterwards raises each back to its `min_width`, so a table whose
      minimums fit can come out wider than the terminal. That is checked on the lines rich
      rendered; such a table, and one whose minimums do not fit, becomes `ui.Fitted`'s
      `header: value` blocks.
    """

    def __init__(self, spaced: Table, compact: Table) -> None:
        self.tables = (spaced, compact)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        wide = options.update_width(10_000)  # a narrow console caps each column's minimum
        measured: list[Measurement] = []
        for table in self.tables:  # measured only as far as needed: a wide table is costly
            measured.append(Measurement.get(console, wide, table))
            if measured[-1].maximum <= width:
                yield table
                return
        for table, size in zip(self.tables, measured, strict=True):
            if size.minimum <= width:
                segments = list(console.render(table, options))
                lines = Segment.split_lines(segments)
                if all(Segment.get_line_length(line) <= width for line in lines):
                    yield from segments
                    return
        # Fitted draws the table when its minimum fits and blocks otherwise: a minimum above
        # the width (Table.min_width) asks it for the blocks.
        table = self.tables[-1]
        table.min_width = width + 1
        yield Fitted(table)


def _column_settings(table: Table) -> Table:
    """Rich's own settings for every column: `min_width` its longest word (header words too),
    `no_wrap` when no cell has more than one word, `overflow="fold"` (never `…`). Columns
    holding tensors read left to right and share what width the others leave (`ratio`, with
    the table's `expand`) instead of being squeezed to their longest word."""
    for column in table.columns:
        cells = [_plain(column.header), *(_plain(cell) for cell in column.cells)]
        words = [word for cell in cells for word in cell.split()]
        column.min_width = max((cell_len(word) for word in words), default=1)
        column.no_wrap = all(len(cell.split()) <= 1 for cell in cells)
        column.overflow = "fold"
        if any("tensor[" in cell for cell in cells[1:]):
            column.justify = "left"
            column.ratio = 1
            table.expand = True
    return table


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _table(ctx: _Context, title: str, compact: bool) -> Table:
    """Columns three spaces apart; `compact`: two, and no margin at the edges."""
    table = Table(
        title=title,
        box=ctx.box,
        title_justify="left",
        min_width=min(len(title), ctx.width),
        expand=False,
    )
    if compact:
        table.padding = (0, 1, 0, 0)
        table.show_edge = False
    return table


def _nodes_table(ctx: _Context, shown: Sequence[GraphNode], compact: bool) -> Table:
    nodes = _table(ctx, NODES_TITLE, compact)
    for header, justify in (
        ("#", "right"),
        ("node", "left"),
        ("op", "left"),
        ("grad_fn", "left"),
        ("inputs", "left"),
        ("value", "right"),
        ("grad", "right"),
    ):
        nodes.add_column(header, justify=justify)  # type: ignore[arg-type]
    for node in shown:
        nodes.add_row(*_node_row(ctx, node))
    return _column_settings(nodes)


def _node_row(ctx: _Context, node: GraphNode) -> list[Text | str]:
    graph = ctx.graph
    inputs = ", ".join(ctx.ref(e.dst) for e in graph.outgoing[node.id])
    name = Text(node.name or "", NAME)
    if node.detached_from is not None:
        name.append(f"{' ' if node.name else ''}{ctx.sym.cut} {detach_text(node)}", CUT)
    grad: Text | str
    if node.kind in (CONSTANT, UNTRACKED):
        grad = Text("no gradient", NOTE)
    elif node.accumulated:
        grad = Text(f"{ctx.quantity(node.grad)} (.grad {_accumulation(ctx, node)})", GRAD)
    else:
        grad = Text(ctx.quantity(node.grad), GRAD)
    return [
        str(node.id),
        name,
        Text(node.op, OP),
        node.class_name,
        inputs,
        Text(ctx.quantity(node.value, "?"), VALUE),
        grad,
    ]


def _edges_table(ctx: _Context, shown: set[int], compact: bool) -> Table:
    graph = ctx.graph
    table = _table(ctx, EDGES_TITLE, compact)
    table.add_column("edge")
    table.add_column(f"upstream {ctx.sym.times} local = contribution")
    order = _preorder(graph)  # edges into a node in the order the tree and paths meet them
    for node in graph.nodes:
        if node.id not in shown:
            continue
        edges = [e for e in graph.incoming[node.id] if e.contribution is not None]
        edges.sort(key=lambda e: (order[e.src], e.slot))
        for edge in edges:
            table.add_row(
                f"{ctx.ref(edge.src)} {ctx.sym.arrow} {ctx.ref(edge.dst)}", _edge_text(ctx, edge)
            )
        terms = [e.contribution for e in edges]
        if len(edges) > 1:
            total = ctx.quantity(node.grad)
            if all(isinstance(t, float) for t in terms):
                total = f"{sum_text([t for t in terms if isinstance(t, float)])} = {total}"
            table.add_row(Text(f"sum into {ctx.ref(node.id)}", "bold"), Text(total, GRAD))
        if node.accumulated:
            table.add_row(
                Text(f"{node.label}.grad (accumulates)", "bold"),
                Text(_accumulation(ctx, node), GRAD),
            )
    return _column_settings(table)


def _preorder(graph: CapturedGraph) -> list[int]:
    """Per node, its position in a depth-first walk from the output in slot order."""
    position = [len(graph.nodes)] * len(graph.nodes)
    count = 0
    for root in graph.roots:
        stack = [root]
        while stack:
            node_id = stack.pop()
            if position[node_id] < len(graph.nodes):
                continue
            position[node_id] = count
            count += 1
            stack.extend(e.dst for e in reversed(graph.outgoing[node_id]))
    return position


# ---------------------------------------------------------------------------------------
# paths


def _paths_view(ctx: _Context, max_paths: int) -> list[RenderableType]:
    graph = ctx.graph
    if graph.error:
        return [Text("No paths: backward() did not run through a graph.", NOTE)]
    paths = Paths(graph)
    if not paths.leaves:
        return [Text("No leaves: no tensor here requires grad.", NOTE)]
    parts: list[RenderableType] = [
        Text(
            "Every path from the output to a leaf multiplies the local derivatives on its edges; "
            "the paths add up to the leaf's gradient.",
            NOTE,
        )
    ]
    every_row: list[tuple[Text, Text]] = []  # filled below; one layout for every leaf
    for leaf in paths.leaves[:MAX_LEAVES]:
        parts += _leaf_paths(ctx, paths, leaf, max_paths, every_row)
    if len(paths.leaves) > MAX_LEAVES:
        hidden = len(paths.leaves) - MAX_LEAVES
        parts.append(
            Text(
                f"{ctx.sym.ellipsis} {plural(hidden, 'more leaf', 'more leaves')} not shown.", NOTE
            )
        )
    return parts


def _leaf_paths(
    ctx: _Context, paths: Paths, leaf: int, max_paths: int, every_row: list[tuple[Text, Text]]
) -> list[RenderableType]:
    graph = ctx.graph
    node = graph.nodes[leaf]
    count = paths.count(leaf)
    title = Text.assemble(
        ("\n", ""),
        (node.label, NAME),
        (f": {plural(count, 'path')} from ", ""),
        (graph.output.label, NAME),
        (f", gradient {ctx.quantity(node.grad)}", GRAD),
    )
    rows: list[tuple[Text, Text]] = []
    products: list[float] = []
    factors_known = True  # every local derivative listed is a number or elementwise factors
    for path in paths.list(leaf, max_paths):
        product = paths.product(path)
        if product is not None:
            products.append(product)
        factors_known = factors_known and all(known_local(e.local) for e in path)
        rows.append((_path_text(ctx, path), Text(_product_text(ctx, path, product), GRAD)))
    every_row.extend(rows)
    return [
        title,
        _PathRows(rows, every_row),
        _paths_sum(ctx, paths, node, products, factors_known),
    ]


class _PathRows:
    """Paths beside their products in a rich grid when every path of the view (`every_row`)
    fits on one line beside its product; else each path on its own lines with `= product`
    under it, wrapped between words. Hand-made because rich cannot do it: putting a column
    under the other when the width runs out (a grid would wrap both in narrow columns)."""

    def __init__(self, rows: list[tuple[Text, Text]], every_row: list[tuple[Text, Text]]) -> None:
        self.rows = rows
        self.every_row = every_row

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wide = options.update_width(10_000)
        if Measurement.get(console, wide, _path_grid(self.every_row)).maximum <= options.max_width:
            yield _path_grid(self.rows)
            return
        for path, product in self.rows:
            yield _indented(path)
            yield Padding(Text("= ", GRAD).append_text(product), (0, 0, 0, 4))


def _path_grid(rows: list[tuple[Text, Text]]) -> Table:
    """Path and product side by side, each on one line (used only when they fit)."""
    grid = Table.grid(padding=(0, 1, 0, 2), collapse_padding=False, pad_edge=True)
    grid.add_column("path", no_wrap=True)
    grid.add_column("product", no_wrap=True)
    for path, product in rows:
        grid.add_row(path, product)
    return grid


def _paths_sum(
    ctx: _Context, paths: Paths, node: GraphNode, products: list[float], factors_known: bool
) -> RenderableType:
    sym = ctx.sym
    grad, count, total = node.grad, paths.count(node.id), paths.total(node.id)
    if total is None:
        target = f"{node.label}.grad" if not node.accumulated else "this backward's gradient"
        add = "and the elements add up" + (", then the paths" if count > 1 else "")
        if factors_known:
            words = (
                "The local derivatives on these paths are tensors: element by element their "
                f"factors multiply, {add}, to the gradient PyTorch sends: "
                f"{target} = {ctx.quantity(grad)}."
            )
        else:
            words = (
                "Some local derivatives on these paths are Jacobians (ops that mix elements) "
                "or were not recorded, so the paths are not single numbers; the gradient that "
                f"arrives is {ctx.quantity(grad)}."
            )
        return _indented(Text(words, NOTE))
    mark = sym.check if isinstance(grad, float) and close(total, grad) else sym.cross
    target = f"{node.label}.grad" if not node.accumulated else "this backward's gradient"
    if len(products) == count == 1:
        text = Text(f"one path: {number(total)} = {target} {mark}", GRAD)
    elif len(products) == count:
        text = Text(
            f"sum of the paths: {sum_text(products)} = {number(total)} = {target} {mark}", GRAD
        )
    else:
        text = Text(
            f"showing {len(products):,} of {count:,} paths; all {count:,} together give "
            f"{number(total)} = {target} {mark}",
            GRAD,
        )
    if node.accumulated:
        text.append(f"\n.grad accumulates: {_accumulation(ctx, node)}", GRAD)
    return _indented(text)


def _indented(text: Text) -> Padding:
    """Two columns in, and so are the lines it wraps onto."""
    return Padding(text, (0, 0, 0, 2))


def _product_text(ctx: _Context, path: Sequence[GraphEdge], product: float | None) -> str:
    """`1 × (-1) × 5 = -5`; on a tensor path the factors as they are, element by element
    (`1/20 each (mean) × [...] elementwise × ...`), with no single number to end on."""
    seed = ctx.graph.nodes[path[0].src].grad
    count = len(path) + (seed != 1)
    if product is None:
        if not all(known_local(e.local) for e in path):
            return "(a Jacobian on the way)"
        if count > PATH_LABELS:
            return f"product of {count:,} local derivatives, element by element"
        seeds = [ctx.quantity(seed)] if seed != 1 else []
        texts = [local_text(e.local, ctx.sym.ellipsis) or "?" for e in path]
        return f" {ctx.sym.times} ".join(seeds + texts)
    if count == 1:
        return number(product)
    if count > PATH_LABELS:
        return f"product of {count:,} local derivatives = {number(product)}"
    # A product exists: the seed and every local derivative on the path are numbers.
    factors = ([seed] if seed != 1 else []) + [e.local for e in path if isinstance(e.local, float)]
    return f"{f' {ctx.sym.times} '.join(factor(v) for v in factors)} = {number(product)}"


def _path_text(ctx: _Context, path: Sequence[GraphEdge]) -> Text:
    nodes = ctx.graph.nodes
    ids = [path[0].src] + [e.dst for e in path]
    if len(ids) <= PATH_LABELS:
        labels = [nodes[i].label for i in ids]
    else:  # only the ends of a long path; labels of the middle are never computed
        hidden = f"{ctx.sym.ellipsis}{len(ids) - 6:,} more{ctx.sym.ellipsis}"
        labels = [nodes[i].label for i in ids[:3]] + [hidden] + [nodes[i].label for i in ids[-3:]]
    return Text(f" {ctx.sym.arrow} ".join(labels))


# ---------------------------------------------------------------------------------------
# Path arithmetic (also used by the tests)


class Paths:
    """Output-to-leaf paths of a graph, through edges that carry gradient.

    Node ids are topological (every edge goes to a larger id), so one pass in id order gives,
    for every node, the number of paths and the sum over all paths of the product of local
    derivatives: linear in the graph, however many paths there are. Listing is capped.
    """

    def __init__(self, graph: CapturedGraph) -> None:
        self.graph = graph
        nodes = graph.nodes
        self.down: list[list[GraphEdge]] = [
            [e for e in graph.outgoing[n.id] if nodes[e.dst].kind not in (CONSTANT, UNTRACKED)]
            for n in nodes
        ]
        self._counts = [0] * len(nodes)
        self._totals = [0.0] * len(nodes)
        self._exact = [True] * len(nodes)
        self._accumulate()
        self.leaves = self._leaves_in_order()

    def _accumulate(self) -> None:
        counts, totals, exact = self._counts, self._totals, self._exact
        for root in self.graph.roots:
            seed = self.graph.nodes[root].grad
            counts[root] = 1
            totals[root] = seed if isinstance(seed, float) else 0.0
            exact[root] = isinstance(seed, float)
        for node_id, edges in enumerate(self.down):
            for edge in edges:
                counts[edge.dst] += counts[node_id]
                if exact[node_id] and isinstance(edge.local, float):
                    totals[edge.dst] += totals[node_id] * edge.local
                else:
                    exact[edge.dst] = False

    def _leaves_in_order(self) -> list[int]:
        """Leaves in the order a depth-first walk from the output meets them (x, w1, b, w2)."""
        seen: set[int] = set()
        leaves: list[int] = []
        for root in self.graph.roots:
            stack = [root]
            while stack:
                node_id = stack.pop()
                if node_id in seen:
                    continue
                seen.add(node_id)
                if self.graph.nodes[node_id].kind == LEAF:
                    leaves.append(node_id)
                stack.extend(e.dst for e in reversed(self.down[node_id]))
        return leaves

    def count(self, node_id: int) -> int:
        return self._counts[node_id]

    def total(self, node_id: int) -> float | None:
        """Sum over all paths of seed x product of local derivatives; None when some local
        derivative on the way is not a number (a tensor, or not recorded)."""
        return self._totals[node_id] if self._exact[node_id] else None

    def product(self, path: Sequence[GraphEdge]) -> float | None:
        seed = self.graph.nodes[path[0].src].grad
        if not isinstance(seed, float):
            return None
        product = seed
        for edge in path:
            if not isinstance(edge.local, float):
                return None
            product *= edge.local
        return product

    def list(self, leaf: int, limit: int) -> list[list[GraphEdge]]:
        """Up to `limit` output-to-leaf paths, in slot order (Exercise 1: 27, 12, -5).

        Only nodes that can reach the leaf are entered, so every step extends a real path:
        the cost is the length of the paths listed, never the number of paths in the graph.
        """
        reach = self._can_reach(leaf)
        found: list[list[GraphEdge]] = []
        for root in self.graph.roots:
            if root not in reach:
                continue
            path: list[GraphEdge] = []
            stack = [iter([e for e in self.down[root] if e.dst in reach])]
            while stack and len(found) < limit:
                edge = next(stack[-1], None)
                if edge is None:
                    stack.pop()
                    if path:
                        path.pop()
                elif edge.dst == leaf:
                    found.append(path + [edge])
                else:
                    path.append(edge)
                    stack.append(iter([e for e in self.down[edge.dst] if e.dst in reach]))
        return found

    def _can_reach(self, target: int) -> set[int]:
        reach = {target}
        queue = deque([target])
        while queue:
            for edge in self.graph.incoming[queue.popleft()]:
                if edge.src not in reach:
                    reach.add(edge.src)
                    queue.append(edge.src)
        return reach
