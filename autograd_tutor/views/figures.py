"""The figures a pack may ask for, by kind, drawn with PyTorch's values after a reveal.

A step's `[[steps.figures]]` names a kind and gives each argument as an expression; this
module maps the kinds to the drawings in `plots` (matplotlib loads only here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from autograd_tutor.engine.answers import format_value
from autograd_tutor.engine.model import Figures, FigureSpec


def _loss(a: dict[str, Any]) -> Any:
    from autograd_tutor.views import plots

    return plots.loss_figure(list(a["losses"]))


def _fit(a: dict[str, Any]) -> Any:
    from autograd_tutor.views import plots

    best = a.get("best")
    return plots.fit_figure(a["xs"], a["ys"], a["w"], a["b"],
                            tuple(best) if best is not None else None)


def _least_squares(a: dict[str, Any]) -> Any:
    from autograd_tutor.views import plots

    w_ls, b_ls = a["best"]
    path = [tuple(point) for point in a.get("path", [])]
    return plots.least_squares_figure(a["xs"], a["ys"], a["w"], a["b"], w_ls, b_ls, path=path)


def _detach(a: dict[str, Any]) -> Any:
    from autograd_tutor.views import plots

    return plots.detach_figure(grad_without=f"grad={format_value(a['without'])}",
                               grad_with=f"grad={format_value(a['with'])}")


# The kinds content.packs.FIGURE_KINDS declares, with the arguments it lists for each.
KINDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "loss": _loss,
    "fit": _fit,
    "least-squares": _least_squares,
    "detach": _detach,
}


def build(spec: FigureSpec, value: Callable[[str], Any]) -> Any:
    return KINDS[spec.kind]({name: value(text) for name, text in spec.args})


def publish(specs: Sequence[FigureSpec], value: Callable[[str], Any],
            target: Figures) -> list[str]:
    """Draw and save each figure as NAME.png; open windows when asked and possible."""
    from autograd_tutor.views import plots

    drawn = {spec.name: build(spec, value) for spec in specs}
    lines = [f"MPLBACKEND={plots.REPLACED_BACKEND!r} is not a matplotlib backend; the figures "
             "were drawn with Agg."] if plots.REPLACED_BACKEND else []
    lines += [f"Saved figure: `{plots.save(figure, target.directory / (name + '.png'))}`"
             for name, figure in drawn.items()]
    if target.show and not plots.show(drawn.values()):
        lines.append("No display is available to show the figures; they are saved above.")
    return lines
