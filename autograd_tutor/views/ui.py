"""Rich rendering: every table, panel and prompt the learner sees. Takes consoles, binds none."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO, cast

from msgspec import Struct
from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from autograd_tutor.engine.answers import format_value, printable
from autograd_tutor.engine.model import Exercise, Pack, Value
from autograd_tutor.views.env import Environment

if TYPE_CHECKING:  # types only: `list` and `--help` need none of these modules' code
    from autograd_tutor.engine.runner import Raised
    from autograd_tutor.engine.stats import Summary
    from autograd_tutor.engine.store import ExerciseStatus

SKIPPED = "(skipped)"  # what the reveal shows as the prediction of a skipped question
MARKS = {True: ("right", "bold green"), False: ("wrong", "bold red"), None: ("skipped", "yellow")}
KEYS_HELP = "? = hint   skip = leave it unscored   q = quit"
# What to type, per kind of prediction: shown before the first question of each kind.
INPUT_HELP = {
    "value": "Type a number (like 2.5, -0.75, 7/4 or 2*3 + 1) or None.\n" + KEYS_HELP,
    "tensor": "Type a number (like 2.5 or 7/4) or None; a tensor of several elements as its "
              "elements: [2, 0, 20] or 2 0 20, a matrix as [[1, 2], [3, 4]].\n" + KEYS_HELP,
    "shape": "Type a shape: (4, 3) or 4x3, (3,) or 3; () for a single number's.\n"
             + KEYS_HELP,
    "flag": "Type True or False (or yes/no, t/f).\n" + KEYS_HELP,
    "dtype": "Type a dtype: float32, float64, int64, bool, ... (torch. is optional).\n"
             + KEYS_HELP,
    "grad_fn": "Type the grad_fn's class name (like MulBackward0), or None.\n" + KEYS_HELP,
    "outcome": "Type what the code does: runs, error or warning.\n" + KEYS_HELP,
    "which": "Type the number of your choice (or its name).\n" + KEYS_HELP,
}


class Trimmed:
    """A pipe or file for rich to write to, each line without the trailing spaces rich pads
    it with to the console's width (a terminal shows none; a log or `diff` would).

    rich writes each print in one piece, so a line's padding and its end come together; a
    prompt, which waits on the same line, keeps its last space."""

    def __init__(self, file: TextIO) -> None:
        self.file = file

    def write(self, text: str) -> int:
        return self.file.write(_PADDING.sub("", text))

    def __getattr__(self, name: str) -> Any:  # flush, fileno, encoding, isatty, ...
        return getattr(self.file, name)


_PADDING = re.compile(r"[ \t]+(?=\r?\n)")


def make_console(env: Environment, file: TextIO, isatty: bool) -> Console:
    """Colour only on a terminal without NO_COLOR; plain ASCII boxes on a dumb terminal;
    no trailing spaces in a pipe or file."""
    return Console(
        file=file if isatty else cast(TextIO, Trimmed(file)),
        force_terminal=isatty and not env.dumb,
        no_color=env.no_color,
        color_system="auto" if isatty and not env.no_color and not env.dumb else None,
        highlight=False,
        emoji=False,
        safe_box=True,
        width=env.width,
    )


def _wait_for_a_line(stdin: TextIO) -> None:
    """Wait for the terminal to have a line, a quarter second at a time. A Ctrl-C the kernel
    hands to another thread (PyTorch loads in one meanwhile) sets Python's flag but does not
    interrupt a blocking read; between waits the main thread sees the flag and stops."""
    import select

    try:
        fd = stdin.fileno()
    except (OSError, ValueError, AttributeError):
        return
    while not select.select([fd], [], [], 0.25)[0]:
        pass


NOT_BY_HAND = ("outcome", "which")  # prediction kinds with no by-hand value
CONTINUED = "↪ "


def fold(lines: Iterable[str], width: int, ascii_only: bool = False) -> list[str]:
    """Code lines cut to `width`, each continuation starting with a marker no Python line
    starts with, so a folded line can't be mistaken for a line of its own."""
    marker = "... " if ascii_only else CONTINUED
    room = max(width, len(marker) + 8)
    folded = []
    for line in lines:
        folded.append(line[:room])
        rest = line[room:]
        while rest:
            folded.append(marker + rest[: room - len(marker)])
            rest = rest[room - len(marker):]
    return folded


def _markdown(text: str) -> RenderableType:
    """rich.markdown pulls in markdown-it (~40 ms): imported on first use, so `list` and
    `--help` never pay for it. A pack's prose is markdown, never a terminal hyperlink: a
    link shows its address."""
    from rich.markdown import Markdown

    return Markdown(text, hyperlinks=False)


class Fitted:
    """A table that never cuts a word or a number to '…' on a narrow terminal.

    When every column fits at its narrowest (each cell's longest word, numbers whole), the
    table is drawn as it is; otherwise each row becomes a small block of `header: value`
    lines, which wrap like prose. Hand-made because rich cannot do it: its column settings
    (`min_width`, `no_wrap`, `overflow`, `ratio`) only choose how a too-narrow table is
    squeezed, folded or cropped, never to stack its rows.
    """

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Measured against a very wide console: a narrow one caps each column's minimum.
        needed = Measurement.get(console, options.update_width(10_000), self.table).minimum
        if needed <= options.max_width:
            yield self.table
            return
        yield from self._stacked()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table).clamp(max_width=options.max_width)

    def _stacked(self) -> Iterable[RenderableType]:
        table = self.table
        if table.title:
            yield _as_text(table.title, str(table.title_style or "table.title"))
        columns = table.columns
        cells = [list(column.cells) for column in columns]
        marker = "#" if _as_text(columns[0].header).plain.strip() == "#" else ""
        for index in range(table.row_count):
            yield Text(marker).append_text(_as_text(cells[0][index], "bold"))
            for column, column_cells in zip(columns[1:], cells[1:], strict=True):
                value = _as_text(column_cells[index])
                if not value.plain.strip():
                    continue
                header = _as_text(column.header).plain.strip()
                line = Text(f"{header}: ", style="dim") if header else Text()
                yield Padding(line.append_text(value), (0, 0, 0, 2))


def _as_text(cell: object, style: str = "") -> Text:
    if isinstance(cell, Text):
        text = cell.copy()
        if style:
            text.stylize(style)
        text.overflow = "fold"
        text.no_wrap = False
        return text
    return Text(str(cell), style=style, overflow="fold")


class UI:
    """The learner-facing output. `out` is stdout, or stderr when stdout carries JSON."""

    last_error = ""  # the last error said: a --json command that fails reports it

    def __init__(self, env: Environment, as_json: bool = False) -> None:
        self.env = env
        self.err = make_console(env, env.stderr, env.stderr_isatty)
        self.out = self.err if as_json else make_console(env, env.stdout, env.stdout_isatty)
        self.box = box.ASCII if env.dumb else box.ROUNDED
        self.rule_line = "-" if env.dumb else "─"

    # Plain messages -------------------------------------------------------------------

    def say(self, message: str | RenderableType = "") -> None:
        self.out.print(Fitted(message) if isinstance(message, Table) else message)

    def text(self, message: str, style: str = "", soft_wrap: bool = False) -> None:
        """`soft_wrap`: one physical line in a log or a pipe (greppable); on a terminal,
        wrapped at spaces by rich, since the terminal itself would break words."""
        console = self.out
        self.out.print(Text(message, style=style),
                       soft_wrap=soft_wrap and not console.is_terminal)

    def warn(self, message: str) -> None:
        # One physical line in a log or a pipe; on a terminal, wrapped at spaces.
        self.err.print(Text(f"warning: {message}", style="yellow"),
                       soft_wrap=not self.err.is_terminal)

    def error(self, message: str) -> None:
        UI.last_error = message
        self.err.print(Text(f"error: {message}", style="bold red"),
                       soft_wrap=not self.err.is_terminal)

    def markdown(self, text: str) -> None:
        if text:
            self.out.print(_markdown(text))
            self.out.print()

    def markdown_lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.out.print(_markdown(line))

    # Prompts --------------------------------------------------------------------------

    def ask(self, prompt: str) -> str:
        """One line of input. Raises EOFError when input ends."""
        self.out.print(Text(prompt, style="bold cyan"), end="")
        # Flushed, or a pipe after stdout (`| tee log`) would hold the prompt back.
        self.out.file.flush()
        try:
            if self.env.stdin_isatty:
                _wait_for_a_line(self.env.stdin)
                return input()
            line = self.env.stdin.readline()
        except (OSError, ValueError):  # stdin closed under us: no more input
            self.out.print()
            raise EOFError from None
        if not line:
            self.out.print()
            raise EOFError
        # Piped input is not echoed by a terminal; echo it so the transcript reads well.
        self.out.print(Text(printable(line.rstrip("\r\n"))))
        return line.rstrip("\r\n")

    # Exercises ------------------------------------------------------------------------

    def exercise_table(
        self, exercises: Sequence[Exercise], statuses: dict[str, ExerciseStatus],
        title: str = "Exercises", prefix: str = "",
    ) -> Table:
        # Text, never markup: a pack's title or level is its author's text ("[/bold]").
        table = Table(title=Text(title), box=self.box,
                      title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("Title")
        table.add_column("Level")
        table.add_column("Status")
        table.add_column("Score", justify="right")
        styles = {"done": "green", "in progress": "yellow", "not started": "dim"}
        for exercise in exercises:
            status = statuses[exercise.key]
            score = f"{status.correct}/{status.asked}" if status.asked else "-"
            if status.latest is not None:
                score += f" (latest {status.latest[0]}/{status.latest[1]})"
            table.add_row(
                prefix + str(exercise.number),
                Text(exercise.title),
                Text(exercise.level),
                Text(status.status, style=styles[status.status]),
                score,
            )
        return table

    def exercise_header(self, exercise: Exercise, numbered: bool = True) -> None:
        if numbered:
            title = Text(f"Exercise {exercise.number}: {exercise.title}  ({exercise.level})")
        else:
            title = Text(exercise.title)
        self.out.print(Panel(title, box=self.box, style="bold"))
        self.markdown(exercise.intro)

    def step_header(self, step_title: str, index: int, total: int) -> None:
        label = f"Step {index}/{total}: {step_title}" if total > 1 else step_title
        title = Text(label, style="bold")
        if title.cell_len + 6 > self.out.width:  # a Rule would cut the title to '…'
            self.out.print(Rule(style="blue", characters=self.rule_line))
            self.out.print(title)
        else:
            self.out.print(Rule(title, style="blue", characters=self.rule_line))

    def code(self, code: str, title: str = "The code that will run",
             mark: int | None = None) -> None:
        body: RenderableType
        lines = code.rstrip("\n").split("\n")
        if mark is not None:
            # The line that raised, marked; plain text, so the marker is never a colour only.
            lines = [("> " if n == mark else "  ") + line for n, line in enumerate(lines, 1)]
        # A code line wider than the box is folded with a marker, never wrapped at a space:
        # a wrapped comment's second half would read like code ("│ .grad too │").
        text = "\n".join(fold(lines, self.out.width - 4, ascii_only=self.env.dumb))
        if mark is not None or self.out.color_system is None:
            # Without colour, highlighting changes nothing but costs Pygments' lexing.
            body = Text(text, no_wrap=True, overflow="crop")
        else:
            from rich.syntax import Syntax  # pygments: only when code is shown in colour

            body = Syntax(text, "python", theme="ansi_dark", background_color="default",
                          word_wrap=False)
        self.out.print(Panel(body, title=title, box=self.box, title_align="left"))

    def numbered_choices(self, choices: Sequence[str]) -> None:
        for number, choice in enumerate(choices, start=1):
            self.out.print(Text(f"  {number}. {choice}"))

    def outcome(self, code: str, error: Raised | None, warned: Sequence[str],
                output: Sequence[str]) -> None:
        """What really happened when the step's code ran, in PyTorch's own words."""
        self.program_output(output)
        for warning in warned:  # warnings come first, also when an error follows them
            self.out.print(Text(f"PyTorch warned: {warning}", style="yellow"),
                           soft_wrap=not self.out.is_terminal)
        if error is not None:
            self.out.print(Text(f"PyTorch raised {error.type}: {error.message}", style="red"),
                           soft_wrap=not self.out.is_terminal)
            if error.line is not None:
                self.code(code, title=f"Line {error.line} raised", mark=error.line)
        elif not warned:
            self.out.print(Text("The code ran: no error, no warning."))
        self.out.print()

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

    def reveal(self, rows: Sequence[RevealRow], explained_after: bool = False) -> None:
        """The predictions against PyTorch, and why each wrong one is wrong. With
        `explained_after` (the step's explanation follows), a wrong prediction of what the
        code does (or which error it raises) gets no paragraph of its own: the explanation,
        next, is about exactly that, and the paragraph would only say it first."""
        table = Table(title="Your predictions against PyTorch", box=self.box,
                      title_justify="left")
        # What the code does, or which error it raises, is not worked out by hand: those
        # rows leave the column empty (and a table of only those has none).
        by_hand = any(row.kind not in NOT_BY_HAND for row in rows)
        table.add_column("Quantity")
        table.add_column("You predicted", justify="right")
        table.add_column("PyTorch", justify="right")
        if by_hand:
            table.add_column("By hand (without autograd)", justify="left")
        table.add_column("", justify="left")
        for row in rows:
            mark, style = MARKS[row.correct]
            predicted = Text(row.predicted)
            if row.marked:  # a tensor: its wrong elements in red
                predicted = Text()
                for piece, wrong in row.marked:
                    predicted.append(piece, style="bold red" if wrong else "")
            if row.correct is None and row.predicted != SKIPPED:
                mark = "not scored"  # which error, after an error predicted where none came
            cells = [Text(row.label), predicted, Text(format_value(row.actual))]
            if by_hand:
                cells.append(Text("") if row.kind in NOT_BY_HAND else Text(
                    f"{format_value(row.by_hand)}  ({row.by_hand_text})" if row.by_hand_text
                    else format_value(row.by_hand), overflow="fold"))
            table.add_row(*cells, Text(mark, style=style))
        self.out.print(Fitted(table))
        for row in rows:
            if row.detail:  # a tensor: what is wrong with it, in words
                self.out.print(Text(f"{row.label}: {row.detail}", style="red"),
                               soft_wrap=not self.out.is_terminal)
        # One explanation per mistake: a named misconception's paragraph; else, when the
        # answer breaks the chain rule with another answer, that sentence, which is about
        # the learner's own numbers; else the prediction's general paragraph. (What the
        # code does is left to the step's explanation, when it has one.) One paragraph
        # once, naming every answer it explains (a shared slip is one lesson).
        explained: dict[str, list[RevealRow]] = {}
        broken: list[str] = []
        for row in rows:
            if row.consistency and not row.named:
                broken.append(row.consistency)
            elif row.feedback and not (explained_after and row.kind in NOT_BY_HAND):
                explained.setdefault(row.feedback, []).append(row)
        for feedback, same in explained.items():
            answers = ", ".join(f"{r.label} is not {r.predicted}" for r in same)
            self.out.print(Text(f"Why {answers}:", style="red"),
                           soft_wrap=not self.out.is_terminal)
            self.out.print(_markdown(feedback))
        if broken and explained:
            self.out.print()
        for sentence in broken:
            self.out.print(Text(sentence, style="yellow"), soft_wrap=not self.out.is_terminal)
        self.out.print()

    def summary(self, name: str, correct: int, asked: int, next_command: str) -> None:
        score = f"{correct} of {asked} predictions right" if asked else "no predictions scored"
        lines = Text(f"{name} complete: {score}.\n")
        lines.append(Text(f"Next: {next_command}", style="bold"))
        self.out.print(Panel(lines, box=self.box))

    def pack_table(self, found: Sequence[Pack]) -> Table:
        table = Table(title="Packs", box=self.box, title_justify="left")
        table.add_column("Name")
        table.add_column("Title")
        table.add_column("Exercises", justify="right")
        table.add_column("Where")
        for pack in found:
            # A folder's name is anyone's: never escape codes.
            where = "built-in" if pack.builtin else printable(str(pack.root), None)
            table.add_row(Text(pack.name), Text(pack.title), str(len(pack.exercises)),
                          Text(where, overflow="fold"))
        return table

    def runs_table(self, runs: Sequence[tuple[str, str, int, int, bool]],
                   total: int | None = None) -> Table:
        """Every run, so no score is ever hidden by a later one; or the last of `total`."""
        title = "Every run" if total is None or total <= len(runs) else \
            f"The last {len(runs)} of {total:,} runs"
        table = Table(title=title, box=self.box, title_justify="left")
        table.add_column("Exercise")
        table.add_column("Started (UTC)")
        table.add_column("Score", justify="right")
        table.add_column("Finished")
        for name, started, right, asked, finished in runs:
            table.add_row(Text(name), started, f"{right}/{asked}" if asked else "-",
                          "yes" if finished else "no")
        return table

    def progress_table(self, title: str, summaries: Sequence[Summary],
                       name_of: Callable[[str], str] = str,
                       recall: Mapping[str, str] | None = None) -> Table:
        table = Table(title=title, box=self.box, title_justify="left")
        table.add_column(title.split()[-1].capitalize().rstrip("s"))
        table.add_column("Attempts", justify="right")
        table.add_column("First try right", justify="right")
        table.add_column("Streak", justify="right")
        table.add_column("Misconceptions seen most")
        if recall is not None:
            table.add_column("Recall", justify="right")
        for summary in summaries:
            accuracy = summary.first_try_accuracy
            first = "-" if accuracy is None else (
                f"{summary.first_try_correct}/{summary.first_tries} ({accuracy:.0%})"
            )
            seen = ", ".join(f"{name_of(name)} ×{count}" for name, count in summary.misconceptions)
            cells: list[RenderableType] = [Text(summary.name), str(summary.attempts), first,
                                           str(summary.streak), Text(seen or "-")]
            if recall is not None:
                cells.append(recall.get(summary.name, "-"))
            table.add_row(*cells)
        return table

    def graph(self, renderable: RenderableType) -> None:
        self.out.print(Fitted(renderable) if isinstance(renderable, Table) else renderable)
        self.out.print()


class RevealRow(Struct, frozen=True):
    """One row of the reveal table (plain data, formatted by UI.reveal)."""

    label: str
    predicted: str
    actual: Value
    by_hand: Value
    by_hand_text: str
    correct: bool | None
    feedback: str
    # A predicted tensor in pieces, each with whether it is a wrong element; and what is
    # wrong with it ("right values, wrong shape: ...").
    marked: tuple[tuple[str, bool], ...] = ()
    detail: str = ""
    consistency: str = ""  # how the answer breaks the chain rule with another answer
    kind: str = "value"  # the prediction's kind: value, outcome or which
    named: bool = False  # `feedback` explains a named misconception
