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

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import Struct, field

from autograd_tutor.engine.model import Asked, Attempt, Check, Completion, History
from autograd_tutor.engine.stats import Summary, exercise_name

if TYPE_CHECKING:
    from autograd_tutor.engine.review import Deck

VERSION = 1
# The latest runs `progress` can list without the whole history (it shows 20), and the
# practice runs whose questions count as asked before.
RUNS_REMEMBERED = 50


class ExerciseRuns(Struct):
    """One exercise's runs, as `list` scores them: the best finished run's [right, asked],
    the latest finished run's, the latest run (the last one started) and its score, the
    runs not finished (yet), and whether any run was finished. A finished run leaves `open`
    for `best`, so the digest stays small however many runs there were. (A session saves
    its completion after all its answers, and a new session has a new id: no answer of a
    finished run comes later.)"""

    best: list[int] | None = None
    last_done: list[int] | None = None
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
        if score is not None:
            self.last_done = list(score)
        if score is not None and (self.best is None
                                  or (score[0], -score[1]) > (self.best[0], -self.best[1])):
            self.best = list(score)


class Tally(Struct):
    """One row of `progress`'s tables (`stats.Summary`), counted one answer at a time."""

    attempts: int = 0
    first_try_correct: int = 0
    first_tries: int = 0
    streak: int = 0
    misconceptions: dict[str, int] = field(default_factory=dict)  # in order of first sight
    seen: list[str] = field(default_factory=list)  # an exercise's questions answered
    # A practice problem is new in every run: the questions of the latest runs only.
    seen_in_runs: dict[str, list[str]] = field(default_factory=dict)

    def add(self, attempt: Attempt) -> None:
        """As `stats.summarise` counts it: only judged answers."""
        if attempt.skipped or attempt.correct is None:
            return
        self.attempts += 1
        self.streak = self.streak + 1 if attempt.correct else 0
        if attempt.misconception:
            name = attempt.misconception
            self.misconceptions[name] = self.misconceptions.get(name, 0) + 1
        if attempt.exercise is None:
            ids = self.seen_in_runs.setdefault(attempt.run, [])
            if len(self.seen_in_runs) > RUNS_REMEMBERED:
                del self.seen_in_runs[next(iter(self.seen_in_runs))]
            new = attempt.id not in ids
            if new:
                ids.append(attempt.id)
        else:
            question = f"{attempt.pack}/{attempt.exercise}/{attempt.id}"
            new = question not in self.seen
            if new:
                self.seen.append(question)
        if new:
            self.first_tries += 1
            self.first_try_correct += attempt.correct is True

    def summary(self, name: str) -> Summary:
        top = Counter(self.misconceptions).most_common(3)
        return Summary(name, self.attempts, self.first_try_correct, self.first_tries,
                       self.streak, tuple(top))


class RecentRun(Struct, array_like=True):
    """One of the latest runs, as `progress` lists it."""

    pack: str
    exercise: int
    run: str
    started: str
    right: int = 0
    asked: int = 0
    finished: bool = False


class Covers(Struct):
    """The part of the log a digest was made from: its first `size` bytes, in the file with
    this inode, ending with bytes of this hash."""

    size: int = 0
    inode: int = 0
    tail: str = ""


class Progress(Struct):
    """What `progress` shows, kept as the digest moves on: a tally per exercise (named as
    `stats.exercise_name` names it) and per concept, the latest runs and how many there
    were, the number of answers, and the checks."""

    exercises: dict[str, Tally] = field(default_factory=dict)
    concepts: dict[str, Tally] = field(default_factory=dict)
    recent: list[RecentRun] = field(default_factory=list)
    runs: int = 0
    attempts: int = 0
    last_check: Check | None = None
    checks: int = 0
    checks_passed: int = 0


class _File(Struct):
    version: int
    covers: Covers
    exercises: dict[str, ExerciseRuns]
    deck: dict[str, Any] | None
    progress: Progress


def exercise_key(pack: str, number: int) -> str:
    return f"{pack}/{number}"


class Digest:
    def __init__(self) -> None:
        self.covers = Covers()
        self.exercises: dict[str, ExerciseRuns] = {}
        self.progress = Progress()
        # None until something was missed: a history without a miss has no cards, and
        # `list` then never loads the scheduler.
        self.deck: Deck | None = None

    @classmethod
    def of(cls, history: History, cards: bool = True) -> Digest:
        digest = cls()
        digest.add(history.attempts, history.completed, history.checks, cards=cards)
        return digest

    def add(self, attempts: Iterable[Attempt], completed: Iterable[Completion] = (),
            checks: Iterable[Check] = (), cards: bool = True) -> bool:
        """Move on by rows saved after those added so far. False when the cards can't be
        moved on (answers from before the latest review): build the digest afresh then."""
        attempts = list(attempts)
        if cards and (self.deck is not None or any(a.correct is False for a in attempts)):
            from autograd_tutor.engine.review import Deck

            deck = self.deck if self.deck is not None else Deck()
            if not deck.feed(attempts):
                return False
            self.deck = deck
        progress = self.progress
        for attempt in attempts:
            progress.attempts += 1
            group = exercise_name(attempt)
            progress.exercises.setdefault(group, Tally()).add(attempt)
            if attempt.concept:
                progress.concepts.setdefault(attempt.concept, Tally()).add(attempt)
            if attempt.kind != Asked.EXERCISE or attempt.pack is None or attempt.exercise is None:
                continue
            runs = self.runs(attempt.pack, attempt.exercise)
            if attempt.run not in runs.open and attempt.run != runs.latest:  # a new run
                progress.runs += 1
                progress.recent.append(RecentRun(attempt.pack, attempt.exercise, attempt.run,
                                                 attempt.time))
                del progress.recent[:-RUNS_REMEMBERED]
            runs.attempt(attempt.run, attempt.correct)
            for recent in reversed(progress.recent):
                if (recent.pack, recent.exercise, recent.run) == (attempt.pack,
                                                                   attempt.exercise,
                                                                   attempt.run):
                    if attempt.correct is not None:
                        recent.asked += 1
                        recent.right += attempt.correct is True
                    break
        for done in completed:
            self.runs(done.pack, done.exercise).finish(done.run)
            for recent in progress.recent:
                if (recent.pack, recent.exercise, recent.run) == (done.pack, done.exercise,
                                                                  done.run):
                    recent.finished = True
        for check in checks:
            progress.last_check = check
            progress.checks += 1
            progress.checks_passed += check.passed
        return True

    def runs(self, pack: str, number: int) -> ExerciseRuns:
        return self.exercises.setdefault(exercise_key(pack, number), ExerciseRuns())

    def schedule(self, now: Any) -> list[Any]:
        """The review cards (`review.ReviewItem`), most overdue first; none without a miss."""
        return [] if self.deck is None else self.deck.schedule(now)

    def to_bytes(self) -> bytes:
        deck = None if self.deck is None else self.deck.to_state()
        return msgspec.json.encode(_File(VERSION, self.covers, self.exercises, deck,
                                         self.progress))

    @classmethod
    def from_bytes(cls, data: bytes) -> Digest:
        """The digest written by `to_bytes`; ValueError when `data` is not one of this
        version (a cache: the caller builds it afresh)."""
        try:
            state = msgspec.json.decode(data, type=_File)
        except (msgspec.DecodeError, RecursionError) as error:
            raise ValueError(str(error)) from None
        if state.version != VERSION:
            raise ValueError("another version")
        digest = cls()
        digest.covers = state.covers
        digest.exercises = state.exercises
        digest.progress = state.progress
        if state.deck is not None:
            from autograd_tutor.engine.review import Deck

            try:
                digest.deck = Deck.from_state(state.deck)
            except Exception as error:  # any damage at all: it is rebuilt from the history
                raise ValueError(f"damaged cards ({type(error).__name__})") from None
        return digest
