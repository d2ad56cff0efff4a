"""The use cases in autograd_tutor.app, called directly: no Typer, no terminal.

Each command's CliRunner test (test_cli.py and the others) keeps checking its parsing and
exit status; what a command decides is checked here, on the records these functions return.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from msgspec import structs

from autograd_tutor.app import course, pack_admin, progress, review
from autograd_tutor.app import practice as app_practice
from autograd_tutor.content import packs
from autograd_tutor.engine import practice
from autograd_tutor.engine.model import Asked, Attempt, Completion, History
from autograd_tutor.engine.store import Store

EXAMPLES = Path(__file__).parent.parent / "examples" / "packs"
TIME = "2026-01-02T03:04:05+00:00"


def attempt(pack: str | None, number: int | None, correct: bool | None, run: str = "r1",
            kind: Asked = Asked.EXERCISE, concept: str = "polynomial",
            misconception: str | None = None) -> Attempt:
    return Attempt(id="x.grad", prediction=1.0, actual=2.0, by_hand=2.0, correct=correct,
                   skipped=correct is None, pack=pack, exercise=number, kind=kind,
                   concept=concept, misconception=misconception, time=TIME, run=run)


def finished(found: packs.Installed, *keys: tuple[str, int]) -> History:
    """A history in which each exercise of `keys` was answered right and finished."""
    history = History()
    for index, (pack, number) in enumerate(keys):
        run = f"r{index}"
        history.attempts.append(attempt(pack, number, True, run=run))
        history.completed.append(Completion(pack, number, run, TIME))
    return history


# Next exercise -------------------------------------------------------------------------


def test_next_is_the_first_exercise_not_done_in_course_order(tutor_env: Path) -> None:
    found = packs.installed(tutor_env)
    first, second = course.all_exercises(found)[:2]
    assert course.next_exercise(History(), found) == first
    assert course.next_exercise(finished(found, (first.pack, first.number)), found) == second


def test_next_after_an_exercise_stays_in_its_pack(tutor_env: Path) -> None:
    found = packs.installed(tutor_env)
    other = next(p for p in found.packs.values() if p.name != packs.DEFAULT_PACK
                 and len(p.exercises) >= 3)
    middle = other.exercises[1]
    upcoming = course.next_exercise(History(), found, after=middle)
    assert upcoming == other.exercises[2]  # not basics/1, which comes first otherwise


def test_next_command_names_the_tool_and_says_when_all_are_done(tutor_env: Path) -> None:
    found = packs.installed(tutor_env)
    first = course.all_exercises(found)[0]
    assert course.next_command(History(), found, "tutor") == \
        f"tutor exercise {packs.key_text(first)}"
    everything = finished(found, *[(e.pack, e.number) for e in course.all_exercises(found)])
    assert course.next_exercise(everything, found) is None
    assert "all exercises done" in course.next_command(everything, found, "tutor")
    assert "'tutor review'" in course.next_command(everything, found, "tutor")


# Progress ------------------------------------------------------------------------------


def test_labels_round_trip_and_sort_in_course_order(tutor_env: Path) -> None:
    found = packs.installed(tutor_env)
    names = [f"{e.pack}/{e.number}" for e in course.all_exercises(found)]
    for name in names:
        assert progress.unlabelled(progress.progress_label(name)) == name
    assert progress.progress_label(f"{packs.DEFAULT_PACK}/3") == "exercise 3"
    shuffled = ["practice", *reversed(names)]
    assert sorted(shuffled, key=progress.exercise_order(found)) == [*names, "practice"]


def test_runs_of_counts_each_run_and_whether_it_finished() -> None:
    history = History(attempts=[attempt("errors", 2, True, run="a"),
                                attempt("errors", 2, False, run="a"),
                                attempt("errors", 2, None, run="b"),
                                attempt(None, None, True, run="c", kind=Asked.PRACTICE)],
                      completed=[Completion("errors", 2, "a", TIME)])
    assert progress.runs_of(history) == [("errors/2", "2026-01-02 03:04", 1, 2, True),
                                         ("errors/2", "2026-01-02 03:04", 0, 0, False)]


def test_progress_report_from_the_store(tutor_env: Path) -> None:
    found = packs.installed(tutor_env)
    store = Store(tutor_env, warn=print)
    now = datetime.now(UTC)
    assert progress.progress_report(store, found, now) is None
    assert store.record([attempt(packs.DEFAULT_PACK, 1, False, misconception=None),
                         attempt(packs.DEFAULT_PACK, 1, True)])
    report = progress.progress_report(store, found, now)
    assert report is not None
    assert [s.name for s in report.per_exercise] == ["exercise 1"]
    assert [s.name for s in report.per_concept] == ["polynomial"]
    assert report.recall == {"polynomial": "learning"}  # missed a moment ago
    assert report.total_runs == 1 and report.check_line is None
    assert [run[0] for run in report.runs] == ["exercise 1"]
    data = progress.progress_json(store, found, now)
    assert len(data["attempts"]) == 2 and list(data["exercises"]) == ["exercise 1"]


# Review --------------------------------------------------------------------------------


def test_review_queue_starts_at_the_first_miss(tutor_env: Path) -> None:
    found = packs.installed(tutor_env)
    now = datetime.now(UTC)
    right = History(attempts=[attempt(packs.DEFAULT_PACK, 1, True)])
    assert review.schedule_if_missed(right.attempts, now) == []
    assert review.queue_of(right, found, now) is None
    long_ago = History(attempts=[attempt(packs.DEFAULT_PACK, 1, False)])
    queue = review.queue_of(long_ago, found, now)
    assert queue is not None and queue.due == ["polynomial"] and queue.upcoming == []
    fresh = History(attempts=[structs.replace(attempt(packs.DEFAULT_PACK, 1, False),
                                              time=now.isoformat(timespec="seconds"))])
    queue = review.queue_of(fresh, found, now)
    assert queue is not None and queue.due == []  # a fresh miss is due later, not now
    assert [item.concept for item in queue.upcoming] == ["polynomial"]


def test_a_review_draws_one_problem_per_due_concept(tutor_env: Path) -> None:
    found = packs.installed(tutor_env)
    drawn = review.draw_review(["polynomial", "chain-rule"], found, 7, print)
    sources = app_practice.PracticeSources(print, found)
    expected = practice.generate_mix(["polynomial", "chain-rule"], 7, sources.templates,
                                     sources.helpers)
    assert drawn.due == ["polynomial", "chain-rule"] and drawn.problems == expected


# Practice ------------------------------------------------------------------------------


def test_practice_with_a_seed_is_the_engine_s_problems(tutor_env: Path) -> None:
    found = packs.installed(tutor_env)
    drawn = app_practice.draw_practice(found, "polynomial", 2, 11, print)
    sources = app_practice.PracticeSources(print, found)
    assert drawn.seed == 11
    assert drawn.problems == practice.generate("polynomial", 2, 11, sources.templates,
                                               sources.helpers)


def test_practice_of_an_unknown_concept_says_what_exists(tutor_env: Path) -> None:
    found = packs.installed(tutor_env)
    with pytest.raises(app_practice.NoPractice, match="is not a concept; choose one of"):
        app_practice.draw_practice(found, "no-such-concept", 1, 1, print)
    practised = app_practice.concept_titles(found)
    taught = {c for e in course.all_exercises(found) for c in e.concepts}
    unpractised = sorted(taught - set(practised))
    if unpractised:  # a concept taught by an exercise but with no template yet
        message = app_practice.no_practice(unpractised[0], practised, found)
        assert "has no practice problems yet; it is taught in exercise" in message


# Packs ---------------------------------------------------------------------------------


def test_pack_add_copies_a_pack_once_and_refuses_clashes(tutor_env: Path,
                                                          tmp_path: Path) -> None:
    source = EXAMPLES / "two-paths"
    added = pack_admin.add_pack(source, "two-paths", tutor_env, force=False)
    assert added.target == tutor_env / "packs" / "two-paths"
    assert (added.target / "pack.toml").is_file()
    packs.forget()
    rows = pack_admin.pack_rows(packs.installed(tutor_env))
    assert {"name": "two-paths", "builtin": False}.items() <= next(
        row for row in rows if row["name"] == "two-paths").items()
    with pytest.raises(pack_admin.NotAdded, match="already added; add --force"):
        pack_admin.add_pack(source, "two-paths", tutor_env, force=False)
    assert pack_admin.add_pack(source, "two-paths", tutor_env, force=True).target == \
        added.target
    with pytest.raises(pack_admin.NotAdded, match="is a built-in pack's name"):
        pack_admin.add_pack(source, packs.DEFAULT_PACK, tutor_env, force=True)


def test_only_a_pack_from_outside_needs_consent_to_run(tmp_path: Path) -> None:
    builtin = packs.BUILTIN_DIR / packs.DEFAULT_PACK
    assert not pack_admin.runs_code(builtin)
    assert not pack_admin.runs_code(tmp_path)  # no pack.toml: nothing would run
    copy = tmp_path / "two-paths"
    shutil.copytree(EXAMPLES / "two-paths", copy)
    assert pack_admin.runs_code(copy)
