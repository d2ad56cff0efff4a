"""The training-loop checker, for a lesson's coding mode (`[coding] checker = "training-loop"`,
as Exercise 4 declares): write its scaffold, then check a finished file.

`check_file` runs the learner's file in the sandbox's child process (engine.sandbox) with
a time limit, as their own program: the separation is about hangs and crashes, not about
trust. The child (`_child_run`, below) runs the file, then returns `w`, `b`, `losses`, `X`
and `y_true`, which the sandbox sends back on its own channel, so nothing the file prints,
and nothing it writes where the result used to go, can block or forge it. The sandbox kills
the child's whole process group when the check ends, however it ends, so programs the
learner's file starts don't outlive the check.

This side judges what came back against a least-squares fit computed independently (numpy's
polyfit), and names the classic mistakes. Whatever the learner's file leaves behind (a
generator, an int too large for a float, data no float fit can handle) ends in a diagnosis,
never in a traceback of the checker's own.

The module imports no torch, so the CLI can list and write scaffolds cheaply.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import math
import signal
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from autograd_tutor.engine import sandbox

STEPS = 200
TOLERANCE = 0.05
DEFAULT_TIMEOUT = 20.0
# Extra seconds before the hard kill, after the file's own time limit. Both count from the
# child's signal that it is ready (Python and torch started), however long that took.
STARTUP_GRACE = 15.0
# How many values of a list the child sends back; an endless loop can grow `losses` a lot.
MAX_VALUES = 10_000
# Reading one of w, b, losses, X, y_true runs the learner's code (__float__, a generator);
# each read gets this long.
READ_LIMIT = 2.0

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
    result: dict[str, Any] | None  # what the child sent back; None if it never got that far
    killed: bool  # stopped by the hard time limit
    returncode: int | None
    output: str
    # Why there is no result although the child ended: "not_started" (the checker's own
    # child failed before running the file), "foreign" (the channel held something the
    # checker didn't write), "checker_error" (the checker failed reading what the file left,
    # `detail` says how), or None.
    problem: str | None = None
    detail: str = ""
    stopped: int | None = None  # the signal that stopped the check, if its handler returned


def _child_env() -> dict[str, str]:
    return sandbox.child_environment()


def _run_child(path: Path, timeout: float) -> _Run:
    """The learner's file in the sandbox's child process (see engine.sandbox): the hard kill
    comes STARTUP_GRACE seconds after the file's own time limit, counted from the moment the
    child says it is ready (torch imported), however long it took to start."""
    outcome = sandbox.run_function(_CHILD_FUNCTION, [str(path), timeout], limit=timeout,
                                   grace=STARTUP_GRACE, env=_child_env())
    return _as_run(outcome)


_CHILD_FUNCTION = "autograd_tutor.engine.checker:_child_run"


def _as_run(outcome: sandbox.Outcome) -> _Run:
    """The sandbox's outcome in the checker's terms."""
    if outcome.stopped is not None:
        return _Run(None, False, None, "", stopped=outcome.stopped)
    result, problem, detail = None, outcome.problem, outcome.detail
    if problem == "child_error":
        problem = "checker_error"
    elif outcome.returned:
        result = _clean_result(outcome.value)
        if result is None:
            problem, detail = "checker_error", "what came back was not what the checker expects"
        elif "checker_error" in result:
            problem, detail, result = "checker_error", result["checker_error"], None
    return _Run(result, outcome.killed, outcome.returncode, outcome.output, problem, detail)


def _clean_result(raw: Any) -> dict[str, Any] | None:
    """The child's result with every field of the expected type, or None. The child runs
    the learner's code, which can change anything in that process; nothing it sends back is
    used unchecked."""
    try:
        return _checked_result(raw)
    except (TypeError, ValueError, KeyError):
        return None


def _typed(value: Any, *types: type) -> Any:
    if type(value) not in types:
        raise TypeError(value)
    return value


def _number_or_none(value: Any) -> float | None:
    return None if value is None else float(_typed(value, float, int))


def _numbers_or_none(value: Any) -> list[float] | None:
    return None if value is None else [float(_typed(v, float, int)) for v in _typed(value, list)]


def _text_or_none(value: Any) -> str | None:
    return None if value is None else _typed(value, str)


def _checked_result(raw: Any) -> dict[str, Any]:
    _typed(raw, dict)
    if "checker_error" in raw:
        return {"checker_error": str(raw["checker_error"])}
    error = raw["error"]
    if error is not None:
        _typed(error, dict)
        line = error.get("line")
        error = {
            "type": _typed(error["type"], str),
            "message": _typed(error["message"], str),
            "line": None if line is None else _typed(line, int),
            "code": _typed(error.get("code") or "", str),
        }
    params = {}
    for name, info in _typed(raw["params"], dict).items():
        if name not in ("w", "b"):
            continue
        _typed(info, dict)
        clean = {
            "type": _typed(info["type"], str),
            "value": _number_or_none(info["value"]),
            "problem": _text_or_none(info.get("problem")),
        }
        if "is_leaf" in info or "requires_grad" in info:
            clean["requires_grad"] = _typed(info["requires_grad"], bool)
            clean["is_leaf"] = _typed(info["is_leaf"], bool)
        params[name] = clean
    return {
        "error": error,
        "timed_out": _typed(raw["timed_out"], bool),
        "warnings": [_typed(w, str) for w in _typed(raw["warnings"], list)][:5],
        "params": params,
        "has_losses": _typed(raw["has_losses"], bool),
        "losses": _numbers_or_none(raw["losses"]),
        "losses_problem": _text_or_none(raw.get("losses_problem")),
        "loss_count": _typed(raw["loss_count"], int),
        "X": _numbers_or_none(raw["X"]),
        "y_true": _numbers_or_none(raw["y_true"]),
    }


# --- the child process --------------------------------------------------------------------


_TimeLimit = sandbox.TimeLimit


def _arm(seconds: float) -> None:
    # Without setitimer (Windows) the parent's hard kill is the only limit.
    sandbox.arm(seconds)


def _disarm() -> None:
    sandbox.disarm()


def _child_run(path: str, limit: float) -> dict[str, Any]:
    """In the sandbox's child: run the learner's file and return what it left (the
    sandbox sends it back on its channel and ends the process)."""
    sys.argv = [path]  # as `python FILE` sets it
    try:
        return _execute(path, limit)
    except BaseException as error:  # a fault of the checker's own, not of the learner's
        return {"checker_error": _error_text(error)}


def _execute(path: str, limit: float) -> dict[str, Any]:
    sys.path.insert(0, str(Path(path).resolve().parent))  # as `python FILE` would set it
    # Import torch before the clock starts, so the time limit measures the file, not torch.
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    sandbox.ready()  # the hard time limit counts from here
    ns: dict[str, Any] = {"__name__": "__main__", "__file__": path, "__builtins__": builtins}
    result: dict[str, Any] = {"error": None, "timed_out": False}
    saved_builtins = dict(vars(builtins))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                code = compile(Path(path).read_bytes(), path, "exec")
                _arm(limit)
                exec(code, ns)
            finally:
                _disarm()
        except _TimeLimit:
            result["timed_out"] = True
        except SystemExit as exit_:
            code_ = exit_.code
            if not (code_ is None or (type(code_) in (int, bool) and code_ == 0)):
                result["error"] = _describe_error(exit_, path)
        except BaseException as error:  # the learner's error is the data we report
            result["error"] = _describe_error(error, path)
    # The checker reads the results with float(), len(), ...: as Python has them, not as
    # the file may have left them (`float = ...` in a file only rebinds its own name).
    for key, value in saved_builtins.items():
        if vars(builtins).get(key) is not value:
            setattr(builtins, key, value)
    messages, _ = _guarded(lambda: sorted({_safe_text(w.message) for w in caught})[:5])
    result["warnings"] = messages or []
    result.update(_read_namespace(ns))
    return result


_safe_text = sandbox.safe_text


def _error_text(error: BaseException) -> str:
    if isinstance(error, _TimeLimit):
        return f"took more than {READ_LIMIT:g} s"
    message = _safe_text(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _describe_error(error: BaseException, path: str) -> dict[str, Any]:
    info: dict[str, Any] = {"type": type(error).__name__, "message": _safe_text(error)}
    if isinstance(error, SyntaxError):
        info.update(message=_safe_text(error.msg), line=error.lineno,
                    code=_safe_text(error.text or "").strip())
        if type(info["line"]) is not int:
            info["line"] = None
        return info
    try:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
    except BaseException:
        frames = []
    info["line"] = frames[-1].lineno if frames else None
    info["code"] = (frames[-1].line or "").strip() if frames else ""
    return info


def _guarded(read: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """`read()`, which runs the learner's code, under a time limit of READ_LIMIT: its value,
    or the exception it raised (a _TimeLimit if it took too long)."""
    try:
        try:
            _arm(READ_LIMIT)
            return read(), None
        finally:
            _disarm()
    except BaseException as error:
        return None, error


def _torch_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _to_float(value: Any) -> float:
    number = float(value.detach() if _torch_tensor(value) else value)
    if type(number) is not float:
        raise TypeError(f"float() gave a {type(number).__name__}")
    return number


class _NotAList(Exception):
    pass


class _BadItem(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(index)
        self.index, self.error = index, error


def _read_floats(value: Any) -> list[float]:
    """Up to MAX_VALUES numbers from a list, a generator or a tensor."""
    if _torch_tensor(value):
        value = value.detach().reshape(-1).tolist()
    try:
        items = iter(value)
    except TypeError:
        raise _NotAList from None
    numbers = []
    for index, item in enumerate(itertools.islice(items, MAX_VALUES)):
        try:
            numbers.append(_to_float(item))
        except _TimeLimit:
            raise
        except BaseException as error:
            raise _BadItem(index, error) from None
    return numbers


def _floats(name: str, value: Any) -> tuple[list[float] | None, str | None]:
    """The numbers in `value`, or None and what is wrong, in the learner's terms."""
    numbers, error = _guarded(lambda: _read_floats(value))
    if error is None:
        return numbers, None
    kind = type(value).__name__
    if isinstance(error, _NotAList):
        return None, f"`{name}` is a {kind}, not a list of numbers"
    if isinstance(error, _BadItem):
        return None, f"`{name}[{error.index}]` is not a number ({_error_text(error.error)})"
    if isinstance(error, _TimeLimit):
        return None, f"Reading the values of `{name}` (a {kind}) {_error_text(error)}"
    return None, f"Reading the values of `{name}` (a {kind}) raised {_error_text(error)}"


def _float_problem(name: str, value: Any, error: BaseException) -> str:
    if isinstance(error, OverflowError) and isinstance(value, int):
        try:
            sign = "-" if value < 0 else ""
            digits = int(abs(value).bit_length() * math.log10(2))
            return (f"`{name}` is an int of about {sign}10**{digits}, too large for a "
                    "float (no float goes past about 1.8e308)")
        except BaseException:
            pass
    if isinstance(error, _TimeLimit):
        return f"`float({name})` {_error_text(error)}"
    return f"`float({name})` raised {_error_text(error)}"


def _length(value: Any, fallback: int) -> int:
    count, error = _guarded(lambda: len(value))
    return count if error is None and type(count) is int else fallback


def _describe_param(name: str, value: Any) -> dict[str, Any]:
    # Reading .grad of a non-leaf warns, so only these attributes are touched.
    info: dict[str, Any] = {"type": type(value).__name__, "value": None, "problem": None}
    number, error = _guarded(lambda: _to_float(value))
    if error is None:
        info["value"] = number
    else:
        info["problem"] = _float_problem(name, value, error)
    if _torch_tensor(value):
        flags, error = _guarded(lambda: (bool(value.requires_grad), bool(value.is_leaf)))
        if error is None:
            info["requires_grad"], info["is_leaf"] = flags
    return info


def _read_namespace(ns: dict[str, Any]) -> dict[str, Any]:
    losses, losses_problem = _floats("losses", ns["losses"]) if "losses" in ns else (None, None)
    return {
        "params": {name: _describe_param(name, ns[name]) for name in ("w", "b") if name in ns},
        "has_losses": "losses" in ns,
        "losses": losses,
        "losses_problem": losses_problem,
        "loss_count": _length(ns.get("losses"), len(losses or [])),
        "X": _floats("X", ns["X"])[0] if "X" in ns else None,
        "y_true": _floats("y_true", ns["y_true"])[0] if "y_true" in ns else None,
    }


# --- the least-squares target -------------------------------------------------------------


Data = tuple[list[float], list[float]]


def _data(result: dict[str, Any] | None, lesson: Data) -> tuple[Data, bool]:
    """The file's own X and y_true when it leaves usable ones, else the lesson's; and
    whether they are the file's own."""
    x = result.get("X") if result else None
    y = result.get("y_true") if result else None
    if x and y and len(x) == len(y) >= 2 and max(x) > min(x):
        return (x, y), True
    return lesson, False


# --- judging ------------------------------------------------------------------------------


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
    return Diagnosis(
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
    return Diagnosis(
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
        early = _zeroed_before_update(source)
        if early is not None:  # `w.grad = None` between backward() and the update
            return _zeroed_early_diagnosis(early, f"{kind} at {where}: {message}.")
        detached = _detached(source)
        if detached:
            return _detached_diagnosis(detached, f"{kind} at {where}: {message}.")
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
        problems = [params[n]["problem"] for n in ("w", "b") if params[n]["problem"]]
        problems += [result["losses_problem"]] if result["losses_problem"] else []
        found = "".join(f"{problem}. " for problem in problems)
        return Diagnosis(
            "bad_values",
            "w, b or losses don't hold numbers",
            f"{found}w and b should be one-number tensors and losses a list of floats "
            "(`losses.append(loss.item())` each step).",
        )
    return None


def _bad_data_diagnosis(problem: str, own: bool) -> Diagnosis:
    if not own:  # the lesson's own data: not the learner's doing
        return Diagnosis(
            "bad_data",
            "The least-squares target can't be computed",
            f"The checker could not compute the least-squares fit of the lesson's data: "
            f"{problem}. Your file is not to blame; please report this.",
        )
    return Diagnosis(
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
        early = _zeroed_before_update(source)
        if early is not None:
            return _zeroed_early_diagnosis(
                early, f"The loss was {losses[0]:.4g} at every step: w and b never moved.")
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


@dataclass
class _Fit:
    problem: str | None  # why the least-squares line can't be computed, if it can't
    own: bool  # whether the data came from the learner's file


def _fill_numbers(report: CheckReport, result: dict[str, Any] | None, lesson: Data) -> _Fit:
    data, own = _data(result, lesson)
    fit = _Fit(None, own)
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


def _ended_diagnosis(run: _Run) -> Diagnosis:
    """The child ended without a result of the checker's own."""
    if run.problem == "not_started":
        last = run.output.strip().splitlines()[-1:] or ["no message"]
        return Diagnosis(
            "checker_failed",
            "The checker could not start",
            f"The checker's Python process stopped before it ran your file ({last[0]}). "
            "Your file is not to blame: check that autograd-tutor and its dependencies are "
            "installed in this Python.",
        )
    if run.problem == "checker_error":
        return Diagnosis(
            "checker_failed",
            "The checker failed reading what your file left",
            f"Your file ran, but the checker failed reading its results: {run.detail}. "
            "If your file changes Python itself (its built-in functions, or modules such "
            "as json), leave those alone; if not, this is a bug in autograd-tutor: please "
            "report it.",
        )
    code = run.returncode
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
        why = " (a crash in a native library, or your file killed its own process)"
    elif code == 0:
        how, why = "ended", (": something in your file ended Python itself, with os._exit(), "
                             "or closed the files Python had open (os.closerange)")
    else:
        how, why = f"exited with status {code}", f" (os._exit({code}), or a hard crash)"
    foreign = (
        " Your file also wrote into the checker's own result channel; the checker ignored "
        "what it didn't write."
        if run.problem == "foreign"
        else ""
    )
    return Diagnosis(
        "crashed",
        "The Python process ended abruptly",
        f"Python {how} before w, b and losses could be read{why}. Let the file run to its "
        f"end instead.{foreign}" + (" The last output is shown below." if run.output else ""),
    )


def _stopped_diagnosis(signum: int) -> Diagnosis:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return Diagnosis(
        "stopped",
        "The check was interrupted",
        f"The check was stopped by {name} while your file ran; nothing was judged.",
    )


def _diagnose(run: _Run, timeout: float, report: CheckReport, source: str,
              fit: _Fit) -> list[Diagnosis]:
    result = run.result
    if run.stopped is not None:
        return [_stopped_diagnosis(run.stopped)]
    if run.killed or (result and result["timed_out"]):
        return [_time_limit_diagnosis(timeout, report.steps if result else None)]
    if result is None:
        return [_ended_diagnosis(run)]
    if result["error"]:
        return [_error_diagnosis(result["error"], result["params"], source)]
    return _judge_run(report, result, source, fit)


def check_file(path: Path, lesson: Data, timeout: float = DEFAULT_TIMEOUT,
               name: str = "4") -> CheckReport:
    """Run the learner's training file in its own process and judge the result against the
    least-squares fit of its data (or of `lesson`, the exercise's own X and y_true).

    Whatever the file does ends in a report; only a KeyboardInterrupt (or the ending of
    the checker by SIGTERM or SIGHUP) gets through, once the file's processes are killed."""
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
    try:
        source = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        report.diagnoses.append(
            Diagnosis(
                "unreadable",
                "The file can't be read",
                f"{path} can't be read: {error.strerror or error}. Check its permissions.",
            )
        )
        return report
    run = _run_child(path.resolve(), timeout)
    report.output = run.output
    report.warnings = list(run.result.get("warnings", [])) if run.result else []
    fit = _fill_numbers(report, run.result, lesson)
    report.diagnoses = _diagnose(run, timeout, report, source, fit)
    report.passed = not report.diagnoses and report.loss_falls and _close(report)
    return report


def report_json(report: CheckReport) -> dict[str, Any]:
    """The report as data for `json.dumps(..., allow_nan=False)`: the fields of
    CheckReport, with the path as a string and every float that is inf or nan (a loss that
    diverged, say) as None, since JSON has neither."""
    return _json_safe(asdict(report))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if value is None or isinstance(value, str | int):  # bool is an int
        return value
    return str(value)


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
