"""Packs read before, kept as JSON in the progress directory (`cache/packs.json`).

Python's TOML reader is pure Python: parsing the built-in packs costs more than the rest of
`list`. An entry is used only while every file of its pack, and this reader's own code,
still has the size and modification time it had when the entry was written; otherwise the
pack is read again and the entry replaced. The cache is only an optimisation: a missing,
damaged, foreign or unwritable cache file is ignored, never reported. JSON rather than
pickle, decoded by msgspec into the model's own types and nothing else, so that a file in
the progress directory can never run code. Delete it any time.
"""

import os
import time
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from autograd_tutor.engine.model import Pack
from autograd_tutor.engine.store import StoreError, read_regular, write_atomic

# 2: typed msgspec JSON (paths as strings) instead of {"class": ...} objects.
VERSION = 2
MAX_BYTES = 16 * 1024 * 1024
STALE_SECONDS = 600
# The reader's code: a change to any of these makes every entry stale.
CODE = tuple(Path(__file__).parent.parent / name for name in (
    "content/cache.py", "content/packs.py", "content/schema.py", "content/catalogue.toml",
    "engine/model.py"))

Signature = list[list[Any]]


class Entry(msgspec.Struct):
    """One pack as last read, and the signature it was read under."""

    signature: Signature
    pack: Pack


class CacheFile(msgspec.Struct):
    """The whole file. Decoding is directed by these types, so it builds nothing but the
    model's own records, and any other shape is an error (the file is then ignored)."""

    version: int
    entries: dict[str, Entry]


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

    def __init__(self, path: Path, entries: dict[str, Entry]) -> None:
        self.path = path
        self.entries = entries
        self.changed = False

    @classmethod
    def open(cls, home: Path) -> "PackCache":
        path = home / "cache" / "packs.json"
        return cls(path, _read(path))

    def get(self, root: Path, stamp: Signature) -> Pack | None:
        entry = self.entries.get(str(root))
        return entry.pack if entry is not None and entry.signature == stamp else None

    def put(self, root: Path, stamp: Signature, pack: Pack) -> None:
        self.entries[str(root)] = Entry(stamp, pack)
        self.changed = True

    def save(self) -> None:
        """Write the entries if any changed; a place that can't be written is left alone."""
        if not self.changed:
            return
        kept = {root: entry for root, entry in self.entries.items() if os.path.isdir(root)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_temporaries(self.path)
            write_atomic(self.path, _ENCODER.encode(CacheFile(VERSION, kept)).decode())
        except (OSError, ValueError, TypeError, msgspec.EncodeError):
            pass
        self.changed = False


def _remove_stale_temporaries(path: Path) -> None:
    # A run killed while writing leaves its temporary file behind. Writers take no lock
    # here, so only one older than any write could take is known to be a dead writer's.
    for temporary in path.parent.glob(f"{path.name}.*.tmp"):
        try:
            if time.time() - temporary.lstat().st_mtime > STALE_SECONDS:
                temporary.unlink()
        except OSError:
            pass


def _to_json(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"can't keep a {type(value).__name__} in the pack cache")


def _from_json(kind: type, value: Any) -> Any:
    # TypeError is what msgspec turns into a ValidationError (the file is then ignored).
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise TypeError(f"expected a path, got {type(value).__name__}")


_ENCODER = msgspec.json.Encoder(enc_hook=_to_json)


def _read(path: Path) -> dict[str, Entry]:
    """The entries of the file at `path`, or none if it is anything but a sound cache."""
    try:
        raw = read_regular(path, MAX_BYTES)  # never a FIFO or a device: that could hang
    except StoreError:
        return {}
    if raw is None:
        return {}
    try:
        # Another version's file either fails to decode or is dropped by its version.
        found = msgspec.json.decode(raw, type=CacheFile, dec_hook=_from_json)
    except (msgspec.DecodeError, RecursionError):
        return {}
    return found.entries if found.version == VERSION else {}
