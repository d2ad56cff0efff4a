"""Summaries of the attempt history: per exercise and per concept. Pure functions over rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


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
    return [row for row in rows if not row.get("skipped") and row.get("correct") is not None]


def streak(rows: list[Row]) -> int:
    """Correct answers in a row, counting back from the most recent."""
    count = 0
    for row in reversed(rows):
        if not row.get("correct"):
            break
        count += 1
    return count


def summarise(name: str, rows: list[Row]) -> Summary:
    rows = scored(rows)
    first: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        first.setdefault(_question(row), row)
    seen = Counter(row["misconception"] for row in rows if row.get("misconception"))
    return Summary(
        name=name,
        attempts=len(rows),
        first_try_correct=sum(1 for row in first.values() if row.get("correct")),
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


def by_exercise(rows: list[Row]) -> list[Summary]:
    groups = group(rows, lambda row: _exercise_name(row.get("exercise")))
    return [summarise(name, items) for name, items in sorted(groups.items())]


def by_concept(rows: list[Row]) -> list[Summary]:
    groups = group(rows, lambda row: row.get("concept") or None)
    return [summarise(name, items) for name, items in sorted(groups.items())]


def _question(row: Row) -> tuple[Any, ...]:
    """What counts as the same question: an exercise's prediction ID, or one practice
    problem (generated afresh for every run, so its ID repeats across runs)."""
    if row.get("exercise") in (None, 0):
        return (0, row.get("run"), row.get("id"))
    return (row.get("exercise"), row.get("id"))


def _exercise_name(number: Any) -> str | None:
    if number in (None, 0):
        return "practice"
    return f"exercise {number}"
