"""The figures a pack may ask for, by kind, drawn with PyTorch's values after a reveal.

A step's `[[steps.figures]]` names a kind and gives each argument as an expression; this
module maps the kinds to the drawings in `plots` (matplotlib loads only here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from autograd_tutor.engine.answers import format_value
from autograd_tutor.engine.model import FIGURE_KINDS, Figures, FigureSpec
from autograd_tutor.views.ui import printable

if TYPE_CHECKING:
    from autograd_tutor.views.figure_worker import FigureWorker

Drawing = Callable[[dict[str, Any]], Any]
# The drawing of each kind model.FIGURE_KINDS declares, given the arguments it lists.
KINDS: dict[str, Drawing] = {}


def draws(kind: str) -> Callable[[Drawing], Drawing]:
    """Registers the drawing of a declared figure kind."""
    if kind not in FIGURE_KINDS:
        raise ValueError(f"{kind!r} is not declared in model.FIGURE_KINDS")

    def register(drawing: Drawing) -> Drawing:
        KINDS[kind] = drawing
        return drawing

    return register


@draws("loss")
def _loss(a: dict[str, Any]) -> Any:
    from autograd_tutor.views import plots

    return plots.loss_figure(list(a["losses"]))


@draws("fit")
def _fit(a: dict[str, Any]) -> Any:
    from autograd_tutor.views import plots

    best, true = a.get("best"), a.get("true")
    return plots.fit_figure(a["xs"], a["ys"], a["w"], a["b"],
                            tuple(best) if best is not None else None,
                            tuple(true) if true is not None else None)


@draws("least-squares")
def _least_squares(a: dict[str, Any]) -> Any:
    from autograd_tutor.views import plots

    w_ls, b_ls = a["best"]
    path = [tuple(point) for point in a.get("path", [])]
    return plots.least_squares_figure(a["xs"], a["ys"], a["w"], a["b"], w_ls, b_ls, path=path)


@draws("detach")
def _detach(a: dict[str, Any]) -> Any:
    from autograd_tutor.views import plots

    return plots.detach_figure(grad_without=f"grad={format_value(a['without'])}",
                               grad_with=f"grad={format_value(a['with'])}")


if set(KINDS) != set(FIGURE_KINDS):  # a declared kind nothing draws: a bug, said at once
    raise ImportError(f"no drawing for figure kinds {sorted(set(FIGURE_KINDS) - set(KINDS))}")


def publish(specs: Sequence[FigureSpec], value: Callable[[str], Any], target: Figures,
            worker: FigureWorker | None = None) -> list[str]:
    """Draw and save each figure as NAME.png (by `worker` when one was started and can);
    open windows when asked and possible."""
    jobs = [(spec.kind, {name: value(text) for name, text in spec.args},
             target.directory / (spec.name + ".png")) for spec in specs]
    done = worker.draw(jobs) if worker is not None and not target.show else None
    if done is not None:
        return _lines(done["replaced_backend"], done["saved"])
    from autograd_tutor.views import plots

    drawn = [KINDS[kind](args) for kind, args, _ in jobs]
    paths = [path for _, _, path in jobs]
    lines = _lines(plots.REPLACED_BACKEND,
                   [str(plots.save(figure, path)) for figure, path in zip(drawn, paths,
                                                                         strict=True)])
    if target.show and not plots.show(drawn):
        lines.append("No display is available to show the figures; they are saved above.")
    return lines


def _lines(replaced_backend: str, saved: Sequence[str]) -> list[str]:
    lines = [f"MPLBACKEND={replaced_backend!r} is not a matplotlib backend; the figures "
             "were drawn with Agg."] if replaced_backend else []
    # The path as text: a folder name's escape codes are not replayed (nor is it cut short).
    return lines + [f"Saved figure: `{printable(path, limit=None)}`" for path in saved]
