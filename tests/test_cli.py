"""Every command and option of the CLI, through Typer's CliRunner, including invalid input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import reference
from msgspec.structs import asdict
from reference import typed
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content.packs import builtin, installed
from autograd_tutor.engine.store import Store
from autograd_tutor.views.session import prompt_text

BASICS = builtin()

runner = CliRunner()
TITLES = [exercise.title for exercise in BASICS.exercises]
ESCAPE = "\x1b["


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), input=input, env=env)


def lines_for(number: int, **override: str) -> str:
    """The right answers of exercise `number`, one line each, as stdin."""
    values = {**{k: typed(v) for k, v in reference.answers(number).items()}, **override}
    return "".join(value + "\n" for value in values.values())


def revealed(number: int) -> list[str]:
    """The IDs --reveal shows: no "which error?", since it predicts no error."""
    return [key for key in reference.answers(number) if not key.endswith(":which")]


def flat(text: str) -> str:
    """Text with box drawing and line breaks collapsed, for messages rich may wrap."""
    return " ".join(re.sub(r"[│╭╮╰╯─|+]", " ", text).split())


def progress(home: Path) -> dict:
    """The stored history as rows, read back through the store (typed, then as dicts)."""
    history = Store(home, warn=print).load()
    return {"attempts": [a.to_row() for a in history.attempts],
            "completed": [asdict(c) for c in history.completed],
            "checks": [asdict(c) for c in history.checks]}


def table_row(output: str, title: str) -> str:
    return next(line for line in output.splitlines() if title in line)


def answer_args(number: int) -> list[str]:
    args: list[str] = []
    for key, value in reference.answers(number).items():
        args += ["--answer", f"{key}={typed(value)}"]
    return args


def finish(number: int, tmp_path: Path) -> None:
    result = run("exercise", str(number), "--plots", str(tmp_path / "plots"),
                 *answer_args(number))
    assert result.exit_code == 0, result.output


def finish_all(tmp_path: Path) -> None:
    for number in range(1, len(TITLES) + 1):
        finish(number, tmp_path)


def prompt_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Predict ")]


# Home screen and list ------------------------------------------------------------------


def test_no_arguments_shows_welcome_table_and_next_step() -> None:
    result = run()
    assert result.exit_code == 0, result.output
    assert "Welcome" in result.output
    for column in ("#", "Title", "Level", "Status", "Score"):
        assert column in result.output
    for title in TITLES:
        assert title in result.output
    assert "autograd-tutor exercise 1" in result.output
    assert "Traceback" not in result.output


def test_home_screen_points_at_the_first_unfinished_exercise() -> None:
    assert run("exercise", "1", "--answer", f"x.grad={typed(reference.ex1()['x.grad'])}"
               ).exit_code == 0
    assert "autograd-tutor exercise 2" in run().output


def test_next_after_an_exercise_is_the_next_one_of_its_pack() -> None:
    errors = installed(Path(os.environ["AUTOGRAD_TUTOR_HOME"])).packs["errors"]
    first, second = errors.exercises[:2]
    result = run("exercise", f"errors/{first.number}", "--reveal")
    assert result.exit_code == 0, result.output
    assert f"Next: autograd-tutor exercise errors/{second.number}" in flat(result.output)
    result = run("exercise", "3", *answer_args(3))  # basics 1 and 2 are not done yet
    assert "Next: autograd-tutor exercise 4" in flat(result.output)


def test_home_screen_after_everything_shows_takeaways(tmp_path: Path) -> None:
    finish_all(tmp_path)
    result = run()
    assert result.exit_code == 0
    assert "Key takeaways" in result.output


def test_list_shows_every_exercise_with_level_status_and_score() -> None:
    result = run("list")
    assert result.exit_code == 0, result.output
    for column in ("#", "Title", "Level", "Status", "Score"):
        assert column in result.output
    levels = {exercise.title: exercise.level for exercise in BASICS.exercises}
    for number, title in enumerate(TITLES, start=1):
        row = table_row(result.output, title)
        assert str(number) in row and levels[title] in row and "not started" in row
    assert set(levels.values()) <= {"Guided", "Supported", "Stretch"}


def test_list_follows_progress(tutor_env: Path) -> None:
    right = typed(reference.ex1()["x.grad"])
    assert run("exercise", "1", "--answer", f"x.grad={right}").exit_code == 0
    ex3 = reference.ex3()
    stopped = run("exercise", "3", input=f"{typed(ex3['x.grad@1'])}\n{typed(-1.0)}\n")
    assert stopped.exit_code == 1

    output = run("list").output
    row1 = table_row(output, TITLES[0])
    assert "done" in row1 and "1/1" in row1
    row3 = table_row(output, TITLES[2])
    assert "in progress" in row3 and "1/2" in row3
    assert "not started" in table_row(output, TITLES[1])

    # A worse later run never replaces the best finished score; it is shown beside it.
    assert run("exercise", "1", "--answer", "x.grad=0").exit_code == 0
    row1 = table_row(run("list").output, TITLES[0])
    assert "1/1" in row1 and "latest 0/1" in row1


def test_list_does_not_show_an_abandoned_run_as_the_latest() -> None:
    ex3 = reference.ex3()
    wrong = typed(ex3["x.grad@1"] + 1)
    assert run("exercise", "3", input=f"{wrong}\n{wrong}\n{wrong}\n").exit_code == 0
    assert run("exercise", "3", input=f"{typed(ex3['x.grad@1'])}\nq\n").exit_code == 1
    row = table_row(run("list").output, TITLES[2])
    assert "done" in row and "0/3" in row and "latest" not in row


def test_progress_lists_exercises_in_course_order() -> None:
    """Packs in course order (basics, then errors), each pack's exercises by number."""
    for number in (10, 2, 1):
        assert run("exercise", f"errors/{number}", "--reveal").exit_code == 0
    assert run("exercise", "3", *answer_args(3)).exit_code == 0
    lines = run("progress").output.split("Progress by concept")[0].splitlines()
    names = [name for line in lines for name in re.findall(r"(exercise \d+|errors/\d+)", line)]
    errors = sorted((n for n in names if n.startswith("errors/")),
                    key=lambda name: int(name.split("/")[1]))
    assert names == ["exercise 3", *errors] and len(errors) == 3


def test_piped_output_has_no_trailing_spaces() -> None:
    """rich pads lines to the console's width; in a pipe that padding is noise."""
    outputs = [run("exercise", "1", *answer_args(1)), run("list"), run("progress"),
               run("graph", "x*x", "--at", "x=2", "--view", "table")]
    for result in outputs:
        assert result.exit_code == 0, result.output
        padded = [line for line in result.output.splitlines() if line != line.rstrip()]
        assert padded == []


def test_list_with_a_damaged_old_progress_file_warns_and_leaves_it(tutor_env: Path) -> None:
    tutor_env.mkdir(parents=True)
    (tutor_env / "progress.json").write_text("{oops", encoding="utf-8")
    result = run("list")
    assert result.exit_code == 0
    assert "warning" in result.stderr and "left untouched" in result.stderr
    assert "Traceback" not in result.output
    assert (tutor_env / "progress.json").read_text(encoding="utf-8") == "{oops"


def test_list_with_a_damaged_row_sets_it_aside_and_keeps_the_rest(tutor_env: Path) -> None:
    finish(1, tutor_env.parent)
    log = tutor_env / "progress.jsonl"
    log.write_text(log.read_text(encoding="utf-8") + "{oops\n", encoding="utf-8")
    result = run("list")
    assert result.exit_code == 0 and "damaged" in result.stderr
    assert "done" in table_row(result.output, TITLES[0])
    (aside,) = tutor_env.glob("progress.jsonl.damaged-*")
    assert aside.read_text(encoding="utf-8") == "{oops\n"


def test_home_that_is_a_file_warns_and_fails_when_it_cannot_save(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    env = {"AUTOGRAD_TUTOR_HOME": str(blocker)}
    listing = run("list", env=env)
    assert listing.exit_code == 0 and "warning" in listing.stderr
    right = typed(reference.ex1()["x.grad"])
    result = run("exercise", "1", "--answer", f"x.grad={right}", "--plots",
                 str(tmp_path / "plots"), env=env)
    # The run is shown in full, but a result that could not be saved is a failure.
    assert result.exit_code == 1, result.output
    assert "warning" in result.stderr and "Traceback" not in result.output
    assert "not saved" in result.stderr
    assert blocker.read_text(encoding="utf-8") == "not a directory"


# Running exercises from stdin ----------------------------------------------------------


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_exercise_driven_by_stdin_lines(number: int, tutor_env: Path, tmp_path: Path) -> None:
    count = len(reference.answers(number))
    result = run("exercise", str(number), "--plots", str(tmp_path / "plots"),
                 input=lines_for(number))
    assert result.exit_code == 0, result.output
    assert len(prompt_lines(result.output)) == count
    assert f"{count} of {count} predictions right" in flat(result.output)
    assert not re.search(r"\bwrong\s*│", result.output)  # no reveal row marked wrong
    assert "Traceback" not in result.output
    rows = progress(tutor_env)["attempts"]
    assert [row["id"] for row in rows] == list(reference.answers(number))
    assert all(row["correct"] for row in rows)
    assert [row["exercise"] for row in progress(tutor_env)["completed"]] == [number]


def test_prompts_name_the_quantity_and_say_predict() -> None:
    result = run("exercise", "2", input=lines_for(2))
    prompts = prompt_lines(result.output)
    # No error is predicted in exercise 2, so no "which error?" follows its outcome.
    asked = [p for p in BASICS.exercise(2).predictions if p.kind != "which"]
    assert len(prompts) == len(asked)
    for prompt, prediction in zip(prompts, asked, strict=True):
        assert prompt.startswith(prompt_text(prediction).rstrip())
        if prediction.kind == "value":
            assert prompt.startswith(f"Predict {prediction.label}")


def test_a_wrong_prediction_is_marked_and_explained() -> None:
    right = reference.ex1()["x.grad"]
    result = run("exercise", "1", input=f"{typed(right + 1)}\n")
    assert result.exit_code == 0
    assert re.search(r"\bwrong\s*│", result.output)
    assert "0 of 1 predictions right" in flat(result.output)


def test_exercise_5_accepts_none_and_explains_that_zero_is_not_none() -> None:
    answers = reference.ex5()
    result = run("exercise", "5", "--json", input=f"{typed(answers['a.grad'])}\nerror\n1\n0\n"
                 f"{typed(answers['a.grad@partial'])}\n")
    assert result.exit_code == 0
    detach = {s["id"]: s for s in json.loads(result.stdout)["steps"]}["a.grad@detach"]
    assert detach["prediction"] == 0.0 and detach["correct"] is False
    assert "None" in result.stderr and "0" in result.stderr
    result = run("exercise", "5", "--json", input=lines_for(5))
    detach = {s["id"]: s for s in json.loads(result.stdout)["steps"]}["a.grad@detach"]
    assert detach["prediction"] is None and detach["correct"] is True


# --reveal --------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [1, 2, 3, 5])
def test_reveal_asks_nothing_and_shows_every_answer(number: int, tutor_env: Path) -> None:
    result = run("exercise", str(number), "--reveal", input="")
    assert result.exit_code == 0, result.output
    assert prompt_lines(result.output) == []
    assert result.output.count("skipped") >= len(revealed(number))
    assert "no predictions scored" in result.output
    assert [row["skipped"] for row in progress(tutor_env)["attempts"]] == [True] * len(
        revealed(number))
    # A demonstration predicts nothing, so it does not finish the exercise.
    assert "done" not in table_row(run("list").output, TITLES[number - 1])


# --answer ------------------------------------------------------------------------------


def test_answer_is_repeatable_and_the_rest_is_prompted() -> None:
    ex2 = reference.ex2()
    ids = list(ex2)
    given = ids[:3]
    args = ["exercise", "2", "--json"]
    for key in given:
        args += ["--answer", f"{key}={typed(ex2[key])}"]
    args += ["-a", f"{ids[3]}={typed(ex2[ids[3]])}"]
    rest = "".join(typed(ex2[key]) + "\n" for key in ids[4:])
    result = run(*args, input=rest)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("(from --answer)") == 4
    prompted = [line for line in result.stderr.splitlines()
                if line.startswith("Predict ") and "(from --answer)" not in line]
    assert len(prompted) == len(ids) - 4
    report = json.loads(result.stdout)
    assert all(step["correct"] for step in report["steps"])


def test_answer_accepts_arithmetic() -> None:
    # The answer typed as arithmetic: the right value, split as a sum of two halves.
    half = reference.ex1()["x.grad"] / 2
    result = run("exercise", "1", "--json", "--answer", f"x.grad={half!r} + {half!r}")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["steps"][0]["correct"] is True


def test_unknown_answer_id_is_a_usage_error_listing_valid_ids() -> None:
    result = run("exercise", "2", "--answer", "y.grad=1")
    assert result.exit_code == 2
    message = flat(result.output)
    assert "y.grad" in message
    for key in BASICS.exercise(2).prediction_ids:
        assert key in message
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "pair",
    ["x.grad", "x.grad:34", "=34", "x.grad=", "x.grad=abc", "x.grad=__import__('os')",
     "x.grad=1/0", "x.grad=2**999"],
)
def test_malformed_or_invalid_answer_is_a_usage_error(pair: str) -> None:
    result = run("exercise", "1", "--answer", pair)
    assert result.exit_code == 2, result.output
    assert "--answer" in result.output
    assert "Traceback" not in result.output


def test_answer_given_twice_is_a_usage_error() -> None:
    result = run("exercise", "1", "--answer", "x.grad=1", "--answer", "x.grad=2")
    assert result.exit_code == 2
    assert "twice" in result.output


def test_choice_answer_must_be_one_of_the_choices() -> None:
    result = run("exercise", "4", "--answer", "closer@40=x")
    assert result.exit_code == 2
    assert "w, b" in flat(result.output)


# --json --------------------------------------------------------------------------------

STEP_FIELDS = {"id", "prediction", "actual", "by_hand", "correct", "skipped"}


def check_report(stdout: str, number: int) -> dict:
    report = json.loads(stdout)  # exactly one JSON object, nothing else on stdout
    assert isinstance(report, dict)
    assert report["exercise"] == number
    assert report["title"] == BASICS.exercise(number).title
    for step in report["steps"]:
        assert STEP_FIELDS <= set(step)
        assert isinstance(step["skipped"], bool)
        if step["skipped"]:
            assert step["correct"] is None and step["prediction"] is None
        else:
            assert isinstance(step["correct"], bool)
    return report


def test_json_with_answers() -> None:
    ex1 = reference.ex1()
    result = run("exercise", "1", "--json", "--answer", f"x.grad={typed(ex1['x.grad'])}")
    assert result.exit_code == 0
    report = check_report(result.stdout, 1)
    (step,) = report["steps"]
    assert step["id"] == "x.grad" and step["prediction"] == ex1["x.grad"]
    assert step["correct"] is True and step["skipped"] is False
    assert "Polynomial" in result.stderr  # the human text went to stderr


def test_json_with_stdin_lines_skip_and_none() -> None:
    ex5 = reference.ex5()
    result = run("exercise", "5", "--json",
                 input=f"skip\nerror\nskip\nNone\n{typed(ex5['a.grad@partial'] + 1)}\n")
    assert result.exit_code == 0, result.output
    report = check_report(result.stdout, 5)
    first, outcome, which, detach, partial = report["steps"]
    assert outcome["prediction"] == "error" and outcome["correct"] is True
    assert which["skipped"] is True
    assert first["skipped"] is True and first["correct"] is None
    assert first["actual"] == ex5["a.grad"]
    assert detach["prediction"] is None and detach["actual"] is None
    assert detach["correct"] is True
    assert partial["correct"] is False
    assert '"prediction": null' in result.stdout and '"correct": null' in result.stdout


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_json_with_reveal(number: int, tmp_path: Path) -> None:
    result = run("exercise", str(number), "--json", "--reveal", "--plots", str(tmp_path))
    assert result.exit_code == 0
    report = check_report(result.stdout, number)
    assert [s["id"] for s in report["steps"]] == revealed(number)
    assert all(s["skipped"] and s["correct"] is None for s in report["steps"])
    assert result.stdout.strip().count("\n") == 0


def test_json_when_input_ends_early_still_prints_one_object() -> None:
    ex3 = reference.ex3()
    result = run("exercise", "3", "--json", input=f"{typed(ex3['x.grad@1'])}\n")
    assert result.exit_code == 1
    report = check_report(result.stdout, 3)
    assert report["completed"] is False
    assert [s["id"] for s in report["steps"]] == ["x.grad@1"]


@pytest.mark.parametrize("args", [
    ["exercise", "99", "--json"],
    ["exercise", "1", "--json", "--answer", "x.grad=zz"],
    ["graph", "x+", "--json"],
    ["practice", "--concept", "nope", "--json"],
    ["exercise", "1", "--json", "--graph", "sideways"],
])
def test_json_usage_errors_still_print_one_json_object(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    report = json.loads(result.stdout)  # one object, nothing else on stdout
    assert report["error"]["kind"] == "usage"
    # The same words as the message on stderr.
    assert report["error"]["message"].split(":")[-1].strip()[:20] in flat(result.stderr)


def test_json_failures_without_an_object_of_their_own_print_the_error(tmp_path: Path) -> None:
    taken = tmp_path / "train_loop.py"
    taken.write_text("# mine\n", encoding="utf-8")
    result = run("exercise", "4", "--code", str(taken), "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "failed" and "already exists" in error["message"]
    # A command that printed its own object prints no second one when it then fails.
    stopped = run("graph", "x*x", "--at", "x=1", "--predict", "--json", input="q\n")
    assert stopped.exit_code == 1 and json.loads(stopped.stdout)["completed"] is False


def test_json_internal_errors_still_print_one_json_object(monkeypatch) -> None:
    import autograd_tutor.cli as cli

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "run_exercise", broken)
    result = run("exercise", "1", "--json")
    assert isinstance(result.exception, RuntimeError)  # main() then says so on stderr
    assert json.loads(result.stdout) == {
        "error": {"kind": "internal", "message": "internal error (RuntimeError: a bug)"}}


def test_practice_names_a_concept_without_practice_problems_as_such(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A concept progress can list, that no template covers: not "is not a concept"."""
    import shutil

    pack = tmp_path / "packs" / "two-paths"
    shutil.copytree(Path(__file__).parent.parent / "examples" / "packs" / "two-paths", pack)
    toml = pack / "pack.toml"
    toml.write_text(toml.read_text(encoding="utf-8").split("[[practice]]")[0],
                    encoding="utf-8")
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(tmp_path / "packs"))
    exercises = installed(Path(os.environ["AUTOGRAD_TUTOR_HOME"])).packs["two-paths"].exercises
    concept = exercises[0].concepts[0]
    taught = [f"two-paths/{e.number}" for e in exercises if concept in e.concepts]
    result = run("practice", "--concept", concept)
    assert result.exit_code == 2
    message = flat(result.stderr)
    assert f"'{concept}' has no practice problems yet" in message
    assert f"taught in exercise{'s' * (len(taught) > 1)} {', '.join(taught)}." in message
    assert "not a concept" not in message
    assert "'nope' is not a concept" in flat(run("practice", "--concept", "nope").stderr)


# --plots -------------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "minimum"), [(4, 2), (5, 1)])
def test_plots_are_saved_as_png_in_the_given_directory(number: int, minimum: int,
                                                       tmp_path: Path) -> None:
    target = tmp_path / "figures" / "here"
    result = run("exercise", str(number), "--reveal", "--plots", str(target))
    assert result.exit_code == 0, result.output
    pngs = sorted(target.glob("*.png"))
    assert len(pngs) >= minimum
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.name in flat(result.output).replace(" ", "")


def test_plots_default_to_the_progress_directory(tutor_env: Path) -> None:
    assert run("exercise", "5", "--reveal").exit_code == 0
    assert list((tutor_env / "plots").glob("*.png"))


def test_plots_in_an_unusable_directory_warn_and_carry_on(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    result = run("exercise", "5", "--reveal", "--plots", str(blocker))
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr
    assert "Traceback" not in result.output


# next ----------------------------------------------------------------------------------


def test_next_runs_the_first_exercise_not_done() -> None:
    result = run("next", input=lines_for(1))
    assert result.exit_code == 0, result.output
    assert "Exercise 1" in result.output
    result = run("next", "--json", input=lines_for(2))
    assert result.exit_code == 0
    assert check_report(result.stdout, 2)["completed"] is True


def test_next_skips_what_is_done_but_not_what_is_in_progress(tmp_path: Path) -> None:
    finish(1, tmp_path)
    finish(2, tmp_path)
    assert run("exercise", "3", input="skip\n").exit_code == 1
    result = run("next", "--reveal")
    assert result.exit_code == 0
    assert "Exercise 3" in result.output and "Exercise 4" not in result.output


def test_next_after_everything_prints_takeaways(tmp_path: Path, tutor_env: Path) -> None:
    finish_all(tmp_path)
    # Every other installed pack's exercises too, marked done directly in the store.
    store = Store(tutor_env, warn=print)
    for pack in installed(tutor_env).packs.values():
        for exercise in pack.exercises:
            if pack.name != "basics":
                assert store.complete(pack.name, exercise.number, "scripted")
    result = run("next")
    assert result.exit_code == 0
    assert "Key takeaways" in result.output
    assert prompt_lines(result.output) == []
    result = run("next", "--json")
    assert json.loads(result.stdout) == {"exercise": None, "done": True}


# Exercise numbers ----------------------------------------------------------------------


@pytest.mark.parametrize("number", ["0", "6", "abc", "1.5", "", " ", "99999999999999999999"])
def test_bad_exercise_number_is_a_usage_error_naming_1_to_5(number: str) -> None:
    result = run("exercise", number)
    assert result.exit_code == 2, result.output
    assert "1 to 5" in flat(result.output)
    assert "Traceback" not in result.output


def test_missing_or_negative_exercise_number_is_a_usage_error() -> None:
    assert run("exercise").exit_code == 2
    result = run("exercise", "-1")  # read as an option by the parser, still a usage error
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_unknown_command_and_option_are_usage_errors() -> None:
    assert run("exercize", "1").exit_code == 2
    assert run("exercise", "1", "--bogus").exit_code == 2


def test_graph_option() -> None:
    assert run("exercise", "1", "--reveal", "--graph", "none").exit_code == 0
    result = run("exercise", "1", "--reveal", "--graph", "bogus")
    assert result.exit_code == 2 and "tree" in result.output


# Input that ends, quits, asks for hints, skips, or is not a prediction -----------------


def test_input_ending_early_exits_1_with_one_line_and_keeps_answers(tutor_env: Path) -> None:
    ex3 = reference.ex3()
    env = {"COLUMNS": "80"}
    result = run("exercise", "3", input=f"{typed(ex3['x.grad@1'])}\n", env=env)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1 and error_lines[0].startswith("error:")
    assert "Traceback" not in result.output
    (row,) = progress(tutor_env)["attempts"]
    assert row["id"] == "x.grad@1" and row["prediction"] == ex3["x.grad@1"]
    assert row["correct"] is True
    assert progress(tutor_env)["completed"] == []


def test_input_ending_mid_step_keeps_the_answers_of_that_step(tutor_env: Path) -> None:
    ex2 = reference.ex2()
    first, second = list(ex2)[:2]  # the first two prompts
    result = run("exercise", "2", input=f"{typed(ex2[first])}\n{typed(ex2[second])}\n")
    assert result.exit_code == 1
    rows = progress(tutor_env)["attempts"]
    assert [(r["id"], r["correct"]) for r in rows] == [(first, True), (second, True)]
    # Nothing of the step's reveal was printed: the learner never saw the answers.
    assert "PyTorch" not in result.stdout.split(f"Predict {first}")[-1]


def test_no_input_at_all_exits_1() -> None:
    result = run("exercise", "1", input="")
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_question_mark_shows_a_hint() -> None:
    hints = BASICS.exercise(1).predictions[0].hints
    result = run("exercise", "1", "--json", input="?\n?\n" + lines_for(1))
    assert result.exit_code == 0
    assert "Hint 1/" in result.stderr and "Hint 2/" in result.stderr
    assert " ".join(hints[0].split()) in flat(result.stderr)
    step = json.loads(result.stdout)["steps"][0]
    assert step["hints_used"] == 2 and step["correct"] is True


def test_hints_run_out_politely() -> None:
    count = len(BASICS.exercise(1).predictions[0].hints)
    result = run("exercise", "1", input="?\n" * (count + 2) + lines_for(1))
    assert result.exit_code == 0
    assert "No more hints" in result.output


def test_skip_reveals_without_scoring(tutor_env: Path) -> None:
    result = run("exercise", "1", "--json", input="skip\n")
    assert result.exit_code == 0
    step = json.loads(result.stdout)["steps"][0]
    assert step["skipped"] is True and step["correct"] is None
    assert step["actual"] == reference.ex1()["x.grad"]
    assert progress(tutor_env)["attempts"][0]["skipped"] is True


@pytest.mark.parametrize("word", ["q", "Q", "quit"])
def test_q_quits_with_status_1_and_keeps_answers(word: str, tutor_env: Path) -> None:
    ex3 = reference.ex3()
    result = run("exercise", "3", input=f"{typed(ex3['x.grad@1'])}\n{word}\n")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "autograd-tutor exercise 3" in result.output
    assert [r["id"] for r in progress(tutor_env)["attempts"]] == ["x.grad@1"]


def test_q_mid_step_keeps_the_answers_of_that_step(tutor_env: Path) -> None:
    ex2 = reference.ex2()
    first = next(iter(ex2))
    result = run("exercise", "2", input=f"{typed(ex2[first])}\nq\n")
    assert result.exit_code == 1
    assert [r["id"] for r in progress(tutor_env)["attempts"]] == [first]


@pytest.mark.parametrize(
    "bad",
    ["abc", "__import__('os')", "x.grad", "1/0", "2**999", "34 35", "[1]", "lambda: 0",
     "print('hi')", "1" * 300, "1 +* 2 " * 20, "", "nan", "inf"],
)
def test_invalid_input_is_not_counted_and_asked_again(bad: str, tutor_env: Path) -> None:
    result = run("exercise", "1", "--json", input=f"{bad}\n" + lines_for(1),
                 env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    complaints = [i for i, line in enumerate(lines) if line.startswith("Not counted")]
    assert len(complaints) == 1
    # One line of complaint, then the very same prompt again.
    assert lines[complaints[0] + 1].startswith("Predict x.grad")
    assert sum(line.startswith("Predict x.grad") for line in lines) == 2
    assert "Traceback" not in result.output
    step = json.loads(result.stdout)["steps"][0]
    assert step["correct"] is True and step["prediction"] == reference.ex1()["x.grad"]
    rows = progress(tutor_env)["attempts"]
    assert len(rows) == 1 and rows[0]["typed"] != bad


def test_several_invalid_inputs_in_a_row() -> None:
    result = run("exercise", "1", input="abc\n\n__import__('os')\nfoo bar\n" + lines_for(1))
    assert result.exit_code == 0
    assert result.output.count("Not counted") == 4
    assert len(prompt_lines(result.output)) == 5


def test_choice_prompt_refuses_numbers(tmp_path: Path) -> None:
    answers = reference.ex4()
    given = []
    for key, value in answers.items():
        if key != "closer@40":
            given += ["--answer", f"{key}={typed(value)}"]
    result = run("exercise", "4", "--json", "--plots", str(tmp_path), *given,
                 input=f"3\n{answers['closer@40']}\n")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Not counted") == 1
    assert all(s["correct"] for s in json.loads(result.stdout)["steps"])


# No escape codes when not on a terminal ------------------------------------------------


@pytest.mark.parametrize("no_color", [None, "1"])
def test_no_escape_codes_when_not_a_terminal(no_color: str | None, tmp_path: Path) -> None:
    env = {"NO_COLOR": no_color} if no_color else {}
    results = [
        run(env=env),
        run("list", env=env),
        run("exercise", "1", input="abc\n?\n" + lines_for(1), env=env),
        run("exercise", "5", "--reveal", "--plots", str(tmp_path), env=env),
        run("exercise", "3", input="skip\n", env=env),
        run("exercise", "9", env=env),
    ]
    for result in results:
        assert ESCAPE not in result.stdout
        assert ESCAPE not in result.stderr


# Help and python -m ----------------------------------------------------------------------


def test_help_lists_commands_and_options() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("list", "exercise", "next"):
        assert command in result.output
    result = run("exercise", "--help")
    assert result.exit_code == 0
    for option in ("--reveal", "--answer", "--json", "--plots"):
        assert option in result.output


def test_python_dash_m_help_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "autograd_tutor", "--help"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "exercise" in result.stdout and "Usage" in result.stdout
    assert result.stderr == ""


# Shell completion ------------------------------------------------------------------------


def _complete(words: str, tutor_env: Path) -> list[str]:
    count = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {**os.environ, "_AUTOGRAD_TUTOR_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(count), "AUTOGRAD_TUTOR_HOME": str(tutor_env)}
    script = Path(sys.executable).parent / "autograd-tutor"  # completion keys on its name
    result = subprocess.run([str(script)], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_shell_completion_knows_commands_exercises_ids_views_and_concepts(tutor_env: Path
                                                                          ) -> None:
    assert "exercise" in _complete("autograd-tutor ex", tutor_env)
    assert _complete("autograd-tutor exercise ", tutor_env)[:5] == [
        str(e.number) for e in BASICS.exercises]
    assert "errors/1" in _complete("autograd-tutor exercise err", tutor_env)
    assert _complete("autograd-tutor exercise 5 --answer ", tutor_env) == [
        f"{pid}=" for pid in BASICS.exercise(5).prediction_ids]
    assert _complete("autograd-tutor exercise 1 --graph t", tutor_env) == ["tree", "table"]
    assert "accumulation" in _complete("autograd-tutor practice --concept a", tutor_env)
    shown = run("--show-completion", "bash")
    assert shown.exit_code == 0 and "_autograd_tutor_completion" in shown.output
