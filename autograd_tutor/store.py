"""The progress file: every attempt a learner makes, kept safe.

One JSON file in the app directory (or $AUTOGRAD_TUTOR_HOME). Writes happen under a file
lock and replace the file atomically, so concurrent runs lose nothing and a crash never
leaves half a file. A damaged file is moved aside, never overwritten or deleted.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autograd_tutor.model import Attempt

SCHEMA_VERSION = 2
FILE_NAME = "progress.json"
APP_NAME = "autograd-tutor"
HOME_VARIABLE = "AUTOGRAD_TUTOR_HOME"
LOCK_TIMEOUT = 10.0

Warn = Callable[[str], None]


def home_dir() -> Path:
    """$AUTOGRAD_TUTOR_HOME when set, else the platform's app directory."""
    override = os.environ.get(HOME_VARIABLE)
    if override:
        return Path(override).expanduser()
    import typer  # only for get_app_dir; already loaded by the CLI

    return Path(typer.get_app_dir(APP_NAME))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def empty() -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "attempts": [], "completed": [], "checks": []}


ATTEMPT_DEFAULTS = {
    "hints_used": 0, "misconception": None, "concept": "", "typed": "", "judged": True,
}


def _migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no `check 4` results and no hints or misconceptions per attempt."""
    attempts = [
        {**ATTEMPT_DEFAULTS, **row} for row in data.get("attempts", []) if isinstance(row, dict)
    ]
    completed = [row for row in data.get("completed", []) if isinstance(row, dict)]
    return {**empty(), "attempts": attempts, "completed": completed, "migrated_from": 1}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _migrate_v1}


class DamagedFile(ValueError):
    """The progress file exists but cannot be understood."""


def parse(text: str) -> dict[str, Any]:
    """Validate and migrate the file's text; raise DamagedFile when it can't be trusted."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DamagedFile(f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise DamagedFile("not a progress record")
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise DamagedFile("no schema version")
    while version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    if version != SCHEMA_VERSION:
        raise DamagedFile(f"schema version {version} is not one this version understands")
    for key in ("attempts", "completed", "checks"):
        rows = data.get(key)
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise DamagedFile(f"{key!r} is not a list of records")
    return data


@dataclass
class Store:
    """Reads and appends to the progress file; problems become warnings, never crashes."""

    home: Path
    warn: Warn
    read_only: bool = False
    _warned: set[str] = field(default_factory=set)

    @property
    def path(self) -> Path:
        return self.home / FILE_NAME

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.warn(message)

    def load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return empty()
        except UnicodeDecodeError:
            self._move_aside("not UTF-8 text")
            return empty()
        except (IsADirectoryError, PermissionError, NotADirectoryError, OSError) as error:
            self._warn_once(f"can't read progress file {self.path}: {_reason(error)}; "
                            "progress will not be saved this run")
            self.read_only = True
            return empty()
        try:
            return parse(text)
        except DamagedFile as problem:
            self._move_aside(str(problem))
            return empty()

    def _move_aside(self, reason: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{FILE_NAME}.damaged-{stamp}-{os.getpid()}"
        target = self.path.with_name(name)
        count = 1
        while target.exists():  # never replace an earlier damaged copy
            count += 1
            target = self.path.with_name(f"{name}-{count}")
        try:
            os.replace(self.path, target)
        except FileNotFoundError:
            return  # another run moved it aside a moment ago
        except OSError as error:
            self.read_only = True
            self._warn_once(f"progress file {self.path} is damaged ({reason}) and could not "
                            f"be moved aside ({_reason(error)}); it is left untouched")
            return
        self._warn_once(f"progress file was damaged ({reason}); kept it as {target} "
                        "and started a new one")

    def update(self, change: Callable[[dict[str, Any]], None]) -> bool:
        """Re-read, apply `change`, write atomically, all under the lock. False if not saved."""
        if self.read_only:
            return False
        from filelock import FileLock, Timeout  # ~20 ms: only runs that write pay for it

        try:
            self.home.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.home / (FILE_NAME + ".lock")), timeout=LOCK_TIMEOUT):
                data = self.load()
                if self.read_only:
                    return False
                change(data)
                _write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True))
            return True
        except Timeout:
            self._warn_once("progress file is locked by another run; this result was not saved")
        except OSError as error:
            self._warn_once(f"can't save progress in {self.home}: {_reason(error)}")
        self.read_only = True
        return False

    def record(self, attempts: Iterable[Attempt]) -> bool:
        rows = [asdict(attempt) for attempt in attempts]
        if not rows:
            return True
        return self.update(lambda data: data["attempts"].extend(rows))

    def complete(self, exercise: int, run: str) -> bool:
        entry = {"exercise": exercise, "run": run, "time": now()}
        return self.update(lambda data: data["completed"].append(entry))

    def record_check(self, exercise: int, passed: bool, path: str) -> bool:
        entry = {"exercise": exercise, "passed": passed, "file": path, "time": now()}
        return self.update(lambda data: data["checks"].append(entry))

    def reset(self, exercise: int | None) -> bool:
        def change(data: dict[str, Any]) -> None:
            for key in ("attempts", "completed", "checks"):
                data[key] = [
                    row for row in data[key]
                    if exercise is not None and row.get("exercise") != exercise
                ]

        return self.update(change)


def _write_atomic(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


@dataclass(frozen=True)
class ExerciseStatus:
    number: int
    status: str  # "not started" | "in progress" | "done"
    correct: int
    asked: int


def statuses(data: dict[str, Any], numbers: Iterable[int]) -> dict[int, ExerciseStatus]:
    """Status and score per exercise; the score counts the latest run that made predictions."""
    done = {row.get("exercise") for row in data["completed"]}
    result = {}
    for number in numbers:
        rows = [row for row in data["attempts"] if row.get("exercise") == number]
        latest = [row for row in rows if row.get("run") == rows[-1].get("run")] if rows else []
        asked = [row for row in latest if row.get("correct") is not None]
        correct = sum(1 for row in asked if row.get("correct"))
        if number in done:
            status = "done"
        elif rows:
            status = "in progress"
        else:
            status = "not started"
        result[number] = ExerciseStatus(number, status, correct, len(asked))
    return result
