"""Each catalogued wrong mental model is recognised, explained, and never matches the truth."""

from __future__ import annotations

import pytest
import torch

from autograd_tutor import exercises
from autograd_tutor.answers import is_close
from autograd_tutor.model import Exercise, Namespace
from autograd_tutor.session import Guess, judge


def run_steps(exercise: Exercise):
    """Yield (prediction, ns) right after each step runs, as the engine does."""
    ns: Namespace = {"torch": torch, "_recorded": {}, "print": lambda *a, **k: None}
    for step in exercise.steps:
        try:
            exec(step.code, ns)
        except RuntimeError:
            assert step.expects_error
        for prediction in step.predictions:
            yield prediction, ns
            ns["_recorded"][prediction.id] = prediction.actual(ns)


CASES = [
    pytest.param(exercise, id=f"exercise{exercise.number}") for exercise in exercises.EXERCISES
]


@pytest.mark.parametrize("exercise", CASES)
def test_at_least_three_misconceptions_per_exercise(exercise: Exercise) -> None:
    assert sum(len(p.misconceptions) for p in exercise.predictions) >= 3


@pytest.mark.parametrize("exercise", CASES)
def test_each_wrong_model_is_recognised_with_its_own_explanation(exercise: Exercise) -> None:
    for prediction, ns in run_steps(exercise):
        actual = prediction.actual(ns)
        for misconception in prediction.misconceptions:
            wrong = misconception.wrong_value(ns)
            assert not is_close(wrong, actual, prediction.tolerance), misconception.name
            outcome = judge(Guess(prediction, wrong, typed=str(wrong)), ns)
            assert outcome.correct is False
            assert outcome.misconception is not None, (prediction.id, misconception.name)
            assert outcome.feedback == outcome.misconception.explanation
            # Distinct models of one prediction give distinct numbers, so the first match is it.
            assert outcome.misconception.name == misconception.name, prediction.id


@pytest.mark.parametrize("exercise", CASES)
def test_a_correct_answer_never_matches_a_misconception(exercise: Exercise) -> None:
    for prediction, ns in run_steps(exercise):
        outcome = judge(Guess(prediction, prediction.actual(ns)), ns)
        assert outcome.correct is True
        assert outcome.misconception is None
        assert outcome.feedback == ""


def test_unmatched_wrong_answer_gets_the_general_explanation() -> None:
    exercise = exercises.get(1)
    prediction, ns = next(run_steps(exercise))
    outcome = judge(Guess(prediction, 1234.5), ns)
    assert outcome.correct is False and outcome.misconception is None
    assert outcome.feedback == prediction.wrong_feedback


def test_zero_is_not_none_in_exercise_5() -> None:
    outcomes = {}
    for prediction, ns in run_steps(exercises.get(5)):
        outcomes[prediction.id] = judge(Guess(prediction, 0.0), ns)
    detached = outcomes["a.grad@detach"]
    assert detached.correct is False
    assert detached.misconception is not None and "None" in detached.feedback


@pytest.mark.parametrize("exercise", CASES)
def test_every_prediction_has_two_or_three_progressive_hints(exercise: Exercise) -> None:
    for prediction in exercise.predictions:
        assert 2 <= len(prediction.hints) <= 3, prediction.id
        assert len(set(prediction.hints)) == len(prediction.hints), prediction.id
