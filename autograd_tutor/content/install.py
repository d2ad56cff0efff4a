"""`pack add`'s copy: the pack's own files, and nothing a link or a device could bring in.

Only regular files and directories are copied, found without following a symbolic link;
links, FIFOs, devices and sockets are skipped and named, so a pack can't copy `/etc/passwd`,
a folder outside itself or `/dev/zero` into the packs folder. The copy is bounded in size
and number of files, never descends into the folder it is copied to (a pack added from
inside itself, with the progress directory in it), and is read again as a pack before it
replaces anything. A copy is made in a staging folder next to its target, then renamed over
the name in one step, under a lock on the packs folder: any staging folder found there while
holding the lock is a dead writer's (killed mid-copy), and is removed.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from autograd_tutor.content.schema import visible

MAX_BYTES = 20 * 1024 * 1024
MAX_FILES = 2000
MAX_DEPTH = 20
LOCK_NAME = ".add.lock"
LOCK_TIMEOUT = 30.0
CHUNK = 1024 * 1024
IGNORED = ("__pycache__",)
# A staging folder: "." + the pack's name + "." + mkdtemp's random part.
STAGING = re.compile(r"\.[a-z0-9-]+\.[A-Za-z0-9_]+\Z")


class InstallError(Exception):
    """The pack could not be copied; the message says why (one line)."""


def install(source: Path, target: Path, keep_out: Path | None = None) -> list[str]:
    """Copy the pack in `source` to `target` (replacing what is there). Returns a line for
    each entry that was not copied. `keep_out` (the progress directory) is never copied."""
    from filelock import FileLock, Timeout

    from autograd_tutor.content.packs import load_pack

    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_NAME))
    try:
        lock.acquire(timeout=LOCK_TIMEOUT)
    except Timeout:
        raise InstallError("another autograd-tutor is adding a pack; try again when it "
                           "has finished") from None
    try:
        remove_stale_staging(folder)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{target.name}."))
        try:
            outside = [p.resolve() for p in (folder, keep_out) if p is not None]
            copy = _Copy(source, outside)
            copy.folder(source, staging / "pack", 0)
            _, problems = load_pack(staging / "pack", deep=False)
            if problems:
                why = f"; not copied: {copy.skipped[0]}" if copy.skipped else ""
                raise InstallError(f"the copy is not a usable pack ({problems[0]}){why}")
            if target.exists():
                target.rename(staging / "old")
            (staging / "pack").rename(target)
            return copy.skipped
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.release()


def remove_stale_staging(folder: Path) -> None:
    """Staging folders of runs that died mid-copy. Call only while holding the lock."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if STAGING.match(entry.name):
            try:
                if stat.S_ISDIR(entry.lstat().st_mode):
                    shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                pass


class _Copy:
    def __init__(self, source: Path, outside: list[Path]) -> None:
        self.source = source
        self.outside = outside
        self.skipped: list[str] = []
        self.bytes = 0
        self.files = 0

    def name(self, path: Path) -> str:
        return visible(os.path.relpath(path, self.source))

    def folder(self, here: Path, there: Path, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise InstallError(f"its folders nest more than {MAX_DEPTH} levels deep")
        if here.resolve() in self.outside:
            self.skipped.append(f"{self.name(here)} (the folder the pack is copied to, or "
                                "your progress directory)")
            return
        there.mkdir()
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError as error:
            raise InstallError(f"can't read {visible(str(here))}: "
                               f"{error.strerror or error}") from None
        for entry in entries:
            path = Path(entry.path)
            if entry.name in IGNORED or entry.name.endswith(".pyc"):
                continue
            self.files += 1
            if self.files > MAX_FILES:
                raise InstallError(f"it holds more than {MAX_FILES} files")
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                self.folder(path, there / entry.name, depth + 1)
            elif stat.S_ISREG(mode):
                self.file(path, there / entry.name)
            else:
                self.skipped.append(f"{self.name(path)} ({_kind(mode)})")

    def file(self, here: Path, there: Path) -> None:
        # Opened without following a link and checked again: it may have been swapped.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(here, flags)
        except OSError:
            self.skipped.append(f"{self.name(here)} (can't be read as a regular file)")
            return
        with os.fdopen(fd, "rb") as reader:
            mode = os.fstat(reader.fileno()).st_mode
            if not stat.S_ISREG(mode):
                self.skipped.append(f"{self.name(here)} (not a regular file)")
                return
            with open(there, "xb") as writer:
                while chunk := reader.read(CHUNK):
                    self.bytes += len(chunk)
                    if self.bytes > MAX_BYTES:
                        raise InstallError(f"it is larger than {MAX_BYTES // (1024 * 1024)} "
                                           "MB")
                    writer.write(chunk)
        os.chmod(there, stat.S_IMODE(mode) & 0o777)  # never set-user-id


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link: only the pack's own files are copied"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
