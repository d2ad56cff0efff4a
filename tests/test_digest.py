"""The digest of the history: what list, review and next read instead of every row.

It is a cache, never the source: the same answers as the whole history gives, after any
sequence of saves, and rebuilt from the history whenever it is missing, damaged or stale.
Expected statuses come from a plain re-statement of the rule (best finished run, latest
run, abandoned runs change nothing), expected cards from replaying the whole history.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace
from typer.testing import CliRunner

from autograd_tutor.app.progress import runs_of
from autograd_tutor.cli import app
from autograd_tutor.engine import review, stats
from autograd_tutor.engine import store as store_module
from autograd_tutor.engine.digest import Digest
from autograd_tutor.engine.model import Attempt, Completion, History
from autograd_tutor.engine.store import STATE_NAME, Store, statuses

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
KEYS = [("basics", 1), ("basics", 2), ("errors", 1)]
CONCEPTS = ("polynomial", "chain-rule", "zeroing")


def at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def attempt(minute: int, run: str, correct: bool | None, exercise: tuple[str, int] = KEYS[0],
            concept: str = "polynomial", kind: str = "exercise",
            misconception: str | None = None) -> Attempt:
    return Attempt(id="x.grad", prediction=1.0, actual=2.0, by_hand=2.0, correct=correct,
                   skipped=correct is None, pack=exercise[0], exercise=exercise[1], kind=kind,
                   concept=concept, misconception=misconception, time=at(minute), run=run)


def expected_statuses(history: History) -> dict[str, tuple[str, int, int, tuple | None]]:
    """The rule, stated plainly: the best finished run's score (most right, then fewest
    asked); without one, the latest run's; the latest finished run's shown when it differs
    (an abandoned run changes no score shown)."""
    result = {}
    for pack, number in KEYS:
        runs: dict[str, list[int]] = {}
        for a in history.attempts:
            if (a.pack, a.exercise, a.kind) == (pack, number, "exercise"):
                score = runs.setdefault(a.run, [0, 0])
                if a.correct is not None:
                    score[0] += a.correct
                    score[1] += 1
        finished = {c.run for c in history.completed if (c.pack, c.exercise) == (pack, number)}
        done = [tuple(runs[r]) for r in runs if r in finished]
        latest = done[-1] if done else (tuple(runs[list(runs)[-1]]) if runs else None)
        best = max(done, key=lambda s: (s[0], -s[1])) if done else (latest or (0, 0))
        status = "done" if done or finished else "in progress" if runs else "not started"
        result[f"{pack}/{number}"] = (status, best[0], best[1],
                                      latest if latest is not None and latest != best else None)
    return result


def shown(found: dict) -> dict[str, tuple[str, int, int, tuple | None]]:
    return {key: (s.status, s.correct, s.asked, s.latest) for key, s in found.items()}


# A history made of saves: each save is a run's answers (some right, some wrong, some
# skipped), maybe followed by its completion; times move on, sometimes staying on a moment.
saves = st.lists(st.tuples(
    st.sampled_from([*KEYS, None]), st.integers(0, 3), st.sampled_from(CONCEPTS),
    st.lists(st.sampled_from([True, False, None]), min_size=1, max_size=3),
    st.booleans(), st.integers(0, 600)), min_size=1, max_size=12)


def build(tmp_path: Path, plan: list) -> tuple[Store, History]:
    store = Store(tmp_path / "home", warn=lambda message: pytest.fail(message))
    minute = 0
    finished: dict[int, int] = {}  # a session's id is new each time: a finished run is over
    for exercise, run, concept, answers, finish, step in plan:
        minute += step
        name = f"run-{run}-{finished.get(run, 0)}"
        if exercise is None:  # practice: problems of their own, the same ID now and then
            rows = [replace(attempt(minute, name, ok, concept=concept, kind="practice"),
                            pack=None, exercise=None, id=f"p{n % 2}")
                    for n, ok in enumerate(answers)]
            assert store.record(rows)
            assert store.record_check("basics", 4, finish, "train.py")
            continue
        rows = [attempt(minute, name, ok, exercise, concept,
                        misconception=None if ok is not False else "value-not-gradient")
                for ok in answers]
        assert store.record(rows)
        # A fresh store each time, as each command is a run of its own.
        assert Store(store.home, warn=print).digest() is not None
        if finish:
            assert store.complete(exercise[0], exercise[1], name)
            finished[run] = finished.get(run, 0) + 1
    return store, Store(store.home, warn=print).load()


@settings(max_examples=examples(100), deadline=None)
@given(saves)
def test_the_digest_saved_along_gives_what_the_whole_history_gives(tmp_path_factory,
                                                                   plan) -> None:
    store, history = build(tmp_path_factory.mktemp("digest"), plan)
    digest = Store(store.home, warn=print).digest()
    assert shown(statuses(digest, KEYS)) == expected_statuses(history)
    assert shown(statuses(history, KEYS)) == expected_statuses(history)
    for later in (0, 10, 60 * 24 * 30):
        now = START + timedelta(minutes=later + 600 * 12)
        assert digest.schedule(now) == review.schedule(history.attempts, now)
    # What `progress` shows, as stats counts it from every row.
    progress = digest.progress
    assert [t.summary(name) for name, t in sorted(progress.exercises.items())] == \
        stats.by_exercise(history.attempts)
    assert [t.summary(name) for name, t in sorted(progress.concepts.items())] == \
        stats.by_concept(history.attempts)
    runs = runs_of(history)
    assert progress.runs == len(runs) and progress.attempts == len(history.attempts)
    assert [(f"exercise {r.exercise}" if r.pack == "basics" else f"{r.pack}/{r.exercise}",
             r.started.replace("T", " ")[:16], r.right, r.asked, r.finished)
            for r in progress.recent] == runs[-len(progress.recent):]
    assert progress.checks == len(history.checks)
    assert progress.checks_passed == sum(c.passed for c in history.checks)
    assert progress.last_check == (history.checks[-1] if history.checks else None)


def long_history(store: Store, count: int = 300) -> None:
    rows = [attempt(n, f"run-{n // 3}", n % 4 != 0, KEYS[n % 2], CONCEPTS[n % 3])
            for n in range(count)]
    assert store.append([*rows, *(Completion("basics", 1, f"run-{n}", at(3 * n))
                                  for n in range(count // 3))])


def test_list_reads_the_digest_not_the_history(tmp_path, monkeypatch) -> None:
    """Once the digest is there, saves move it on and no command reads every row or
    replays every review again."""
    store = Store(tmp_path, warn=print)
    long_history(store)
    expected = Store(tmp_path, warn=print).digest()
    assert store.record([attempt(10_000, "new", False, KEYS[1], "zeroing")])

    def no_full_read(*_: object) -> None:
        raise AssertionError("the whole history was read")

    monkeypatch.setattr(Store, "load", no_full_read)
    monkeypatch.setattr(review, "_replay_all", no_full_read)
    found = Store(tmp_path, warn=print).digest()
    assert found.exercises != expected.exercises  # moved on by the save
    monkeypatch.undo()
    whole = Store(tmp_path, warn=print).load()
    assert shown(statuses(found, KEYS)) == expected_statuses(whole)
    now = START + timedelta(days=30)
    assert found.schedule(now) == review.schedule(whole.attempts, now)


def test_rows_added_by_another_writer_are_read_from_where_the_digest_ends(tmp_path) -> None:
    store = Store(tmp_path, warn=print)
    long_history(store, 30)
    Store(tmp_path, warn=print).digest()
    # Appended without a digest update (an older autograd-tutor, say).
    row = store_module._line(attempt(5_000, "other", False, KEYS[2], "zeroing"))
    with open(store.path, "a", encoding="utf-8") as file:
        file.write(row)
    found = Store(tmp_path, warn=print).digest()
    whole = Store(tmp_path, warn=print).load()
    assert shown(statuses(found, KEYS)) == expected_statuses(whole)
    assert "zeroing" in [item.concept for item in found.schedule(START + timedelta(days=9))]


@pytest.mark.parametrize("damage", [b"", b"not json", b'{"version": 99}',
                                    b'{"version": 1, "covers": {"size": 1}}',
                                    b'{"version": 1, "deck": {"a": ' + b"[" * 100_000
                                    + b"]" * 100_000 + b"}}"])
def test_a_damaged_or_foreign_state_file_is_rebuilt_and_nothing_is_lost(tmp_path,
                                                                       damage) -> None:
    store = Store(tmp_path, warn=print)
    long_history(store, 30)
    Store(tmp_path, warn=print).digest()
    before = store.path.read_bytes()
    (tmp_path / STATE_NAME).write_bytes(damage)
    found = Store(tmp_path, warn=print).digest()
    whole = Store(tmp_path, warn=print).load()
    assert shown(statuses(found, KEYS)) == expected_statuses(whole)
    assert store.path.read_bytes() == before
    assert Digest.from_bytes((tmp_path / STATE_NAME).read_bytes()).covers.size == len(before)


def test_damaged_cards_in_the_state_file_are_rebuilt(tmp_path) -> None:
    store = Store(tmp_path, warn=print)
    long_history(store, 30)
    Store(tmp_path, warn=print).digest()
    state = json.loads((tmp_path / STATE_NAME).read_bytes())
    for track in state["deck"]["tracks"].values():
        track["grade"] = 99
    (tmp_path / STATE_NAME).write_text(json.dumps(state))
    now = START + timedelta(days=3)
    whole = Store(tmp_path, warn=print).load()
    assert Store(tmp_path, warn=print).digest().schedule(now) == review.schedule(
        whole.attempts, now)


def test_a_reset_or_an_edit_of_the_history_is_seen(tmp_path) -> None:
    store = Store(tmp_path, warn=print)
    long_history(store, 30)
    assert statuses(Store(tmp_path, warn=print).digest(), KEYS)["basics/1"].status == "done"
    assert Store(tmp_path, warn=print).reset("basics", 1)
    assert statuses(Store(tmp_path, warn=print).digest(), KEYS)["basics/1"].status \
        == "not started"
    # A hand edit of the same length: the state names the bytes it was made from.
    data = store.path.read_bytes()
    os.utime(store.path)
    store.path.write_bytes(data.replace(b'"correct": true', b'"correct": fals'))
    found = Store(tmp_path, warn=print).digest()
    assert found.covers.size == 0 or statuses(found, KEYS) == statuses(
        Store(tmp_path, warn=print).load(), KEYS)


def test_answers_saved_with_an_earlier_time_replay_the_cards(tmp_path) -> None:
    store = Store(tmp_path, warn=print)
    assert store.record([attempt(100, "a", False, concept="zeroing")])
    Store(tmp_path, warn=print).digest()
    assert store.record([attempt(50, "b", False, concept="polynomial"),
                         attempt(150, "b", True, concept="zeroing")])
    now = START + timedelta(minutes=200)
    whole = Store(tmp_path, warn=print).load()
    assert Store(tmp_path, warn=print).digest().schedule(now) == review.schedule(
        whole.attempts, now)


# 18.5: list and review say the same about what is due ------------------------------------


def test_list_counts_only_what_review_can_give(tmp_path) -> None:
    """A concept missed that practice has no problem for is not "due" in list: review
    couldn't give it (it names it apart instead)."""
    store = Store(Path(os.environ["AUTOGRAD_TUTOR_HOME"]), warn=print)
    long_ago = datetime.now(UTC) - timedelta(days=2)
    rows = [Attempt(id="x.grad", prediction=1.0, actual=2.0, by_hand=2.0, correct=False,
                    skipped=False, pack="basics", exercise=1, concept=concept,
                    time=long_ago.isoformat(), run="r")
            for concept in ("polynomial", "no-such-practice-concept")]
    assert store.record(rows)
    runner = CliRunner()
    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0, listed.output
    assert "1 review due (polynomial)" in " ".join(listed.output.split())
    assert "no-such-practice-concept" not in listed.output
    reviewed = runner.invoke(app, ["review", "--json", "--count", "1"], input="")
    assert json.loads(reviewed.stdout.splitlines()[-1])["due"] == ["polynomial"] or \
        "Due for review: polynomial" in reviewed.output


def test_list_and_review_agree_when_nothing_review_can_give_is_due() -> None:
    store = Store(Path(os.environ["AUTOGRAD_TUTOR_HOME"]), warn=print)
    long_ago = datetime.now(UTC) - timedelta(days=2)
    assert store.record([Attempt(id="x.grad", prediction=1.0, actual=2.0, by_hand=2.0,
                                 correct=False, skipped=False, pack="basics", exercise=1,
                                 concept="no-such-practice-concept",
                                 time=long_ago.isoformat(), run="r")])
    runner = CliRunner()
    listed = runner.invoke(app, ["list"])
    assert "due" not in listed.output
    reviewed = runner.invoke(app, ["review"])
    assert "Nothing" in reviewed.output
    assert "no-such-practice-concept" in reviewed.output


def test_progress_lists_the_last_runs_and_a_count_and_all_with_all() -> None:
    store = Store(Path(os.environ["AUTOGRAD_TUTOR_HOME"]), warn=print)
    count = 25
    assert store.record([attempt(n, f"run-{n:02}", n % 2 == 0) for n in range(count)])
    runner = CliRunner()
    short = runner.invoke(app, ["progress"])
    assert short.exit_code == 0, short.output
    started = [at(n).replace("T", " ")[:16] for n in range(count)]
    assert f"The last 20 of {count} runs" in short.output
    assert [s for s in started if s in short.output] == started[-20:]
    assert "progress --all" in short.output
    every = runner.invoke(app, ["progress", "--all"])
    assert every.exit_code == 0 and "Every run" in every.output
    assert [s for s in started if s in every.output] == started


def test_list_review_and_progress_read_no_row_once_the_digest_is_there(monkeypatch) -> None:
    store = Store(Path(os.environ["AUTOGRAD_TUTOR_HOME"]), warn=print)
    long_history(store)
    runner = CliRunner()
    before = {args: runner.invoke(app, [args]).output for args in ("list", "progress")}

    def no_full_read(*_: object) -> None:
        raise AssertionError("the whole history was read")

    monkeypatch.setattr(Store, "load", no_full_read)
    monkeypatch.setattr(review, "_replay_all", no_full_read)
    for args in ("list", "progress", "review"):
        result = runner.invoke(app, [args], input="")
        assert "the whole history was read" not in repr(result.exception), args
        if args != "review":
            assert result.exit_code == 0 and result.output == before[args]
