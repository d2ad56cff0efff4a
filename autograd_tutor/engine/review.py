"""The review queue: spaced repetition with Leitner boxes, as pure functions of the history.

A concept enters the queue the first time the learner misses it; concepts never attempted,
or never missed, are not scheduled. Each concept then sits in one Leitner box, and the box
decides how long until it is due again:

    box 1   10 minutes   (every miss sends the concept back here)
    box 2   1 day
    box 3   3 days
    box 4   7 days
    box 5   14 days      (the top box; further correct answers keep it here)

A correct answer given once the concept is due moves it up one box, so consecutive correct
reviews space it out further and further. A correct answer before it is due (for example
the other predictions of the same exercise, a minute after the miss) leaves it where it is,
as in Leitner's scheme only a scheduled review promotes a card. A skipped prediction
(`correct` is None) says nothing about what the learner knows and is ignored.

Attempts are dicts with at least "time" (ISO 8601, UTC), "concept" and "correct". Attempts
with no concept or an unreadable time are ignored rather than failing the whole queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from autograd_tutor.engine.model import Attempt

INTERVALS: dict[int, timedelta] = {
    1: timedelta(minutes=10),
    2: timedelta(days=1),
    3: timedelta(days=3),
    4: timedelta(days=7),
    5: timedelta(days=14),
}
TOP_BOX = max(INTERVALS)


@dataclass(frozen=True)
class ReviewItem:
    """One scheduled concept. `overdue` is now - due: zero or more when due, negative when not."""

    concept: str
    box: int
    due: datetime
    overdue: timedelta

    @property
    def is_due(self) -> bool:
        return self.overdue >= timedelta(0)


@dataclass(frozen=True)
class _Card:
    box: int
    since: datetime

    @property
    def due(self) -> datetime:
        return self.since + INTERVALS[self.box]


def schedule(attempts: Iterable[Attempt], now: datetime) -> list[ReviewItem]:
    """Every concept in the queue, most overdue first (ties by name)."""
    now = _utc(now)
    items = [
        ReviewItem(concept, card.box, card.due, now - card.due)
        for concept, card in _cards(attempts).items()
    ]
    return sorted(items, key=lambda item: (item.due, item.concept))


def due(attempts: Iterable[Attempt], now: datetime) -> list[str]:
    """Concepts due for review at `now`, most overdue first."""
    return [item.concept for item in schedule(attempts, now) if item.is_due]


def _cards(attempts: Iterable[Attempt]) -> dict[str, _Card]:
    cards: dict[str, _Card] = {}
    for time, concept, correct in _events(attempts):
        card = cards.get(concept)
        if correct is False:
            cards[concept] = _Card(1, time)
        elif correct and card is not None and time >= card.due:
            cards[concept] = _Card(min(card.box + 1, TOP_BOX), time)
    return cards


def _events(attempts: Iterable[Attempt]) -> list[tuple[datetime, str, bool | None]]:
    """(time, concept, correct) in time order; equal times keep the history's order."""
    events = []
    for attempt in attempts:
        concept = attempt.concept
        time = _parse_time(attempt.time)
        if concept and time is not None:
            events.append((time, str(concept), attempt.correct))
    return sorted(events, key=lambda event: event[0])


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _utc(moment: datetime) -> datetime:
    # A naive time in the history or from the caller is taken to be UTC, as written.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
