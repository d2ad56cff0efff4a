"""The class report: rich tables, and its figure (matplotlib, loaded only for --plot).

Everything shown comes from learners' export files, so every name and answer is passed
through `printable` and drawn as plain Text (no markup, no escape codes).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from autograd_tutor.views.ui import UI, printable

if TYPE_CHECKING:
    from autograd_tutor.app.report import Loaded, Report

# The figure shows at most this many misconceptions (the most common).
PLOT_MISCONCEPTIONS = 15


def _share(right: int, total: int) -> str:
    return f"{right}/{total} ({right / total:.0%})" if total else "-"


def _plain(text: str) -> Text:
    return Text(printable(text))


def warnings(ui: UI, loaded: Loaded) -> None:
    """One line per file that was not read, and per learner handed in more than once."""
    for skipped in loaded.skipped:
        ui.warn(f"skipped {printable(skipped.file)}: {printable(skipped.reason)}")
    for learner, extra in loaded.superseded.items():
        ui.warn(f"learner {printable(learner)} handed in {extra + 1} exports; only the latest "
                "is counted")


def render(ui: UI, report: Report) -> None:
    """The four tables: exercises, predictions, misconceptions, concepts."""
    titles = {m.name: m.title or m.name for m in report.misconceptions}
    ui.text(f"Class report: {report.learners} learner{'s' * (report.learners != 1)}, "
            f"from {report.files - len(report.skipped)} of {report.files} files", "bold")
    if not report.exercises and not report.concepts:
        ui.text("No attempts to report.")
        return

    exercises = Table(title="Per exercise", box=ui.box, title_justify="left")
    for name in ("Exercise", "Started", "Finished", "First try right"):
        exercises.add_column(name, justify="left" if name == "Exercise" else "right")
    for e in report.exercises:
        right = sum(p.first_try_right for p in e.predictions)
        asked = sum(p.learners for p in e.predictions)
        exercises.add_row(_plain(e.key), str(e.started), str(e.finished), _share(right, asked))
    ui.say(exercises)

    predictions = Table(title="Per prediction: first try, and the most common wrong answers",
                        box=ui.box, title_justify="left")
    predictions.add_column("Exercise")
    predictions.add_column("Prediction")
    predictions.add_column("First try right", justify="right")
    predictions.add_column("Wrong answers (learners) and the misconception matched")
    for e in report.exercises:
        for p in e.predictions:
            wrong = "; ".join(
                f"{w.answer} ×{w.learners}"
                + (f" \"{titles.get(w.misconception, w.misconception)}\""
                   if w.misconception else "") for w in p.wrong_answers)
            predictions.add_row(_plain(e.key), _plain(p.id), _share(p.first_try_right,
                                                                     p.learners),
                                _plain(wrong or "-"))
    ui.say(predictions)

    if report.misconceptions:
        misconceptions = Table(title="Misconceptions, by learners who showed them",
                               box=ui.box, title_justify="left")
        misconceptions.add_column("Misconception")
        misconceptions.add_column("Learners", justify="right")
        misconceptions.add_column("Where")
        for m in report.misconceptions:
            name = m.name if not m.title or m.title == m.name else f"{m.title} ({m.name})"
            misconceptions.add_row(_plain(name), f"{m.learners}/{report.learners}",
                                   _plain(", ".join(m.where)))
        ui.say(misconceptions)
    else:
        ui.text("No misconception was matched.")

    if report.concepts:
        concepts = Table(title="Per concept: last attempt right", box=ui.box,
                         title_justify="left")
        concepts.add_column("Concept")
        concepts.add_column("Learners whose last attempt was right", justify="right")
        for c in report.concepts:
            concepts.add_row(_plain(c.name), _share(c.last_right, c.learners))
        ui.say(concepts)


def save_plot(report: Report, path: Path) -> tuple[Path, str]:
    """The misconception histogram and per-exercise accuracy as one PNG at `path`, drawn
    headless and saved by `plots.save` (a link at `path` is replaced, never followed).
    Returns the path and a note when MPLBACKEND named no backend."""
    import matplotlib.style
    from matplotlib.figure import Figure

    from autograd_tutor.views import plots

    with matplotlib.style.context(plots.STYLE):
        figure = Figure(figsize=(12, 4.5))
        figure.subplots_adjust(left=0.22, right=0.97, bottom=0.2, top=0.88, wspace=0.5)
        left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
        _misconception_bars(left, report)
        _accuracy_bars(right, report)
    return plots.save(figure, path), plots.REPLACED_BACKEND


def _misconception_bars(ax: Any, report: Report) -> None:
    shown = report.misconceptions[:PLOT_MISCONCEPTIONS]
    names = [printable(m.title or m.name, 40) for m in reversed(shown)]
    ax.barh(range(len(shown)), [m.learners for m in reversed(shown)], color="#ff6b6b")
    ax.set_yticks(range(len(shown)), names)
    ax.set_xlabel("Learners")
    ax.set_title("Misconceptions shown")
    if not shown:
        ax.text(0.5, 0.5, "none matched", ha="center", va="center", transform=ax.transAxes)
    ax.xaxis.get_major_locator().set_params(integer=True)


def _accuracy_bars(ax: Any, report: Report) -> None:
    rows = [(e.key, e.first_try_accuracy) for e in report.exercises]
    ax.bar(range(len(rows)), [100 * (share or 0.0) for _, share in rows], color="#4a9eff")
    ax.set_xticks(range(len(rows)), [printable(key, 30) for key, _ in rows], rotation=45,
                  ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("First try right (%)")
    ax.set_title("Per-exercise accuracy")
