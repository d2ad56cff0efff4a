"""The progress file: atomic writes, damaged files moved aside, migration, and statuses."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from autograd_tutor import store as store_module
from autograd_tutor.model import Attempt
from autograd_tutor.store import (
    FILE_NAME,
    SCHEMA_VERSION,
    Store,
    empty,
    home_dir,
    statuses,
)


class Warnings(list):
    def __call__(self, message: str) -> None:
        self.append(message)


def attempt(exercise: int = 1, id: str = "x.grad", correct: bool | None = True,
            run: str = "run-a", skipped: bool = False) -> Attempt:
    return Attempt(exercise=exercise, id=id, prediction=None if skipped else 1.0, actual=1.0,
                   by_hand=1.0, correct=None if skipped else correct, skipped=skipped,
                   typed="1", time="2024-01-01T00:00:00+00:00", run=run)


@pytest.fixture
def warnings() -> Warnings:
    return Warnings()


@pytest.fixture
def store(tmp_path: Path, warnings: Warnings) -> Store:
    return Store(tmp_path / "home", warn=warnings)


def damaged_copies(home: Path) -> list[Path]:
    return sorted(home.glob(FILE_NAME + ".damaged-*"))


# Reading and writing -------------------------------------------------------------------


def test_missing_file_reads_as_empty_without_warning(store: Store, warnings: Warnings) -> None:
    assert store.load() == empty()
    assert warnings == []
    assert not store.path.exists()


def test_round_trip(store: Store, warnings: Warnings) -> None:
    first, second = attempt(id="x.grad"), attempt(exercise=3, id="x.grad@1", correct=False)
    assert store.record([first])
    assert store.record([second])
    assert store.complete(1, "run-a")
    data = store.load()
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["attempts"] == [asdict(first), asdict(second)]
    assert [row["exercise"] for row in data["completed"]] == [1]
    # The file on disk is plain JSON with the same content.
    assert json.loads(store.path.read_text(encoding="utf-8")) == data
    assert warnings == []


def test_recording_nothing_writes_nothing(store: Store) -> None:
    assert store.record([])
    assert not store.path.exists()


def test_writes_leave_no_temporary_files(store: Store) -> None:
    for n in range(5):
        assert store.record([attempt(run=f"run-{n}")])
    names = {p.name for p in store.home.iterdir()}
    assert not [name for name in names if name.endswith(".tmp")]
    assert FILE_NAME in names


def test_write_is_atomic_when_replace_fails(store: Store, warnings: Warnings,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash at the moment of replacing leaves the old file whole and no temp file behind."""
    assert store.record([attempt()])
    before = store.path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, "replace", broken_replace)
    assert store.record([attempt(run="run-b")]) is False
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert not list(store.home.glob("*.tmp"))
    assert len(warnings) == 1 and "No space left" in warnings[0]


def test_two_stores_on_one_file_lose_nothing(tmp_path: Path, warnings: Warnings) -> None:
    one = Store(tmp_path / "home", warn=warnings)
    two = Store(tmp_path / "home", warn=warnings)
    for n in range(3):
        assert one.record([attempt(run=f"one-{n}")])
        assert two.record([attempt(run=f"two-{n}")])
    runs = [row["run"] for row in one.load()["attempts"]]
    assert runs == ["one-0", "two-0", "one-1", "two-1", "one-2", "two-2"]


# Damaged files -------------------------------------------------------------------------

DAMAGED = {
    "empty file": b"",
    "truncated JSON": b'{"schema_version": 2, "attempts": [{"exercise": 1, "id": "x.gr',
    "not JSON": b"this is not json\n",
    "binary junk": b"\x00\xff\xfe garbage",
    "a JSON list": b"[1, 2, 3]",
    "a JSON string": b'"progress"',
    "no schema version": b'{"attempts": [], "completed": []}',
    "unknown schema": b'{"schema_version": 99, "attempts": [], "completed": [], "checks": []}',
    "schema as text": b'{"schema_version": "2", "attempts": [], "completed": [], "checks": []}',
    "lists missing": b'{"schema_version": 2, "attempts": {}}',
}


@pytest.mark.parametrize("content", list(DAMAGED.values()), ids=list(DAMAGED))
def test_damaged_file_is_moved_aside_with_a_warning(store: Store, warnings: Warnings,
                                                    content: bytes) -> None:
    store.home.mkdir(parents=True)
    store.path.write_bytes(content)

    assert store.load() == empty()

    (copy,) = damaged_copies(store.home)
    assert copy.read_bytes() == content  # kept, byte for byte
    assert not store.path.exists()
    assert len(warnings) == 1
    assert "damaged" in warnings[0] and copy.name in warnings[0]
    assert "\n" not in warnings[0]

    # The tutor carries on with a fresh file.
    assert store.record([attempt()])
    assert [row["id"] for row in store.load()["attempts"]] == ["x.grad"]
    assert damaged_copies(store.home) == [copy]
    assert copy.read_bytes() == content


def test_damaged_file_found_while_recording_is_kept_too(store: Store,
                                                        warnings: Warnings) -> None:
    store.home.mkdir(parents=True)
    store.path.write_bytes(b"{broken")
    assert store.record([attempt()])
    (copy,) = damaged_copies(store.home)
    assert copy.read_bytes() == b"{broken"
    assert len(store.load()["attempts"]) == 1
    assert len(warnings) == 1


# Migration -----------------------------------------------------------------------------


def test_version_1_is_migrated_and_keeps_everything(store: Store, warnings: Warnings) -> None:
    v1_attempts = [
        {"exercise": 1, "id": "x.grad", "prediction": 30.0, "actual": 34.0, "by_hand": 34.0,
         "correct": False, "skipped": False, "time": "2024-01-01T00:00:00+00:00", "run": "old"},
        {"exercise": 5, "id": "a.grad@detach", "prediction": None, "actual": None,
         "by_hand": None, "correct": True, "skipped": False, "time": "2024-01-02T00:00:00+00:00",
         "run": "old5"},
    ]
    v1_completed = [{"exercise": 1, "run": "old", "time": "2024-01-01T00:00:00+00:00"}]
    store.home.mkdir(parents=True)
    store.path.write_text(json.dumps({"schema_version": 1, "attempts": v1_attempts,
                                      "completed": v1_completed}), encoding="utf-8")

    data = store.load()
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["completed"] == v1_completed
    assert data["checks"] == []
    assert len(data["attempts"]) == 2
    for old, new in zip(v1_attempts, data["attempts"], strict=True):
        assert {key: new[key] for key in old} == old
        assert new["hints_used"] == 0 and new["misconception"] is None
    assert warnings == [] and damaged_copies(store.home) == []

    # The next write stores version 2 with the old history in it.
    assert store.record([attempt(exercise=2, id="x.grad", run="new")])
    on_disk = json.loads(store.path.read_text(encoding="utf-8"))
    assert on_disk["schema_version"] == SCHEMA_VERSION
    assert [row["run"] for row in on_disk["attempts"]] == ["old", "old5", "new"]
    assert on_disk["completed"] == v1_completed
    status = statuses(on_disk, [1, 2, 5])
    assert (status[1].status, status[1].correct, status[1].asked) == ("done", 0, 1)
    assert status[5].status == "in progress"


# An unusable home ----------------------------------------------------------------------


def test_home_that_is_a_file_warns_and_saves_nothing(tmp_path: Path, warnings: Warnings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("I am a file", encoding="utf-8")
    monkeypatch.setenv("AUTOGRAD_TUTOR_HOME", str(blocker))
    store = Store(home_dir(), warn=warnings)

    assert store.load() == empty()
    assert store.record([attempt()]) is False
    assert store.complete(1, "run") is False
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert blocker.read_text(encoding="utf-8") == "I am a file"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions and a non-root user")
def test_unwritable_home_warns_and_saves_nothing(tmp_path: Path, warnings: Warnings) -> None:
    home = tmp_path / "locked"
    home.mkdir()
    home.chmod(0o500)
    try:
        store = Store(home, warn=warnings)
        assert store.record([attempt()]) is False
        assert len(warnings) == 1
    finally:
        home.chmod(0o700)


def test_home_dir_follows_the_environment(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGRAD_TUTOR_HOME", str(tmp_path / "elsewhere"))
    assert home_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("AUTOGRAD_TUTOR_HOME")
    assert home_dir().name.lower() == "autograd-tutor"


# Statuses ------------------------------------------------------------------------------


def row(exercise: int, run: str, correct: bool | None, skipped: bool = False) -> dict:
    return asdict(attempt(exercise=exercise, run=run, correct=correct, skipped=skipped))


def test_statuses_not_started_in_progress_done() -> None:
    data = empty()
    data["attempts"] = [
        row(2, "a", True),
        row(3, "b", True),
        row(3, "b", False),
        row(3, "b", None, skipped=True),
    ]
    data["completed"] = [{"exercise": 3, "run": "b", "time": ""}]
    status = statuses(data, [1, 2, 3])
    assert status[1].status == "not started" and (status[1].correct, status[1].asked) == (0, 0)
    assert status[2].status == "in progress" and (status[2].correct, status[2].asked) == (1, 1)
    assert status[3].status == "done"
    # Skipped predictions are not asked, so they don't count against the score.
    assert (status[3].correct, status[3].asked) == (1, 2)


def test_score_comes_from_the_latest_run() -> None:
    data = empty()
    data["attempts"] = [
        row(1, "first", False),
        row(1, "first", False),
        row(1, "second", True),
        row(1, "second", True),
        row(1, "second", False),
    ]
    data["completed"] = [{"exercise": 1, "run": "first", "time": ""}]
    status = statuses(data, [1])[1]
    assert status.status == "done"  # done once stays done
    assert (status.correct, status.asked) == (2, 3)


def test_a_reveal_run_with_nothing_asked_scores_nothing() -> None:
    data = empty()
    data["attempts"] = [row(4, "reveal", None, skipped=True)]
    data["completed"] = [{"exercise": 4, "run": "reveal", "time": ""}]
    status = statuses(data, [4])[4]
    assert status.status == "done" and status.asked == 0
