"""Hostile input: each reproduction of the hostile-input run, as a regression test.

Every case must end in a clear one-line message and the right exit status, with nothing
lost and no traceback, and never hang (every subprocess here has a time limit).

A real process only where the process is the point: a closed stdin, bytes decoded by the
interpreter's own streams, /dev/full, MPLBACKEND read at import, Ctrl-C during start-up or
in a terminal. The rest runs in-process with Typer's CliRunner (its streams are pipes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import reference
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.views.env import MAX_WIDTH, MIN_WIDTH, width_from

runner = CliRunner()
RIGHT = reference.typed(reference.ex1()["x.grad"])  # PyTorch's own answer to Exercise 1


def tool(*args: str, home: Path, stdin: int | None = None, env: dict[str, str] | None = None,
         timeout: float = 120, stdout: object = subprocess.PIPE,
         **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, "AUTOGRAD_TUTOR_HOME": str(home), "MPLBACKEND": "Agg",
            **(env or {})}
    return subprocess.run([sys.executable, "-m", "autograd_tutor", *args], env=full,
                          stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                          timeout=timeout, **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize(("columns", "width"), [
    ("99999999", MAX_WIDTH), ("100000", MAX_WIDTH), ("1", MIN_WIDTH), ("0", MIN_WIDTH),
    ("-5", MIN_WIDTH), ("abc", None), ("", None), ("72", 72)])
def test_columns_are_clamped_to_a_sane_width(columns: str, width: int | None) -> None:
    assert width_from(columns) == width


@pytest.mark.parametrize("columns", ["99999999", "1", "0", "-5", "abc"])
def test_any_columns_still_shows_titles_and_status(columns: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["exercise", "2", "--reveal", "--plots", str(tmp_path)],
                           env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.replace("│", " ").split())
    assert "Reproduce a Backprop Network" in flat
    assert "complete" in result.output
    # PyTorch's own words are one line each when piped (so a script can find them whole);
    # everything the tutor lays out keeps within the clamped width.
    longest = max(len(line) for line in result.output.splitlines()
                  if not line.startswith(("PyTorch warned: ", "PyTorch raised ")))
    assert longest <= MAX_WIDTH


def test_closed_stdin_ends_like_end_of_input(tmp_path: Path) -> None:
    """fd 0 closed under a real process (reads fail with EBADF): the same exit as piped
    input that ends at once, which needs no real process."""
    ended = runner.invoke(app, ["exercise", "1"], input="")
    assert ended.exit_code == 1 and isinstance(ended.exception, SystemExit), ended.output
    assert "Traceback" not in ended.output and "input ended" in ended.stderr
    closed = subprocess.run(
        [sys.executable, "-c", "import os, sys; os.close(0); "
         "from autograd_tutor.entry import main; sys.argv = ['autograd-tutor', 'exercise', "
         "'1']; main()"],
        env={**os.environ, "AUTOGRAD_TUTOR_HOME": str(tmp_path)}, capture_output=True,
        timeout=60)
    assert closed.returncode == 1, closed.stderr
    assert b"Traceback" not in closed.stderr and b"input ended" in closed.stderr


def test_undecodable_input_is_refused_politely(tmp_path: Path) -> None:
    """A byte no codec of the interpreter's stdin decodes. ASCII refuses every byte UTF-8
    refuses, and its stdout can't encode the tutor's "−" or "│" either: one run for both."""
    result = tool("exercise", "1", home=tmp_path, input=b"\xff\n" + RIGHT.encode() + b"\n",
                  env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr and b"Not counted" in result.stdout


def test_a_replacement_character_is_refused_politely() -> None:
    """What an undecodable byte is read as (U+FFFD), through a UTF-8 stream: not counted,
    echoed as is, and the next line is answered."""
    result = runner.invoke(app, ["exercise", "1"], input="\ufffd\n" + RIGHT + "\n")
    assert result.exit_code == 0, result.output
    assert "Not counted" in result.stdout and "\ufffd" in result.stdout


def test_escape_codes_typed_at_a_prompt_are_not_replayed() -> None:
    result = runner.invoke(app, ["exercise", "1"], input="\x1b[31mRED\n" + RIGHT + "\n",
                           env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "?[31mRED" in result.stdout


def test_very_long_input_is_echoed_shortened() -> None:
    long_line = "1" * 1_000_000
    result = runner.invoke(app, ["exercise", "1"], input=long_line + "\n" + RIGHT + "\n")
    assert result.exit_code == 0, result.output
    assert len(result.stdout) < 100_000
    answer = runner.invoke(app, ["exercise", "1", "--answer", "x.grad=" + "2" * 100_000])
    assert answer.exit_code == 2 and len(answer.output) < 5_000


def test_a_full_disk_on_stdout_is_one_message_and_status_1(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        result = tool("exercise", "1", "--answer", f"x.grad={RIGHT}", "--json", home=tmp_path,
                      stdout=full)
    assert result.returncode == 1
    assert result.stderr.count(b"error:") == 1 and b"Traceback" not in result.stderr


def test_a_bogus_matplotlib_backend_still_draws_the_figures(tmp_path: Path) -> None:
    result = tool("exercise", "5", "--reveal", "--graph", "none", "--plots", str(tmp_path),
                  home=tmp_path, env={"MPLBACKEND": "bogus"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "exercise5-detach.png").read_bytes().startswith(b"\x89PNG")
    assert b"not a matplotlib backend" in result.stdout


def test_figures_replace_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "exercise5-detach.png").symlink_to(victim)
    result = runner.invoke(app, ["exercise", "5", "--reveal", "--graph", "none",
                                 "--plots", str(plots)])
    assert result.exit_code == 0, result.output
    assert victim.read_text(encoding="utf-8") == "keep me"
    figure = plots / "exercise5-detach.png"
    assert not figure.is_symlink() and figure.read_bytes().startswith(b"\x89PNG")


def test_ctrl_c_while_the_tool_is_still_importing_exits_130(tmp_path: Path) -> None:
    code = ("import builtins, sys\n"
            "real = builtins.__import__\n"
            "def interrupt(name, *args, **kwargs):\n"
            "    if name == 'autograd_tutor.cli':\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *args, **kwargs)\n"
            "builtins.__import__ = interrupt\n"
            "from autograd_tutor.entry import main\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                            env={**os.environ, "AUTOGRAD_TUTOR_HOME": str(tmp_path)})
    assert result.returncode == 130
    assert result.stderr.strip() == b"error: interrupted."


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"autograd-tutor {version('autograd-tutor')}"


def test_json_has_no_nan(tmp_path: Path) -> None:
    result = runner.invoke(app, ["progress", "--json"])
    assert result.exit_code == 0
    json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))


def test_a_home_where_nothing_can_be_created_fails_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No lock file can be made in /proc/1: an error at once, not a wait for the lock (cut
    to a second here, so that a wait fails the test quickly instead of hanging it)."""
    from autograd_tutor.engine import store

    proc = Path("/proc/1")
    if not proc.is_dir():
        pytest.skip("no /proc here")
    monkeypatch.setattr(store, "LOCK_NOTICE", 0.2)
    monkeypatch.setattr(store, "LOCK_TIMEOUT", 1.0)
    result = runner.invoke(app, ["exercise", "1", "--answer", f"x.grad={RIGHT}"],
                           env={"AUTOGRAD_TUTOR_HOME": str(proc)})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "not saved" in result.stderr and "locked" not in result.stderr
    assert "waiting" not in result.stderr


def test_temporary_files_of_dead_writers_are_removed(tutor_env: Path) -> None:
    from autograd_tutor.engine.store import FILE_NAME

    assert runner.invoke(app, ["exercise", "1", "--answer", f"x.grad={RIGHT}"]).exit_code == 0
    stale = tutor_env / f"{FILE_NAME}.dead-writer.tmp"
    stale.write_bytes(b"x" * 4096)
    assert runner.invoke(app, ["reset", "3", "--yes"]).exit_code == 0
    assert not stale.exists()
    assert "done" in runner.invoke(app, ["list"]).output  # exercise 1's history is kept


def test_an_empty_plots_folder_is_a_usage_error() -> None:
    result = runner.invoke(app, ["exercise", "5", "--reveal", "--plots", ""])
    assert result.exit_code == 2 and "--plots" in result.output


def test_a_plots_symlink_loop_is_named_as_such(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    result = runner.invoke(app, ["exercise", "5", "--reveal", "--graph", "none",
                                 "--plots", str(loop)])
    assert result.exit_code == 0, result.output
    assert "link loop" in result.stderr and "File exists" not in result.stderr


def test_check_does_not_replay_the_learners_escape_codes(tmp_path: Path) -> None:
    """The learner's file runs in its own (real) child either way; the tutor that prints
    its output can run in-process."""
    learner = tmp_path / "loud.py"
    learner.write_text('print("\\x1b[31mRED\\x1b[0m")\nraise SystemExit("\\x1b[2Jbye")\n',
                       encoding="utf-8")
    result = runner.invoke(app, ["check", "4", str(learner), "--timeout", "20"],
                           env={"NO_COLOR": "1"})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "\x1b" not in result.stdout + result.stderr
    assert "RED" in result.stdout


def test_two_quick_ctrl_c_during_training_leave_no_traceback(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    answers = [part for pair in ("y_pred@1=0", "loss@1=14", "w.grad@1=-13", "b.grad@1=-2",
                                 "w@1=0.13", "b@1=0.02", "w.grad@zeroed=0", "closer@40=w",
                                 "w@200=lsq", "b@200=lsq") for part in ("--answer", pair)]
    env = {**os.environ, "AUTOGRAD_TUTOR_HOME": str(tmp_path), "TERM": "xterm",
           "MPLBACKEND": "Agg"}
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(sys.executable, ["-m", "autograd_tutor", "exercise", "4",
                                           "--plots", str(tmp_path / "plots"), *answers],
                          env=env, dimensions=(40, 100), encoding="utf-8", timeout=90)
    child.expect(r"\d+/200")
    child.sendintr()
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130 or child.signalstatus is None
    assert "Traceback" not in child.before


def test_a_very_long_path_is_named_shortened(tmp_path: Path, monkeypatch, capsys) -> None:
    """Not "can't write the output": the file that failed, cut to a readable length."""
    import errno

    from autograd_tutor.cli import main

    monkeypatch.chdir(tmp_path)
    long = "a" * 5000
    monkeypatch.setattr(sys, "argv", ["autograd-tutor", "check", "4", long])
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 1
    err = capsys.readouterr().err
    message = err.strip().splitlines()[-1]
    assert message.startswith("error: aaaa") and "(5000 characters)" in message
    assert message.endswith(os.strerror(errno.ENAMETOOLONG)) and len(message) < 400
    assert "output" not in message


def test_escape_codes_in_a_path_are_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "x\x1b[31my.py"
    for args in (["exercise", "4", "--code", str(path)], ["check", "4", str(path)],
                 ["pack", "check", str(tmp_path / "p\x1b[31mq")],
                 ["exercise", "5", "--reveal", "--graph", "none", "--plots",
                  str(tmp_path / "f\x1b[31mg")]):
        result = runner.invoke(app, args)
        assert "\x1b" not in result.output, args
        assert "?[31m" in result.output or "\\x1b[31m" in result.output, args


@pytest.mark.parametrize("number", ["\u0663", "\uff11", "\u0661"])
def test_reset_takes_ascii_digits_only(number: str) -> None:
    """Arabic-Indic 3 and full-width 1 are digits to Python's int(), not exercise numbers."""
    finished = runner.invoke(app, ["exercise", "1", "--answer", f"x.grad={RIGHT}"])
    assert finished.exit_code == 0, finished.output
    result = runner.invoke(app, ["reset", number, "--yes"])
    assert result.exit_code == 2 and "is not an exercise" in result.output
    assert "done" in runner.invoke(app, ["list"]).output  # exercise 1 kept its progress
