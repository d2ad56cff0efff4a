"""Benchmarks for autograd-tutor: each command against a baseline measured in the same run.

    python benchmarks/run.py [--runs N] [--only KEYS] [--markdown]

Every measurement runs N times after a warm-up (the start-up rows, `--help`, `list` and
`progress`, twice as often; the slow ones, Exercise 4, the reveal and `pack check`, about
half as often), alternating with its baseline so that changes in machine load hit both
alike. The table
shows medians and the ratio tool/baseline against the targets of the
"Fast and unbreakable" issue. Wall time is `time.perf_counter` around a child process; peak
memory and CPU time are the child's own `ru_maxrss` and user+system time from `os.wait4`.
The CPU ratio is shown for information: on a busy machine it moves less than wall time.
Only the standard library is needed; with pexpect installed the prompt benchmarks get a
real pseudo-terminal, without it stdin is a pipe. Works on Linux and macOS.

Where valgrind is installed, the start-up rows are also counted in instructions (callgrind,
one run each): a count does not move with the machine's load, so it shows the small
changes that wall time on a shared machine hides.

PASS/FAIL is printed per target; the exit status is 0 unless a benchmark itself crashes.

Hook: if benchmarks/graph_bench.py exists it is run afterwards with the same Python and
`--runs N`, and its output is shown under its own heading (skip it with --no-graph).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BASELINES = HERE / "baselines"
PROMPT_TIMEOUT = 60.0
HEAVY = ("torch", "matplotlib")
KEYS = ("help", "list", "progress", "prompt", "reveal", "ex4", "packcheck", "memory", "imports",
        "store", "history", "instructions")
NAN = float("nan")


# Running children ---------------------------------------------------------------------


def tool_command() -> list[str]:
    """The installed console script next to this Python, else `python -m autograd_tutor`."""
    script = Path(sys.executable).parent / "autograd-tutor"
    if script.exists():
        return [str(script)]
    found = shutil.which("autograd-tutor")
    return [found] if found else [sys.executable, "-m", "autograd_tutor"]


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def baseline(name: str, *args: str) -> list[str]:
    return python(str(BASELINES / name), *args)


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_mb: float = NAN
    cpu: float = NAN


def maxrss_mb(ru_maxrss: int) -> float:
    """ru_maxrss is in kilobytes on Linux and in bytes on macOS."""
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024


def run_once(cmd: Sequence[str], env: dict[str, str]) -> Sample:
    """Wall time, peak RSS and CPU time of one child, output discarded; failing is a crash."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.stderr is not None
    errors = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {child.returncode}:\n{errors}")
    return Sample(seconds, maxrss_mb(usage.ru_maxrss), usage.ru_utime + usage.ru_stime)


def _spawn(cmd: Sequence[str], env: dict[str, str]) -> Any:
    import pexpect

    return pexpect.spawn(cmd[0], list(cmd[1:]), env=env, dimensions=(40, 100),
                         encoding="utf-8", timeout=PROMPT_TIMEOUT)


def have_pexpect() -> bool:
    try:
        import pexpect  # noqa: F401
    except ImportError:
        return False
    return True


def time_to_text(cmd: Sequence[str], env: dict[str, str], text: str) -> Sample:
    """Seconds from start until `text` appears on the child's output, then stop the child.

    With pexpect the child gets a real pseudo-terminal, as a learner's shell would give it;
    without pexpect stdin is a pipe (the tutor then reads answers line by line).
    """
    if not have_pexpect():
        return _time_to_text_piped(cmd, env, text)
    start = time.perf_counter()
    child = _spawn(cmd, env)
    try:
        child.expect_exact(text)
        return Sample(time.perf_counter() - start)
    finally:
        child.terminate(force=True)


def _time_to_text_piped(cmd: Sequence[str], env: dict[str, str], text: str) -> Sample:
    start = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
    assert child.stdout is not None
    seen = b""
    try:
        while text.encode() not in seen:
            chunk = os.read(child.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"{' '.join(cmd)} ended before printing {text!r}")
            seen += chunk
        return Sample(time.perf_counter() - start)
    finally:
        child.kill()
        child.wait()


def answer_to_reveal(cmd: Sequence[str], env: dict[str, str], prompt: str, answer: str,
                     reveal: str) -> Sample:
    """Answer at once when the prompt appears; seconds from start until the reveal shows."""
    start = time.perf_counter()
    child = _spawn(cmd, env)
    try:
        child.expect_exact(prompt)
        child.sendline(answer)
        child.expect_exact(reveal)
        return Sample(time.perf_counter() - start)
    finally:
        child.terminate(force=True)


# Measurements -------------------------------------------------------------------------

Measure = Callable[[], Sample]


@dataclass
class Row:
    name: str
    tool: str
    base: str
    target: float | None  # ratio tool/baseline at most this, or None for information only
    unit: str = "s"
    offset: float = 0.0  # added to the baseline (the "+ 40 MB" of the memory target)
    tool_samples: list[Sample] = field(default_factory=list)
    base_samples: list[Sample] = field(default_factory=list)

    def _values(self, samples: list[Sample]) -> list[float]:
        return [sample.peak_mb if self.unit == "MB" else sample.seconds for sample in samples]

    @property
    def tool_median(self) -> float:
        return statistics.median(self._values(self.tool_samples))

    @property
    def base_median(self) -> float:
        return statistics.median(self._values(self.base_samples)) + self.offset

    @property
    def ratio(self) -> float:
        return self.tool_median / self.base_median

    @property
    def cpu_ratio(self) -> float:
        if self.unit != "s":
            return NAN
        tool = statistics.median(sample.cpu for sample in self.tool_samples)
        base = statistics.median(sample.cpu for sample in self.base_samples)
        return tool / base if base else NAN

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        return "PASS" if self.ratio <= self.target else "FAIL"


def interleave(runs: int, warmups: int, tool: Measure,
               base: Measure) -> tuple[list[Sample], list[Sample]]:
    """Alternate tool and baseline so that changes in machine load hit both alike."""
    for _ in range(warmups):
        tool()
        base()
    tool_samples, base_samples = [], []
    for index in range(runs):
        if index % 2 == 0:
            tool_samples.append(tool())
            base_samples.append(base())
        else:
            base_samples.append(base())
            tool_samples.append(tool())
    return tool_samples, base_samples


def heavy_imports(args: Sequence[str], env: dict[str, str]) -> list[str]:
    """Which of torch and matplotlib a command leaves in sys.modules when it ends."""
    code = (
        "import sys\n"
        "from autograd_tutor.cli import main\n"
        f"sys.argv = ['autograd-tutor', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    done = subprocess.run(python("-c", code), env=env, capture_output=True, text=True,
                          check=False)
    for line in done.stderr.splitlines():
        if line.startswith("HEAVY="):
            return [name for name in line[len("HEAVY="):].split(",") if name]
    raise RuntimeError(f"import check of {' '.join(args)} failed:\n{done.stderr}")


def benchmark(runs: int, work: Path, only: set[str]) -> tuple[list[Row], list[str]]:
    tool = tool_command()
    env = {**os.environ, "AUTOGRAD_TUTOR_HOME": str(work / "home"), "MPLBACKEND": "Agg",
           "COLUMNS": "100"}
    for name in ("FORCE_COLOR", "NO_COLOR", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    pty_env = {**env, "TERM": "xterm-256color"}
    slow_runs = max(3, (runs + 1) // 2)
    # The start-up rows take a fifth of a second and judge ratios of a few percent: on a
    # shared machine their medians need more samples than the rows that take seconds.
    quick_runs = 2 * runs
    rows: list[Row] = []
    notes: list[str] = []

    def wall(cmd: Sequence[str]) -> Measure:
        return lambda: run_once(cmd, env)

    def wanted(key: str) -> bool:
        return not only or key in only

    def measure(row: Row, tool_fn: Measure, base_fn: Measure, count: int = runs,
                warmups: int = 1) -> None:
        print(f"  {row.name} ({count} runs) ...", file=sys.stderr, flush=True)
        row.tool_samples, row.base_samples = interleave(count, warmups, tool_fn, base_fn)
        rows.append(row)

    help_text = subprocess.run([*tool, "--help"], env=env, capture_output=True, text=True,
                               check=True).stdout

    # (a) --help against a one-command Typer app's --help
    if wanted("help"):
        measure(Row("--help", "autograd-tutor --help", "typer app --help", 1.25),
                wall([*tool, "--help"]), wall(baseline("typer_help.py", "--help")),
                count=quick_runs)

    # (b) list (and progress) against a Typer command printing a five-row rich table
    if wanted("list"):
        measure(Row("list", "autograd-tutor list", "typer + rich table", 1.10),
                wall([*tool, "list"]), wall(baseline("typer_table.py")), count=quick_runs)
    if wanted("progress") and "progress" in help_text.split():
        measure(Row("progress", "autograd-tutor progress", "typer + rich table", 1.25),
                wall([*tool, "progress"]), wall(baseline("typer_table.py")),
                count=quick_runs)

    # (c) exercise 1: start to the first prediction prompt, against `list`
    if wanted("prompt"):
        measure(Row("first prompt", "exercise 1 to 'Predict'", "autograd-tutor list", 2.0),
                lambda: time_to_text([*tool, "exercise", "1"], pty_env, "Predict"),
                wall([*tool, "list"]))

    # (c') answered at once: how long the reveal waits, against a bare `import torch`
    if wanted("reveal") and have_pexpect():
        measure(Row("reveal, answered at once", "exercise 1 to the reveal",
                    "python -c 'import torch'", None),
                lambda: answer_to_reveal([*tool, "exercise", "1", "--graph", "none"], pty_env,
                                         "Predict", "34", "Your predictions"),
                wall(python("-c", "import torch")), count=slow_runs)

    # (d) exercise 4 with figures against the notebook's code as a plain script
    if wanted("ex4"):
        plots_tool, plots_base = work / "plots-tool", work / "plots-notebook"
        measure(Row("exercise 4 --reveal", "exercise 4 --reveal --plots", "notebook script",
                    1.10),
                wall([*tool, "exercise", "4", "--reveal", "--plots", str(plots_tool)]),
                wall(baseline("notebook_ex4.py", str(plots_base))), count=slow_runs)

    # (d') `pack check` of every built-in pack against all their code blocks run once
    if wanted("packcheck"):
        pack_check_row(tool, env, work, measure, slow_runs)

    # (e) peak memory of exercise 1 against `import torch` + 40 MB
    if wanted("memory"):
        measure(Row("peak memory", "exercise 1 --answer", "import torch + 40 MB", 1.0,
                    unit="MB", offset=40.0),
                wall([*tool, "exercise", "1", "--answer", "x.grad=34"]),
                wall(python("-c", "import torch")), count=slow_runs, warmups=0)

    if wanted("store"):
        notes.extend(store_timings(work, runs))

    # (f) a long history: list, review and progress with 100,000 attempts
    if wanted("history"):
        history_rows(tool, env, work, measure, quick_runs)

    if wanted("instructions"):
        # A home of its own: the state the timed rows met (by now the others hold a history).
        notes.extend(instruction_counts(tool, {**env, "AUTOGRAD_TUTOR_HOME": str(work / "count")}))

    if wanted("imports"):
        for args in (["--help"], ["list"], ["progress"]):
            heavy = heavy_imports(args, env)
            verdict = "PASS" if not heavy else "FAIL"
            imported = ", ".join(heavy) if heavy else "neither torch nor matplotlib"
            notes.append(f"{verdict}  autograd-tutor {' '.join(args)} imports {imported}")
    return rows, notes


def run_all(cmds: Sequence[Sequence[str]], env: dict[str, str]) -> Sample:
    """Commands one after another, as one sample: their summed wall and CPU time and the
    largest peak memory among them."""
    samples = [run_once(cmd, env) for cmd in cmds]
    return Sample(sum(s.seconds for s in samples), max(s.peak_mb for s in samples),
                  sum(s.cpu for s in samples))


def pack_check_row(tool: Sequence[str], env: dict[str, str], work: Path,
                   measure: Callable[..., None], count: int) -> None:
    """`pack check` of every built-in pack, as an author or CI runs it: one `pack check`
    command per pack, one after another (the command checks one pack; each runs the pack's
    code in a sandbox process of its own), against a script generated now from the same
    packs' TOML that runs every step's prepare and code once in one plain Python process."""
    script = work / "pack_code.py"
    made = subprocess.run(baseline("pack_code.py", str(script)), env=env, capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        raise RuntimeError(f"generating the pack code baseline failed:\n{made.stderr}")
    roots = made.stdout.splitlines()
    checks = [[*tool, "pack", "check", "--yes", root] for root in roots]
    measure(Row("pack check", f"pack check of {len(roots)} built-in packs",
                "their code blocks as one script", 1.5),
            lambda: run_all(checks, env), lambda: run_once(python(str(script)), env),
            count=count)


def instructions(cmd: Sequence[str], env: dict[str, str]) -> int:
    """Instructions one run executes, counted by valgrind's callgrind: the same count for
    the same program and input whatever else the machine is doing, so it shows a change of
    a few percent that wall time on a shared machine hides in its noise."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           *cmd], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    for line in done.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].strip())
    raise RuntimeError(f"callgrind gave no count for {' '.join(cmd)}:\n{done.stderr[-2000:]}")


def instruction_counts(tool: Sequence[str], env: dict[str, str]) -> list[str]:
    """The start-up targets again, as instructions (one run each; information only)."""
    if not shutil.which("valgrind"):
        return ["info  instructions: valgrind not found, not counted"]
    print("  instructions (callgrind, one run each) ...", file=sys.stderr, flush=True)
    pairs = ((["--help"], baseline("typer_help.py", "--help")),
             (["list"], baseline("typer_table.py")),
             (["progress"], baseline("typer_table.py")))
    lines = []
    for args, base in pairs:
        run_once([*tool, *args], env)  # the warm-up the timed rows have: the pack cache
        mine, theirs = instructions([*tool, *args], env), instructions(base, env)
        lines.append(f"info  instructions: autograd-tutor {' '.join(args)} {mine / 1e6:.0f}M, "
                     f"baseline {theirs / 1e6:.0f}M ({mine / theirs:.3f}x)")
    return lines


HISTORY = (
    "import sys\n"
    "from datetime import UTC, datetime, timedelta\n"
    "from pathlib import Path\n"
    "from autograd_tutor.engine.model import Attempt, Completion\n"
    "from autograd_tutor.engine.store import Store\n"
    "home, count = Path(sys.argv[1]), int(sys.argv[2])\n"
    "concepts = ['polynomial', 'chain-rule', 'accumulation', 'gd-step', 'detach']\n"
    "start = datetime.now(UTC) - timedelta(minutes=count + 1)\n"
    "rows = []\n"
    "for n in range(count):\n"
    "    number, run = (n // 3) % 5 + 1, f'run-{n // 3}'\n"
    "    moment = (start + timedelta(minutes=n)).isoformat(timespec='seconds')\n"
    "    # A miss now and then, and right answers at the end: nothing is due for days.\n"
    "    wrong = n % 4 == 0 and n < count - 50\n"
    "    rows.append(Attempt(id='x.grad', prediction=1.0, actual=34.0, by_hand=34.0,\n"
    "        correct=not wrong, skipped=False, pack='basics', exercise=number,\n"
    "        concept=concepts[number - 1], time=moment, run=run,\n"
    "        misconception='value-not-gradient' if wrong else None))\n"
    "    if n % 3 == 2:\n"
    "        rows.append(Completion('basics', number, run, moment))\n"
    "assert Store(home, warn=print).append(rows)\n"
)


def build_history(home: Path, count: int) -> None:
    """A history of `count` attempts, one a minute up to now: runs of three answers through
    the five basics exercises, each run finished, a miss now and then (so every concept has
    a review card), and right answers at the end, so that no review is due for days."""
    home.mkdir(parents=True, exist_ok=True)
    if count:
        subprocess.run([sys.executable, "-c", HISTORY, str(home), str(count)], check=True)


def history_rows(tool: Sequence[str], env: dict[str, str], work: Path,
                 measure: Callable[..., None], runs: int) -> None:
    """list, review and progress with 100,000 attempts against the same command with none:
    a long history must not slow them (its digest is read, not every row)."""
    full, empty = work / "history-100000", work / "history-0"
    build_history(full, 100_000)
    build_history(empty, 0)
    for args, target in ((["list"], 1.2), (["review"], 1.2), (["progress"], 2.0)):
        command = [*tool, *args]
        measure(Row(f"{args[0]}, 100,000 attempts", f"{args[0]} with 100,000 attempts",
                    f"{args[0]} with no history", target),
                lambda command=command: run_once(command, {**env,
                                                           "AUTOGRAD_TUTOR_HOME": str(full)}),
                lambda command=command: run_once(command, {**env,
                                                           "AUTOGRAD_TUTOR_HOME": str(empty)}),
                count=runs)


def store_timings(work: Path, runs: int) -> list[str]:
    """Saving one attempt into an empty history and into one of 100,000 attempts: an
    append-only log should cost the same (the old single JSON file rewrote 33 MB)."""
    code = (
        "import sys, time, statistics\n"
        "from pathlib import Path\n"
        "from autograd_tutor.engine.model import Attempt\n"
        "from autograd_tutor.engine.store import Store\n"
        "home, runs = Path(sys.argv[1]), int(sys.argv[3])\n"
        "row = Attempt(id='x.grad', prediction=34.0, actual=34.0, by_hand=34.0, correct=True,\n"
        "              skipped=False, pack='basics', exercise=1, concept='polynomial',\n"
        "              time='2026-01-01T00:00:00+00:00', run='bench')\n"
        "times = []\n"
        "for _ in range(runs):\n"
        "    store = Store(home, warn=print)\n"
        "    start = time.perf_counter()\n"
        "    store.record([row])\n"
        "    times.append(time.perf_counter() - start)\n"
        "print(statistics.median(times))\n"
    )
    lines = []
    medians = {}
    for count in (0, 100_000):
        home = work / f"store-{count}"
        build_history(home, count)
        result = subprocess.run([sys.executable, "-c", code, str(home), str(count), str(runs)],
                                capture_output=True, text=True, check=True)
        medians[count] = float(result.stdout.strip().splitlines()[-1])
    ratio = medians[100_000] / medians[0] if medians[0] else NAN
    verdict = "PASS" if ratio <= 2.0 else "FAIL"
    lines.append(f"{verdict}  saving one attempt: {medians[0] * 1000:.1f} ms into an empty "
                 f"history, {medians[100_000] * 1000:.1f} ms into 100,000 attempts "
                 f"({ratio:.2f}x; target <= 2x)")
    return lines


# Report -------------------------------------------------------------------------------


def fmt(value: float, unit: str) -> str:
    return f"{value:.3f} s" if unit == "s" else f"{value:.0f} MB"


def table(rows: Sequence[Row], markdown: bool) -> str:
    header = ("measurement", "tool", "baseline", "tool median", "baseline median", "ratio",
              "target", "result", "CPU ratio")
    lines = [(row.name, row.tool, row.base, fmt(row.tool_median, row.unit),
              fmt(row.base_median, row.unit), f"{row.ratio:.2f}x",
              "-" if row.target is None else f"<= {row.target:g}x", row.verdict,
              "-" if math.isnan(row.cpu_ratio) else f"{row.cpu_ratio:.2f}x") for row in rows]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([render(header), render(["-" * w for w in widths]),
                      *(render(cells) for cells in lines)])


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                              capture_output=True, text=True, check=False)
        if done.stdout.strip():
            return done.stdout.strip()
    return platform.processor() or platform.machine()


def machine() -> str:
    code = ("import importlib.metadata as m; print(', '.join(f'{n} {m.version(n)}' for n in "
            "('torch', 'typer', 'rich', 'matplotlib')))")
    versions = subprocess.run(python("-c", code), capture_output=True, text=True,
                              check=False).stdout.strip()
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs "
            f"({cpu_model()}), Python {platform.python_version()}, {versions}")


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return ""
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def run_graph_bench(runs: int) -> int:
    script = HERE / "graph_bench.py"
    if not script.exists():
        print("\ngraph capture: benchmarks/graph_bench.py not present (hook left for it)")
        return 0
    print("\ngraph capture and rendering (benchmarks/graph_bench.py):", flush=True)
    return subprocess.run(python(str(script), "--runs", str(runs)), check=False).returncode


def compile_tool() -> None:
    """Byte-compile the tool's package as pip does when it installs a wheel, so that an
    editable install under PYTHONDONTWRITEBYTECODE is not timed compiling its own source."""
    where = subprocess.run(python("-c", "import autograd_tutor; print(autograd_tutor.__file__)"),
                           capture_output=True, text=True, check=False).stdout.strip()
    if where:
        subprocess.run(python("-m", "compileall", "-q", str(Path(where).parent)), check=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per measurement")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--no-graph", action="store_true", help="skip graph_bench.py")
    parser.add_argument("--only", default="", metavar="KEYS",
                        help="comma-separated subset of: " + ",".join(KEYS))
    options = parser.parse_args(argv)
    only = {key.strip() for key in options.only.split(",") if key.strip()}
    if only - set(KEYS):
        parser.error(f"unknown --only keys: {', '.join(sorted(only - set(KEYS)))}")
    print(f"autograd-tutor benchmarks: medians of {options.runs} runs", file=sys.stderr)
    compile_tool()
    before = load()
    with tempfile.TemporaryDirectory(prefix="autograd-tutor-bench-") as temp:
        rows, notes = benchmark(options.runs, Path(temp), only)
    print(f"\nmachine: {machine()}")
    if before:
        print(f"load: before {before}; after {load()}")
    print()
    print(table(rows, options.markdown))
    print()
    for note in notes:
        print(note)
    failed = [row.name for row in rows if row.verdict == "FAIL"]
    print(f"\n{len(failed)} target(s) missed" + (f": {', '.join(failed)}" if failed else ""),
          flush=True)
    graph_status = 0 if options.no_graph else run_graph_bench(options.runs)
    if graph_status != 0:
        print(f"graph_bench.py exited with status {graph_status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
