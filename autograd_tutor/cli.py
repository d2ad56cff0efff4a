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
CODING_EXERCISE = 4
SAVED = "your answers so far are saved"

app = typer.Typer(
    name="autograd-tutor",
    help="Learn PyTorch's autograd by predicting gradients before PyTorch reveals them.",
    epilog="Start with: autograd-tutor exercise 1   (or just: autograd-tutor)",
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
def friendly_exits(
    ui: UI, on_stop: Callable[[], None] | None = None, kept: str = SAVED
) -> Iterator[None]:
    """Ctrl-C and end of input end the run with a message and the right status, no traceback.
    `kept` says what happened to the learner's work."""
    try:
        yield
    except KeyboardInterrupt:
        if on_stop:
            on_stop()
        ui.err.print()
        ui.error(f"interrupted; {kept}.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except EOFError:
        if on_stop:
            on_stop()
        ui.error(f"input ended before an answer was given; {kept}.")
        raise typer.Exit(EXIT_FAILED) from None


def next_exercise(data: dict[str, Any]) -> Exercise | None:
    """The first exercise not done, from the loaded progress data."""
    numbers = [exercise.number for exercise in exercises.EXERCISES]
    status = statuses(data, numbers)
    for exercise in exercises.EXERCISES:
        if status[exercise.number].status != "done":
            return exercise
    return None


def next_command(store: Store) -> str:
    upcoming = next_exercise(store.load())
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
    data = open_store(ui).load()
    ui.markdown(
        "**Welcome to autograd-tutor.** Each exercise shows you PyTorch code and asks you to "
        "*predict* what `.grad` will be before PyTorch runs it. Wrong predictions are the "
        "point: they show you where your mental model of autograd breaks."
    )
    show_table(ui, data)
    upcoming = next_exercise(data)
    if upcoming is None:
        show_all_done(ui)
    else:
        ui.text(f"Next: autograd-tutor exercise {upcoming.number}", "bold")
    ui.text("Help: autograd-tutor --help", "dim")


def show_all_done(ui: UI) -> None:
    ui.markdown(exercises.TAKEAWAYS)
    ui.text("All exercises are done. Run any again with: autograd-tutor exercise N", "bold")


def show_table(ui: UI, data: dict[str, Any]) -> None:
    numbers = [exercise.number for exercise in exercises.EXERCISES]
    ui.say(ui.exercise_table(exercises.EXERCISES, statuses(data, numbers)))
    from datetime import UTC, datetime

    from autograd_tutor import review

    due = review.due(data["attempts"], datetime.now(UTC))
    if due:
        ui.text(f"{len(due)} review{'s' if len(due) > 1 else ''} due ({', '.join(due)}): "
                "autograd-tutor review", "yellow")


@app.command("list", short_help="The exercises with your status and score.")
def list_command() -> None:
    """List the exercises with your status and score."""
    ui = UI(Environment.from_system())
    show_table(ui, open_store(ui).load())


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


FastOpt = Annotated[bool, typer.Option("--fast", help="Skip the live training animation "
                                       "(Exercise 4); the results are the same.")]
ShowOpt = Annotated[bool, typer.Option("--show", help="Also open the figures in windows "
                                       "when a display is available.")]
CodeOpt = Annotated[bool, typer.Option("--code", help="Exercise 4: write the training-loop "
                                       "scaffold to FILE for you to finish, then run "
                                       "'autograd-tutor check 4 FILE'.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="With --code: overwrite FILE if it "
                                        "exists.")]
FileArg = Annotated[Path | None, typer.Argument(metavar="FILE", show_default=False,
                                                help="With --code: where to write the "
                                                "scaffold (default: train_loop.py).")]


@app.command("exercise", short_help="Work through exercise N (1 to 5): predict, then see.")
def exercise_command(
    number: NumberArg,
    file: FileArg = None,
    reveal: RevealOpt = False,
    answer: AnswerOpt = None,
    as_json: JsonOpt = False,
    plots: PlotsOpt = None,
    graph: GraphOpt = "tree",
    fast: FastOpt = False,
    show: ShowOpt = False,
    code: CodeOpt = False,
    force: ForceOpt = False,
) -> None:
    """Work through exercise N: read, predict, then see what PyTorch computes."""
    chosen = parse_number(number)
    if code:
        write_scaffold(chosen, file, force)
        return
    if file is not None:
        raise typer.BadParameter("a FILE is only used with --code", param_hint="FILE")
    answers = parse_answers(chosen, answer or [])
    if graph not in GRAPH_VIEWS:
        raise typer.BadParameter(f"{graph!r} is not a view; choose one of "
                                 + ", ".join(GRAPH_VIEWS), param_hint="--graph")
    run_exercise(chosen, reveal=reveal, answers=answers, as_json=as_json, plots=plots,
                 graph=graph, fast=fast, show=show)


def require_coding_exercise(exercise: Exercise) -> None:
    if exercise.number != CODING_EXERCISE:
        raise typer.BadParameter(f"only exercise {CODING_EXERCISE} has a coding mode",
                                 param_hint="N")


def write_scaffold(exercise: Exercise, file: Path | None, force: bool) -> None:
    from autograd_tutor import checker

    require_coding_exercise(exercise)
    ui = UI(Environment.from_system())
    path = file if file is not None else checker.default_scaffold_path()
    try:
        written = checker.write_scaffold(path, force=force)
    except checker.ScaffoldExistsError:
        ui.error(f"{path} already exists; choose another FILE or add --force to overwrite it.")
        raise typer.Exit(EXIT_FAILED) from None
    except OSError as error:
        ui.error(f"can't write {path}: {error.strerror or error}")
        raise typer.Exit(EXIT_FAILED) from None
    ui.text(f"Wrote the training-loop scaffold to {written}.", "bold")
    ui.text("Fill in the five TODOs, run it with: python " + str(written))
    ui.text(f"then check it with: autograd-tutor check {CODING_EXERCISE} {written}")


TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1.0, max=600.0, metavar="SECONDS",
                                           help="Time limit for your file's training.")]


@app.command("check", short_help="Check your Exercise 4 training loop (see exercise 4 --code).")
def check_command(
    number: Annotated[str, typer.Argument(metavar="N", show_default=False,
                                          help="The exercise: 4 (the one with code).")],
    file: Annotated[Path | None, typer.Argument(metavar="FILE", show_default=False,
                                                help="Your training loop "
                                                "(default: train_loop.py).")] = None,
    timeout: TimeoutOpt = 20.0,
    as_json: JsonOpt = False,
) -> None:
    """Run your finished training loop and explain what is right or wrong with it."""
    from dataclasses import asdict

    from autograd_tutor import checker

    chosen = parse_number(number)
    require_coding_exercise(chosen)
    ui = UI(Environment.from_system(), as_json=as_json)
    path = file if file is not None else checker.default_scaffold_path()
    with friendly_exits(ui):
        ui.text(f"Running {path} (time limit {timeout:g} s) ...", "dim")
        report = checker.check_file(path, timeout=timeout)
    verdict_style = "bold green" if report.passed else "bold red"
    for line in checker.format_report(report):
        ui.text(line, verdict_style if line.startswith(("check", "problem:")) else "")
    open_store(ui).record_check(CODING_EXERCISE, report.passed, str(path))
    if as_json:
        print(json.dumps(asdict(report), default=str))
    raise typer.Exit(EXIT_OK if report.passed else EXIT_FAILED)


@app.command("next", short_help="Run the first exercise you have not finished.")
def next_command_(
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the first exercise you have not finished."""
    ui = UI(Environment.from_system(), as_json=as_json)
    upcoming = next_exercise(open_store(ui).load())
    if upcoming is None:
        show_all_done(ui)
        if as_json:
            print(json.dumps({"exercise": None, "done": True}))
        return
    run_exercise(upcoming, reveal=reveal, answers={}, as_json=as_json, plots=None, graph="tree",
                 fast=False, show=False)


def run_exercise(
    exercise: Exercise, *, reveal: bool, answers: dict[str, str], as_json: bool,
    plots: Path | None, graph: str, fast: bool = False, show: bool = False,
    json_extra: Callable[[Any], dict[str, Any]] | None = None, then: str | None = None,
) -> None:
    """Run one exercise (or a generated practice set) and report it; exit codes as above."""
    from autograd_tutor.session import Options, Quit, Session

    env = Environment.from_system()
    ui = UI(env, as_json=as_json)
    store = open_store(ui)
    plots_dir = plots if plots is not None else home_dir() / "plots"
    options = Options(reveal=reveal, answers=answers, plots_dir=plots_dir, graph_view=graph,
                      fast=fast, show=show)
    session = Session(exercise, ui, store, options)

    def emit_json() -> None:
        if as_json:
            report = json_extra(session) if json_extra else session.to_json()
            print(json.dumps(report), file=env.stdout, flush=True)

    again = then or f"autograd-tutor exercise {exercise.number}"
    with friendly_exits(ui, on_stop=emit_json):
        try:
            session.run()
        except Quit:
            emit_json()
            ui.text(f"Stopped. Your answers so far are saved; start again with: {again}", "bold")
            raise typer.Exit(EXIT_FAILED) from None
    correct, asked = session.score()
    ui.summary(exercise, correct, asked, then or next_command(store))
    emit_json()


ConceptOpt = Annotated[str | None, typer.Option("--concept", "-c", metavar="NAME",
                                                help="Only this concept (see --list).")]
CountOpt = Annotated[int, typer.Option("--count", "-n", min=1, max=50,
                                       help="How many problems.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", min=0, help="Same seed, same problems "
                                             "(default: a new seed, printed).")]


def practice_json(seed: int) -> Callable[[Any], dict[str, Any]]:
    def build(session: Any) -> dict[str, Any]:
        steps = {p.id: step for step in session.exercise.steps for p in step.predictions}
        items = []
        for outcome in session.outcomes:
            prediction = outcome.guess.prediction
            step = steps[prediction.id]
            items.append({"concept": prediction.concept,
                          "question": step.setup,
                          "code": step.code,
                          **outcome.to_json()})
        return {"seed": seed, "completed": session.completed, "items": items}

    return build


def concept_list() -> str:
    from autograd_tutor.practice import CONCEPTS

    return "\n".join(f"  {name:<13} {text}" for name, text in CONCEPTS.items())


@app.command("practice", short_help="Fresh problems per concept (--list shows them).")
def practice_command(
    concept: ConceptOpt = None,
    count: CountOpt = 5,
    seed: SeedOpt = None,
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
    list_concepts: Annotated[bool, typer.Option("--list", help="List the concepts.")] = False,
) -> None:
    """Fresh problems for a concept: polynomial, chain-rule, accumulation, zeroing,
    gd-step, detach."""
    from autograd_tutor import practice

    if list_concepts:
        print(concept_list())
        return
    if concept is not None and concept not in practice.CONCEPTS:
        raise typer.BadParameter(f"{concept!r} is not a concept; choose one of: "
                                 + ", ".join(practice.CONCEPTS), param_hint="--concept")
    seed = seed if seed is not None else random_seed()
    problems = practice.generate(concept, count, seed)
    concept_option = f" --concept {concept}" if concept else ""
    again = (f"autograd-tutor practice{concept_option} for new problems "
             f"(add --seed {seed} to repeat these)")
    run_exercise(problems, reveal=reveal, answers={}, as_json=as_json, plots=None,
                 graph="none", json_extra=practice_json(seed), then=again)


def random_seed() -> int:
    return int.from_bytes(os.urandom(3), "big")


@app.command("review", short_help="Practise the concepts you missed, when due.")
def review_command(
    count: CountOpt = 3,
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Practise the concepts you missed, when they are due (Leitner boxes)."""
    from datetime import UTC, datetime

    from autograd_tutor import practice, review

    ui = UI(Environment.from_system(), as_json=as_json)
    attempts = open_store(ui).load()["attempts"]
    now = datetime.now(UTC)
    due = review.due(attempts, now)
    if not due:
        upcoming = review.schedule(attempts, now)
        if upcoming:
            first = upcoming[0]
            ui.text(f"Nothing is due. Next review: {first.concept}, "
                    f"{first.due.astimezone():%Y-%m-%d %H:%M}.")
        else:
            ui.text("Nothing to review: the queue fills with concepts you miss.")
        if as_json:
            print(json.dumps({"due": [], "items": []}))
        return
    seed = random_seed()
    chosen = due[:count]
    ui.text(f"Due for review: {', '.join(chosen)}", "bold")
    problems = practice.generate_mix(chosen, seed)

    def report(session: Any) -> dict[str, Any]:
        return {"due": chosen, **practice_json(seed)(session)}

    run_exercise(problems, reveal=reveal, answers={}, as_json=as_json, plots=None,
                 graph="none", json_extra=report, then="autograd-tutor review")


@app.command("progress", short_help="Your history: accuracy, streaks, misconceptions.")
def progress_command(as_json: JsonOpt = False) -> None:
    """Your history: attempts, first-try accuracy, streaks and common misconceptions."""
    from autograd_tutor import stats

    ui = UI(Environment.from_system(), as_json=as_json)
    data = open_store(ui).load()
    rows = data["attempts"]
    per_exercise, per_concept = stats.by_exercise(rows), stats.by_concept(rows)
    if as_json:
        print(json.dumps({
            "attempts": rows,
            "exercises": {summary.name: summary.to_json() for summary in per_exercise},
            "concepts": {summary.name: summary.to_json() for summary in per_concept},
            "checks": data["checks"],
        }))
        return
    if not rows and not data["checks"]:
        ui.text("No predictions recorded yet. Start with: autograd-tutor exercise 1")
        return
    ui.say(ui.progress_table("Progress by exercise", per_exercise))
    ui.say(ui.progress_table("Progress by concept", per_concept))
    checks = data["checks"]
    if checks:
        last = checks[-1]
        verdict = "passed" if last.get("passed") else "not passed yet"
        ui.text(f"check {CODING_EXERCISE}: {verdict} ({last.get('file')}, {last.get('time')}; "
                f"{sum(1 for c in checks if c.get('passed'))} of {len(checks)} checks passed)")


ResetArg = Annotated[str | None, typer.Argument(metavar="[N]", show_default=False,
                                                help="Only this exercise (default: all).")]


@app.command("reset", short_help="Clear recorded progress (all, or exercise N).")
def reset_command(
    number: ResetArg = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Clear your recorded progress, for all exercises or for exercise N."""
    chosen = parse_number(number) if number is not None else None
    ui = UI(Environment.from_system())
    store = open_store(ui)
    what = f"exercise {chosen.number}" if chosen else "all exercises"
    if not yes:
        with friendly_exits(ui, kept="nothing was deleted"):
            answer = ui.ask(f"Delete the recorded progress of {what}? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            ui.text("Nothing deleted.")
            raise typer.Exit(EXIT_FAILED)
    if not store.reset(chosen.number if chosen else None):
        ui.error(f"could not reset the progress in {store.home}.")
        raise typer.Exit(EXIT_FAILED)
    ui.text(f"Progress of {what} deleted.")


ExprArg = Annotated[str, typer.Argument(metavar="EXPR", show_default=False, help=(
    "An expression in variables, numbers, + - * / **, parentheses and sin cos tan exp log "
    "sqrt abs tanh sigmoid relu, e.g. 'x**3 + 2*x**2 - 5*x + 1'."))]
AtOpt = Annotated[list[str] | None, typer.Option("--at", metavar="NAME=VALUE",
                                                 help="A variable's value, e.g. x=3 "
                                                 "(one per variable, repeatable).")]
ViewOpt = Annotated[str, typer.Option("--view", metavar="VIEW", help="Graph view: tree, "
                                      "table, paths or none.")]
PredictOpt = Annotated[bool, typer.Option("--predict", help="Ask for each gradient before "
                                          "showing it.")]
DepthOpt = Annotated[int | None, typer.Option("--depth", min=1, metavar="N",
                                              help="Show at most N levels of the tree.")]


@app.command("graph", short_help="Any expression: value, gradients, PyTorch's graph.")
def graph_command(
    expression: ExprArg,
    at: AtOpt = None,
    view: ViewOpt = "tree",
    predict: PredictOpt = False,
    as_json: JsonOpt = False,
    depth: DepthOpt = None,
) -> None:
    """Any expression: its value, each gradient, and the graph PyTorch builds for it."""
    from autograd_tutor.playground import run_graph

    ui = UI(Environment.from_system(), as_json=as_json)
    with friendly_exits(ui):
        status = run_graph(expression, at or [], view=view, predict=predict, as_json=as_json,
                           depth=depth, ui=ui)
    raise typer.Exit(status)


# Entry point --------------------------------------------------------------------------


def main() -> Any:
    """Console-script entry: no traceback ever reaches the learner unless they ask for it."""
    for stream in (sys.stdout, sys.stderr):
        # A terminal or pipe that can't encode "−" or "²" gets "?" rather than a crash.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
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
