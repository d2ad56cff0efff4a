"""Packs read before, kept as JSON in the progress directory (`cache/packs.json`).

Python's TOML reader is pure Python: parsing the built-in packs costs more than the rest of
`list`. An entry is used only while every file of its pack, and this reader's own code,
still has the size and modification time it had when the entry was written; otherwise the
pack is read again and the entry replaced. The cache is only an optimisation: a missing,
damaged, foreign or unwritable cache file is ignored, never reported. JSON rather than
pickle, so that a file in the progress directory can never run code. Delete it any time.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from msgspec import Struct

from autograd_tutor.engine.model import (
    Coding,
    Exercise,
    FigureSpec,
    Misconception,
    Pack,
    Prediction,
    Step,
    Template,
    Tolerance,
)
from autograd_tutor.engine.store import StoreError, read_regular, write_atomic

VERSION = 1
MAX_BYTES = 16 * 1024 * 1024
# The only classes an entry may name: decoding builds nothing else.
CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    Coding, Exercise, FigureSpec, Misconception, Pack, Prediction, Step, Template, Tolerance)}
# The reader's code: a change to any of these makes every entry stale.
CODE = tuple(Path(__file__).parent.parent / name for name in (
    "content/cache.py", "content/packs.py", "content/schema.py", "content/catalogue.toml",
    "engine/model.py"))

Signature = list[list[Any]]


def signature(root: Path) -> Signature:
    """Name, size and modification time of every file under `root` and of the reader's
    code, in a fixed order; unreadable parts simply end up in it as missing."""
    found: Signature = list(_code_stamps())
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
        for name in sorted(files):
            found.append(_stamp(os.path.relpath(os.path.join(folder, name), root),
                                Path(folder, name)))
    return found


@cache
def _code_stamps() -> tuple[list[Any], ...]:
    """The reader's own files, stamped once a process: they don't change under it."""
    return tuple(_stamp(str(path), path) for path in CODE)


def _stamp(name: str, path: Path) -> list[Any]:
    try:
        info = os.stat(path)
    except OSError:
        return [name, None, None]
    return [name, info.st_size, info.st_mtime_ns]


class PackCache:
    """The entries of one cache file, by pack directory."""

    def __init__(self, path: Path, entries: dict[str, Any]) -> None:
        self.path = path
        self.entries = entries
        self.changed = False

    @classmethod
    def open(cls, home: Path) -> PackCache:
        path = home / "cache" / "packs.json"
        return cls(path, _read(path))

    def get(self, root: Path, stamp: Signature) -> Pack | None:
        entry = self.entries.get(str(root))
        if not isinstance(entry, dict) or entry.get("signature") != stamp:
            return None
        try:
            pack = _decode(entry.get("pack"))
        except (TypeError, ValueError, KeyError, RecursionError):
            return None
        return pack if isinstance(pack, Pack) else None

    def put(self, root: Path, stamp: Signature, pack: Pack) -> None:
        self.entries[str(root)] = {"signature": stamp, "pack": _encode(pack)}
        self.changed = True

    def save(self) -> None:
        """Write the entries if any changed; a place that can't be written is left alone."""
        if not self.changed:
            return
        kept = {root: entry for root, entry in self.entries.items() if os.path.isdir(root)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps({"version": VERSION, "entries": kept}))
        except (OSError, ValueError):
            pass
        self.changed = False


def _read(path: Path) -> dict[str, Any]:
    """The entries of the file at `path`, or none if it is anything but a sound cache."""
    try:
        raw = read_regular(path, MAX_BYTES)  # never a FIFO or a device: that could hang
        data = json.loads(raw) if raw is not None else None
    except (StoreError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _encode(value: Any) -> Any:
    if isinstance(value, Struct):
        return {"class": type(value).__name__,
                **{name: _encode(getattr(value, name)) for name in value.__struct_fields__}}
    if isinstance(value, Path):
        return {"path": str(value)}
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    raise ValueError(f"can't keep a {type(value).__name__} in the pack cache")


def _decode(value: Any) -> Any:
    """The inverse of _encode: lists become tuples (the model's sequences are tuples)."""
    if isinstance(value, list):
        return tuple(_decode(item) for item in value)
    if isinstance(value, dict):
        if "path" in value and len(value) == 1:
            return Path(value["path"])
        kind = CLASSES[value["class"]]
        return kind(**{k: _decode(v) for k, v in value.items() if k != "class"})
    if value is None or isinstance(value, str | int | float):
        return value
    raise ValueError(value)
