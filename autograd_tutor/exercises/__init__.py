"""The ordered registry of exercises. Importing it is cheap: no torch, no matplotlib."""

from __future__ import annotations

from autograd_tutor.exercises import (
    ex1_polynomial,
    ex2_backprop,
    ex3_accumulation,
    ex4_training,
    ex5_detach,
)
from autograd_tutor.model import Exercise

EXERCISES: tuple[Exercise, ...] = (
    ex1_polynomial.EXERCISE,
    ex2_backprop.EXERCISE,
    ex3_accumulation.EXERCISE,
    ex4_training.EXERCISE,
    ex5_detach.EXERCISE,
)

TAKEAWAYS = ex5_detach.TAKEAWAYS


def get(number: int) -> Exercise:
    """The exercise with this number; raises KeyError for numbers outside 1..len."""
    for exercise in EXERCISES:
        if exercise.number == number:
            return exercise
    raise KeyError(number)
