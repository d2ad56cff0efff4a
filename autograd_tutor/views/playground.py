"""The `graph` command: any expression, its value, its gradients and PyTorch's real graph.

The CLI calls exactly:

    from autograd_tutor.views.playground import run_graph
    status = run_graph(
        expression, at or [], view=view, predict=predict, as_json=as_json, depth=depth,
        ui=UI(Environment.from_system(), as_json=as_json),
    )
    raise typer.Exit(status)   # 0 done, 1 stopped (q or end of input), 2 usage error

`autograd-tutor graph EXPR --at x=3 [--at w=2 ...] [--view tree|table|paths|none]
[--predict] [--json] [--depth N]`. The problem is read and computed by app.playground
(`parse_problem`, `compute`: PyTorch runs there); this module asks and shows.
With --predict every gradient is asked first, with the exercises' prompt rules: `?` hint,
`skip`, `q`. With --json, stdout carries exactly one JSON object and all human text goes to
stderr (only prompts and the reveal, when predicting). A prediction run stopped early (q, end
of input) still prints its object, with `"completed": false` and the predictions made so far,
and exits 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from autograd_tutor.app.playground import Problem, Result, UsageError, compute, parse_problem
from autograd_tutor.engine import runner
from autograd_tutor.engine.answers import AnswerError, is_close, parse_value
from autograd_tutor.engine.expressions import ExprError
from autograd_tutor.engine.model import Prediction, Tolerance, Value
from autograd_tutor.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from autograd_tutor.views import prompt
from autograd_tutor.views.graph_view import VIEWS, Paths, needs_ascii, number, plural, render
from autograd_tutor.views.ui import UI

PLAYGROUND_VIEWS = (*VIEWS, "none")
# Gradients here involve sin, exp, ...: four significant digits typed are enough.
TOLERANCE = Tolerance(relative=1e-4, absolute=1e-9)
INPUT_HELP = (
    "Type a number (like 2.5, -0.75, 7/4 or 2*3 + 1).  ? = hint   skip = leave it unscored   "
    "q = quit"
)


Stopped = prompt.Quit  # the learner typed q at a prompt


@dataclass
class Guess:
    name: str
    value: float | None = None
    typed: str = ""
    skipped: bool = False
    hints_used: int = 0
    correct: bool | None = field(default=None)


def run_graph(
    expression: str,
    at: Sequence[str],
    *,
    view: str = "tree",
    predict: bool = False,
    as_json: bool = False,
    depth: int | None = None,
    ui: UI,
) -> int:
    """Run the `graph` command; returns the exit status. `ui` carries the consoles, stdin
    and tty flags (its `out` is stderr when as_json)."""
    try:
        problem = parse_problem(expression, at)
        check_view(view, depth)
    except (UsageError, ExprError) as problem_error:
        ui.error(str(problem_error))  # with --json, the CLI prints it as {"error": ...}
        return EXIT_USAGE
    result = compute(problem)
    guesses: list[Guess] = []
    if predict and result.gradients:
        try:
            ask_all(ui, problem, result, guesses)
        except (EOFError, Stopped) as stop:
            if isinstance(stop, EOFError):
                ui.error("input ended before every prediction was made.")
            else:
                ui.text("Stopped.", "bold")
            if as_json:  # what was done so far; nothing is revealed that was not asked
                print(json.dumps(stopped_json(problem, guesses)), file=ui.env.stdout, flush=True)
            return EXIT_FAILED
    if as_json:
        if predict:
            show_results(ui, problem, result, guesses)
        print(
            json.dumps(to_json(problem, result, guesses, predict)), file=ui.env.stdout, flush=True
        )
        return EXIT_OK
    show_results(ui, problem, result, guesses)
    if view != "none" and result.graph is not None:
        width = ui.out.width
        ascii_only = ui.env.dumb or needs_ascii(ui.out)
        ui.out.print(render(result.graph, view, width=width, depth=depth, ascii=ascii_only))
    return EXIT_OK


# Parsing the command line -----------------------------------------------------------


def check_view(view: str, depth: int | None) -> None:
    if view not in PLAYGROUND_VIEWS:
        raise UsageError(f"{view!r} is not a view; choose one of {', '.join(PLAYGROUND_VIEWS)}")
    if depth is not None and depth < 1:
        raise UsageError("--depth must be 1 or more")


# Asking -----------------------------------------------------------------------------


def ask_all(ui: UI, problem: Problem, result: Result, guesses: list[Guess]) -> None:
    """Asks for every gradient, appending each finished guess to `guesses` as it is made, so
    a stop (q, end of input) leaves the ones made so far there."""
    ui.text(INPUT_HELP, "dim")
    for name in problem.values:
        guess = ask_one(ui, problem, result, name)
        actual = result.gradients.get(name)
        if not guess.skipped:
            guess.correct = is_close(guess.value, actual, TOLERANCE)
        guesses.append(guess)


def at_text(problem: Problem) -> str:
    return ", ".join(f"{name}={number(value)}" for name, value in problem.values.items())


def prompt_text(problem: Problem, name: str) -> str:
    return f"Predict d({problem.expression.text})/d{name} at {at_text(problem)}: "


def ask_one(ui: UI, problem: Problem, result: Result, name: str) -> Guess:
    """One gradient through the exercises' prompt loop (same words: ?, skip, q)."""
    found = tuple(hints(problem, result, name))
    prediction = Prediction(id=name, label=name, actual=name, by_hand=name, hints=found)
    answer = prompt.ask(ui, runner.Guess(prediction), prompt_text(problem, name),
                        _gradient, found)
    guess = Guess(name)
    guess.value = answer.value if isinstance(answer.value, float) else None
    guess.typed, guess.skipped, guess.hints_used = answer.typed, answer.skipped, answer.hints_used
    return guess


def _gradient(typed: str) -> Value:
    value = parse_value(typed)
    if not isinstance(value, float):
        raise AnswerError("a gradient here is always a number; type one")
    return value


def hints(problem: Problem, result: Result, name: str) -> list[str]:
    others = [other for other in problem.values if other != name]
    first = f"Differentiate {problem.expression.text} with respect to {name}"
    if others:
        first += f", treating {', '.join(others)} as constant{'s' if len(others) > 1 else ''}"
    first += f", then put in {at_text(problem)}."
    found = [first]
    graph = result.graph
    leaf = graph.by_name(name) if graph is not None else None
    if graph is not None and leaf is not None:
        count = Paths(graph).count(leaf.id)
        found.append(
            f"PyTorch's graph has {plural(count, 'path')} from the output to {name}: multiply "
            "the local derivatives along each path, then add the paths."
        )
    return found


# Showing ----------------------------------------------------------------------------


def show_results(ui: UI, problem: Problem, result: Result, guesses: Sequence[Guess]) -> None:
    name = problem.output_name
    ui.out.print(
        Text.assemble(
            (f"{name} = ", "bold"),
            (problem.expression.text, "bold"),
            (f"   at {at_text(problem)}" if problem.values else "", ""),
        )
    )
    ui.out.print(Text.assemble((f"value  {name} = ", ""), (number(result.value), "green")))
    if not result.gradients:
        ui.text("No variables, so there is nothing to differentiate.", "dim")
        return
    by_name = {guess.name: guess for guess in guesses}
    for variable, gradient in result.gradients.items():
        line = Text.assemble(
            (f"d{name}/d{variable} = ", ""),
            ("None" if gradient is None else number(gradient), "yellow"),
            (f"   ({variable}.grad)", "dim"),
        )
        guess = by_name.get(variable)
        if guess is not None:
            line.append_text(_judgement(guess))
        ui.out.print(line)
    ui.out.print()


def _judgement(guess: Guess) -> Text:
    if guess.skipped:
        return Text("   you skipped", "yellow")
    typed = guess.typed
    if guess.correct:
        return Text(f"   you predicted {typed}: right", "bold green")
    return Text(f"   you predicted {typed}: wrong", "bold red")


def to_json(
    problem: Problem, result: Result, guesses: Sequence[Guess], predict: bool
) -> dict[str, Any]:
    graph = result.graph.to_json() if result.graph is not None else {"nodes": [], "edges": []}
    data: dict[str, Any] = {
        "expression": problem.expression.text,
        "at": problem.values,
        "completed": True,
        "value": _finite(result.value),
        "gradients": {name: _finite(g) for name, g in result.gradients.items()},
        "nodes": graph["nodes"],
        "edges": graph["edges"],
    }
    if predict:
        data["predictions"] = _predictions_json(guesses)
    return data


def stopped_json(problem: Problem, guesses: Sequence[Guess]) -> dict[str, Any]:
    """--predict --json stopped early (q, end of input): the predictions made so far, and no
    value, gradient or graph, which the learner has not been shown."""
    return {
        "expression": problem.expression.text,
        "at": problem.values,
        "completed": False,
        "predictions": _predictions_json(guesses),
    }


def _predictions_json(guesses: Sequence[Guess]) -> dict[str, dict[str, Any]]:
    return {
        guess.name: {
            "prediction": guess.value,
            "typed": guess.typed,
            "skipped": guess.skipped,
            "correct": guess.correct,
            "hints_used": guess.hints_used,
        }
        for guess in guesses
    }


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or infinity: null stands for "not a number" (e.g. log(-1)).
    return value if value is not None and math.isfinite(value) else None
