"""The course: every installed exercise in order, and which one comes next."""

from __future__ import annotations

from autograd_tutor.content import packs
from autograd_tutor.engine.digest import Digest
from autograd_tutor.engine.model import Exercise, History
from autograd_tutor.engine.store import statuses


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
