"""Each catalogued wrong mental model is recognised, explained, and never matches the truth.

The exercises run through the engine's own runner (`engine.runner.Run`), step by step as a
session does; every misconception's expression is read with `Run.value` over what the
step's code left behind, then judged as a learner's guess with `Run.judge`. Every name any
lesson, practice problem or old history uses is declared once, in the catalogue.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from random import Random

import pytest

from autograd_tutor.content.packs import BUILTIN_DIR, builtin, builtin_catalogue
from autograd_tutor.engine import legacy, practice
from autograd_tutor.engine.answers import is_close, parse_outcome
from autograd_tutor.engine.model import Exercise, Misconception, Pack, Prediction, Step, Value
from autograd_tutor.engine.runner import Execution, Guess, Judged, Run, load_helpers

BASICS = builtin()


def builtin_packs() -> list[Pack]:
    """Every pack shipped with the tool (each directory of content/packs with a pack.toml)."""
    names = sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / "pack.toml").is_file())
    return [builtin(name) for name in names]


def start(exercise: Exercise) -> Run:
    return Run(exercise, helpers=load_helpers(BASICS if exercise.pack == BASICS.name else None))


def run_steps(exercise: Exercise) -> Iterator[tuple[Run, Step, Execution]]:
    """(run, step, execution) right after each step's code ran, in order, as a session does.
    The caller judges the step's predictions before the next step runs."""
    run = start(exercise)
    for step in exercise.steps:
        yield run, step, run.execute(step)


def truth(run: Run, prediction: Prediction, execution: Execution) -> Value:
    """PyTorch's answer, read independently of the judging: the outcome the code had, the
    error a "which" question names, or the value of the `actual` expression."""
    if prediction.kind == "outcome":
        if execution.error is not None:
            return "error"
        return "warning" if execution.warnings else "runs"
    if prediction.kind == "which":
        assert execution.error is not None, prediction.id
        return str(run.value(prediction.by_hand))
    return run.value(prediction.actual)


def unscored(prediction: Prediction, execution: Execution) -> bool:
    """A "which error?" where the code raised none: no answer to it is right or wrong."""
    return prediction.kind == "which" and execution.error is None


def wrong_value(run: Run, prediction: Prediction, misconception: Misconception) -> Value:
    """What the wrong model gives: an outcome word, or its expression read over the step."""
    if prediction.kind == "outcome":
        return parse_outcome(misconception.value)
    return run.value(misconception.value)


def judge(run: Run, step: Step, execution: Execution, guess: Guess) -> Judged:
    (judged,) = run.judge(step, [guess], execution)
    return judged


CASES = [
    pytest.param(exercise, id=f"exercise{exercise.number}") for exercise in BASICS.exercises
]


@pytest.mark.parametrize("exercise", CASES)
def test_at_least_three_misconceptions_per_exercise(exercise: Exercise) -> None:
    assert sum(len(p.misconceptions) for p in exercise.predictions) >= 3


@pytest.mark.parametrize("exercise", CASES)
def test_each_wrong_model_is_recognised_with_its_own_explanation(exercise: Exercise) -> None:
    checked = 0
    for run, step, execution in run_steps(exercise):
        for prediction in step.predictions:
            if unscored(prediction, execution):
                continue
            actual = truth(run, prediction, execution)
            for misconception in prediction.misconceptions:
                wrong = wrong_value(run, prediction, misconception)
                assert not is_close(wrong, actual, prediction.tolerance), misconception.name
                outcome = judge(run, step, execution,
                                Guess(prediction, wrong, typed=str(wrong)))
                assert outcome.attempt.correct is False
                assert outcome.misconception is not None, (prediction.id, misconception.name)
                assert outcome.feedback == outcome.misconception.explanation
                # Distinct models of one prediction give distinct numbers, so the first
                # match is it.
                assert outcome.misconception.name == misconception.name, prediction.id
                assert outcome.attempt.misconception == misconception.name
                checked += 1
            # Later steps read this prediction's answer; judge the truth last, as a session.
            judge(run, step, execution, Guess(prediction, actual))
    assert checked == sum(len(p.misconceptions) for p in exercise.predictions)


@pytest.mark.parametrize("exercise", CASES)
def test_a_correct_answer_never_matches_a_misconception(exercise: Exercise) -> None:
    for run, step, execution in run_steps(exercise):
        for prediction in step.predictions:
            if unscored(prediction, execution):
                # Asked only after an error predicted where none came: the outcome judges.
                outcome = judge(run, step, execution, Guess(prediction, prediction.choices[0]))
                assert outcome.attempt.correct is None and not outcome.attempt.skipped
                continue
            actual = truth(run, prediction, execution)
            outcome = judge(run, step, execution, Guess(prediction, actual))
            assert outcome.attempt.correct is True, prediction.id
            assert outcome.attempt.actual == actual
            assert outcome.misconception is None and outcome.attempt.misconception is None
            assert outcome.feedback == ""


def test_unmatched_wrong_answer_gets_the_general_explanation() -> None:
    exercise = BASICS.exercise(1)
    run, step, execution = next(run_steps(exercise))
    prediction = step.predictions[0]
    assert not any(is_close(1234.5, wrong_value(run, prediction, m), prediction.tolerance)
                   for m in prediction.misconceptions)
    outcome = judge(run, step, execution, Guess(prediction, 1234.5))
    assert outcome.attempt.correct is False and outcome.misconception is None
    assert outcome.feedback == prediction.feedback


def test_zero_is_not_none_in_exercise_5() -> None:
    outcomes = {}
    for run, step, execution in run_steps(BASICS.exercise(5)):
        for prediction in step.predictions:
            # 0 for every value; the outcome and "which" questions get their right answers.
            guess = 0.0 if prediction.kind == "value" else truth(run, prediction, execution)
            outcomes[prediction.id] = judge(run, step, execution, Guess(prediction, guess))
    detached = outcomes["a.grad@detach"]
    assert detached.attempt.correct is False
    assert detached.misconception is not None and "None" in detached.feedback
    assert detached.misconception.name == "zero-not-none"


@pytest.mark.parametrize("exercise", BASICS.exercises, ids=lambda e: f"exercise{e.number}")
def test_every_prediction_has_two_or_three_progressive_hints(exercise: Exercise) -> None:
    for prediction in exercise.predictions:
        assert 2 <= len(prediction.hints) <= 3, prediction.id
        assert len(set(prediction.hints)) == len(prediction.hints), prediction.id


# --- one catalogue of names ---------------------------------------------------------------

# Every name a template can give shows in a few draws: the names are the templates' own, and
# a draw leaves one out only where it would coincide with the answer.
PRACTICE_SEEDS = range(6)


def names_in(predictions: list[Prediction]) -> tuple[set[str], set[str]]:
    concepts = {p.concept for p in predictions if p.concept}
    misconceptions = {m.name for p in predictions for m in p.misconceptions}
    return concepts, misconceptions


@cache
def used_in_packs() -> tuple[set[str], set[str]]:
    predictions: list[Prediction] = []
    concepts: set[str] = set()
    for pack in builtin_packs():
        predictions += [p for exercise in pack.exercises for p in exercise.predictions]
        for template in pack.practice:
            concepts.add(template.concept)
            predictions += list(template.step.predictions)
    found_concepts, found_misconceptions = names_in(predictions)
    return concepts | found_concepts, found_misconceptions


@cache  # drawn once a worker for the two tests below
def used_in_practice() -> tuple[set[str], set[str]]:
    templates = [t for pack in builtin_packs() for t in pack.practice]
    helpers = {name: module for pack in builtin_packs()
               for name, module in load_helpers(pack).items()}
    known = list(practice.concepts(templates))
    predictions: list[Prediction] = []
    for seed in PRACTICE_SEEDS:
        for concept in known:
            predictions += list(practice.generate(concept, 4, seed, templates,
                                                  helpers).predictions)
        predictions += list(practice.generate(None, 6, seed, templates, helpers).predictions)
        chosen = list(known)
        Random(seed).shuffle(chosen)
        predictions += list(practice.generate_mix(chosen, seed, templates,
                                                  helpers).predictions)
    concepts, misconceptions = names_in(predictions)
    return concepts | set(known), misconceptions


def legacy_names() -> set[str]:
    """Every name the conversion of an old progress.json can write."""
    names = set(legacy.RENAMED.values())
    rows = [{"exercise": 4, "id": gradient, "concept": "gd-step"}
            for gradient in sorted(legacy.GRADIENT_IDS)]
    rows += [{"exercise": 4, "id": "w@1", "concept": "gd-step"},
             {"exercise": 0, "id": "p1.x.grad", "concept": "chain-rule"},
             {"exercise": 0, "id": "p1.w", "concept": "gd-step"},
             {"exercise": 2, "id": "x.grad", "concept": "chain-rule"}]
    for row in rows:
        renamed = legacy.renamed("sign-flipped", row)
        assert renamed is not None
        names.add(renamed)
    return names


def test_every_name_in_use_is_declared_in_the_catalogue() -> None:
    catalogue = builtin_catalogue()  # with what each built-in pack declares for itself
    for pack in builtin_packs():
        catalogue = catalogue.merged(pack)
    pack_concepts, pack_misconceptions = used_in_packs()
    practice_concepts, practice_misconceptions = used_in_practice()
    assert pack_concepts and pack_misconceptions and practice_misconceptions
    assert pack_concepts | practice_concepts <= set(catalogue.concepts), (
        sorted((pack_concepts | practice_concepts) - set(catalogue.concepts)))
    used = pack_misconceptions | practice_misconceptions | legacy_names()
    assert used <= set(catalogue.misconceptions), sorted(used - set(catalogue.misconceptions))
    # A stored name is always migrated to a declared one.
    assert set(catalogue.renamed.values()) <= set(catalogue.misconceptions)
    # Each declared name has a title and a one-paragraph default explanation.
    for name, (title, explanation) in catalogue.misconceptions.items():
        assert title and explanation, name


def test_no_old_name_is_still_in_use() -> None:
    catalogue = builtin_catalogue()
    _, pack_misconceptions = used_in_packs()
    _, practice_misconceptions = used_in_practice()
    old = set(catalogue.renamed) | set(legacy.RENAMED)
    assert not old & (pack_misconceptions | practice_misconceptions | legacy_names())


def test_no_two_names_in_the_catalogue_are_aliases() -> None:
    catalogue = builtin_catalogue()
    declared = set(catalogue.misconceptions) | set(catalogue.concepts)
    aliases = [(old, new) for old, new in catalogue.renamed.items()
               if old in declared and new in declared and old != new]
    assert aliases == []
    # An old name stands for exactly one current name: no chains of renames.
    assert not set(catalogue.renamed) & set(catalogue.renamed.values())


def test_renamed_names_are_one_table() -> None:
    """The store migrates by legacy.RENAMED and the catalogue reads that same table: the
    catalogue file keeps no second copy to drift from it."""
    import tomllib

    from autograd_tutor.content.packs import CATALOGUE_FILE

    assert "renamed" not in tomllib.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
    assert builtin_catalogue().renamed == legacy.RENAMED
