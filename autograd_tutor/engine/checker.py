"""A coding part (`[coding]` of an exercise): write its scaffold, then check a finished file.

`check_file` runs the learner's file in the sandbox's child process (engine.sandbox) with
a time limit, as their own program: the separation is about hangs and crashes, not about
trust. The child (`_child_run`, below) seeds torch with the part's seed, runs the file,
then describes each name the part reads back (its number, its numbers, shape and flags)
and, when the part asks, runs `torch.autograd.gradcheck` on the file's custom Function;
the sandbox sends that back on its own channel, so nothing the file prints, and nothing it
writes where the result used to go, can block or forge it. The sandbox kills the child's
whole process group when the check ends, however it ends, so programs the learner's file
starts don't outlive the check.

The pack's reference solution runs the same way, under the same seed. This side then
judges: first the pack's own diagnoses (functions of the pack's module, given the run's
results and the solution's, each returning a diagnosis or None; they run bounded, like a
pack's helpers), then what every part shares: names the file left undefined, gradcheck,
and the element-wise comparison with the solution's run. Whatever the learner's file
leaves behind ends in a diagnosis, never in a traceback of the checker's own. The engine
knows no lesson: what a run means is the pack's.

The module imports no torch, so the CLI can write scaffolds cheaply.
"""

from __future__ import annotations

import builtins
import importlib.util
import itertools
import math
import signal
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from autograd_tutor.engine import sandbox
from autograd_tutor.engine.model import Coding

DEFAULT_TIMEOUT = 20.0
# Extra seconds before the hard kill, after the file's own time limit. Both count from the
# child's signal that it is ready (Python and torch started), however long that took.
STARTUP_GRACE = 15.0
# How many values of a list the child sends back; an endless loop can grow a list a lot.
MAX_VALUES = 10_000
# Reading one of the names runs the learner's code (__float__, a generator); each read
# gets this long.
READ_LIMIT = 2.0


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
    output: str = ""  # the tail of what the file printed
    warnings: list[str] = field(default_factory=list)  # Python warnings the file raised
    # The largest element-wise difference from the solution's run, per compared name
    # (None: it could not be compared).
    compared: dict[str, float | None] = field(default_factory=dict)
    gradcheck: bool | None = None  # whether the file's Function passed gradcheck, if asked
    # What the pack's summary adds: lines shown before the diagnoses, and fields of its own
    # for --json (readable as attributes of the report too).
    lines: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.diagnoses]

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("fields") or {}
        if name in fields:
            return fields[name]
        raise AttributeError(name)


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


# --- running a file -----------------------------------------------------------------------


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


def child_spec(coding: Coding) -> dict[str, Any]:
    """What the child needs to know of the part, as JSON: the names to read back, the seed,
    and the gradcheck to run."""
    gradcheck = None
    if coding.gradcheck is not None:
        gradcheck = {"function": coding.gradcheck.function,
                     "shapes": [list(shape) for shape in coding.gradcheck.shapes]}
    return {"names": list(coding.names + coding.optional), "seed": coding.seed,
            "gradcheck": gradcheck}


def _run_child(path: Path, timeout: float, spec: dict[str, Any]) -> _Run:
    """The file in the sandbox's child process (see engine.sandbox): the hard kill comes
    STARTUP_GRACE seconds after the file's own time limit, counted from the moment the
    child says it is ready (torch imported), however long it took to start."""
    outcome = sandbox.run_function(_CHILD_FUNCTION, [str(path), timeout, spec], limit=timeout,
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


def _checked_error(error: Any) -> dict[str, Any] | None:
    if error is None:
        return None
    _typed(error, dict)
    line = error.get("line")
    return {
        "type": _typed(error["type"], str),
        "message": _typed(error["message"], str),
        "line": None if line is None else _typed(line, int),
        "code": _typed(error.get("code") or "", str),
    }


def _checked_value(info: Any) -> dict[str, Any]:
    _typed(info, dict)
    clean = {
        "type": _typed(info["type"], str),
        "number": _number_or_none(info["number"]),
        "problem": _text_or_none(info.get("problem")),
        "numbers": _numbers_or_none(info["numbers"]),
        "list_problem": _text_or_none(info.get("list_problem")),
        "length": _typed(info["length"], int),
    }
    if "is_leaf" in info or "requires_grad" in info or "shape" in info:
        clean["requires_grad"] = _typed(info["requires_grad"], bool)
        clean["is_leaf"] = _typed(info["is_leaf"], bool)
        clean["shape"] = [_typed(n, int) for n in _typed(info["shape"], list)]
    return clean


def _checked_gradcheck(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    _typed(raw, dict)
    return {"passed": _typed(raw["passed"], bool), "missing": _typed(raw["missing"], bool),
            "message": _typed(raw["message"], str), "error": _checked_error(raw["error"])}


def _checked_result(raw: Any) -> dict[str, Any]:
    _typed(raw, dict)
    if "checker_error" in raw:
        return {"checker_error": str(raw["checker_error"])}
    return {
        "error": _checked_error(raw["error"]),
        "timed_out": _typed(raw["timed_out"], bool),
        "warnings": [_typed(w, str) for w in _typed(raw["warnings"], list)][:5],
        "values": {_typed(name, str): _checked_value(info)
                   for name, info in _typed(raw["values"], dict).items()},
        "gradcheck": _checked_gradcheck(raw.get("gradcheck")),
    }


# --- the child process --------------------------------------------------------------------


_TimeLimit = sandbox.TimeLimit


def _arm(seconds: float) -> None:
    # Without setitimer (Windows) the parent's hard kill is the only limit.
    sandbox.arm(seconds)


def _disarm() -> None:
    sandbox.disarm()


def _child_run(path: str, limit: float, spec: dict[str, Any]) -> dict[str, Any]:
    """In the sandbox's child: run the learner's file and return what it left (the
    sandbox sends it back on its channel and ends the process)."""
    sys.argv = [path]  # as `python FILE` sets it
    try:
        return _execute(path, limit, spec)
    except BaseException as error:  # a fault of the checker's own, not of the learner's
        return {"checker_error": _error_text(error)}


def _execute(path: str, limit: float, spec: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(Path(path).resolve().parent))  # as `python FILE` would set it
    # Import torch before the clock starts, so the time limit measures the file, not torch.
    try:
        import torch
    except ImportError:
        torch = None  # type: ignore[assignment]
    if torch is not None:
        torch.manual_seed(int(spec["seed"]))
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
    result["values"] = _read_namespace(ns, list(spec["names"]))
    result["gradcheck"] = None
    if spec.get("gradcheck") and torch is not None and not (
            result["error"] or result["timed_out"]):
        result["gradcheck"] = _gradcheck(ns, spec["gradcheck"], int(spec["seed"]), path, limit)
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


def _describe(name: str, value: Any) -> dict[str, Any]:
    """One name the file left, as data: its type, its value as a number (`number`, or why
    not: `problem`) and as a list of numbers (`numbers`, or why not: `list_problem`), its
    length, shape and, for a tensor, requires_grad and is_leaf. Reading .grad of a non-leaf
    warns, so only these attributes are touched."""
    info: dict[str, Any] = {"type": type(value).__name__, "number": None, "problem": None}
    number, error = _guarded(lambda: _to_float(value))
    if error is None:
        info["number"] = number
    else:
        info["problem"] = _float_problem(name, value, error)
    info["numbers"], info["list_problem"] = _floats(name, value)
    info["length"] = _length(value, len(info["numbers"] or []))
    if _torch_tensor(value):
        flags, error = _guarded(lambda: (bool(value.requires_grad), bool(value.is_leaf),
                                         [int(n) for n in value.shape]))
        if error is None:
            info["requires_grad"], info["is_leaf"], info["shape"] = flags
    return info


def _read_namespace(ns: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {name: _describe(name, ns[name]) for name in names if name in ns}


def _gradcheck(ns: dict[str, Any], spec: dict[str, Any], seed: int, path: str,
               limit: float) -> dict[str, Any]:
    """`torch.autograd.gradcheck` of the file's Function `spec["function"]` on double inputs
    of `spec["shapes"]`, drawn under `seed`: {"passed": bool, "message": what it said,
    "error": the error the learner's code raised, if that is why}."""
    import torch
    from torch.autograd.gradcheck import GradcheckError

    function = spec["function"]
    found = ns.get(function)
    if not (isinstance(found, type) and issubclass(found, torch.autograd.Function)):
        return {"passed": False, "missing": True, "message": "", "error": None}
    torch.manual_seed(seed)
    inputs = tuple(torch.randn(*shape, dtype=torch.double, requires_grad=True)
                   for shape in spec["shapes"])
    result: dict[str, Any] = {"passed": False, "missing": False, "message": "", "error": None}
    try:
        try:
            _arm(limit)
            torch.autograd.gradcheck(found.apply, inputs, eps=1e-6, atol=1e-4)
        finally:
            _disarm()
        result["passed"] = True
    except GradcheckError as error:  # its first line says where; the rest are matrices
        result["message"] = _safe_text(error).splitlines()[0].rstrip(",") if str(error) else ""
    except _TimeLimit:
        result["message"] = f"gradcheck took more than {limit:g} s"
    except BaseException as error:  # the learner's forward or backward raised
        result["error"] = _describe_error(error, path)
    return result

# --- the pack's own judging ---------------------------------------------------------------


class PackModuleError(Exception):
    """The pack's module for a coding part can't be loaded or one of its functions failed:
    the message says which, in one line."""


def load_module(path: Path) -> ModuleType:
    """The pack's module that holds a coding part's diagnoses, loaded bounded (it is the
    pack author's code, like its helpers)."""
    name = "autograd_tutor_coding_" + "".join(c if c.isalnum() else "_" for c in str(path))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PackModuleError(f"can't load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import does: its dataclasses look for it there
    try:
        with sandbox.bounded(sandbox.STEP_SECONDS, str(path)):
            try:
                spec.loader.exec_module(module)
            except Exception as error:
                raise PackModuleError(f"{path} raised {sandbox.error_text(error)}") from None
    except BaseException as error:
        del sys.modules[name]
        if isinstance(error, sandbox.Escaped):
            raise PackModuleError(str(error)) from None
        raise
    return module


def _call(module: ModuleType, function: str, *args: Any) -> Any:
    what = f"{function}() of {Path(module.__file__ or '').name}"
    try:
        with sandbox.bounded(sandbox.STEP_SECONDS, what):
            try:
                return getattr(module, function)(*args)
            except Exception as error:
                raise PackModuleError(f"{what} raised {sandbox.error_text(error)}") from None
    except sandbox.Escaped as escaped:
        raise PackModuleError(str(escaped)) from None


def _as_diagnosis(value: Any, function: str) -> Diagnosis | None:
    if value is None:
        return None
    if isinstance(value, Diagnosis):
        return value
    try:
        return Diagnosis(str(value["name"]), str(value["title"]), str(value["explanation"]))
    except (TypeError, KeyError, IndexError):
        raise PackModuleError(f"{function}() returned neither None nor a diagnosis "
                              "(a dict with name, title and explanation)") from None


@dataclass
class _Judge:
    """One check: the part, the pack's module (if it has one), the learner's run as the
    pack's functions see it, and the solution's run (None where it could not run)."""

    coding: Coding
    module: ModuleType | None
    run: dict[str, Any]
    reference: dict[str, Any] | None

    def pack_diagnosis(self) -> Diagnosis | None:
        """The first of the pack's diagnoses that recognises the run."""
        if self.module is None:
            return None
        for function in self.coding.diagnoses:
            found = _as_diagnosis(_call(self.module, function, self.run, self.reference),
                                  function)
            if found is not None:
                return found
        return None

    def summary(self, report: CheckReport) -> None:
        if self.module is None or not self.coding.summary:
            return
        made = _call(self.module, self.coding.summary, self.run, self.reference)
        try:
            report.lines = [str(line) for line in made.get("lines", [])]
            report.fields = {str(key): value for key, value in made.get("fields", {}).items()}
        except (AttributeError, TypeError, ValueError):
            raise PackModuleError(f"{self.coding.summary}() returned no dict of lines and "
                                  "fields") from None


def run_data(path: Path, source: str, timeout: float, run: _Run) -> dict[str, Any]:
    """A run as the pack's functions get it: plain data."""
    result = run.result or {}
    if run.killed or result.get("timed_out"):
        outcome = "time_limit"
    elif run.result is None:
        outcome = "ended"
    elif result.get("error"):
        outcome = "error"
    else:
        outcome = "finished"
    return {
        "path": str(path),
        "source": source,
        "limit": timeout,
        "outcome": outcome,
        "read": run.result is not None,  # whether the names could be read at all
        "error": result.get("error"),
        "values": dict(result.get("values") or {}),
        "warnings": list(result.get("warnings") or []),
        "gradcheck": result.get("gradcheck"),
        "compared": {},
    }


_references: dict[tuple[Any, ...], tuple[_Run, dict[str, Any] | None]] = {}


def _solution_run(coding: Coding, timeout: float) -> tuple[_Run, dict[str, Any] | None] | None:
    """The solution's run, and as data (see run_data) when it finished cleanly. Kept for
    the process: the solution and the seed decide it."""
    solution = coding.solution
    try:
        stamp = solution.stat().st_mtime_ns
        source = solution.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    key = (str(solution), stamp, coding.names, coding.optional, coding.seed, coding.gradcheck)
    if key not in _references:
        run = _run_child(solution.resolve(), timeout, child_spec(coding))
        if run.stopped is not None:
            return None  # not kept: an interrupted run says nothing about the solution
        data = run_data(solution, source, timeout, run)
        _references[key] = (run, data if data["outcome"] == "finished" else None)
    return _references[key]


def run_reference(coding: Coding, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any] | None:
    """The solution's run as data, or None if it did not finish cleanly."""
    found = _solution_run(coding, timeout)
    return None if found is None else found[1]


def check_solution(coding: Coding, name: str = "",
                   timeout: float = DEFAULT_TIMEOUT) -> tuple[CheckReport, bool]:
    """The solution judged as a learner's file would be, against its own run (run once);
    and whether that run finished at all."""
    found = _solution_run(coding, timeout)
    ran, reference = (None, None) if found is None else found
    report = check_file(coding.solution, coding, timeout, name, reference, ran=ran)
    return report, reference is not None


# --- judging what every part shares -------------------------------------------------------


def _where(error: dict[str, Any]) -> str:
    line, code = error.get("line"), error.get("code")
    if line and code:
        return f"line {line} (`{code}`)"
    return f"line {line}" if line else "your file"


def _said(names: list[str] | tuple[str, ...]) -> str:
    """`a`, `b` and `c`: names as a sentence lists them."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _syntax_diagnosis(error: dict[str, Any]) -> Diagnosis | None:
    kind, message = error["type"], error["message"]
    if kind not in ("SyntaxError", "IndentationError", "TabError"):
        return None
    return Diagnosis(
        "syntax_error",
        "Python can't read the file",
        f"{kind} at {_where(error)}: {message}. Nothing ran: Python reads the whole file "
        "before running any of it. Check brackets, colons and indentation on that line and "
        "the one before it.",
    )


def _error_diagnosis(error: dict[str, Any]) -> Diagnosis:
    kind, message = error["type"], error["message"]
    return Diagnosis("error", f"The file raised {kind}", f"{kind} at {_where(error)}: {message}")


def _time_limit_diagnosis(timeout: float) -> Diagnosis:
    return Diagnosis(
        "time_limit",
        "Too slow, or never finishes",
        f"The file was stopped after {timeout:g} s. Look for a loop that never ends: a "
        "`while` whose condition never changes, or a step counter that is never increased.",
    )


def _missing_diagnosis(coding: Coding, run: dict[str, Any]) -> Diagnosis | None:
    missing = [name for name in coding.names if name not in run["values"]]
    if not missing:
        return None
    return Diagnosis(
        "missing_names",
        "The file doesn't define " + ", ".join(missing),
        f"The file ran, but left no module-level {', '.join(missing)}. The check reads "
        f"{_said([f'`{n}`' for n in coding.names])} after your file runs: keep those names, "
        "outside any function.",
    )


def _gradcheck_diagnosis(coding: Coding, run: dict[str, Any]) -> Diagnosis | None:
    found = run.get("gradcheck")
    if coding.gradcheck is None or found is None or found["passed"]:
        return None
    function = coding.gradcheck.function
    if found["missing"]:
        return Diagnosis(
            "no_function", f"No autograd.Function named {function}",
            f"The check runs gradcheck on `{function}`, a subclass of torch.autograd.Function "
            "defined at the top level of your file: keep its name.")
    if found["error"]:
        error = found["error"]
        return Diagnosis(
            "gradcheck_error", f"{function} raised {error['type']} under gradcheck",
            f"gradcheck called {function}.apply on double inputs and its forward or backward "
            f"raised {error['type']} at {_where(error)}: {error['message']}.")
    return Diagnosis(
        "gradcheck_failed", f"{function}.backward disagrees with gradcheck",
        f"gradcheck compared your backward with the numerical gradient (finite differences "
        f"of your forward) and they differ ({found['message']}): check the derivative, and "
        "that backward multiplies it by grad_output.")


def _compare(coding: Coding, run: dict[str, Any], reference: dict[str, Any]) -> None:
    """Fill run["compared"]: per name, the largest element-wise difference from the
    solution's run, or None where the two can't be compared (a shape or a value missing)."""
    for name in coding.compare:
        mine, theirs = run["values"].get(name), reference["values"].get(name)
        run["compared"][name] = _difference(mine, theirs)


def _difference(mine: dict[str, Any] | None, theirs: dict[str, Any] | None) -> float | None:
    if mine is None or theirs is None:
        return None
    a, b = mine.get("numbers"), theirs.get("numbers")
    if a is None or b is None or len(a) != len(b) or mine.get("shape") != theirs.get("shape"):
        return None
    if not a:
        return 0.0
    gaps = [abs(x - y) if math.isfinite(x) and math.isfinite(y) else
            (0.0 if x == y else math.inf) for x, y in zip(a, b, strict=True)]
    return max(gaps)


def _compare_diagnosis(coding: Coding, run: dict[str, Any],
                       reference: dict[str, Any]) -> Diagnosis | None:
    off = []
    for name in coding.compare:
        gap = run["compared"].get(name)
        theirs = reference["values"].get(name) or {}
        mine = run["values"].get(name) or {}
        if gap is None:
            off.append(f"`{name}` can't be compared with the reference (yours: "
                       f"{_shape_text(mine)}; the reference: {_shape_text(theirs)})")
        elif not gap <= coding.tolerance:
            off.append(f"`{name}` differs from the reference's by up to {gap:.4g}")
    if not off:
        return None
    return Diagnosis(
        "differs", "Not what the reference solution computes",
        "Run with the same seed, " + "; ".join(off) + f" (tolerance {coding.tolerance:g}).")


def _shape_text(value: dict[str, Any]) -> str:
    if not value:
        return "not defined"
    if "shape" in value:
        return f"a tensor of shape ({', '.join(map(str, value['shape']))}"  \
               f"{',' if len(value['shape']) == 1 else ''})"
    if value.get("numbers") is not None:
        return f"{len(value['numbers'])} numbers"
    return f"a {value['type']}"


def _ended_diagnosis(run: _Run, names: tuple[str, ...]) -> Diagnosis:
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
        f"Python {how} before {_said(names)} could be read{why}. Let the file run to its "
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


def _reference_diagnosis() -> Diagnosis:
    return Diagnosis(
        "reference_failed", "The exercise's reference solution did not run",
        "The check compares your run with the exercise's own solution, but that solution did "
        "not finish. Your file is not to blame; please report this.")


def _diagnose(run: _Run, judge: _Judge, timeout: float) -> list[Diagnosis]:
    result, data, coding = run.result, judge.run, judge.coding
    if run.stopped is not None:
        return [_stopped_diagnosis(run.stopped)]
    if data["outcome"] == "time_limit":
        return [judge.pack_diagnosis() or _time_limit_diagnosis(timeout)]
    if result is None:
        return [_ended_diagnosis(run, coding.names)]
    if data["outcome"] == "error":
        syntax = _syntax_diagnosis(data["error"])
        return [syntax or judge.pack_diagnosis() or _error_diagnosis(data["error"])]
    if coding.compare and judge.reference is None:
        return [_reference_diagnosis()]
    own = judge.pack_diagnosis()
    if own is not None:
        return [own]
    shared = [_missing_diagnosis(coding, data), _gradcheck_diagnosis(coding, data)]
    if coding.compare and judge.reference is not None:
        shared.append(_compare_diagnosis(coding, data, judge.reference))
    return [found for found in shared if found is not None][:1]


def check_file(path: Path, coding: Coding, timeout: float = DEFAULT_TIMEOUT, name: str = "",
               reference: dict[str, Any] | None = None, *,
               ran: _Run | None = None) -> CheckReport:
    """Run the learner's file in its own process and judge it as the coding part says,
    against `reference` (the solution's run; by default run here, once per process).
    `ran`: the file's run, when it has run already.

    Whatever the file does ends in a report; only a KeyboardInterrupt (or the ending of
    the checker by SIGTERM or SIGHUP) gets through, once the file's processes are killed.
    Raises PackModuleError when the pack's own functions fail."""
    report = CheckReport(path=path, passed=False)
    if not path.is_file():
        report.diagnoses.append(
            Diagnosis(
                "file_not_found",
                "File not found",
                f"There is no file at {path}. Write the scaffold with "
                f"`autograd-tutor exercise {name} --code`, or pass the path of your file.",
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
    module = load_module(coding.module) if coding.module is not None else None
    run = ran if ran is not None else _run_child(path.resolve(), timeout, child_spec(coding))
    if run.stopped is None and reference is None:
        reference = run_reference(coding, timeout)
    report.output = run.output
    report.warnings = list(run.result.get("warnings", [])) if run.result else []
    judge = _Judge(coding, module, run_data(path, source, timeout, run), reference)
    if reference is not None and run.result is not None:
        _compare(coding, judge.run, reference)
    report.compared = dict(judge.run["compared"])
    found = judge.run["gradcheck"]
    report.gradcheck = None if found is None else found["passed"]
    if run.stopped is None:
        judge.summary(report)
    report.diagnoses = _diagnose(run, judge, timeout)
    report.passed = not report.diagnoses
    return report


def report_data(report: CheckReport) -> dict[str, Any]:
    """The report as one flat dict: its own fields, then the pack's summary fields."""
    data = asdict(report)
    data.pop("lines")
    extra = data.pop("fields")
    data["path"] = str(report.path)
    return {**data, **extra}


def report_json(report: CheckReport) -> dict[str, Any]:
    """The report as data for `json.dumps(..., allow_nan=False)`: report_data, with every
    float that is inf or nan (a loss that diverged, say) as None, since JSON has neither."""
    return _json_safe(report_data(report))


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


def format_report(report: CheckReport, name: str) -> list[str]:
    """The report as plain lines (no markup), for the CLI to print or style."""
    verdict = "passed" if report.passed else "not passed yet"
    lines = [f"check {name}: {report.path}: {verdict}", *report.lines]
    if report.gradcheck is not None:
        lines.append("gradcheck: " + ("passed" if report.gradcheck else "failed"))
    for diagnosis in report.diagnoses:
        lines.append(f"problem: {diagnosis.title}")
        lines.append(f"  {diagnosis.explanation}")
    lines.extend(f"warning: {warning}" for warning in report.warnings)
    if report.output and any(d.name in ("crashed", "error") for d in report.diagnoses):
        lines.append("last output:")
        lines.extend(f"  {line}" for line in report.output.splitlines())
    return lines
