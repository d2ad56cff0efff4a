"""The review queue: Leitner boxes over a scripted attempt history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from autograd_tutor.engine.model import Attempt
from autograd_tutor.engine.review import INTERVALS, TOP_BOX, ReviewItem, due, schedule

START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def at(offset: timedelta) -> str:
    return (START + offset).isoformat().replace("+00:00", "Z")


def record(time: str, concept: str, correct: bool | None) -> Attempt:
    """A judged practice prediction as the store keeps it (a skip has correct None)."""
    return Attempt(
        id=f"p1.{concept}", prediction=None, actual=None, by_hand=None, correct=correct,
        skipped=correct is None, kind="practice", concept=concept, time=time,
    )


def attempt(offset: timedelta, concept: str, correct: bool | None) -> Attempt:
    return record(at(offset), concept, correct)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def by_concept(items: list[ReviewItem]) -> dict[str, ReviewItem]:
    return {item.concept: item for item in items}


def test_intervals_grow_box_by_box() -> None:
    spans = [INTERVALS[box] for box in range(1, TOP_BOX + 1)]
    assert spans == sorted(spans) and len(set(spans)) == len(spans)
    assert INTERVALS[1] <= timedelta(hours=1)


def test_a_miss_comes_back_soon() -> None:
    history = [attempt(minutes(0), "detach", False)]
    (item,) = schedule(history, START + minutes(1))
    assert (item.concept, item.box) == ("detach", 1)
    assert item.due == START + INTERVALS[1]
    assert not item.is_due and due(history, START + minutes(1)) == []
    assert due(history, START + INTERVALS[1]) == ["detach"]


def test_never_seen_and_never_missed_are_not_due() -> None:
    history = [attempt(days(0), "polynomial", True), attempt(days(0), "zeroing", None)]
    assert schedule(history, START + days(100)) == []
    assert due([], START) == []


def test_consecutive_correct_reviews_move_up_one_box_each() -> None:
    history = [attempt(minutes(0), "chain-rule", False)]
    for box in [*range(2, TOP_BOX + 1), TOP_BOX]:
        (item,) = schedule(history, START)
        history.append(record(item.due.isoformat(), "chain-rule", True))
        (item,) = schedule(history, item.due)
        assert item.box == box
        assert item.due == datetime.fromisoformat(history[-1].time) + INTERVALS[box]


def test_a_correct_answer_before_it_is_due_does_not_promote() -> None:
    history = [
        attempt(minutes(0), "accumulation", False),
        attempt(minutes(1), "accumulation", True),
        attempt(minutes(2), "accumulation", True),
    ]
    item = by_concept(schedule(history, START + minutes(3)))["accumulation"]
    assert (item.box, item.due) == (1, START + INTERVALS[1])


def test_a_miss_sends_a_concept_back_to_box_one() -> None:
    history = [
        attempt(minutes(0), "gd-step", False),
        attempt(minutes(15), "gd-step", True),
        attempt(days(2), "gd-step", True),
        attempt(days(10), "gd-step", False),
    ]
    item = by_concept(schedule(history, START + days(10)))["gd-step"]
    assert (item.box, item.due) == (1, START + days(10) + INTERVALS[1])


def test_skips_neither_promote_nor_demote() -> None:
    history = [attempt(minutes(0), "zeroing", False), attempt(minutes(30), "zeroing", None)]
    item = by_concept(schedule(history, START + minutes(30)))["zeroing"]
    assert (item.box, item.due) == (1, START + INTERVALS[1])


def scripted() -> list[Attempt]:
    """A recent miss, a short streak, a long streak, and a concept never missed."""
    return [
        attempt(minutes(0), "polynomial", True),
        # chain-rule: missed, then right at 15 minutes and at 2 days -> box 3 (3 days).
        attempt(minutes(0), "chain-rule", False),
        attempt(minutes(15), "chain-rule", True),
        attempt(days(2), "chain-rule", True),
        # detach: missed, then right 3 times, each on schedule -> box 4 (7 days).
        attempt(minutes(0), "detach", False),
        attempt(minutes(10), "detach", True),
        attempt(days(1.5), "detach", True),
        attempt(days(4.5), "detach", True),
        # zeroing: right once after a miss, then missed again on day 3.
        attempt(days(1), "zeroing", False),
        attempt(days(1) + minutes(20), "zeroing", True),
        attempt(days(3), "zeroing", False),
    ]


def test_scripted_history_orders_misses_first_and_streaks_later() -> None:
    now = START + days(7)
    items = schedule(scripted(), now)
    assert [(i.concept, i.box) for i in items] == [
        ("zeroing", 1),
        ("chain-rule", 3),
        ("detach", 4),
    ]
    assert due(scripted(), now) == ["zeroing", "chain-rule"]
    overdue = by_concept(items)
    assert overdue["zeroing"].overdue == days(4) - INTERVALS[1]
    assert overdue["chain-rule"].overdue == days(2) and overdue["detach"].overdue < days(0)


def test_most_overdue_comes_first() -> None:
    history = [attempt(days(0), "b-concept", False), attempt(days(1), "a-concept", False)]
    assert due(history, START + days(3)) == ["b-concept", "a-concept"]
    # Equal due times fall back to the name, so the order never depends on the history order.
    tied = [attempt(days(0), "zeta", False), attempt(days(0), "alpha", False)]
    assert due(tied, START + days(1)) == ["alpha", "zeta"]


def test_deterministic_and_independent_of_history_order() -> None:
    now = START + days(7)
    history = scripted()
    assert schedule(history, now) == schedule(history, now)
    assert schedule(list(reversed(history)), now) == schedule(history, now)


def test_times_with_offsets_naive_times_and_junk() -> None:
    history = [
        record("2024-05-01T11:00:00+02:00", "detach", False),
        record("2024-05-01T09:00:00", "zeroing", False),
        record("not a time", "polynomial", False),
        record(at(minutes(0)), "", False),
        record("", "gd-step", False),  # an attempt with no time at all
    ]
    items = by_concept(schedule(history, datetime(2024, 5, 1, 9, 30)))
    assert sorted(items) == ["detach", "zeroing"]
    assert items["detach"].due == items["zeroing"].due == START + INTERVALS[1]
    assert items["detach"].is_due
