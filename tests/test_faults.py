"""History-file faults and concurrent runs: the tutor keeps running and loses nothing.

A damaged row of progress.jsonl is set aside into a copy of its own, byte for byte, and the
rest loads; a file written by a newer version is left untouched; the old progress.json is
converted and kept, or, when damaged, left untouched. A home the tutor cannot use gives a
warning on stderr, the run itself, and exit 1 when its answers could not be saved. Several
processes recording at once lose no attempt.

The commands run in-process (Typer's CliRunner), except where a real process is the point:
a FIFO that could block a read or a write for ever, and several processes at once.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.engine import store as store_module

runner = CliRunner()
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
LIVE, LEGACY = "progress.jsonl", "progress.json"
EXERCISE_1 = ["exercise", "1", "--answer", "x.grad=34", "--graph", "none"]


def invoke(*args: str):
    return runner.invoke(app, list(args))


EARLIER = {"type": "attempt", "pack": "basics", "exercise": 1, "kind": "exercise",
           "id": "x.grad", "prediction": 31.0, "actual": 34.0, "by_hand": 34.0,
           "correct": False, "skipped": False, "typed": "31", "hints_used": 0,
           "misconception": None, "concept": "polynomial", "tolerance": "exact",
           "time": "2024-01-01T00:00:00+00:00", "run": "earlier", "judged": True,
           "error": None, "warnings": []}


def valid_progress() -> bytes:
    """A progress.jsonl with one earlier, unfinished attempt at exercise 1."""
    return b'{"schema_version": 3}\n' + json.dumps(EARLIER).encode() + b"\n"


def valid_legacy() -> bytes:
    """The same history as an old (schema 2) progress.json."""
    row = {key: EARLIER[key] for key in ("exercise", "id", "prediction", "actual", "by_hand",
                                         "correct", "skipped", "typed", "hints_used",
                                         "misconception", "concept", "time", "run")}
    data = {"schema_version": 2, "attempts": [row], "completed": [], "checks": []}
    return json.dumps(data, indent=1).encode()


def lines_of(path: Path) -> list[bytes]:
    return [part for part in path.read_bytes().split(b"\n") if part]


def damaged_copies(home: Path) -> list[Path]:
    return sorted(home.glob(LIVE + ".damaged-*"))


def copies_holding(home: Path, damage: bytes) -> list[Path]:
    """The set-aside copies whose rows are exactly the damaged line."""
    return [path for path in damaged_copies(home) if lines_of(path) == [damage]]


def files_with(home: Path, content: bytes) -> list[Path]:
    """Files in `home` that hold exactly `content` (not the lock)."""
    return [path for path in home.iterdir()
            if path.is_file() and not path.name.endswith(".lock")
            and path.read_bytes() == content]


def attempts(home: Path) -> list[dict[str, object]]:
    """The attempt rows of progress.jsonl, read without the store."""
    rows = [json.loads(part) for part in lines_of(home / LIVE)]
    assert rows[0] == {"schema_version": 3}
    return [row for row in rows[1:] if row.get("type") == "attempt"]


def no_traceback(*results) -> None:
    for result in results:
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            repr(result.exception)


def tool_runs(home: Path, *, saves: bool) -> None:
    """`list` and `exercise 1 --answer` both run, whatever state home is in; the exercise
    exits 1 with a message when its answers could not be saved."""
    listed = invoke("list")
    assert listed.exit_code == 0, listed.output
    assert "Polynomial Gradient" in listed.stdout
    done = invoke(*EXERCISE_1)
    assert "Exercise 1 complete" in done.stdout
    if saves:
        assert done.exit_code == 0, done.output
    else:
        assert done.exit_code == 1, done.output
        assert "error:" in done.stderr and "not saved" in done.stderr
    no_traceback(listed, done)


# Damaged rows in progress.jsonl ----------------------------------------------------------

DAMAGED_ROWS = {
    "torn": json.dumps({**EARLIER, "run": "torn"}).encode()[:60],
    "not-json": b"this is not JSON",
    "binary": b"\xff\xfe\x00\x81 not text",
    "a-list": b"[1, 2, 3]",
    "no-type": json.dumps({k: v for k, v in EARLIER.items() if k != "type"}).encode(),
    "wrong-types": json.dumps({**EARLIER, "exercise": [1],
                               "time": "9999-12-31T23:59:59+00:00", "concept": {}}).encode(),
}


@pytest.mark.parametrize("damage", [
    pytest.param(content, id=name, marks=[])
    for name, content in DAMAGED_ROWS.items()])
def test_a_damaged_row_is_set_aside_and_the_tool_runs(damage: bytes, tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    # The damaged row is last and has no newline: the worst place, a torn write.
    (tutor_env / LIVE).write_bytes(valid_progress() + damage)

    listed = invoke("list")
    assert listed.exit_code == 0, listed.output
    assert "warning:" in listed.stderr and "damaged" in listed.stderr
    assert len(copies_holding(tutor_env, damage)) == 1
    # The earlier row still loads: exercise 1 is in progress.
    row = next(line for line in listed.stdout.splitlines() if "Polynomial Gradient" in line)
    assert "in progress" in row

    done = invoke(*EXERCISE_1)
    assert done.exit_code == 0, done.output
    assert [row["typed"] for row in attempts(tutor_env)] == ["31", "34"]
    assert len(copies_holding(tutor_env, damage)) == 1, \
        "the damaged bytes must survive, untouched, exactly once"
    assert len(damaged_copies(tutor_env)) == 1
    no_traceback(listed, done)


def test_a_second_damage_does_not_overwrite_the_first(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    (tutor_env / LIVE).write_bytes(valid_progress())
    for damage in (b"first damage", b"second damage"):
        with (tutor_env / LIVE).open("ab") as file:
            file.write(damage + b"\n")
        assert invoke("list").exit_code == 0
    assert copies_holding(tutor_env, b"first damage")
    assert copies_holding(tutor_env, b"second damage")
    header, *rows = [json.loads(part) for part in lines_of(tutor_env / LIVE)]
    assert header == {"schema_version": 3}
    # The good row is kept, as the same record (rewritten with every field spelled out).
    assert [store_module.attempt_from(row) for row in rows] == [
        store_module.attempt_from(EARLIER)]


def test_a_damaged_row_found_by_an_exercise(tutor_env: Path) -> None:
    """No `list` first: the exercise itself sets the damaged row aside and saves."""
    tutor_env.mkdir(parents=True)
    torn = DAMAGED_ROWS["torn"]
    (tutor_env / LIVE).write_bytes(valid_progress() + torn)
    result = invoke(*EXERCISE_1)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "damaged" in result.stderr
    no_traceback(result)
    assert len(copies_holding(tutor_env, torn)) == 1
    assert [row["typed"] for row in attempts(tutor_env)] == ["31", "34"]


def test_a_full_disk_leaves_the_history_as_it_was(tutor_env: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up part way through the row: exit 1 with one line, the file byte for
    byte as before (no torn row), and no empty `.damaged-` copy once space returns."""
    tutor_env.mkdir(parents=True)
    (tutor_env / LIVE).write_bytes(valid_progress())
    real_write = os.write

    def write(fd: int, data: bytes) -> int:  # room for a few bytes, as on a nearly full disk
        if os.readlink(f"/proc/self/fd/{fd}").endswith(LIVE):
            if len(data) > 10:
                return real_write(fd, bytes(data)[:10])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(store_module.os, "write", write)
    result = invoke(*EXERCISE_1)
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.stderr and "not saved" in result.stderr
    no_traceback(result)
    assert (tutor_env / LIVE).read_bytes() == valid_progress()
    listed = invoke("list")
    assert listed.exit_code == 0 and "warning" not in listed.stderr
    assert damaged_copies(tutor_env) == []


# A progress.jsonl of a newer version ---------------------------------------------------------


def newer_progress() -> bytes:
    return (b'{"schema_version": 4}\n' + json.dumps(EARLIER).encode() + b"\n"
            + b'{"type": "something-new-in-v4"}\n')


def test_a_newer_file_is_shown_and_left_untouched(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    content = newer_progress()
    (tutor_env / LIVE).write_bytes(content)
    listed = invoke("list")
    assert listed.exit_code == 0, listed.output
    assert "newer autograd-tutor" in listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "Polynomial Gradient" in line)
    assert "in progress" in row
    assert (tutor_env / LIVE).read_bytes() == content
    assert damaged_copies(tutor_env) == []
    no_traceback(listed)


def test_a_run_does_not_write_into_a_newer_file(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    content = newer_progress()
    (tutor_env / LIVE).write_bytes(content)
    done = invoke(*EXERCISE_1)
    assert (tutor_env / LIVE).read_bytes() == content
    assert "Exercise 1 complete" in done.stdout
    assert done.exit_code == 1, done.output
    assert "newer autograd-tutor" in done.stderr and "not saved" in done.stderr
    no_traceback(done)


# The old progress.json -----------------------------------------------------------------------


def test_an_old_file_is_converted_and_kept(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    content = valid_legacy()
    (tutor_env / LEGACY).write_bytes(content)
    listed = invoke("list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if "Polynomial Gradient" in line)
    assert "in progress" in row
    assert not (tutor_env / LEGACY).exists()
    (kept,) = files_with(tutor_env, content)
    assert ".from-v2-" in kept.name
    done = invoke(*EXERCISE_1)
    assert done.exit_code == 0, done.output
    assert [row["typed"] for row in attempts(tutor_env)] == ["31", "34"]
    assert files_with(tutor_env, content) == [kept]
    no_traceback(listed, done)


def test_an_old_file_is_converted_when_the_first_command_saves(
        tutor_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`exercise` right after the upgrade (no `list` first) converts and saves at once."""
    monkeypatch.setattr(store_module, "LOCK_NOTICE", 0.2)
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT", 1.0)  # a self-deadlock fails fast
    tutor_env.mkdir(parents=True)
    content = valid_legacy()
    (tutor_env / LEGACY).write_bytes(content)
    done = invoke(*EXERCISE_1)
    assert done.exit_code == 0, done.output
    assert "warning:" not in done.stderr
    assert [row["typed"] for row in attempts(tutor_env)] == ["31", "34"]
    assert len(files_with(tutor_env, content)) == 1 and not (tutor_env / LEGACY).exists()


DAMAGED_LEGACY = {
    "empty": b"",
    "truncated": valid_legacy()[: len(valid_legacy()) // 2],
    "not-json": b"this is not JSON\n",
    "binary": b"\xff\xfe\x00\x81 not text",
    "a-list": b"[1, 2, 3]",
    "no-schema": b'{"attempts": [], "completed": [], "checks": []}',
    "schema-as-text": b'{"schema_version": "2", "attempts": [], "completed": []}',
}


@pytest.mark.parametrize("content", DAMAGED_LEGACY.values(), ids=DAMAGED_LEGACY.keys())
def test_a_damaged_old_file_is_left_untouched_and_the_tool_runs(content: bytes,
                                                                tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    (tutor_env / LEGACY).write_bytes(content)

    listed = invoke("list")
    assert listed.exit_code == 0, listed.output
    assert "warning:" in listed.stderr and LEGACY in listed.stderr

    done = invoke(*EXERCISE_1)
    assert done.exit_code == 0, done.output
    assert [row["typed"] for row in attempts(tutor_env)] == ["34"]
    # Left where it was, as it was: not renamed, not copied, not rewritten.
    assert (tutor_env / LEGACY).read_bytes() == content
    assert files_with(tutor_env, content) == [tutor_env / LEGACY]
    no_traceback(listed, done)


def test_an_old_file_of_a_newer_version_is_left_untouched(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    content = b'{"schema_version": 99, "attempts": [], "completed": [], "checks": []}'
    (tutor_env / LEGACY).write_bytes(content)
    tool_runs(tutor_env, saves=False)
    assert "newer autograd-tutor" in invoke("list").stderr
    assert (tutor_env / LEGACY).read_bytes() == content
    assert not (tutor_env / LIVE).exists()


def test_a_damaged_old_file_found_by_an_exercise(tutor_env: Path) -> None:
    """No `list` first: the exercise warns, leaves the old file as it is, and saves."""
    tutor_env.mkdir(parents=True)
    content = DAMAGED_LEGACY["truncated"]
    (tutor_env / LEGACY).write_bytes(content)
    result = invoke(*EXERCISE_1)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr
    no_traceback(result)
    assert (tutor_env / LEGACY).read_bytes() == content
    assert [row["typed"] for row in attempts(tutor_env)] == ["34"]


# Files that are not regular files --------------------------------------------------------


@pytest.mark.parametrize("name", [LIVE, LEGACY])
def test_a_directory_where_the_file_should_be(name: str, tutor_env: Path) -> None:
    (tutor_env / name).mkdir(parents=True)
    (tutor_env / name / "notes.txt").write_text("mine")
    tool_runs(tutor_env, saves=False)
    assert "warning:" in invoke("list").stderr
    assert (tutor_env / name / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_symlink_to_dev_zero(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    (tutor_env / LIVE).symlink_to("/dev/zero")
    tool_runs(tutor_env, saves=False)
    listed = invoke("list")
    assert listed.stderr.count("\n") == 1 and "regular file" in listed.stderr
    assert os.readlink(tutor_env / LIVE) == "/dev/zero"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "autograd_tutor", *args]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_the_file_lists_promptly(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    os.mkfifo(tutor_env / LIVE)
    result = subprocess.run(cli("list"), capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "Polynomial Gradient" in result.stdout
    (message,) = result.stderr.splitlines()  # one line, saying what is wrong
    assert message.startswith("warning:") and "regular file" in message
    assert stat.S_ISFIFO(os.lstat(tutor_env / LIVE).st_mode)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_the_file_does_not_hang_an_exercise(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    fifo = tutor_env / LIVE
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(cli(*EXERCISE_1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    assert child.stdout is not None and child.stderr is not None
    try:
        # Wait (however slow the machine) until the answer is in; the save comes next.
        deadline = time.monotonic() + 180
        for text in child.stdout:
            if "Predict x.grad" in text or time.monotonic() > deadline:
                break
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets a blocked writer go
            try:
                child.wait(timeout=15)
            finally:
                os.close(reader)
            pytest.fail("`exercise` blocked on the FIFO")
        output, errors = child.stdout.read(), child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 1, errors
    assert "Exercise 1 complete" in output
    assert "regular file" in errors and "not saved" in errors
    assert "Traceback" not in errors
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# Homes the tutor cannot use ----------------------------------------------------------------


def test_home_is_a_file(tutor_env: Path) -> None:
    tutor_env.parent.mkdir(parents=True, exist_ok=True)
    tutor_env.write_text("not a directory")
    tool_runs(tutor_env, saves=False)
    result = invoke(*EXERCISE_1)
    assert "warning:" in result.stderr
    assert tutor_env.read_text() == "not a directory"


def _inside(path: object, home: Path) -> bool:
    try:
        return Path(os.fsdecode(path)).resolve().is_relative_to(home.resolve())  # type: ignore[arg-type]
    except (TypeError, ValueError, OSError):
        return False


@contextmanager
def denied(home: Path, monkeypatch: pytest.MonkeyPatch, *, read: bool) -> Iterator[None]:
    """Permissions that bite even as root: chmod when they apply, else refuse the calls.

    `read=True` is an unreadable directory (mode 0); `read=False` a read-only one (0o555).
    """
    if not ROOT:
        mode = home.stat().st_mode
        home.chmod(0 if read else stat.S_IRUSR | stat.S_IXUSR)
        try:
            yield
        finally:
            home.chmod(mode)
        return

    def refuse(path: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))  # type: ignore[arg-type]

    real_open, real_os_open = io.open, os.open
    real_replace, real_mkdir = os.replace, os.mkdir
    real_link, real_rename = os.link, os.rename
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def guarded_open(file, mode="r", *args, **kwargs):
        if _inside(file, home) and (read or set(mode) & set("wax+")):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if _inside(path, home) and (read or flags & writing):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded(real: Callable[..., object]) -> Callable[..., object]:
        def call(*paths: object, **kwargs: object) -> object:
            if any(_inside(path, home) for path in paths[:2]):
                refuse(paths[0])
            return real(*paths, **kwargs)
        return call

    with monkeypatch.context() as patch:
        patch.setattr(io, "open", guarded_open)
        patch.setattr(os, "open", guarded_os_open)
        patch.setattr(os, "replace", guarded(real_replace))
        patch.setattr(os, "rename", guarded(real_rename))
        patch.setattr(os, "link", guarded(real_link))
        patch.setattr(os, "mkdir", guarded(real_mkdir))
        yield


@pytest.mark.parametrize("name, original", [(LIVE, valid_progress()),
                                            (LEGACY, valid_legacy())], ids=["jsonl", "legacy"])
@pytest.mark.parametrize("read", [True, False], ids=["unreadable", "read-only"])
def test_home_without_permissions(read: bool, name: str, original: bytes, tutor_env: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tutor_env.mkdir(parents=True)
    (tutor_env / name).write_bytes(original)
    with denied(tutor_env, monkeypatch, read=read):
        listed = invoke("list")
        done = invoke(*EXERCISE_1)
    assert listed.exit_code == 0, listed.output
    assert "Exercise 1 complete" in done.stdout
    # The answers could not be saved: the run says so and exits 1.
    assert done.exit_code == 1, done.output
    assert "warning:" in done.stderr and "not saved" in done.stderr
    if read:
        assert "warning:" in listed.stderr
    else:  # a read-only home still shows what was recorded before
        row = next(line for line in listed.stdout.splitlines()
                   if "Polynomial Gradient" in line)
        assert "in progress" in row
    assert (tutor_env / name).read_bytes() == original
    assert sorted(p.name for p in tutor_env.iterdir()) == [name]
    no_traceback(listed, done)


# Concurrent runs -----------------------------------------------------------------------------

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from autograd_tutor.engine.model import Attempt
    from autograd_tutor.engine.store import attempt_from, Store

    home, worker, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    store = Store(home, warn=lambda message: print("warning:", message, file=sys.stderr))
    go.with_name(f"ready-{worker}").touch()
    while not go.exists():
        time.sleep(0.002)
    if sys.argv[5] == "load":  # as the home screen does before a run
        store.load()
    for i in range(int(sys.argv[4])):
        attempt = Attempt(pack="basics", exercise=1, id="x.grad", prediction=float(i),
                          actual=34.0, by_hand=34.0, correct=False, skipped=False,
                          typed=f"{worker}-{i}", run=f"worker-{worker}")
        if not store.record([attempt]):
            sys.exit(f"record {i} of worker {worker} was not saved")
""")


def run_workers(home: Path, go: Path, workers: int, records: int, first: str) -> None:
    children = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(home), str(n), str(go),
                          str(records), first], stderr=subprocess.PIPE, text=True)
        for n in range(workers)
    ]
    # Started, all of them, before any writes: so their writes overlap.
    for n, child in enumerate(children):
        while not go.with_name(f"ready-{n}").exists():
            assert child.poll() is None, child.communicate()
            time.sleep(0.01)  # polling for the event, not waiting for a time
    go.touch()
    for child in children:
        _, errors = child.communicate(timeout=120)
        assert child.returncode == 0, errors
        assert "warning" not in errors


def check_whole(home: Path) -> None:
    for part in lines_of(home / LIVE):
        json.loads(part)  # every line whole: no interleaved or torn writes
    assert not list(home.glob("*.tmp")), "no temporary files are left behind"
    assert not damaged_copies(home)


def test_concurrent_processes_lose_no_attempt(tmp_path: Path) -> None:
    home, go = tmp_path / "shared-home", tmp_path / "go"
    workers, records = 6, 10
    run_workers(home, go, workers, records, "record")
    typed = sorted(str(row["typed"]) for row in attempts(home))
    assert typed == sorted(f"{n}-{i}" for n in range(workers) for i in range(records))
    check_whole(home)


def test_concurrent_first_runs_convert_an_old_file_once(tmp_path: Path) -> None:
    home, go = tmp_path / "shared-home", tmp_path / "go"
    home.mkdir()
    content = valid_legacy()
    (home / LEGACY).write_bytes(content)
    workers, records = 4, 5
    run_workers(home, go, workers, records, "load")
    typed = [str(row["typed"]) for row in attempts(home)]
    assert typed[0] == "31" and typed.count("31") == 1  # the old history, once, first
    assert sorted(typed[1:]) == sorted(f"{n}-{i}" for n in range(workers)
                                       for i in range(records))
    assert len(files_with(home, content)) == 1 and not (home / LEGACY).exists()
    check_whole(home)
