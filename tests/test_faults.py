"""Progress-file faults and concurrent runs: the tutor keeps running and loses nothing.

A damaged progress file is moved aside byte for byte, never overwritten; a home the tutor
cannot read or write gives a warning on stderr and a normal run; several processes
recording at once lose no attempt.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autograd_tutor.cli import app

runner = CliRunner()
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def invoke(*args: str):
    return runner.invoke(app, list(args))


def valid_progress() -> bytes:
    row = {"exercise": 1, "id": "x.grad", "prediction": 31.0, "actual": 34.0,
           "by_hand": 34.0, "correct": False, "skipped": False, "typed": "31",
           "hints_used": 0, "misconception": None, "concept": "polynomial",
           "time": "2024-01-01T00:00:00+00:00", "run": "earlier"}
    data = {"schema_version": 2, "attempts": [row], "completed": [], "checks": []}
    return json.dumps(data, indent=1).encode()


def files_with(home: Path, content: bytes) -> list[Path]:
    """Files in `home` (not the live file, not the lock) that hold exactly `content`."""
    return [path for path in home.iterdir()
            if path.is_file() and path.name != "progress.json"
            and not path.name.endswith(".lock") and path.read_bytes() == content]


def attempts(home: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(
        (home / "progress.json").read_text(encoding="utf-8"))["attempts"]
    return rows


def tool_runs(home: Path) -> None:
    """`list` and `exercise 1 --answer` both succeed, whatever state home is in."""
    listed = invoke("list")
    assert listed.exit_code == 0, listed.output
    assert "Polynomial Gradient" in listed.stdout
    done = invoke("exercise", "1", "--answer", "x.grad=34", "--graph", "none")
    assert done.exit_code == 0, done.output
    assert "Exercise 1 complete" in done.stdout
    for result in (listed, done):
        assert "Traceback" not in result.output


# Damaged files -------------------------------------------------------------------------

DAMAGED = {
    "empty": b"",
    "truncated": valid_progress()[: len(valid_progress()) // 2],
    "not-json": b"this is not JSON\n",
    "binary": b"\xff\xfe\x00\x81 not text",
    "a-list": b"[1, 2, 3]",
    "future-schema": b'{"schema_version": 99, "attempts": [], "completed": [], "checks": []}',
    "no-schema": b'{"attempts": [], "completed": [], "checks": []}',
    "wrong-types": b'{"schema_version": 2, "attempts": "many", "completed": [], "checks": []}',
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_damaged_file_is_moved_aside_and_the_tool_runs(content: bytes, tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    (tutor_env / "progress.json").write_bytes(content)

    listed = invoke("list")
    assert listed.exit_code == 0, listed.output
    assert "warning:" in listed.stderr and "damaged" in listed.stderr
    assert len(files_with(tutor_env, content)) == 1

    done = invoke("exercise", "1", "--answer", "x.grad=34", "--graph", "none")
    assert done.exit_code == 0, done.output
    assert [row["typed"] for row in attempts(tutor_env)] == ["34"]
    kept = files_with(tutor_env, content)
    assert len(kept) == 1, "the damaged bytes must survive, untouched, exactly once"


def test_a_second_damage_does_not_overwrite_the_first(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    for content in (b"first damage", b"second damage"):
        (tutor_env / "progress.json").write_bytes(content)
        assert invoke("list").exit_code == 0
    assert files_with(tutor_env, b"first damage")
    assert files_with(tutor_env, b"second damage")


def test_damaged_file_through_the_real_command(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    (tutor_env / "progress.json").write_bytes(DAMAGED["truncated"])
    command = [sys.executable, "-m", "autograd_tutor", "exercise", "1", "--answer",
               "x.grad=34", "--graph", "none"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr
    assert "Traceback" not in result.stderr
    assert files_with(tutor_env, DAMAGED["truncated"])
    assert [row["typed"] for row in attempts(tutor_env)] == ["34"]


# Homes the tutor cannot use ----------------------------------------------------------------


def test_a_directory_where_the_file_should_be(tutor_env: Path) -> None:
    (tutor_env / "progress.json").mkdir(parents=True)
    (tutor_env / "progress.json" / "notes.txt").write_text("mine")
    tool_runs(tutor_env)
    assert "warning:" in invoke("list").stderr
    assert (tutor_env / "progress.json" / "notes.txt").read_text() == "mine"


def test_home_is_a_file(tutor_env: Path) -> None:
    tutor_env.parent.mkdir(parents=True, exist_ok=True)
    tutor_env.write_text("not a directory")
    tool_runs(tutor_env)
    result = invoke("exercise", "1", "--answer", "x.grad=34", "--graph", "none")
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
        patch.setattr(os, "mkdir", guarded(real_mkdir))
        yield


@pytest.mark.parametrize("read", [True, False], ids=["unreadable", "read-only"])
def test_home_without_permissions(read: bool, tutor_env: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tutor_env.mkdir(parents=True)
    original = valid_progress()
    (tutor_env / "progress.json").write_bytes(original)
    with denied(tutor_env, monkeypatch, read=read):
        listed = invoke("list")
        done = invoke("exercise", "1", "--answer", "x.grad=34", "--graph", "none")
    for result in (listed, done):
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
    assert "Exercise 1 complete" in done.stdout
    assert "warning:" in done.stderr
    if read:
        assert "warning:" in listed.stderr
    else:  # a read-only home still shows what was recorded before
        assert "in progress" in listed.stdout
    assert (tutor_env / "progress.json").read_bytes() == original


# Concurrent runs -----------------------------------------------------------------------------

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from autograd_tutor.model import Attempt
    from autograd_tutor.store import Store

    home, worker, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    store = Store(home, warn=lambda message: print("warning:", message, file=sys.stderr))
    while not go.exists():
        time.sleep(0.002)
    for i in range(int(sys.argv[4])):
        attempt = Attempt(exercise=1, id="x.grad", prediction=float(i), actual=34.0,
                          by_hand=34.0, correct=False, skipped=False, typed=f"{worker}-{i}",
                          run=f"worker-{worker}")
        if not store.record([attempt]):
            sys.exit(f"record {i} of worker {worker} was not saved")
""")


def test_concurrent_processes_lose_no_attempt(tmp_path: Path) -> None:
    home, go = tmp_path / "shared-home", tmp_path / "go"
    workers, records = 6, 10
    children = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(home), str(n), str(go),
                          str(records)], stderr=subprocess.PIPE, text=True)
        for n in range(workers)
    ]
    go.touch()  # all start together, so their writes overlap
    for child in children:
        _, errors = child.communicate(timeout=120)
        assert child.returncode == 0, errors
        assert "warning" not in errors
    typed = sorted(str(row["typed"]) for row in attempts(home))
    assert typed == sorted(f"{n}-{i}" for n in range(workers) for i in range(records))
    assert not list(home.glob("*.tmp")), "no temporary files are left behind"
    assert not list(home.glob("progress.json.damaged*"))
