"""Typer commands: parse, wire, and map outcomes to exit codes. The work happens elsewhere.

Exit codes: 0 done, 1 aborted or failed, 2 usage error, 130 interrupted.
Heavy modules (torch, matplotlib) are imported only inside the commands that need them.
"""

import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from autograd_tutor.app.course import next_command, next_exercise, overview
from autograd_tutor.app.progress import RUNS_SHOWN
from autograd_tutor.content import packs
from autograd_tutor.engine.digest import Digest
from autograd_tutor.engine.model import Asked, Exercise, History, Pack
from autograd_tutor.engine.store import APP_NAME, HOME_VARIABLE, Store
from autograd_tutor.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from autograd_tutor.views import course_view
from autograd_tutor.views.env import Environment
from autograd_tutor.views.ui import UI, printable

GRAPH_VIEWS = ("tree", "table", "paths", "none")
SAVED = "your answers so far are saved"
NAME = "autograd-tutor"


def command_name() -> str:
    """How to run this tool from where the learner is: its name when the shell finds this
    very script on PATH, else its path (`.venv/bin/autograd-tutor` after `make run`)."""
    import shutil

    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is None or script.name != NAME:
        return NAME  # run some other way (python -m, a test): the installed name
    found = shutil.which(NAME)
    try:
        if found and Path(found).resolve() == script.resolve():
            return NAME
        return os.path.relpath(script) if not script.is_absolute() or str(
            script.resolve()).startswith(str(Path.cwd())) else str(script)
    except (OSError, ValueError):
        return str(script)


TOOL = command_name()


class JsonErrors(TyperGroup):
    """With --json, stdout always carries one JSON object: a usage error (exit 2), a failure
    that printed no object of its own, or an internal error prints {"error": {"kind",
    "message"}} there, besides the usual message on stderr."""

    def invoke(self, ctx: Any) -> Any:  # a Click context
        global json_sent
        json_sent = False
        UI.last_error = ""
        args = [*ctx._protected_args, *ctx.args]
        wanted = "--json" in (args[: args.index("--")] if "--" in args else args)
        try:
            return super().invoke(ctx)
        except typer.TyperException as error:  # Click's usage errors
            if wanted and not json_sent:
                code = getattr(error, "exit_code", EXIT_USAGE)
                message = getattr(error, "format_message", error.__str__)()
                json_error("usage" if code == EXIT_USAGE else "failed", message)
            raise
        except typer.Exit as ended:  # a failure already said on stderr
            code = ended.exit_code
            if wanted and not json_sent and code not in (EXIT_OK, EXIT_INTERRUPTED):
                json_error("usage" if code == EXIT_USAGE else "failed",
                           UI.last_error or f"the command failed (exit status {code})")
            raise
        except typer.Abort:
            raise
        except OSError as error:  # without a file name: stdout itself failed
            if wanted and not json_sent and (error.filename or error.filename2):
                json_error("failed", os_problem(error))
            raise
        except Exception as error:
            if wanted and not json_sent:
                json_error("internal", f"internal error ({type(error).__name__}: {error})")
            raise


app = typer.Typer(
    name=NAME,
    cls=JsonErrors,
    help="Learn PyTorch's autograd by predicting gradients before PyTorch reveals them.",
    epilog="Start with: autograd-tutor exercise 1   (or just: autograd-tutor)",
    add_completion=True,  # --install-completion / --show-completion, for every shell Typer knows
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
PACK_HELP = "Lesson packs: list, check, add, start and import them."
pack_app = typer.Typer(help=PACK_HELP, no_args_is_help=True, rich_markup_mode=None)
app.add_typer(pack_app, name="pack", short_help=PACK_HELP)


# Wiring -------------------------------------------------------------------------------


def home_dir() -> Path:
    """The progress directory: $AUTOGRAD_TUTOR_HOME when set, else the platform's app
    directory (Typer's, so it is here and not in the engine, which is given the path)."""
    override = os.environ.get(HOME_VARIABLE)
    if override:
        return Path(override).expanduser()
    return Path(typer.get_app_dir(APP_NAME))


def make_ui(as_json: bool = False) -> UI:
    return UI(Environment.from_system(), as_json=as_json)


json_sent = False  # this command printed its JSON object (an error then prints no second)


def json_text(value: Any, allow_nan: bool = True) -> str:
    """`value` as one line of JSON; json is loaded only by the commands that print it."""
    import json

    global json_sent
    json_sent = True
    return json.dumps(value, allow_nan=allow_nan)


def json_error(kind: str, message: str) -> None:
    """The one JSON object of a --json run that ended in an error: what kind, and the
    message (also said on stderr)."""
    print(json_text({"error": {"kind": kind, "message": printable(message, limit=None)}}),
          flush=True)


def open_store(ui: UI) -> Store:
    return Store(home_dir(), warn=ui.warn)


def installed(ui: UI) -> packs.Installed:
    found = packs.installed(home_dir())
    for line in found.skipped:
        ui.warn(line)
    return found


def resolve(text: str, found: packs.Installed, param: str = "N") -> Exercise:
    """The exercise named by N (basics) or PACK/N, or a usage error saying what exists."""
    try:
        pack_name, number = packs.parse_key(text)
    except ValueError:
        pack_name, number = "", 0
    pack = found.packs.get(pack_name)
    if pack is not None:
        try:
            return pack.exercise(number)
        except KeyError:
            pass
    where = pack if pack is not None else found.packs.get(packs.DEFAULT_PACK)
    if pack is None and "/" in text:
        names = ", ".join(found.packs)
        message = f"{text!r} names no installed pack; installed: {names} (see '{TOOL} pack list')"
    else:
        count = len(where.exercises) if where else 0
        prefix = "" if where is None or where.name == packs.DEFAULT_PACK else f"{where.name}/"
        message = (f"{text!r} is not an exercise; choose a number from {prefix}1 to "
                   f"{prefix}{count} (see '{TOOL} list')")
    raise typer.BadParameter(message, param_hint=param)


def parse_answers(exercise: Exercise, given: list[str]) -> dict[str, str]:
    """--answer ID=VALUE pairs, checked against the exercise's prediction IDs."""
    from autograd_tutor.engine.answers import AnswerError, parse_prediction

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
                f"exercise {packs.key_text(exercise)} has no prediction {key!r}; "
                f"valid IDs: {valid}", param_hint="--answer",
            )
        if key in answers:
            raise typer.BadParameter(f"{key!r} is given twice", param_hint="--answer")
        try:
            parse_prediction(value, predictions[key])
        except AnswerError as problem:
            raise typer.BadParameter(f"{key}={printable(value)!r}: {problem}",
                                     param_hint="--answer") from None
        answers[key] = value
    for key in answers:
        outcome = key.removesuffix(":which")
        if predictions[key].kind == "which" and not (
                outcome in answers
                and parse_prediction(answers[outcome], predictions[outcome]) == "error"):
            # As at the prompt: which error is asked only of a learner who predicts one.
            raise typer.BadParameter(f"{key!r} is asked only after {outcome}=error; give "
                                     f"--answer {outcome}=error too, or drop {key!r}",
                                     param_hint="--answer")
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


# Shell completion: cheap functions of the installed packs (no torch).


def complete_exercise(incomplete: str) -> list[str]:
    found = packs.installed(home_dir())
    names = [packs.key_text(e) for p in found.packs.values() for e in p.exercises]
    return [name for name in names if name.startswith(incomplete)]


def complete_answer(ctx: typer.Context, incomplete: str) -> list[str]:
    """ID= for each prediction of the exercise already named on the command line."""
    number = ctx.params.get("number") or _word_after("exercise")
    try:
        exercise = resolve(str(number), packs.installed(home_dir()))
    except typer.BadParameter:
        return []
    return [f"{pid}=" for pid in exercise.prediction_ids if pid.startswith(incomplete)]



def _word_after(command: str) -> str | None:
    """While an option's value is being completed, Click leaves the arguments before it
    unparsed: read them from the line the shell passed (bash, zsh/fish)."""
    line = os.environ.get("COMP_WORDS") or os.environ.get("_TYPER_COMPLETE_ARGS") or ""
    words = line.split()
    return words[words.index(command) + 1] if command in words[:-1] else None


def complete_view(incomplete: str) -> list[str]:
    return [view for view in GRAPH_VIEWS if view.startswith(incomplete)]


def complete_concept(incomplete: str) -> list[str]:
    from autograd_tutor.engine import practice

    found = packs.installed(home_dir())
    return [c for c in practice.concepts(found.templates()) if c.startswith(incomplete)]


def complete_pack(incomplete: str) -> list[str]:
    return [name for name in packs.installed(home_dir()).packs if name.startswith(incomplete)]


def version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version(NAME)  # one version: the package's own metadata
        except PackageNotFoundError:
            found = "(not installed)"
        print(f"{NAME} {found}")
        raise typer.Exit()


# Commands -----------------------------------------------------------------------------


@app.callback(invoke_without_command=True)
def home(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=version_callback,
                                          is_eager=True, help="Print the version.")] = False,
) -> None:
    """Without a command: a welcome, the exercise list, and what to run next."""
    if ctx.invoked_subcommand is not None:
        return
    ui = make_ui()
    found = installed(ui)
    history = open_store(ui).digest()
    ui.markdown(
        "**Welcome to autograd-tutor.** Each exercise shows you PyTorch code and asks you to "
        "*predict* what `.grad` will be before PyTorch runs it. Wrong predictions are the "
        "point: they show you where your mental model of autograd breaks."
    )
    show_tables(ui, history, found, only=packs.DEFAULT_PACK)
    upcoming = next_exercise(history, found)
    if upcoming is None:
        course_view.all_done(ui, found, TOOL)
    else:
        if upcoming.pack != packs.DEFAULT_PACK:  # the notebook's five are done
            course_view.takeaways(ui, found)
        ui.text(f"Next: {TOOL} exercise {packs.key_text(upcoming)}", "bold")
    ui.text(f"Help: {TOOL} --help", "dim")


def show_tables(ui: UI, history: History | Digest, found: packs.Installed,
                only: str | None = None) -> None:
    """One table per pack (only `only`'s when given, with a line for the others)."""
    from datetime import UTC, datetime

    course_view.tables(ui, overview(history, found, only, datetime.now(UTC)), TOOL)


PackArg = Annotated[str | None, typer.Argument(metavar="[PACK]", show_default=False,
                                               help="Only this pack (default: basics, and "
                                               "a line for the others).",
                                               autocompletion=complete_pack)]


@app.command("list", short_help="The exercises with your status and score.")
def list_command(pack: PackArg = None) -> None:
    """List the exercises with your status and score."""
    ui = make_ui()
    found = installed(ui)
    if pack is not None and pack not in found.packs:
        raise typer.BadParameter(f"no pack named {pack!r}; installed: "
                                 + ", ".join(found.packs), param_hint="PACK")
    show_tables(ui, open_store(ui).digest(), found, only=pack or packs.DEFAULT_PACK)


NumberArg = Annotated[str, typer.Argument(metavar="N", help="Exercise number (1 to 5), or "
                                          "PACK/N for another pack's.", show_default=False,
                                          autocompletion=complete_exercise)]
RevealOpt = Annotated[bool, typer.Option("--reveal", help="Ask nothing; show every answer "
                                         "(for instructors and demos).")]
AnswerOpt = Annotated[list[str] | None, typer.Option(
    "--answer", "-a", metavar="ID=VALUE", autocompletion=complete_answer,
    help="Give a prediction without a prompt, e.g. x.grad=34 (repeatable). "
         "Predictions not given are asked for.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object with the "
                                       "results on stdout; everything else goes to stderr.")]
PlotsOpt = Annotated[Path | None, typer.Option("--plots", metavar="DIR", help="Where figures "
                                               "are saved (default: a plots folder in the "
                                               "progress directory).")]
GraphOpt = Annotated[str, typer.Option("--graph", metavar="VIEW", help="Autograd graph "
                                       "view after each reveal: tree, table, paths or none.",
                                       autocompletion=complete_view)]
FastOpt = Annotated[bool, typer.Option("--fast", help="Skip the live training animation "
                                       "(Exercise 4); the results are the same.")]
ShowOpt = Annotated[bool, typer.Option("--show", help="Also open the figures in windows "
                                       "when a display is available.")]
CodeOpt = Annotated[bool, typer.Option("--code", help="For an exercise with a coding part "
                                       "(such as 4): write its scaffold to FILE for you to "
                                       "finish, then run 'autograd-tutor check N FILE'.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="With --code: overwrite FILE if it "
                                        "exists.")]
NoRetryOpt = Annotated[bool, typer.Option("--no-retry", help="After a wrong answer, don't "
                                          "offer a fresh problem aimed at the mistake.")]
FileArg = Annotated[Path | None, typer.Argument(metavar="FILE", show_default=False,
                                                help="With --code: where to write the "
                                                "scaffold (default: its own file name).")]


@app.command("exercise", short_help="Work through exercise N (1 to 5, or PACK/N).")
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
    no_retry: NoRetryOpt = False,
) -> None:
    """Work through exercise N: read, predict, then see what PyTorch computes."""
    ui = make_ui(as_json)
    found = installed(ui)
    chosen = resolve(number, found)
    if code:
        write_scaffold(chosen, file, force)
        return
    if file is not None:
        raise typer.BadParameter("a FILE is only used with --code", param_hint="FILE")
    answers = parse_answers(chosen, answer or [])
    if plots is not None and not str(plots).strip(". "):
        # Typer reads --plots "" as ".": never scatter figures into the current folder.
        raise typer.BadParameter("needs a folder name (or leave it out: figures then go "
                                 "to the progress directory)", param_hint="--plots")
    if graph not in GRAPH_VIEWS:
        raise typer.BadParameter(f"{graph!r} is not a view; choose one of "
                                 + ", ".join(GRAPH_VIEWS), param_hint="--graph")
    run_exercise(chosen, found.get(chosen.pack), reveal=reveal, answers=answers,
                 as_json=as_json, plots=plots, graph=graph, fast=fast, show=show,
                 retry=not no_retry)


def require_coding(exercise: Exercise) -> Any:
    if exercise.coding is None:
        raise typer.BadParameter(f"exercise {packs.key_text(exercise)} has no coding mode",
                                 param_hint="N")
    return exercise.coding


def write_scaffold(exercise: Exercise, file: Path | None, force: bool) -> None:
    from autograd_tutor.engine import checker

    coding = require_coding(exercise)
    ui = make_ui()
    path = file if file is not None else Path(coding.default_file)
    name = packs.key_text(exercise)
    try:
        written = checker.write_scaffold(coding.scaffold, path, force=force)
    except checker.ScaffoldExistsError:
        ui.error(f"{path_text(path)} already exists; choose another FILE or add --force to "
                 "overwrite it.")
        raise typer.Exit(EXIT_FAILED) from None
    except OSError as error:
        ui.error(f"can't write {path_text(path)}: {error.strerror or error}")
        raise typer.Exit(EXIT_FAILED) from None
    ui.text(f"Wrote the scaffold to {path_text(written)}.", "bold")
    ui.text("Fill in the TODOs, run it with: python " + path_text(written))
    ui.text(f"then check it with: {TOOL} check {name} {path_text(written)}")


TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1.0, max=600.0, metavar="SECONDS",
                                           help="Time limit for your file's run.")]


@app.command("check", short_help="Check your file for a coding exercise (see exercise N --code).")
def check_command(
    number: Annotated[str, typer.Argument(metavar="N", show_default=False,
                                          help="The exercise with a coding part: 4, or PACK/N.")],
    file: Annotated[Path | None, typer.Argument(metavar="FILE", show_default=False,
                                                help="Your finished scaffold "
                                                "(default: the scaffold's file name).")] = None,
    timeout: TimeoutOpt = 20.0,
    as_json: JsonOpt = False,
) -> None:
    """Run your finished file and explain what is right or wrong with it."""
    from autograd_tutor.engine import checker

    ui = make_ui(as_json)
    found = installed(ui)
    chosen = resolve(number, found)
    coding = require_coding(chosen)
    path = file if file is not None else Path(coding.default_file)
    name = packs.key_text(chosen)
    with friendly_exits(ui, kept="nothing was recorded"):
        ui.text(f"Running {path_text(path)} (time limit {timeout:g} s) ...", "dim")
        try:
            report = checker.check_file(path, coding, timeout=timeout, name=name)
        except checker.PackModuleError as error:
            ui.error(f"exercise {name} is broken: {error}. Check its pack with: "
                     f"{TOOL} pack check DIR")
            raise typer.Exit(EXIT_FAILED) from None
    verdict_style = "bold green" if report.passed else "bold red"
    for line in checker.format_report(report, name):
        # The learner's own output is shown as text: its escape codes are not replayed.
        style = verdict_style if line.startswith(("check", "problem:")) else ""
        ui.text(printable(line, limit=None), style)
    saved = open_store(ui).record_check(chosen.pack, chosen.number, report.passed, str(path))
    if as_json:
        print(json_text(checker.report_json(report), allow_nan=False))
    if not saved:
        ui.error("this check's result was not saved (see the warning above).")
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK if report.passed else EXIT_FAILED)


@app.command("next", short_help="Run the first exercise you have not finished.")
def next_command_(
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
    no_retry: NoRetryOpt = False,
) -> None:
    """Run the first exercise you have not finished."""
    ui = make_ui(as_json)
    found = installed(ui)
    upcoming = next_exercise(open_store(ui).digest(), found)
    if upcoming is None:
        course_view.all_done(ui, found, TOOL)
        if as_json:
            print(json_text({"exercise": None, "done": True}))
        return
    run_exercise(upcoming, found.get(upcoming.pack), reveal=reveal, answers={},
                 as_json=as_json, plots=None, graph="tree", retry=not no_retry)


def run_exercise(
    exercise: Exercise, pack: Pack | None, *, reveal: bool, answers: dict[str, str],
    as_json: bool, plots: Path | None, graph: str, fast: bool = False, show: bool = False,
    json_extra: Callable[[Any], dict[str, Any]] | None = None, then: str | None = None,
    kind: Asked = Asked.EXERCISE, helpers: Any = None, retry: bool = False,
) -> None:
    """Run one exercise (or a generated practice set) and report it; exit codes as above."""
    from autograd_tutor.app.practice import aimed_problems
    from autograd_tutor.app.session import Recorder
    from autograd_tutor.engine.runner import LessonError, load_helpers
    from autograd_tutor.views.session import Options, Quit, Session

    env = Environment.from_system()
    ui = UI(env, as_json=as_json)
    store = open_store(ui)
    plots_dir = plots if plots is not None else home_dir() / "plots"
    # Scripts see exactly the plain flow: no offer with --answer, --reveal, --json or pipes.
    offer = (retry and not reveal and not answers and not as_json and env.stdin_isatty
             and env.stdout_isatty)
    options = Options(reveal=reveal, answers=answers, plots_dir=plots_dir, graph_view=graph,
                      fast=fast, show=show, retry=offer)
    try:
        helpers = helpers if helpers is not None else load_helpers(pack)
    except LessonError as error:
        message = f"pack {exercise.pack!r} can't be used: {error}"
        if as_json:
            print(json_text(lesson_error(message)), file=env.stdout, flush=True)
        ui.error(message)
        raise typer.Exit(EXIT_FAILED) from None
    session = Session(exercise, ui, Recorder(store), options, helpers=helpers, kind=kind,
                      aimed=aimed_problems(ui.warn, home_dir()) if offer else None)

    def emit_json(error: str | None = None) -> None:
        if as_json:
            report = json_extra(session) if json_extra else session.to_json()
            if error is not None:  # the results so far, and why the run stopped
                report = {**report, **lesson_error(error)}
            print(json_text(report), file=env.stdout, flush=True)

    again = then or f"{TOOL} exercise {packs.key_text(exercise)}"
    with friendly_exits(ui, on_stop=emit_json):
        try:
            session.run()
        except Quit:
            emit_json()
            ui.text(f"Stopped. Your answers so far are saved; start again with: {again}", "bold")
            raise typer.Exit(EXIT_FAILED) from None
        except LessonError as error:
            where = shlex.quote(str(pack.root)) if pack is not None else "DIR"
            kept = "your answers were kept" if session.saved else "your answers were not saved"
            message = (f"exercise {packs.key_text(exercise)} is broken: {error}. "
                       f"{kept.capitalize()}. Check its pack with: {TOOL} pack check "
                       f"{printable(where)}")
            emit_json(message)
            ui.error(message)
            raise typer.Exit(EXIT_FAILED) from None
    correct, asked = session.score()
    name = f"Exercise {packs.key_text(exercise)}" if kind == Asked.EXERCISE else exercise.title
    ui.summary(name, correct, asked, then or next_command(store.digest(), packs.installed(
        home_dir()), TOOL, after=exercise))
    emit_json()
    if not session.saved:
        ui.error(f"your answers were not saved ({store.problem or 'see the warning above'}); "
                 "the results above are all there is of this run.")
        raise typer.Exit(EXIT_FAILED)


def lesson_error(message: str) -> dict[str, Any]:
    """The JSON object's error, for a broken lesson (the shape every --json error has)."""
    return {"error": {"kind": "lesson", "message": message}}


ConceptOpt = Annotated[str | None, typer.Option("--concept", "-c", metavar="NAME",
                                                help="Only this concept (see --list).",
                                                autocompletion=complete_concept)]
CountOpt = Annotated[int, typer.Option("--count", "-n", min=1, max=50,
                                       help="How many problems.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", min=0, help="Same seed, same problems "
                                             "(default: a new seed, printed).")]


@app.command("practice", short_help="Fresh problems per concept (--list shows them).")
def practice_command(
    concept: ConceptOpt = None,
    count: CountOpt = 5,
    seed: SeedOpt = None,
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
    list_concepts: Annotated[bool, typer.Option("--list", help="List the concepts.")] = False,
) -> None:
    """Fresh problems for a concept: those of the installed packs' practice templates and
    parameterised steps (--list shows them)."""
    from autograd_tutor.app.practice import NoPractice, concept_titles, draw_practice

    ui = make_ui(as_json)
    found = installed(ui)
    if list_concepts:
        print("\n".join(f"  {name:<13} {text}" for name, text in concept_titles(found).items()))
        return
    try:
        drawn = draw_practice(found, concept, count, seed, ui.warn)
    except NoPractice as problem:
        raise typer.BadParameter(str(problem), param_hint="--concept") from None
    concept_option = f" --concept {concept}" if concept else ""
    again = (f"{TOOL} practice{concept_option} for new problems "
             f"(add --seed {drawn.seed} to repeat these)")
    run_exercise(drawn.problems, None, reveal=reveal, answers={}, as_json=as_json, plots=None,
                 graph="none", json_extra=drawn.to_json, then=again, kind=Asked.PRACTICE,
                 helpers=drawn.helpers)


@app.command("review", short_help="Practise the concepts you missed, when due.")
def review_command(
    count: CountOpt = 3,
    reveal: RevealOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Practise the concepts you missed, when they are due (FSRS spaced repetition)."""
    from datetime import UTC, datetime

    from autograd_tutor.app.practice import random_seed
    from autograd_tutor.app.review import draw_review, review_queue

    ui = make_ui(as_json)
    found = installed(ui)
    queue = review_queue(open_store(ui).digest().schedule(datetime.now(UTC)), found)
    if not queue.due:
        course_view.nothing_due(ui, queue)
        if as_json:
            print(json_text({"due": [], "items": []}))
        return
    ui.text(f"Due for review: {', '.join(queue.due[:count])}", "bold")
    drawn = draw_review(queue.due[:count], found, random_seed(), ui.warn)
    if drawn.problems is None:  # every one was a left-out pack's: the warning above says why
        if as_json:
            print(json_text({"due": [], "items": []}))
        raise typer.Exit(EXIT_FAILED)
    run_exercise(drawn.problems, None, reveal=reveal, answers={}, as_json=as_json, plots=None,
                 graph="none", json_extra=drawn.to_json, then=f"{TOOL} review",
                 kind=Asked.REVIEW, helpers=drawn.helpers)


@app.command("progress", short_help="Your history: accuracy, streaks, misconceptions.")
def progress_command(
    as_json: JsonOpt = False,
    every: Annotated[bool, typer.Option("--all", help=f"List every run, not only the last "
                                        f"{RUNS_SHOWN}.")] = False,
) -> None:
    """Your history: attempts, first-try accuracy, streaks, common misconceptions, and each
    concept's chance of recall now."""
    from datetime import UTC, datetime

    from autograd_tutor.app.progress import progress_json, progress_report

    ui = make_ui(as_json)
    store = open_store(ui)
    found = installed(ui)
    if as_json:
        print(json_text(progress_json(store, found, datetime.now(UTC)), allow_nan=False))
        return
    report = progress_report(store, found, datetime.now(UTC), every=every)
    if report is None:
        ui.text(f"No predictions recorded yet. Start with: {TOOL} exercise 1")
        return
    ui.say(ui.progress_table("Progress by exercise", report.per_exercise, report.title))
    ui.say(ui.progress_table("Progress by concept", report.per_concept, report.title,
                             recall=report.recall))
    ui.say(ui.runs_table(report.runs, total=report.total_runs))
    if len(report.runs) < report.total_runs:
        ui.text(f"Every run: {TOOL} progress --all", "dim")
    if report.check_line is not None:
        ui.text(report.check_line)


ResetArg = Annotated[str | None, typer.Argument(metavar="[N]", show_default=False,
                                                help="Only this exercise, N or PACK/N "
                                                "(default: all).")]


@app.command("reset", short_help="Clear recorded progress (all, or exercise N).")
def reset_command(
    number: ResetArg = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Clear your recorded progress, for all exercises or for exercise N. A copy of the
    history before the reset is kept beside it."""
    ui = make_ui()
    chosen = resolve(number, installed(ui)) if number is not None else None
    store = open_store(ui)
    what = f"exercise {packs.key_text(chosen)}" if chosen else "all exercises"
    if not yes:
        with friendly_exits(ui, kept="nothing was deleted"):
            answer = ui.ask(f"Delete the recorded progress of {what}? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            ui.text("Nothing deleted.")
            raise typer.Exit(EXIT_FAILED)
    store.load()
    if not store.reset(chosen.pack if chosen else None, chosen.number if chosen else None):
        ui.error(f"could not reset the progress in {store.home}.")
        raise typer.Exit(EXIT_FAILED)
    ui.text(f"Progress of {what} deleted (a copy of the history before it is kept in "
            f"{store.home}).")


ExprArg = Annotated[str, typer.Argument(metavar="EXPR", show_default=False, help=(
    "An expression in variables, numbers, + - * / **, parentheses and sin cos tan exp log "
    "sqrt abs tanh sigmoid relu, e.g. 'x**3 + 2*x**2 - 5*x + 1'."))]
AtOpt = Annotated[list[str] | None, typer.Option("--at", metavar="NAME=VALUE",
                                                 help="A variable's value, e.g. x=3 "
                                                 "(one per variable, repeatable).")]
ViewOpt = Annotated[str, typer.Option("--view", metavar="VIEW", help="Graph view: tree, "
                                      "table, paths or none.", autocompletion=complete_view)]
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
    from autograd_tutor.views.playground import run_graph

    ui = make_ui(as_json)
    with friendly_exits(ui):
        status = run_graph(expression, at or [], view=view, predict=predict, as_json=as_json,
                           depth=depth, ui=ui)
    if as_json and status != EXIT_USAGE:  # run_graph printed the command's object
        global json_sent
        json_sent = True
    raise typer.Exit(status)


# Packs --------------------------------------------------------------------------------


@pack_app.command("list", short_help="The installed packs.")
def pack_list(as_json: JsonOpt = False) -> None:
    """The installed packs: name, title, exercises and where each lives."""
    ui = make_ui(as_json)
    found = installed(ui)
    if as_json:
        from autograd_tutor.app.pack_admin import pack_rows

        print(json_text(pack_rows(found)))
        return
    ui.say(ui.pack_table(list(found.packs.values())))
    ui.text(f"Run one with: {TOOL} exercise PACK/N   Add one with: {TOOL} pack add DIR", "dim")
    ui.text(PACK_CODE_NOTE, "dim")


DirArg = Annotated[Path, typer.Argument(metavar="DIR", show_default=False,
                                        help="The pack's directory (it holds pack.toml).")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Run the pack's code without "
                                      "asking (for scripts); the notice is not shown.")]
StepTimeOpt = Annotated[float, typer.Option("--timeout", min=0.1, max=600.0,
                                            metavar="SECONDS",
                                            help="Time limit for each step of the pack's "
                                            "code.")]
PACK_CODE_NOTE = ("A pack runs its own Python code (steps, helpers.py, practice templates) "
                  "with your permissions: add only packs you trust.")


def confirm_pack_code(ui: UI, directory: Path, yes: bool, kept: str) -> None:
    """Say once, before a pack from outside the built-in set runs, that its code runs with
    the user's permissions. In a terminal, ask (no: exit 1); elsewhere (a script, a pipe)
    the notice goes to stderr and the check goes on, as `--yes` would; `--yes` skips it."""
    from autograd_tutor.app.pack_admin import runs_code

    if yes or not runs_code(directory):
        return
    ui.warn(f"{printable(str(directory))}: {PACK_CODE_NOTE}")
    if not (ui.env.stdin_isatty and ui.env.stdout_isatty):
        return
    with friendly_exits(ui, kept=kept):
        answer = ui.ask("Run its code now? [y/N] ")
    if answer.strip().lower() not in {"y", "yes"}:
        ui.text(f"Nothing was run; {kept}.")
        raise typer.Exit(EXIT_FAILED)


@pack_app.command("check", short_help="Check a pack: run every step, verify every answer.")
def pack_check(directory: DirArg, as_json: JsonOpt = False, yes: YesOpt = False,
               timeout: StepTimeOpt = 20.0) -> None:
    """Check a pack: its files, names and expressions, then run every step with PyTorch and
    verify that every answer, by-hand value and misconception holds. Exit 0 only when sound.
    The pack's code runs in a separate process, each step with a time limit."""
    from autograd_tutor.app.pack_admin import check_pack

    ui = make_ui(as_json)
    confirm_pack_code(ui, directory, yes, kept="nothing was changed")
    with friendly_exits(ui, kept="nothing was changed"):
        result = check_pack(directory, timeout)
    if as_json:
        print(json_text(result.to_json()))
    for problem in result.problems:
        ui.text(shown_lines(str(problem)), soft_wrap=True)
    if result.ok:
        ui.text(f"pack {path_text(result.name)}: ok ({result.summary})", "bold green",
                soft_wrap=True)
    else:
        count = len(result.problems)
        ui.text(f"pack {path_text(result.name)}: {count} problem{'s' * (count != 1)}", "bold red")
    raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)


@pack_app.command("add", short_help="Check a pack and copy it into your packs.")
def pack_add(
    directory: DirArg,
    force: Annotated[bool, typer.Option("--force", help="Replace an added pack of the same "
                                        "name.")] = False,
    yes: YesOpt = False,
    timeout: StepTimeOpt = 20.0,
) -> None:
    """Check a pack and, when it is sound, copy it into the packs folder of your progress
    directory, where every command finds it."""
    from autograd_tutor.app.pack_admin import NotAdded, add_pack, check_pack

    ui = make_ui()
    confirm_pack_code(ui, directory, yes, kept="nothing was added")
    with friendly_exits(ui, kept="nothing was changed"):
        result = check_pack(directory, timeout)
    if not result.ok:
        for problem in result.problems:
            ui.text(shown_lines(str(problem)), soft_wrap=True)
        ui.error(f"the pack in {path_text(directory)} was not added: fix the problems above.")
        raise typer.Exit(EXIT_FAILED)
    try:
        added = add_pack(directory, result.name, home_dir(), force)
    except NotAdded as problem:
        ui.error(str(problem))
        raise typer.Exit(EXIT_FAILED) from None
    for line in added.skipped:
        ui.warn(f"not copied: {line}")
    ui.text(f"Added pack {added.name} to {added.target}. Start it with: "
            f"{TOOL} exercise {added.name}/1", "bold")


# For instructors: export, report, pack new, pack import ---------------------------------
# The work is in autograd_tutor.app (export, report, authoring); the tables in views.


@app.command("export", short_help="Your history as one JSON document, for an instructor.")
def export_command(
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE",
                                                help="Write it to FILE instead of stdout.")
                      ] = None,
    name: Annotated[str | None, typer.Option("--name", metavar="NAME", help="The learner "
                                             "ID to export under (default: a random ID "
                                             "kept in the progress directory).")] = None,
) -> None:
    """Write every prediction you made as one JSON document for your instructor: your
    answers, PyTorch's, the misconception matched and the hints used, under a random
    learner ID. No name, file path or environment is included."""
    from autograd_tutor.app import export
    from autograd_tutor.engine.store import write_atomic

    ui = make_ui(as_json=output is None)  # stdout carries the document
    try:
        result = export.export_history(home_dir(), ui.warn, name)
    except ValueError as problem:  # --name
        raise typer.BadParameter(str(problem), param_hint="--name") from None
    except export.ExportError as problem:
        ui.error(str(problem))
        raise typer.Exit(EXIT_FAILED) from None
    if output is None:
        print(result.text, end="")
        return
    try:
        write_atomic(output, result.text)
    except OSError as error:
        ui.error(f"can't write {output}: {error.strerror or error}")
        raise typer.Exit(EXIT_FAILED) from None
    ui.text(f"Exported {result.attempts} attempts as learner {result.document.learner} to "
            f"{output}.", soft_wrap=True)


@app.command("report", short_help="A class's misconceptions, from learners' exports.")
def report_command(
    paths: Annotated[list[Path], typer.Argument(metavar="FILE_OR_DIR", show_default=False,
                                                help="Exports, or directories of them.")],
    as_json: JsonOpt = False,
    plot: Annotated[Path | None, typer.Option("--plot", metavar="FILE.png", help="Also draw "
                                              "the misconceptions and per-exercise accuracy "
                                              "as a PNG.")] = None,
    pack: Annotated[str | None, typer.Option("--pack", metavar="PACK", help="Only this pack.",
                                             autocompletion=complete_pack)] = None,
    exercise: Annotated[str | None, typer.Option("--exercise", metavar="PACK/N",
                                                 help="Only this exercise.")] = None,
) -> None:
    """What a class got wrong: per exercise, per prediction (the most common wrong answers),
    per misconception and per concept, from the files `autograd-tutor export` wrote. Each
    learner counts once: their latest export."""
    from autograd_tutor.app import report
    from autograd_tutor.views import report_view

    ui = make_ui(as_json)
    try:
        chosen = report.parse_exercise(exercise) if exercise is not None else None
    except ValueError:
        raise typer.BadParameter(f"{exercise!r} is not PACK/N (or N for basics)",
                                 param_hint="--exercise") from None
    result, loaded = report.report(paths, pack, chosen, home_dir())
    report_view.warnings(ui, loaded)
    if len(loaded.skipped) == loaded.files:
        ui.error("no export could be read; nothing to report.")
        raise typer.Exit(EXIT_FAILED)
    if as_json:
        print(json_text(result.to_json(), allow_nan=False))
    else:
        report_view.render(ui, result)
    if plot is not None:
        try:
            saved, replaced = report_view.save_plot(result, plot)
        except OSError as error:
            ui.error(f"can't save the figure to {plot}: {error.strerror or error}")
            raise typer.Exit(EXIT_FAILED) from None
        ui.text(f"Saved figure: {saved}" + (f" (MPLBACKEND={replaced!r} is not a backend; "
                                             "drawn with Agg)" if replaced else ""))


NewDirOpt = Annotated[Path | None, typer.Option("--dir", metavar="DIR", help="Where to make "
                                                "the pack's directory (default: here).")]


def authoring_failed(ui: UI, problem: Exception) -> typer.Exit:
    """The exit for a pack that was not written: 2 when the command was given something
    wrong (a name, an existing directory), else 1."""
    ui.error(str(problem))
    return typer.Exit(EXIT_USAGE if getattr(problem, "usage", False) else EXIT_FAILED)


@pack_app.command("new", short_help="Start a pack that passes pack check at once.")
def pack_new(
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                        help="The pack's name: lower-case letters, digits "
                                        "and -.")],
    directory: NewDirOpt = None,
) -> None:
    """Start a pack: pack.toml, one exercise and a helpers.py, with a comment on every
    field. It passes pack check as it is; change it from there."""
    from autograd_tutor.app import authoring

    ui = make_ui()
    try:
        written = authoring.new_pack(name, directory or Path.cwd())
    except authoring.AuthoringError as problem:
        raise authoring_failed(ui, problem) from None
    ui.text(f"Created pack {written.name} in {written.directory} ({', '.join(written.files)})."
            f" Check it with: {TOOL} pack check {written.directory}", soft_wrap=True)


@pack_app.command("import", short_help="Draft a pack from a predict-first notebook.")
def pack_import(
    notebook: Annotated[Path, typer.Argument(metavar="NOTEBOOK.ipynb", show_default=False,
                                             help="A Jupyter notebook with '## Exercise N: "
                                             "title' headings.")],
    name: Annotated[str | None, typer.Option("--name", metavar="NAME", help="The pack's "
                                             "name (default: from the notebook's file "
                                             "name).")] = None,
    directory: NewDirOpt = None,
) -> None:
    """Draft a pack from a notebook: each exercise heading becomes an exercise, its code
    cells steps, what they print candidate predictions. What a notebook cannot say
    (by-hand formulas, hints, misconceptions) is left as TODOs that pack check lists.
    The notebook's saved outputs are never read."""
    from autograd_tutor.app import authoring

    ui = make_ui()
    try:
        written = authoring.import_notebook(notebook, directory or Path.cwd(), name)
    except authoring.AuthoringError as problem:
        raise authoring_failed(ui, problem) from None
    ui.text(f"Drafted pack {written.name} in {written.directory}: {written.exercises} "
            f"exercises, {written.predictions} candidate predictions, {written.todos} TODOs "
            f"to fill in. See what is left with: {TOOL} pack check {written.directory}",
            soft_wrap=True)


# Entry point --------------------------------------------------------------------------


def main() -> Any:
    """Console-script entry: no traceback ever reaches the learner unless they ask for it."""
    from autograd_tutor.entry import interrupted

    for stream in (sys.stdout, sys.stderr, sys.stdin):
        # A terminal or pipe that can't encode "−" or "²" gets "?" rather than a crash, and
        # undecodable input is read with replacement characters (then refused politely).
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    try:
        return app()
    except SystemExit as done:
        _leave(done)
    except KeyboardInterrupt:
        interrupted()
    except OSError as error:  # stdout on a full disk, a closed pipe, ...
        _output_failed(error)
    except Exception as error:  # a bug in the tutor, not the learner's mistake
        if os.environ.get("AUTOGRAD_TUTOR_DEBUG"):
            raise
        print(f"error: internal error ({type(error).__name__}: {error}). "
              "Set AUTOGRAD_TUTOR_DEBUG=1 to see the traceback, and please report it.",
              file=sys.stderr)
        sys.exit(EXIT_FAILED)


def _leave(done: SystemExit) -> None:
    """Exit with `done`'s status. If torch is still being imported in the background (the
    learner quit at the first prompt), Python's shutdown could wait on that import, or a
    second Ctrl-C could land in torch's exit hooks: flush and leave at once instead."""
    import threading

    code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    if code == EXIT_INTERRUPTED:
        import signal

        # A second Ctrl-C while shutting down (torch's exit hooks) must not print a
        # traceback. Set here, in the real process only: a test calling the app in-process
        # must keep its own Ctrl-C (and its children would inherit an ignored one).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threading.active_count() > 1:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    raise done


def _output_failed(error: OSError) -> None:
    """The output could not be written: say so once on stderr, and make sure Python's own
    flush at exit does not fail again (it would print a second message)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    try:
        print(f"error: {os_problem(error)}", file=sys.stderr)
    except OSError:
        pass
    sys.exit(EXIT_FAILED)


def os_problem(error: OSError) -> str:
    """What failed: the file it names (shortened, control characters shown as '?') when it
    names one, else the output itself (stdout on a full disk, a closed pipe)."""
    reason = error.strerror or str(error)
    names = [path_text(os.fsdecode(name)) for name in (error.filename, error.filename2)
             if isinstance(name, str | bytes)]
    if names:
        return f"{' → '.join(names)}: {reason}"
    return f"can't write the output: {reason}"


def path_text(path: object) -> str:
    """A path as the learner may see it echoed: control characters (escape codes) as '?',
    a very long one shortened."""
    return printable(str(path))


def shown_lines(text: str) -> str:
    """Text naming paths, with its line breaks kept: each line as `path_text` shows a path."""
    return "\n".join(printable(line, limit=None) for line in text.split("\n"))
