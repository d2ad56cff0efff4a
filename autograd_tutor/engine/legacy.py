"""Reading the progress file of earlier versions (progress.json, schema 1 and 2).

Converted once into the current history: names that drifted are unified, practice rows
(exercise 0) become rows of kind "practice". The store keeps the old file beside the new
one, so nothing that could not be converted is lost.
"""

from __future__ import annotations

import json
from typing import Any

from autograd_tutor.engine.model import RENAMED, Asked, History

LAST_LEGACY_VERSION = 2
GRADIENT_IDS = {"w.grad@1", "b.grad@1"}


class DamagedFile(ValueError):
    pass


class NewerFile(ValueError):
    pass


def renamed(name: str | None, row: dict[str, Any]) -> str | None:
    if name != "sign-flipped":
        return RENAMED.get(name, name) if name is not None else None
    if row.get("exercise") == 4 and row.get("id") in GRADIENT_IDS:
        return "gradient-sign-flipped"
    if row.get("concept") == "chain-rule":
        return "sign-error"
    return RENAMED[name]


def convert(data: bytes) -> tuple[History, int]:
    """The history in an old progress.json, and its schema version."""
    from autograd_tutor.engine.store import attempt_from, check_from, completion_from

    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, huge integers
        raise DamagedFile(f"not valid JSON: {str(error)[:80]}") from None
    if not isinstance(raw, dict):
        raise DamagedFile("not a progress record")
    version = raw.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise DamagedFile("no schema version")
    if version > LAST_LEGACY_VERSION:
        raise NewerFile(str(version))
    history = History()
    for key, build, target in (("attempts", _attempt_row, history.attempts),
                               ("completed", _completion_row, history.completed),
                               ("checks", _check_row, history.checks)):
        rows = raw.get(key)
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            try:
                fixed = build(row)
                if fixed is None:
                    continue
                maker = {"attempts": attempt_from, "completed": completion_from,
                         "checks": check_from}[key]
                target.append(maker(fixed))  # type: ignore[arg-type]
            except (ValueError, TypeError):
                continue  # kept in the old file, which the store keeps
    return history, version


def _attempt_row(row: dict[str, Any]) -> dict[str, Any]:
    number = row.get("exercise")
    practice = number in (0, None)
    fixed = {k: v for k, v in row.items() if k != "exercise"}
    fixed.update(pack=None if practice else "basics",
                 exercise=None if practice else number,
                 kind=Asked.PRACTICE if practice else Asked.EXERCISE,
                 misconception=renamed(row.get("misconception"), row))
    fixed.setdefault("typed", "")
    fixed.setdefault("hints_used", 0)
    fixed.setdefault("concept", "")
    fixed.setdefault("judged", True)
    return fixed


def _completion_row(row: dict[str, Any]) -> dict[str, Any] | None:
    if row.get("exercise") in (0, None):
        return None
    return {**row, "pack": "basics"}


def _check_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "pack": "basics"}
