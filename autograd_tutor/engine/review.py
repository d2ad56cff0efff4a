"""The review queue: FSRS spaced repetition, as pure functions of the attempt history.

Each concept the learner has missed has one FSRS card (the `fsrs` package: the Free Spaced
Repetition Scheduler, the memory model Anki uses). Nothing about the cards is stored: every
call replays the history in time order through `fsrs.Scheduler.review_card`, with each
attempt's own time as the review time, so the queue cannot drift from the history, and the
same history always gives the same schedule (fuzzing, FSRS's only randomness, is off).

Each judged answer is one review of its concept's card, rated

    wrong                          Again
    right, with hints (hints > 0)  Hard
    right                          Good

Skipped predictions (`correct` None or `skipped`) and ones interrupted before PyTorch judged
them (`judged` False) say nothing about what the learner knows and are ignored. The answers
stamped with the same moment (the predictions of one step) are one review, rated by the
worst of them, so the order of the history list never matters.

A concept enters the queue the first time the learner misses it: its card starts at that
miss, and right answers before it (a concept the learner already knew) are not replayed.
A concept never attempted, or never missed, has no card and is not scheduled. FSRS's
learning steps bring a fresh miss back within minutes (1 minute, then 10; a miss of a card
already in review relearns in 10 minutes), right answers move the card on to intervals of
days that grow with its stability, and every miss brings it back within minutes again.

Why FSRS instead of the Leitner boxes used before: FSRS models each card's memory
(stability: the days until recall falls to 90%; difficulty) and so can say, at any moment,
how likely the learner is to recall a concept (`retrievability`, shown by `progress`), and it
spaces reviews by that estimate rather than by a fixed ladder of five boxes. A right answer
with hints counts for less than a clean one, where Leitner could only say right or wrong.
The package is pure Python (MIT), and a history of Leitner's era replays as it is: a miss
is due again after at most 10 minutes under both schemes.

Misconceptions get cards too, keyed "misconception:NAME" (`misconception_schedule`): one
starts the first time an answer shows the misconception (Again), shows of it again are
Again, and right answers on a concept where it has shown up are Good (Hard with hints).
Other wrong answers do not show it and are not its reviews. `due` lists concepts only: a
concept is what `review` can practise.

Attempts with no concept, or a time that is unreadable or that FSRS cannot schedule from
(for example so close to year 1 or 9999 that the next due date overflows), are ignored
rather than failing the whole queue. A naive time is taken to be UTC.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fsrs import Card, Rating, Scheduler, State

from autograd_tutor.engine.model import Attempt

MISCONCEPTION = "misconception:"

Review = tuple[datetime, Rating]

# FSRS's default parameters and learning steps (1 and 10 minutes, relearning 10 minutes),
# 90% desired retention; no fuzzing, so a history always replays to the same schedule.
SCHEDULER = Scheduler(enable_fuzzing=False)


@dataclass(frozen=True)
class ReviewItem:
    """One scheduled card. `overdue` is now - due: zero or more when due, negative when not.

    `concept` names the card: a concept, or "misconception:NAME" for a misconception's.
    `state` is FSRS's "learning", "review" or "relearning"; `stability` is in days (the
    time for the chance of recall to fall to 90%), `difficulty` from 1 to 10.
    """

    concept: str
    due: datetime
    overdue: timedelta
    state: str
    stability: float
    difficulty: float
    last_review: datetime

    @property
    def is_due(self) -> bool:
        return self.overdue >= timedelta(0)

    def retrievability(self, now: datetime) -> float:
        """The chance, from 0 to 1, that the learner recalls it at `now` (FSRS counts the
        time since the last review in whole days, so it falls day by day)."""
        card = Card(card_id=0, state=State[self.state.capitalize()], stability=self.stability,
                    difficulty=self.difficulty, due=self.due, last_review=self.last_review)
        chance = float(SCHEDULER.get_card_retrievability(card, _utc(now)))
        return min(max(chance, 0.0), 1.0)


def schedule(attempts: Iterable[Attempt], now: datetime) -> list[ReviewItem]:
    """Every concept in the queue, most overdue first (ties by name)."""
    concepts, _ = _cards(attempts)
    return _items(concepts, now)


@dataclass(frozen=True)
class Queue:
    """What `review` can give, the one answer `list` and `review` both show: `due` are the
    concepts due now that practice has problems for, most overdue first; `upcoming` the
    cards of such concepts not due yet, soonest first; `unpractised` the concepts due now
    that practice has no problem for (review can't give them; their exercises can)."""

    due: list[str]
    upcoming: list[ReviewItem]
    unpractised: list[str]


def queue(cards: Iterable[ReviewItem], practicable: Container[str]) -> Queue:
    """The review queue of a schedule (`schedule`, or `Deck.schedule`): only concepts in
    `practicable` (those practice can draw a problem for) are due for review."""
    cards = list(cards)
    return Queue(
        due=[item.concept for item in cards if item.is_due and item.concept in practicable],
        upcoming=[item for item in cards if not item.is_due and item.concept in practicable],
        unpractised=sorted({item.concept for item in cards
                            if item.is_due and item.concept not in practicable}),
    )


class Deck:
    """The cards of a history, kept up to date one save at a time instead of replayed.

    `feed` takes attempts made at or after the latest moment fed so far and moves the
    cards on exactly as `schedule` would replay them, so a history fed in pieces ends with
    the cards of the whole. Each card keeps its state before its latest moment and that
    moment's rating, so answers stamped with the same moment but saved one by one are still
    one review rated by the worst. Attempts from before the latest moment (a clock set
    back, two runs saving at once) are refused (False, nothing changed): their order
    against the reviews already made matters, so the caller replays the whole history into
    a fresh Deck. `to_state`/`from_state` turn it into plain JSON values and back.
    """

    def __init__(self) -> None:
        self.latest: datetime | None = None
        self.tracks: dict[str, _Track] = {}  # concept or "misconception:NAME" -> its track
        self.shown_in: dict[str, set[str]] = {}

    def feed(self, attempts: Iterable[Attempt]) -> bool:
        events = _events(attempts)
        if not events:
            return True
        if self.latest is not None and events[0][0] < self.latest:
            return False
        reviews: dict[str, dict[datetime, Rating]] = {}
        _collect(events, reviews, reviews, self.shown_in)
        for key, moments in reviews.items():
            track = self.tracks.get(key)
            for time, grade in sorted(moments.items()):
                if track is not None and time == track.moment:
                    track.grade = min(track.grade, grade)
                else:
                    track = _Track(track.card() if track else None, time, grade)
            if track is not None:
                self.tracks[key] = track
        self.latest = events[-1][0]
        return True

    def schedule(self, now: datetime) -> list[ReviewItem]:
        """As `schedule` of the history fed."""
        return _items(self._cards(concepts=True), now)

    def misconception_schedule(self, now: datetime) -> list[ReviewItem]:
        """As `misconception_schedule` of the history fed."""
        return _items(self._cards(concepts=False), now)

    def _cards(self, concepts: bool) -> dict[str, Card]:
        cards = {}
        for key, track in self.tracks.items():
            if key.startswith(MISCONCEPTION) != concepts:
                card = track.card()
                if card is not None:
                    cards[key] = card
        return cards

    def to_state(self) -> dict[str, Any]:
        return {
            "latest": self.latest.isoformat() if self.latest else None,
            "tracks": {key: {"before": None if t.before is None else t.before.to_dict(),
                             "moment": t.moment.isoformat(), "grade": int(t.grade)}
                       for key, t in self.tracks.items()},
            "shown_in": {key: sorted(where) for key, where in self.shown_in.items()},
        }

    @classmethod
    def from_state(cls, state: Any) -> Deck:
        """The deck of `to_state`; an exception (ValueError, TypeError, KeyError, ...) when
        `state` isn't one."""
        deck = cls()
        latest = state["latest"]
        deck.latest = None if latest is None else _utc(datetime.fromisoformat(latest))
        for key, track in state["tracks"].items():
            before = track["before"]
            deck.tracks[str(key)] = _Track(None if before is None else _card(before),
                                           _utc(datetime.fromisoformat(track["moment"])),
                                           Rating(track["grade"]))
        deck.shown_in = {str(key): {str(c) for c in where}
                         for key, where in state["shown_in"].items()}
        return deck


@dataclass
class _Track:
    """One card's state before its latest moment, the moment, and its rating there."""

    before: Card | None
    moment: datetime
    grade: Rating

    def card(self) -> Card | None:
        return _replay([(self.moment, self.grade)], self.before)


def due(attempts: Iterable[Attempt], now: datetime) -> list[str]:
    """Concepts due for review at `now`, most overdue first."""
    return [item.concept for item in schedule(attempts, now) if item.is_due]


def misconception_schedule(attempts: Iterable[Attempt], now: datetime) -> list[ReviewItem]:
    """Every misconception seen, keyed "misconception:NAME", most overdue first."""
    _, misconceptions = _cards(attempts)
    return _items(misconceptions, now)


def retrievability(attempts: Iterable[Attempt], now: datetime) -> dict[str, float]:
    """For every concept with a card: the chance (0 to 1) of recalling it at `now`."""
    return {item.concept: item.retrievability(now) for item in schedule(attempts, now)}


def rating(attempt: Attempt) -> Rating | None:
    """The FSRS rating of one attempt, or None when it says nothing (skipped, unjudged)."""
    if attempt.skipped or not attempt.judged or not isinstance(attempt.correct, bool):
        return None
    if not attempt.correct:
        return Rating.Again
    hints = attempt.hints_used
    return Rating.Hard if isinstance(hints, int) and hints > 0 else Rating.Good


def _items(cards: dict[str, Card], now: datetime) -> list[ReviewItem]:
    now = _utc(now)
    items = [_item(name, card, now) for name, card in cards.items()]
    return sorted(items, key=lambda item: (item.due, item.concept))


def _item(name: str, card: Card, now: datetime) -> ReviewItem:
    # Every card here has been reviewed at least once, so FSRS has set all of these.
    assert card.stability is not None and card.difficulty is not None
    assert card.last_review is not None
    return ReviewItem(name, card.due, now - card.due, card.state.name.lower(),
                      float(card.stability), float(card.difficulty), card.last_review)


def _cards(attempts: Iterable[Attempt]) -> tuple[dict[str, Card], dict[str, Card]]:
    """The concept cards and the misconception cards, each replayed from its reviews."""
    concepts: dict[str, dict[datetime, Rating]] = {}
    misconceptions: dict[str, dict[datetime, Rating]] = {}
    _collect(_events(attempts), concepts, misconceptions, {})
    return _replay_all(concepts), _replay_all(misconceptions)


def _collect(events: list[tuple[datetime, Rating, str, str]],
             concepts: dict[str, dict[datetime, Rating]],
             misconceptions: dict[str, dict[datetime, Rating]],
             shown_in: dict[str, set[str]]) -> None:
    """Each card's reviews, from events in time order; `shown_in` (misconception -> the
    concepts it has shown up in) is carried on."""
    for time, grade, concept, misconception in events:
        if concept:
            _add(concepts, concept, time, grade)
        if grade == Rating.Again:
            if misconception:
                _add(misconceptions, MISCONCEPTION + misconception, time, grade)
                shown_in.setdefault(misconception, set()).add(concept)
        elif concept:
            for name, where in shown_in.items():
                if concept in where:
                    _add(misconceptions, MISCONCEPTION + name, time, grade)


def _card(state: Any) -> Card:
    if not isinstance(state, dict):
        raise ValueError("not a card")
    card = Card.from_dict(state)  # type: ignore[arg-type]  # checked below
    if card.stability is None or card.difficulty is None or card.last_review is None:
        raise ValueError("a card never reviewed")
    card.due, card.last_review = _utc(card.due), _utc(card.last_review)
    return card


def _add(reviews: dict[str, dict[datetime, Rating]], key: str, time: datetime,
         grade: Rating) -> None:
    # One review per moment: the worst rating of the answers stamped with it.
    moments = reviews.setdefault(key, {})
    moments[time] = min(moments.get(time, grade), grade)


def _replay_all(reviews: dict[str, dict[datetime, Rating]]) -> dict[str, Card]:
    cards = {}
    for key, moments in reviews.items():
        card = _replay(sorted(moments.items()))
        if card is not None:
            cards[key] = card
    return cards


def _replay(reviews: list[Review], card: Card | None = None) -> Card | None:
    """The card after its reviews, in time order, starting at the first miss (or at `card`,
    the card after earlier reviews); None if never missed."""
    for time, grade in reviews:
        if card is None and grade != Rating.Again:
            continue  # not in the queue until the first miss
        # A fixed card_id and due: Card() would otherwise read the clock (and sleep 1 ms).
        start = card if card is not None else Card(card_id=0, due=time)
        try:
            card, _ = SCHEDULER.review_card(start, grade, review_datetime=time)
        except OverflowError:
            continue  # the next due date is past year 9999: not a time FSRS can schedule from
    return card


def _events(attempts: Iterable[Attempt]) -> list[tuple[datetime, Rating, str, str]]:
    """(time, rating, concept, misconception) of the judged attempts, in time order; at
    equal times misses come first, so the history's order never matters."""
    events = []
    for attempt in attempts:
        grade = rating(attempt)
        time = _parse_time(attempt.time)
        if grade is None or time is None:
            continue
        concept = attempt.concept if isinstance(attempt.concept, str) else ""
        misconception = attempt.misconception if isinstance(attempt.misconception, str) else ""
        if concept or misconception:
            events.append((time, grade, concept, misconception))
    return sorted(events)


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        return None


def _utc(moment: datetime) -> datetime:
    # A naive time in the history or from the caller is taken to be UTC, as written.
    # fsrs requires tzinfo to be timezone.utc itself, which UTC is.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
