"""Keeping what a session judged: its attempts, stamped with the time and the run, and
the completion of an exercise, saved in the store as they come.

The terminal session (views.session) draws and asks; everything it keeps goes through a
`Recorder`, so no view writes to the store.
"""

from __future__ import annotations

from collections.abc import Iterable

from msgspec import structs

from autograd_tutor.engine.model import Attempt, Exercise
from autograd_tutor.engine.store import Store, now


class Recorder:
    """Saves one learner's attempts; each call says whether the save succeeded."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, attempts: Iterable[Attempt], run: str) -> bool:
        """Saves `attempts` of run `run`, each stamped with the time now."""
        return self.store.record([structs.replace(a, time=now(), run=run) for a in attempts])

    def complete(self, exercise: Exercise, run: str) -> bool:
        """Marks run `run` of `exercise` finished."""
        return self.store.complete(exercise.pack, exercise.number, run)
