"""The review queue: FSRS cards replayed from scripted attempt histories.

Expected schedules are never numbers copied from the implementation: the tests check the
properties a queue must have (a miss comes back within minutes, a right answer pushes a
concept later than a wrong one, replaying is deterministic and order-free, ...).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from autograd_tutor.engine.model import Attempt
from autograd_tutor.engine.review import (
    MISCONCEPTION,
    Deck,
    ReviewItem,
    due,
    misconception_schedule,
    queue,
    retrievability,
    schedule,
)

START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
CONCEPTS = ("chain-rule", "detach", "zeroing")


def at(offset: timedelta) -> str:
    return (START + offset).isoformat().replace("+00:00", "Z")


def record(time: str, concept: str, correct: bool | None, *, hints: int = 0,
           misconception: str | None = None, judged: bool = True) -> Attempt:
    """A practice prediction as the store keeps it (a skip has correct None)."""
    return Attempt(
        id=f"p1.{concept}", prediction=None, actual=None, by_hand=None, correct=correct,
        skipped=correct is None, kind="practice", concept=concept, time=time,
        hints_used=hints, misconception=misconception, judged=judged,
    )


def attempt(offset: timedelta, concept: str, correct: bool | None, **extra) -> Attempt:
    return record(at(offset), concept, correct, **extra)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def by_concept(items: list[ReviewItem]) -> dict[str, ReviewItem]:
    return {item.concept: item for item in items}


def only(history: list[Attempt], now: datetime, concept: str = "detach") -> ReviewItem:
    return by_concept(schedule(history, now))[concept]


# The Leitner queue this module replaced, kept here only to say which old-format histories
# it called due: box 1 is 10 minutes, a miss sends a concept back there, and a right answer
# once due moves it up a box (1, 3, 7, 14 days).
LEITNER = (minutes(10), days(1), days(3), days(7), days(14))


def leitner_due(history: list[Attempt], now: datetime) -> list[str]:
    cards: dict[str, tuple[int, datetime]] = {}
    events = sorted((datetime.fromisoformat(a.time), a.concept, a.correct) for a in history)
    for time, concept, correct in events:
        card = cards.get(concept)
        if correct is False:
            cards[concept] = (0, time)
        elif correct and card is not None and time >= card[1] + LEITNER[card[0]]:
            cards[concept] = (min(card[0] + 1, len(LEITNER) - 1), time)
    return sorted(c for c, (box, since) in cards.items() if now >= since + LEITNER[box])


# Histories made up by hypothesis: a few concepts, times within two months, any outcome,
# and for a wrong answer now and then a misconception.
outcomes = st.sampled_from([True, False, None])
events = st.tuples(st.integers(0, 60 * 24 * 60), st.sampled_from(CONCEPTS), outcomes,
                   st.integers(0, 2), st.sampled_from([None, "sign-error", "local-only"]))
histories = st.lists(events, max_size=25).map(
    lambda rows: [attempt(minutes(m), c, ok, hints=h, misconception=None if ok else mis)
                  for m, c, ok, h, mis in rows])
FEW = settings(max_examples=examples(60), deadline=None)


# A miss enters the queue and comes back within minutes -----------------------------------


def test_a_fresh_miss_is_due_within_minutes() -> None:
    history = [attempt(minutes(0), "detach", False)]
    item = only(history, START)
    assert START < item.due <= START + minutes(10)
    assert not item.is_due and due(history, START) == []
    assert due(history, START + minutes(10)) == ["detach"]
    assert item.state == "learning" and item.stability > 0 and 1 <= item.difficulty <= 10


def test_never_attempted_never_missed_or_only_skipped_are_not_scheduled() -> None:
    history = [attempt(days(0), "polynomial", True), attempt(days(0), "zeroing", None),
               attempt(days(1), "polynomial", True, hints=2)]
    assert schedule(history, START + days(100)) == []
    assert retrievability(history, START + days(100)) == {}
    assert due([], START) == [] and schedule([], START) == []


def test_right_answers_before_the_first_miss_are_not_replayed() -> None:
    """The card starts at the first miss: knowing a concept once does not soften a miss."""
    missed = [attempt(days(5), "detach", False)]
    known_first = [attempt(days(0), "detach", True), attempt(days(2), "detach", True), *missed]
    now = START + days(5) + minutes(1)
    assert schedule(known_first, now) == schedule(missed, now)


@FEW
@given(histories, st.integers(10, 60 * 24 * 30))
def test_a_concept_whose_last_answer_was_a_miss_is_due_ten_minutes_on(
        history: list[Attempt], later: int) -> None:
    for concept in CONCEPTS:
        judged = [a for a in history if a.concept == concept and a.correct is not None]
        if not judged:
            continue
        last = max(a.time for a in judged)
        if any(a.correct is False for a in judged if a.time == last):
            now = datetime.fromisoformat(last) + minutes(later)
            assert concept in due(history, now)


# A history from the Leitner days keeps its due concepts ------------------------------------


def test_a_leitner_history_keeps_its_due_concepts() -> None:
    now = START + days(7)
    history = [
        attempt(days(7) - minutes(20), "detach", False),  # missed 20 minutes ago
        attempt(days(0), "zeroing", False),  # missed a week ago, never practised since
        attempt(days(1), "chain-rule", False),  # missed, right at once, then missed again
        attempt(days(1) + minutes(15), "chain-rule", True),
        attempt(days(3), "chain-rule", False),
        attempt(days(0), "polynomial", True),  # never missed
    ]
    old = leitner_due(history, now)
    assert old == ["chain-rule", "detach", "zeroing"]
    assert sorted(due(history, now)) == old
    # A concept missed a month ago, as the CLI's own review test writes it.
    month = [attempt(days(0), "detach", False)]
    assert leitner_due(month, START + days(30)) == due(month, START + days(30)) == ["detach"]


def test_times_with_offsets_naive_times_and_z_are_the_same_moment() -> None:
    forms = ["2024-05-01T11:00:00+02:00", "2024-05-01T09:00:00", "2024-05-01T09:00:00Z",
             "2024-05-01T09:00:00+00:00"]
    now = datetime(2024, 5, 1, 9, 30)  # naive: taken to be UTC, like the history's
    items = [only([record(form, "detach", False)], now) for form in forms]
    assert all(item == items[0] for item in items)
    assert items[0].is_due and items[0].last_review == START
    # The caller's `now` may be in any zone.
    later = now.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    assert only([record(forms[0], "detach", False)], later) == items[0]


# Ratings: wrong = Again, right with hints = Hard, right = Good -----------------------------


def test_a_concept_missed_now_is_due_before_one_answered_right() -> None:
    history = []
    for concept in ("a-right", "b-wrong"):
        history += [attempt(days(0), concept, False), attempt(days(2), concept, True)]
    history += [attempt(days(6), "a-right", True), attempt(days(6), "b-wrong", False)]
    items = schedule(history, START + days(6))
    assert [item.concept for item in items] == ["b-wrong", "a-right"]
    assert items[0].due < items[1].due


@FEW
@given(histories, st.sampled_from(CONCEPTS), st.integers(1, 60 * 24 * 30))
def test_right_moves_the_due_date_later_than_wrong_and_hints_count_for_less(
        history: list[Attempt], concept: str, gap: int) -> None:
    judged = [a for a in history if a.correct is not None]
    last = max((datetime.fromisoformat(a.time) for a in judged), default=START)
    when = last + minutes(gap)
    start = [*history, record(when.isoformat(), concept, False)]  # so the concept has a card

    def after(correct: bool, hints: int = 0) -> datetime:
        then = when + minutes(gap)
        answered = [*start, record(then.isoformat(), concept, correct, hints=hints)]
        return only(answered, then, concept).due

    wrong, hard, good = after(False), after(True, hints=1), after(True)
    assert wrong < hard <= good


def test_a_right_answer_with_hints_comes_back_sooner_than_one_without() -> None:
    miss = [attempt(minutes(0), "detach", False)]
    now = START + minutes(5)
    hinted = only([*miss, attempt(minutes(5), "detach", True, hints=1)], now)
    clean = only([*miss, attempt(minutes(5), "detach", True)], now)
    assert hinted.due < clean.due and hinted.stability < clean.stability


def test_consecutive_right_reviews_space_a_concept_out() -> None:
    history = [attempt(minutes(0), "chain-rule", False)]
    intervals = []
    for _ in range(6):
        item = only(history, START, "chain-rule")
        history.append(record(item.due.isoformat(), "chain-rule", True))  # right once due
        item = only(history, item.due, "chain-rule")
        intervals.append(item.due - item.last_review)
    assert intervals == sorted(intervals) and intervals[-1] > intervals[0]
    assert intervals[-1] > days(14)  # past Leitner's top box
    assert item.state == "review"


def test_a_miss_brings_a_well_known_concept_back_within_minutes() -> None:
    history = [attempt(days(0), "gd-step", False), attempt(days(1), "gd-step", True),
               attempt(days(4), "gd-step", True), attempt(days(20), "gd-step", False)]
    item = only(history, START + days(20), "gd-step")
    assert item.state == "relearning"
    assert START + days(20) < item.due <= START + days(20) + minutes(10)


def test_answers_of_one_moment_are_one_review_rated_by_the_worst() -> None:
    miss = [attempt(days(0), "detach", False)]
    both = [attempt(days(0), "detach", True), *miss, attempt(days(0), "detach", True)]
    assert schedule(both, START + days(1)) == schedule(miss, START + days(1))


# Replay: deterministic, order-free, blind to skips and junk --------------------------------


@FEW
@given(histories, st.integers(0, 60 * 24 * 90), st.randoms(use_true_random=False))
def test_deterministic_and_independent_of_history_order(
        history: list[Attempt], later: int, rng: random.Random) -> None:
    now = START + minutes(later)
    shuffled = list(history)
    rng.shuffle(shuffled)
    assert schedule(history, now) == schedule(history, now) == schedule(shuffled, now)
    assert misconception_schedule(history, now) == misconception_schedule(shuffled, now)
    assert retrievability(history, now) == retrievability(shuffled, now)


@FEW
@given(histories, st.lists(st.tuples(st.integers(0, 60 * 24 * 60), st.sampled_from(CONCEPTS),
                                     st.booleans()), max_size=8))
def test_skipped_and_unjudged_attempts_change_nothing(
        history: list[Attempt], noise: list[tuple[int, str, bool]]) -> None:
    extra = []
    for m, concept, correct in noise:
        extra.append(attempt(minutes(m), concept, None))  # skipped
        extra.append(attempt(minutes(m), concept, correct, judged=False))  # interrupted
    now = START + days(61)
    assert schedule([*history, *extra], now) == schedule(history, now)


JUNK_TIMES = [
    "not a time", "", "2024-13-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    "9999-12-31T23:59:30Z",  # readable, but the next due date would be past year 9999
]


def test_junk_and_unschedulable_times_are_ignored() -> None:
    good = [attempt(minutes(0), "detach", False), attempt(days(1), "detach", True)]
    junk = [record(time, concept, correct) for time in JUNK_TIMES
            for concept in ("detach", "zeroing") for correct in (False, True)]
    junk.append(replace(good[0], time=None))
    now = START + days(3)
    assert schedule([*junk, *good], now) == schedule(good, now)
    assert misconception_schedule(junk, now) == []
    # A card scheduled at the end of time stays there rather than failing the queue.
    late = [record("9999-12-30T00:00:00Z", "zeroing", False),
            record("9999-12-31T12:00:00Z", "zeroing", True)]
    (item,) = schedule(late, now)
    assert item.due.year == 9999 and not item.is_due


@settings(max_examples=examples(80), deadline=None)
@given(st.lists(st.tuples(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                 timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)),
                                            timezone(timedelta(hours=-12))])),
    st.booleans(), st.integers(0, 1)), min_size=1, max_size=6))
def test_no_time_whatever_raises(rows: list[tuple[datetime, bool, int]]) -> None:
    history = [record(time.isoformat(), "detach", correct, hints=hints,
                      misconception="sign-error" if not correct else None)
               for time, correct, hints in rows]
    for now in (datetime(1, 1, 1, tzinfo=UTC), START, datetime(9999, 12, 31, tzinfo=UTC)):
        for item in [*schedule(history, now), *misconception_schedule(history, now)]:
            assert 0.0 <= item.retrievability(now) <= 1.0
        due(history, now)


# Retrievability: the chance of recall now -------------------------------------------------


@FEW
@given(histories)
def test_retrievability_is_a_chance_that_falls_with_time(history: list[Attempt]) -> None:
    history = [attempt(days(0), CONCEPTS[0], False), *history]
    items = schedule(history, START)
    last = max(item.last_review for item in items)
    moments = [last + days(n) for n in (0, 1, 3, 10, 30, 100, 1000)]
    chances = [retrievability(history, moment) for moment in moments]
    assert all(set(chance) == {item.concept for item in items} for chance in chances)
    for concept in chances[0]:
        series = [chance[concept] for chance in chances]
        assert all(0.0 <= value <= 1.0 for value in series)
        assert series == sorted(series, reverse=True)
        assert series[-1] < series[0]


def test_well_learnt_concepts_are_remembered_better_than_fresh_misses() -> None:
    history = [attempt(days(0), "learnt", False)]
    for _ in range(4):
        item = only(history, START, "learnt")
        history.append(record(item.due.isoformat(), "learnt", True))
    review_at = datetime.fromisoformat(history[-1].time)
    history.append(record(review_at.isoformat(), "fresh", False))
    chance = retrievability(history, review_at + days(5))
    assert chance["fresh"] < chance["learnt"]


# Misconceptions: their own cards, never in `due` ------------------------------------------


def test_misconceptions_get_their_own_cards_once_seen() -> None:
    history = [
        attempt(minutes(0), "chain-rule", False, misconception="dropped-downstream"),
        attempt(minutes(0), "detach", False),  # wrong, but no misconception shown
        attempt(days(1), "chain-rule", True),
    ]
    now = START + days(30)
    (card,) = misconception_schedule(history, now)
    assert card.concept == MISCONCEPTION + "dropped-downstream"
    # The right answer on chain-rule reviewed it: the card moved on from the miss.
    assert card.last_review == START + days(1)
    unreviewed = misconception_schedule(history[:2], now)
    assert card.due > unreviewed[0].due and card.is_due
    assert set(due(history, now)) == {"chain-rule", "detach"}
    assert all(not item.concept.startswith(MISCONCEPTION) for item in schedule(history, now))
    assert set(retrievability(history, now)) == {"chain-rule", "detach"}


def test_showing_a_misconception_again_brings_it_back_sooner() -> None:
    seen = [attempt(days(0), "chain-rule", False, misconception="local-only"),
            attempt(days(1), "chain-rule", True)]
    now = START + days(2)
    again = [*seen, attempt(days(2), "chain-rule", False, misconception="local-only")]
    right = [*seen, attempt(days(2), "chain-rule", True)]
    other = [*seen, attempt(days(2), "chain-rule", False, misconception="sign-error")]
    (shown,), (fixed,) = misconception_schedule(again, now), misconception_schedule(right, now)
    assert shown.due < fixed.due
    # A different mistake does not show this misconception, and a right answer on a concept
    # where it never showed up says nothing about it: neither is one of its reviews.
    elsewhere = [*seen, attempt(days(2), "detach", True)]
    mine = by_concept(misconception_schedule(seen, now))[MISCONCEPTION + "local-only"]
    for history in (other, elsewhere):
        assert by_concept(misconception_schedule(history, now))[MISCONCEPTION + "local-only"] \
            == mine


# The deck: the cards kept between runs, fed one save at a time ----------------------------


@FEW
@given(histories, st.lists(st.integers(0, 25), max_size=4), st.integers(0, 60 * 24 * 90))
def test_a_deck_fed_save_by_save_has_the_cards_of_the_whole_history(
        history: list[Attempt], cuts: list[int], later: int) -> None:
    """Fed in time order, in pieces (the saves of a history; the answers of one moment may
    be split between two), through its saved state each time, a deck ends where replaying
    the whole history does."""
    now = START + minutes(later)
    ordered = sorted(history, key=lambda a: a.time)
    deck = Deck()
    bounds = [0, *sorted(cuts), len(ordered)]
    for start, end in zip(bounds, bounds[1:], strict=False):
        deck = Deck.from_state(json.loads(json.dumps(deck.to_state())))
        assert deck.feed(ordered[start:end])
    assert deck.schedule(now) == schedule(history, now)
    assert deck.misconception_schedule(now) == misconception_schedule(history, now)


def test_a_deck_refuses_answers_from_before_what_it_has_seen() -> None:
    deck = Deck()
    assert deck.feed([attempt(days(1), "detach", False)])
    before = deck.to_state()
    assert not deck.feed([attempt(days(0), "zeroing", False)])
    assert deck.to_state() == before  # nothing changed: the caller replays the whole history


def test_the_queue_gives_only_what_practice_can_give() -> None:
    """`list` and `review` both count from it: a due concept without practice problems is
    not due for review, it is named apart."""
    history = [attempt(minutes(0), "detach", False), attempt(minutes(0), "graph-freed", False),
               attempt(minutes(1), "zeroing", False)]
    now = START + days(1)
    cards = schedule(history, now)
    assert {item.concept for item in cards if item.is_due} == {"detach", "graph-freed",
                                                               "zeroing"}
    found = queue(cards, {"detach", "zeroing"})
    assert found.due == [item.concept for item in cards if item.concept != "graph-freed"]
    assert found.unpractised == ["graph-freed"]
    assert found.upcoming == []
    later = queue(schedule(history, START), {"detach", "zeroing"})
    assert later.due == [] and [i.concept for i in later.upcoming] == ["detach", "zeroing"]
