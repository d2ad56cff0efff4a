"""`export`: the learner's history as one JSON document an instructor can collect.

The document names no file, user, host or environment: the learner is a random ID kept in
the progress directory (or one given with --name), and each attempt holds only what the
report needs. `report` reads these documents back with `read_export`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import msgspec
from msgspec import Struct, field

from autograd_tutor.engine.model import History, Value
from autograd_tutor.engine.store import Store, StoreError, now, read_regular

FORMAT = "autograd-tutor-export"
FORMAT_VERSION = 1
LEARNER_FILE = "learner-id"
LEARNER_PATTERN = re.compile(r"[0-9a-f]{16}\Z")
MAX_NAME = 64
# An export of a very long history is a few MB; anything far larger is not one.
MAX_EXPORT_BYTES = 64 * 1024 * 1024


class ExportError(Exception):
    """Why an export could not be made or read; the message is one line for the user."""


class ExportedAttempt(Struct, frozen=True):
    """One judged prediction as an instructor sees it."""

    pack: str | None
    exercise: int | None
    prediction_id: str
    kind: str
    prediction: Value
    actual: Value
    correct: bool | None
    misconception: str | None
    hints_used: int
    time: str
    skipped: bool = False
    concept: str = ""


class ExportedCompletion(Struct, frozen=True):
    """A finished run of an exercise."""

    pack: str
    exercise: int
    time: str


class Export(Struct, frozen=True):
    """The whole document `export` writes and `report` reads."""

    format: str
    format_version: int
    tool_version: str
    torch_version: str | None
    learner: str
    exported: str
    attempts: list[ExportedAttempt] = field(default_factory=list)
    completed: list[ExportedCompletion] = field(default_factory=list)


# Making an export ------------------------------------------------------------------------


def _version(distribution: str) -> str | None:
    """An installed distribution's version, from its metadata: torch is never imported."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def learner_id(home: Path) -> str:
    """This progress directory's pseudonymous learner ID: random, made once and kept in
    `home`, so every export of one history carries the same ID."""
    path = home / LEARNER_FILE
    try:
        data = read_regular(path, limit=1024)
    except StoreError as error:
        raise ExportError(str(error)) from None
    if data is None:
        try:
            home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another run made it a moment ago: use that one
            return learner_id(home)
        except OSError as error:
            raise ExportError(f"can't keep the learner ID in {home}: "
                              f"{error.strerror or error}") from None
        made = secrets.token_hex(8)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(made + "\n")
        return made
    text = data.decode("ascii", errors="replace").strip()
    if not LEARNER_PATTERN.match(text):
        raise ExportError(f"{path} does not hold a learner ID; move it away to make a new one "
                          "(exports made before keep the old ID)")
    return text


def check_name(name: str) -> str:
    """A learner ID given with --name: printable, one line, at most MAX_NAME characters."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValueError(f"a name is 1 to {MAX_NAME} printable characters")
    return name


def build_export(history: History, learner: str, moment: str | None = None) -> Export:
    """The export of `history`: every attempt and every finished run, nothing else."""
    attempts = [ExportedAttempt(
        pack=a.pack, exercise=a.exercise, prediction_id=a.id, kind=a.kind,
        prediction=a.prediction, actual=a.actual, correct=a.correct,
        misconception=a.misconception, hints_used=a.hints_used, time=a.time,
        skipped=a.skipped, concept=a.concept,
    ) for a in history.attempts]
    completed = [ExportedCompletion(c.pack, c.exercise, c.time) for c in history.completed]
    return Export(FORMAT, FORMAT_VERSION, _version("autograd-tutor") or "unknown",
                  _version("torch"), learner, moment or now(), attempts, completed)


class ExportResult(Struct, frozen=True):
    """What `export` made: the document, as JSON text, and how much it holds."""

    document: Export
    text: str
    attempts: int


def export_history(home: Path, warn: Callable[[str], None],
                   name: str | None = None) -> ExportResult:
    """The history in `home` as an export (ExportError when it can't be made)."""
    history = Store(home, warn=warn).load()
    learner = check_name(name) if name is not None else learner_id(home)
    document = build_export(history, learner)
    text = msgspec.json.encode(document).decode("utf-8")
    return ExportResult(document, text + "\n", len(document.attempts))


# Reading exports -------------------------------------------------------------------------


def read_export(path: Path) -> Export:
    """The export in `path`, or ExportError saying in a few words why it is not one."""
    try:
        data = read_regular(path, limit=MAX_EXPORT_BYTES)
    except StoreError as error:
        raise ExportError(str(error).split(";")[0].removeprefix(f"{path} ")) from None
    if data is None:
        raise ExportError("no such file")
    try:
        raw = msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError, ValueError):
        raise ExportError("not JSON (damaged or cut short)") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ExportError("not an autograd-tutor export")
    version = raw.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ExportError("written by a newer autograd-tutor; upgrade to read it")
    try:
        return msgspec.convert(raw, Export)
    except (msgspec.ValidationError, RecursionError) as error:
        raise ExportError(f"a damaged export ({error})") from None
