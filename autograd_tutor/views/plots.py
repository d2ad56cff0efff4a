"""The notebook's figures, drawn with matplotlib's object API so they render headless.

Every figure is a `matplotlib.figure.Figure` built without pyplot, so nothing here picks a
GUI backend or touches global figure state: `save` writes PNGs through Agg on any machine.
Only `show` goes near pyplot, because pyplot owns the GUI event loop that windows need.
Inputs are plain floats and lists, so this module never imports torch.
"""

from __future__ import annotations

import functools
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import ParamSpec

# matplotlib refuses to import at all when MPLBACKEND names no backend; a figure is not worth
# a crash, so an unknown name is replaced by Agg (headless PNGs) and the session says so.
_BACKENDS = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template", "gtk3agg", "gtk3cairo",
             "gtk4agg", "gtk4cairo", "macosx", "nbagg", "notebook", "qtagg", "qtcairo",
             "qt5agg", "qt5cairo", "tkagg", "tkcairo", "webagg", "wx", "wxagg", "wxcairo",
             "inline", "ipympl", "widget"}
REPLACED_BACKEND = ""
_asked = os.environ.get("MPLBACKEND", "")
if _asked and _asked.lower() not in _BACKENDS and not _asked.startswith("module://"):
    REPLACED_BACKEND = _asked
    os.environ["MPLBACKEND"] = "agg"

import matplotlib.style  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

STYLE = "dark_background"
BLUE = "#4a9eff"
GREY = "#666666"
GREEN = "#00ff88"
# Backends that count as "interactive" but open no window (browser or notebook based).
_NOT_WINDOWS = {"webagg", "nbagg", "notebook"}

P = ParamSpec("P")


def _dark(build: Callable[P, Figure]) -> Callable[P, Figure]:
    """Draw under the dark style: matplotlib reads colours while each artist is created."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with matplotlib.style.context(STYLE):
            return build(*args, **kwargs)

    return wrapper


def _new_figure(width: float, height: float, panels: int = 1) -> tuple[Figure, list[Axes]]:
    # Fixed margins, not layout="tight": tight layout draws every figure twice, and figures
    # are most of Exercise 4's running time.
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.13, top=0.9, wspace=0.22)
    return fig, [fig.add_subplot(1, panels, i + 1) for i in range(panels)]


def _line_x(X: Sequence[float]) -> np.ndarray:
    return np.linspace(min(X), max(X), 100)


@_dark
def loss_figure(losses: list[float]) -> Figure:
    """The notebook's "Training Loss" panel: MSE against step."""
    fig, (ax,) = _new_figure(6, 4)
    ax.plot(range(len(losses)), losses, linewidth=2)
    ax.set_xlabel("Step")
    ax.set_ylabel("MSE Loss")
    ax.set_title("Training Loss")
    ax.grid(alpha=0.3)
    return fig


def _draw_fit(ax: Axes, X: Sequence[float], y: Sequence[float], w: float, b: float,
              true_line: tuple[float, float] | None = None) -> None:
    """Data, the learned line (red) and, when the lesson gives it, the line the data came
    from (green, dashed)."""
    x_line = _line_x(X)
    ax.scatter(X, y, alpha=0.7, label="Data")
    ax.plot(x_line, w * x_line + b, "r-", linewidth=2, label=f"Learned: y = {w:.2f}x + {b:.2f}")
    if true_line is not None:
        true_w, true_b = true_line
        ax.plot(
            x_line,
            true_w * x_line + true_b,
            "--",
            color=GREEN,  # the notebook's "g--", brightened: plain green vanishes on black
            linewidth=2,
            alpha=0.6,
            label=f"True: y = {true_w:g}x + {true_b:g}",
        )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(alpha=0.3)


@_dark
def fit_figure(
    X: list[float],
    y: list[float],
    w: float,
    b: float,
    least_squares: tuple[float, float] | None = None,
    true_line: tuple[float, float] | None = None,
) -> Figure:
    """The notebook's "Learned Fit" panel; with `least_squares`, that line beside it, and
    with `true_line` (slope, intercept), the line the data came from."""
    fig, (ax,) = _new_figure(6, 4)
    _draw_fit(ax, X, y, w, b, true_line)
    if least_squares is not None:
        w_ls, b_ls = least_squares
        x_line = _line_x(X)
        ax.plot(
            x_line,
            w_ls * x_line + b_ls,
            ":",
            color=BLUE,
            linewidth=2,
            label=f"Least squares: y = {w_ls:.2f}x + {b_ls:.2f}",
        )
    ax.set_title("Learned Fit")
    ax.legend()
    return fig


def _mse_grid(X: Sequence[float], y: Sequence[float], ws: np.ndarray, bs: np.ndarray) -> np.ndarray:
    """MSE(w, b) on a grid, for contour lines of the loss surface."""
    x = np.asarray(X, dtype=float)
    t = np.asarray(y, dtype=float)
    W, B = np.meshgrid(ws, bs)
    residuals = t[None, None, :] - (W[..., None] * x[None, None, :] + B[..., None])
    return np.asarray((residuals**2).mean(axis=-1))


def _draw_parameter_plane(
    ax: Axes,
    X: Sequence[float],
    y: Sequence[float],
    learned: tuple[float, float],
    least_squares: tuple[float, float],
    path: Sequence[tuple[float, float]] = (),
) -> None:
    """Loss contours over (w, b): gradient descent walks downhill towards the star."""
    (w, b), (w_ls, b_ls) = learned, least_squares
    points = [(w, b), *path]
    span_w = max(max(abs(p[0] - w_ls) for p in points), 0.5) * 1.25
    span_b = max(max(abs(p[1] - b_ls) for p in points), 0.5) * 1.25
    ws = np.linspace(w_ls - span_w, w_ls + span_w, 100)
    bs = np.linspace(b_ls - span_b, b_ls + span_b, 100)
    ax.contour(ws, bs, _mse_grid(X, y, ws, bs), levels=15, cmap="viridis", alpha=0.8)
    if path:
        ax.plot(
            [p[0] for p in path],
            [p[1] for p in path],
            "-",
            color="orange",
            linewidth=1.5,
            label="Training path (w, b)",
        )
    ax.plot(
        [w_ls],
        [b_ls],
        marker="*",
        markersize=16,
        color=BLUE,
        linestyle="none",
        label=f"Least squares ({w_ls:.3f}, {b_ls:.3f})",
    )
    ax.plot(
        [w],
        [b],
        marker="o",
        markersize=9,
        color="red",
        linestyle="none",
        label=f"Learned ({w:.3f}, {b:.3f})",
    )
    ax.annotate(
        "",
        xy=(w_ls, b_ls),
        xytext=(w, b),
        arrowprops={"arrowstyle": "->", "color": "white", "lw": 1.5},
    )
    ax.set_xlabel("w")
    ax.set_ylabel("b")
    ax.set_title("Where gradient descent is heading")
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.3)


@_dark
def least_squares_figure(
    X: list[float],
    y: list[float],
    w: float,
    b: float,
    w_ls: float,
    b_ls: float,
    path: Sequence[tuple[float, float]] = (),
) -> Figure:
    """The learned (w, b) next to the least-squares solution on the loss surface, with the
    path training took: w moves first, b follows slowly."""
    fig, (ax,) = _new_figure(6, 4.5)
    _draw_parameter_plane(ax, X, y, (w, b), (w_ls, b_ls), path)
    return fig


def _box(ax: Axes, text: str, x: float, colour: str, size: int = 20) -> None:
    ax.annotate(
        text,
        xy=(x, 2),
        fontsize=size,
        ha="center",
        bbox={"boxstyle": "round,pad=0.5", "facecolor": colour, "alpha": 0.8},
    )


def _arrow(ax: Axes, start: float, end: float, colour: str, dashed: bool = False) -> None:
    props: dict[str, object] = {"arrowstyle": "->", "color": colour, "lw": 2}
    if dashed:
        props["linestyle"] = "dashed"
    ax.annotate("", xy=(end, 2), xytext=(start, 2), arrowprops=props)


def _grad_label(text: str) -> str:
    """Accept either the bare value ("36.0", "None") or the full label ("grad=36")."""
    return text if text.startswith("grad") else f"grad={text}"


@_dark
def detach_figure(grad_without: str, grad_with: str) -> Figure:
    """Exercise 5's two panels: a -> b -> c with gradients flowing, then cut by b.detach().

    The labels are `a.grad` as PyTorch reported it at run time, e.g. "36.0" and "None".
    """
    fig, (flow, cut) = _new_figure(12, 3, panels=2)
    for ax in (flow, cut):
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 4)
        ax.axis("off")
    _box(flow, "a", 1, BLUE)
    _arrow(flow, 2, 3.5, "white")
    _box(flow, "b = a*3", 5, BLUE)
    _arrow(flow, 6.5, 7.5, "white")
    _box(flow, "c = b^2", 9, BLUE)
    flow.annotate(_grad_label(grad_without), xy=(1, 0.8), fontsize=14, ha="center", color=GREEN)
    flow.set_title("Without detach: gradients flow through", fontsize=14)

    _box(cut, "a", 1, GREY)
    _arrow(cut, 2, 3.5, "red", dashed=True)
    cut.annotate("X", xy=(2.75, 2.5), fontsize=18, ha="center", color="red", fontweight="bold")
    _box(cut, "b.detach()", 5, BLUE, size=18)
    _arrow(cut, 6.8, 7.5, "white")
    _box(cut, "c = b^2", 9, BLUE)
    cut.annotate(_grad_label(grad_with), xy=(1, 0.8), fontsize=14, ha="center", color="red")
    cut.set_title("With detach: gradient flow severed", fontsize=14)
    return fig


def save(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG at `path`, creating folders as needed; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed over it: a symlink at `path` is replaced,
    # never followed, so a figure can't overwrite the file a link points to.
    # O_EXCL: never an existing file or link; 0o666 less the umask, as open() would make it.
    temp = str(path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp"))
    handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            # The figure's own (dark) face colour, even if a matplotlibrc overrides it.
            fig.savefig(file, format="png", dpi=100, facecolor=fig.get_facecolor())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def display_available() -> bool:
    """Whether a window could appear at all: macOS and Windows always have a desktop."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _window_backends() -> set[str]:
    from matplotlib.backends import BackendFilter, backend_registry

    return set(backend_registry.list_builtin(BackendFilter.INTERACTIVE)) - _NOT_WINDOWS


def show(figs: Iterable[Figure]) -> bool:
    """Open a window per figure and wait until they are closed.

    Returns False, without raising, when there is no display, when MPLBACKEND asks for a
    non-GUI backend, or when no GUI toolkit loads. Save figures before showing them: pyplot
    takes over their canvas while the windows are open.
    """
    figures = list(figs)
    if not figures or not display_available():
        return False
    requested = os.environ.get("MPLBACKEND", "").lower()
    if requested and requested not in _window_backends():
        return False
    try:
        return _show_windows(figures)
    except Exception:  # a broken display or toolkit must never end the lesson
        return False


def _show_windows(figures: list[Figure]) -> bool:
    import matplotlib.pyplot as plt

    # get_backend() resolves matplotlib's automatic choice, which falls back to Agg when no
    # toolkit can reach the display.
    if plt.get_backend().lower() not in _window_backends():
        return False
    try:
        for fig in figures:
            plt.figure(fig)  # hands the existing Figure to pyplot's window manager
        plt.show()
    finally:
        for fig in figures:
            plt.close(fig)
    return True
