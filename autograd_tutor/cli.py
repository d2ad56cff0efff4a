"""Typer commands: parse, wire, and map outcomes to exit codes. The work happens elsewhere.

Exit codes: 0 done, 1 aborted or failed, 2 usage error, 130 interrupted.
Heavy modules (torch, matplotlib) are imported only inside the commands that need them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from autograd_tutor import exercises
from autograd_tutor.answers import AnswerError, parse_prediction
from autograd_tutor.env import Environment
from autograd_tutor.model import Exercise
from autograd_tutor.store import Store, home_dir, statuses
from autograd_tutor.ui import UI

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
GRAPH_VIEWS = ("tree", "table", "paths", "none")

app = typer.Typer(
    name="autograd-tutor",
    help="Learn PyTorch's autograd by predicting gradients before PyTorch reveals them.",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# Wiring -------------------------------------------------------------------------------


def open_store(ui: UI) -> Store:
    return Store(home_dir(), warn=ui.warn)


def exercise_numbers() -> str:
    return f"1 to {len(exercises.EXERCISES)}"


def parse_number(text: str) -> Exercise:
    """The exercise named by N, or a usage error that says which numbers exist."""
    try:
        return exercises.get(int(text.strip()))
    except (ValueError, KeyError):
        raise typer.BadParameter(
            f"{text!r} is not an exercise; choose a number from {exercise_numbers()} "
            "(see 'autograd-tutor list')",
            param_hint="N",
        ) from None


def parse_answers(exercise: Exercise, given: list[str]) -> dict[str, str]:
    """--answer ID=VALUE pairs, checked against the exercise's prediction IDs."""
    predictions = {p.id: p for p in exercise.predictions}
    valid = ", ".join(predictions)
    answers: dict[str, str] = {}
    for pair in given:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not ID=VALUE (e.g. x.grad=34)",
                                     param_hint="--answer")
        if key not in predictions:
            raise typer.BadParameter(
                f"exercise {exercise.number} has no prediction {key!r}; valid IDs: {valid}",
                param_hint="--answer",
            )
        if key in answers:
            raise typer.BadParameter(f"{key!r} is given twice", param_hint="--answer")
        try:
            parse_prediction(value, predictions[key].choices)
        except AnswerError as problem:
            raise typer.BadParameter(f"{key}={value!r}: {problem}",
                                     param_hint="--answer") from None
        answers[key] = value
    return answers


@contextmanager
def friendly_exits(ui: UI, on_stop: Callable[[], None] | None = None) -> Iterator[None]:
    """Ctrl-C and end of input end the run with a message and the right status, no traceback."""
    try:
        yield
    except KeyboardInterrupt:
        if on_stop:
            on_stop()
        ui.err.print()
        ui.error("interrupted; your answers so far are saved.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except EOFError:
        if on_stop:
            on_stop()
        ui.error("input ended before every prediction was made; your answers so far are saved.")
        raise typer.Exit(EXIT_FAILED) from None


def next_exercise(store: Store) -> Exercise | None:
    data = store.load()
    numbers = [exercise.number for exercise in exercises.EXERCISES]
    status = statuses(data, numbers)
    for exercise in exercises.EXERCISES:
        if status[exercise.number].status != "done":
            return exercise
    return None


def next_command(store: Store) -> str:
    upcoming = next_exercise(store)
    if upcoming is None:
        return "all exercises done. Practise more with 'autograd-tutor exercise N --reveal'."
    return f"autograd-tutor exercise {upcoming.number}"


# Commands -----------------------------------------------------------------------------


@app.callback(invoke_without_command=True)
def home(ctx: typer.Context) -> None:
    """Without a command: a welcome, the exercise list, and what to run next."""
    if ctx.invoked_subcommand is not None:
        return
    ui = UI(Environment.from_system())
    store = open_store(ui)
    ui.markdown(
        "**Welcome to autograd-tutor.** Each exercise shows you PyTorch code and asks you to "
        "*predict* what `.grad` will be before PyTorch runs it. Wrong predictions are the "
        "point: they show you where your mental model of autograd breaks."
    )
    show_table(ui, store)
    upcoming = next_exercise(store)
    if upcoming is None:
        ui.markdown(exercises.TAKEAWAYS)
        ui.text("All exercises are done. Run any again with: autograd-tutor exercise N", "bold")
    else:
        ui.text(f"Next: autograd-tutor exercise {upcoming.number}", "bold")
    ui.text("Help: autograd-tutor --help", "dim")


def show_table(ui: UI, store: Store) -> None:
    data = store.load()
    numbers = [exercise.number for exercise in exercises.EXERCISES]
    ui.say(ui.exercise_table(exercises.EXERCISES, statuses(data, numbers)))


@app.command("list")
def list_command() -> None:
    """List the exercises with your status and score."""
    ui = UI(Environment.from_system())
    show_table(ui, open_store(ui))


NumberArg = Annotated[str, typer.Argument(metavar="N", help="Exercise number, 1 to 5.",
                                          show_default=False)]
RevealOpt = Annotated[bool, typer.Option("--reveal", help="Ask nothing; show every answer "
                                         "(for instructors and demos).")]
AnswerOpt = Annotated[list[str] | None, typer.Option(
    "--answer", "-a", metavar="ID=VALUE",
    help="Give a prediction without a prompt, e.g. x.grad=34 (repeatable). "
         "Predictions not given are asked for.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object with the "
                                       "results on stdout; everything else goes to stderr.")]
PlotsOpt = Annotated[Path | None, typer.Option("--plots", metavar="DIR", help="Where figures "
                                               "are saved (default: a plots folder in the "
                                               "progress directory).")]
GraphOpt = Annotated[str, typer.Option("--graph", metavar="VIEW", help="Autograd graph "
                                       "view after each reveal: tree, table, paths or none.")]


@app.command("exercise")
def exercise_command(
    number: NumberArg,
    reveal: RevealOpt = False,
    answer: AnswerOpt = None,
    as_json: JsonOpt = False,
    plots: PlotsOpt = None,
    graph: GraphOpt = "tree",
) -> None:
    """Work through exercise N: read, predict, then see what PyTorch computes."""
    chosen = parse_number(number)
    answers = parse_answers(chosen, answer or [])
    if graph not in GRAPH_VIEWS:
        raise typer.BadParameter(f"{graph!r} is not a view; choose one of "
                                 + ", ".join(GRAPH_VIEWS), param_hint="--graph")
    run_exercise(chosen, reveal=reveal, answers=answers, as_json=as_json, plots=plots,
                 graph=graph)


@app.command("next")
def next_command_(
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the first exercise you have not finished."""
    ui = UI(Environment.from_system(), as_json=as_json)
    upcoming = next_exercise(open_store(ui))
    if upcoming is None:
        ui.markdown(exercises.TAKEAWAYS)
        ui.text("All exercises are done. Run any again with: autograd-tutor exercise N", "bold")
        if as_json:
            print(json.dumps({"exercise": None, "done": True}))
        return
    run_exercise(upcoming, reveal=reveal, answers={}, as_json=as_json, plots=None, graph="tree")


def run_exercise(
    exercise: Exercise, *, reveal: bool, answers: dict[str, str], as_json: bool,
    plots: Path | None, graph: str,
) -> None:
    from autograd_tutor.session import Options, Quit, Session

    env = Environment.from_system()
    ui = UI(env, as_json=as_json)
    store = open_store(ui)
    plots_dir = plots if plots is not None else home_dir() / "plots"
    options = Options(reveal=reveal, answers=answers, plots_dir=plots_dir, graph_view=graph)
    session = Session(exercise, ui, store, options)

    def emit_json() -> None:
        if as_json:
            print(json.dumps(session.to_json()), file=env.stdout, flush=True)

    with friendly_exits(ui, on_stop=emit_json):
        try:
            session.run()
        except Quit:
            emit_json()
            ui.text(f"Stopped. Your answers so far are saved; continue with: "
                    f"autograd-tutor exercise {exercise.number}", "bold")
            raise typer.Exit(EXIT_FAILED) from None
    correct, asked = session.score()
    ui.summary(exercise, correct, asked, next_command(store))
    emit_json()


# Entry point --------------------------------------------------------------------------


def main() -> Any:
    """Console-script entry: no traceback ever reaches the learner unless they ask for it."""
    try:
        return app()
    except KeyboardInterrupt:
        print("\nerror: interrupted.", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # a bug in the tutor, not the learner's mistake
        if os.environ.get("AUTOGRAD_TUTOR_DEBUG"):
            raise
        print(f"error: internal error ({type(error).__name__}: {error}). "
              "Set AUTOGRAD_TUTOR_DEBUG=1 to see the traceback, and please report it.",
              file=sys.stderr)
        sys.exit(EXIT_FAILED)
