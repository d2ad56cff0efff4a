"""Lesson packs: the format, `pack check` on sound and broken packs, and packs in use.

Each kind of damage `pack check` must find lives as a small fixture pack under
tests/fixtures/packs/, a copy of `valid/` with one thing wrong. The checker runs every
exercise with real PyTorch; the expected problems name the file, step and prediction.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content.check import check_pack
from autograd_tutor.content.packs import BUILTIN_DIR, builtin, installed, load_pack
from autograd_tutor.engine.store import Store

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures" / "packs"
EXAMPLES = Path(__file__).parent.parent / "examples" / "packs"
PACKAGE = Path(__file__).parent.parent / "autograd_tutor"

# fixture -> (file, step, prediction, a fragment of the message)
BROKEN = {
    "toml-syntax": ("square.toml", None, None, "TOML does not parse"),
    "missing-field": ("square.toml", 1, None, "has no 'setup' (required)"),
    "wrong-type": ("square.toml", 1, "x.grad", "'hints' of the prediction must be a list"),
    "bad-expression": ("square.toml", 1, "x.grad", "by_hand '2 * x +' does not parse"),
    "unbound-name": ("square.toml", 1, "x.grad", "'z' is not a name the step's code binds"),
    "expression-raises": ("square.toml", 1, "x.grad", "ZeroDivisionError"),
    "constant-actual": ("square.toml", 1, "x.grad", "actual '14' is a constant"),
    "code-raises": ("square.toml", 1, None, "code raises where no error is expected"),
    "by-hand-disagrees": ("square.toml", 1, "x.grad", "by_hand gives 21 but PyTorch gives 14"),
    "undeclared-misconception": ("square.toml", 1, "x.grad",
                                 "misconception 'no-such-mistake' is declared neither"),
    "misconception-is-answer": ("square.toml", 1, "x.grad",
                                "'exponent-not-brought-down' gives the right answer"),
    "misconceptions-coincide": ("square.toml", 1, "x.grad", "both give 49"),
    "leak": ("square.toml", 1, "x.grad", "contains its answer (14)"),
    # Every spelling of an answer, located: one digit, a fraction, a word, a choice's name,
    # and a number of the code stated as the answer.
    "leak-one-digit": ("square.toml", 1, "x.grad", "contains its answer (7) in step 1's setup"),
    "leak-fraction": ("square.toml", 1, "x.grad", "contains its answer (1/3) in step 1's setup"),
    "leak-word": ("square.toml", 1, "rising", "states its answer in step 1's setup: "
                  "'at x = 3. Is y rising there? (it is True)'"),
    "leak-choice-name": ("square.toml", 2, "again:which",
                         "contains its answer (backward twice) in step 2's title"),
    "leak-code-number": ("square.toml", 1, "x.grad[0]", "states its answer in step 1's setup: "
                         "'s, and y is the sum of 4x. So x.grad[0] = 4.'"),
    "duplicate-id": ("square.toml", 1, "x.grad", "duplicate prediction id 'x.grad'"),
    "template-unfair": ("pack.toml", 1, None, "could not draw a fair problem in 200 tries"),
    # inf passed the reader once, then became null in the pack cache and spoilt it
    "template-infinite": ("pack.toml", 1, None, "param 'a' must be [low, high] with low <= "
                          "high, both finite"),
    # a by_hand right by coincidence at the step's `at` (3x² = 6x at x = 2), wrong elsewhere
    "coincident-by-hand": ("square.toml", 1, "x.grad", "it must agree at every draw"),
    "outcome-wrong": ("square.toml", 2, "again", "declared outcome is 'error', but the code ran"),
    "error-match-wrong": ("square.toml", 2, "twice", "error_match 'non-scalar' does not match"),
    # format 2: a tensor as the answer once crashed pack check with an internal error
    "vector-actual": ("square.toml", 1, "x.grad",
                      "by_hand gives [3, 6, 9] but PyTorch gives [2, 4, 6]"),
    # the same in format 1, where a learner could never type the answer
    "vector-actual-format-1": ("square.toml", 1, "x.grad",
                               "actual gives a tensor of shape (3,), which a learner can type "
                               "only in a pack of format = 2"),
    # an earlier answer's ID once silently replaced the expression spelled the same
    "ambiguous-placeholder": ("square.toml", 1, None,
                              "placeholder {x.grad} in explanation is both a prediction ID "
                              "and an expression"),
    "prepare-prints": ("square.toml", 1, None, "the hidden prepare code prints or warns"),
    # hidden code's data, printed by the shown code before the question
    "prepare-leaks": ("square.toml", 2, "x.grad", "contains its answer (14)"),
    "kind-mismatch": ("square.toml", 1, "x.grad", "'x.grad' gives 14, not True or False"),
    "prepare-needs-format-2": ("square.toml", 1, None, "prepare (hidden code) needs format = 2"),
    "tensor-leak": ("square.toml", 1, "x.grad", "contains its answer ([10, 12, 14])"),
    # Whether "which error?" follows a predicted error must not tell what the code does.
    "prompts-tell-outcome": ("square.toml", 3, "fresh", "asked which error at tiny/1 'again' "
                             "but not here"),
    "outcomes-all-alike": ("square.toml", 2, "again", "all 2 outcome questions of this pack "
                           "have the answer 'error'"),
    "coding-solution-fails": ("square.toml", None, None,
                              "[coding] solution 'solution.py' fails its own check"),
    # the scaffold runs beside the solution: its verdict must still be judged and said
    "coding-scaffold-passes": ("square.toml", None, None,
                               "[coding] the untouched scaffold 'scaffold.py' passes the check"),
    "coding-unknown-diagnosis": ("square.toml", None, None,
                                 "[coding] 'power_rule' is not a function of judge.py"),
}


def test_every_fixture_has_an_expected_problem() -> None:
    kinds = {p.name for p in FIXTURES.iterdir() if p.is_dir()} - {"valid"}
    assert kinds == set(BROKEN)


def test_the_valid_fixture_passes() -> None:
    result = check_pack(FIXTURES / "valid")
    assert result.ok, [str(p) for p in result.problems]
    assert result.predictions == 1


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_pack_check_reports_each_kind_of_damage_precisely(kind: str) -> None:
    file, step, prediction, fragment = BROKEN[kind]
    result = check_pack(FIXTURES / kind)
    assert not result.ok
    (problem,) = result.problems  # one thing wrong, one problem: said once
    assert (problem.file, problem.step, problem.prediction) == (file, step, prediction)
    assert fragment in problem.message, problem.message
    where = ": ".join(x for x in (file, step and f"step {step}",
                                  prediction and f"prediction {prediction}") if x)
    assert str(problem).startswith(where + ": ")


def test_the_leaked_answers_in_the_fixtures_are_pytorchs() -> None:
    """7, 1/3, True and 4 above: what torch gives for each leak fixture's code."""
    x = torch.tensor(3.5, requires_grad=True)
    (x**2).backward()
    assert x.grad is not None and x.grad.item() == 7.0
    x = torch.tensor(5.0, requires_grad=True)
    (x / 3).backward()
    assert x.grad is not None and abs(x.grad.item() - 1 / 3) < 1e-7
    x = torch.tensor(3.0, requires_grad=True)
    (x**2).backward()
    assert x.grad is not None and (x.grad.item() > 0) is True
    x = torch.zeros(4, requires_grad=True)
    (4 * x).sum().backward()
    assert x.grad is not None and x.grad[0].item() == 4.0
    x = torch.tensor(7.0, requires_grad=True)
    y = x**2
    y.backward()
    with pytest.raises(RuntimeError, match="a second time"):
        y.backward()


def test_a_number_of_the_code_may_be_given_but_not_stated_as_the_answer(tmp_path: Path
                                                                          ) -> None:
    """The code-number fixture without its last sentence passes: "holds 4 zeros" is a given."""
    shutil.copytree(FIXTURES / "leak-code-number", tmp_path / "pack")
    exercise = tmp_path / "pack" / "square.toml"
    exercise.write_text(exercise.read_text().replace(" So x.grad[0] = 4.", ""))
    result = check_pack(tmp_path / "pack")
    assert result.ok, [str(p) for p in result.problems]


def test_the_expected_numbers_in_the_messages_are_pytorchs() -> None:
    """14 and 21, 49 above: what torch gives for y = x² at x = 7, and 3x, and x²."""
    x = torch.tensor(7.0, requires_grad=True)
    (x**2).backward()
    assert x.grad is not None and x.grad.item() == 14.0
    assert 3 * 7.0 == 21.0 and 7.0**2 == 49.0
    vector = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)  # vector-actual
    (vector**2).sum().backward()
    assert vector.grad is not None and vector.grad.tolist() == [2.0, 4.0, 6.0]
    assert (3 * vector.detach()).tolist() == [3.0, 6.0, 9.0]
    leaked = torch.tensor([5.0, 6.0, 7.0], requires_grad=True)  # tensor-leak
    (leaked**2).sum().backward()
    assert leaked.grad is not None and leaked.grad.tolist() == [10.0, 12.0, 14.0]


def test_pack_check_command_exit_status_and_json() -> None:
    bad = runner.invoke(app, ["pack", "check", str(FIXTURES / "by-hand-disagrees"), "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    assert report["pack"] == "tiny" and report["ok"] is False
    assert report["problems"][0] == {"file": "square.toml", "step": 1,
                                     "prediction": "x.grad",
                                     "message": report["problems"][0]["message"]}
    good = runner.invoke(app, ["pack", "check", str(FIXTURES / "valid")])
    assert good.exit_code == 0 and "ok" in good.output
    missing = runner.invoke(app, ["pack", "check", str(FIXTURES / "no-such-pack")])
    assert missing.exit_code == 1 and "no pack.toml" in missing.output


@pytest.mark.parametrize("where", [BUILTIN_DIR / "basics", BUILTIN_DIR / "errors",
                                   EXAMPLES / "two-paths", EXAMPLES / "shapes-and-flags"],
                         ids=["basics", "errors", "example", "example-format-2"])
def test_built_in_and_example_packs_are_sound(where: Path) -> None:
    result = check_pack(where)
    assert result.ok, "\n".join(map(str, result.problems))


def plain_fragment(markdown: str) -> str:
    """The longest run of the text with no markup or placeholder in it, as rendered."""
    runs = re.split(r"[*`{}_#\[\]]|\n\n", markdown)
    return " ".join(max(runs, key=len).split())


@pytest.mark.parametrize("where", [BUILTIN_DIR / "basics", BUILTIN_DIR / "errors",
                                   EXAMPLES / "two-paths"], ids=["basics", "errors", "example"])
def test_every_steps_explanation_is_shown_even_with_reveal(where: Path, tmp_path: Path,
                                                           monkeypatch) -> None:
    """A step without predictions once returned before its explanation."""
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(where.parent))
    pack, _ = load_pack(where)
    assert pack is not None
    for exercise in pack.exercises:
        result = runner.invoke(app, ["exercise", f"{pack.name}/{exercise.number}", "--reveal",
                                     "--graph", "none", "--plots", str(tmp_path)],
                               env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        shown = " ".join(result.output.split())
        for index, step in enumerate(exercise.steps, start=1):
            if step.explanation:
                fragment = plain_fragment(step.explanation)
                assert fragment in shown, f"{exercise.key} step {index}: {fragment!r}"


def test_the_basics_pack_reads_without_problems() -> None:
    pack, problems = load_pack(BUILTIN_DIR / "basics", builtin=True)
    assert problems == [] and pack is not None
    assert [e.number for e in pack.exercises] == [1, 2, 3, 4, 5]
    assert builtin().exercise(4).coding is not None
    assert all(e.coding is None for e in pack.exercises if e.number != 4)


# Packs in use -----------------------------------------------------------------------------


@pytest.fixture
def example_on_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(EXAMPLES))
    return EXAMPLES / "two-paths"


def test_pack_list_shows_where_each_pack_lives(example_on_path: Path) -> None:
    result = runner.invoke(app, ["pack", "list", "--json"])
    assert result.exit_code == 0
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["basics"]["builtin"] is True and listed["basics"]["exercises"] == 5
    assert listed["two-paths"]["path"] == str(example_on_path)
    assert "two-paths" in runner.invoke(app, ["pack", "list"]).output


def test_an_installed_pack_runs_records_and_feeds_practice(example_on_path: Path,
                                                          tutor_env: Path) -> None:
    x = torch.tensor(4.0, requires_grad=True)
    (x * x + 3 * x).backward()
    right = x.grad.item()
    result = runner.invoke(app, ["exercise", "two-paths/1", "--json", "--graph", "none",
                                 "--answer", f"x.grad={right - 3}"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pack"] == "two-paths" and report["exercise"] == 1
    (step,) = report["steps"]
    assert step["actual"] == right and step["misconception"] == "one-use-only"
    (attempt,) = Store(tutor_env, warn=print).load().attempts
    assert (attempt.pack, attempt.exercise, attempt.concept) == ("two-paths", 1, "shared-use")
    listing = runner.invoke(app, ["list", "two-paths"])
    assert "two-paths/1" in listing.output and "done" in listing.output
    # The missed concept comes from the pack's catalogue and feeds practice and review.
    concepts = runner.invoke(app, ["practice", "--list"]).output
    assert "shared-use" in concepts
    practice = runner.invoke(app, ["practice", "--concept", "shared-use", "--count", "2",
                                   "--seed", "3", "--reveal", "--json"])
    assert practice.exit_code == 0, practice.output
    items = json.loads(practice.stdout)["items"]
    assert [item["concept"] for item in items] == ["shared-use", "shared-use"]
    for item in items:  # each problem's answer, from an independent run of its own code
        names: dict = {"torch": torch}
        exec(item["code"], names)
        assert item["actual"] == names["x"].grad.item()
    # ... and review brings the missed concept back, from the pack's own template.
    import datetime as dt

    from autograd_tutor.engine import review

    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    assert "shared-use" in review.due(Store(tutor_env, warn=print).load().attempts, later)


def test_pack_add_checks_then_copies(tutor_env: Path) -> None:
    refused = runner.invoke(app, ["pack", "add", str(FIXTURES / "leak")])
    assert refused.exit_code == 1 and "contains its answer" in refused.output
    assert not (tutor_env / "packs" / "tiny").exists()
    added = runner.invoke(app, ["pack", "add", str(FIXTURES / "valid")])
    assert added.exit_code == 0, added.output
    assert (tutor_env / "packs" / "tiny" / "square.toml").is_file()
    assert "tiny" in installed(tutor_env).packs
    again = runner.invoke(app, ["pack", "add", str(FIXTURES / "valid")])
    assert again.exit_code == 1 and "--force" in again.output
    forced = runner.invoke(app, ["pack", "add", str(FIXTURES / "valid"), "--force"])
    assert forced.exit_code == 0
    assert runner.invoke(app, ["exercise", "tiny/1", "--reveal"]).exit_code == 0


def test_a_broken_pack_on_the_path_is_skipped_with_a_warning(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    place = tmp_path / "packs"
    shutil.copytree(FIXTURES / "toml-syntax", place / "broken")
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(place))
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "not usable" in result.stderr and "pack check" in result.stderr


@pytest.mark.parametrize(("text", "message"), [
    ("nosuch/1", "names no installed pack"),
    ("basics/9", "choose a number from 1 to 5"),
    ("9", "choose a number from 1 to 5"),
    ("x/y", "names no installed pack"),
])
def test_unknown_exercises_are_usage_errors(text: str, message: str) -> None:
    result = runner.invoke(app, ["exercise", text])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


# The engine knows no lesson -----------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(("layer", "forbidden"), [
    # The same rules as the import-linter contracts in pyproject.toml (docs/architecture.md).
    ("engine", ("autograd_tutor.views", "autograd_tutor.content", "autograd_tutor.cli",
                "autograd_tutor.app", "rich", "typer")),
    ("content", ("autograd_tutor.views", "autograd_tutor.cli", "autograd_tutor.app")),
    ("views", ("autograd_tutor.cli", "torch")),
    # Use cases return records; drawing them is the views' job.
    ("app", ("autograd_tutor.views", "autograd_tutor.cli", "rich", "typer")),
])
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    for path in (PACKAGE / layer).glob("*.py"):
        for module in _imports(path):
            assert not module.startswith(forbidden), f"{path.name} imports {module}"


def test_no_lesson_is_known_by_number_or_magic_key() -> None:
    for layer in ("engine", "views"):
        for path in (PACKAGE / layer).glob("*.py"):
            if path.name == "legacy.py":
                continue  # converts old files, whose rows were all the basics pack's
            text = path.read_text(encoding="utf-8")
            for magic in ("_recorded", '"_error"', "CODING_EXERCISE", "number == 0",
                          "number > 0", "basics"):
                assert magic not in text, f"{path.name} mentions {magic}"


def test_a_step_whose_code_raises_keeps_the_typed_answers_and_names_the_pack(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tutor_env: Path) -> None:
    """The lesson is broken, not the learner: what was typed is kept, unjudged (as after
    Ctrl-C), and the message says which folder to check."""
    shelf = tmp_path / "shelf"
    pack = shelf / "raisey"
    shutil.copytree(EXAMPLES / "two-paths", pack)
    manifest = pack / "pack.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(
        'name = "two-paths"', 'name = "raisey"', 1), encoding="utf-8")
    lesson = pack / "1-used-twice.toml"
    lesson.write_text(lesson.read_text(encoding="utf-8").replace(
        "y.backward()\n'''", "y.backward()\nraise RuntimeError('the lesson is broken')\n'''", 1),
        encoding="utf-8")
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(shelf))
    result = runner.invoke(app, ["exercise", "raisey/1", "--graph", "none",
                                 "--answer", "x.grad=11"])
    assert result.exit_code == 1, result.output
    assert "is broken" in result.stderr and "Traceback" not in result.output
    assert f"pack check {pack}" in " ".join(result.stderr.split())
    assert "DIR" not in result.stderr
    (kept,) = Store(tutor_env, warn=print).load().attempts
    assert (kept.pack, kept.exercise, kept.id, kept.typed) == ("raisey", 1, "x.grad", "11")
    assert kept.judged is False and kept.correct is None


def test_the_summary_counts_in_words_that_agree(tmp_path: Path) -> None:
    """`pack new`'s pack has one exercise and one prediction: "1 exercise", not "1 exercises"."""
    made = runner.invoke(app, ["pack", "new", "solo", "--dir", str(tmp_path)])
    assert made.exit_code == 0, made.output
    checked = runner.invoke(app, ["pack", "check", "--yes", str(tmp_path / "solo")])
    assert checked.exit_code == 0, checked.output
    assert "1 exercise, 1 prediction, 0 practice templates checked" in checked.output
