"""The history file: append-only JSON Lines, damaged rows set aside, newer files left alone,
the old progress.json converted and kept, and statuses."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from msgspec.structs import asdict

from autograd_tutor.cli import home_dir
from autograd_tutor.engine import store as store_module
from autograd_tutor.engine.model import Attempt, Check, Completion, History
from autograd_tutor.engine.store import (
    FILE_NAME,
    SCHEMA_VERSION,
    Store,
    statuses,
)

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
HEADER = b'{"schema_version": 3}\n'
LEGACY = "progress.json"


class Warnings(list):
    def __call__(self, message: str) -> None:
        self.append(message)


def attempt(exercise: int | None = 1, id: str = "x.grad", correct: bool | None = True,
            run: str = "run-a", skipped: bool = False, pack: str | None = "basics",
            kind: str = "exercise", typed: str = "1") -> Attempt:
    return Attempt(pack=pack, exercise=exercise, kind=kind, id=id,
                   prediction=None if skipped else 1.0, actual=1.0, by_hand=1.0,
                   correct=None if skipped else correct, skipped=skipped, typed=typed,
                   time="2024-01-01T00:00:00+00:00", run=run)


def stored_row(record: Attempt | Completion | Check) -> dict:
    """The row the design says is stored: "type" plus the record's fields, as JSON gives
    them back (tuples become lists)."""
    kind = {Attempt: "attempt", Completion: "completed", Check: "check"}[type(record)]
    row = json.loads(json.dumps(asdict(record)))
    return {"type": kind, **row}


def line(record: Attempt | Completion | Check) -> bytes:
    return json.dumps(stored_row(record)).encode() + b"\n"


def rows_on_disk(path: Path) -> tuple[dict, list[dict]]:
    """The header and the rows of a progress.jsonl, read without the store."""
    header, *rows = [json.loads(text) for text in path.read_text(encoding="utf-8").splitlines()
                     if text.strip()]
    return header, rows


@pytest.fixture
def warnings() -> Warnings:
    return Warnings()


@pytest.fixture
def store(tmp_path: Path, warnings: Warnings) -> Store:
    return Store(tmp_path / "home", warn=warnings)


def copies(home: Path, why: str = "damaged") -> list[Path]:
    return sorted(home.glob(f"{FILE_NAME}.{why}-*"))


def legacy_copies(home: Path) -> list[Path]:
    """The kept old file. Its exact name is checked in test_the_kept_legacy_file_is_named_
    after_it; the other tests find it under either name."""
    return sorted([*home.glob(LEGACY + ".from-v*"), *home.glob(FILE_NAME + ".from-v*")])


def one_line(message: str) -> bool:
    return "\n" not in message and bool(message.strip())


# Reading and writing -------------------------------------------------------------------


def test_missing_file_reads_as_empty_without_warning(store: Store, warnings: Warnings) -> None:
    assert store.load() == History()
    assert warnings == []
    assert not store.path.exists()
    assert store.read_only is False


def test_a_file_name_that_is_not_utf8_is_read_back(store: Store, warnings: Warnings) -> None:
    # os.fsdecode gives such a name lone surrogates; json writes them as escapes that the
    # fast row reader refuses, and the row was once set aside as damaged.
    name = os.fsdecode(b"/tmp/caf\xe9.py")
    assert store.record_check("basics", 4, True, name)
    assert store.record([attempt(typed=name)])
    history = Store(store.home, warn=warnings).load()
    assert [c.file for c in history.checks] == [name]
    assert [a.typed for a in history.attempts] == [name]
    assert not warnings and not list(store.home.glob("*.damaged-*"))


def test_round_trip(store: Store, warnings: Warnings) -> None:
    first, second = attempt(id="x.grad"), attempt(exercise=3, id="x.grad@1", correct=False)
    practice = attempt(exercise=None, pack=None, kind="practice", id="y.grad")
    assert store.record([first])
    assert store.record([second, practice])
    assert store.complete("basics", 1, "run-a")
    assert store.record_check("basics", 4, True, "train_loop.py")
    history = store.load()
    assert history.attempts == [first, second, practice]
    assert all(isinstance(a, Attempt) for a in history.attempts)
    assert [(c.pack, c.exercise, c.run) for c in history.completed] == [("basics", 1, "run-a")]
    assert [(c.pack, c.exercise, c.passed, c.file) for c in history.checks] == [
        ("basics", 4, True, "train_loop.py")]
    # On disk: a schema header, then one JSON object per line, appended in order.
    header, rows = rows_on_disk(store.path)
    assert header == {"schema_version": SCHEMA_VERSION} == {"schema_version": 3}
    assert rows[:3] == [stored_row(first), stored_row(second), stored_row(practice)]
    assert [row["type"] for row in rows] == ["attempt"] * 3 + ["completed", "check"]
    assert rows[3] == stored_row(history.completed[0])
    assert rows[4] == stored_row(history.checks[0])
    assert store.path.read_bytes().startswith(HEADER)
    assert store.path.read_bytes().endswith(b"\n")
    assert warnings == []


def test_saving_appends_and_keeps_earlier_bytes(store: Store) -> None:
    assert store.record([attempt(run="one")])
    before = store.path.read_bytes()
    assert store.record([attempt(run="two")])
    after = store.path.read_bytes()
    assert after.startswith(before)
    added = after[len(before):]
    assert added.endswith(b"\n") and added.count(b"\n") == 1
    assert json.loads(added) == stored_row(attempt(run="two"))


def test_recording_nothing_writes_nothing(store: Store) -> None:
    assert store.record([])
    assert not store.path.exists()


def test_writes_leave_no_temporary_files(store: Store) -> None:
    for n in range(5):
        assert store.record([attempt(run=f"run-{n}")])
    assert store.reset("basics", 1)
    names = {p.name for p in store.home.iterdir()}
    assert not [name for name in names if name.endswith(".tmp")]
    assert FILE_NAME in names


def test_a_failed_rewrite_leaves_the_old_file_whole(store: Store, warnings: Warnings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash at the moment of replacing (a reset) leaves the old file whole and no
    temporary file behind."""
    assert store.record([attempt()])
    before = store.path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "replace", broken_replace)
    assert store.reset(None, None) is False
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert not list(store.home.glob("*.tmp"))
    assert len(warnings) == 1 and "No space left" in warnings[0] and one_line(warnings[0])


def _failing_writes(monkeypatch: pytest.MonkeyPatch, path: Path, after: int) -> None:
    """os.write on `path` writes `after` bytes, then the disk is full."""
    real_write = os.write
    target = os.stat(path).st_ino
    written = {"n": 0}

    def write(fd: int, data: bytes) -> int:
        if os.fstat(fd).st_ino != target:
            return real_write(fd, data)
        room = after - written["n"]
        if room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_write(fd, bytes(data)[:room])
        written["n"] += n
        return n

    monkeypatch.setattr(store_module.os, "write", write)


def test_a_full_disk_while_appending_says_so_and_keeps_earlier_rows(
        store: Store, warnings: Warnings, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = attempt(run="kept")
    assert store.record([kept])
    before = store.path.read_bytes()

    _failing_writes(monkeypatch, store.path, after=0)
    assert store.record([attempt(run="lost")]) is False
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert len(warnings) == 1 and "No space left" in warnings[0] and one_line(warnings[0])
    assert store.problem

    # Half a row written before the disk filled up: the file goes back to what it was, so
    # no torn row is left behind (nor set aside as damaged later).
    fresh_warnings = Warnings()
    fresh = Store(store.home, warn=fresh_warnings)
    _failing_writes(monkeypatch, store.path, after=25)
    assert fresh.record([attempt(run="torn")]) is False
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert len(fresh_warnings) == 1 and "No space left" in fresh_warnings[0]
    again = Store(store.home, warn=Warnings())
    assert again.load().attempts == [kept]
    assert copies(store.home) == []
    assert again.record([attempt(run="after")])
    assert [a.run for a in Store(store.home, warn=Warnings()).load().attempts] == [
        "kept", "after"]


def test_a_full_disk_while_setting_rows_aside_leaves_no_empty_copy(
        store: Store, warnings: Warnings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The damaged row stays where it is (and is skipped); no empty `.damaged-` file is
    made, and the next run with space sets it aside."""
    kept = attempt(run="kept")
    assert store.record([kept])
    with open(store.path, "ab") as file:
        file.write(b'{"type": "attempt", "torn\n')
    before = store.path.read_bytes()
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if ".damaged-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(store_module.os, "write", write)
    assert Store(store.home, warn=warnings).load().attempts == [kept]
    monkeypatch.undo()
    assert copies(store.home) == []
    assert store.path.read_bytes() == before
    assert len(warnings) == 1 and "left in place" in warnings[0] and one_line(warnings[0])
    assert Store(store.home, warn=Warnings()).load().attempts == [kept]
    (copy,) = copies(store.home)
    assert copy.read_bytes() == b'{"type": "attempt", "torn\n'


def test_two_stores_on_one_file_lose_nothing(tmp_path: Path, warnings: Warnings) -> None:
    one = Store(tmp_path / "home", warn=warnings)
    two = Store(tmp_path / "home", warn=warnings)
    for n in range(3):
        assert one.record([attempt(run=f"one-{n}")])
        assert two.record([attempt(run=f"two-{n}")])
    runs = [a.run for a in one.load().attempts]
    assert runs == ["one-0", "two-0", "one-1", "two-1", "one-2", "two-2"]
    assert warnings == []


def test_reset_keeps_a_copy_and_drops_only_what_was_asked(store: Store) -> None:
    rows = [attempt(exercise=1, run="r1"), attempt(exercise=2, run="r2"),
            attempt(exercise=None, pack=None, kind="practice", run="p")]
    assert store.record(rows)
    assert store.complete("basics", 1, "r1")
    assert store.complete("basics", 2, "r2")
    before = store.path.read_bytes()

    assert store.reset("basics", 1)
    history = store.load()
    assert history.attempts == rows[1:]
    assert [(c.exercise, c.run) for c in history.completed] == [(2, "r2")]
    (copy,) = copies(store.home, "before-reset")
    assert copy.read_bytes() == before

    assert store.reset(None, None)
    assert store.load() == History()
    assert len(copies(store.home, "before-reset")) == 2
    assert copy.read_bytes() == before


@pytest.fixture
def short_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that waits for its own lock fails in a second instead of in two minutes."""
    monkeypatch.setattr(store_module, "LOCK_NOTICE", 0.2)
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT", 1.0)



def test_reset_before_any_load_sets_damaged_rows_aside(store: Store, warnings: Warnings,
                                                        short_locks: None) -> None:
    store.home.mkdir(parents=True)
    damage = b"this row is damaged"
    one, two = attempt(exercise=1, run="r1"), attempt(exercise=2, run="r2")
    store.path.write_bytes(HEADER + line(one) + damage + b"\n" + line(two))
    assert store.reset("basics", 1)
    assert Store(store.home, warn=Warnings()).load().attempts == [two]
    (copy,) = copies(store.home)
    assert [part for part in copy.read_bytes().split(b"\n") if part] == [damage]
    assert len(warnings) == 1 and "damaged" in warnings[0]


def test_saving_before_any_load_converts_the_legacy_file(store: Store, warnings: Warnings,
                                                         short_locks: None) -> None:
    old = legacy_attempt()
    content = write_legacy(store.home, {"schema_version": 2, "attempts": [old],
                                        "completed": [], "checks": []})
    new = attempt(run="new")
    assert store.record([new])
    assert warnings == []
    history = Store(store.home, warn=warnings).load()
    assert [a.run for a in history.attempts] == [old["run"], "new"]
    assert history.attempts[-1] == new
    (kept,) = legacy_copies(store.home)
    assert kept.read_bytes() == content and not (store.home / LEGACY).exists()


def test_reset_before_any_load_converts_the_legacy_file(store: Store, warnings: Warnings,
                                                        short_locks: None) -> None:
    content = write_legacy(store.home, {
        "schema_version": 2, "attempts": [legacy_attempt(exercise=1),
                                          legacy_attempt(exercise=2, run="two")],
        "completed": [], "checks": []})
    assert store.reset("basics", 1)
    assert [a.run for a in Store(store.home, warn=Warnings()).load().attempts] == ["two"]
    assert [p.read_bytes() for p in legacy_copies(store.home)] == [content]
    assert warnings == []


# Damaged rows --------------------------------------------------------------------------

GOOD_BEFORE, GOOD_AFTER = attempt(run="before"), attempt(exercise=2, run="after")


def bad_attempt(**fields: object) -> bytes:
    return json.dumps({**stored_row(attempt(run="bad")), **fields}).encode()


DAMAGED_ROWS = {
    "truncated JSON": b'{"type": "attempt", "exercise": 1, "id": "x.gr',
    "not JSON": b"this is not json",
    "binary junk": b"\x00\xff\xfe garbage",
    "a JSON list": b"[1, 2, 3]",
    "a JSON number": b"1",
    "a JSON string": b'"progress"',
    "no type": json.dumps({k: v for k, v in stored_row(attempt()).items()
                           if k != "type"}).encode(),
    "unknown type": bad_attempt(type="attempts"),
    "attempt without id": json.dumps({k: v for k, v in stored_row(attempt()).items()
                                      if k != "id"}).encode(),
    "exercise is a list": bad_attempt(exercise=[1]),
    "time too far ahead": bad_attempt(time="9999-12-31T23:59:59+00:00"),
    "time is not a time": bad_attempt(time="yesterday"),
    "concept is an object": bad_attempt(concept={}),
    "all three wrong": bad_attempt(exercise=[1], time="9999-12-31T23:59:59+00:00",
                                   concept={}),
    "prediction NaN": bad_attempt(prediction=1.0).replace(b'"prediction": 1.0',
                                                          b'"prediction": NaN'),
    "correct as text": bad_attempt(correct="yes"),
    "exercise as bool": bad_attempt(exercise=True),
    "negative hints": bad_attempt(hints_used=-1),
    "huge integer": bad_attempt(exercise=1).replace(b'"exercise": 1',
                                                    b'"exercise": ' + b"9" * 5000),
    # an int no float holds: math.isfinite raised OverflowError out of the reader
    "400-digit prediction": bad_attempt(prediction=1.0).replace(
        b'"prediction": 1.0', b'"prediction": 1' + b"0" * 400),
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "completion without run": json.dumps({"type": "completed", "pack": "basics",
                                          "exercise": 1,
                                          "time": "2024-01-01T00:00:00+00:00"}).encode(),
    "completion exercise as text": json.dumps(
        {"type": "completed", "pack": "basics", "exercise": "1", "run": "r",
         "time": "2024-01-01T00:00:00+00:00"}).encode(),
    "check passed as text": json.dumps(
        {"type": "check", "pack": "basics", "exercise": 4, "passed": "yes", "file": "f.py",
         "time": "2024-01-01T00:00:00+00:00"}).encode(),
    "check exercise as bool": json.dumps(
        {"type": "check", "pack": "basics", "exercise": True, "passed": True, "file": "f.py",
         "time": "2024-01-01T00:00:00+00:00"}).encode(),
}




@pytest.mark.parametrize("damage", [
    pytest.param(content, id=name, marks=[])
    for name, content in DAMAGED_ROWS.items()])
def test_a_damaged_row_is_set_aside_and_the_rest_loads(store: Store, warnings: Warnings,
                                                       damage: bytes) -> None:
    store.home.mkdir(parents=True)
    store.path.write_bytes(HEADER + line(GOOD_BEFORE) + damage + b"\n" + line(GOOD_AFTER))

    assert store.load().attempts == [GOOD_BEFORE, GOOD_AFTER]

    (copy,) = copies(store.home)
    # The damaged row is kept, byte for byte, in a copy of its own.
    assert [part for part in copy.read_bytes().split(b"\n") if part] == [damage]
    assert len(warnings) == 1
    assert "damaged" in warnings[0] and copy.name in warnings[0] and one_line(warnings[0])

    # The live file now holds only good rows; the next load is quiet.
    again = Warnings()
    assert Store(store.home, warn=again).load().attempts == [GOOD_BEFORE, GOOD_AFTER]
    assert again == []

    # The tutor carries on.
    new = attempt(exercise=3, run="new")
    assert store.record([new])
    assert store.load().attempts == [GOOD_BEFORE, GOOD_AFTER, new]
    assert copies(store.home) == [copy]
    assert [part for part in copy.read_bytes().split(b"\n") if part] == [damage]


def test_several_damaged_rows_go_into_one_copy(store: Store, warnings: Warnings) -> None:
    damage = [DAMAGED_ROWS["not JSON"], DAMAGED_ROWS["exercise is a list"],
              DAMAGED_ROWS["a JSON list"]]
    store.home.mkdir(parents=True)
    store.path.write_bytes(HEADER + damage[0] + b"\n" + line(GOOD_BEFORE) + damage[1] + b"\n"
                           + damage[2] + b"\n" + line(GOOD_AFTER))
    assert store.load().attempts == [GOOD_BEFORE, GOOD_AFTER]
    (copy,) = copies(store.home)
    assert [part for part in copy.read_bytes().split(b"\n") if part] == damage
    assert len(warnings) == 1


def test_a_second_damage_does_not_overwrite_the_first(store: Store) -> None:
    store.home.mkdir(parents=True)
    store.path.write_bytes(HEADER + line(GOOD_BEFORE) + b"first damage\n")
    assert Store(store.home, warn=Warnings()).load().attempts == [GOOD_BEFORE]
    with store.path.open("ab") as file:
        file.write(b"second damage\n")
    assert Store(store.home, warn=Warnings()).load().attempts == [GOOD_BEFORE]
    kept = sorted(b"".join(path.read_bytes().split()) for path in copies(store.home))
    assert kept == [b"firstdamage", b"seconddamage"]


def test_a_torn_last_line_loses_none_of_the_rows_before_it(store: Store,
                                                           warnings: Warnings) -> None:
    """A writer killed mid-row leaves a last line without its newline."""
    torn = line(attempt(run="torn"))[:40]
    store.home.mkdir(parents=True)
    store.path.write_bytes(HEADER + line(GOOD_BEFORE) + line(GOOD_AFTER) + torn)

    assert store.load().attempts == [GOOD_BEFORE, GOOD_AFTER]
    (copy,) = copies(store.home)
    assert copy.read_bytes().strip(b"\n") == torn
    assert len(warnings) == 1

    new = attempt(run="new")
    assert store.record([new])
    assert store.load().attempts == [GOOD_BEFORE, GOOD_AFTER, new]


def test_appending_after_a_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    """The next run saves before it loaded anything: its row goes on a line of its own, and
    the next load sets the torn row aside (saying so once)."""
    home = tmp_path / "home"
    home.mkdir()
    torn = line(attempt(run="torn"))[:40]
    (home / FILE_NAME).write_bytes(HEADER + line(GOOD_BEFORE) + torn)

    new = attempt(run="new")
    saving = Warnings()
    assert Store(home, warn=saving).record([new])
    assert len(saving) == 0  # a save reads only the header: it costs the same at any size

    warnings = Warnings()
    assert Store(home, warn=warnings).load().attempts == [GOOD_BEFORE, new]
    (copy,) = copies(home)
    assert copy.read_bytes().strip(b"\n") == torn
    assert len(warnings) == 1


@pytest.mark.parametrize("prefix, newline", [
    (b"\xef\xbb\xbf", b"\n"),  # a UTF-8 BOM, as some editors save
    (b"", b"\r\n"),  # Windows line endings
    (b"\xef\xbb\xbf", b"\r\n"),
], ids=["BOM", "CRLF", "BOM+CRLF"])
def test_harmless_variations_are_accepted(store: Store, warnings: Warnings, prefix: bytes,
                                          newline: bytes) -> None:
    store.home.mkdir(parents=True)
    body = HEADER + line(GOOD_BEFORE) + b"\n   \n" + line(GOOD_AFTER)
    store.path.write_bytes(prefix + body.replace(b"\n", newline))
    assert store.load().attempts == [GOOD_BEFORE, GOOD_AFTER]
    assert warnings == [] and copies(store.home) == []
    assert store.read_only is False
    new = attempt(run="new")
    assert store.record([new])
    assert Store(store.home, warn=warnings).load().attempts == [GOOD_BEFORE, GOOD_AFTER, new]
    assert warnings == []


def test_an_empty_file_is_an_empty_history(store: Store, warnings: Warnings) -> None:
    store.home.mkdir(parents=True)
    store.path.write_bytes(b"")
    assert store.load() == History()
    new = attempt()
    assert store.record([new])
    assert store.path.read_bytes().startswith(HEADER)
    assert store.load().attempts == [new]
    assert copies(store.home) == []


# Files this version must not change ----------------------------------------------------


def test_a_newer_schema_is_read_and_left_untouched(store: Store, warnings: Warnings) -> None:
    newer = {"schema_version": SCHEMA_VERSION + 1}
    content = (json.dumps(newer).encode() + b"\n" + line(GOOD_BEFORE)
               + b'{"type": "something-new", "field": 1}\n' + b"not json either\n"
               + line(GOOD_AFTER))
    store.home.mkdir(parents=True)
    store.path.write_bytes(content)

    # What this version understands is shown ...
    assert store.load().attempts == [GOOD_BEFORE, GOOD_AFTER]
    assert store.read_only
    assert len(warnings) == 1 and one_line(warnings[0])
    assert "newer autograd-tutor" in warnings[0] and "AUTOGRAD_TUTOR_HOME" in warnings[0]
    # ... and nothing is saved, set aside, converted or reset.
    assert store.record([attempt(run="new")]) is False
    assert store.complete("basics", 1, "new") is False
    assert store.record_check("basics", 4, True, "f.py") is False
    assert store.reset(None, None) is False
    assert store.path.read_bytes() == content
    assert sorted(p.name for p in store.home.iterdir()
                  if not p.name.endswith(".lock")) == [FILE_NAME]


@pytest.mark.parametrize("header", [
    b'{"schema_version": "3"}', b'{"schema_version": true}', b'{"schema_version": null}',
    b'{"schema_version": 2.5}', b'{"schema_version": 2}', b'{"schema_version": 0}',
])
def test_an_unknown_schema_header_is_left_untouched(store: Store, warnings: Warnings,
                                                    header: bytes) -> None:
    content = header + b"\n" + line(GOOD_BEFORE)
    store.home.mkdir(parents=True)
    store.path.write_bytes(content)
    store.load()
    assert len(warnings) == 1 and one_line(warnings[0])
    assert store.record([attempt(run="new")]) is False
    assert store.path.read_bytes() == content
    assert copies(store.home) == []


@pytest.mark.parametrize("header", [b'{"schema_version": 4}', b'{"schema_version": 99}',
                                    b'{"schema_version": "3"}'])
def test_saving_before_loading_leaves_a_newer_file_untouched(tmp_path: Path,
                                                             header: bytes) -> None:
    """A run that saves without loading first (as `exercise` does) checks the header too."""
    home = tmp_path / "home"
    home.mkdir()
    content = header + b"\n" + line(GOOD_BEFORE)
    (home / FILE_NAME).write_bytes(content)
    warnings = Warnings()
    store = Store(home, warn=warnings)
    assert store.record([attempt(run="other")]) is False
    assert store.complete("basics", 1, "other") is False
    assert (home / FILE_NAME).read_bytes() == content
    assert len(warnings) == 1 and one_line(warnings[0])


# Files that are not regular files ------------------------------------------------------

FIFO_PROBE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from autograd_tutor.engine.model import Attempt
    from autograd_tutor.engine.store import Store

    warnings = []
    store = Store(Path(sys.argv[1]), warn=warnings.append)
    attempt = Attempt(id="x.grad", prediction=1.0, actual=1.0, by_hand=1.0, correct=True,
                      skipped=False, pack="basics", exercise=1, run="r")
    print("ready", flush=True)
    if sys.argv[2] == "load":
        store.load()
    saved = store.record([attempt])
    print(repr(saved))
    for message in warnings:
        print(message)
""")


def run_on_fifo(home: Path, first: str) -> list[str]:
    """The probe's output lines after "ready". If the store blocks on the FIFO for more than
    a few seconds, the test opens the other end so the child can finish, and fails."""
    fifo = home / FILE_NAME
    child = subprocess.Popen([sys.executable, "-c", FIFO_PROBE, str(home), first],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # unblocks a writer
            try:
                child.wait(timeout=10)
            finally:
                os.close(reader)
            pytest.fail(f"the store blocked on the FIFO ({first} first)")
        output, errors = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, errors
    return output.splitlines()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("first", [
    "load",
    pytest.param("record"),
])
def test_a_fifo_is_refused_without_hanging(tmp_path: Path, first: str) -> None:
    """Opening a FIFO blocks until the other end opens: the store never opens one, whether
    the run loads first or saves first. Runs in a child process, so a hang fails fast."""
    home = tmp_path / "home"
    home.mkdir()
    os.mkfifo(home / FILE_NAME)
    saved, *messages = run_on_fifo(home, first)
    assert saved == "False"
    assert len(messages) == 1 and "regular file" in messages[0]
    assert stat.S_ISFIFO(os.lstat(home / FILE_NAME).st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_symlink_to_dev_zero_is_refused(store: Store, warnings: Warnings) -> None:
    store.home.mkdir(parents=True)
    store.path.symlink_to("/dev/zero")
    assert store.load() == History()
    assert store.read_only
    assert len(warnings) == 1 and "regular file" in warnings[0] and one_line(warnings[0])
    assert store.record([attempt()]) is False
    assert os.readlink(store.path) == "/dev/zero"
    # Saving first, without a load, refuses too (and writes nothing to the device).
    other = Warnings()
    assert Store(store.home, warn=other).record([attempt()]) is False
    assert len(other) == 1 and one_line(other[0])
    assert os.readlink(store.path) == "/dev/zero"


def test_a_directory_in_place_of_the_file_is_refused(store: Store,
                                                     warnings: Warnings) -> None:
    store.path.mkdir(parents=True)
    (store.path / "notes.txt").write_text("mine", encoding="utf-8")
    assert store.load() == History()
    assert len(warnings) == 1 and one_line(warnings[0])
    assert store.record([attempt()]) is False
    assert store.reset(None, None) is False
    assert (store.path / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert Store(store.home, warn=Warnings()).record([attempt()]) is False


# The old progress.json -----------------------------------------------------------------


def legacy_attempt(**fields: object) -> dict:
    row = {"exercise": 1, "id": "x.grad", "prediction": 30.0, "actual": 34.0,
           "by_hand": 34.0, "correct": False, "skipped": False,
           "time": "2024-01-01T00:00:00+00:00", "run": "old"}
    return {**row, **fields}


def write_legacy(home: Path, data: object) -> bytes:
    home.mkdir(parents=True, exist_ok=True)
    content = json.dumps(data, indent=1).encode()
    (home / LEGACY).write_bytes(content)
    return content


def test_version_1_is_converted_and_kept(store: Store, warnings: Warnings) -> None:
    v1_attempts = [
        legacy_attempt(),
        legacy_attempt(exercise=5, id="a.grad@detach", prediction=None, actual=None,
                       by_hand=None, correct=True, time="2024-01-02T00:00:00+00:00",
                       run="old5"),
    ]
    v1_completed = [{"exercise": 1, "run": "old", "time": "2024-01-01T00:00:00+00:00"}]
    content = write_legacy(store.home, {"schema_version": 1, "attempts": v1_attempts,
                                        "completed": v1_completed})

    history = store.load()
    assert len(history.attempts) == 2
    for old, new in zip(v1_attempts, history.attempts, strict=True):
        assert {key: getattr(new, key) for key in old} == old
        assert (new.pack, new.kind, new.hints_used, new.misconception) == (
            "basics", "exercise", 0, None)
    assert history.completed == [Completion("basics", 1, "old", "2024-01-01T00:00:00+00:00")]
    assert history.checks == []
    assert warnings == [] and copies(store.home) == []

    # The history is now progress.jsonl; the old file is kept, renamed, byte for byte.
    assert not (store.home / LEGACY).exists()
    (kept,) = legacy_copies(store.home)
    assert ".from-v1-" in kept.name
    assert kept.read_bytes() == content
    header, rows = rows_on_disk(store.path)
    assert header == {"schema_version": SCHEMA_VERSION}
    assert [row["run"] for row in rows if row["type"] == "attempt"] == ["old", "old5"]

    # The next write appends to it; the old history stays in front.
    assert store.record([attempt(exercise=2, id="x.grad", run="new")])
    again = Store(store.home, warn=warnings).load()
    assert [a.run for a in again.attempts] == ["old", "old5", "new"]
    assert again.completed == history.completed
    status = statuses(again, [("basics", 1), ("basics", 2), ("basics", 5)])
    assert (status["basics/1"].status, status["basics/1"].correct,
            status["basics/1"].asked) == ("done", 0, 1)
    assert status["basics/5"].status == "in progress"
    assert legacy_copies(store.home) == [kept] and warnings == []


# The names that changed (design: "Misconception names were unified").
RENAMES = [
    # (legacy row fields, the converted misconception)
    ({"exercise": 1, "misconception": "zero-instead-of-none"}, "zero-not-none"),
    ({"exercise": 5, "id": "a.grad@detach", "misconception": "everything-cut"},
     "detach-cuts-everything"),
    ({"exercise": 4, "id": "w.grad@1", "misconception": "sign-flipped"},
     "gradient-sign-flipped"),
    ({"exercise": 4, "id": "w@1", "misconception": "sign-flipped"}, "ascent-not-descent"),
    ({"exercise": 0, "id": "x.grad", "concept": "chain-rule", "misconception": "sign-flipped"},
     "sign-error"),
    ({"exercise": 2, "misconception": "something-else"}, "something-else"),
]


def test_version_2_is_converted_with_practice_rows_and_renamed_names(
        store: Store, warnings: Warnings) -> None:
    v2_attempts = [legacy_attempt(**{"typed": str(n), "hints_used": 1, "concept": "c",
                                     "run": f"r{n}", **fields})
                   for n, (fields, _) in enumerate(RENAMES)]
    practice = legacy_attempt(exercise=0, id="y.grad", run="practice", typed="7",
                              hints_used=0, concept="polynomial", misconception=None)
    v2 = {"schema_version": 2, "attempts": [*v2_attempts, practice],
          "completed": [{"exercise": 4, "run": "r2", "time": "2024-01-01T00:00:00+00:00"},
                        {"exercise": 0, "run": "practice",
                         "time": "2024-01-01T00:00:00+00:00"}],
          "checks": [{"exercise": 4, "passed": True, "file": "train_loop.py",
                      "time": "2024-01-03T00:00:00+00:00"}]}
    content = write_legacy(store.home, v2)

    history = store.load()
    assert [a.misconception for a in history.attempts[:-1]] == [new for _, new in RENAMES]
    for old, new in zip(v2_attempts, history.attempts, strict=False):
        assert (new.pack, new.exercise, new.kind) == (
            (None, None, "practice") if old["exercise"] == 0 else
            ("basics", old["exercise"], "exercise"))
        assert (new.id, new.typed, new.hints_used, new.run) == (
            old["id"], old["typed"], old["hints_used"], old["run"])
    converted = history.attempts[-1]
    assert (converted.pack, converted.exercise, converted.kind) == (None, None, "practice")
    assert (converted.id, converted.typed, converted.concept) == ("y.grad", "7", "polynomial")
    assert history.completed == [Completion("basics", 4, "r2", "2024-01-01T00:00:00+00:00")]
    assert history.checks == [Check("basics", 4, True, "train_loop.py",
                                    "2024-01-03T00:00:00+00:00")]
    (kept,) = legacy_copies(store.home)
    assert ".from-v2-" in kept.name and kept.read_bytes() == content
    assert warnings == []
    # Loading again reads the converted file, not a second conversion.
    assert Store(store.home, warn=warnings).load() == history
    assert legacy_copies(store.home) == [kept] and warnings == []


@pytest.mark.parametrize("version", [1, 2])
def test_the_kept_legacy_file_is_named_after_it(store: Store, version: int) -> None:
    content = write_legacy(store.home, {"schema_version": version,
                                        "attempts": [legacy_attempt()], "completed": []})
    store.load()
    (kept,) = legacy_copies(store.home)
    assert kept.name.startswith(f"{LEGACY}.from-v{version}-")
    stamp_and_pid = kept.name.removeprefix(f"{LEGACY}.from-v{version}-")
    assert stamp_and_pid.endswith(f"-{os.getpid()}")
    assert kept.read_bytes() == content


def test_a_legacy_file_beside_a_new_one_is_not_read(store: Store, warnings: Warnings) -> None:
    assert store.record([GOOD_BEFORE])
    content = write_legacy(store.home, {"schema_version": 2, "attempts": [legacy_attempt()],
                                        "completed": [], "checks": []})
    assert store.load().attempts == [GOOD_BEFORE]
    assert (store.home / LEGACY).read_bytes() == content
    assert warnings == []


DAMAGED_LEGACY = {
    "empty file": b"",
    "truncated JSON": b'{"schema_version": 2, "attempts": [{"exercise": 1, "id": "x.gr',
    "not JSON": b"this is not json\n",
    "binary junk": b"\x00\xff\xfe garbage",
    "a JSON list": b"[1, 2, 3]",
    "a JSON string": b'"progress"',
    "no schema version": b'{"attempts": [], "completed": []}',
    "schema as text": b'{"schema_version": "2", "attempts": [], "completed": [], "checks": []}',
    "schema as bool": b'{"schema_version": true, "attempts": [], "completed": []}',
}


@pytest.mark.parametrize("content", list(DAMAGED_LEGACY.values()), ids=list(DAMAGED_LEGACY))
def test_a_damaged_legacy_file_is_left_untouched(store: Store, warnings: Warnings,
                                                 content: bytes) -> None:
    store.home.mkdir(parents=True)
    (store.home / LEGACY).write_bytes(content)

    assert store.load() == History()
    assert len(warnings) == 1 and one_line(warnings[0])
    assert LEGACY in warnings[0]

    # A new history starts beside it; the damaged file stays as it was.
    new = attempt()
    assert store.record([new])
    assert store.load().attempts == [new]
    assert (store.home / LEGACY).read_bytes() == content
    assert legacy_copies(store.home) == []
    assert len(warnings) == 1


def test_legacy_rows_that_cannot_be_converted_stay_in_the_kept_file(
        store: Store, warnings: Warnings) -> None:
    good = legacy_attempt(typed="31", hints_used=0, concept="polynomial", misconception=None)
    content = write_legacy(store.home, {
        "schema_version": 2,
        "attempts": [1, good, {"exercise": [1], "id": "x.grad"}, "row"],
        "completed": {}, "checks": None})
    history = store.load()
    assert [(a.id, a.typed, a.run) for a in history.attempts] == [("x.grad", "31", "old")]
    (kept,) = legacy_copies(store.home)
    assert kept.read_bytes() == content


def test_a_newer_legacy_file_is_left_untouched(store: Store, warnings: Warnings) -> None:
    content = write_legacy(store.home, {"schema_version": 99, "attempts": [],
                                        "completed": [], "checks": []})
    assert store.load() == History()
    assert store.read_only
    assert len(warnings) == 1 and "newer autograd-tutor" in warnings[0]
    assert one_line(warnings[0])
    assert store.record([attempt()]) is False
    assert (store.home / LEGACY).read_bytes() == content
    assert not store.path.exists()


# An unusable home ----------------------------------------------------------------------


def test_home_that_is_a_file_warns_and_saves_nothing(tmp_path: Path, warnings: Warnings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("I am a file", encoding="utf-8")
    monkeypatch.setenv("AUTOGRAD_TUTOR_HOME", str(blocker))
    store = Store(home_dir(), warn=warnings)

    assert store.load() == History()
    assert store.record([attempt()]) is False
    assert store.complete("basics", 1, "run") is False
    assert len(warnings) == 1 and one_line(warnings[0])
    assert store.problem
    assert blocker.read_text(encoding="utf-8") == "I am a file"


def test_unwritable_home_warns_and_saves_nothing(tmp_path: Path, warnings: Warnings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "locked"
    home.mkdir()
    if ROOT:  # permissions don't bind root: refuse the writes instead
        real_open = os.open
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT

        def guarded_open(path, flags, *args, **kwargs):
            if Path(os.fsdecode(path)).parent == home and flags & writing:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", guarded_open)
    else:
        home.chmod(0o500)
    try:
        store = Store(home, warn=warnings)
        assert store.record([attempt()]) is False
        assert store.complete("basics", 1, "run") is False
        assert len(warnings) == 1 and one_line(warnings[0])
    finally:
        home.chmod(0o700)
    assert not (home / FILE_NAME).exists()


def test_home_dir_follows_the_environment(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGRAD_TUTOR_HOME", str(tmp_path / "elsewhere"))
    assert home_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("AUTOGRAD_TUTOR_HOME")
    assert home_dir().name.lower() == "autograd-tutor"


# Statuses ------------------------------------------------------------------------------


def done(exercise: int, run: str) -> Completion:
    return Completion("basics", exercise, run, "2024-01-01T00:00:00+00:00")


def score(rows: list[Attempt], run: str) -> tuple[int, int]:
    """Right and asked in one run, counted here without the store."""
    asked = [a for a in rows if a.run == run and not a.skipped]
    return sum(1 for a in asked if a.correct), len(asked)


def keys(*numbers: int) -> list[tuple[str, int]]:
    return [("basics", n) for n in numbers]


def test_statuses_not_started_in_progress_done() -> None:
    rows = [
        attempt(2, run="a", correct=True),
        attempt(3, run="b", correct=True),
        attempt(3, run="b", correct=False),
        attempt(3, run="b", correct=None, skipped=True),
    ]
    history = History(rows, [done(3, "b")])
    status = statuses(history, keys(1, 2, 3))
    assert set(status) == {"basics/1", "basics/2", "basics/3"}
    one, two, three = status["basics/1"], status["basics/2"], status["basics/3"]
    assert one.status == "not started" and (one.correct, one.asked) == (0, 0)
    assert two.status == "in progress" and (two.correct, two.asked) == score(rows, "a")
    assert three.status == "done" and three.key == "basics/3"
    # Skipped predictions are not asked, so they don't count against the score.
    assert (three.correct, three.asked) == score(rows, "b") == (1, 2)


def test_an_abandoned_run_changes_neither_status_nor_score() -> None:
    rows = [
        attempt(1, run="first", correct=False),
        attempt(1, run="first", correct=False),
        attempt(1, run="second", correct=True),
        attempt(1, run="second", correct=True),
        attempt(1, run="second", correct=False),
    ]
    history = History(rows, [done(1, "first")])
    status = statuses(history, keys(1))["basics/1"]
    assert status.status == "done"  # done once stays done
    assert (status.correct, status.asked) == score(rows, "first")
    # Nor is it shown as the latest: the only finished run is the score itself.
    assert status.latest is None
    later = [*rows, attempt(1, run="third", correct=True), attempt(1, run="third", correct=True)]
    status = statuses(History(later, [done(1, "first"), done(1, "third")]), keys(1))["basics/1"]
    assert (status.correct, status.asked) == score(later, "third")  # the best finished
    assert status.latest is None  # the latest finished run is the best one


def test_the_best_finished_run_is_the_score() -> None:
    rows = [attempt(1, run="good", correct=True), attempt(1, run="good", correct=True),
            attempt(1, run="worse", correct=True), attempt(1, run="worse", correct=False)]
    history = History(rows, [done(1, "good"), done(1, "worse")])
    status = statuses(history, keys(1))["basics/1"]
    assert status.status == "done"
    assert (status.correct, status.asked) == max(score(rows, "good"), score(rows, "worse"))
    assert status.latest == score(rows, "worse")


def test_practice_and_other_packs_do_not_count_for_an_exercise() -> None:
    rows = [attempt(1, run="ex", correct=True),
            attempt(None, pack=None, kind="practice", run="p", correct=False),
            attempt(1, pack="errors", run="other", correct=False)]
    history = History(rows, [done(1, "ex")])
    status = statuses(history, [("basics", 1), ("errors", 1)])
    assert (status["basics/1"].status, status["basics/1"].correct,
            status["basics/1"].asked) == ("done", 1, 1)
    assert (status["errors/1"].status, status["errors/1"].asked) == ("in progress", 1)


def test_a_reveal_run_with_nothing_asked_scores_nothing() -> None:
    history = History([attempt(4, run="reveal", correct=None, skipped=True)],
                      [done(4, "reveal")])
    status = statuses(history, keys(4))["basics/4"]
    assert status.status == "done" and status.asked == 0
