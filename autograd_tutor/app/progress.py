"""The progress report: per exercise, per concept (with its chance of recall now), the
runs, and the latest `check` of a coding exercise; or the whole history as JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from msgspec import Struct

from autograd_tutor.content import packs
from autograd_tutor.engine.answers import printable
from autograd_tutor.engine.model import Asked, Check, History
from autograd_tutor.engine.store import Store

RUNS_SHOWN = 20  # runs `progress` lists; `--all` lists every one
Run = tuple[str, str, int, int, bool]  # exercise, started, right, asked, finished


def progress_label(name: str) -> str:
    """`progress`'s name for a group of `stats.exercise_name`: "exercise 3" for the basics
    pack's, the name itself for others ("errors/2", "practice")."""
    prefix = f"{packs.DEFAULT_PACK}/"
    return f"exercise {name[len(prefix):]}" if name.startswith(prefix) else name


def unlabelled(label: str) -> str:
    """`progress_label` undone: "exercise 3" is "basics/3" again."""
    number = label.removeprefix("exercise ")
    return f"{packs.DEFAULT_PACK}/{number}" if number != label else label


def progress_name(attempt: Any) -> str:
    """"exercise 3" for the basics pack, "errors/2" for others, else the kind."""
    from autograd_tutor.engine import stats

    return progress_label(stats.exercise_name(attempt))


def exercise_order(found: packs.Installed) -> Callable[[str], tuple[Any, ...]]:
    """A sort key for `stats.exercise_name` names in course order: the packs as installed
    (the built-in ones in the course's order), each pack's exercises by number; practice
    and review after every exercise."""
    rank = {name: index for index, name in enumerate(found.packs)}

    def key(name: str) -> tuple[Any, ...]:
        pack, _, number = name.rpartition("/")
        if not pack or not number.isdigit():
            return (1, 0, name, 0)
        return (0, rank.get(pack, len(rank)), pack, int(number))

    return key


def runs_of(history: History) -> list[Run]:
    """Every run of an exercise, oldest first: (exercise, started, right, asked, finished)."""
    finished = {(c.pack, c.exercise, c.run) for c in history.completed}
    runs: dict[tuple[str | None, int | None, str], list[Any]] = {}
    for attempt in history.attempts:
        if attempt.kind == Asked.EXERCISE:
            runs.setdefault((attempt.pack, attempt.exercise, attempt.run), []).append(attempt)
    table = []
    for (pack, number, run), rows in runs.items():
        asked = [row for row in rows if row.correct is not None]
        table.append((progress_name(rows[0]), rows[0].time.replace("T", " ")[:16],
                      sum(1 for row in asked if row.correct), len(asked),
                      (pack, number, run) in finished))
    return table


class Progress(Struct, frozen=True):
    """What `progress` shows; `empty` when nothing was recorded yet."""

    per_exercise: list[Any]  # stats.Summary, in course order
    per_concept: list[Any]
    recall: dict[str, str]  # concept -> "83%", or "learning" while a miss is recent
    title: Callable[[str], str]  # a misconception's title
    runs: list[Run]
    total_runs: int
    last_check: Check | None
    checks_passed: int
    checks: int

    @property
    def check_line(self) -> str | None:
        """The latest `check` of a coding exercise, in a line; None before the first."""
        last = self.last_check
        if last is None:
            return None
        verdict = "passed" if last.passed else "not passed yet"
        name = str(last.exercise) if last.pack == packs.DEFAULT_PACK else \
            f"{last.pack}/{last.exercise}"
        return (f"check {name}: {verdict} ({printable(str(last.file))}, {last.time}; "
                f"{self.checks_passed} of {self.checks} checks passed)")


def recall_shown(cards: list[Any], now: datetime) -> tuple[dict[str, float], dict[str, str]]:
    """Each concept's chance of recall now, and as the table shows it: still being learnt
    (a recent miss), FSRS's recall counts whole days, so a card missed a minute ago would
    read 100%; the table says "learning" instead."""
    recall = {item.concept: item.retrievability(now) for item in cards}
    shown = {item.concept: "learning" if item.state != "review" else
             f"{recall[item.concept]:.0%}" for item in cards}
    return recall, shown


def progress_report(store: Store, found: packs.Installed, now: datetime,
                    every: bool = False) -> Progress | None:
    """The report, from the digest (a long history is not read row by row; `every` reads
    it for every run); None when nothing was recorded yet."""
    digest = store.digest()
    summary = digest.progress
    if not summary.attempts and not summary.checks:
        return None
    _, shown = recall_shown(digest.schedule(now), now)
    order = exercise_order(found)
    per_exercise = [tally.summary(progress_label(name)) for name, tally
                    in sorted(summary.exercises.items(), key=lambda item: order(item[0]))]
    per_concept = [tally.summary(name) for name, tally in sorted(summary.concepts.items())]
    if every:
        runs = runs_of(store.load())
    else:
        runs = [(progress_label(f"{r.pack}/{r.exercise}"), r.started.replace("T", " ")[:16],
                 r.right, r.asked, r.finished) for r in summary.recent[-RUNS_SHOWN:]]
    return Progress(per_exercise, per_concept, shown, found.catalogue().title, runs,
                    summary.runs, summary.last_check, summary.checks_passed, summary.checks)


def progress_json(store: Store, found: packs.Installed, now: datetime) -> dict[str, Any]:
    """`progress --json`: every attempt, per exercise, per concept, every check."""
    from msgspec.structs import asdict

    from autograd_tutor.engine import stats

    recall, _ = recall_shown(store.digest().schedule(now), now)
    order = exercise_order(found)
    history = store.load()  # every attempt is in the report
    rows = history.attempts
    return {
        "attempts": [a.to_row() for a in rows],
        "exercises": {summary.name: summary.to_json() for summary in sorted(
            stats.by_exercise(rows, progress_name),
            key=lambda summary: order(unlabelled(summary.name)))},
        "concepts": {summary.name: {**summary.to_json(),
                                    "retrievability": recall.get(summary.name)}
                     for summary in stats.by_concept(rows)},
        "checks": [asdict(c) for c in history.checks],
    }
