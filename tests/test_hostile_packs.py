"""Hostile packs: a pack from someone else can't reach outside itself, break other packs or
commands, paint the terminal or spoil the pack cache.

Each hostile pack is the example pack with one thing changed, built in tmp_path (where it
needs symbolic links, FIFOs, loops or many files). Every case ends in a one-line message and
the right exit status, and the learner's packs and history are left as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autograd_tutor import cli
from autograd_tutor.cli import app
from autograd_tutor.content import install, packs
from autograd_tutor.content.cache import PackCache
from autograd_tutor.content.check import check_pack
from autograd_tutor.content.packs import BUILTIN_DIR

runner = CliRunner()
EXAMPLE = Path(__file__).parent.parent / "examples" / "packs" / "two-paths"
ESC = "\x1b"
# Every command that reads the installed packs, as a learner would type it.
READERS = [["list"], ["pack", "list"], ["pack", "list", "--json"], ["practice", "--list"],
           ["exercise", "1", "--reveal", "--json"]]


def hostile(where: Path, change: Callable[[Path], None] | None = None,
            name: str = "two-paths") -> Path:
    """A copy of the example pack in `where`/`name`, changed by `change`."""
    root = where / name
    shutil.copytree(EXAMPLE, root)
    if change is not None:
        change(root)
    return root


def edit(root: Path, file: str, old: str, new: str) -> None:
    path = root / file
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def on_path(monkeypatch: pytest.MonkeyPatch, place: Path) -> None:
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(place))
    packs.forget()


def one_line(text: str) -> None:
    """A message of one line: no traceback, no internal error."""
    assert "Traceback" not in text and "internal error" not in text, text


def every_reader_still_works(skipped: str) -> None:
    """Each command still works for the other packs, saying once that one was skipped."""
    for args in READERS:
        packs.forget()
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output, result.exception)
        one_line(result.output)
        assert ESC not in result.stdout
        assert skipped in result.stderr, (args, result.stderr)
    packs.forget()
    assert cli.complete_exercise("") and cli.complete_pack("b") == ["basics"]
    assert "polynomial" in cli.complete_concept("")


# 1-3: pack add copies the pack's own files, and only those ------------------------------


def test_pack_add_copies_no_link_device_or_fifo_and_says_which(tmp_path: Path,
                                                                tutor_env: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not the pack's", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "big.bin").write_bytes(b"x" * 100)

    def links(root: Path) -> None:
        (root / "blob").symlink_to("/dev/zero")
        (root / "notes.txt").symlink_to(secret)
        (root / "data").symlink_to(tmp_path / "elsewhere")
        os.mkfifo(root / "pipe")
        (root / "own").mkdir()
        (root / "own" / "notes.md").write_text("the pack's own", encoding="utf-8")

    source = hostile(tmp_path / "src", links)
    result = runner.invoke(app, ["pack", "add", "--yes", str(source)])
    assert result.exit_code == 0, result.output
    one_line(result.output)
    copied = tutor_env / "packs" / "two-paths"
    assert sorted(p.name for p in copied.iterdir()) == sorted(
        ["1-used-twice.toml", "2-backward-twice.toml", "helpers.py", "pack.toml", "own"])
    assert (copied / "own" / "notes.md").read_text(encoding="utf-8") == "the pack's own"
    for name, kind in (("blob", "symbolic link"), ("notes.txt", "symbolic link"),
                       ("data", "symbolic link"), ("pipe", "FIFO")):
        assert f"not copied: {name} (a {kind}" in result.stderr
    assert [p.name for p in (tutor_env / "packs").iterdir() if p.is_dir()] == ["two-paths"]


def test_a_pack_whose_needed_file_is_a_link_is_not_added(tmp_path: Path,
                                                         tutor_env: Path) -> None:
    def linked_exercise(root: Path) -> None:
        # Inside the pack, so pack check reads it; a copy would not have it.
        (root / "1-used-twice.toml").rename(root / "real.toml")
        (root / "1-used-twice.toml").symlink_to(root / "real.toml")

    source = hostile(tmp_path / "src", linked_exercise)
    result = runner.invoke(app, ["pack", "add", "--yes", str(source)])
    assert result.exit_code == 1
    one_line(result.output)
    assert "not copied: 1-used-twice.toml (a symbolic link" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tutor_env / "packs" / "two-paths").exists()


def test_pack_add_stops_at_the_size_limit_and_leaves_nothing(tmp_path: Path, tutor_env: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setattr(install, "MAX_BYTES", 64 * 1024)
    source = hostile(tmp_path / "src", lambda root: (root / "data.bin").write_bytes(
        b"\0" * (install.MAX_BYTES + 1)))
    result = runner.invoke(app, ["pack", "add", "--yes", str(source)])
    assert result.exit_code == 1
    one_line(result.output)
    assert "larger than" in result.stderr and result.stderr.count("\n") == 1
    assert [p.name for p in (tutor_env / "packs").iterdir()] == [install.LOCK_NAME]


def test_pack_add_from_inside_the_pack_does_not_copy_itself(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    source = hostile(tmp_path)
    monkeypatch.chdir(source)
    monkeypatch.setenv("AUTOGRAD_TUTOR_HOME", ".tutor")
    result = runner.invoke(app, ["pack", "add", "--yes", "."])
    assert result.exit_code == 0, result.output
    one_line(result.output)
    copied = source / ".tutor" / "packs" / "two-paths"
    assert (copied / "pack.toml").is_file() and not (copied / ".tutor").exists()
    assert "not copied: .tutor" in result.stderr
    packs.forget()
    assert runner.invoke(app, ["exercise", "two-paths/1", "--reveal"]).exit_code == 0


def test_a_dead_writers_staging_folder_is_removed_and_a_live_ones_kept(
        tmp_path: Path, tutor_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from filelock import FileLock

    folder = tutor_env / "packs"
    stale = folder / ".bigp.lunrod46"
    (stale / "pack").mkdir(parents=True)
    (stale / "pack" / "half-a-copy.bin").write_bytes(b"\0" * 1000)
    source = hostile(tmp_path / "src")
    # A writer that is still copying holds the packs folder's lock: its staging stays.
    monkeypatch.setattr(install, "LOCK_TIMEOUT", 0.05)
    with FileLock(str(folder / install.LOCK_NAME)):
        busy = runner.invoke(app, ["pack", "add", "--yes", str(source)])
    assert busy.exit_code == 1 and "another autograd-tutor is adding a pack" in busy.stderr
    assert stale.is_dir() and not (folder / "two-paths").exists()
    # Once no writer holds it, what is left is a dead writer's.
    added = runner.invoke(app, ["pack", "add", "--yes", str(source)])
    assert added.exit_code == 0, added.output
    assert not stale.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted([install.LOCK_NAME, "two-paths"])


# 7: a pack that can't be read is skipped, never fatal -----------------------------------


@pytest.mark.parametrize("nesting", [
    "x = " + "[" * 3000 + "]" * 3000,
    "x = " + "{a = " * 3000 + "1" + "}" * 3000,
    "x = " + "[" * 30 + "]" * 30,  # parses, but deeper than any pack needs
])
def test_a_deeply_nested_pack_toml_is_skipped_with_a_warning(
        nesting: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def nest(root: Path) -> None:
        with (root / "pack.toml").open("a", encoding="utf-8") as file:
            file.write("\n[deep]\n" + nesting + "\n")

    hostile(tmp_path / "shelf", nest)
    on_path(monkeypatch, tmp_path / "shelf")
    every_reader_still_works("nest")
    checked = runner.invoke(app, ["pack", "check", "--yes", str(tmp_path / "shelf" / "two-paths")])
    assert checked.exit_code == 1 and "nest" in checked.output
    one_line(checked.output)


def test_a_symlink_loop_as_an_exercise_file_is_skipped_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def loop(root: Path) -> None:
        (root / "1-used-twice.toml").unlink()
        (root / "1-used-twice.toml").symlink_to(root / "loop-b")
        (root / "loop-b").symlink_to(root / "1-used-twice.toml")

    hostile(tmp_path / "shelf", loop)
    on_path(monkeypatch, tmp_path / "shelf")
    every_reader_still_works("symbolic link loop")


# 9-12: names and text -------------------------------------------------------------------


REDEFINITIONS = {
    "catalogue-concept": ("[concepts]\n", "[concepts]\npolynomial = \"HIJACKED\"\n",
                          "concept 'polynomial' is already declared by the built-in catalogue"),
    "catalogue-misconception": (
        "[misconceptions.one-use-only]",
        "[misconceptions.value-not-gradient]\ntitle = \"HIJACKED TITLE\"\n"
        "explanation = \"x\"\n\n[misconceptions.one-use-only]",
        "misconception 'value-not-gradient' is already declared by the built-in catalogue"),
    "built-in-pack": (
        "[misconceptions.one-use-only]",
        "[misconceptions.failed-call-counted]\ntitle = \"HIJACKED TITLE\"\n"
        "explanation = \"x\"\n\n[misconceptions.one-use-only]",
        "misconception 'failed-call-counted' is already declared by pack 'errors'"),
}


@pytest.mark.parametrize("kind", REDEFINITIONS)
def test_a_pack_may_not_redefine_anothers_names(kind: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    old, new, message = REDEFINITIONS[kind]
    root = hostile(tmp_path / "shelf", lambda r: edit(r, "pack.toml", old, new))
    checked = runner.invoke(app, ["pack", "check", "--yes", str(root)])
    assert checked.exit_code == 1 and message in checked.output, checked.output
    on_path(monkeypatch, tmp_path / "shelf")
    every_reader_still_works("already declared")
    progress = runner.invoke(app, ["practice", "--list"])
    assert "HIJACKED" not in progress.output
    assert packs.installed(Path(os.environ["AUTOGRAD_TUTOR_HOME"])).catalogue().title(
        "value-not-gradient") == "the value, not the gradient"


def test_two_packs_on_the_path_may_not_share_a_concept(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    hostile(tmp_path / "shelf", name="a-first")
    edit(tmp_path / "shelf" / "a-first", "pack.toml", 'name = "two-paths"', 'name = "a-first"')
    hostile(tmp_path / "shelf", name="b-second")
    edit(tmp_path / "shelf" / "b-second", "pack.toml", 'name = "two-paths"', 'name = "b-second"')
    edit(tmp_path / "shelf" / "b-second", "pack.toml", 'shared-use = "A tensor',
         'shared-use = "HIJACKED. A tensor')
    on_path(monkeypatch, tmp_path / "shelf")
    found = packs.installed(Path(os.environ["AUTOGRAD_TUTOR_HOME"]))
    assert "a-first" in found.packs and "b-second" not in found.packs
    assert "concept 'shared-use' is already declared by pack 'a-first'" in found.skipped[0]
    assert "HIJACKED" not in found.catalogue().concepts["shared-use"]


@pytest.mark.parametrize("directory", ["Bad Name [blink red] б\x1b[41m", "UPPER"])
def test_an_empty_name_takes_the_directorys_only_if_it_is_a_valid_name(
        directory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = hostile(tmp_path / "shelf", lambda r: edit(r, "pack.toml", 'name = "two-paths"',
                                                       'name = ""'), name=directory)
    checked = runner.invoke(app, ["pack", "check", "--yes", str(root)])
    assert checked.exit_code == 1 and "must be 1 to 40 lower-case letters" in checked.output
    assert ESC not in checked.output
    on_path(monkeypatch, tmp_path / "shelf")
    every_reader_still_works("not usable")


MARKUP = "[/bold] closing tag [blink red on white]LOUD[link=file:///etc/passwd]click"


def test_markup_in_a_packs_text_is_shown_as_written(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def markup(root: Path) -> None:
        edit(root, "pack.toml", 'title = "Two paths', f'title = "{MARKUP} Two paths')
        edit(root, "1-used-twice.toml", 'title = "A tensor used twice"', f'title = "{MARKUP}"')
        edit(root, "1-used-twice.toml", 'level = "Guided"', f'level = "{MARKUP}"')

    hostile(tmp_path / "shelf", markup)
    on_path(monkeypatch, tmp_path / "shelf")
    for args in (["list", "two-paths"], ["pack", "list"], ["exercise", "two-paths/1",
                                                            "--reveal"]):
        result = runner.invoke(app, args, env={"COLUMNS": "300"})
        assert result.exit_code == 0, (args, result.output, result.exception)
        assert "[/bold] closing tag" in result.stdout, args
    listed = runner.invoke(app, ["list", "two-paths"], env={"COLUMNS": "300"})
    assert listed.stdout.count("[link=file:///etc/passwd]click") == 3  # titles and level


@pytest.mark.parametrize(("file", "old", "new"), [
    ("pack.toml", 'title = "Two paths', 'title = "\\u001b]0;PWNED\\u0007\\u001b[2JTwo paths'),
    ("1-used-twice.toml", 'level = "Guided"', 'level = "\\u001b[2J\\u009b31m"'),
    ("1-used-twice.toml", 'title = "x on two paths"', 'title = "x on\\ntwo paths"'),
    ("1-used-twice.toml", "Take **y", "Take \u202e**y"),  # raw: a literal string
    ("pack.toml", "shared-use = ", '"shared\\u001b[31m-use\\nsplit" = "x"\nshared-use = '),
])
def test_control_characters_in_a_pack_are_reported_and_never_printed(
        file: str, old: str, new: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = hostile(tmp_path / "shelf", lambda r: edit(r, file, old, new))
    checked = runner.invoke(app, ["pack", "check", "--yes", str(root)])
    assert checked.exit_code == 1
    assert any(word in checked.output for word in ("control characters", "one line",
                                                   "concept name")), checked.output
    assert ESC not in checked.output and "\x9b" not in checked.output
    on_path(monkeypatch, tmp_path / "shelf")
    every_reader_still_works("not usable")


def test_a_bad_format_spec_is_found_by_pack_check_and_never_ends_a_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = hostile(tmp_path / "shelf", lambda r: edit(
        r, "1-used-twice.toml", 'by_hand_text = "2x + 3 at x = {x}"',
        'by_hand_text = "2x + 3 at x = {x:q} or {x:>999999999}"'))
    checked = runner.invoke(app, ["pack", "check", "--yes", str(root), "--json"])
    assert checked.exit_code == 1
    messages = [p["message"] for p in json.loads(checked.stdout)["problems"]]
    assert any("format spec 'q'" in m for m in messages), messages
    assert any("format spec '>999999999'" in m for m in messages), messages
    # An installed pack is read without running it: the run still ends well, and is saved.
    on_path(monkeypatch, tmp_path / "shelf")
    run = runner.invoke(app, ["exercise", "two-paths/1", "--reveal", "--json"])
    assert run.exit_code == 0, (run.output, run.exception)
    assert json.loads(run.stdout)["completed"] is True
    shown = runner.invoke(app, ["exercise", "two-paths/1", "--reveal"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "2x + 3 at x = 4 or 4" in shown.stdout, shown.output


# 13-15: the pack cache and the size of a pack ----------------------------------------------


def test_an_exercise_in_a_hidden_folder_is_read_again_after_an_edit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def hide(root: Path) -> None:
        (root / ".lessons").mkdir()
        (root / "1-used-twice.toml").rename(root / ".lessons" / "1-used-twice.toml")
        edit(root, "pack.toml", '"1-used-twice.toml"', '".lessons/1-used-twice.toml"')

    root = hostile(tmp_path / "shelf", hide)
    on_path(monkeypatch, tmp_path / "shelf")
    home = Path(os.environ["AUTOGRAD_TUTOR_HOME"])
    assert packs.installed(home).get("two-paths").exercises[0].title == "A tensor used twice"
    edit(root, ".lessons/1-used-twice.toml", 'title = "A tensor used twice"',
         'title = "A tensor used twice, revised"')
    packs.forget()
    assert packs.installed(home).get("two-paths").exercises[0].title == \
        "A tensor used twice, revised"


@pytest.mark.parametrize(("change", "shown"), [
    (lambda data: data.update(level="[/]"), "[/]"),
    (lambda data: data.update(title="\x1b]0;PWNED\x07Polynomial"), "Polynomial Gradient"),
    (lambda data: data.update(steps=[]), "Polynomial Gradient"),
])
def test_a_hand_edited_cache_entry_is_checked_like_the_toml(
        change: Callable[[dict], None], shown: str, tutor_env: Path) -> None:
    assert runner.invoke(app, ["list"]).exit_code == 0
    place = tutor_env / "cache" / "packs.json"
    cached = json.loads(place.read_text(encoding="utf-8"))
    change(cached["entries"][str(BUILTIN_DIR / "basics" / "1-polynomial.toml")]["data"])
    cached["built"] = {}  # the packs are built again from the (edited) files' data
    place.write_text(json.dumps(cached), encoding="utf-8")
    packs.forget()
    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0, (listed.output, listed.exception)
    assert shown in listed.stdout and ESC not in listed.stdout and listed.stderr == ""


def test_a_hand_edited_built_pack_fails_its_seal_and_is_read_again(tutor_env: Path) -> None:
    assert runner.invoke(app, ["list"]).exit_code == 0
    place = tutor_env / "cache" / "packs.json"
    cached = json.loads(place.read_text(encoding="utf-8"))
    entry = cached["built"][str(BUILTIN_DIR / "basics")]
    assert "Polynomial Gradient" in entry["pack"]
    entry["pack"] = entry["pack"].replace("Polynomial Gradient", "[/]\u001b[2JHIJACKED")
    place.write_text(json.dumps(cached), encoding="utf-8")
    packs.forget()
    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0, (listed.output, listed.exception)
    assert "Polynomial Gradient" in listed.stdout and "HIJACKED" not in listed.stdout


def test_a_cache_entry_emptying_a_pack_is_not_served(tutor_env: Path) -> None:
    runner.invoke(app, ["list"])
    place = tutor_env / "cache" / "packs.json"
    cached = json.loads(place.read_text(encoding="utf-8"))
    cached["entries"][str(BUILTIN_DIR / "basics" / "pack.toml")]["data"]["exercises"] = []
    place.write_text(json.dumps(cached), encoding="utf-8")
    packs.forget()
    result = runner.invoke(app, ["exercise", "1", "--reveal", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["exercise"]


def test_a_pack_of_too_many_exercises_is_refused_quickly(tmp_path: Path, tutor_env: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    many = packs.MAX_EXERCISES * 5
    names = ", ".join(['"1-used-twice.toml"'] * many)
    hostile(tmp_path / "shelf", lambda r: edit(
        r, "pack.toml", 'exercises = ["1-used-twice.toml", "2-backward-twice.toml"]',
        f"exercises = [{names}]"))
    on_path(monkeypatch, tmp_path / "shelf")
    every_reader_still_works(f"lists {many} files; a pack holds at most {packs.MAX_EXERCISES}")


def test_an_exercise_of_too_many_steps_is_refused(tmp_path: Path) -> None:
    def steps(root: Path) -> None:
        text = (root / "1-used-twice.toml").read_text(encoding="utf-8")
        step = text[text.index("[[steps]]"):]
        (root / "1-used-twice.toml").write_text(text + ("\n" + step) * packs.MAX_STEPS,
                                                encoding="utf-8")

    result = check_pack(hostile(tmp_path, steps))
    assert f"an exercise holds at most {packs.MAX_STEPS} steps" in str(result.problems)


def test_a_cache_that_would_be_too_big_to_read_is_never_written(
        tutor_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from autograd_tutor.content import cache

    monkeypatch.setattr(cache, "MAX_BYTES", 1000)
    assert runner.invoke(app, ["list"]).exit_code == 0
    assert not (tutor_env / "cache" / "packs.json").exists()
    kept = PackCache.open(tutor_env)
    assert kept.entries == {}


def test_the_cache_is_written_once_not_on_every_run(tmp_path: Path, tutor_env: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # A broken pack (read again from its files on every run) and a sound one whose practice
    # template the reader completes (the kept data must not change under it).
    hostile(tmp_path / "shelf", lambda r: edit(r, "pack.toml", 'title = "Two paths',
                                               'title = "\\u001b[2JTwo paths'), name="broken")
    hostile(tmp_path / "shelf", name="sound")
    on_path(monkeypatch, tmp_path / "shelf")
    place = tutor_env / "cache" / "packs.json"
    assert runner.invoke(app, ["list"]).exit_code == 0
    written = place.stat().st_mtime_ns, place.read_bytes()
    for _ in range(2):
        packs.forget()
        assert runner.invoke(app, ["list"]).exit_code == 0
        assert (place.stat().st_mtime_ns, place.read_bytes()) == written


def test_a_packs_folder_name_is_never_printed_as_escape_codes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hostile(tmp_path / "shelf", name="\x1b]0;PWNED\x07")
    on_path(monkeypatch, tmp_path / "shelf")
    listed = runner.invoke(app, ["pack", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "two-paths" in listed.stdout
    assert ESC not in listed.stdout and "?]0;PWNED?" in listed.stdout
