"""Hostile input and hostile conditions: fuzzed predictions, Ctrl-C, end of input, odd terminals.

Whatever a person types, pipes or interrupts, the tutor answers with a clear message and
the right exit status, never a traceback, and keeps every attempt already answered.
Expected numbers are computed here, independently of the tutor (a separate evaluator for
arithmetic, a separate PyTorch run for Exercise 4).

A real process (pexpect's pseudo-terminal, or a real pipe) only where the process is the
point: Ctrl-C, end of input at a terminal, a terminal's own width, one real pipe. The rest
runs in-process with Typer's CliRunner, whose input and output are pipes, not a terminal.
"""

from __future__ import annotations

import builtins
import io
import math
import operator
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from budget import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.engine.answers import MAX_INPUT_LENGTH, AnswerError, parse_value
from autograd_tutor.engine.expressions import ExprError, parse_expression
from autograd_tutor.engine.model import Attempt, History
from autograd_tutor.engine.store import Store
from autograd_tutor.views import env as env_module

pexpect = pytest.importorskip("pexpect")
runner = CliRunner()

ANSI = "\x1b["
EX3_IDS = ("x.grad@1", "x.grad@2", "x.grad@3")


def tool() -> list[str]:
    script = Path(sys.executable).parent / "autograd-tutor"
    if script.exists():
        return [str(script)]
    found = shutil.which("autograd-tutor")
    return [found] if found else [sys.executable, "-m", "autograd_tutor"]


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tool(), *args], input=input, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, check=False)


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    """The command in-process: CliRunner's stdin and stdout are pipes, not a terminal."""
    result = runner.invoke(app, list(args), input=input, env=env)
    # In-process, a crash is an exception CliRunner catches (exit 1, and no traceback shown).
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return result


def spawn(*args: str, columns: int = 100, env: dict[str, str] | None = None,
          log: io.StringIO | None = None) -> Any:
    """The console script in a real `columns`-wide terminal. No COLUMNS in its environment
    (conftest sets one): the terminal's own size is the width, as for a person."""
    command = tool()
    environment = {**os.environ, "TERM": "xterm", **(env or {})}
    environment.pop("COLUMNS", None)
    child = pexpect.spawn(command[0], [*command[1:], *args], env=environment,
                          dimensions=(40, columns), encoding="utf-8", timeout=60)
    child.logfile_read = log
    return child


def finish(child: Any) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert child.signalstatus is None, "the tutor was killed by the signal, not handled it"
    return int(child.exitstatus)


def history(home: Path) -> History:
    """The stored history, read by the store itself (warnings printed, not hidden)."""
    return Store(home, warn=print).load()


def attempts(home: Path) -> list[Attempt]:
    return history(home).attempts


# Fuzzing the prediction parser ---------------------------------------------------------

PROBE_CALLS: list[str] = []


@pytest.fixture(autouse=True, scope="module")
def execution_probe():
    """A builtin that records any call: if parse_value ever evaluated text, we'd know."""

    def probe(*args: object) -> float:
        PROBE_CALLS.append(repr(args))
        return 1.0

    builtins._tutor_probe = probe  # type: ignore[attr-defined]
    yield
    del builtins._tutor_probe  # type: ignore[attr-defined]


def check_parse(text: str) -> None:
    """Only AnswerError or a finite float or None; and nothing named in the text ran."""
    calls = len(PROBE_CALLS)
    try:
        value = parse_value(text)
    except AnswerError:
        pass
    else:
        assert value is None or (type(value) is float and math.isfinite(value)), (text, value)
    assert len(PROBE_CALLS) == calls, f"{text!r} executed code"


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
@settings(max_examples=examples(3000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=MAX_INPUT_LENGTH + 20))
def test_parse_value_any_text(text: str) -> None:
    check_parse(text)


TOKENS = (
    "0", "1", "2", "9", "34", "6.5", ".5", "1e3", "1e-3", "1e309", "0x1f", "1_000", "1j", "e",
    "+", "-", "*", "/", "**", "^", "//", "%", "@", "~", "<<", "==", "<", ":=", "=", ",", ";",
    ":", "(", ")", "[", "]", "{", "}", ".", "...", " ", "\t", "\n", "\\", "#", "'", '"',
    "None", "none", "True", "x", "x.grad", "grad", "_", "__import__", "__class__", "os",
    "open", "print", "eval", "exec", "lambda", "if", "else", "not", "and", "or", "in", "for",
    "yield", "await", "_tutor_probe", "_tutor_probe()", "(_tutor_probe())", "'a'", "b'1'",
    "f'{1}'", "−", "½", "٣", "\x00", "\u200b",
)


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
@settings(max_examples=examples(3000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_parse_value_token_soup(text: str) -> None:
    check_parse(text)


class Refused(Exception):
    """The reference evaluator's verdict that the tutor must answer with AnswerError."""


def _pow(left: float, right: float) -> float:
    if abs(right) > 64 or (left < 0 and not float(right).is_integer()):
        raise Refused
    if left == 0 and right < 0:
        raise Refused
    try:
        return math.pow(left, right)
    except (OverflowError, ValueError):
        raise Refused from None


def _div(left: float, right: float) -> float:
    if right == 0:
        raise Refused
    return left / right


OPERATORS: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": _div, "**": _pow, "^": _pow,
}
Expr = tuple[str, Callable[[], float]]


def leaf() -> st.SearchStrategy[Expr]:
    ints = st.integers(-10_000, 10_000).map(lambda n: (str(n), lambda n=n: float(n)))
    floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(
        lambda f: (repr(f), lambda f=f: f))
    small = st.integers(-4, 4).map(lambda n: (str(n), lambda n=n: float(n)))
    return st.one_of(ints, floats, small)


def combine(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    def binary(left: Expr, op: str, right: Expr, spaced: bool) -> Expr:
        gap = " " if spaced else ""
        text = f"({left[0]}){gap}{op}{gap}({right[0]})"
        return text, lambda: OPERATORS[op](left[1](), right[1]())

    def unary(child: Expr, sign: str) -> Expr:
        return f"{sign}({child[0]})", lambda: -child[1]() if sign == "-" else child[1]()

    return st.one_of(
        st.builds(binary, children, st.sampled_from(sorted(OPERATORS)), children,
                  st.booleans()),
        st.builds(unary, children, st.sampled_from("+-")),
    )


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
@settings(max_examples=examples(3000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(leaf(), combine, max_leaves=8))
def test_parse_value_arithmetic_matches_a_separate_evaluator(expr: Expr) -> None:
    text, evaluate = expr
    try:
        expected: float | None = evaluate()
        assert expected is not None
        if not math.isfinite(expected) or abs(expected) > 1e300:
            expected = None
    except Refused:
        expected = None
    if len(text) > MAX_INPUT_LENGTH:
        expected = None
    if expected is None:
        with pytest.raises(AnswerError):
            parse_value(text)
    else:
        assert parse_value(text) == pytest.approx(expected, rel=1e-12, abs=1e-300)


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
@settings(max_examples=examples(3000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_expression_parser_token_soup(text: str) -> None:
    """The playground's expression parser: only ExprError, and nothing typed ever runs."""
    calls = len(PROBE_CALLS)
    try:
        parse_expression(text, allowed={"x": None, "_tutor_probe": None})
    except ExprError:
        pass
    assert len(PROBE_CALLS) == calls, f"{text!r} executed code"


def test_a_typo_python_warns_about_shows_only_our_message() -> None:
    """Python's parser warns about "34if" (a SyntaxWarning); the learner sees only our line.
    A real process: the tutor silences it with a filter set at import, which pytest's own
    warning handling replaces in-process. Then q, so PyTorch is never needed."""
    result = run("exercise", "1", "--graph", "none", input="34if 1 else 2\nq\n")
    assert result.returncode == 1, result.stderr
    assert "Warning" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "Not counted" in result.stdout


@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # see the test above
def test_a_typo_is_not_counted_and_the_next_answer_is(tutor_env: Path) -> None:
    result = invoke("exercise", "1", "--graph", "none", input="34if 1 else 2\n34\n")
    assert result.exit_code == 0, result.output
    assert "Not counted" in result.stdout
    assert [row.typed for row in attempts(tutor_env)] == ["34"]


@pytest.mark.parametrize("text", [
    "__import__('os').system('touch {probe}')",
    "open('{probe}', 'w')",
    "_tutor_probe()",
    "(_tutor_probe())",
    "1 + _tutor_probe()",
    "[_tutor_probe() for _ in '1']",
    "(lambda: _tutor_probe())()",
    "_tutor_probe.__call__()",
    "x.grad",
    "(1).real",
    "().__class__.__bases__[0]",
    "[34][0]",
    "{'a': 34}['a']",
    "1 if _tutor_probe() else 2",
    "(a := 34)",
    "'34'",
    "b'34'",
    "f'{_tutor_probe()}'",
    "True",
    "1j",
    "34; _tutor_probe()",
    "1 == 1",
    "not 1",
    "~1",
    "7 // 2",
    "7 % 2",
    "1 << 2",
    "...",
    "None + 1",
    "9 ** 9 ** 9",
    "2 ** 65",
    "1e309",
    "10 ** 400",
    "(-8) ** (1/3)",
    "0 ** -1",
    "1 / 0",
    "1 / (2 - 2)",
    "(" * 300 + "1" + ")" * 300,
    "-" * 5000 + "1",
    "1" * 201,
    "(" * 99 + "_tutor_probe()" + ")" * 99,
    "-" * 150 + "x",
    "",
    "   ",
    "\x00",
])
def test_hostile_predictions_are_refused_without_running(text: str, tmp_path: Path) -> None:
    probe = tmp_path / "ran"
    text = text.replace("{probe}", str(probe))
    calls = len(PROBE_CALLS)
    with pytest.raises(AnswerError):
        parse_value(text)
    assert len(PROBE_CALLS) == calls
    assert not probe.exists()


# Ctrl-C --------------------------------------------------------------------------------


def assert_one_line_interrupt(transcript: str) -> None:
    assert "Traceback" not in transcript and "KeyboardInterrupt" not in transcript
    messages = [line for line in transcript.splitlines() if "interrupted" in line]
    assert len(messages) == 1, transcript[-2000:]
    assert "saved" in messages[0]


def test_ctrl_c_at_a_prompt_keeps_the_answers_before_it(tutor_env: Path) -> None:
    log = io.StringIO()
    child = spawn("exercise", "3", "--graph", "none", log=log)
    child.expect_exact("Predict")
    child.sendline("5")
    child.expect_exact("Your predictions")
    child.expect_exact("Predict")
    child.sendintr()
    assert finish(child) == 130
    assert_one_line_interrupt(log.getvalue())
    rows = attempts(tutor_env)
    assert [(row.id, row.typed) for row in rows] == [("x.grad@1", "5")]


def test_ctrl_c_at_the_first_prompt_saves_nothing_and_breaks_nothing(tutor_env: Path) -> None:
    log = io.StringIO()
    child = spawn("exercise", "1", log=log)
    child.expect_exact("Predict")
    child.sendintr()
    assert finish(child) == 130
    assert_one_line_interrupt(log.getvalue())
    assert attempts(tutor_env) == []


EX4_ANSWERS = ("y_pred@1=0", "loss@1=14", "w.grad@1=-13", "b.grad@1=-2", "w@1=0.13", "b@1=0.02",
               "w.grad@zeroed=0", "closer@40=w", "w@200=lsq", "b@200=lsq")


def test_ctrl_c_during_training_exits_cleanly(tutor_env: Path, tmp_path: Path) -> None:
    log = io.StringIO()
    answers = [part for pair in EX4_ANSWERS for part in ("--answer", pair)]
    child = spawn("exercise", "4", "--plots", str(tmp_path / "plots"), *answers, log=log)
    child.expect_exact("The whole loop")
    child.expect(r"\d+/200")  # the live training view is on screen
    child.sendintr()
    assert finish(child) == 130
    transcript = log.getvalue()
    assert_one_line_interrupt(transcript)
    assert not re.search(r"Final: w = \d", transcript), "training ended before the interrupt"
    # The live view hid the cursor; it must be shown again.
    assert transcript.rfind("\x1b[?25h") > transcript.rfind("\x1b[?25l")
    # Judged answers of earlier steps, and the loop step's answers kept without a verdict.
    rows = attempts(tutor_env)
    assert [row.id for row in rows] == [pair.split("=")[0] for pair in EX4_ANSWERS]
    assert all(row.judged for row in rows[:-3])
    assert not any(row.judged or row.correct is not None for row in rows[-3:])
    assert not (tmp_path / "plots").exists()


HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"


def terminal_console():
    from rich.console import Console

    return Console(file=io.StringIO(), force_terminal=True, width=60)


def cursor_restored(output: str) -> bool:
    return HIDE_CURSOR in output and output.rfind(SHOW_CURSOR) > output.rfind(HIDE_CURSOR)


def test_interrupt_in_the_loop_body_then_close_restores_the_terminal() -> None:
    from autograd_tutor.views.training_view import live_range

    console = terminal_console()
    steps = live_range(console, {"losses": []}, animate=True, duration=0)
    stdout = sys.stdout
    with pytest.raises(KeyboardInterrupt):
        for step in steps(200):
            if step == 5:
                raise KeyboardInterrupt
    steps.close()
    assert cursor_restored(console.file.getvalue())
    assert sys.stdout is stdout


def test_interrupt_while_the_live_view_starts_then_close_restores_the_terminal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.live import Live

    from autograd_tutor.views.training_view import live_range

    refresh = Live.refresh
    calls = []

    def interrupted_once(self: Live) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        refresh(self)

    monkeypatch.setattr(Live, "refresh", interrupted_once)
    console = terminal_console()
    steps = live_range(console, {"losses": []}, animate=True, duration=0)
    stdout, stderr = sys.stdout, sys.stderr
    with pytest.raises(KeyboardInterrupt):
        for _ in steps(200):
            pass
    steps.close()
    assert cursor_restored(console.file.getvalue())
    assert (sys.stdout, sys.stderr) == (stdout, stderr)


# End of input --------------------------------------------------------------------------


@pytest.mark.parametrize("answered", [0, 1, 2])
def test_end_of_input_at_each_prompt_of_exercise_3(answered: int, tutor_env: Path) -> None:
    """Piped input that ends at any prompt: exit 1, one line, the answers before it kept."""
    typed = ["6", "12", "6"][:answered]
    result = invoke("exercise", "3", "--graph", "none",
                    input="".join(line + "\n" for line in typed))
    assert result.exit_code == 1, result.output
    assert "input ended" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    rows = attempts(tutor_env)
    assert [(row.id, row.typed) for row in rows] == list(zip(EX3_IDS, typed, strict=False))
    assert history(tutor_env).completed == []


def test_end_of_input_in_a_terminal(tutor_env: Path) -> None:
    """Ctrl-D at a real terminal's prompt (input() there, not a pipe's readline)."""
    log = io.StringIO()
    child = spawn("exercise", "3", "--graph", "none", log=log)
    child.expect_exact("Predict")
    child.sendline("6")
    child.expect_exact("Your predictions")
    child.expect_exact("Predict")
    child.sendeof()
    assert finish(child) == 1
    assert "input ended" in log.getvalue()
    assert "Traceback" not in log.getvalue()
    assert [row.typed for row in attempts(tutor_env)] == ["6"]


# Terminals -----------------------------------------------------------------------------


def notebook_w_after_training() -> float:
    """The notebook's Exercise 4 loop, run here with PyTorch, separately from the tutor."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(42)
    X = torch.linspace(-3, 3, 20)
    y_true = 2 * X + 1 + torch.randn(20) * 0.3
    w = torch.tensor(0.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    for _ in range(200):
        loss = ((y_true - (w * X + b)) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= 0.01 * w.grad
            b -= 0.01 * b.grad
        w.grad.zero_()
        b.grad.zero_()
    return float(w.item())


def reveal_section(output: str, label: str) -> str:
    """The last reveal in the output, from its heading to the next blank line."""
    output = output.replace("\r\n", "\n")
    start = output.rindex("Your predictions against PyTorch")
    end = output.find("\n\n", start)
    section = output[start:end if end >= 0 else None]
    assert label in section
    return section


HOSTILE_TERMINAL = {"COLUMNS": "40", "TERM": "dumb", "NO_COLOR": "1"}


def test_narrow_dumb_terminal_piped_keeps_numbers_whole(tmp_path: Path) -> None:
    result = invoke("exercise", "4", "--reveal", "--plots", str(tmp_path / "plots"),
                    env=HOSTILE_TERMINAL)
    assert result.exit_code == 0, result.output
    assert ANSI not in result.stdout + result.stderr
    expected = f"{notebook_w_after_training():.4f}".rstrip("0").rstrip(".")
    section = reveal_section(result.stdout, "w after 200 steps")
    assert "…" not in section
    # w itself is printed by the training loop (its reveal is a choice: nearer which line).
    assert re.search(rf"Final: w = {re.escape(expected)}(?!\d)", result.stdout), result.stdout
    assert "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 40


@pytest.mark.parametrize("env", [
    {"COLUMNS": "40"}, {"TERM": "dumb"}, {"NO_COLOR": "1"}, {}, HOSTILE_TERMINAL,
], ids=["40-columns", "dumb", "no-color", "piped", "all"])
@pytest.mark.parametrize("args", [("--help",), ("list",), ("progress",)],
                         ids=["help", "list", "progress"])
def test_piped_output_has_no_escape_codes(args: tuple[str, ...], env: dict[str, str]) -> None:
    result = invoke(*args, env=env)
    assert result.exit_code == 0, result.output
    assert ANSI not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "…" not in result.stdout


def test_a_real_pipe_gets_no_escape_codes() -> None:
    """The console script writing into a real pipe: even with a colour TERM, no escape
    codes (the variations of the environment run in-process above)."""
    result = run("list", env={"TERM": "xterm"})
    assert result.returncode == 0, result.stderr
    assert ANSI not in result.stdout + result.stderr
    assert "Polynomial Gradient" in result.stdout
    assert "…" not in result.stdout


@pytest.mark.parametrize("env", [{}, HOSTILE_TERMINAL], ids=["piped", "all"])
def test_piped_exercise_has_no_escape_codes(env: dict[str, str]) -> None:
    result = invoke("exercise", "1", "--answer", "x.grad=31", env=env)
    assert result.exit_code == 0, result.output
    assert ANSI not in result.stdout + result.stderr
    section = reveal_section(result.stdout, "x.grad")
    # dy/dx of x**3 + 2x**2 - 5x + 1 at x = 3, by the power rule: 27 + 12 - 5.
    assert re.search(r"(?<!\d)34(?!\d)", section)
    assert "…" not in section


def test_real_terminal_40_columns(tutor_env: Path) -> None:
    """A colour terminal 40 columns wide, its width read from the terminal itself."""
    log = io.StringIO()
    child = spawn("exercise", "1", "--graph", "none", "--no-retry", columns=40, log=log)
    child.expect_exact("Predict")
    child.sendline("31")
    assert finish(child) == 0
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", log.getvalue())
    assert max(len(line) for line in plain.replace("\r\n", "\n").splitlines()) <= 40
    section = reveal_section(plain, "x.grad")
    assert "…" not in section
    assert re.search(r"(?<!\d)34(?!\d)", section)
    assert [row.typed for row in attempts(tutor_env)] == ["31"]


def test_dumb_terminal_40_columns(tutor_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TERM=dumb at a terminal: no escape codes, ASCII boxes, numbers whole at 40 columns.
    In-process, with the streams reported as a terminal where the tutor asks (env.py), so
    the terminal's code paths run: the prompt read by input(), make_console's tty branch."""
    monkeypatch.setattr(env_module, "_isatty", lambda stream: True)
    result = invoke("exercise", "1", "--graph", "none", "--no-retry", input="31\n",
                    env=HOSTILE_TERMINAL)
    assert result.exit_code == 0, result.output
    assert ANSI not in result.stdout + result.stderr
    assert not set("╭╮╰╯│─") & set(result.stdout), "a dumb terminal gets ASCII boxes and rules"
    section = reveal_section(result.stdout, "x.grad")
    assert "…" not in section
    assert re.search(r"(?<!\d)34(?!\d)", section)
    assert [row.typed for row in attempts(tutor_env)] == ["31"]


# The background loader -----------------------------------------------------------------------


def test_loader_gives_torch_even_when_a_module_to_warm_fails() -> None:
    from autograd_tutor.engine.runner import TorchLoader

    loader = TorchLoader(then=("autograd_tutor_no_such_module",))
    loader.start()
    assert loader.get().__name__ == "torch"


def test_a_wait_for_torch_ends_at_ctrl_c_even_when_the_signal_wakes_nobody(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C can land on a thread other than the main one (or while the loader is stuck in
    an import): Python's handler then only runs once the main thread wakes. The wait for
    torch must wake for it, not wait for an import that may never end."""
    import _thread
    import threading
    import time

    from autograd_tutor.engine import runner as runner_module

    release, left = threading.Event(), threading.Event()
    loader = runner_module.TorchLoader()
    monkeypatch.setattr(loader, "_load", release.wait)  # an import that never ends
    loader.start()
    main = threading.get_ident()
    stuck: list[bool] = []

    def waiting_in_get() -> bool:
        frame = sys._current_frames().get(main)
        while frame is not None:
            if frame.f_code is runner_module.TorchLoader.get.__code__:
                return True
            frame = frame.f_back
        return False

    def interrupt() -> None:
        while not waiting_in_get():
            time.sleep(0.01)  # polling for the event: the main thread waits for torch
        _thread.interrupt_main()  # the handler's flag, without waking a blocked wait
        stuck.append(not left.wait(10))  # a bound for the failure, not a synchronisation
        release.set()
        loader._torch_ready.set()

    helper = threading.Thread(target=interrupt)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        loader.get()
    left.set()
    helper.join()
    assert stuck == [False], "get() waited on after Ctrl-C"


def test_one_ctrl_c_ends_a_run_whose_torch_import_is_stuck(tmp_path: Path) -> None:
    """`exercise 4 --reveal --fast` interrupted while the background import of torch hangs:
    one Ctrl-C, status 130, one line; the exit waits for no import."""
    stub = tmp_path / "stub" / "torch"
    stub.mkdir(parents=True)
    started = tmp_path / "torch-import-started"
    (stub / "__init__.py").write_text(
        "import threading\n"
        f"open({str(started)!r}, 'w').close()\n"
        "threading.Event().wait()  # an import that never finishes\n")
    path = os.pathsep.join([str(stub.parent), os.environ.get("PYTHONPATH", "")])
    child = spawn("exercise", "4", "--reveal", "--fast", "--graph", "none",
                  env={"PYTHONPATH": path})
    child.expect("Step 1")
    # The event: the loader is inside the import (and the run will wait for it).
    for _ in range(6000):
        if started.exists():
            break
        child.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=0.01)
    assert started.exists(), "torch's import never started"
    child.sendintr()
    child.expect(pexpect.EOF, timeout=30)
    text = child.before
    child.close()
    assert child.signalstatus is None and child.exitstatus == 130, text
    assert text.count("interrupted") == 1 and "Traceback" not in text
