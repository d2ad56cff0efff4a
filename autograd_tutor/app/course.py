"""The course: every installed exercise in order, and which one comes next."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from msgspec import Struct

from autograd_tutor.content import packs
from autograd_tutor.engine.digest import Digest
from autograd_tutor.engine.model import Exercise, History, Pack
from autograd_tutor.engine.store import ExerciseStatus, statuses


def all_exercises(found: packs.Installed) -> list[Exercise]:
    return [e for pack in found.packs.values() for e in pack.exercises]


def next_exercise(history: History | Digest, found: packs.Installed,
                  after: Exercise | None = None) -> Exercise | None:
    """The first exercise not done: the basics pack first, then the others in order. `after`
    an exercise, its own pack's next one not done comes first (errors/3 after errors/2)."""
    exercises = all_exercises(found)
    status = statuses(history, [(e.pack, e.number) for e in exercises])
    if after is not None:
        same = [e for e in exercises if e.pack == after.pack]
        exercises = ([e for e in same if e.number > after.number]
                     + [e for e in same if e.number < after.number] + exercises)
    for exercise in exercises:
        if status[exercise.key].status != "done":
            return exercise
    return None


def next_command(history: History | Digest, found: packs.Installed, tool: str,
                 after: Exercise | None = None) -> str:
    """The command to run next (`tool` is how the learner runs this tool), or the line
    that says everything is done."""
    upcoming = next_exercise(history, found, after)
    if upcoming is None:
        return (f"all exercises done. Keep it fresh with '{tool} review', or new problems "
                f"with '{tool} practice'.")
    return f"{tool} exercise {packs.key_text(upcoming)}"


class Overview(Struct, frozen=True):
    """What `list` and the home screen show: the packs asked for with each exercise's
    status, the other packs, and the review queue (None before the first miss)."""

    shown: list[Pack]
    status: dict[str, ExerciseStatus]
    others: list[Pack]
    queue: Any | None


def overview(history: History | Digest, found: packs.Installed, only: str | None,
             now: datetime) -> Overview:
    """The packs (only `only`'s when given) with their statuses, and the review queue:
    what `review` can give, and only that."""
    from autograd_tutor.app.review import queue_of

    shown = [p for p in found.packs.values() if only is None or p.name == only]
    status = statuses(history, [(e.pack, e.number) for p in shown for e in p.exercises])
    others = [p for p in found.packs.values() if p not in shown]
    return Overview(shown, status, others, queue_of(history, found, now))
