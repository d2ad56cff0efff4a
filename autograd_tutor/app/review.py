"""The review queue: which missed concepts are due, and the problems that review them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from autograd_tutor.content import packs
from autograd_tutor.engine.digest import Digest
from autograd_tutor.engine.model import Exercise, History

if TYPE_CHECKING:
    from autograd_tutor.app.practice import Warn


def review_queue(cards: list[Any], found: packs.Installed) -> Any:
    """The review queue (`review.queue`): due only what practice has problems for."""
    from autograd_tutor.engine import practice, review

    return review.queue(cards, practice.concepts(found.templates(), found.catalogue().concepts))


def schedule_if_missed(attempts: list[Any], now: datetime) -> list[Any]:
    """The review schedule; empty, without loading the scheduler, when nothing was ever
    missed (a concept's card starts at its first miss)."""
    if not any(attempt.correct is False for attempt in attempts):
        return []
    from autograd_tutor.engine import review

    return review.schedule(attempts, now)


def queue_of(history: History | Digest, found: packs.Installed, now: datetime) -> Any | None:
    """The queue a learner's history gives now; None when no concept was ever missed."""
    cards = (history.schedule(now) if isinstance(history, Digest)
             else schedule_if_missed(history.attempts, now))
    return review_queue(cards, found) if cards else None


class ReviewSet(Struct, frozen=True):
    """The problems of one review: the concepts drawn (`due`), and what runs them."""

    due: list[str]
    problems: Exercise | None  # None: every due concept was a left-out pack's
    helpers: dict[str, Any]
    seed: int

    def to_json(self, session: Any) -> dict[str, Any]:
        from autograd_tutor.app.practice import practice_json

        return {"due": self.due, **practice_json(self.seed)(session)}


def draw_review(due: list[str], found: packs.Installed, seed: int, warn: Warn) -> ReviewSet:
    """Problems for the `due` concepts (one each, mixed) from the installed packs; a pack
    that breaks is left out with a warning, and its concepts with it."""
    from autograd_tutor.app.practice import PracticeSources
    from autograd_tutor.engine import practice

    sources = PracticeSources(warn, found)
    left = practice.concepts(sources.templates, found.catalogue().concepts)
    chosen = [name for name in due if name in left]
    if not chosen:
        return ReviewSet([], None, sources.helpers, seed)
    problems = sources.draw(lambda templates, helpers: practice.generate_mix(
        chosen, seed, templates, helpers))
    return ReviewSet(chosen, problems, sources.helpers, seed)
