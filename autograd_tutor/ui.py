"""Rich rendering: every table, panel and prompt the learner sees. Takes consoles, binds none."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich import box
from rich.console import Console, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from autograd_tutor.answers import format_value
from autograd_tutor.env import Environment
from autograd_tutor.model import Exercise, Step, Value
from autograd_tutor.stats import Summary
from autograd_tutor.store import ExerciseStatus

MARKS = {True: ("right", "bold green"), False: ("wrong", "bold red"), None: ("skipped", "yellow")}
INPUT_HELP = (
    "Type a number (like 2.5, -0.75, 7/4 or 2*3 + 1) or None.  "
    "? = hint   skip = show the answer   q = quit"
)


def make_console(env: Environment, file: TextIO, isatty: bool) -> Console:
    """Colour only on a terminal without NO_COLOR; plain ASCII boxes on a dumb terminal."""
    return Console(
        file=file,
        force_terminal=isatty and not env.dumb,
        no_color=env.no_color,
        color_system="auto" if isatty and not env.no_color and not env.dumb else None,
        highlight=False,
        emoji=False,
        safe_box=True,
    )


class UI:
    """The learner-facing output. `out` is stdout, or stderr when stdout carries JSON."""

    def __init__(self, env: Environment, as_json: bool = False) -> None:
        self.env = env
        self.err = make_console(env, env.stderr, env.stderr_isatty)
        self.out = self.err if as_json else make_console(env, env.stdout, env.stdout_isatty)
        self.box = box.ASCII if env.dumb else box.ROUNDED

    # Plain messages -------------------------------------------------------------------

    def say(self, message: str | RenderableType = "") -> None:
        self.out.print(message)

    def text(self, message: str, style: str = "") -> None:
        self.out.print(Text(message, style=style))

    def warn(self, message: str) -> None:
        self.err.print(Text(f"warning: {message}", style="yellow"))

    def error(self, message: str) -> None:
        self.err.print(Text(f"error: {message}", style="bold red"))

    def markdown(self, text: str) -> None:
        if text:
            self.out.print(Markdown(text))
            self.out.print()

    def markdown_lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.out.print(Markdown(line))

    # Prompts --------------------------------------------------------------------------

    def ask(self, prompt: str) -> str:
        """One line of input. Raises EOFError when input ends."""
        if self.env.stdin_isatty:
            return self.out.input(Text(prompt, style="bold cyan"))
        self.out.print(Text(prompt, style="bold cyan"), end="")
        self.out.file.flush()
        line = self.env.stdin.readline()
        if not line:
            self.out.print()
            raise EOFError
        # Piped input is not echoed by a terminal; echo it so the transcript reads well.
        self.out.print(Text(line.rstrip("\r\n")))
        return line.rstrip("\r\n")

    # Exercises ------------------------------------------------------------------------

    def exercise_table(
        self, exercises: Sequence[Exercise], statuses: dict[int, ExerciseStatus]
    ) -> Table:
        table = Table(title="Exercises", box=self.box, title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("Title")
        table.add_column("Level")
        table.add_column("Status")
        table.add_column("Score", justify="right")
        styles = {"done": "green", "in progress": "yellow", "not started": "dim"}
        for exercise in exercises:
            status = statuses[exercise.number]
            score = f"{status.correct}/{status.asked}" if status.asked else "-"
            table.add_row(
                str(exercise.number),
                Text(exercise.title),
                exercise.level,
                Text(status.status, style=styles[status.status]),
                score,
            )
        return table

    def exercise_header(self, exercise: Exercise) -> None:
        name = f"Exercise {exercise.number}: " if exercise.number > 0 else ""
        title = Text(f"{name}{exercise.title}  ({exercise.level})")
        self.out.print(Panel(title, box=self.box, style="bold"))
        self.markdown(exercise.intro)

    def step_header(self, step: Step, index: int, total: int) -> None:
        label = f"Step {index}/{total}: {step.title}" if total > 1 else step.title
        self.out.print(Rule(Text(label, style="bold"), style="blue"))

    def code(self, code: str) -> None:
        syntax = Syntax(
            code.rstrip("\n"), "python", theme="ansi_dark", background_color="default",
            word_wrap=True,
        )
        self.out.print(Panel(syntax, title="The code that will run", box=self.box,
                             title_align="left"))

    def program_output(self, lines: Iterable[str]) -> None:
        lines = list(lines)
        if lines:
            self.out.print(Text("Output:", style="bold"))
            for line in lines:
                self.out.print(Text("  " + line))
            self.out.print()

    def values(self, values: dict[str, Value]) -> None:
        if values:
            parts = [f"{name} = {format_value(value)}" for name, value in values.items()]
            self.out.print(Text("Forward values (PyTorch):  " + "    ".join(parts)))

    def reveal(self, rows: Sequence[RevealRow]) -> None:
        table = Table(title="Your predictions against PyTorch", box=self.box,
                      title_justify="left")
        table.add_column("Quantity")
        table.add_column("You predicted", justify="right")
        table.add_column("PyTorch", justify="right")
        table.add_column("By hand (chain rule)", justify="left")
        table.add_column("", justify="left")
        for row in rows:
            mark, style = MARKS[row.correct]
            table.add_row(
                Text(row.label),
                Text(row.predicted),
                Text(format_value(row.actual)),
                Text(f"{format_value(row.by_hand)}  ({row.by_hand_text})", overflow="fold"),
                Text(mark, style=style),
            )
        self.out.print(table)
        for row in rows:
            if row.feedback:
                self.out.print(Text(f"Why {row.label} is not {row.predicted}:", style="red"))
                self.out.print(Markdown(row.feedback))
        self.out.print()

    def summary(self, exercise: Exercise, correct: int, asked: int, next_command: str) -> None:
        score = f"{correct} of {asked} predictions right" if asked else "no predictions scored"
        name = f"Exercise {exercise.number}" if exercise.number > 0 else exercise.title
        lines = Text(f"{name} complete: {score}.\n")
        lines.append(Text(f"Next: {next_command}", style="bold"))
        self.out.print(Panel(lines, box=self.box))

    def progress_table(self, title: str, summaries: Sequence[Summary]) -> Table:
        table = Table(title=title, box=self.box, title_justify="left")
        table.add_column(title.split()[-1].capitalize().rstrip("s"))
        table.add_column("Attempts", justify="right")
        table.add_column("First try right", justify="right")
        table.add_column("Streak", justify="right")
        table.add_column("Misconceptions seen most")
        for summary in summaries:
            accuracy = summary.first_try_accuracy
            first = "-" if accuracy is None else (
                f"{summary.first_try_correct}/{summary.first_tries} ({accuracy:.0%})"
            )
            seen = ", ".join(f"{name} ×{count}" for name, count in summary.misconceptions)
            table.add_row(Text(summary.name), str(summary.attempts), first,
                          str(summary.streak), Text(seen or "-"))
        return table

    def graph(self, renderable: RenderableType) -> None:
        self.out.print(renderable)
        self.out.print()


@dataclass(frozen=True)
class RevealRow:
    """One row of the reveal table (plain data, formatted by UI.reveal)."""

    label: str
    predicted: str
    actual: Value
    by_hand: Value
    by_hand_text: str
    correct: bool | None
    feedback: str
