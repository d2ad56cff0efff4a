"""`check 4`: the scaffold, and each fixture in tests/fixtures/check4 gets the matching verdict.

Expected values are computed here, independently: the notebook's data is regenerated with
torch and the least-squares fit comes from numpy's lstsq, not from the checker (which uses
numpy's polyfit).
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import runpy
import signal
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

import forked_check
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import autograd_tutor
from autograd_tutor.cli import app
from autograd_tutor.content.packs import builtin
from autograd_tutor.engine import checker
from autograd_tutor.engine.checker import (
    CheckReport,
    ScaffoldExistsError,
    write_scaffold,
)

FIXTURES = Path(__file__).parent / "fixtures" / "check4"
CODING = builtin().exercise(4).coding
SCAFFOLD = CODING.scaffold
# The basics pack's module that judges a training loop (the least-squares target and the
# loop's mistakes), as the check loads it.
training = checker.load_module(CODING.module)
TOLERANCE = 0.05
ANSI = re.compile(r"\x1b\[")

SOLUTION = {
    'todo("Step 1: the forward pass")  # TODO: write this': "w * X + b",
    'todo("Step 2: the loss")  # TODO: write this': "((y_true - y_pred) ** 2).mean()",
    "    # TODO: write this (one line)\n": "    loss.backward()\n",
    "    # TODO: write this (a `with torch.no_grad():` block that updates w and b)\n": (
        "    with torch.no_grad():\n"
        "        w -= learning_rate * w.grad\n"
        "        b -= learning_rate * b.grad\n"
    ),
    "    # TODO: write this (reset w.grad and b.grad)\n": (
        "    w.grad.zero_()\n    b.grad.zero_()\n"
    ),
}


def scaffold_text() -> str:
    return Path(SCAFFOLD).read_text(encoding="utf-8")


def notebook_data() -> tuple[np.ndarray, np.ndarray]:
    torch.manual_seed(42)
    X = torch.linspace(-3, 3, 20)
    y_true = 2 * X + 1 + torch.randn(20) * 0.3
    return X.double().numpy(), y_true.double().numpy()


def lesson_data() -> tuple[list[float], list[float]]:
    """The lesson's (X, y_true), as the lists check_file takes."""
    torch.manual_seed(42)
    X = torch.linspace(-3, 3, 20)
    y_true = 2 * X + 1 + torch.randn(20) * 0.3
    return X.tolist(), y_true.tolist()


def reference(data: tuple[list[float], list[float]]) -> dict:
    """A solution's run that left this X and y_true, as check_file takes it."""
    return {"values": {"X": {"numbers": data[0]}, "y_true": {"numbers": data[1]}}}


def check_file(path: Path, timeout: float = checker.DEFAULT_TIMEOUT) -> CheckReport:
    return checker.check_file(path, CODING, timeout=timeout, name="4",
                              reference=reference(lesson_data()))


def format_report(report: CheckReport, name: str = "4") -> list[str]:
    return checker.format_report(report, name)


def lstsq_fit() -> tuple[float, float]:
    x, y = notebook_data()
    design = np.column_stack([x, np.ones_like(x)])
    (w, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(w), float(b)


@cache
def fixture_report(name: str) -> CheckReport:
    """Each fixture runs once per session, through the real child: every run starts a Python
    process with torch."""
    return check_file(FIXTURES / name)


@cache
def forked_report(name: str) -> CheckReport:
    """fixture_report, with the child forked from the forkserver (see forked_check): for
    tests that only judge what the file computed."""
    with forked_check.forked_checks():
        return check_file(FIXTURES / name)


@pytest.fixture(scope="session", autouse=True)
def forkserver_stopped():
    """The forkserver (started by the first forked check, if any) ends with the session."""
    yield
    forked_check.stop_forkserver()


@pytest.fixture
def forked(monkeypatch):
    """check_file forks its child from the forkserver (see forked_check): for tests that
    only judge what the file computed; process behaviour is tested through the real child."""
    monkeypatch.setattr(checker, "_run_child", forked_check.run_child)


# --- the scaffold -------------------------------------------------------------------------


def test_the_scaffold_is_the_basics_packs_train_loop():
    packaged = Path(autograd_tutor.__file__).parent / "content" / "packs" / "basics"
    assert Path(SCAFFOLD).resolve() == (packaged / "train_loop.py").resolve()


def test_default_scaffold_path_is_train_loop_in_the_current_folder():
    path = Path(CODING.default_file)
    assert path.name == "train_loop.py"
    assert not path.is_absolute()


def test_exercise_code_without_a_file_writes_train_loop_in_the_current_folder(
    tmp_path, monkeypatch
):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(app, ["exercise", "4", "--code"])
    assert result.exit_code == 0, result.output
    assert (work / "train_loop.py").read_text(encoding="utf-8") == scaffold_text()
    assert "check 4" in result.output


def test_write_scaffold_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "loops" / "mine.py"
    assert write_scaffold(SCAFFOLD, path, force=False) == path
    assert path.read_text() == scaffold_text()

    path.write_text("# my work\n")
    with pytest.raises(ScaffoldExistsError):
        write_scaffold(SCAFFOLD, path, force=False)
    assert path.read_text() == "# my work\n"

    write_scaffold(SCAFFOLD, path, force=True)
    assert path.read_text() == scaffold_text()


def test_exercise_code_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("# my work\n")
    runner = CliRunner()
    refused = runner.invoke(app, ["exercise", "4", "--code", str(path)])
    assert refused.exit_code == 1
    assert path.read_text() == "# my work\n"
    forced = runner.invoke(app, ["exercise", "4", "--code", "--force", str(path)])
    assert forced.exit_code == 0, forced.output
    assert path.read_text() == scaffold_text()


def test_scaffold_is_valid_python_with_five_todos_in_the_loop():
    tree = ast.parse(scaffold_text())
    loops = [node for node in tree.body if isinstance(node, ast.For)]
    assert len(loops) == 1
    loop = loops[0]
    assert ast.unparse(loop.iter) == "range(200)"
    body = ast.get_source_segment(scaffold_text(), loop) or ""
    assert body.count("TODO") == 5
    assert "losses.append(loss.item())" in body


def test_scaffold_sets_up_the_notebook_data():
    setup = scaffold_text().split("for step in range(200):")[0]
    ns: dict = {}
    exec(setup, ns)
    x, y = notebook_data()
    assert np.array_equal(ns["X"].double().numpy(), x)
    assert np.array_equal(ns["y_true"].double().numpy(), y)
    for name in ("w", "b"):
        assert ns[name].item() == 0.0
        assert ns[name].requires_grad and ns[name].is_leaf
    assert ns["learning_rate"] == 0.01
    assert ns["losses"] == []


def test_unfinished_scaffold_says_so(tmp_path, forked):
    report = check_file(write_scaffold(SCAFFOLD, tmp_path / "train_loop.py", force=False))
    assert not report.passed
    assert report.names == ["unfinished"]
    assert "Step 1" in report.diagnoses[0].explanation


def test_scaffold_with_the_todos_filled_in_passes(tmp_path, forked):
    text = scaffold_text()
    for todo, code in SOLUTION.items():
        assert todo in text, todo
        text = text.replace(todo, code)
    path = tmp_path / "train_loop.py"
    path.write_text(text)
    report = check_file(path)
    assert report.passed, format_report(report)


# --- correct solutions --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["correct.py", "correct_sgd.py"])
def test_correct_solutions_pass(name):
    report = forked_report(name)
    w_ls, b_ls = lstsq_fit()
    assert report.passed, format_report(report)
    assert report.diagnoses == []
    assert report.loss_falls
    assert report.steps == 200
    assert report.w_ls == pytest.approx(w_ls, abs=1e-6)
    assert report.b_ls == pytest.approx(b_ls, abs=1e-6)
    assert report.w is not None and abs(report.w - w_ls) <= TOLERANCE
    assert report.b is not None and abs(report.b - b_ls) <= TOLERANCE
    assert report.final_loss is not None and report.first_loss is not None
    assert report.final_loss < report.first_loss


def test_the_learners_output_stays_in_the_child(capfd):
    report = fixture_report("correct.py")
    assert "Step 200" in report.output
    assert "Step 200" not in capfd.readouterr().out


# --- mistakes -----------------------------------------------------------------------------

MISTAKES = [
    ("no_zero_grad.py", "gradients_not_zeroed", "zero_()"),
    ("no_no_grad.py", "update_tracked", training.LEAF_INPLACE),
    ("rebound.py", "rebound", "non-leaf"),
    ("rebound_no_grad.py", "rebound", "doesn't even require grad"),
    ("sign_flipped.py", "sign_flipped", "subtracting"),
    ("missing_names.py", "missing_names", "w, b"),
]


@pytest.mark.parametrize(("name", "diagnosis", "phrase"), MISTAKES)
def test_each_mistake_gets_its_explanation(name, diagnosis, phrase):
    report = forked_report(name)
    assert not report.passed
    assert report.names == [diagnosis]
    assert phrase in report.diagnoses[0].explanation


def line_of(source: str, code: str) -> int:
    """The 1-based number of the first line holding `code`."""
    return next(n for n, line in enumerate(source.splitlines(), 1) if code in line)


def test_a_detached_parameter_is_named_not_a_missing_backward():
    """backward() ran; detach() cut w off the graph, so w.grad stayed None."""
    source = (FIXTURES / "detached.py").read_text(encoding="utf-8")
    report = forked_report("detached.py")
    assert not report.passed and report.names == ["detached"]
    (diagnosis,) = report.diagnoses
    assert "detach()" in diagnosis.title and "hasn't run" not in diagnosis.title
    assert f"line {line_of(source, 'w.detach() * X')} " in diagnosis.explanation
    assert "Call loss.backward()" not in diagnosis.explanation


def test_gradients_zeroed_before_the_update_are_named_with_the_line():
    source = (FIXTURES / "zeroed_before_update.py").read_text(encoding="utf-8")
    report = forked_report("zeroed_before_update.py")
    assert not report.passed and report.names == ["zeroed_before_update"]
    explanation = report.diagnoses[0].explanation
    assert f"line {line_of(source, 'w.grad.zero_()')} " in explanation
    assert "check that loss.backward() runs" not in explanation
    losses_fixed = report.first_loss == report.final_loss  # w and b never moved
    assert losses_fixed and report.w == 0.0 and report.b == 0.0


def test_gradients_set_to_none_before_the_update_are_named_with_the_line(tmp_path, forked):
    source = (FIXTURES / "zeroed_before_update.py").read_text(encoding="utf-8")
    for name in ("w", "b"):
        source = source.replace(f"    {name}.grad.zero_()\n", f"    {name}.grad = None\n")
    path = tmp_path / "none_before_update.py"
    path.write_text(source, encoding="utf-8")
    report = check_file(path)
    assert report.names == ["zeroed_before_update"]
    assert f"line {line_of(source, 'w.grad = None')} " in report.diagnoses[0].explanation


def test_accumulating_gradients_make_the_loss_swing():
    report = forked_report("no_zero_grad.py")
    assert report.w is not None and report.b is not None
    w_ls, b_ls = lstsq_fit()
    assert abs(report.b - b_ls) > TOLERANCE


def test_rebinding_reports_pytorchs_non_leaf_warning():
    report = forked_report("rebound.py")
    assert any("not a leaf Tensor" in warning for warning in report.warnings)


def test_rebinding_inside_no_grad_is_recognised_by_the_failing_backward():
    """`with torch.no_grad(): w = w - lr * w.grad` leaves a plain tensor that doesn't require
    grad: the next loss.backward() raises PyTorch's "element 0 of tensors does not require
    grad", which is explained as rebinding, not reported as a bare RuntimeError."""
    report = forked_report("rebound_no_grad.py")
    assert report.steps == 1  # the first step ran; the second backward() failed
    explanation = report.diagnoses[0].explanation
    assert "element 0 of tensors does not require grad" in explanation
    assert "w -= learning_rate * w.grad" in explanation
    assert "The file raised" not in " ".join(format_report(report))


def test_parameters_never_requiring_grad_are_not_called_rebound(tmp_path, forked):
    """Same PyTorch error, different mistake: w and b made without requires_grad=True are
    not rebound, so that is not the explanation."""
    source = (FIXTURES / "correct.py").read_text(encoding="utf-8")
    for name in ("w", "b"):
        made = f"{name} = torch.tensor(0.0, requires_grad=True)"
        assert made in source
        source = source.replace(made, f"{name} = torch.tensor(0.0)")
    path = tmp_path / "no_requires_grad.py"
    path.write_text(source, encoding="utf-8")
    report = check_file(path)
    assert not report.passed and "rebound" not in report.names
    assert "element 0 of tensors does not require grad" in report.diagnoses[0].explanation


def test_rebinding_through_another_name_inside_no_grad_is_recognised(tmp_path, forked):
    source = (FIXTURES / "rebound_no_grad.py").read_text(encoding="utf-8")
    for name in ("w", "b"):
        rebind = f"        {name} = {name} - learning_rate * {name}.grad\n"
        assert rebind in source
        source = source.replace(rebind, f"        new_{name} = {name} - learning_rate * "
                                        f"{name}.grad\n        {name} = new_{name}\n")
    path = tmp_path / "rebound_via_new_names.py"
    path.write_text(source, encoding="utf-8")
    assert check_file(path).names == ["rebound"]


def test_a_flipped_sign_makes_the_loss_rise():
    report = forked_report("sign_flipped.py")
    assert not report.loss_falls
    assert report.final_loss is not None and report.first_loss is not None
    assert report.final_loss > report.first_loss


def test_an_endless_loop_is_stopped_by_the_time_limit():
    started = time.monotonic()
    report = check_file(FIXTURES / "infinite_loop.py", timeout=3)
    elapsed = time.monotonic() - started
    assert not report.passed
    assert report.names == ["time_limit"]
    assert "3 s" in report.diagnoses[0].explanation
    assert elapsed < 3 + checker.STARTUP_GRACE


def test_the_hard_kill_catches_what_the_alarm_cannot(tmp_path, monkeypatch):
    path = tmp_path / "stuck.py"
    # A blocked signal never reaches Python's handler, so only the parent's kill stops this.
    path.write_text(
        "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
        "while True:\n    time.sleep(0.1)\n"
    )
    monkeypatch.setattr(checker, "STARTUP_GRACE", 5.0)
    report = check_file(path, timeout=1)
    assert report.names == ["time_limit"]


def test_a_syntax_error_is_reported_with_its_line(tmp_path, forked):
    path = tmp_path / "broken.py"
    path.write_text("import torch\n\nfor step in range(200)\n    pass\n")
    report = check_file(path)
    assert report.names == ["syntax_error"]
    assert "line 3" in report.diagnoses[0].explanation


def test_a_missing_file_is_reported_without_running(tmp_path):
    report = check_file(tmp_path / "nowhere.py")
    assert not report.passed
    assert report.names == ["file_not_found"]


def test_reading_grad_before_backward_is_explained(tmp_path, forked):
    text = (FIXTURES / "correct.py").read_text().replace("    loss.backward()\n", "")
    path = tmp_path / "no_backward.py"
    path.write_text(text)
    report = check_file(path)
    assert report.names == ["no_backward"]
    assert "loss.backward()" in report.diagnoses[0].explanation


# --- the least-squares target and the text report -----------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_least_squares_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=30)
    y = 3 * x - 2 + rng.normal(size=30)
    w, b = training.least_squares(x.tolist(), y.tolist())
    # The checker uses polyfit; the expected line comes from lstsq on the design matrix.
    design = np.column_stack([x, np.ones_like(x)])
    (slope, intercept), *_ = np.linalg.lstsq(design, y, rcond=None)
    assert w == pytest.approx(slope, rel=1e-9)
    assert b == pytest.approx(intercept, rel=1e-9, abs=1e-9)


def test_a_file_without_its_own_data_is_judged_on_the_lessons(tmp_path, forked):
    """A file that leaves no usable X and y_true behind is judged against the lesson's data."""
    text = (FIXTURES / "correct.py").read_text(encoding="utf-8") + "\ndel X, y_true\n"
    path = tmp_path / "no_data_left.py"
    path.write_text(text, encoding="utf-8")
    report = check_file(path)
    w_ls, b_ls = lstsq_fit()
    assert report.w_ls == pytest.approx(w_ls, abs=1e-6)
    assert report.b_ls == pytest.approx(b_ls, abs=1e-6)
    assert report.passed, format_report(report)


def test_a_missing_file_points_to_the_exercises_scaffold_command(tmp_path):
    report = checker.check_file(tmp_path / "nowhere.py", CODING, name="basics/4",
                                reference=reference(lesson_data()))
    assert "autograd-tutor exercise basics/4 --code" in report.diagnoses[0].explanation


def test_format_report_names_the_exercise():
    assert format_report(forked_report("correct.py"))[0].startswith("check 4: ")
    lines = format_report(forked_report("correct.py"), name="basics/4")
    assert lines[0].startswith("check basics/4: ")


def test_the_check_command_passes_a_correct_file_and_fails_a_mistake():
    runner = CliRunner()
    passed = runner.invoke(app, ["check", "4", str(FIXTURES / "correct.py")])
    assert passed.exit_code == 0, passed.output
    assert "passed" in passed.output and "not passed" not in passed.output
    failed = runner.invoke(app, ["check", "4", str(FIXTURES / "no_zero_grad.py")])
    assert failed.exit_code == 1, failed.output
    assert "not passed" in failed.output
    assert "Gradients are never zeroed" in failed.output


def test_the_check_command_judges_a_file_without_data_on_the_lessons(tmp_path, forked):
    """The CLI hands check_file the X and y_true made by Exercise 4's data step."""
    import json

    text = (FIXTURES / "correct.py").read_text(encoding="utf-8") + "\ndel X, y_true\n"
    path = tmp_path / "no_data_left.py"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "4", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    w_ls, b_ls = lstsq_fit()
    assert report["passed"] is True
    assert report["w_ls"] == pytest.approx(w_ls, abs=1e-6)
    assert report["b_ls"] == pytest.approx(b_ls, abs=1e-6)


def test_format_report_is_plain_lines():
    passed = format_report(forked_report("correct.py"))
    failed = format_report(forked_report("no_zero_grad.py"))
    for lines in (passed, failed):
        assert all(isinstance(line, str) and not ANSI.search(line) for line in lines)
        assert not any("[/" in line for line in lines)  # no rich markup either
    assert "passed" in passed[0] and "not passed" not in passed[0]
    assert "not passed" in failed[0]
    assert any("Gradients are never zeroed" in line for line in failed)


# --- hostile files: what the file starts, and what it leaves behind ------------------------
#
# Each fixture below does something a training loop shouldn't, and the checker must survive
# it: no process of the file's outlives the check, no traceback of the checker's own, and a
# diagnosis in the learner's terms. Fixtures that start processes write their pids to the
# file named by CHECK4_PID_FILE.

# The old checker waited for a sleeper until the hard kill (timeout + STARTUP_GRACE). These
# tests put the hard kill a minute after the child is ready, so a check that ends well
# before it ended by itself (the file's end, or its own alarm), however long this machine
# took to start Python and torch.
FAR_GRACE = 60.0
ENDED_BY_ITSELF = 30.0


def alive(pid: int) -> bool:
    """Whether `pid` is a running process. A zombie (dead, waiting to be reaped, which PID 1
    in a container may never do) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # gone meanwhile; or no /proc to look in
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def survivors(pids: list[int], within: float = 3.0) -> list[int]:
    """The pids still alive after up to `within` s (a SIGKILL takes a moment to land)."""
    deadline = time.monotonic() + within
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def read_pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.fixture
def pid_file(tmp_path, monkeypatch):
    path = tmp_path / "pids"
    monkeypatch.setenv("CHECK4_PID_FILE", str(path))
    yield path
    for pid in read_pids(path):  # only left after a failure: leave no sleeper behind
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A temporary folder of the test's own for the checker, to see what it leaves there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def checker_leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith("autograd-tutor-check-")]


def no_checker_traceback(report: CheckReport) -> bool:
    text = report.output + "\n".join(format_report(report))
    return "Traceback" not in text and "checker.py" not in text


@pytest.mark.parametrize("name", ["sleeper_popen.py", "sleeper_fork.py"])
def test_a_process_the_file_starts_neither_slows_the_check_nor_outlives_it(
    name, pid_file, private_tmp, monkeypatch
):
    monkeypatch.setattr(checker, "STARTUP_GRACE", FAR_GRACE)
    started = time.monotonic()
    report = check_file(FIXTURES / name, timeout=3)
    elapsed = time.monotonic() - started
    w_ls, b_ls = lstsq_fit()
    assert report.passed, format_report(report)
    assert report.w_ls == pytest.approx(w_ls, abs=1e-6)
    assert report.b_ls == pytest.approx(b_ls, abs=1e-6)
    assert elapsed < ENDED_BY_ITSELF
    pids = read_pids(pid_file)
    assert len(pids) == 1
    assert survivors(pids) == []
    assert checker_leftovers(private_tmp) == []


def test_the_time_limit_kills_what_the_file_started(pid_file, private_tmp, monkeypatch):
    monkeypatch.setattr(checker, "STARTUP_GRACE", FAR_GRACE)
    started = time.monotonic()
    report = check_file(FIXTURES / "sleeper_hangs.py", timeout=1)
    elapsed = time.monotonic() - started
    assert report.names == ["time_limit"]
    assert elapsed < ENDED_BY_ITSELF
    pids = read_pids(pid_file)
    assert len(pids) == 2  # the sleeper and the file's own process
    assert survivors(pids) == []
    assert checker_leftovers(private_tmp) == []


def test_the_hard_kill_kills_the_whole_process_group(tmp_path, pid_file, monkeypatch):
    """With SIGALRM blocked only the parent's kill stops the file; it takes the sleeper
    with it."""
    source = (FIXTURES / "sleeper_hangs.py").read_text(encoding="utf-8")
    path = tmp_path / "stuck_with_sleeper.py"
    path.write_text(
        "import signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n" + source
    )
    # Counted from the child's readiness (torch imported): the file's first lines, which
    # start the sleeper, need a moment, not a race with Python's start-up.
    monkeypatch.setattr(checker, "STARTUP_GRACE", 5.0)
    report = check_file(path, timeout=1)
    assert report.names == ["time_limit"]
    pids = read_pids(pid_file)
    assert len(pids) == 2
    assert survivors(pids) == []


def wait_for_pids(path: Path, count: int, proc: subprocess.Popen, within: float = 30.0):
    deadline = time.monotonic() + within
    while len(pids := read_pids(path)) < count:
        if proc.poll() is not None:
            pytest.fail(f"ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail("the file never wrote its pids")
        time.sleep(0.05)
    return pids


DRIVER = """
import sys
from pathlib import Path
from autograd_tutor.content.packs import builtin
from autograd_tutor.engine import checker
data = {"values": {"X": {"numbers": [0.0, 1.0]}, "y_true": {"numbers": [0.0, 1.0]}}}
try:
    report = checker.check_file(Path(sys.argv[1]), builtin().exercise(4).coding, timeout=60,
                                reference=data)
except KeyboardInterrupt:
    print("KeyboardInterrupt reached the caller", flush=True)
    sys.exit(130)
print("check_file returned", report.names, flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_to_the_checker_kills_what_the_file_started(signum, tmp_path, pid_file):
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP while the file runs: the file's processes are
    killed and the temporary files removed first, then the signal has its usual effect
    (a KeyboardInterrupt for the caller; the end of the program for the other two)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(FIXTURES / "sleeper_hangs.py")],
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        pids = wait_for_pids(pid_file, 2, driver)
        driver.send_signal(signum)
        out, err = driver.communicate(timeout=10)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    if signum == signal.SIGINT:
        assert driver.returncode == 130, (out, err)
        assert "KeyboardInterrupt reached the caller" in out
    else:
        assert driver.returncode == -signum, (out, err)
    assert "Traceback" not in err
    assert survivors(pids) == []
    assert checker_leftovers(tmp) == []


def test_ctrl_c_in_the_check_command_says_nothing_was_recorded(pid_file):
    command = [sys.executable, "-m", "autograd_tutor", "check", "4",
               str(FIXTURES / "sleeper_hangs.py"), "--timeout", "60"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pids = wait_for_pids(pid_file, 2, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert "nothing was recorded" in err
    assert "saved" not in err and "Traceback" not in err
    assert survivors(pids) == []


def fixture_namespace(name: str) -> dict:
    """What a fixture without torch leaves, from running it here: the expected values."""
    return runpy.run_path(str(FIXTURES / name))


def test_x_too_close_together_to_fit_is_explained(capfd, forked):
    ns = fixture_namespace("tiny_x.py")
    spread = max(ns["X"]) - min(ns["X"])
    assert spread > 0 and spread * spread == 0.0  # the spread vanishes when squared
    report = check_file(FIXTURES / "tiny_x.py")
    assert not report.passed
    assert report.names == ["bad_data"]
    explanation = report.diagnoses[0].explanation
    assert "too close together" in explanation and f"{spread:.3g}" in explanation
    assert report.w_ls is None and report.b_ls is None
    assert no_checker_traceback(report)
    assert "DLASCL" not in capfd.readouterr().err  # LAPACK never saw the data


def test_x_too_large_to_fit_is_explained(capfd, forked):
    ns = fixture_namespace("huge_x.py")
    largest = max(abs(v) for v in ns["X"] + ns["y_true"])
    assert largest * largest == math.inf  # squaring overflows
    report = check_file(FIXTURES / "huge_x.py")
    assert not report.passed
    assert report.names == ["bad_data"]
    explanation = report.diagnoses[0].explanation
    assert "overflows" in explanation and f"{largest:.3g}" in explanation
    assert no_checker_traceback(report)
    assert "DLASCL" not in capfd.readouterr().err


def test_least_squares_refuses_data_floats_cannot_fit(capfd):
    for xs, ys in [([0.0, 1e-200], [1.0, 1.0]), ([1e200, -1e200], [2e200, -2e200]),
                   ([0.0, math.inf], [1.0, 2.0])]:
        with pytest.raises(training.FitError):
            training.least_squares(xs, ys)
    assert "DLASCL" not in capfd.readouterr().err


def test_a_file_writing_into_the_result_channel_and_exiting_does_not_pass():
    """The file writes a made-up passing result into sys.argv[2] (where an older checker
    read its result) and into every file it has open, then calls os._exit(0)."""
    report = check_file(FIXTURES / "forges_result.py")
    assert not report.passed
    assert report.names == ["crashed"]
    assert "os._exit()" in report.diagnoses[0].explanation
    # sys.argv is what `python FILE` gives: nothing of the checker's in it.
    argv = [str((FIXTURES / "forges_result.py").resolve())]
    assert f"argv: {argv!r}" in report.output
    assert no_checker_traceback(report)


def test_an_int_too_large_for_a_float_is_explained(forked):
    ns = fixture_namespace("huge_int.py")
    with pytest.raises(OverflowError):
        float(ns["w"])
    digits = len(str(ns["w"])) - 1
    report = check_file(FIXTURES / "huge_int.py")
    assert not report.passed
    assert report.names == ["bad_values"]
    explanation = report.diagnoses[0].explanation
    assert f"`w` is an int of about 10**{digits}, too large for a float" in explanation
    assert no_checker_traceback(report)


def test_losses_from_a_generator_that_raises_are_explained(forked):
    ns = fixture_namespace("losses_generator.py")
    with pytest.raises(Exception) as raised:
        list(ns["losses"])
    report = check_file(FIXTURES / "losses_generator.py")
    assert not report.passed
    assert report.names == ["bad_values"]
    explanation = report.diagnoses[0].explanation
    assert f"`losses` (a generator) raised {type(raised.value).__name__}: {raised.value}" in (
        explanation
    )
    assert no_checker_traceback(report)


def test_a_value_whose_float_raises_is_explained(forked):
    ns = fixture_namespace("float_raises.py")
    with pytest.raises(Exception) as raised:
        float(ns["w"])
    report = check_file(FIXTURES / "float_raises.py")
    assert not report.passed
    assert report.names == ["bad_values"]
    explanation = report.diagnoses[0].explanation
    assert f"`float(w)` raised {type(raised.value).__name__}: {raised.value}" in explanation
    assert no_checker_traceback(report)


# --- the report as JSON -------------------------------------------------------------------


def json_floats(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from json_floats(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_floats(item)


def test_report_json_of_a_diverging_loop_has_no_nan_or_infinity(forked):
    report = check_file(FIXTURES / "diverges.py")
    assert report.names == ["diverged"]
    assert report.final_loss is not None and not math.isfinite(report.final_loss)
    data = checker.report_json(report)
    text = json.dumps(data, allow_nan=False)  # raises on nan or inf
    assert all(math.isfinite(v) for v in json_floats(json.loads(text)))
    # Same fields as the report; the non-finite numbers, and only those, become null.
    fields = checker.report_data(report)
    assert data.keys() == fields.keys()
    for key, value in fields.items():
        if isinstance(value, float):
            assert data[key] == (value if math.isfinite(value) else None), key
    assert data["first_loss"] == report.first_loss
    assert data["final_loss"] is None


def test_report_json_of_a_passing_report_is_the_report():
    report = forked_report("correct.py")
    expected = checker.report_data(report)
    assert json.loads(json.dumps(checker.report_json(report), allow_nan=False)) == expected


def test_check_json_of_a_diverging_loop_is_standard_json(forked) -> None:
    result = CliRunner().invoke(app, ["check", "4", str(FIXTURES / "diverges.py"), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(name))
    assert report["final_loss"] is None
