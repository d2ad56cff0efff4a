"""Graph capture and rendering at 1,000 and 10,000 nodes.

    python benchmarks/graph_bench.py [--runs N]

Each run builds a small recurrent computation (`h = tanh(h * w + b)`, three autograd nodes
per step, with the leaves w and b reused by every step) inside a GraphRecorder, runs
backward, then renders each view (tree, table, paths) to a throw-away console, as the
`graph` command does. Capture includes the forward pass under the recorder. Times are
`time.perf_counter` medians over N runs. Target: capture plus the slowest view of 10,000
nodes under 1 second. The exit status is 0 unless something crashes.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402

from autograd_tutor.engine.graph import CapturedGraph, GraphRecorder  # noqa: E402
from autograd_tutor.views.graph_view import VIEWS, render  # noqa: E402

TARGET_SECONDS = 1.0
SIZES = (1_000, 10_000)


def capture_chain(nodes: int) -> CapturedGraph:
    """A graph with about `nodes` nodes: 3 op nodes per step plus the two leaves."""
    steps = max(1, (nodes - 3) // 3)
    with GraphRecorder() as rec:
        w = torch.tensor(0.5, requires_grad=True)
        b = torch.tensor(0.1, requires_grad=True)
        h = torch.tensor(1.0)
        for _ in range(steps):
            h = torch.tanh(h * w + b)
        h.backward()
    return rec.graphs[0].named({"w": w, "b": b, "h": h})


def render_view(graph: CapturedGraph, view: str) -> None:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(render(graph, view, width=100))


def measure(nodes: int) -> tuple[int, float, dict[str, float]]:
    start = time.perf_counter()
    graph = capture_chain(nodes)
    captured = time.perf_counter() - start
    views = {}
    for view in VIEWS:
        start = time.perf_counter()
        render_view(graph, view)
        views[view] = time.perf_counter() - start
    return len(graph.nodes), captured, views


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size")
    options = parser.parse_args(argv)
    measure(100)  # warm-up: imports, first torch calls
    print(
        f"{'nodes':>8} {'capture s':>10}"
        + "".join(f" {v + ' s':>8}" for v in VIEWS)
        + f" {'worst s':>8}  target"
    )
    for size in SIZES:
        samples = [measure(size) for _ in range(max(1, options.runs))]
        capture_s = statistics.median(s[1] for s in samples)
        view_s = {v: statistics.median(s[2][v] for s in samples) for v in VIEWS}
        worst = statistics.median(s[1] + max(s[2].values()) for s in samples)
        verdict = ""
        if size == SIZES[-1]:
            verdict = f"< {TARGET_SECONDS:g} s: {'PASS' if worst < TARGET_SECONDS else 'FAIL'}"
        print(
            f"{samples[0][0]:>8,} {capture_s:>10.3f}"
            + "".join(f" {view_s[v]:>8.3f}" for v in VIEWS)
            + f" {worst:>8.3f}  {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
