"""`report`: what a class got wrong, from the exports its learners hand in.

Pure counting over `Export` documents: no terminal, no torch. Each learner counts once, by
learner ID, from their latest export. Answers are judged as they were when the learner
gave them (the export keeps `correct` and the misconception matched).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from autograd_tutor.app.export import Export, ExportedAttempt, ExportError, read_export
from autograd_tutor.engine.answers import format_value
from autograd_tutor.engine.model import Asked

# How many wrong answers each prediction lists.
TOP_WRONG = 5


class Skipped(Struct, frozen=True):
    file: str
    reason: str


class Loaded(Struct):
    """The exports that were read, one per learner (the latest), and the files skipped."""

    exports: list[Export] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: int = 0
    # learner -> how many of their exports were set aside for a later one
    superseded: dict[str, int] = field(default_factory=dict)


class WrongAnswer(Struct, frozen=True):
    answer: str
    learners: int
    misconception: str | None


class PredictionStats(Struct, frozen=True):
    id: str
    learners: int  # learners with a first judged try
    first_try_right: int
    wrong_answers: list[WrongAnswer]

    @property
    def first_try_accuracy(self) -> float | None:
        return self.first_try_right / self.learners if self.learners else None


class ExerciseStats(Struct, frozen=True):
    pack: str
    exercise: int
    started: int
    finished: int
    predictions: list[PredictionStats]

    @property
    def key(self) -> str:
        return f"{self.pack}/{self.exercise}"

    @property
    def first_try_accuracy(self) -> float | None:
        asked = sum(p.learners for p in self.predictions)
        return sum(p.first_try_right for p in self.predictions) / asked if asked else None


class MisconceptionStats(Struct, frozen=True):
    name: str
    learners: int
    where: list[str]  # "pack/N ID" where it was shown, most learners first
    title: str = ""  # the catalogue's short name, when an installed pack declares it


class ConceptStats(Struct, frozen=True):
    name: str
    learners: int
    last_right: int

    @property
    def share(self) -> float | None:
        return self.last_right / self.learners if self.learners else None


class Report(Struct, frozen=True):
    learners: int
    files: int
    skipped: list[Skipped]
    exercises: list[ExerciseStats]
    misconceptions: list[MisconceptionStats]
    concepts: list[ConceptStats]

    def to_json(self) -> dict[str, Any]:
        return {
            "learners": self.learners,
            "files": self.files,
            "skipped": [{"file": s.file, "reason": s.reason} for s in self.skipped],
            "exercises": [{
                "pack": e.pack, "exercise": e.exercise, "started": e.started,
                "finished": e.finished, "first_try_accuracy": e.first_try_accuracy,
                "predictions": [{
                    "id": p.id, "learners": p.learners, "first_try_right": p.first_try_right,
                    "first_try_accuracy": p.first_try_accuracy,
                    "wrong_answers": [{"answer": w.answer, "learners": w.learners,
                                       "misconception": w.misconception}
                                      for w in p.wrong_answers],
                } for p in e.predictions],
            } for e in self.exercises],
            "misconceptions": [{"name": m.name, "title": m.title or m.name,
                                "learners": m.learners, "where": m.where}
                               for m in self.misconceptions],
            "concepts": [{"name": c.name, "learners": c.learners, "last_right": c.last_right,
                          "share": c.share} for c in self.concepts],
        }


# Reading ---------------------------------------------------------------------------------


def export_files(paths: Iterable[Path]) -> list[Path]:
    """Each path, or the *.json files directly inside each directory, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            try:
                files.extend(sorted(p for p in path.iterdir()
                                    if p.suffix == ".json" and not p.is_dir()))
            except OSError:
                files.append(path)  # read_export says why it could not be read
        else:
            files.append(path)
    return list(dict.fromkeys(files))


def load(paths: Iterable[Path]) -> Loaded:
    """Every readable export; the latest one of each learner (a later file wins a tie)."""
    loaded = Loaded()
    latest: dict[str, Export] = {}
    for path in export_files(paths):
        loaded.files += 1
        try:
            export = read_export(path)
        except ExportError as error:
            loaded.skipped.append(Skipped(str(path), str(error)))
            continue
        before = latest.get(export.learner)
        if before is not None:
            loaded.superseded[export.learner] = loaded.superseded.get(export.learner, 0) + 1
            if _moment(before.exported) > _moment(export.exported):
                continue
        latest[export.learner] = export
    loaded.exports = list(latest.values())
    return loaded


def _moment(text: str) -> tuple[float, str]:
    """When an export was made, comparable across time zones (text that is no time sorts
    first)."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp(), text
    except (ValueError, OverflowError, OSError):
        return float("-inf"), text


# Counting --------------------------------------------------------------------------------


def parse_exercise(text: str) -> tuple[str, int]:
    """PACK/N (or N for basics); ValueError when it is neither."""
    from autograd_tutor.content.packs import parse_key

    return parse_key(text)


def _judged(attempt: ExportedAttempt) -> bool:
    return attempt.correct is not None and not attempt.skipped


def _wanted(attempt: ExportedAttempt, pack: str | None,
            exercise: tuple[str, int] | None) -> bool:
    if pack is not None and attempt.pack != pack:
        return False
    return exercise is None or (attempt.pack, attempt.exercise) == exercise


def build_report(exports: Sequence[Export], files: int = 0,
                 skipped: Sequence[Skipped] = (), pack: str | None = None,
                 exercise: tuple[str, int] | None = None,
                 titles: Mapping[str, str] | None = None) -> Report:
    """Counts per exercise, per prediction, per misconception and per concept."""
    rows = [(e.learner, a) for e in exports for a in sorted(e.attempts, key=lambda a: a.time)
            if _wanted(a, pack, exercise)]
    lessons = [(learner, a) for learner, a in rows
               if a.kind == Asked.EXERCISE and a.pack is not None and a.exercise is not None]

    started: dict[tuple[str, int], set[str]] = defaultdict(set)
    for learner, a in lessons:
        started[(str(a.pack), int(a.exercise or 0))].add(learner)
    finished: dict[tuple[str, int], set[str]] = defaultdict(set)
    for e in exports:
        for c in e.completed:
            if (pack is None or c.pack == pack) and exercise in (None, (c.pack, c.exercise)):
                finished[(c.pack, c.exercise)].add(e.learner)

    # First judged try per learner and prediction; every wrong answer per learner.
    first: dict[tuple[str, int, str], dict[str, bool]] = defaultdict(dict)
    wrong: dict[tuple[str, int, str], dict[str, set[str]]] = defaultdict(lambda:
                                                                         defaultdict(set))
    matched: dict[tuple[str, int, str], dict[str, Counter[str]]] = defaultdict(lambda:
                                                                              defaultdict(Counter))
    order: dict[tuple[str, int], list[str]] = defaultdict(list)
    for learner, a in lessons:
        key = (str(a.pack), int(a.exercise or 0), a.prediction_id)
        if a.prediction_id not in order[key[:2]]:
            order[key[:2]].append(a.prediction_id)
        if not _judged(a):
            continue
        first[key].setdefault(learner, bool(a.correct))
        if a.correct is False:
            answer = format_value(a.prediction)
            wrong[key][answer].add(learner)
            if a.misconception:
                matched[key][answer][a.misconception] += 1

    exercises = []
    for number in sorted(set(started) | set(finished)):
        predictions = []
        for pid in order.get(number, []):
            key = (*number, pid)
            tries = first.get(key, {})
            answers = sorted(wrong.get(key, {}).items(), key=lambda item: (-len(item[1]),
                                                                             item[0]))
            predictions.append(PredictionStats(
                pid, len(tries), sum(tries.values()),
                [WrongAnswer(answer, len(who),
                             matched[key][answer].most_common(1)[0][0]
                             if matched[key][answer] else None)
                 for answer, who in answers[:TOP_WRONG]]))
        exercises.append(ExerciseStats(number[0], number[1], len(started.get(number, ())),
                                       len(finished.get(number, ())), predictions))

    shown: dict[str, set[str]] = defaultdict(set)
    places: dict[str, Counter[str]] = defaultdict(Counter)
    seen_at: set[tuple[str, str, str]] = set()
    for learner, a in rows:
        if a.misconception and _judged(a):
            shown[a.misconception].add(learner)
            place = (f"{a.pack}/{a.exercise} {a.prediction_id}" if a.pack is not None
                     else f"{a.kind} {a.prediction_id}")
            if (a.misconception, place, learner) not in seen_at:
                seen_at.add((a.misconception, place, learner))
                places[a.misconception][place] += 1
    misconceptions = sorted(
        (MisconceptionStats(name, len(who), [p for p, _ in places[name].most_common()],
                            (titles or {}).get(name, ""))
         for name, who in shown.items()), key=lambda m: (-m.learners, m.name))

    last: dict[str, dict[str, bool]] = defaultdict(dict)
    for learner, a in rows:
        if a.concept and _judged(a):
            last[a.concept][learner] = bool(a.correct)  # rows are in time order
    concepts = [ConceptStats(name, len(who), sum(who.values()))
                for name, who in sorted(last.items())]

    return Report(len(exports), files, list(skipped), exercises, misconceptions, concepts)


def report(paths: Iterable[Path], pack: str | None = None,
           exercise: tuple[str, int] | None = None,
           home: Path | None = None) -> tuple[Report, Loaded]:
    """Read the exports in `paths` and count them (the filters keep one pack or exercise).
    With `home`, misconceptions get the titles the installed packs give them."""
    loaded = load(paths)
    titles: dict[str, str] = {}
    if home is not None:
        from autograd_tutor.content import packs

        catalogue = packs.installed(home).catalogue()
        titles = {name: title for name, (title, _) in catalogue.misconceptions.items()
                  if title}
    return build_report(loaded.exports, loaded.files, loaded.skipped, pack, exercise,
                        titles), loaded
