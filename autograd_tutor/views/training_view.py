"""The live view of Exercise 4's training: progress, loss, w, b and a sparkline of the loss.

The engine runs the notebook's own loop (`for step in range(200):`) with `exec` and puts
`live_range(...)` into the namespace under the name `range`, so the code the learner reads
is exactly the code that runs. After each step the view reads `losses`, `w` and `b` from
that namespace. Nothing here imports torch: values are read through `.item()`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import suppress
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

BLOCKS = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 40
MAX_SPARK_WIDTH = 60


def _squeeze(values: Sequence[float], width: int) -> list[float]:
    """At most `width` points: the mean of each of `width` consecutive, near-equal runs."""
    n = len(values)
    if n <= width:
        return list(values)
    runs = (values[i * n // width : (i + 1) * n // width] for i in range(width))
    # Each value divided first: a sum of values near the float limit would overflow.
    return [math.fsum(v / len(run) for v in run) for run in runs]


def _block(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return " "
    if high <= low:
        return BLOCKS[0]
    span = high - low
    if math.isfinite(span):
        fraction = (value - low) / span
    else:  # only for values near the float limits, where halving can't lose them to zero
        fraction = (value / 2 - low / 2) / (high / 2 - low / 2)
    index = math.floor(fraction * len(BLOCKS)) if math.isfinite(fraction) else len(BLOCKS)
    return BLOCKS[max(0, min(len(BLOCKS) - 1, index))]


def _log_scale(losses: Sequence[float]) -> list[float]:
    """A loss falls fast, then slowly: on a log scale the slow part still shows a slope."""
    if all(value > 0 for value in losses):
        return [math.log10(value) for value in losses]
    return list(losses)


def sparkline(values: Sequence[float], width: int) -> str:
    """One block character per value (lowest ▁, highest █), squeezed to at most `width`."""
    if width <= 0 or not values:
        return ""
    points = _squeeze(values, width)
    finite = [v for v in points if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    return "".join(_block(v, low, high) for v in points)


def _number(value: Any) -> float | None:
    """A plain float from a float or one-element tensor; None if there is nothing to show."""
    if value is None:
        return None
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _view(ns: Mapping[str, Any], done: int, total: int, width: int) -> RenderableType:
    raw = ns.get("losses") or []
    losses = [v for v in map(_number, raw) if v is not None]
    progress = Table.grid(padding=(0, 2))
    progress.add_row(
        Text(f"{done:>{len(str(total))}}/{total}"),
        ProgressBar(total=max(total, 1), completed=done, width=BAR_WIDTH),
    )
    values = Text(
        f"{_shown(losses[-1] if losses else None)}   "
        f"w = {_shown(_number(ns.get('w')))}   b = {_shown(_number(ns.get('b')))}"
    )
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("step", progress)
    grid.add_row("loss", values)
    grid.add_row("log", Text(sparkline(_log_scale(losses), width), style="cyan"))
    return grid


def _animated(
    console: Console, ns: Mapping[str, Any], steps: range, delay: float, lives: list[Live]
) -> Generator[int, None, None]:
    total = len(steps)
    width = max(1, min(MAX_SPARK_WIDTH, console.width - 8))
    # A generator owns the Live: breaking out of the loop, or an error in it, closes the
    # generator, which leaves the `with` and stops the display.
    live = Live(_view(ns, 0, total, width), console=console, auto_refresh=False)
    lives.append(live)
    with live:
        for done, index in enumerate(steps, start=1):
            yield index
            live.update(_view(ns, done, total, width), refresh=True)
            if delay > 0:
                time.sleep(delay)


class LiveRange:
    """What `live_range` returns: callable like `range`, and `close()` ends any live view.

    A Ctrl-C can leave a Live running with the cursor hidden: in the loop's body the owning
    generator stays suspended at its `yield`, and during the Live's first refresh rich does
    not stop it (it only catches Exception). The engine calls `close()` however the loop
    ended, and close() stops whatever is still live.
    """

    def __init__(self, console: Console, ns: Mapping[str, Any], show: bool, duration: float):
        self._console, self._ns, self._show, self._duration = console, ns, show, duration
        self._open: list[Generator[int, None, None]] = []
        self._lives: list[Live] = []

    def __call__(self, *args: int) -> Iterator[int]:
        indices = range(*args)  # bad arguments fail here, as range() itself would
        if not self._show:
            return iter(indices)
        steps = _animated(self._console, self._ns, indices,
                          self._duration / max(1, len(indices)), self._lives)
        self._open.append(steps)
        return steps

    def close(self) -> None:
        while self._open:
            self._open.pop().close()  # GeneratorExit at the yield: the Live stops cleanly
        while self._lives:
            live = self._lives.pop()
            if live.is_started:
                with suppress(Exception):  # a half-started Live may lack its render hook
                    live.stop()
                self._console.show_cursor(True)


def live_range(
    console: Console, ns: Mapping[str, Any], animate: bool, duration: float = 2.0
) -> LiveRange:
    """A stand-in for `range` that animates the training as the loop runs.

    Takes range's arguments and yields the same numbers. After each step it shows
    `ns['losses']`, `ns['w']` and `ns['b']`. With `animate` False, or when `console` is not a
    terminal, it is plain iteration and writes nothing. `duration` is roughly how long the
    animation lasts in seconds (the real steps are too fast to watch); 0 for no pause.
    """
    return LiveRange(console, ns, animate and console.is_terminal, duration)
