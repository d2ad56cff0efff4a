"""Answers checked against each other: the chain rule along the graph PyTorch built.

When a step asks for several gradients on one graph, the learner's own answers must agree
with each other wherever one edge joins two of them: if b enters only through h_act, then
b.grad = h_act.grad × ∂h_act/∂b, whatever the true numbers are. A learner whose h_act.grad
is −1 but whose b.grad is 1 has a broken chain, and is told so, even when each answer
alone matched a different misconception. Answers that are wrong but consistent pass.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from autograd_tutor.engine.answers import format_value, is_close
from autograd_tutor.engine.expressions import ExprError, parse_pack_expression
from autograd_tutor.engine.graph import CapturedGraph
from autograd_tutor.engine.model import Attempt, Prediction, Tolerance

# Learners type rounded numbers: a product within 0.1% agrees.
AGREES = Tolerance(relative=1e-3, absolute=1e-6)


@dataclass(frozen=True)
class Inconsistency:
    child: str  # prediction IDs
    parent: str
    child_name: str  # tensor names
    parent_name: str
    factor: float
    child_value: float
    parent_value: float

    def sentence(self) -> str:
        expected = self.parent_value * self.factor
        return (f"Your {self.child_name}.grad ({format_value(self.child_value)}) does not "
                f"follow from your {self.parent_name}.grad ({format_value(self.parent_value)}): "
                f"the chain rule gives {self.child_name}.grad = {self.parent_name}.grad × "
                f"∂{self.parent_name}/∂{self.child_name} = {format_value(self.parent_value)} × "
                f"{format_value(self.factor)} = {format_value(expected)}.")


def grad_of(prediction: Prediction) -> str | None:
    """The tensor whose .grad a prediction asks for (`actual = "b.grad"`), else None."""
    try:
        tree = parse_pack_expression(prediction.actual).tree
    except ExprError:
        return None
    if isinstance(tree, ast.Attribute) and isinstance(tree.value, ast.Name):
        return tree.value.id
    return None


def check(graph: CapturedGraph, attempts: list[tuple[Prediction, Attempt]]
          ) -> list[Inconsistency]:
    """Every edge chain between two predicted gradients that the answers break."""
    answered: dict[str, tuple[Prediction, Attempt]] = {}
    for prediction, attempt in attempts:
        name = grad_of(prediction)
        if name and not attempt.skipped and isinstance(attempt.prediction, float):
            answered[name] = (prediction, attempt)
    by_name = {node.name: node.id for node in graph.nodes if node.name in answered}
    found = []
    for name, node_id in by_name.items():
        link = _single_path_up(graph, node_id, set(by_name.values()))
        if link is None:
            continue
        parent_id, factor = link
        parent = graph.nodes[parent_id].name
        assert parent is not None
        child_value = answered[name][1].prediction
        parent_value = answered[parent][1].prediction
        assert isinstance(child_value, float) and isinstance(parent_value, float)
        if not is_close(child_value, parent_value * factor, AGREES):
            found.append(Inconsistency(answered[name][0].id, answered[parent][0].id, name,
                                       parent, factor, child_value, parent_value))
    return found


def _single_path_up(graph: CapturedGraph, node: int, targets: set[int]
                    ) -> tuple[int, float] | None:
    """Walk from `node` towards the output while each node has exactly one incoming edge
    with a scalar local factor; the first predicted node met, and the product of factors."""
    factor = 1.0
    current = node
    for _ in range(len(graph.nodes)):
        incoming = graph.incoming[current]
        if len(incoming) != 1 or not isinstance(incoming[0].local, float):
            return None
        factor *= incoming[0].local
        current = incoming[0].src
        if current in targets:
            return current, factor
    return None
