"""The learner's history: every attempt, completion and check, kept safe.

One append-only JSON Lines file in the app directory (or $AUTOGRAD_TUTOR_HOME):

    {"schema_version": 3}
    {"type": "attempt", "id": "x.grad", "prediction": 31.0, ...}
    {"type": "completed", "pack": "...", "exercise": 1, "run": "...", "time": "..."}

Saving appends a few lines under a file lock, so it costs the same with 10 or 100,000
attempts and concurrent runs lose nothing. Every row is validated into a typed record on
load; a damaged row is set aside into a `.damaged-...` copy and the rest loads. A file
written by a newer version is left untouched and only read. Nothing is ever dropped: the
file of an older version (`progress.json`) is converted, and kept, renamed, beside it.
"""

from __future__ import annotations

import math
import os
import stat
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from msgspec import Struct, field

from autograd_tutor.engine.digest import Covers, Digest, exercise_key
from autograd_tutor.engine.model import (
    ATTEMPT_FIELDS,
    Asked,
    Attempt,
    Check,
    Completion,
    History,
)

SCHEMA_VERSION = 3
FILE_NAME = "progress.jsonl"
# The digest of the log (engine/digest.py): a cache beside it, rebuilt from it when stale.
STATE_NAME = FILE_NAME + ".state"
MAX_STATE = 64 * 1024 * 1024
# How much of the log's end, just before the part a digest covers, its hash is taken of.
TAIL = 4096
LEGACY_NAME = "progress.json"
APP_NAME = "autograd-tutor"
HOME_VARIABLE = "AUTOGRAD_TUTOR_HOME"
# How long a run waits for another one's lock before it gives up (and says so, exit 1).
LOCK_TIMEOUT = 120.0
LOCK_NOTICE = 2.0
MAX_BYTES = 512 * 1024 * 1024
MAX_LINE = 1_000_000

Warn = Callable[[str], None]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StoreError(Exception):
    """Why the history could not be read or saved; the message says what to do."""


# Rows <-> records ------------------------------------------------------------------------


def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment.astimezone(UTC)
        return 1970 <= moment.year <= 9000
    except (ValueError, OverflowError):
        return False


MAX_VALUE_ELEMENTS = 10_000  # a tensor kept in a row


def _value_ok(value: object) -> bool:
    """A stored prediction or answer: None, a word, a flag, a finite number, or a tensor
    (nested lists of finite numbers, bounded)."""
    if value is None or isinstance(value, str | bool):
        return True
    if isinstance(value, list):
        return _tensor_ok(value, [0], 0)
    return _number_ok(value)


def _number_ok(value: object) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer of hundreds of digits: no float holds it
        return False


def _tensor_ok(value: list[Any], count: list[int], depth: int) -> bool:
    if not value or depth > 8:
        return False
    for item in value:
        if isinstance(item, list):
            if not _tensor_ok(item, count, depth + 1):
                return False
        elif not _number_ok(item):
            return False
        count[0] += 1
        if count[0] > MAX_VALUE_ELEMENTS:
            return False
    return True


_CHECKS: dict[str, Callable[[object], bool]] = {
    "id": lambda v: isinstance(v, str) and bool(v),
    "prediction": _value_ok,
    "actual": _value_ok,
    "by_hand": _value_ok,
    "correct": lambda v: v is None or isinstance(v, bool),
    "skipped": lambda v: isinstance(v, bool),
    "pack": lambda v: v is None or isinstance(v, str),
    "exercise": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
    "kind": lambda v: v in tuple(Asked),
    "typed": lambda v: isinstance(v, str),
    "hints_used": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "misconception": lambda v: v is None or isinstance(v, str),
    "concept": lambda v: isinstance(v, str),
    "tolerance": lambda v: isinstance(v, str),
    "time": _is_time,
    "run": lambda v: isinstance(v, str),
    "judged": lambda v: isinstance(v, bool),
    "error": lambda v: v is None or isinstance(v, dict),
    "warnings": lambda v: isinstance(v, list) and all(isinstance(w, str) for w in v),
    "inconsistent_with": lambda v: isinstance(v, list) and all(isinstance(w, str) for w in v),
}


def _number(value: object) -> object:
    if isinstance(value, list):
        return [_number(item) for item in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def attempt_from(row: dict[str, Any]) -> Attempt:
    """The typed record, or ValueError naming the field that is wrong."""
    values: dict[str, Any] = {}
    for name in ATTEMPT_FIELDS:
        if name not in row:
            if name in ("id", "prediction", "actual", "by_hand", "correct", "skipped"):
                raise ValueError(f"attempt without {name!r}")
            continue
        value = row[name]
        if not _CHECKS[name](value):
            raise ValueError(f"attempt field {name!r} has a wrong value")
        values[name] = value
    for name in ("prediction", "actual", "by_hand"):
        values[name] = _number(values[name])
    values["kind"] = Asked(values.get("kind", Asked.EXERCISE))
    values["warnings"] = tuple(values.get("warnings", ()))
    values["inconsistent_with"] = tuple(values.get("inconsistent_with", ()))
    return Attempt(**values)


def completion_from(row: dict[str, Any]) -> Completion:
    pack, exercise, run, moment = (row.get(k) for k in ("pack", "exercise", "run", "time"))
    if not (isinstance(pack, str) and isinstance(exercise, int) and not isinstance(exercise, bool)
            and isinstance(run, str) and _is_time(moment)):
        raise ValueError("completion with a wrong field")
    return Completion(pack, exercise, run, str(moment))


def check_from(row: dict[str, Any]) -> Check:
    pack, exercise, passed, file, moment = (row.get(k) for k in
                                           ("pack", "exercise", "passed", "file", "time"))
    if not (isinstance(pack, str) and isinstance(exercise, int)
            and not isinstance(exercise, bool) and isinstance(passed, bool)
            and isinstance(file, str) and _is_time(moment)):
        raise ValueError("check with a wrong field")
    return Check(pack, exercise, passed, file, str(moment))


def row_of(record: Attempt | Completion | Check) -> dict[str, Any]:
    if isinstance(record, Attempt):
        return {"type": "attempt", **record.to_row()}
    kind = "completed" if isinstance(record, Completion) else "check"
    return {"type": kind, **{name: getattr(record, name) for name in record.__struct_fields__}}


def _line(record: Attempt | Completion | Check) -> str:
    # allow_nan=False: a NaN would make the file unreadable as JSON; none reaches here.
    import json  # only for writing: reading goes through msgspec, so `list` never loads it

    return json.dumps(row_of(record), sort_keys=True, allow_nan=False) + "\n"


def _add(history: History, row: object) -> None:
    if not isinstance(row, dict):
        raise ValueError("not a record")
    kind = row.get("type")
    if kind == "attempt":
        history.attempts.append(attempt_from(row))
    elif kind == "completed":
        history.completed.append(completion_from(row))
    elif kind == "check":
        history.checks.append(check_from(row))
    else:
        raise ValueError(f"unknown record type {kind!r}")


# Reading the file safely -----------------------------------------------------------------


def read_regular(path: Path, limit: int = MAX_BYTES) -> bytes | None:
    """The file's bytes; None when there is none. Refuses what could hang or flood a read:
    FIFOs, devices, directories, and files over `limit` (StoreError with the reason)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StoreError(f"can't read {path}: {_reason(error)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"{path} is not a regular file; move it away, or set "
                         f"{HOME_VARIABLE} to another directory")
    if info.st_size > limit:
        raise StoreError(f"{path} is larger than {limit // (1024 * 1024)} MB; move it away, "
                         f"or set {HOME_VARIABLE} to another directory")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StoreError(f"can't read {path}: {_reason(error)}") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # swapped since the stat
            raise StoreError(f"{path} is not a regular file")
        return file.read(limit + 1)[:limit]


class Parsed(Struct):
    """What a progress log held: its header's version, the rows, and the lines set aside."""

    history: History
    damaged: list[bytes]  # the raw lines that were set aside, byte for byte
    version: int
    newer: bool = False


def _row(raw: bytes) -> object:
    if len(raw) > MAX_LINE:
        raise ValueError("line too long")
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        # json writes a lone surrogate (from a file name that isn't UTF-8) as an escape
        # msgspec refuses; such a row is still one of ours.
        import json

        return json.loads(raw.decode("utf-8"))


def parse_log(data: bytes) -> Parsed:
    """Every valid row of the log; damaged lines are returned to be set aside."""
    data = data.removeprefix(b"\xef\xbb\xbf")  # a BOM is simply accepted
    lines = data.split(b"\n")
    history = History()
    damaged: list[bytes] = []
    version = SCHEMA_VERSION
    start = 0
    if lines and lines[0].strip():
        try:
            header = _row(lines[0])
        except (ValueError, RecursionError):
            header = None
        if isinstance(header, dict) and "schema_version" in header:
            found = header.get("schema_version")
            version = found if isinstance(found, int) and not isinstance(found, bool) else -1
            start = 1
    newer = version > SCHEMA_VERSION
    for raw in lines[start:]:
        if not raw.strip():
            continue
        try:
            _add(history, _row(raw.rstrip(b"\r")))
        except (ValueError, RecursionError, TypeError):
            damaged.append(raw)
    return Parsed(history, damaged, version, newer)


# The store -------------------------------------------------------------------------------


class Store(Struct):
    """Reads and appends to the history. Reading problems become warnings; a save that
    fails returns False (the CLI then exits 1 and says where the answers are)."""

    home: Path
    warn: Warn
    read_only: bool = False
    _warned: set[str] = field(default_factory=set)
    problem: str = ""
    _loaded: bool = False
    _filelock: Any = None

    @property
    def path(self) -> Path:
        return self.home / FILE_NAME

    @property
    def legacy_path(self) -> Path:
        return self.home / LEGACY_NAME

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.warn(message)

    def _refuse(self, message: str) -> None:
        self.read_only = True
        self.problem = message
        self._warn_once(message)

    def load(self) -> History:
        self._loaded = True
        try:
            data = read_regular(self.path)
            if data is None:
                return self._load_legacy()
        except StoreError as error:
            self._refuse(f"{error}; progress will not be saved this run")
            return History()
        parsed = parse_log(data)
        if parsed.version < 0 or (parsed.version != SCHEMA_VERSION and not parsed.newer):
            self._refuse(f"{self.path} has a schema version this autograd-tutor does not "
                         "know; it is left untouched and progress will not be saved")
            return parsed.history
        if parsed.newer:
            self._refuse(f"{self.path} was written by a newer autograd-tutor; upgrade, or "
                         f"set {HOME_VARIABLE}. It is left untouched; this run reads what it "
                         "understands and saves nothing")
            return parsed.history
        if parsed.damaged:
            self._set_aside(parsed.damaged)
        return parsed.history

    def _set_aside(self, damaged: list[bytes]) -> None:
        """Move damaged rows into a copy of their own, then drop them from the log."""
        try:
            with self._lock():
                data = read_regular(self.path)
                if data is None:
                    return
                parsed = parse_log(data)
                if not parsed.damaged or parsed.newer:
                    return
                copy = self._aside_name("damaged")
                _write_new(copy, b"\n".join(parsed.damaged) + b"\n")
                self._rewrite(parsed.history)
        except (OSError, StoreError, _LockTimeout) as error:
            self._warn_once(f"{len(damaged)} damaged row(s) in {self.path} were skipped and "
                            f"left in place ({error})")
            return
        self._warn_once(f"{len(damaged)} damaged row(s) in {self.path} were set aside in "
                        f"{copy}; the rest of your history is loaded")

    def _aside_name(self, why: str, name: str = FILE_NAME) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = self.path.with_name(f"{name}.{why}-{stamp}-{os.getpid()}")
        target, count = base, 1
        while target.exists() or target.is_symlink():  # never replace an earlier copy
            count += 1
            target = base.with_name(f"{base.name}-{count}")
        return target

    # Legacy progress.json (schema 1 and 2) --------------------------------------------

    def _load_legacy(self) -> History:
        try:
            data = read_regular(self.legacy_path)
        except StoreError as error:
            self._refuse(f"{error}; progress will not be saved this run")
            return History()
        if data is None:
            return History()
        from autograd_tutor.engine import legacy  # only for the one conversion

        try:
            history, version = legacy.convert(data)
        except legacy.NewerFile:
            self._refuse(f"{self.legacy_path} was written by a newer autograd-tutor; "
                         f"upgrade, or set {HOME_VARIABLE}. It is left untouched")
            return History()
        except legacy.DamagedFile as problem:
            self._warn_once(f"{self.legacy_path} could not be read ({problem}); it is left "
                            "untouched and a new history is started beside it")
            return History()
        self._migrate(history, version)
        return history

    def _migrate(self, history: History, version: int) -> None:
        """Write the converted history, then keep the old file under another name."""
        try:
            with self._lock():
                if self.path.exists():
                    return  # another run migrated it a moment ago
                self._rewrite(history)
                os.replace(self.legacy_path, self._aside_name(f"from-v{version}", LEGACY_NAME))
        except (OSError, _LockTimeout) as error:
            self._warn_once(f"could not convert {self.legacy_path} ({error}); it is read "
                            "and kept as it is")
            self.read_only = True

    # The digest: what list, review and next read instead of the whole history ----------

    @property
    def state_path(self) -> Path:
        return self.home / STATE_NAME

    def digest(self) -> Digest:
        """The digest of the history (statuses and review cards), read from its file and
        moved on by the rows saved since; built from the whole history when the file is
        missing, damaged or does not match the log. Warnings are those of `load`."""
        try:
            info = os.stat(self.path)
        except OSError:
            info = None
        if info is None or not stat.S_ISREG(info.st_mode) or self.read_only:
            return Digest.of(self.load())  # nothing to keep a digest of (load says why)
        found = self._read_digest(info)
        return found if found is not None else self._build_digest()

    def _read_digest(self, info: os.stat_result) -> Digest | None:
        """The saved digest moved on to the end of the log, or None: build it afresh."""
        try:
            data = read_regular(self.state_path, MAX_STATE)
            if data is None:
                return None
            digest = Digest.from_bytes(data)
            covers = digest.covers
            if not (0 < covers.size <= info.st_size and covers.inode == info.st_ino):
                return None
            with _open_regular(self.path) as file:
                start = max(0, covers.size - TAIL)
                file.seek(start)
                before = file.read(covers.size - start)
                if _hash(before) != covers.tail:
                    return None
                if covers.size == info.st_size:
                    return digest
                new = file.read(min(info.st_size - covers.size, MAX_BYTES))
        except (OSError, StoreError, ValueError):
            return None
        whole = new[:new.rfind(b"\n") + 1]  # a row being written now is left for later
        if not whole:
            return digest
        parsed = parse_log(whole)
        if parsed.damaged or parsed.version != SCHEMA_VERSION:
            return None  # set aside (or refused) by load, then built afresh
        if not digest.add(parsed.history.attempts, parsed.history.completed,
                          parsed.history.checks):
            return None
        digest.covers = Covers(covers.size + len(whole), covers.inode,
                               _hash((before + whole)[-TAIL:]))
        self._save_digest(digest)
        return digest

    def _digest_after_save(self) -> None:
        """Moves the saved digest on by the rows just appended (a digest that is missing or
        stale is left for the next reader to build)."""
        try:
            self._read_digest(os.stat(self.path))
        except (OSError, StoreError, ValueError):
            pass

    def _build_digest(self) -> Digest:
        """From the whole history, read under the lock so that no save lands in between."""
        if self.read_only or not self.path.exists():
            return Digest.of(self.load())
        try:
            with self._lock():
                history = self.load()
                if self.read_only:
                    return Digest.of(history)
                with _open_regular(self.path) as file:
                    info = os.fstat(file.fileno())
                    file.seek(max(0, info.st_size - TAIL))
                    tail = file.read(TAIL)
                digest = Digest.of(history)
                if not self.read_only and tail.endswith(b"\n"):
                    digest.covers = Covers(info.st_size, info.st_ino, _hash(tail))
                    self._save_digest(digest)
                return digest
        except (OSError, _LockTimeout):
            return Digest.of(self.load())

    def _save_digest(self, digest: Digest) -> None:
        """Written whole under the store's lock, so a reset or a rewrite in between can't be
        undone by it; a digest that can't be written is simply built again next time."""
        if self.read_only or not digest.covers.size:
            return
        try:
            with self._lock():
                info = os.stat(self.path)
                if info.st_ino != digest.covers.inode or info.st_size < digest.covers.size:
                    return  # the log was rewritten meanwhile
                write_atomic(self.state_path, digest.to_bytes().decode("utf-8"), sync=False)
        except (OSError, _LockTimeout, ValueError):
            pass

    # Writing ----------------------------------------------------------------------------

    def _check_before_writing(self) -> None:
        """What a save must know before it appends, without reading every row (saving costs
        the same with a hundred thousand attempts): the file is regular, and its header is
        this version's. With no file yet, an older version's file is converted first."""
        self._loaded = True
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self.load()
            return
        except OSError as error:
            self._refuse(f"can't read {self.path}: {_reason(error)}; progress will not be saved")
            return
        if not stat.S_ISREG(info.st_mode):
            self._refuse(f"{self.path} is not a regular file; move it away, or set "
                         f"{HOME_VARIABLE} to another directory; progress will not be saved")
            return
        try:
            with open(self.path, "rb") as file:
                first = file.read(4096).split(b"\n", 1)[0]
        except OSError as error:
            self._refuse(f"can't read {self.path}: {_reason(error)}; progress will not be saved")
            return
        version = parse_log(first).version if first.strip() else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            self._refuse(f"{self.path} was written by a newer autograd-tutor; upgrade, or set "
                         f"{HOME_VARIABLE}. It is left untouched and nothing is saved")
        elif version != SCHEMA_VERSION:
            self._refuse(f"{self.path} has a schema version this autograd-tutor does not "
                         "know; it is left untouched and progress will not be saved")

    def _lock(self) -> Any:
        """The store's one lock object: re-entrant, so a load inside a save (converting an
        old file, setting rows aside) does not wait for the lock its own save holds."""
        if self._filelock is None:
            from filelock import FileLock  # ~20 ms: only runs that write pay for it

            self._filelock = FileLock(str(self.home / (FILE_NAME + ".lock")))
        return _Locked(self._filelock, self.warn)

    def _rewrite(self, history: History) -> None:
        records: list[Attempt | Completion | Check] = [
            *history.attempts, *history.completed, *history.checks]
        # Under the lock no other writer is mid-write: any temporary file left here is a
        # dead writer's (killed while rewriting), and is removed.
        for stale in self.home.glob(f"{FILE_NAME}.*.tmp"):
            stale.unlink(missing_ok=True)
        write_atomic(self.path, _header() + "".join(_line(r) for r in records))

    def append(self, records: Iterable[Attempt | Completion | Check]) -> bool:
        """Append records under the lock. False when they could not be saved."""
        text = "".join(_line(record) for record in records)
        if not text:
            return True
        if not self._loaded:
            self._check_before_writing()
        if self.read_only:
            return False
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            with self._lock():
                if not self.path.exists():
                    self.load()  # converts an older file first
                    if self.read_only:
                        return False
                _append(self.path, text)
                self._digest_after_save()
            return True
        except _LockTimeout:
            self._refuse(f"another autograd-tutor run kept {self.path} locked for "
                         f"{LOCK_TIMEOUT:g} s; this result was not saved")
        except OSError as error:
            self._refuse(f"can't save progress in {self.home}: {_reason(error)}")
        return False

    def record(self, attempts: Iterable[Attempt]) -> bool:
        return self.append(attempts)

    def complete(self, pack: str, exercise: int, run: str) -> bool:
        return self.append([Completion(pack, exercise, run, now())])

    def record_check(self, pack: str, exercise: int, passed: bool, path: str) -> bool:
        return self.append([Check(pack, exercise, passed, path, now())])

    def reset(self, pack: str | None, exercise: int | None) -> bool:
        """Drop all history, or one exercise's; the old file is kept as a copy first."""
        if self.read_only:
            return False

        def keep(pack_: str | None, number: int | None) -> bool:
            if pack is None:
                return False
            return not (pack_ == pack and number == exercise)

        try:
            with self._lock():
                history = self.load()
                if self.read_only:
                    return False
                if self.path.exists():
                    os.link(self.path, self._aside_name("before-reset"))
                self._rewrite(History(
                    [a for a in history.attempts if keep(a.pack, a.exercise)],
                    [c for c in history.completed if keep(c.pack, c.exercise)],
                    [c for c in history.checks if keep(c.pack, c.exercise)],
                ))
            return True
        except (OSError, _LockTimeout) as error:
            self._refuse(f"could not reset the progress in {self.home}: {error}")
            return False


class _LockTimeout(Exception):
    def __str__(self) -> str:
        return "locked by another run"


class _Locked:
    """Holds the store's lock: waits up to LOCK_TIMEOUT, saying so once it has waited."""

    def __init__(self, lock: Any, warn: Warn) -> None:
        self.lock = lock
        self.warn = warn

    def __enter__(self) -> None:
        from filelock import Timeout

        # A place where no lock file can be made (/proc, a read-only disk) is an error now,
        # not a wait for a lock that can never be taken.
        fd = os.open(self.lock.lock_file, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0),
                     0o644)
        os.close(fd)
        try:
            self.lock.acquire(timeout=LOCK_NOTICE)
            return
        except Timeout:
            self.warn("waiting for another autograd-tutor run to finish saving ...")
        try:
            self.lock.acquire(timeout=LOCK_TIMEOUT)
        except Timeout:
            raise _LockTimeout from None

    def __exit__(self, *_: object) -> None:
        self.lock.release()


def _header() -> str:
    return f'{{"schema_version": {SCHEMA_VERSION}}}\n'


def _append(path: Path, text: str) -> None:
    """One write of whole lines at the end; a file ending mid-line (a writer killed while
    writing) gets a newline first, so the torn row stays one damaged line."""
    # O_NONBLOCK: a FIFO put in the file's place fails at once instead of waiting forever.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        size = os.fstat(fd).st_size
        prefix = _header() if size == 0 else ""
        if size:
            with open(path, "rb") as file:
                file.seek(size - 1)
                if file.read(1) != b"\n":
                    prefix = "\n"
        data = (prefix + text).encode("utf-8")
        try:
            while data:
                written = os.write(fd, data)
                data = data[written:]
            os.fsync(fd)
        except OSError:
            # A full disk (or any failed write): the file goes back to what it was, so no
            # torn row is left to be set aside later. (Under the lock: nobody else wrote.)
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    """A new file holding `data`, or none at all (a full disk leaves no empty copy)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def write_atomic(path: Path, text: str, sync: bool = True) -> None:
    """`text` at `path` whole or not at all: written beside it, then renamed over it
    (`sync` False: a cache, which may be lost in a crash but never seen half written)."""
    import tempfile  # only for writing

    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            if sync:
                os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _open_regular(path: Path) -> Any:
    """`path` opened for reading, or OSError when it is not a regular file (a FIFO put in
    its place is never waited on)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(0, "not a regular file")
    return os.fdopen(fd, "rb")


def _hash(data: bytes) -> str:
    import hashlib

    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


# Status per exercise ---------------------------------------------------------------------


class ExerciseStatus(Struct, frozen=True):
    """What `list` shows for one exercise."""

    key: str
    status: str  # "not started" | "in progress" | "done"
    correct: int
    asked: int
    # The latest finished run's score, when it differs from the best one shown above.
    latest: tuple[int, int] | None = None


def statuses(source: History | Digest,
             keys: Iterable[tuple[str, int]]) -> dict[str, ExerciseStatus]:
    """Status and score per exercise: the best finished run's score; an abandoned run
    changes neither it nor the status. From a history, or from its digest (`Store.digest`,
    which `list` reads instead of the whole history)."""
    digest = source if isinstance(source, Digest) else Digest.of(source, cards=False)
    result = {}
    for pack, number in keys:
        key = exercise_key(pack, number)
        runs = digest.exercises.get(key)
        # The latest finished run: an abandoned one changes no score shown.
        if runs and runs.last_done is not None:
            latest: tuple[int, int] | None = (runs.last_done[0], runs.last_done[1])
        elif runs and runs.latest is not None:
            latest = (runs.latest_score[0], runs.latest_score[1])
        else:
            latest = None
        if runs and runs.best is not None:
            best = (runs.best[0], runs.best[1])
            status = "done"
        else:
            best = latest or (0, 0)
            status = "done" if runs and runs.done else ("in progress" if latest else
                                                          "not started")
        shown_latest = latest if latest is not None and latest != best else None
        result[key] = ExerciseStatus(key, status, best[0], best[1], shown_latest)
    return result
