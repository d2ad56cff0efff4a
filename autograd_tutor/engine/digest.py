"""What `list`, `review` and `next` need of the history, kept so that they need not read it.

With a long history, reading every row and replaying every review through FSRS took
seconds on every `list`. The digest holds the two things those commands use: each
exercise's runs (their scores, and which were finished) and the review cards (a
`review.Deck`). It is a cache of the history, never its source: the store keeps it in a
small file beside the log (`progress.jsonl.state`), names the part of the log it covers
(the log's length, its inode and a hash of the bytes before that length), moves it on
with every save, and builds it again from the whole log whenever it is missing, damaged,
of another version, or does not match the log (a reset, a hand edit, rows set aside).
`of(history)` is the same digest built from a history in memory: both ways give the same
answers (tests/test_digest.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import Struct, field

from autograd_tutor.engine.model import Attempt, Completion, History

if TYPE_CHECKING:
    from autograd_tutor.engine.review import Deck

VERSION = 1


class ExerciseRuns(Struct):
    """One exercise's runs, as `list` scores them: the best finished run's [right, asked],
    the latest run (the last one started) and its score, the runs not finished (yet), and
    whether any run was finished. A finished run leaves `open` for `best`, so the digest
    stays small however many runs there were. (A session saves its completion after all its
    answers, and a new session has a new id: no answer of a finished run comes later.)"""

    best: list[int] | None = None
    latest: str | None = None
    latest_score: list[int] = field(default_factory=lambda: [0, 0])
    open: dict[str, list[int]] = field(default_factory=dict)
    done: bool = False

    def attempt(self, run: str, correct: bool | None) -> None:
        if run not in self.open:
            if run == self.latest:  # more answers of the latest run, after it finished
                self.open[run] = list(self.latest_score)
            else:
                self.open[run] = [0, 0]
                self.latest, self.latest_score = run, self.open[run]
        score = self.open[run]
        if correct is not None:
            score[1] += 1
            score[0] += correct is True
        if run == self.latest:
            self.latest_score = score

    def finish(self, run: str) -> None:
        self.done = True
        score = self.open.pop(run, None)
        if score is not None and (self.best is None
                                  or (score[0], -score[1]) > (self.best[0], -self.best[1])):
            self.best = list(score)


class Covers(Struct):
    """The part of the log a digest was made from: its first `size` bytes, in the file with
    this inode, ending with bytes of this hash."""

    size: int = 0
    inode: int = 0
    tail: str = ""


class _File(Struct):
    version: int
    covers: Covers
    exercises: dict[str, ExerciseRuns]
    deck: dict[str, Any] | None


def exercise_key(pack: str, number: int) -> str:
    return f"{pack}/{number}"


class Digest:
    def __init__(self) -> None:
        self.covers = Covers()
        self.exercises: dict[str, ExerciseRuns] = {}
        # None until something was missed: a history without a miss has no cards, and
        # `list` then never loads the scheduler.
        self.deck: Deck | None = None

    @classmethod
    def of(cls, history: History, cards: bool = True) -> Digest:
        digest = cls()
        digest.add(history.attempts, history.completed, cards=cards)
        return digest

    def add(self, attempts: Iterable[Attempt], completed: Iterable[Completion] = (),
            cards: bool = True) -> bool:
        """Move on by rows saved after those added so far. False when the cards can't be
        moved on (answers from before the latest review): build the digest afresh then."""
        attempts = list(attempts)
        if cards and (self.deck is not None or any(a.correct is False for a in attempts)):
            from autograd_tutor.engine.review import Deck

            deck = self.deck if self.deck is not None else Deck()
            if not deck.feed(attempts):
                return False
            self.deck = deck
        for attempt in attempts:
            if attempt.kind != "exercise" or attempt.pack is None or attempt.exercise is None:
                continue
            self.runs(attempt.pack, attempt.exercise).attempt(attempt.run, attempt.correct)
        for done in completed:
            self.runs(done.pack, done.exercise).finish(done.run)
        return True

    def runs(self, pack: str, number: int) -> ExerciseRuns:
        return self.exercises.setdefault(exercise_key(pack, number), ExerciseRuns())

    def schedule(self, now: Any) -> list[Any]:
        """The review cards (`review.ReviewItem`), most overdue first; none without a miss."""
        return [] if self.deck is None else self.deck.schedule(now)

    def to_bytes(self) -> bytes:
        deck = None if self.deck is None else self.deck.to_state()
        return msgspec.json.encode(_File(VERSION, self.covers, self.exercises, deck))

    @classmethod
    def from_bytes(cls, data: bytes) -> Digest:
        """The digest written by `to_bytes`; ValueError when `data` is not one of this
        version (a cache: the caller builds it afresh)."""
        try:
            state = msgspec.json.decode(data, type=_File)
        except msgspec.DecodeError as error:
            raise ValueError(str(error)) from None
        if state.version != VERSION:
            raise ValueError("another version")
        digest = cls()
        digest.covers = state.covers
        digest.exercises = state.exercises
        if state.deck is not None:
            from autograd_tutor.engine.review import Deck

            try:
                digest.deck = Deck.from_state(state.deck)
            except Exception as error:  # any damage at all: it is rebuilt from the history
                raise ValueError(f"damaged cards ({type(error).__name__})") from None
        return digest
