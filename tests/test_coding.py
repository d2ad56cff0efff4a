"""`check PACK/N` on a coding part written as pack data: the custom-functions pack's first
exercise (the backward of y = x·sin(x)), through the CLI, with a correct file, the untouched
scaffold and wrong backwards.

Expected values are computed here, independently: x is drawn with torch under the part's
seed, and the right gradient comes from torch's own autograd of x * sin(x) (no custom
Function), not from the pack's solution or its helpers.
"""

from __future__ import annotations

import json
from pathlib import Path

import forked_check
import pytest
import torch
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.content.packs import builtin

EXERCISE = builtin("custom-functions").exercise(1)
CODING = EXERCISE.coding
TODO = 'raise NotImplementedError("TODO backward: return grad_output times dy/dx")'


@pytest.fixture(scope="module", autouse=True)
def forked():
    """The checks fork their children from the forkserver (see forked_check): these tests
    judge what a file computed; process behaviour is tested in test_checker."""
    with forked_check.forked_checks():
        yield
    forked_check.stop_forkserver()


def backward_file(tmp_path: Path, body: str | None) -> Path:
    """The scaffold with its backward's TODO replaced by `body` (None: left as it is)."""
    text = Path(CODING.scaffold).read_text(encoding="utf-8")
    assert TODO in text
    path = tmp_path / "x_sin_x.py"
    path.write_text(text if body is None else text.replace(TODO, body), encoding="utf-8")
    return path


def check(path: Path) -> tuple[int, dict, str]:
    result = CliRunner().invoke(app, ["check", "custom-functions/1", str(path), "--json"])
    report = json.loads(result.stdout.splitlines()[-1])
    return result.exit_code, report, result.output


def expected_run() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x as the check draws it (the part's seed), the loss's weights, and the right x.grad,
    by torch's autograd of x * sin(x)."""
    torch.manual_seed(CODING.seed)
    x = torch.randn(5, requires_grad=True)
    weights = torch.arange(1.0, 6.0)
    (weights * (x * torch.sin(x))).sum().backward()
    assert x.grad is not None
    return x.detach(), weights, x.grad


def test_the_part_reads_as_declared():
    assert CODING.gradcheck is not None and CODING.gradcheck.function == "XSin"
    assert set(CODING.compare) == {"y", "grad"}
    assert Path(CODING.scaffold).name == "x_sin_x.py"


def test_a_correct_backward_passes(tmp_path):
    code, report, output = check(backward_file(
        tmp_path, "return grad_output * (torch.sin(x) + x * torch.cos(x))"))
    assert code == 0, output
    assert report["passed"] is True and report["diagnoses"] == []
    assert report["gradcheck"] is True
    assert report["compared"]["grad"] <= CODING.tolerance
    assert "gradcheck: passed" in output


def test_the_untouched_scaffold_fails_as_unfinished(tmp_path):
    code, report, output = check(backward_file(tmp_path, None))
    assert code == 1, output
    assert report["passed"] is False
    assert [d["name"] for d in report["diagnoses"]] == ["unfinished"]
    assert "backward is not written yet" in output


def test_a_backward_without_grad_output_is_named(tmp_path):
    code, report, output = check(backward_file(
        tmp_path, "return torch.sin(x) + x * torch.cos(x)"))
    assert code == 1, output
    assert [d["name"] for d in report["diagnoses"]] == ["dropped_grad_output"]
    assert "ignores grad_output" in report["diagnoses"][0]["explanation"]
    assert report["gradcheck"] is False
    # The difference from the reference is that of dy/dx from weights · dy/dx.
    x, weights, right = expected_run()
    local = torch.sin(x) + x * torch.cos(x)
    assert torch.allclose(right, weights * local)
    assert report["compared"]["grad"] == pytest.approx((right - local).abs().max().item(),
                                                       rel=1e-5)


def test_half_of_the_product_rule_is_named(tmp_path):
    code, report, output = check(backward_file(tmp_path, "return grad_output * x * torch.cos(x)"))
    assert code == 1, output
    assert [d["name"] for d in report["diagnoses"]] == ["half_product_rule"]
    assert "x·cos(x)" in report["diagnoses"][0]["explanation"]


def test_a_lone_term_without_grad_output_is_not_said_to_have_it(tmp_path):
    code, report, output = check(backward_file(tmp_path, "return torch.cos(x)"))
    assert code == 1, output
    assert [d["name"] for d in report["diagnoses"]] == ["half_product_rule"]
    explanation = report["diagnoses"][0]["explanation"]
    assert "grad_output is missing too" in explanation
    assert "times grad_output" not in explanation


def test_a_backward_no_diagnosis_knows_fails_gradcheck(tmp_path):
    code, report, output = check(backward_file(tmp_path, "return grad_output * torch.exp(x)"))
    assert code == 1, output
    assert [d["name"] for d in report["diagnoses"]] == ["gradcheck_failed"]
    assert "Jacobian mismatch" in report["diagnoses"][0]["explanation"]
    assert report["gradcheck"] is False
    x, weights, right = expected_run()
    assert report["compared"]["grad"] == pytest.approx(
        (right - weights * torch.exp(x)).abs().max().item(), rel=1e-5)


def test_a_forward_changed_differs_from_the_reference(tmp_path):
    """A file whose Function is self-consistent but computes something else: gradcheck
    passes, the comparison with the solution's run does not."""
    text = backward_file(tmp_path, "return grad_output * 2 * x").read_text(encoding="utf-8")
    path = tmp_path / "x_sin_x.py"
    path.write_text(text.replace("return x * torch.sin(x)", "return x * x"), encoding="utf-8")
    code, report, output = check(path)
    assert code == 1, output
    assert report["gradcheck"] is True
    assert [d["name"] for d in report["diagnoses"]] == ["differs"]
    x, _, _ = expected_run()
    assert report["compared"]["y"] == pytest.approx(
        (x * torch.sin(x) - x * x).abs().max().item(), rel=1e-5)


def test_exercise_code_writes_the_scaffold(tmp_path):
    target = tmp_path / "mine.py"
    result = CliRunner().invoke(app, ["exercise", "custom-functions/1", "--code", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == Path(CODING.scaffold).read_text(encoding="utf-8")
    assert "check custom-functions/1" in result.output


def test_a_failing_diagnosis_of_the_pack_is_one_line_and_exit_1(tmp_path, monkeypatch):
    """The pack's own diagnoses are pack code: one that raises ends the check with a line
    naming it, never a traceback."""
    import shutil

    shelf = tmp_path / "shelf"
    shutil.copytree(Path(__file__).parent / "fixtures" / "packs" / "coding-unknown-diagnosis",
                    shelf / "tiny")
    (shelf / "tiny" / "judge.py").write_text(
        "def unfinished(run, reference):\n    return None\n\n\n"
        "def power_rule(run, reference):\n    return 1 / 0\n", encoding="utf-8")
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(shelf))
    result = CliRunner().invoke(app, ["check", "tiny/1", str(shelf / "tiny" / "solution.py")])
    assert result.exit_code == 1, result.output
    assert "power_rule() of judge.py raised ZeroDivisionError" in result.output
    assert "Traceback" not in result.output
