"""Practice: fresh problems drawn from every installed pack's templates, pack by pack
isolated, and the problem aimed at a missed attempt."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from msgspec import Struct

from autograd_tutor.app.course import all_exercises
from autograd_tutor.content import packs
from autograd_tutor.engine.answers import printable
from autograd_tutor.engine.model import Exercise

Warn = Callable[[str], None]


class PracticeSources:
    """The practice templates of every installed pack, and the helpers they may call.
    Packs are isolated: a pack whose helpers.py fails, or whose template's code breaks out
    of its bounds, is left out with a one-line warning naming it; the others, and the
    built-in concepts, go on."""

    def __init__(self, warn: Warn, found: packs.Installed) -> None:
        from autograd_tutor.engine.runner import LessonError, load_helpers

        self.warn = warn
        self.helpers: dict[str, Any] = {}
        broken = set()
        for pack in found.packs.values():
            if not pack.practice:
                continue
            try:
                self.helpers.update(load_helpers(pack))
            except LessonError as error:
                broken.add(pack.name)
                self.leave_out(pack.name, error)
        self.templates = [t for t in found.templates() if t.pack not in broken]

    def leave_out(self, name: str, error: Exception) -> None:
        self.warn(f"pack {name!r} is left out of practice: {error}")

    def draw(self, make: Callable[[list[Any], dict[str, Any]], Any]) -> Any:
        """make(templates, helpers), again without a pack whose template broke out."""
        from autograd_tutor.engine.runner import PackCodeError

        while True:
            try:
                return make(self.templates, self.helpers)
            except PackCodeError as error:
                if not any(t.pack == error.pack for t in self.templates):
                    raise
                self.leave_out(error.pack, error)
                self.templates = [t for t in self.templates if t.pack != error.pack]


def random_seed() -> int:
    return int.from_bytes(os.urandom(3), "big")


def concept_titles(found: packs.Installed) -> dict[str, str]:
    """Every concept practice has problems for, with its title (`practice --list`)."""
    from autograd_tutor.engine import practice

    return practice.concepts(found.templates(), found.catalogue().concepts)


class NoPractice(ValueError):
    """`practice --concept NAME` names nothing practice can draw; the message says why."""


class PracticeSet(Struct, frozen=True):
    """Generated problems, the seed that repeats them, and the helpers they call."""

    problems: Exercise
    seed: int
    helpers: dict[str, Any]

    def to_json(self, session: Any) -> dict[str, Any]:
        return practice_json(self.seed)(session)


def draw_practice(found: packs.Installed, concept: str | None, count: int,
                  seed: int | None, warn: Warn) -> PracticeSet:
    """`count` fresh problems (of `concept`, or of every concept), or NoPractice."""
    from autograd_tutor.engine import practice

    sources = PracticeSources(warn, found)
    concepts = practice.concepts(sources.templates, found.catalogue().concepts)
    if concept is not None and concept not in concepts:
        raise NoPractice(no_practice(concept, concepts, found))
    seed = seed if seed is not None else random_seed()
    problems = sources.draw(lambda templates, helpers: practice.generate(
        concept, count, seed, templates, helpers))
    return PracticeSet(problems, seed, sources.helpers)


def no_practice(concept: str, practised: dict[str, str], found: packs.Installed) -> str:
    """Why `practice --concept` can't draw problems: no such concept, or (one `progress`
    lists) a concept that no practice template covers yet, with where it is taught."""
    names = ", ".join(practised)
    if concept not in found.catalogue().concepts:
        return f"{printable(concept)!r} is not a concept; choose one of: {names}"
    taught = [packs.key_text(e) for e in all_exercises(found) if concept in e.concepts]
    where = (f"; it is taught in exercise{'s' * (len(taught) > 1)} {', '.join(taught)}"
             if taught else "")
    return f"{concept!r} has no practice problems yet{where}. Concepts that have: {names}"


def practice_json(seed: int) -> Callable[[Any], dict[str, Any]]:
    """The --json object of a practice (or review) session: its seed and each item."""
    def build(session: Any) -> dict[str, Any]:
        steps = {p.id: step for step in session.exercise.steps for p in step.predictions}
        items = []
        for attempt in session.attempts:
            step = steps[attempt.id]
            items.append({"concept": attempt.concept, "question": step.setup,
                          "code": step.code, **attempt.to_json()})
        return {"seed": seed, "completed": session.completed, "items": items}

    return build


def aimed_problems(warn: Warn, home: Path
                   ) -> Callable[..., Any]:
    """Draws the retry problem for a missed attempt, from every installed pack's templates
    and parameterised steps (of the packs whose code works); None when none is aimed at
    its misconception."""
    from autograd_tutor.engine import practice

    sources: list[PracticeSources] = []

    def draw(attempt: Any, earlier: tuple[str, ...], later: tuple[str, ...],
             later_names: frozenset[str] = frozenset()) -> Any:
        if not sources:
            sources.append(PracticeSources(warn, packs.installed(home)))
        return sources[0].draw(lambda templates, helpers: practice.aimed(
            attempt.concept, attempt.misconception, random_seed(), templates, helpers,
            later=later, earlier=earlier, later_names=later_names))

    return draw
