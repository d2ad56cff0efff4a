"""Pack files parsed before, kept as JSON in the progress directory (`cache/packs.json`).

Python's TOML reader is pure Python: parsing the built-in packs costs more than the rest of
`list`. So the parsed TOML of each pack file is kept, by the file's path, and used while the
file still has the size and modification time it had when it was parsed; otherwise the file
is parsed again and the entry replaced. Every file a pack reads is kept (and stamped) on its
own, wherever it lies in the pack, hidden folders included.

What is kept is first the TOML's data: a kept file goes through the very checks a freshly
parsed one does (content.packs), so a hand-edited cache can serve nothing a TOML file could
not. Reading 27 exercises through those checks still costs most of `list`, so the pack
built from them is kept too, sealed: the entry holds the SHA-256 of the pack's JSON, of the
stamps of every file it was read from and of the reader's own code. It is served only while
every one of those files is unchanged and the seal matches; an entry edited by hand fails
its seal and the pack is read from its files again. The cache is only an optimisation: a
missing, damaged, foreign or unwritable cache file is ignored, never reported. JSON rather
than pickle, decoded by msgspec into plain data, so that a file in the progress directory
can never run code. Delete it any time.
"""

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from autograd_tutor.content.schema import MAX_FILE_BYTES, TomlCache
from autograd_tutor.engine.model import Pack
from autograd_tutor.engine.store import StoreError, read_regular, write_atomic

# 2: typed msgspec JSON of whole packs; 3: each file's parsed TOML, checked again on use;
# 4: and the packs built from them, sealed.
VERSION = 4
MAX_BYTES = 16 * 1024 * 1024
STALE_SECONDS = 600


class Entry(msgspec.Struct):
    """One file's parsed TOML, and the size and modification time it was parsed at."""

    stamp: tuple[int, int]
    data: dict[str, Any]


class Built(msgspec.Struct):
    """A pack built from kept files: their stamps, the pack as JSON, and the seal over both
    (and over the reader's code)."""

    files: dict[str, tuple[int, int]]
    pack: str
    seal: str


class CacheFile(msgspec.Struct):
    """The whole file. Any other shape is an error (the file is then ignored)."""

    version: int
    entries: dict[str, Entry]
    built: dict[str, Built] = msgspec.field(default_factory=dict)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_size, info.st_mtime_ns


class PackCache(TomlCache):
    """The entries of one cache file, by pack file."""

    def __init__(self, path: Path, entries: dict[str, Entry],
                 built: dict[str, Built] | None = None) -> None:
        self.path = path
        self.entries = entries
        self.built = built or {}
        self.changed = False
        self.served = 0  # how many reads the cache answered: were any of a pack's kept?
        self.read: set[str] = set()  # the files asked for since `reading` began

    @classmethod
    def open(cls, home: Path) -> "PackCache":
        path = home / "cache" / "packs.json"
        return cls(path, *_read(path))

    def get(self, path: Path) -> dict[str, Any] | None:
        self.read.add(str(path))
        entry = self.entries.get(str(path))
        if entry is None or entry.stamp != _stamp(path):
            return None
        self.served += 1
        return entry.data

    def reading(self) -> None:
        """A pack is about to be read from its files: note which files it reads."""
        self.read = set()

    def pack(self, root: Path, builtin: bool) -> Pack | None:
        """The pack built before from `root`'s files, while they are unchanged and its
        entry is as this tool wrote it (else None: read it from its files)."""
        entry = self.built.get(str(root))
        if entry is None or any(_stamp(Path(f)) != tuple(stamp)
                                for f, stamp in entry.files.items()):
            return None
        if entry.seal != _seal(entry.files, entry.pack):
            return None
        try:
            pack = msgspec.json.decode(entry.pack, type=Pack, dec_hook=_as_path)
        except (msgspec.DecodeError, ValueError, TypeError, RecursionError):
            return None
        return pack if pack.builtin == builtin and pack.root == root else None

    def keep_pack(self, pack: Pack) -> None:
        """Keep a pack that read cleanly from the files `reading` noted."""
        files = {f: stamp for f in sorted(self.read) if (stamp := _stamp(Path(f)))}
        if len(files) != len(self.read):
            return
        try:
            text = _ENCODER.encode(pack).decode()
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
            return
        old = self.built.get(str(pack.root))
        if old is not None and old.pack == text and old.files == files:
            return
        self.built[str(pack.root)] = Built(files, text, _seal(files, text))
        self.changed = True

    def fresh(self) -> TomlCache:
        """The same cache, parsing every file again (and keeping what it parses): for a
        pack whose kept data did not read cleanly, in case the cache was edited."""
        return _Refresh(self)

    def put(self, path: Path, data: dict[str, Any]) -> None:
        stamp = _stamp(path)
        if stamp is None or stamp[0] > MAX_FILE_BYTES:
            return
        old = self.entries.get(str(path))
        if old is not None and old.stamp == stamp and old.data == data:
            return  # read again, as kept: nothing to write
        try:  # only what JSON keeps as it is (no dates, inf or nan): the same data back
            copy = msgspec.json.decode(_ENCODER.encode(data))
        except (ValueError, TypeError, OverflowError, msgspec.MsgspecError):
            return
        if copy != data:
            return
        # A copy: the reader may fill in defaults in the data it was given.
        self.entries[str(path)] = Entry(stamp, copy)
        self.changed = True

    def save(self) -> None:
        """Write the entries if any changed (a file that is gone is dropped), and only when
        the file will be read back: never more than the reader's limit. A place that can't
        be written is left alone."""
        if not self.changed:
            return
        kept = {path: entry for path, entry in self.entries.items() if os.path.isfile(path)}
        built = {root: entry for root, entry in self.built.items() if os.path.isdir(root)}
        try:
            text = _ENCODER.encode(CacheFile(VERSION, kept, built))
            if len(text) > MAX_BYTES:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_temporaries(self.path)
            write_atomic(self.path, text.decode())
        except (OSError, ValueError, TypeError, OverflowError, msgspec.EncodeError):
            pass
        finally:
            self.changed = False


class _Refresh(TomlCache):
    def __init__(self, kept: PackCache) -> None:
        self.kept = kept

    def put(self, path: Path, data: dict[str, Any]) -> None:
        self.kept.put(path, data)


def _remove_stale_temporaries(path: Path) -> None:
    # A run killed while writing leaves its temporary file behind. Writers take no lock
    # here, so only one older than any write could take is known to be a dead writer's.
    for temporary in path.parent.glob(f"{path.name}.*.tmp"):
        try:
            if time.time() - temporary.lstat().st_mtime > STALE_SECONDS:
                temporary.unlink()
        except OSError:
            pass


def _encode_path(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"can't keep {type(value).__name__}")


def _as_path(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise TypeError(f"not a {kind}")  # a TypeError, so msgspec reports a decode error


_ENCODER = msgspec.json.Encoder(enc_hook=_encode_path)
_READER = None


def _reader_stamp() -> str:
    """The stamps of the reader's own code: a pack built by other code is built again."""
    global _READER
    if _READER is None:
        here = Path(__file__).parent
        files = [here / "packs.py", here / "schema.py", here.parent / "engine" / "model.py"]
        _READER = repr([_stamp(f) for f in files])
    return _READER


def _seal(files: dict[str, tuple[int, int]], pack: str) -> str:
    digest = hashlib.sha256(f"{VERSION}\n{_reader_stamp()}\n".encode())
    digest.update(_ENCODER.encode(files))
    digest.update(pack.encode())
    return digest.hexdigest()


def _read(path: Path) -> tuple[dict[str, Entry], dict[str, Built]]:
    """The entries of the file at `path`, or none if it is anything but a sound cache."""
    try:
        raw = read_regular(path, MAX_BYTES)  # never a FIFO or a device: that could hang
    except StoreError:
        return {}, {}
    if raw is None:
        return {}, {}
    try:
        # Another version's file either fails to decode or is dropped by its version.
        found = msgspec.json.decode(raw, type=CacheFile)
    except (msgspec.DecodeError, RecursionError, ValueError, OverflowError):
        return {}, {}
    return (found.entries, found.built) if found.version == VERSION else ({}, {})
