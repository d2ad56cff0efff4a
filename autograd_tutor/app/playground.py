"""The `graph` command's problem: an expression and a value per variable, read from the
command line, and what PyTorch computes for it (value, gradients, the graph it builds).

The expression is parsed by `engine.expressions.parse_expression` (never evaluated by
Python) and built into float64 torch operations inside a GraphRecorder; torch loads only
in `compute`. Asking and showing are views.playground's.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from autograd_tutor.engine.answers import AnswerError, parse_value
from autograd_tutor.engine.expressions import Expression, parse_expression
from autograd_tutor.engine.graph import CapturedGraph

OUTPUT_NAMES = ("f", "output", "result")  # the output's name: the first no variable has


class UsageError(ValueError):
    """A problem with the command line: one line for the learner, exit status 2."""


@dataclass(frozen=True)
class Problem:
    expression: Expression
    values: dict[str, float]  # in the order the expression uses the variables

    @property
    def output_name(self) -> str:
        """A name for the expression's value that no variable has (`f + output` has the
        variables f and output, so its value is `result`)."""
        for name in OUTPUT_NAMES:
            if name not in self.values:
                return name
        count = 1
        while f"f{count}" in self.values:
            count += 1
        return f"f{count}"


@dataclass(frozen=True)
class Result:
    value: float
    gradients: dict[str, float | None]
    graph: CapturedGraph | None


def parse_problem(expression: str, at: Sequence[str]) -> Problem:
    """The expression and one value per variable, or UsageError / ExprError."""
    parsed = parse_expression(expression)
    given = parse_at(at)
    missing = [name for name in parsed.variables if name not in given]
    if missing:
        example = " ".join(f"--at {name}=1" for name in missing)
        raise UsageError(
            f"no value for {', '.join(missing)}: give each variable a value, e.g. {example}"
        )
    unused = [name for name in given if name not in parsed.variables]
    if unused:
        raise UsageError(f"--at {', '.join(unused)}: not in the expression {expression!r}")
    return Problem(parsed, {name: given[name] for name in parsed.variables})


def parse_at(at: Sequence[str]) -> dict[str, float]:
    """`x=3`, `w=-1/2`: names and numbers (the answers' number syntax)."""
    values: dict[str, float] = {}
    for item in at:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--at {item!r}: write NAME=NUMBER, e.g. --at x=3")
        if not (name.isascii() and name.isidentifier()) or name.startswith("_"):
            raise UsageError(f"--at {item!r}: {name!r} is not a variable name")
        if name in values:
            raise UsageError(f"--at {name} is given twice")
        too_large = False
        try:
            value = parse_value(text)
        except AnswerError as error:  # its words are for predictions ("or None"): not for --at
            # A number beyond the predictions' bound is still a float64 (--at x=1e308).
            value = _finite_float(text)
            too_large = value is None and "too large" in str(error)
        if too_large:
            raise UsageError(f"--at {item!r}: {name} is too large for a float64 (the largest "
                             f"is about {sys.float_info.max:.1e})")
        if not isinstance(value, float):
            raise UsageError(
                f"--at {item!r}: {name} needs a finite number, like {name}=3, {name}=-0.5 "
                f"or {name}=7/4"
            )
        values[name] = value
    return values


def _finite_float(text: str) -> float | None:
    """A plain decimal number, however large, when float64 holds it; else None."""
    if not re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def compute(problem: Problem) -> Result:
    """Forward and backward in float64 under a GraphRecorder (so forward values are known)."""
    import torch

    from autograd_tutor.engine.graph import GraphRecorder

    tensors = {
        name: torch.tensor(value, dtype=torch.float64, requires_grad=True)
        for name, value in problem.values.items()
    }
    with GraphRecorder() as recorder:
        output = problem.expression.build(tensors)
        if output.requires_grad:
            output.backward()
    value = float(output.item())
    if not recorder.graphs:
        return Result(value, {}, None)
    # Variables first: for the expression `x` the output is x itself and keeps its name.
    names: dict[str, object] = {**tensors, problem.output_name: output}
    graph = recorder.graphs[-1].named(names)
    gradients = {
        name: float(t.grad.item()) if t.grad is not None else None for name, t in tensors.items()
    }
    return Result(value, gradients, graph)
