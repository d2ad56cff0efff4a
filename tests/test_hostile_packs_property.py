"""Packs made up by hypothesis, with hostile text (markup, escape codes, control characters,
bidirectional overrides, braces, newlines) and hostile structure (wrong types, missing
fields, deep nesting) put into the example pack. Every command that reads packs either
works or ends in a clear message with the right exit status: never a traceback or an
internal error, never a raw control character on stdout.

The quick budget (`make test`) tries a few dozen packs; `make fuzz` tries ten times more.
`pack check` runs the pack in the process itself here (its sandbox, a second Python that
imports torch, has tests of its own): what is under test is what hostile text does to the
reader and to the terminal, and one child a pack would make this the suite's slowest test.
"""

from __future__ import annotations

import json
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any
from unittest import mock

from budget import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content import check, packs

runner = CliRunner()
EXAMPLE = Path(__file__).parent.parent / "examples" / "packs" / "two-paths"
FILES = ("pack.toml", "1-used-twice.toml", "2-backward-twice.toml", "helpers.py")
# What must never reach stdout: control characters but newline and tab, C1 controls, and
# the bidirectional overrides.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
STATUSES = {0, 1, 2}

PIECES = ["[bold]", "[/]", "[/bold]", "[blink red on white]", "[link=file:///etc/passwd]",
          "\x1b]0;PWNED\x07", "\x1b[2J", "\x9b31m", "\u202e", "\r", "\n", "\t", "\x00",
          "{x:q}", "{x:>999999999}", "{", "}", "{x}", "{{", "б", "≈", "\\", '"', "'", "#",
          "=", " ", "x.grad", "polynomial", "value-not-gradient", "-", "A"]
hostile_text = st.lists(st.one_of(st.sampled_from(PIECES),
                                  st.characters(blacklist_categories=("Cs",))),
                        max_size=8).map("".join)
leaf = st.one_of(hostile_text, st.integers(-10**30, 10**30), st.booleans(),
                 st.floats(allow_nan=False, allow_infinity=False))
structure = st.recursive(leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)),
    max_leaves=8)
# The pack's directory: its name is used when pack.toml's is empty, and shown in messages.
directory = st.one_of(st.just("two-paths"), hostile_text.map(
    lambda t: t.replace("/", "").replace("\0", "")).filter(
    lambda t: t not in ("", ".", "..") and len(t.encode()) < 200))
deep = st.integers(1, 60).map(lambda n: "[" * n + "1" + "]" * n)

# Where a change goes: (file, path inside its TOML). A path ending in None adds a new key.
TARGETS: list[tuple[str, tuple[Any, ...]]] = [
    ("pack.toml", ("name",)), ("pack.toml", ("title",)), ("pack.toml", ("exercises",)),
    ("pack.toml", ("concepts", None)), ("pack.toml", ("concepts", "shared-use")),
    ("pack.toml", ("misconceptions", None)),
    ("pack.toml", ("misconceptions", "one-use-only", "title")),
    ("pack.toml", ("practice", 0, "setup")),
    ("1-used-twice.toml", ("title",)), ("1-used-twice.toml", ("level",)),
    ("1-used-twice.toml", ("intro",)), ("1-used-twice.toml", ("steps", 0, "title")),
    ("1-used-twice.toml", ("steps", 0, "setup")),
    ("1-used-twice.toml", ("steps", 0, "explanation")),
    ("1-used-twice.toml", ("steps", 0, "predictions", 0, "label")),
    ("1-used-twice.toml", ("steps", 0, "predictions", 0, "id")),
    ("1-used-twice.toml", ("steps", 0, "predictions", 0, "by_hand_text")),
    ("1-used-twice.toml", ("steps", 0, "predictions", 0, "concept")),
    ("1-used-twice.toml", ("steps", 0, "predictions", 0, "hints")),
    ("1-used-twice.toml", ("steps", 0, "predictions", 0, "misconceptions", 0, "name")),
    ("1-used-twice.toml", ("steps", 0, None)),
    ("1-used-twice.toml", ("steps",)),
]
change = st.tuples(st.sampled_from(TARGETS),
                   st.one_of(hostile_text, structure, st.just(_DELETE := object())),
                   hostile_text)


def toml_value(value: Any) -> str:
    """`value` as TOML (inline tables and arrays only: any nesting is one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(
            f"\\u{ord(c):04x}" if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in '"\\'
            else c for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}"
                           for k, v in value.items()) + "}"


def apply(data: dict[str, Any], path: tuple[Any, ...], value: Any, new_key: str) -> None:
    place: Any = data
    for key in path[:-1]:
        try:
            place = place[key]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1] if path[-1] is not None else new_key
    if not isinstance(place, dict | list) or (isinstance(place, list)
                                              and not isinstance(last, int)):
        return
    if value is _DELETE:
        if isinstance(place, dict):
            place.pop(last, None)
        return
    if isinstance(place, dict):
        place[last] = value
    elif last < len(place):
        place[last] = value


def write_pack(root: Path, changes: list[Any], nested: str | None) -> None:
    root.mkdir(parents=True)
    for name in FILES:
        text = (EXAMPLE / name).read_text(encoding="utf-8")
        if not name.endswith(".toml"):
            (root / name).write_text(text, encoding="utf-8")
            continue
        data = tomllib.loads(text)
        for (file, path), value, new_key in changes:
            if file == name:
                apply(data, path, value, new_key)
        lines = [f"{toml_value(key)} = {toml_value(value)}" for key, value in data.items()]
        if nested is not None and name == "pack.toml":
            lines.append(f"deep = {nested}")
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


COMMANDS = [["list"], ["list", "two-paths"], ["pack", "list"], ["pack", "list", "--json"],
            ["practice", "--list"], ["exercise", "two-paths/1", "--reveal", "--json"]]


@settings(max_examples=examples(200), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(change, min_size=1, max_size=3), st.one_of(st.none(), deep), directory)
def test_every_command_survives_a_hostile_pack(changes: list[Any], nested: str | None,
                                               folder: str) -> None:
    in_process = mock.patch.object(check, "check_in_sandbox",
                                   lambda root, **_: check.check_pack(root))
    with tempfile.TemporaryDirectory() as place, in_process:
        shelf, home = Path(place) / "shelf", Path(place) / "home"
        root = shelf / folder
        write_pack(root, changes, nested)
        env = {"AUTOGRAD_TUTOR_PACKS": str(shelf), "AUTOGRAD_TUTOR_HOME": str(home),
               "COLUMNS": "120"}
        packs.forget()
        listed = runner.invoke(app, ["pack", "list", "--json"], env=env)
        assert listed.exit_code == 0, (listed.output, listed.exception)
        usable = "two-paths" in {p["name"] for p in json.loads(listed.stdout)}
        for args in [*COMMANDS, ["pack", "check", "--yes", str(root)]]:
            if args[0] == "exercise" and not usable:
                args = ["exercise", "1", "--reveal", "--json"]  # the others still work
            result = runner.invoke(app, args, env=env)
            where = (args, result.output, result.exception)
            assert result.exit_code in STATUSES, where
            assert result.exception is None or isinstance(result.exception, SystemExit), where
            assert "Traceback" not in result.output and "internal error" not in result.output
            assert not RAW.search(result.stdout), where
            assert "\x1b" not in result.stderr, where
            assert result.stderr.count("error:") <= 1, where
            if "--json" in args and result.exit_code == 0:
                json.loads(result.stdout)
            if args in (["list"], ["pack", "list"], ["practice", "--list"]) or args[1] == "1":
                # Commands that name no pack still work: the hostile pack is only skipped.
                assert result.exit_code == 0, where
        packs.forget()
