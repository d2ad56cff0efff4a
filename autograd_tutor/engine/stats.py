"""Summaries of the attempt history: per exercise and per concept. Pure functions over rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from autograd_tutor.engine.model import Asked, Attempt

Row = Attempt


@dataclass(frozen=True)
class Summary:
    name: str
    attempts: int
    first_try_correct: int
    first_tries: int
    streak: int
    misconceptions: tuple[tuple[str, int], ...]

    @property
    def first_try_accuracy(self) -> float | None:
        return self.first_try_correct / self.first_tries if self.first_tries else None

    def to_json(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "first_try_accuracy": self.first_try_accuracy,
            "first_tries": self.first_tries,
            "streak": self.streak,
            "misconceptions": dict(self.misconceptions),
        }


def scored(rows: Iterable[Row]) -> list[Row]:
    """Attempts that were judged: skipped ones say nothing about understanding."""
    return [row for row in rows if not row.skipped and row.correct is not None]


def streak(rows: list[Row]) -> int:
    """Correct answers in a row, counting back from the most recent."""
    count = 0
    for row in reversed(rows):
        if not row.correct:
            break
        count += 1
    return count


def summarise(name: str, rows: list[Row]) -> Summary:
    rows = scored(rows)
    first: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        first.setdefault(_question(row), row)
    seen = Counter(row.misconception for row in rows if row.misconception)
    return Summary(
        name=name,
        attempts=len(rows),
        first_try_correct=sum(1 for row in first.values() if row.correct),
        first_tries=len(first),
        streak=streak(rows),
        misconceptions=tuple(seen.most_common(3)),
    )


def group(rows: Iterable[Row], key: Callable[[Row], str | None]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        name = key(row)
        if name:
            groups.setdefault(name, []).append(row)
    return groups


def by_exercise(rows: list[Row], name: Callable[[Row], str] | None = None) -> list[Summary]:
    """One summary per exercise; `name` says how to call one (default: "PACK/N")."""
    groups = group(rows, name or exercise_name)
    return [summarise(name, items) for name, items in sorted(groups.items())]


def by_concept(rows: list[Row]) -> list[Summary]:
    groups = group(rows, lambda row: row.concept or None)
    return [summarise(name, items) for name, items in sorted(groups.items())]


def _question(row: Row) -> tuple[Any, ...]:
    """What counts as the same question: an exercise's prediction ID, or one practice
    problem (generated afresh for every run, so its ID repeats across runs)."""
    if row.exercise is None:
        return (None, row.run, row.id)
    return (row.pack, row.exercise, row.id)


def exercise_name(row: Row) -> str:
    """Where an attempt was made: "errors/2", or its kind ("practice", "review")."""
    if row.exercise is None:
        return str(row.kind if row.kind != Asked.EXERCISE else Asked.PRACTICE)
    return f"{row.pack}/{row.exercise}"
