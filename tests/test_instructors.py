"""For instructors: export -> report round trips, damaged and duplicate exports, the plot,
`pack new` and `pack import`. Learners' histories are made by running exercises through the
CLI (the engine judges and records them), never written by hand."""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import msgspec
import nbformat
import pytest
import reference
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from reference import typed
from typer.testing import CliRunner

from autograd_tutor.app import export as exports
from autograd_tutor.app import report as reports
from autograd_tutor.cli import app
from autograd_tutor.content.packs import builtin, load_pack
from autograd_tutor.engine.store import Store

runner = CliRunner()
SEED = Path(__file__).parent / "fixtures" / "autograd-notebook.ipynb"
ROOT = Path(__file__).parent.parent


def run(*args: str | Path, home: Path | None = None):
    env = {"AUTOGRAD_TUTOR_HOME": str(home)} if home is not None else None
    return runner.invoke(app, [str(a) for a in args], env=env)


# Learners, with answers chosen so the counts are known ----------------------------------


def ex1_values() -> dict[str, float]:
    """Exercise 1's right answer and two wrong ones, from PyTorch: y itself (the value, not
    the gradient), and the slope with every power lowered but not brought down."""
    x = torch.tensor(reference.EX1_X)
    return {"right": float(reference.ex1()["x.grad"]),
            "value": (x**3 + 2 * x**2 - 5 * x + 1).item(),
            "power": (x**2 + 2 * x - 5).item()}


def learn(home: Path, tmp_path: Path, *answers: float) -> None:
    """One run of exercise 1 per answer, judged and recorded by the engine."""
    for answer in answers:
        result = run("exercise", "1", "--no-retry", "--graph", "none", "--plots",
                     tmp_path / "plots", "--answer", f"x.grad={typed(answer)}", home=home)
        assert result.exit_code == 0, result.output


def hand_in(home: Path, target: Path) -> Path:
    result = run("export", "--output", target, home=home)
    assert result.exit_code == 0, result.output
    return target


@pytest.fixture(scope="module")
def class_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four learners' exports in one folder: A and B answer y's value (31), C is right, D
    first lowers the powers without bringing them down, then gets it right. Made once."""
    values = ex1_values()
    root = tmp_path_factory.mktemp("class")
    folder = root / "handed-in"
    folder.mkdir()
    plan = {"a": [values["value"]], "b": [values["value"]], "c": [values["right"]],
            "d": [values["power"], values["right"]]}
    for learner, answers in plan.items():
        home = root / f"learner-{learner}"
        learn(home, root, *answers)
        hand_in(home, folder / f"{learner}.json")
    return folder


@pytest.fixture
def classroom(class_exports: Path, tmp_path: Path) -> Path:
    """A copy of the class's exports that a test may add files to."""
    import shutil

    return Path(shutil.copytree(class_exports, tmp_path / "handed-in"))


def test_export_then_report_counts_each_learner_and_each_wrong_answer(classroom: Path) -> None:
    values = ex1_values()
    result = run("report", classroom, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["learners"] == 4 and report["skipped"] == []
    (exercise,) = report["exercises"]
    assert (exercise["pack"], exercise["exercise"]) == ("basics", 1)
    assert exercise["started"] == 4 and exercise["finished"] == 4
    (prediction,) = exercise["predictions"]
    assert prediction["id"] == "x.grad"
    assert prediction["learners"] == 4 and prediction["first_try_right"] == 1
    assert prediction["first_try_accuracy"] == pytest.approx(1 / 4)
    assert prediction["wrong_answers"] == [
        {"answer": typed(values["value"]).removesuffix(".0"), "learners": 2,
         "misconception": "value-not-gradient"},
        {"answer": typed(values["power"]).removesuffix(".0"), "learners": 1,
         "misconception": "exponent-not-brought-down"},
    ]
    assert [(m["name"], m["learners"]) for m in report["misconceptions"]] == [
        ("value-not-gradient", 2), ("exponent-not-brought-down", 1)]
    assert report["misconceptions"][0]["where"] == ["basics/1 x.grad"]
    # C was right at once, D at the second run: two of four ended right.
    assert report["concepts"] == [{"name": "polynomial", "learners": 4, "last_right": 2,
                                   "share": 0.5}]


def test_report_tables_show_the_same_numbers(classroom: Path) -> None:
    values = ex1_values()
    result = run("report", classroom)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "4 learners" in text
    assert f"{typed(values['value']).removesuffix('.0')} ×2" in text
    title = builtin().exercises[0].predictions[0].misconceptions[0].title
    assert title and title.split()[0] in text
    assert "1/4 (25%)" in text and "2/4 (50%)" in text


def test_filters_keep_one_pack_or_exercise(classroom: Path) -> None:
    only = json.loads(run("report", classroom, "--json", "--exercise", "basics/1").stdout)
    assert only["learners"] == 4 and len(only["exercises"]) == 1
    other = json.loads(run("report", classroom, "--json", "--exercise", "2").stdout)
    assert other["exercises"] == [] and other["misconceptions"] == []
    none = json.loads(run("report", classroom, "--json", "--pack", "errors").stdout)
    assert none["exercises"] == [] and none["concepts"] == []
    bad = run("report", classroom, "--exercise", "one")
    assert bad.exit_code == 2 and "PACK/N" in bad.output


def test_json_is_one_object_and_nothing_else_on_stdout(classroom: Path) -> None:
    (classroom / "broken.json").write_text("{not json")
    result = run("report", classroom, "--json", "--plot", classroom.parent / "class.png")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 1
    assert isinstance(json.loads(result.stdout), dict)
    assert "broken.json" in result.stderr and "Saved figure" in result.stderr


# Damaged, foreign and duplicate exports --------------------------------------------------


def test_damaged_and_foreign_files_are_skipped_with_one_line_each(classroom: Path) -> None:
    good = (classroom / "a.json").read_text()
    bad = {
        "cut.json": good[: len(good) // 2],
        "binary.json": "\x00\xff garbage",
        "foreign.json": json.dumps({"name": "some other tool", "data": [1, 2]}),
        "list.json": "[1, 2, 3]",
        "wrong-field.json": good.replace('"attempts":[', '"attempts":"no"', 1).split(
            ',"completed"')[0] + "}",
        "newer.json": good.replace('"format_version":1', '"format_version":99'),
        "deep.json": "[" * 100_000,
    }
    for name, text in bad.items():
        (classroom / name).write_text(text, encoding="utf-8", errors="surrogateescape")
    result = run("report", classroom, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["learners"] == 4
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(bad)
    for name in bad:
        (line,) = [w for w in warnings if name in w]
        assert "skipped" in line
    assert "newer" in next(w for w in warnings if "newer.json" in w)
    assert "Traceback" not in result.output


def test_only_unreadable_files_is_exit_1(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("nope")
    result = run("report", tmp_path / "x.json", tmp_path / "missing.json")
    assert result.exit_code == 1
    assert "no export could be read" in result.stderr
    assert "missing.json" in result.stderr and "Traceback" not in result.output


def test_a_learner_handing_in_twice_counts_once_with_the_latest_export(tmp_path: Path) -> None:
    values = ex1_values()
    home = tmp_path / "learner"
    learn(home, tmp_path, values["value"])
    older = exports.build_export(Store(home, warn=print).load(),
                                 exports.learner_id(home), moment="2020-01-01T00:00:00+00:00")
    learn(home, tmp_path, values["right"])
    folder = tmp_path / "in"
    folder.mkdir()
    hand_in(home, folder / "a-latest.json")
    # Listed after the latest one: the export time decides, not the order of the files.
    (folder / "z-older.json").write_bytes(msgspec.json.encode(older))
    result = run("report", folder, "--json")
    report = json.loads(result.stdout)
    assert report["learners"] == 1
    assert report["concepts"][0]["learners"] == 1 and report["concepts"][0]["last_right"] == 1
    assert "handed in 2 exports" in result.stderr


# The export itself -----------------------------------------------------------------------


def test_export_holds_every_attempt_and_no_path_user_or_host(tmp_path: Path) -> None:
    values = ex1_values()
    home = tmp_path / "learner"
    learn(home, tmp_path, values["value"])
    result = run("export", home=home)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["format"] == exports.FORMAT and document["format_version"] == 1
    assert document["torch_version"] == version("torch")
    stored = Store(home, warn=print).load().attempts
    assert len(document["attempts"]) == len(stored) == 1
    (attempt,) = document["attempts"]
    assert attempt["pack"] == "basics" and attempt["exercise"] == 1
    assert attempt["prediction_id"] == "x.grad" and attempt["kind"] == "exercise"
    assert attempt["prediction"] == values["value"] and attempt["actual"] == values["right"]
    assert attempt["correct"] is False and attempt["misconception"] == "value-not-gradient"
    assert attempt["hints_used"] == 0 and attempt["time"] == stored[0].time
    text = result.stdout
    for private in (str(tmp_path), str(home), getpass.getuser(), socket.gethostname()):
        assert private not in text


def test_learner_id_is_random_stable_and_kept_in_the_progress_directory(tmp_path: Path) -> None:
    first = json.loads(run("export", home=tmp_path / "one").stdout)["learner"]
    again = json.loads(run("export", home=tmp_path / "one").stdout)["learner"]
    other = json.loads(run("export", home=tmp_path / "two").stdout)["learner"]
    assert first == again != other
    assert (tmp_path / "one" / exports.LEARNER_FILE).read_text().strip() == first
    named = json.loads(run("export", "--name", "team-7", home=tmp_path / "one").stdout)
    assert named["learner"] == "team-7"
    assert run("export", "--name", "", home=tmp_path / "one").exit_code == 2


def test_a_damaged_learner_id_file_is_exit_1_and_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / exports.LEARNER_FILE).write_text("not an id\n")
    result = run("export", home=home)
    assert result.exit_code == 1 and "learner ID" in result.stderr
    assert (home / exports.LEARNER_FILE).read_text() == "not an id\n"


def test_export_to_an_unwritable_place_is_exit_1(tmp_path: Path) -> None:
    result = run("export", "--output", tmp_path / "no" / "such" / "dir.json",
                 home=tmp_path / "home")
    assert result.exit_code == 1 and "can't write" in result.stderr


# The figure --------------------------------------------------------------------------------


def test_plot_replaces_a_link_and_never_writes_through_it(classroom: Path,
                                                          tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    plot = tmp_path / "class.png"
    plot.symlink_to(victim)
    result = run("report", classroom, "--plot", plot)
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me"
    assert not plot.is_symlink() and plot.read_bytes().startswith(b"\x89PNG")


def test_plot_is_drawn_headless(classroom: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    env["PYTHONPATH"] = str(ROOT)
    plot = tmp_path / "class.png"
    completed = subprocess.run(
        [sys.executable, "-c",
         "import sys; from autograd_tutor.cli import main; sys.argv[0] = 'autograd-tutor';"
         "main()", "report", str(classroom), "--plot", str(plot)],
        capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_report_numbers_from_records_directly() -> None:
    """The counting on its own, without files: two learners, a skipped answer ignored."""
    def attempt(pid: str, correct: bool | None, answer: float, miss: str | None = None,
                skipped: bool = False) -> exports.ExportedAttempt:
        return exports.ExportedAttempt("p", 1, pid, "exercise", answer, 2.0, correct, miss, 0,
                                       "2026-01-01T00:00:00+00:00", skipped, "c")

    one = exports.Export(exports.FORMAT, 1, "0", None, "one", "2026-01-02T00:00:00+00:00",
                         [attempt("g", None, 0.0, skipped=True), attempt("g", False, 5.0, "m"),
                          attempt("g", True, 2.0)])
    two = exports.Export(exports.FORMAT, 1, "0", None, "two", "2026-01-02T00:00:00+00:00",
                         [attempt("g", False, 5.0, "m")])
    report = reports.build_report([one, two])
    (exercise,) = report.exercises
    (prediction,) = exercise.predictions
    assert (prediction.learners, prediction.first_try_right) == (2, 0)
    assert [(w.answer, w.learners, w.misconception) for w in prediction.wrong_answers] == [
        ("5", 2, "m")]
    assert [(c.name, c.learners, c.last_right) for c in report.concepts] == [("c", 2, 1)]


# pack new --------------------------------------------------------------------------------


def test_pack_new_then_pack_check_passes(tmp_path: Path) -> None:
    result = run("pack", "new", "my-pack", "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    made = tmp_path / "my-pack"
    assert sorted(p.name for p in made.iterdir()) == ["1-first.toml", "helpers.py",
                                                      "pack.toml"]
    pack_toml = (made / "pack.toml").read_text()
    assert 'name = "my-pack"' in pack_toml and "[concepts]" in pack_toml
    assert "[misconceptions." in pack_toml
    assert sum(line.lstrip().startswith("#") for line in pack_toml.splitlines()) >= 5
    checked = run("pack", "check", made)
    assert checked.exit_code == 0, checked.output
    pack, problems = load_pack(made)
    assert pack is not None and not problems
    (exercise,) = pack.exercises
    (prediction,) = exercise.predictions
    assert prediction.by_hand and prediction.hints and prediction.misconceptions
    own = {name for name, _, _ in pack.misconceptions}
    assert any(m.name in own for m in prediction.misconceptions)
    assert prediction.concept in dict(pack.concepts)


@pytest.mark.parametrize("kind", ["directory", "file", "link"])
def test_pack_new_refuses_an_existing_path_and_writes_nothing(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "taken"
    if kind == "directory":
        target.mkdir()
        (target / "mine.txt").write_text("mine")
    elif kind == "file":
        target.write_text("mine")
    else:
        target.symlink_to(tmp_path / "elsewhere")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = run("pack", "new", "taken", "--dir", tmp_path)
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "elsewhere").exists()


def test_pack_new_refuses_a_bad_name(tmp_path: Path) -> None:
    result = run("pack", "new", "My Pack", "--dir", tmp_path)
    assert result.exit_code == 2 and "not a pack name" in result.stderr
    assert list(tmp_path.iterdir()) == []


# pack import -------------------------------------------------------------------------------


def seed_exercises() -> list[list[str]]:
    """The seed notebook's code cells, per exercise heading, read here with nbformat."""
    import re

    notebook = nbformat.read(SEED, as_version=4)
    exercises: list[list[str]] = []
    inside = False
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            if re.search(r"^## Exercise \d+", cell.source, re.M):
                exercises.append([])
                inside = True
            elif re.search(r"^#{1,2} ", cell.source, re.M):
                inside = False
        elif cell.cell_type == "code" and inside:
            exercises[-1].append(cell.source)
    return exercises


def statements(code: str) -> list[str]:
    """A cell's top-level statements, but its print calls (the reveal shows the values)."""
    import ast

    tree = ast.parse(code)
    return [ast.get_source_segment(code, node) or "" for node in tree.body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                    and getattr(node.value.func, "id", "") == "print")]


def test_pack_import_drafts_the_seed_notebook_with_its_code(tmp_path: Path) -> None:
    result = run("pack", "import", SEED, "--name", "seed", "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    pack, problems = load_pack(tmp_path / "seed")
    assert pack is not None
    cells = seed_exercises()
    assert len(cells) == len(pack.exercises) == 5
    for exercise, sources in zip(pack.exercises, cells, strict=True):
        assert len(exercise.steps) == len(sources)
        for step, source in zip(exercise.steps, sources, strict=True):
            for statement in statements(source):
                assert statement in step.code, (exercise.title, statement)
    actuals = [[p.actual for p in e.predictions] for e in pack.exercises]
    assert "x.grad" in actuals[0]
    assert {"x.grad", "w1.grad", "w2.grad", "b.grad"} <= set(actuals[1])
    assert actuals[2].count("x.grad") == 3  # one per cell of the accumulation trap
    assert "a.grad" in actuals[4]
    assert [e.title for e in pack.exercises][0] == "Polynomial Gradient"


def test_pack_check_on_the_draft_lists_exactly_the_todos(tmp_path: Path) -> None:
    assert run("pack", "import", SEED, "--name", "seed", "--dir", tmp_path).exit_code == 0
    pack, problems = load_pack(tmp_path / "seed")
    assert pack is not None and problems
    predictions = sum(len(e.predictions) for e in pack.exercises)
    kinds = {"no 'by_hand'": 0, "'TODO_hints'": 0, "'TODO-name-a-misconception'": 0,
             "no 'setup'": 0}
    for problem in problems:
        matched = [kind for kind in kinds if kind in problem.message]
        assert len(matched) == 1, problem
        kinds[matched[0]] += 1
    assert kinds["no 'by_hand'"] == kinds["'TODO_hints'"] == predictions
    assert kinds["'TODO-name-a-misconception'"] == predictions
    checked = run("pack", "check", tmp_path / "seed")
    assert checked.exit_code == 1
    assert checked.stdout.count("TODO") >= 2 * predictions


def test_pack_import_ignores_the_notebooks_outputs(tmp_path: Path) -> None:
    notebook = new_notebook(cells=[
        new_markdown_cell("# Tiny\n\n## Exercise 1: Square (Guided)\n\nA square.\n\n"
                          "Predict `x.grad`."),
        new_code_cell("x = torch.tensor(7.0, requires_grad=True)\ny = x ** 2\ny.backward()\n"
                      "print(x.grad)"),
    ])
    notebook.cells[1].outputs = [new_output("stream", name="stdout", text="SECRET-ANSWER-14\n")]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)
    result = run("pack", "import", path, "--dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    written = "".join(p.read_text() for p in (tmp_path / "out" / "tiny").iterdir())
    assert "SECRET-ANSWER-14" not in written
    pack, _ = load_pack(tmp_path / "out" / "tiny")
    assert pack is not None
    (exercise,) = pack.exercises
    assert exercise.level == "Guided" and exercise.title == "Square"
    assert [p.actual for p in exercise.predictions] == ["x.grad"]
    assert "print" not in exercise.steps[0].code


def test_pack_import_of_a_notebook_without_exercises_is_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "plain.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# Notes\n\n## Setup"),
                                       new_code_cell("import torch")]), path)
    result = run("pack", "import", path, "--dir", tmp_path / "out")
    assert result.exit_code == 1
    assert "no exercise headings" in result.stderr and "## Exercise N" in result.stderr
    assert not (tmp_path / "out" / "plain").exists()


@pytest.mark.parametrize("content", ["not json", '{"cells": "no"}', "[]"])
def test_pack_import_of_something_not_a_notebook_is_one_line_exit_1(tmp_path: Path,
                                                                     content: str) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text(content)
    result = run("pack", "import", path, "--dir", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out" / "broken").exists()


def test_pack_import_refuses_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "seed").mkdir()
    result = run("pack", "import", SEED, "--name", "seed", "--dir", tmp_path)
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert list((tmp_path / "seed").iterdir()) == []


def test_pack_import_writes_any_text_as_valid_toml(tmp_path: Path) -> None:
    """Notebook text is untrusted: quotes, triple quotes and backslashes reach the draft
    exactly, as TOML strings, never as TOML syntax; control characters, which no pack may
    hold, are left out."""
    setup = "Tricky ''' and \"\"\" and \\n and \x1b[31m red and a last quote'"
    code = "s = '''\nx'''\nt = 'a\\\\b'\nx = torch.tensor(2.0, requires_grad=True)\n" \
           "y = x * 3\ny.backward()\nprint(x.grad)"
    path = tmp_path / "tricky.ipynb"
    nbformat.write(new_notebook(cells=[
        new_markdown_cell("## Exercise 1: Quotes ''' here\n\nIntro.\n\n" + setup),
        new_code_cell(code)]), path)
    result = run("pack", "import", path, "--dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    pack, problems = load_pack(tmp_path / "out" / "tricky")
    assert pack is not None
    assert not [p for p in problems if "TOML" in p.message or "parse" in p.message]
    (exercise,) = pack.exercises
    assert exercise.title == "Quotes ''' here"
    assert exercise.steps[0].setup == setup.replace("\x1b", "")
    assert not [p for p in problems if "control character" in p.message]
    assert exercise.steps[0].code == code.rsplit("\n", 1)[0] + "\n"
