"""Reading TOML tables into the engine's records, with a precise message for each problem.

Every problem is a `Problem(file, step, prediction, message)`; the reader collects them
instead of stopping at the first, so `pack check` can list them all. Nothing here runs code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from msgspec import Struct

MAX_FILE_BYTES = 1_000_000
# What a pack's text may not hold: control characters (escape codes that set a window's
# title, clear the screen or make links; tabs and newlines excepted), C1 controls and the
# bidirectional overrides that make text read other than it is.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """Text safe to print: each control character written as its escape (\\x1b)."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class Problem(Struct, frozen=True):
    """One problem found in a pack, with where it is (file, step, prediction)."""

    file: str
    step: int | None
    prediction: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.step is not None:
            where.append(f"step {self.step}")
        if self.prediction is not None:
            where.append(f"prediction {self.prediction}")
        return ": ".join([*where, self.message])

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "step": self.step, "prediction": self.prediction,
                "message": self.message}


class Where:
    """Where in a pack a value was read from; collects the problems found there."""

    def __init__(self, problems: list[Problem], file: str, step: int | None = None,
                 prediction: str | None = None) -> None:
        self.problems = problems
        self.file = file
        self.step = step
        self.prediction = prediction

    def at(self, step: int | None = None, prediction: str | None = None) -> Where:
        return Where(self.problems, self.file,
                     self.step if step is None else step,
                     self.prediction if prediction is None else prediction)

    def problem(self, message: str) -> None:
        # A message may quote the pack's own text (a key, a file name): never raw.
        self.problems.append(Problem(visible(self.file), self.step,
                                     None if self.prediction is None
                                     else visible(self.prediction), visible(message)))


_TYPES: dict[type, str] = {str: "text", bool: "true or false", int: "a whole number",
                           float: "a number", list: "a list", dict: "a table"}


class TomlCache:
    """Parsed TOML kept between runs (content.cache implements it): `get` gives a file's
    data while the file is unchanged, `put` keeps it. The data is read by the same checks
    as freshly parsed TOML, so a hand-edited cache can hold nothing TOML could not."""

    def get(self, path: Path) -> dict[str, Any] | None:
        return None

    def put(self, path: Path, data: dict[str, Any]) -> None:
        pass


def read_toml(path: Path, where: Where, kept: TomlCache | None = None) -> dict[str, Any] | None:
    """A TOML file's data (from `kept` while the file is unchanged), or None after saying
    why not. Kept data is checked like parsed data: it may have been edited by hand."""
    data = kept.get(path) if kept is not None else None
    fresh = data is None
    if data is None:
        data = _parse(path, where)
        if data is None:
            return None
    if _depth(data) > MAX_DEPTH:
        where.problem(f"its arrays or tables nest more than {MAX_DEPTH} levels deep")
        return None
    if fresh and kept is not None:
        kept.put(path, data)
    return data


def _parse(path: Path, where: Where) -> dict[str, Any] | None:
    try:
        if not path.is_file():
            where.problem("missing file" if not path.exists() else "not a regular file")
            return None
        if path.stat().st_size > MAX_FILE_BYTES:
            where.problem(f"larger than {MAX_FILE_BYTES // 1000} kB")
            return None
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        where.problem("not UTF-8 text")
        return None
    except OSError as error:
        where.problem(f"can't be read ({error.strerror or type(error).__name__})")
        return None
    import tomllib  # pure Python and not small: loaded only when a pack is really read

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        where.problem(f"TOML does not parse: {error}")
        return None
    except RecursionError:
        where.problem("TOML does not parse: its arrays or tables nest too deeply")
        return None


MAX_DEPTH = 20


def _depth(value: Any, limit: int = MAX_DEPTH + 1) -> int:
    """How deep lists and tables nest in `value`, counted no further than `limit`."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(item, limit - 1) for item in items), default=0)


class Fields:
    """Typed access to one TOML table; wrong or missing fields become problems."""

    def __init__(self, table: dict[str, Any], where: Where, what: str) -> None:
        self.table = table
        self.where = where
        self.what = what
        self.known: set[str] = set()

    def _get(self, key: str, kind: type | tuple[type, ...], required: bool, default: Any) -> Any:
        self.known.add(key)
        if key not in self.table:
            if required:
                self.where.problem(f"{self.what} has no '{key}' (required)")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            wanted = " or ".join(_TYPES.get(k, k.__name__) for k in kinds)
            self.where.problem(f"'{key}' of {self.what} must be {wanted}, "
                               f"not {_TYPES.get(type(value), type(value).__name__)}")
            return default
        return value

    def text(self, key: str, required: bool = False, default: str = "",
             one_line: bool = False) -> str:
        """Text of the pack's own: control characters are a problem (and removed); a
        `one_line` text (a title, a name) may hold no line break either."""
        value = str(self._get(key, str, required, default))
        if one_line and ("\n" in value or "\t" in value):
            self.where.problem(f"'{key}' of {self.what} must be one line")
            value = " ".join(value.split())
        return self.clean(key, value)

    def clean(self, key: str, value: str) -> str:
        if CONTROL.search(value):
            self.where.problem(f"'{key}' of {self.what} holds control characters (escape "
                               "codes); remove them")
            return CONTROL.sub("", value)
        return value

    def number(self, key: str, default: float | None = None) -> float | None:
        value = self._get(key, (int, float), False, default)
        return None if value is None else float(value)

    def integer(self, key: str, default: int) -> int:
        return int(self._get(key, int, False, default))

    def flag(self, key: str, default: bool = False) -> bool:
        return bool(self._get(key, bool, False, default))

    def texts(self, key: str) -> tuple[str, ...]:
        values = self._get(key, list, False, [])
        if not all(isinstance(value, str) for value in values):
            self.where.problem(f"'{key}' of {self.what} must be a list of text")
            return ()
        return tuple(self.clean(key, value) for value in values)

    def table_of(self, key: str) -> dict[str, Any]:
        return dict(self._get(key, dict, False, {}))

    def tables(self, key: str, required: bool = False) -> list[dict[str, Any]]:
        values = self._get(key, list, required, [])
        if not all(isinstance(value, dict) for value in values):
            self.where.problem(f"'{key}' of {self.what} must be a list of tables ([[{key}]])")
            return []
        return list(values)

    def unknown(self) -> None:
        """Unknown keys are most often typos of known ones: say so."""
        for key in self.table:
            if key not in self.known:
                self.where.problem(f"{self.what} has an unknown field '{key}'")
