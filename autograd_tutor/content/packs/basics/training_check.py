"""Exercise 4's coding part: what a run of the learner's training loop means.

The engine runs the learner's file and the solution (train_loop_solution.py) in its
sandbox and hands these functions what each left: `run["values"][name]` describes one name
(`number`, `numbers`, `length`, `problem`, `list_problem`, and for a tensor `requires_grad`,
`is_leaf`, `shape`), `run["error"]` what the file raised, `run["source"]` its text. Each
diagnosis returns a dict (name, title, explanation) or None; `summary` gives the lines and
fields of the report. w and b are judged against the least-squares fit of the data (by
numpy's polyfit, a method of its own, so the check does not lean on the lesson's
hand-derived arithmetic): the file's own X and y_true when usable, else the solution's.
"""

from __future__ import annotations

import ast
import itertools
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

STEPS = 200
TOLERANCE = 0.05

LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation"
BACKWARD_TWICE = "Trying to backward through the graph a second time"
NO_GRAD_FN = "does not require grad and does not have a grad_fn"


Diagnosis = dict[str, str]  # name, title, explanation: one recognised problem
Data = tuple[list[float], list[float]]


def _diagnosis(name: str, title: str, explanation: str) -> Diagnosis:
    return {"name": name, "title": title, "explanation": explanation}


@dataclass
class CheckReport:
    """The numbers of one run, as the report shows them."""

    loss_falls: bool = False
    w: float | None = None
    b: float | None = None
    w_ls: float | None = None
    b_ls: float | None = None
    first_loss: float | None = None
    final_loss: float | None = None
    steps: int = 0
    tolerance: float = TOLERANCE


class FitError(ValueError):
    """The least-squares line of the data can't be computed in floating point; the message
    says why, in the learner's terms."""


def least_squares(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """The exact least-squares line, by a method of its own (numpy's polyfit), so the check
    does not lean on the lesson's hand-derived arithmetic. Raises FitError for data whose
    fit floating point can't compute (values that overflow when squared, or lie so close
    together that their spread vanishes), before LAPACK sees it."""
    import numpy as np

    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise FitError("X and y_true must be two lists of the same length, at least 2")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise FitError("X or y_true contains inf or nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # polyfit's RankWarning: no single line fits
            with np.errstate(over="raise", divide="raise", invalid="raise"):
                slope, intercept = np.polyfit(x, y, 1)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError, Warning):
        raise FitError(_fit_trouble(x, y)) from None
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise FitError(_fit_trouble(x, y))
    return float(slope), float(intercept)


def _fit_trouble(x: Any, y: Any) -> str:
    import numpy as np

    largest = float(max(np.abs(x).max(), np.abs(y).max()))
    if largest > 1e150:
        return (f"the values are too large (up to {largest:.3g}): squaring them overflows, "
                "since no float goes past about 1.8e308")
    spread = float(x.max() - x.min())
    if spread * spread == 0.0:
        return (f"the X values lie too close together (they span only {spread:.3g}): "
                "squared, their spread is smaller than the smallest float and rounds to 0, "
                "so no one line fits better than another")
    return (f"the X values are too nearly equal (they span {spread:.3g} around "
            f"{float(x.mean()):.3g}) for a fit that floating point can settle")




# --- the run, in the terms of the training loop ---------------------------------------------


def _result(run: dict[str, Any]) -> dict[str, Any]:
    """What the file left, as w and b (parameters), losses and the data."""
    values = run["values"]
    params = {}
    for name in ("w", "b"):
        if name not in values:
            continue
        info = values[name]
        params[name] = {"type": info["type"], "value": info["number"], "problem": info["problem"]}
        if "is_leaf" in info:
            params[name]["requires_grad"] = info["requires_grad"]
            params[name]["is_leaf"] = info["is_leaf"]
    losses = values.get("losses")
    return {
        "error": run["error"],
        "params": params,
        "has_losses": losses is not None,
        "losses": losses["numbers"] if losses else None,
        "losses_problem": losses["list_problem"] if losses else None,
        "loss_count": losses["length"] if losses else 0,
        "X": values["X"]["numbers"] if "X" in values else None,
        "y_true": values["y_true"]["numbers"] if "y_true" in values else None,
    }


def _lesson(reference: dict[str, Any] | None) -> Data | None:
    """The solution's X and y_true: the exercise's own data."""
    if reference is None:
        return None
    values = reference["values"]
    xs = values.get("X", {}).get("numbers")
    ys = values.get("y_true", {}).get("numbers")
    return (xs, ys) if xs is not None and ys is not None else None


def _data(result: dict[str, Any] | None, lesson: Data | None) -> tuple[Data | None, bool]:
    """The file's own X and y_true when it leaves usable ones, else the lesson's; and
    whether they are the file's own."""
    x = result.get("X") if result else None
    y = result.get("y_true") if result else None
    if x and y and len(x) == len(y) >= 2 and max(x) > min(x):
        return (x, y), True
    return lesson, False


# --- judging ----------------------------------------------------------------------------


def _rises(losses: list[float]) -> int:
    """How often the loss went up by more than float noise."""
    return sum(1 for a, b in itertools.pairwise(losses) if b > a * (1 + 1e-6) + 1e-12)


def _zeroed_names(source: str) -> set[str] | None:
    """Names whose .grad the file resets; None if it resets something it names otherwise
    (an optimizer, a loop over parameters), which counts as resetting everything."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # what Python reports
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


class _Line(NamedTuple):
    """A line of the learner's file: its number and its text."""

    number: int
    code: str

    def __str__(self) -> str:
        return f"line {self.number} (`{self.code}`)"


def _line(source: str, node: ast.AST) -> _Line:
    number = getattr(node, "lineno", 0)
    lines = source.splitlines()
    code = lines[number - 1].strip() if 0 < number <= len(lines) else ""
    return _Line(number, code)


def _tree(source: str) -> ast.AST | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # what Python reports
        return None


READ_OUTS = ("item", "tolist", "numpy", "cpu")  # `w.detach().item()` only reads a value


def _detached(source: str) -> list[tuple[str, _Line]]:
    """Where a file that calls backward() computes with `w.detach()` or `b.detach()` (or
    detach_()): each name, with the first line that does. A detach that only reads a value
    out (`.item()`, `.numpy()`) or is printed is not computing."""
    tree = _tree(source)
    if tree is None or not _calls_backward(tree):
        return []
    found: dict[str, _Line] = {}
    for statement in ast.walk(tree):
        if not isinstance(statement, ast.Assign | ast.AugAssign | ast.AnnAssign):
            continue
        parents = {child: node for node in ast.walk(statement)
                   for child in ast.iter_child_nodes(node)}
        for node in ast.walk(statement):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("detach", "detach_")
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in ("w", "b")):
                continue
            above = parents.get(node)
            if isinstance(above, ast.Attribute) and above.attr in READ_OUTS:
                continue
            name = node.func.value.id
            line = _line(source, node)
            if name not in found or line.number < found[name].number:
                found[name] = line
    return sorted(found.items())


def _detached_diagnosis(detached: list[tuple[str, _Line]], what: str) -> Diagnosis:
    names = " and ".join(name for name, _ in detached)
    name, line = detached[0]
    return _diagnosis(
        "detached",
        f"{names} cut off from the loss by detach()",
        f"{what} loss.backward() did run, but {line} uses `{name}.detach()`: a tensor with "
        f"{name}'s value that autograd does not track (Exercise 5). No gradient flows from "
        f"the loss back to {name}, so {name}.grad stays None. Use {name} itself in the "
        f"forward pass: `y_pred = w * X + b`.",
    )


def _updates(node: ast.AST) -> bool:
    """Whether a statement updates w or b: `w -= ...`, `w.data -= ...`, `w.sub_(...)`, an
    assignment to w, or an optimizer's step()."""
    for part in ast.walk(node):
        if isinstance(part, ast.AugAssign | ast.Assign):
            targets = part.targets if isinstance(part, ast.Assign) else [part.target]
            for target in targets:
                while isinstance(target, ast.Attribute) and target.attr == "data":
                    target = target.value
                if isinstance(target, ast.Name) and target.id in ("w", "b"):
                    return True
        if isinstance(part, ast.Call) and isinstance(part.func, ast.Attribute):
            if part.func.attr == "step" or (
                    part.func.attr in ("sub_", "add_", "copy_")
                    and _owner_name(part.func.value) in ("w", "b")):
                return True
    return False


def _owner_name(expr: ast.expr) -> str | None:
    while isinstance(expr, ast.Attribute) and expr.attr == "data":
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _calls_backward(node: ast.AST) -> bool:
    return any(isinstance(part, ast.Call) and isinstance(part.func, ast.Attribute)
               and part.func.attr == "backward" for part in ast.walk(node))


def _zeroed_before_update(source: str) -> _Line | None:
    """The first gradient reset that a loop runs after loss.backward() and before the
    update of w and b, so that the update uses a zero (or None) gradient."""
    tree = _tree(source)
    for loop in ast.walk(tree) if tree is not None else ():
        if not isinstance(loop, ast.For | ast.While):
            continue
        backward = next((i for i, s in enumerate(loop.body) if _calls_backward(s)), None)
        if backward is None:
            continue
        for statement in loop.body[backward + 1:]:
            if _updates(statement):
                break
            reset = next((part for part in ast.walk(statement)
                          if _reset_target(part) is not None), None)
            if reset is not None:
                return _line(source, reset)
    return None


def _zeroed_early_diagnosis(line: _Line, what: str) -> Diagnosis:
    return _diagnosis(
        "zeroed_before_update",
        "Gradients reset before the update",
        f"{what} loss.backward() runs, but {line} resets the gradients after it and "
        "before the update, so the update finds nothing to subtract. The order is: "
        "loss.backward(), then the update inside torch.no_grad(), then reset the gradients "
        "for the next step.",
    )


def _rebinds(source: str) -> set[str]:
    """w and b that the file binds to a new tensor after creating them: a name assigned from
    its own old value (`w = w - learning_rate * w.grad`) or assigned more than once. An
    update in place (`w -= ...`) is not an assignment of the name."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # what Python reports
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
    return _diagnosis(
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
        return _diagnosis(
            "syntax_error",
            "Python can't read the file",
            f"{kind} at {where}: {message}. Nothing ran: Python reads the whole file before "
            "running any of it. Check brackets, colons and indentation on that line and the "
            "one before it.",
        )
    if kind == "NotImplementedError" and message.startswith("TODO"):
        return _diagnosis(
            "unfinished",
            "The TODOs are not filled in yet",
            f"The file stops at the first unfinished step: {message}. Replace each "
            "`todo(...)` call with your code, and write the steps that are only comments "
            "(backward, update, zero).",
        )
    if LEAF_INPLACE in message:
        return _diagnosis(
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
        early = _zeroed_before_update(source)
        if early is not None:  # `w.grad = None` between backward() and the update
            return _zeroed_early_diagnosis(early, f"{kind} at {where}: {message}.")
        detached = _detached(source)
        if detached:
            return _detached_diagnosis(detached, f"{kind} at {where}: {message}.")
        return _diagnosis(
            "no_backward",
            ".grad is None: backward() hasn't run",
            f"{kind} at {where}: {message}. A leaf's .grad stays None until loss.backward() "
            "runs. Call loss.backward() after computing the loss and before the update.",
        )
    if BACKWARD_TWICE in message:
        return _diagnosis(
            "graph_reused",
            "Backward through the same graph twice",
            f"{kind} at {where}: backward() frees the graph it walks, so each step needs a "
            "fresh one. Compute y_pred and loss inside the loop, from the current w and b.",
        )
    return _diagnosis("error", f"The file raised {kind}", f"{kind} at {where}: {message}")


def _time_limit_diagnosis(timeout: float, count: int | None) -> Diagnosis:
    done = "" if count is None else f", with {count} losses recorded (the loop needs {STEPS})"
    return _diagnosis(
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
        return _diagnosis(
            "missing_names",
            "The file doesn't define " + ", ".join(missing),
            f"The file ran, but left no module-level {', '.join(missing)}. The checker reads "
            "`w` and `b` (the parameter tensors) and `losses` (one loss per step) after your "
            "file runs: keep those names, outside any function.",
        )
    params = result["params"]
    if result["losses"] is None or any(params[n]["value"] is None for n in ("w", "b")):
        problems = [params[n]["problem"] for n in ("w", "b") if params[n]["problem"]]
        problems += [result["losses_problem"]] if result["losses_problem"] else []
        found = "".join(f"{problem}. " for problem in problems)
        return _diagnosis(
            "bad_values",
            "w, b or losses don't hold numbers",
            f"{found}w and b should be one-number tensors and losses a list of floats "
            "(`losses.append(loss.item())` each step).",
        )
    return None


def _bad_data_diagnosis(problem: str, own: bool) -> Diagnosis:
    if not own:  # the lesson's own data: not the learner's doing
        return _diagnosis(
            "bad_data",
            "The least-squares target can't be computed",
            f"The checker could not compute the least-squares fit of the lesson's data: "
            f"{problem}. Your file is not to blame; please report this.",
        )
    return _diagnosis(
        "bad_data",
        "Your X and y_true can't be fitted in floating point",
        "The checker judges w and b against the least-squares line through your file's X "
        f"and y_true, but that line can't be computed with floats: {problem}. Keep the "
        "exercise's data, `X = torch.linspace(-3, 3, 20)` and "
        "`y_true = 2 * X + 1 + torch.randn(20) * 0.3`, or values of an ordinary size.",
    )


def _trajectory_diagnosis(losses: list[float], source: str) -> Diagnosis | None:
    """What the shape of the loss curve says went wrong, if anything."""
    if len(losses) < 2:
        return None
    if not all(math.isfinite(v) for v in losses):
        return _diagnosis(
            "diverged",
            "The loss blew up",
            "The loss reached inf or nan: each update made the parameters larger without "
            "bound. Check that the update subtracts the gradient, that gradients are reset "
            "every step, and that learning_rate is small (the notebook uses 0.01).",
        )
    rises = _rises(losses)
    if losses[1] > losses[0] and rises >= 0.9 * (len(losses) - 1):
        return _diagnosis(
            "sign_flipped",
            "The update goes uphill",
            f"The loss rose from the first step ({losses[0]:.4g} -> {losses[1]:.4g}) and kept "
            f"rising, to {losses[-1]:.4g}: the update adds the gradient instead of subtracting "
            "it. The gradient points where the loss grows fastest, so gradient descent steps "
            "against it: `w -= learning_rate * w.grad`.",
        )
    if max(losses) - min(losses) <= 1e-9 * max(1.0, abs(losses[0])):
        early = _zeroed_before_update(source)
        if early is not None:
            return _zeroed_early_diagnosis(
                early, f"The loss was {losses[0]:.4g} at every step: w and b never moved.")
        return _diagnosis(
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
        return _diagnosis(
            "gradients_not_zeroed",
            "Gradients are never zeroed",
            f"The loss went up {rises} times {swing}, and nothing resets {which}. backward() "
            "adds into .grad instead of replacing it (Exercise 3), so each update uses the "
            "sum of every gradient so far: the parameters overshoot and swing back and forth "
            "instead of settling. Reset the gradients after each update: "
            "`w.grad.zero_()` and `b.grad.zero_()` (or optimizer.zero_grad()).",
        )
    return _diagnosis(
        "oscillates",
        "The loss goes up and down",
        f"The loss went up {rises} times {swing}. With the gradients reset every step, a "
        "learning rate that is too large makes each step overshoot the minimum; the notebook "
        "uses 0.01. Also check that both w.grad and b.grad are reset every step.",
    )


def _fit_diagnosis(report: CheckReport) -> Diagnosis | None:
    if report.steps != STEPS:
        return _diagnosis(
            "step_count",
            f"{report.steps} training steps instead of {STEPS}",
            f"losses has {report.steps} entries; the exercise trains for {STEPS} steps and "
            "appends one loss per step (`losses.append(loss.item())`).",
        )
    if not report.loss_falls:
        return _diagnosis(
            "loss_not_falling",
            "The loss doesn't fall",
            "The last loss is not lower than the first. Check the forward pass, the loss, "
            "and that the update subtracts learning_rate * grad.",
        )
    if not _close(report):
        return _diagnosis(
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




@dataclass
class _Fit:
    problem: str | None  # why the least-squares line can't be computed, if it can't
    own: bool  # whether the data came from the learner's file


def _fill_numbers(report: CheckReport, result: dict[str, Any] | None,
                  lesson: Data | None) -> _Fit:
    data, own = _data(result, lesson)
    fit = _Fit(None, own)
    if data is None:
        fit.problem = "the exercise's solution left no X and y_true"
    else:
        try:
            report.w_ls, report.b_ls = least_squares(*data)
        except FitError as error:
            fit.problem = str(error)
    if result is None:
        return fit
    params = result.get("params", {})
    report.w = params.get("w", {}).get("value")
    report.b = params.get("b", {}).get("value")
    losses = result.get("losses") or []
    report.steps = result.get("loss_count") or len(losses)
    if losses:
        report.first_loss, report.final_loss = losses[0], losses[-1]
        finite = all(math.isfinite(v) for v in losses)
        report.loss_falls = finite and len(losses) >= 2 and losses[-1] < losses[0]
    return fit


def _numbers(run: dict[str, Any], reference: dict[str, Any] | None
             ) -> tuple[CheckReport, dict[str, Any] | None, _Fit]:
    result = _result(run) if run["read"] else None
    report = CheckReport()
    fit = _fill_numbers(report, result, _lesson(reference))
    return report, result, fit


# --- what the engine calls ([coding] of 4-training.toml) ---------------------------------


def time_limit(run: dict[str, Any], reference: dict[str, Any] | None) -> Diagnosis | None:
    """The file ran past its time limit: how far the loop got."""
    if run["outcome"] != "time_limit":
        return None
    report, _, _ = _numbers(run, reference)
    return _time_limit_diagnosis(run["limit"], report.steps if run["read"] else None)


def training_error(run: dict[str, Any], reference: dict[str, Any] | None) -> Diagnosis | None:
    """The file raised: the training loop's classic mistakes."""
    if run["outcome"] != "error":
        return None
    result = _result(run)
    return _error_diagnosis(result["error"], result["params"], run["source"])


def training_result(run: dict[str, Any], reference: dict[str, Any] | None) -> Diagnosis | None:
    """The file finished: are w and b at the least-squares fit, and if not, why not."""
    if run["outcome"] != "finished":
        return None
    report, result, fit = _numbers(run, reference)
    assert result is not None
    found = _judge_run(report, result, run["source"], fit)
    return found[0] if found else None


def summary(run: dict[str, Any], reference: dict[str, Any] | None) -> dict[str, Any]:
    """The loss's course and w, b beside the least-squares fit: lines and fields."""
    report, _, _ = _numbers(run, reference)
    return {"lines": _lines(report), "fields": asdict(report)}


def _judge_run(report: CheckReport, result: dict[str, Any], source: str,
               fit: _Fit) -> list[Diagnosis]:
    """Diagnoses for a file that finished; the report's numbers are already filled in."""
    missing = _names_diagnosis(result)
    if missing:
        return [missing]
    if fit.problem:
        return [_bad_data_diagnosis(fit.problem, fit.own)]
    rebound = _rebound(result["params"])
    if rebound:
        return [_rebound_diagnosis(rebound, result["params"])]
    trajectory = _trajectory_diagnosis(result["losses"], source)
    if trajectory:
        return [trajectory]
    off = _fit_diagnosis(report)
    return [off] if off else []


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _param_line(name: str, got: float | None, target: float | None) -> str:
    line = f"{name} = {_number(got)}   least squares {_number(target)}"
    if got is None or target is None:
        return line
    off = abs(got - target)
    verdict = "within" if off <= TOLERANCE else "outside"
    return f"{line}   off by {off:.4f} ({verdict} {TOLERANCE})"


def _lines(report: CheckReport) -> list[str]:
    lines = []
    if report.first_loss is not None and report.final_loss is not None:
        trend = "falls" if report.loss_falls else "does not fall"
        lines.append(
            f"loss {report.first_loss:.4f} -> {report.final_loss:.4f} over {report.steps} "
            f"steps ({trend})"
        )
    if report.w is not None or report.b is not None:
        lines.append(_param_line("w", report.w, report.w_ls))
        lines.append(_param_line("b", report.b, report.b_ls))
    return lines
