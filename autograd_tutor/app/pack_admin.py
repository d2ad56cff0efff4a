"""Packs from outside the built-in set: the installed list, `pack check`, and `pack add`'s
rules for where a checked pack may go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msgspec import Struct

from autograd_tutor.content import packs
from autograd_tutor.engine.answers import printable


def pack_rows(found: packs.Installed) -> list[dict[str, Any]]:
    """`pack list --json`: each installed pack, where it lives, whether it is built in."""
    return [{"name": p.name, "title": p.title, "exercises": len(p.exercises),
             "path": str(p.root), "builtin": p.builtin} for p in found.packs.values()]


def is_builtin_dir(directory: Path) -> bool:
    try:
        return directory.resolve().parent == packs.BUILTIN_DIR.resolve()
    except (OSError, RuntimeError):
        return False


def runs_code(directory: Path) -> bool:
    """A pack whose code is not the tool's own: it needs the learner's consent to run."""
    return not is_builtin_dir(directory) and (directory / "pack.toml").is_file()


def check_pack(directory: Path, step_seconds: float) -> Any:
    """`pack check`: the pack read and every step run in the sandbox (`content.check`)."""
    from autograd_tutor.content.check import check_in_sandbox

    return check_in_sandbox(directory, step_seconds=step_seconds)


class NotAdded(Exception):
    """The checked pack may not be added; the message says why, in one line."""


class Added(Struct, frozen=True):
    name: str
    target: Path
    skipped: list[str]  # files left out of the copy, one line each


def add_pack(directory: Path, name: str, home: Path, force: bool) -> Added:
    """Copy the pack in `directory`, checked sound under `name`, into `home`'s packs:
    never over a built-in pack or a pack installed elsewhere, over its own earlier copy
    only with `force`, and never redefining another pack's names. NotAdded says why not
    (a copy that failed too)."""
    from autograd_tutor.content.install import InstallError, install

    found = packs.installed(home)
    existing = found.packs.get(name)
    target = home / "packs" / name
    if existing is not None and existing.builtin:
        raise NotAdded(f"{name!r} is a built-in pack's name; rename your pack.")
    if existing is not None and existing.root.resolve() != target.resolve():
        raise NotAdded(f"a pack named {name!r} is already installed in "
                       f"{printable(str(existing.root), None)}; rename your pack.")
    if target.exists() and not force:
        raise NotAdded(f"a pack named {name!r} is already added; add --force to replace it.")
    read, _ = packs.load_pack(directory, deep=False)
    clashes = [] if read is None else packs.redefinitions(
        read, [p for p in found.packs.values() if p.name != name], catalogue=False)
    if clashes:
        raise NotAdded(f"the pack in {directory} was not added: {clashes[0]}")
    try:
        skipped = install(directory, target, keep_out=home)
        packs.forget()
    except InstallError as error:
        raise NotAdded(f"the pack in {directory} was not added: {error}") from None
    except OSError as error:
        raise NotAdded(f"can't copy the pack to {printable(str(target))}: "
                       f"{error.strerror or error}") from None
    return Added(name, target, list(skipped))
