"""The figures render headless (MPLBACKEND=Agg) to valid PNGs, and `show` never fails."""

from __future__ import annotations

import subprocess
import sys

import pytest
from matplotlib.figure import Figure

from autograd_tutor.views import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
X = [-3 + 6 * i / 19 for i in range(20)]
Y = [2 * x + 1 + (0.3 if i % 2 else -0.3) for i, x in enumerate(X)]
LOSSES = [13.9 * 0.97**i for i in range(200)]


def all_figures() -> dict[str, Figure]:
    return {
        "loss": plots.loss_figure(LOSSES),
        "fit": plots.fit_figure(X, Y, 1.95, 1.05),
        "least_squares": plots.least_squares_figure(X, Y, 1.5, 0.4, 1.95, 1.06),
        "detach": plots.detach_figure("36.0", "None"),
    }


def texts(fig: Figure) -> list[str]:
    """Every piece of text drawn on the figure: titles, annotations and legend entries."""
    found = [t.get_text() for ax in fig.axes for t in ax.texts]
    found += [ax.get_title() for ax in fig.axes]
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            found += [t.get_text() for t in legend.get_texts()]
    return found


@pytest.mark.parametrize("name", ["loss", "fit", "least_squares", "detach"])
def test_each_figure_saves_as_a_png(tmp_path, name):
    path = tmp_path / "plots" / "nested" / f"{name}.png"
    assert plots.save(all_figures()[name], path) == path
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > len(PNG_SIGNATURE)


def test_figures_use_the_dark_style():
    for fig in all_figures().values():
        assert tuple(fig.get_facecolor()[:3]) == (0.0, 0.0, 0.0)


def test_fit_figure_labels_the_learned_and_true_lines():
    labels = texts(plots.fit_figure(X, Y, 1.9533, 1.0461, true_line=(2.0, 1.0)))
    assert "Learned: y = 1.95x + 1.05" in labels
    assert "True: y = 2x + 1" in labels


def test_fit_figure_can_show_the_least_squares_line_beside_the_learned_one():
    labels = texts(plots.fit_figure(X, Y, 1.5, 0.4, (1.9533, 1.0648)))
    assert "Least squares: y = 1.95x + 1.06" in labels
    assert "Learned: y = 1.50x + 0.40" in labels


def test_least_squares_figure_draws_the_training_path_to_the_solution():
    path = [(0.0, 0.0), (0.8, 0.1), (1.5, 0.4)]
    fig = plots.least_squares_figure(X, Y, 1.5, 0.4, 1.9533, 1.0648, path=path)
    labels = texts(fig)
    assert "Least squares (1.953, 1.065)" in labels
    assert "Learned (1.500, 0.400)" in labels
    assert "Training path (w, b)" in labels
    drawn = [line for line in fig.axes[0].get_lines() if line.get_label() == "Training path (w, b)"]
    assert list(drawn[0].get_xdata()) == [p[0] for p in path]


def test_detach_figure_draws_the_grads_it_is_given():
    drawn = texts(plots.detach_figure("36.0", "None"))
    assert "grad=36.0" in drawn and "grad=None" in drawn
    assert "Without detach: gradients flow through" in drawn
    assert "With detach: gradient flow severed" in drawn
    assert "grad=7" in texts(plots.detach_figure("grad=7", "None"))


def test_building_and_saving_never_loads_pyplot(tmp_path):
    # A fresh process: pyplot may already be imported in this one by another test.
    out = tmp_path / "loss.png"
    code = (
        "import sys; from pathlib import Path; from autograd_tutor.views import plots; "
        f"plots.save(plots.loss_figure([3.0, 2.0, 1.0]), Path({str(out)!r})); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_show_without_a_display_returns_false(monkeypatch):
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert plots.show(all_figures().values()) is False


def test_show_respects_a_headless_backend_even_with_a_display(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4242")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert plots.show([plots.loss_figure(LOSSES)]) is False


def test_show_returns_false_when_the_gui_fails(monkeypatch):
    def broken(figures: list[Figure]) -> bool:
        raise RuntimeError("couldn't connect to display")

    monkeypatch.setenv("DISPLAY", ":4242")
    monkeypatch.delenv("MPLBACKEND")
    monkeypatch.setattr(plots, "_show_windows", broken)
    assert plots.show([plots.loss_figure(LOSSES)]) is False


def test_show_with_nothing_to_show_returns_false():
    assert plots.show([]) is False


def test_every_declared_figure_kind_has_one_drawing() -> None:
    """The kinds are declared once (model.FIGURE_KINDS); views.figures draws each and
    accepts no drawing for an undeclared kind."""
    from autograd_tutor.engine.model import FIGURE_KINDS
    from autograd_tutor.views import figures

    assert set(figures.KINDS) == set(FIGURE_KINDS)
    with pytest.raises(ValueError, match="not declared"):
        figures.draws("no-such-kind")
