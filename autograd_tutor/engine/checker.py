"""Coding mode for Exercise 4: write the training-loop scaffold, then check a finished file.

`check_file` runs the learner's file in a separate Python process with a time limit, as
their own program: the separation is about hangs and crashes, not about trust. The child
(`_child_main`, below) runs the file, then writes `w`, `b`, `losses`, `X` and `y_true` as
JSON; this side judges them against a least-squares fit computed independently with the
closed-form formula, and names the classic mistakes.

The module imports no torch, so the CLI can list and write scaffolds cheaply.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEPS = 200
TOLERANCE = 0.05
DEFAULT_TIMEOUT = 20.0
# Extra seconds before the hard kill: Python and torch start before the learner's clock runs.
STARTUP_GRACE = 15.0
# How many values of a list the child sends back; an endless loop can grow `losses` a lot.
MAX_VALUES = 10_000
OUTPUT_LINES = 20

LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation"
BACKWARD_TWICE = "Trying to backward through the graph a second time"
NO_GRAD_FN = "does not require grad and does not have a grad_fn"


class ScaffoldExistsError(FileExistsError):
    """The scaffold's target file exists and `force` was not given."""


@dataclass(frozen=True)
class Diagnosis:
    """One recognised problem: a stable `name`, a short `title` and a paragraph of `explanation`."""

    name: str
    title: str
    explanation: str


@dataclass
class CheckReport:
    path: Path
    passed: bool
    diagnoses: list[Diagnosis] = field(default_factory=list)
    loss_falls: bool = False
    w: float | None = None
    b: float | None = None
    w_ls: float | None = None
    b_ls: float | None = None
    first_loss: float | None = None
    final_loss: float | None = None
    steps: int = 0
    output: str = ""  # the tail of what the file printed
    warnings: list[str] = field(default_factory=list)  # Python warnings the file raised
    tolerance: float = TOLERANCE

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.diagnoses]


# --- the scaffold -------------------------------------------------------------------------


def least_squares(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """The exact least-squares line, by a method of its own (numpy's polyfit), so the check
    does not lean on the lesson's hand-derived arithmetic."""
    import numpy as np

    slope, intercept = np.polyfit(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), 1)
    return float(slope), float(intercept)


def write_scaffold(scaffold: Path, path: Path, force: bool = False) -> Path:
    """Write the scaffold to `path`; never overwrite a file unless `force`."""
    text = scaffold.read_text(encoding="utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # "x" creates or fails in one step, so a file appearing meanwhile is not clobbered.
        with path.open("w" if force else "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise ScaffoldExistsError(
            f"{path} already exists; pass --force to overwrite it, or choose another file name"
        ) from None
    return path


# --- running the learner's file -----------------------------------------------------------


@dataclass
class _Run:
    result: dict[str, Any] | None  # what the child wrote; None if it never got that far
    killed: bool
    returncode: int | None
    output: str


_CHILD_ENTRY = (
    "import sys; from autograd_tutor.engine.checker import _child_main; "
    "_child_main(sys.argv[1:])"
)


def _child_env() -> dict[str, str]:
    # The child imports this module by name, from wherever it was imported here.
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]
    # Agg: a learner's plt.show() must not open a window that blocks the check.
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "MPLBACKEND": "Agg"}


def _tail(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return "\n".join((text or "").splitlines()[-OUTPUT_LINES:])


def _run_child(path: Path, timeout: float) -> _Run:
    with tempfile.TemporaryDirectory(prefix="autograd-tutor-check-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-c", _CHILD_ENTRY, str(path), str(out), repr(timeout)]
        try:
            proc = subprocess.run(
                command,
                capture_output=True,
                text=True,
                errors="replace",
                stdin=subprocess.DEVNULL,  # input() fails at once instead of waiting forever
                env=_child_env(),
                timeout=timeout + STARTUP_GRACE,
            )
        except subprocess.TimeoutExpired as expired:  # run() has already killed the child
            return _Run(None, True, None, _tail(expired.stdout))
        result = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
        return _Run(result, False, proc.returncode, _tail(proc.stdout + proc.stderr))


# --- the child process --------------------------------------------------------------------


class _TimeLimit(BaseException):
    """Raised by the alarm; not an Exception, so a learner's `except Exception` can't eat it."""


def _raise_time_limit(signum: int, frame: object) -> None:
    raise _TimeLimit


def _set_alarm(seconds: float) -> None:
    # Without setitimer (Windows) the parent's hard kill is the only limit.
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _raise_time_limit)
        signal.setitimer(signal.ITIMER_REAL, seconds)


def _child_main(argv: list[str]) -> None:
    path, out, limit = argv[0], Path(argv[1]), float(argv[2])
    result = _execute(path, limit)
    out.write_text(json.dumps(result), encoding="utf-8")


def _execute(path: str, limit: float) -> dict[str, Any]:
    sys.path[0] = str(Path(path).resolve().parent)  # as `python FILE` would set it
    # Import torch before the clock starts, so the time limit measures the file, not torch.
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    ns: dict[str, Any] = {"__name__": "__main__", "__file__": path, "__builtins__": builtins}
    result: dict[str, Any] = {"error": None, "timed_out": False}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = compile(Path(path).read_bytes(), path, "exec")
            _set_alarm(limit)
            exec(code, ns)
        except _TimeLimit:
            result["timed_out"] = True
        except SystemExit as exit_:
            if exit_.code not in (None, 0):
                result["error"] = _describe_error(exit_, path)
        except BaseException as error:  # the learner's error is the data we report
            result["error"] = _describe_error(error, path)
        finally:
            _set_alarm(0)
    result["warnings"] = sorted({str(w.message) for w in caught})[:5]
    result.update(_read_namespace(ns))
    return result


def _describe_error(error: BaseException, path: str) -> dict[str, Any]:
    info: dict[str, Any] = {"type": type(error).__name__, "message": str(error)[:500]}
    if isinstance(error, SyntaxError):
        info.update(message=error.msg, line=error.lineno, code=(error.text or "").strip())
        return info
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
    info["line"] = frames[-1].lineno if frames else None
    info["code"] = (frames[-1].line or "").strip() if frames else ""
    return info


def _as_float(value: Any) -> float | None:
    try:
        return float(value.detach() if hasattr(value, "detach") else value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _floats(value: Any) -> list[float] | None:
    """Up to MAX_VALUES numbers from a list or tensor, or None if it isn't a list of numbers."""
    if hasattr(value, "detach"):
        value = value.detach().reshape(-1).tolist()
    try:
        numbers = [_as_float(v) for v in itertools.islice(value, MAX_VALUES)]
    except TypeError:
        return None
    return None if None in numbers else [n for n in numbers if n is not None]


def _length(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return 0


def _describe_param(value: Any) -> dict[str, Any]:
    # Reading .grad of a non-leaf warns, so only these attributes are touched.
    info: dict[str, Any] = {"type": type(value).__name__, "value": _as_float(value)}
    if hasattr(value, "requires_grad") and hasattr(value, "is_leaf"):
        info["requires_grad"] = bool(value.requires_grad)
        info["is_leaf"] = bool(value.is_leaf)
    return info


def _read_namespace(ns: dict[str, Any]) -> dict[str, Any]:
    losses = ns.get("losses")
    return {
        "params": {name: _describe_param(ns[name]) for name in ("w", "b") if name in ns},
        "has_losses": "losses" in ns,
        "losses": None if losses is None else _floats(losses),
        "loss_count": _length(losses),
        "X": _floats(ns["X"]) if "X" in ns else None,
        "y_true": _floats(ns["y_true"]) if "y_true" in ns else None,
    }


# --- the least-squares target -------------------------------------------------------------


Data = tuple[list[float], list[float]]


def _data(result: dict[str, Any] | None, lesson: Data) -> Data:
    """The file's own X and y_true when it leaves usable ones, else the lesson's."""
    x = result.get("X") if result else None
    y = result.get("y_true") if result else None
    if x and y and len(x) == len(y) >= 2 and max(x) > min(x):
        return x, y
    return lesson


# --- judging ------------------------------------------------------------------------------


def _rises(losses: list[float]) -> int:
    """How often the loss went up by more than float noise."""
    return sum(1 for a, b in itertools.pairwise(losses) if b > a * (1 + 1e-6) + 1e-12)


def _zeroed_names(source: str) -> set[str] | None:
    """Names whose .grad the file resets; None if it resets something it names otherwise
    (an optimizer, a loop over parameters), which counts as resetting everything."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        target = _reset_target(node)
        if target is None:
            continue
        if not (isinstance(target, ast.Name) and target.id in ("w", "b")):
            return None
        names.add(target.id)
    return names


def _reset_target(node: ast.AST) -> ast.expr | None:
    """The owner reset by `w.grad.zero_()`, `w.grad.data.zero_()`, `w.grad = None` or
    `opt.zero_grad()`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "zero_grad":
            return node.func.value
        if node.func.attr == "zero_":
            return _grad_owner(node.func.value)
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr == "grad":
                return target.value
    return None


def _grad_owner(expr: ast.expr) -> ast.expr | None:
    while isinstance(expr, ast.Attribute):
        if expr.attr == "grad":
            return expr.value
        expr = expr.value
    return None


def _rebinds(source: str) -> set[str]:
    """w and b that the file binds to a new tensor after creating them: a name assigned from
    its own old value (`w = w - learning_rate * w.grad`) or assigned more than once. An
    update in place (`w -= ...`) is not an assignment of the name."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    seen: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        used = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("w", "b"):
                if target.id in used or target.id in seen:
                    names.add(target.id)
                seen.add(target.id)
    return names


def _where(error: dict[str, Any]) -> str:
    line, code = error.get("line"), error.get("code")
    if line and code:
        return f"line {line} (`{code}`)"
    return f"line {line}" if line else "your file"


def _rebound(params: dict[str, Any]) -> list[str]:
    """Parameters that are no longer leaf tensors requiring grad."""
    return [
        name
        for name, info in params.items()
        if "is_leaf" in info and not (info["is_leaf"] and info["requires_grad"])
    ]


def _rebound_diagnosis(names: list[str], params: dict[str, Any]) -> Diagnosis:
    shown = " and ".join(names)
    tracked = any(not params[n]["is_leaf"] for n in names)
    why = (
        "Outside torch.no_grad() the new tensor is the result of a computation (a non-leaf "
        "with a grad_fn), and backward() fills .grad only for leaves, so its .grad is None "
        "(PyTorch warns about reading the .grad of a non-leaf Tensor). The next use of .grad "
        "then fails."
        if tracked
        else "Inside torch.no_grad() the new tensor doesn't even require grad, so backward() "
        "never gives it a .grad: it stays None, and the next use of .grad fails. Once "
        "nothing in the loss requires grad, the next loss.backward() fails too: “element 0 "
        f"of tensors {NO_GRAD_FN}”."
    )
    return Diagnosis(
        "rebound",
        "w and b were replaced by new tensors",
        f"`{names[0]} = {names[0]} - learning_rate * {names[0]}.grad` doesn't change "
        f"{names[0]}: it builds a new tensor and rebinds the name, so {shown} stop being the "
        f"leaf tensors you created with requires_grad=True. {why} Update in place instead, "
        "inside torch.no_grad(): `w -= learning_rate * w.grad`, so w stays the same leaf "
        "tensor.",
    )


def _error_diagnosis(error: dict[str, Any], params: dict[str, Any], source: str = "") -> Diagnosis:
    kind, message = error["type"], error["message"]
    where = _where(error)
    if kind in ("SyntaxError", "IndentationError", "TabError"):
        return Diagnosis(
            "syntax_error",
            "Python can't read the file",
            f"{kind} at {where}: {message}. Nothing ran: Python reads the whole file before "
            "running any of it. Check brackets, colons and indentation on that line and the "
            "one before it.",
        )
    if kind == "NotImplementedError" and message.startswith("TODO"):
        return Diagnosis(
            "unfinished",
            "The TODOs are not filled in yet",
            f"The file stops at the first unfinished step: {message}. Replace each "
            "`todo(...)` call with your code, and write the steps that are only comments "
            "(backward, update, zero).",
        )
    if LEAF_INPLACE in message:
        return Diagnosis(
            "update_tracked",
            "Update outside torch.no_grad()",
            f"PyTorch refused the update at {where}: “{LEAF_INPLACE}”. w and b are leaves "
            "that autograd is recording; changing them in place while recording would make "
            "the graph describe values that no longer exist. Put the update inside "
            "`with torch.no_grad():`, so it isn't recorded: the update is bookkeeping, not "
            "part of the model.",
        )
    rebound = _rebound(params)
    if rebound and "NoneType" in message:
        return _rebound_diagnosis(rebound, params)
    # Rebound inside torch.no_grad(): the new w doesn't require grad, so the next step's loss
    # has no grad_fn. A w created without requires_grad fails the same way; the source tells
    # them apart.
    rebound_here = [name for name in rebound if name in _rebinds(source)]
    if rebound_here and NO_GRAD_FN in message:
        return _rebound_diagnosis(rebound_here, params)
    if "NoneType" in message and ".grad" in str(error.get("code")):
        return Diagnosis(
            "no_backward",
            ".grad is None: backward() hasn't run",
            f"{kind} at {where}: {message}. A leaf's .grad stays None until loss.backward() "
            "runs. Call loss.backward() after computing the loss and before the update.",
        )
    if BACKWARD_TWICE in message:
        return Diagnosis(
            "graph_reused",
            "Backward through the same graph twice",
            f"{kind} at {where}: backward() frees the graph it walks, so each step needs a "
            "fresh one. Compute y_pred and loss inside the loop, from the current w and b.",
        )
    return Diagnosis("error", f"The file raised {kind}", f"{kind} at {where}: {message}")


def _time_limit_diagnosis(timeout: float, count: int | None) -> Diagnosis:
    done = "" if count is None else f", with {count} losses recorded (the loop needs {STEPS})"
    return Diagnosis(
        "time_limit",
        "Too slow, or never finishes",
        f"The file was stopped after {timeout:g} s{done}. 200 small steps take well under a "
        "second, so look for a loop that never ends: a `while` whose condition never "
        "changes, or a step counter that is never increased. Or far more work per step "
        "than the exercise needs.",
    )


def _names_diagnosis(result: dict[str, Any]) -> Diagnosis | None:
    missing = [n for n in ("w", "b") if n not in result["params"]]
    if not result["has_losses"]:
        missing.append("losses")
    if missing:
        return Diagnosis(
            "missing_names",
            "The file doesn't define " + ", ".join(missing),
            f"The file ran, but left no module-level {', '.join(missing)}. The checker reads "
            "`w` and `b` (the parameter tensors) and `losses` (one loss per step) after your "
            "file runs: keep those names, outside any function.",
        )
    params = result["params"]
    if result["losses"] is None or any(params[n]["value"] is None for n in ("w", "b")):
        return Diagnosis(
            "bad_values",
            "w, b or losses don't hold numbers",
            "w and b should be one-number tensors and losses a list of floats "
            "(`losses.append(loss.item())` each step).",
        )
    return None


def _trajectory_diagnosis(losses: list[float], source: str) -> Diagnosis | None:
    """What the shape of the loss curve says went wrong, if anything."""
    if len(losses) < 2:
        return None
    if not all(math.isfinite(v) for v in losses):
        return Diagnosis(
            "diverged",
            "The loss blew up",
            "The loss reached inf or nan: each update made the parameters larger without "
            "bound. Check that the update subtracts the gradient, that gradients are reset "
            "every step, and that learning_rate is small (the notebook uses 0.01).",
        )
    rises = _rises(losses)
    if losses[1] > losses[0] and rises >= 0.9 * (len(losses) - 1):
        return Diagnosis(
            "sign_flipped",
            "The update goes uphill",
            f"The loss rose from the first step ({losses[0]:.4g} -> {losses[1]:.4g}) and kept "
            f"rising, to {losses[-1]:.4g}: the update adds the gradient instead of subtracting "
            "it. The gradient points where the loss grows fastest, so gradient descent steps "
            "against it: `w -= learning_rate * w.grad`.",
        )
    if max(losses) - min(losses) <= 1e-9 * max(1.0, abs(losses[0])):
        return Diagnosis(
            "frozen",
            "w and b never changed",
            f"The loss was {losses[0]:.4g} at every step: the parameters were never updated. "
            "Check that loss.backward() runs and that the update subtracts "
            "learning_rate * grad from w and b.",
        )
    if rises >= 3:
        return _oscillation_diagnosis(losses, rises, source)
    return None


def _oscillation_diagnosis(losses: list[float], rises: int, source: str) -> Diagnosis:
    swing = f"(between {min(losses):.4g} and {max(losses):.4g})"
    zeroed = _zeroed_names(source)
    not_zeroed = [] if zeroed is None else [n for n in ("w", "b") if n not in zeroed]
    if not_zeroed:
        which = " and ".join(f"{n}.grad" for n in not_zeroed)
        return Diagnosis(
            "gradients_not_zeroed",
            "Gradients are never zeroed",
            f"The loss went up {rises} times {swing}, and nothing resets {which}. backward() "
            "adds into .grad instead of replacing it (Exercise 3), so each update uses the "
            "sum of every gradient so far: the parameters overshoot and swing back and forth "
            "instead of settling. Reset the gradients after each update: "
            "`w.grad.zero_()` and `b.grad.zero_()` (or optimizer.zero_grad()).",
        )
    return Diagnosis(
        "oscillates",
        "The loss goes up and down",
        f"The loss went up {rises} times {swing}. With the gradients reset every step, a "
        "learning rate that is too large makes each step overshoot the minimum; the notebook "
        "uses 0.01. Also check that both w.grad and b.grad are reset every step.",
    )


def _fit_diagnosis(report: CheckReport) -> Diagnosis | None:
    if report.steps != STEPS:
        return Diagnosis(
            "step_count",
            f"{report.steps} training steps instead of {STEPS}",
            f"losses has {report.steps} entries; the exercise trains for {STEPS} steps and "
            "appends one loss per step (`losses.append(loss.item())`).",
        )
    if not report.loss_falls:
        return Diagnosis(
            "loss_not_falling",
            "The loss doesn't fall",
            "The last loss is not lower than the first. Check the forward pass, the loss, "
            "and that the update subtracts learning_rate * grad.",
        )
    if not _close(report):
        return Diagnosis(
            "not_converged",
            "Not at the least-squares fit",
            f"The loss falls, but after {STEPS} steps w = {report.w:.4f}, b = {report.b:.4f} "
            f"are not both within {TOLERANCE} of the least-squares fit (w = {report.w_ls:.4f}, "
            f"b = {report.b_ls:.4f}). Check learning_rate (0.01) and that each step uses the "
            "gradient of the current loss.",
        )
    return None


def _close(report: CheckReport) -> bool:
    pairs = [(report.w, report.w_ls), (report.b, report.b_ls)]
    return all(
        got is not None and target is not None and abs(got - target) <= TOLERANCE
        for got, target in pairs
    )


def _judge_run(report: CheckReport, result: dict[str, Any], source: str) -> list[Diagnosis]:
    """Diagnoses for a file that finished; the report's numbers are already filled in."""
    missing = _names_diagnosis(result)
    if missing:
        return [missing]
    rebound = _rebound(result["params"])
    if rebound:
        return [_rebound_diagnosis(rebound, result["params"])]
    trajectory = _trajectory_diagnosis(result["losses"], source)
    if trajectory:
        return [trajectory]
    fit = _fit_diagnosis(report)
    return [fit] if fit else []


def _fill_numbers(report: CheckReport, result: dict[str, Any] | None, lesson: Data) -> None:
    report.w_ls, report.b_ls = least_squares(*_data(result, lesson))
    if result is None:
        return
    params = result.get("params", {})
    report.w = params.get("w", {}).get("value")
    report.b = params.get("b", {}).get("value")
    losses = result.get("losses") or []
    report.steps = result.get("loss_count") or len(losses)
    if losses:
        report.first_loss, report.final_loss = losses[0], losses[-1]
        finite = all(math.isfinite(v) for v in losses)
        report.loss_falls = finite and len(losses) >= 2 and losses[-1] < losses[0]


def _diagnose(run: _Run, timeout: float, report: CheckReport, source: str) -> list[Diagnosis]:
    result = run.result
    if run.killed or (result and result["timed_out"]):
        return [_time_limit_diagnosis(timeout, report.steps if result else None)]
    if result is None:
        return [
            Diagnosis(
                "crashed",
                "The Python process ended abruptly",
                f"Python exited with status {run.returncode} before w, b and losses could be "
                "read (a hard crash or os._exit). The last output is shown below.",
            )
        ]
    if result["error"]:
        return [_error_diagnosis(result["error"], result["params"], source)]
    return _judge_run(report, result, source)


def check_file(path: Path, lesson: Data, timeout: float = DEFAULT_TIMEOUT,
               name: str = "4") -> CheckReport:
    """Run the learner's training file in its own process and judge the result against the
    least-squares fit of its data (or of `lesson`, the exercise's own X and y_true)."""
    report = CheckReport(path=path, passed=False)
    if not path.is_file():
        report.diagnoses.append(
            Diagnosis(
                "file_not_found",
                "File not found",
                f"There is no file at {path}. Write the scaffold with "
                f"`autograd-tutor exercise {name} --code`, or pass the path of your "
                "training loop.",
            )
        )
        return report
    source = path.read_text(encoding="utf-8", errors="replace")
    run = _run_child(path.resolve(), timeout)
    report.output = run.output
    report.warnings = list(run.result.get("warnings", [])) if run.result else []
    _fill_numbers(report, run.result, lesson)
    report.diagnoses = _diagnose(run, timeout, report, source)
    report.passed = not report.diagnoses and report.loss_falls and _close(report)
    return report


# --- plain text for the CLI ---------------------------------------------------------------


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _param_line(name: str, got: float | None, target: float | None) -> str:
    line = f"{name} = {_number(got)}   least squares {_number(target)}"
    if got is None or target is None:
        return line
    off = abs(got - target)
    verdict = "within" if off <= TOLERANCE else "outside"
    return f"{line}   off by {off:.4f} ({verdict} {TOLERANCE})"


def format_report(report: CheckReport, name: str = "4") -> list[str]:
    """The report as plain lines (no markup), for the CLI to print or style."""
    verdict = "passed" if report.passed else "not passed yet"
    lines = [f"check {name}: {report.path}: {verdict}"]
    if report.first_loss is not None and report.final_loss is not None:
        trend = "falls" if report.loss_falls else "does not fall"
        lines.append(
            f"loss {report.first_loss:.4f} -> {report.final_loss:.4f} over {report.steps} "
            f"steps ({trend})"
        )
    if report.w is not None or report.b is not None:
        lines.append(_param_line("w", report.w, report.w_ls))
        lines.append(_param_line("b", report.b, report.b_ls))
    for diagnosis in report.diagnoses:
        lines.append(f"problem: {diagnosis.title}")
        lines.append(f"  {diagnosis.explanation}")
    lines.extend(f"warning: {warning}" for warning in report.warnings)
    if report.output and any(d.name in ("crashed", "error") for d in report.diagnoses):
        lines.append("last output:")
        lines.extend(f"  {line}" for line in report.output.splitlines())
    return lines
