"""The pack files parsed before are kept in the progress directory (cache/packs.json), so
`list` parses no TOML; a cache entry is used only while its file is unchanged, is checked
like freshly parsed TOML, and a damaged cache file of any kind is ignored, never reported.
One fixture per kind of damage lives in tests/fixtures/pack-cache/."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content import cache, packs, schema
from autograd_tutor.content.packs import BUILTIN_DIR, load_pack

runner = CliRunner()
DAMAGED = Path(__file__).parent / "fixtures" / "pack-cache"
EXAMPLE = Path(__file__).parent.parent / "examples" / "packs" / "two-paths"


def fresh(home: Path) -> packs.Installed:
    packs.forget()
    return packs.installed(home)


def read_directly() -> dict[str, object]:
    """Every built-in pack read from its TOML files, as if there were no cache."""
    return {root.name: load_pack(root, builtin=True, deep=False)[0]
            for root in sorted(BUILTIN_DIR.iterdir()) if (root / "pack.toml").is_file()}


def test_a_cached_read_is_the_same_as_reading_the_files(tutor_env: Path, monkeypatch) -> None:
    first = fresh(tutor_env)
    assert (tutor_env / "cache" / "packs.json").is_file()

    def no_toml(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached pack file was parsed again")

    monkeypatch.setattr(schema, "_parse", no_toml)
    second = fresh(tutor_env)
    monkeypatch.undo()
    assert second.packs == first.packs == read_directly()


def test_a_changed_pack_file_is_read_again(tutor_env: Path, tmp_path: Path,
                                           monkeypatch) -> None:
    shelf = tmp_path / "shelf"
    shutil.copytree(EXAMPLE, shelf / "two-paths")
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(shelf))
    assert "two-paths" in fresh(tutor_env).packs
    manifest = shelf / "two-paths" / "pack.toml"
    text = manifest.read_text(encoding="utf-8")
    old_title = packs.installed(tutor_env).get("two-paths").title
    manifest.write_text(text.replace(old_title, old_title + " (revised)"), encoding="utf-8")
    assert fresh(tutor_env).get("two-paths").title == old_title + " (revised)"


def test_a_pack_that_became_broken_is_not_served_from_the_cache(
        tutor_env: Path, tmp_path: Path, monkeypatch) -> None:
    shelf = tmp_path / "shelf"
    shutil.copytree(EXAMPLE, shelf / "two-paths")
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(shelf))
    assert "two-paths" in fresh(tutor_env).packs
    (shelf / "two-paths" / "pack.toml").write_text("format = [", encoding="utf-8")
    found = fresh(tutor_env)
    assert "two-paths" not in found.packs
    assert any("two-paths" in line for line in found.skipped)


@pytest.mark.parametrize("name", sorted(p.name for p in DAMAGED.iterdir()))
def test_a_damaged_cache_file_is_ignored(tutor_env: Path, name: str) -> None:
    place = tutor_env / "cache" / "packs.json"
    place.parent.mkdir(parents=True)
    shutil.copy(DAMAGED / name, place)
    assert fresh(tutor_env).packs == read_directly()
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0 and result.stderr == ""
    assert json.loads(place.read_text(encoding="utf-8"))["version"] == cache.VERSION


def test_an_entry_that_is_not_the_files_shape_is_ignored(tutor_env: Path) -> None:
    # Decoding is directed by the cache's types: anything else in an entry is an error,
    # never an object of some other class; and the data is read like a TOML file's.
    fresh(tutor_env)
    place = tutor_env / "cache" / "packs.json"
    data = json.loads(place.read_text(encoding="utf-8"))
    for entry in data["entries"].values():
        entry["data"]["exercises"] = [{"class": "Popen", "args": ["sleep", "9"]}]
    place.write_text(json.dumps(data), encoding="utf-8")
    assert fresh(tutor_env).packs == read_directly()
    for entry in data["entries"].values():
        entry["data"] = [1, 2]
    place.write_text(json.dumps(data), encoding="utf-8")
    assert fresh(tutor_env).packs == read_directly()


def test_a_fifo_or_a_folder_at_the_cache_path_neither_hangs_nor_fails(tutor_env: Path) -> None:
    place = tutor_env / "cache" / "packs.json"
    place.parent.mkdir(parents=True)
    os.mkfifo(place)
    assert fresh(tutor_env).packs == read_directly()
    place.unlink()
    place.mkdir()
    assert fresh(tutor_env).packs == read_directly()
    assert runner.invoke(app, ["list"]).exit_code == 0


def test_a_home_that_cannot_hold_a_cache_still_lists(tutor_env: Path) -> None:
    tutor_env.parent.mkdir(parents=True, exist_ok=True)
    tutor_env.write_text("a file, not a folder", encoding="utf-8")
    assert fresh(tutor_env).packs == read_directly()


def test_entries_of_packs_that_are_gone_are_dropped(tutor_env: Path, tmp_path: Path,
                                                     monkeypatch) -> None:
    shelf = tmp_path / "shelf"
    shutil.copytree(EXAMPLE, shelf / "two-paths")
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(shelf))
    fresh(tutor_env)
    place = tutor_env / "cache" / "packs.json"
    manifest = str(shelf / "two-paths" / "pack.toml")
    assert manifest in json.loads(place.read_text(encoding="utf-8"))["entries"]
    shutil.rmtree(shelf)
    kept = cache.PackCache.open(tutor_env)
    kept.changed = True
    kept.save()
    entries = json.loads(place.read_text(encoding="utf-8"))["entries"]
    assert manifest not in entries
    assert str(BUILTIN_DIR / "basics" / "pack.toml") in entries


def test_a_dead_writers_temporary_file_is_removed_and_a_live_ones_kept(tutor_env: Path) -> None:
    fresh(tutor_env)
    folder = tutor_env / "cache"
    dead, live = folder / "packs.json.dead.tmp", folder / "packs.json.live.tmp"
    for temporary in (dead, live):
        temporary.write_text("half a cache", encoding="utf-8")
    old = time.time() - cache.STALE_SECONDS - 60
    os.utime(dead, (old, old))
    kept = cache.PackCache.open(tutor_env)
    kept.changed = True
    kept.save()
    assert not dead.exists() and live.exists()
