"""A pack's code is bounded: hostile packs against `pack check`, `pack add`, a run and practice.

Each fixture is a copy of examples/packs/two-paths with one hostile change, built in
tmp_path. What must hold: a located one-line problem or message, exit 1 (never 0 silently,
never the code's own status), no hang, nothing the code started left running, the
learner's typed answers kept, and one pack's fault costing only that pack.

Processes are waited for by their events (a pid written to a file, a child's end), never
by fixed sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autograd_tutor.app.practice import PracticeSources, aimed_problems
from autograd_tutor.cli import app
from autograd_tutor.content import packs
from autograd_tutor.content.check import check_pack
from autograd_tutor.content.packs import load_pack
from autograd_tutor.engine import sandbox
from autograd_tutor.engine.model import Attempt
from autograd_tutor.engine.runner import (
    LessonError,
    PackCodeError,
    Run,
    error_matches,
    load_helpers,
)
from autograd_tutor.engine.store import Store

runner = CliRunner()
EXAMPLE = Path(__file__).parent.parent / "examples" / "packs" / "two-paths"
FIRST = "1-used-twice.toml"
STEP_END = "y.backward()\n'''"  # the end of the first step's code in FIRST
BACKTRACKS = r"(\w|\w\w|\s|\S)*Z|backward through the graph a second time"
NOTICE = "runs its own Python code"


def hostile(tmp_path: Path, name: str, code: str = "", helpers: str = "",
            rename: bool = False) -> Path:
    """A copy of two-paths whose first step ends with `code` and whose helpers.py ends
    with `helpers`; with `rename`, named `name` with concept names of its own (so it can
    be installed beside another copy)."""
    root = tmp_path / "path" / name
    shutil.copytree(EXAMPLE, root)
    if code:
        text = (root / FIRST).read_text(encoding="utf-8")
        assert STEP_END in text
        (root / FIRST).write_text(text.replace(STEP_END, f"y.backward()\n{code}\n'''", 1),
                                  encoding="utf-8")
    if helpers:
        with (root / "helpers.py").open("a", encoding="utf-8") as handle:
            handle.write("\n" + helpers + "\n")
    if rename:
        for path in root.glob("*.toml"):
            text = path.read_text(encoding="utf-8").replace("shared-use", f"{name}-use")
            path.write_text(text.replace('name = "two-paths"', f'name = "{name}"'),
                            encoding="utf-8")
    return root


def alive(pid: int) -> bool:
    """A running process (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone(pid: int, within: float = 5.0) -> bool:
    """Whether `pid` ends within `within` s (a SIGKILL takes a moment to land)."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


SLEEPER = ("import os, subprocess\np = subprocess.Popen(['sleep', '300'])\n"
           "open(os.environ['SLEEPER_PID_FILE'], 'w').write(str(p.pid))")


@pytest.fixture
def pid_file(tmp_path, monkeypatch):
    path = tmp_path / "sleeper.pid"
    monkeypatch.setenv("SLEEPER_PID_FILE", str(path))
    yield path
    if path.exists() and path.read_text() and alive(pid := int(path.read_text())):
        os.kill(pid, signal.SIGKILL)  # only after a failure: leave no sleeper behind


def check(root: Path, *extra: str) -> object:
    return runner.invoke(app, ["pack", "check", str(root), "--yes", *extra])


# Item 4: a pack's code is bounded in time and in what it starts ------------------------


def test_an_endless_step_is_a_located_problem_not_a_hang(tmp_path):
    root = hostile(tmp_path, "loop", code="while True:\n    pass")
    started = time.monotonic()
    result = check(root, "--timeout", "1")
    assert result.exit_code == 1, result.output
    assert f"{FIRST}: step 1: the code of step 'x on two paths' ran for more than 1 s" \
        in result.output
    assert time.monotonic() - started < sandbox.STARTUP_LIMIT


def test_an_endless_step_in_a_run_ends_in_a_lesson_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "STEP_SECONDS", 0.5)
    pack, problems = load_pack(hostile(tmp_path, "loop", code="while True:\n    try:\n"
                                       "        pass\n    except BaseException:\n"
                                       "        pass"))
    assert pack is not None and not problems
    exercise = pack.exercise(1)
    with pytest.raises(PackCodeError, match="ran for more than 0.5 s"):
        Run(exercise).execute(exercise.steps[0])


def test_a_process_a_step_starts_is_killed_after_pack_check(tmp_path, pid_file):
    result = check(hostile(tmp_path, "sleeper", code=SLEEPER))
    assert result.exit_code == 0, result.output
    assert gone(int(pid_file.read_text()))


def test_a_process_a_step_starts_is_killed_when_the_step_ends_in_a_run(tmp_path, pid_file):
    pack, _ = load_pack(hostile(tmp_path, "sleeper", code=SLEEPER))
    assert pack is not None
    exercise = pack.exercise(1)
    Run(exercise).execute(exercise.steps[0])
    assert gone(int(pid_file.read_text()), within=0.5)  # killed as the step ended


def test_a_backtracking_error_match_is_bounded(tmp_path):
    root = hostile(tmp_path, "regex")
    second = root / "2-backward-twice.toml"
    text = second.read_text(encoding="utf-8")
    second.write_text(text.replace('error_match = "backward through the graph a second time"',
                                   f"error_match = {json.dumps(BACKTRACKS)}"), encoding="utf-8")
    import torch

    x = torch.tensor(2.0, requires_grad=True)
    y = x**3
    y.backward()
    with pytest.raises(RuntimeError) as raised:
        y.backward()
    started = time.monotonic()
    with pytest.raises(LessonError, match="took more than"):
        error_matches(BACKTRACKS, str(raised.value))
    assert time.monotonic() - started < 10 * 0.5 + 5
    assert error_matches("a second time", str(raised.value))
    result = check(root)
    assert result.exit_code == 1
    assert "2-backward-twice.toml: step 1: prediction y.backward@2: error_match" in result.output


# Item 5: code that exits is a lesson error, exit 1, nothing lost -----------------------


@pytest.mark.parametrize(("code", "said"), [
    ("import sys; sys.exit(0)", "tried to end the program (SystemExit 0)"),
    ("import os; os._exit(0)", "called os._exit(0)"),
    ("raise SystemExit(7)", "tried to end the program (SystemExit 7)"),
], ids=["sys.exit", "os._exit", "SystemExit-7"])
def test_pack_check_of_a_step_that_exits_fails_with_a_located_line(tmp_path, code, said):
    result = runner.invoke(app, ["pack", "check", str(hostile(tmp_path, "exits", code=code)),
                                 "--yes", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout.splitlines()[0])
    assert report["ok"] is False
    (problem,) = report["problems"]
    assert (problem["file"], problem["step"]) == (FIRST, 1)
    assert said in problem["message"]


def test_pack_add_of_a_step_that_exits_adds_nothing(tmp_path, tutor_env):
    root = hostile(tmp_path, "exits", code="import os; os._exit(0)")
    result = runner.invoke(app, ["pack", "add", str(root), "--yes"])
    assert result.exit_code == 1
    assert "called os._exit(0)" in result.output and "was not added" in result.output
    assert not (tutor_env / "packs" / "two-paths").exists()


def test_code_that_kills_the_check_process_is_reported(tmp_path):
    # Past the sandbox's own guard (a signal to itself): the child ends without a result.
    root = hostile(tmp_path, "killed", code="import os, signal\n"
                   "os.kill(os.getpid(), signal.SIGKILL)")
    result = check(root)
    assert result.exit_code == 1
    assert "ended the check's Python process before it finished" in result.output
    assert "SIGKILL" in result.output


@pytest.mark.parametrize("code", ["import sys; sys.exit(0)", "import os; os._exit(0)"],
                         ids=["sys.exit", "os._exit"])
def test_a_run_whose_step_exits_is_broken_and_keeps_the_answers(tmp_path, monkeypatch,
                                                               tutor_env, code):
    root = hostile(tmp_path, "sx", code=code, rename=True)
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(root.parent))
    packs.forget()
    result = runner.invoke(app, ["exercise", "sx/1", "-a", "x.grad=11", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["error"]["kind"] == "lesson"
    assert report["error"]["message"].startswith("exercise sx/1 is broken: ")
    assert "error: exercise sx/1 is broken" in result.stderr
    kept = Store(tutor_env, warn=print).load().attempts
    assert [(a.pack, a.id, a.prediction, a.judged) for a in kept] == [("sx", "x.grad", 11.0,
                                                                        False)]


def test_helpers_that_exit_leave_built_in_practice_working(tmp_path, monkeypatch):
    root = hostile(tmp_path, "brk", helpers="import sys; sys.exit(0)", rename=True)
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(root.parent))
    packs.forget()
    result = runner.invoke(app, ["practice", "-c", "polynomial", "--json", "-n", "1",
                                 "--reveal", "--seed", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [item["concept"] for item in report["items"]] == ["polynomial"]
    assert "pack 'brk' is left out of practice" in result.stderr
    assert "helpers.py tried to end the program" in result.stderr


# Item 6: a pack runs code with the user's permissions, and says so ---------------------


def test_pack_check_and_add_say_a_pack_runs_code(tmp_path):
    root = hostile(tmp_path, "plain")
    told = runner.invoke(app, ["pack", "check", str(root)])  # not a terminal: said, then run
    assert told.exit_code == 0, told.output
    assert told.stderr.count(NOTICE) == 1 and "ok" in told.stdout
    assert NOTICE not in runner.invoke(app, ["pack", "check", str(root), "--yes"]).output
    builtin = runner.invoke(app, ["pack", "check", str(packs.BUILTIN_DIR / "errors")])
    assert NOTICE not in builtin.output
    added = runner.invoke(app, ["pack", "add", str(root)])
    assert added.exit_code == 0 and added.stderr.count(NOTICE) == 1
    listed = runner.invoke(app, ["pack", "list"])
    assert NOTICE in " ".join(listed.output.split())


# Item 8: one pack's broken code costs only that pack -----------------------------------


def test_a_broken_helpers_costs_only_its_own_pack(tmp_path, monkeypatch):
    root = hostile(tmp_path, "brk", helpers="raise ValueError('broken on purpose')",
                   rename=True)
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(root.parent))
    packs.forget()
    mixed = runner.invoke(app, ["practice", "--json", "-n", "6", "--reveal", "--seed", "1"])
    assert mixed.exit_code == 0, mixed.output
    assert mixed.stderr.count("pack 'brk' is left out of practice") == 1
    assert "ValueError: broken on purpose" in mixed.stderr
    # The retry offered after a miss in basics 1 draws from the packs that work.
    left_out: list[str] = []
    draw = aimed_problems(left_out.append, Path(os.environ["AUTOGRAD_TUTOR_HOME"]))
    missed = Attempt(id="x.grad", prediction=31.0, actual=34.0, by_hand=34.0, correct=False,
                     skipped=False,
                     concept="polynomial", misconception="value-not-gradient")
    problem = draw(missed, (), ())
    assert problem is not None and problem.steps
    assert [line for line in left_out if "'brk'" in line] != []


def test_a_template_that_loops_is_left_out_of_practice(tmp_path, monkeypatch):
    root = hostile(tmp_path, "slow", rename=True)
    text = (root / "pack.toml").read_text(encoding="utf-8")
    (root / "pack.toml").write_text(text.replace("y.backward()\n'''",
                                                 "y.backward()\nwhile True: pass\n'''"),
                                    encoding="utf-8")
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(root.parent))
    monkeypatch.setattr(sandbox, "STEP_SECONDS", 0.5)
    packs.forget()
    found = packs.installed(Path(os.environ["AUTOGRAD_TUTOR_HOME"]))
    assert "slow" in found.packs
    sources = PracticeSources(print, found)
    from autograd_tutor.engine import practice

    problems = sources.draw(lambda templates, helpers: practice.generate(
        "slow-use", 1, 0, templates, helpers) if any(t.pack == "slow" for t in templates)
        else practice.generate("polynomial", 1, 0, templates, helpers))
    assert [s.title for s in problems.steps] == ["Problem 1: polynomial"]
    assert not any(t.pack == "slow" for t in sources.templates)


def template_ending_with(tmp_path: Path, code: str) -> Path:
    """A copy of two-paths whose practice template's code ends with `code`."""
    root = hostile(tmp_path, "template")
    text = (root / "pack.toml").read_text(encoding="utf-8")
    assert "y.backward()\n'''" in text
    (root / "pack.toml").write_text(text.replace("y.backward()\n'''",
                                                 f"y.backward()\n{code}\n'''", 1),
                                    encoding="utf-8")
    return root


@pytest.mark.parametrize(("code", "said"), [
    ("while True:\n    try:\n        pass\n    except BaseException:\n        pass",
     "ran for more than 0.5 s"),
    ("import sys; sys.exit(3)", "tried to end the program (SystemExit 3)"),
    ("import os; os._exit(0)", "called os._exit(0)"),
], ids=["loop", "sys.exit", "os._exit"])
def test_a_template_that_escapes_is_one_located_problem_of_pack_check(tmp_path, monkeypatch,
                                                                      code, said):
    monkeypatch.setattr(sandbox, "STEP_SECONDS", 0.5)
    result = check_pack(template_ending_with(tmp_path, code))
    assert [(p.file, p.step, p.prediction) for p in result.problems] == [("pack.toml", 1, None)]
    message = result.problems[0].message
    assert message.startswith("practice template for 'shared-use': ") and said in message


def test_a_process_a_template_starts_is_killed_when_its_draw_ends(tmp_path, pid_file):
    from autograd_tutor.engine import practice

    pack, problems = load_pack(template_ending_with(tmp_path, SLEEPER))
    assert pack is not None and not problems
    step = practice.fill_step(pack.practice[0], {"a": "2", "k": "3"}, 1)
    assert practice.disagreement(step, load_helpers(pack)) is None
    assert gone(int(pid_file.read_text()), within=0.5)  # killed as the draw ended


# The child process itself ---------------------------------------------------------------


def test_a_child_that_exits_without_a_result_is_told_apart():
    outcome = sandbox.run_function("os:_exit", [3], limit=30)
    assert not outcome.returned and outcome.problem is None and not outcome.killed
    assert outcome.returncode == 3 and outcome.exit_text() == "exited with status 3"
    done = sandbox.run_function("math:hypot", [3, 4], limit=30)
    assert done.returned and done.value == 5.0
    failed = sandbox.run_function("math:sqrt", [-1], limit=30)
    assert failed.problem == "child_error" and "ValueError" in failed.detail
