"""A --reveal run's figures are drawn by a process of its own; whenever that process can't,
the session draws them itself, so no figure is lost to the shortcut."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from autograd_tutor.cli import app
from autograd_tutor.engine.model import Figures, FigureSpec
from autograd_tutor.views import figure_worker, figures, session
from autograd_tutor.views.figure_worker import FigureWorker

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LOSS = FigureSpec("loss-curve", "loss", (("losses", "losses"),))


def values() -> dict[str, object]:
    return {"losses": torch.linspace(3.0, 1.0, 50)}


def test_the_worker_draws_and_saves_what_it_is_sent(tmp_path: Path) -> None:
    worker = FigureWorker().start()
    lines = figures.publish([LOSS], values().__getitem__, Figures(tmp_path), worker)
    saved = tmp_path / "loss-curve.png"
    assert lines == [f"Saved figure: `{saved}`"]
    assert saved.read_bytes().startswith(PNG_SIGNATURE)
    assert worker.proc is None  # used once, then gone


def test_a_worker_that_died_leaves_the_drawing_to_the_session(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setattr(figure_worker, "_ENTRY", "import sys; sys.exit(3)")
    worker = FigureWorker().start()
    lines = figures.publish([LOSS], values().__getitem__, Figures(tmp_path), worker)
    assert lines == [f"Saved figure: `{tmp_path / 'loss-curve.png'}`"]
    assert (tmp_path / "loss-curve.png").read_bytes().startswith(PNG_SIGNATURE)


def test_a_worker_that_could_not_start_leaves_the_drawing_to_the_session(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(figure_worker.sys, "executable", str(tmp_path / "no-python"))
    worker = FigureWorker().start()
    assert worker.proc is None
    figures.publish([LOSS], values().__getitem__, Figures(tmp_path), worker)
    assert (tmp_path / "loss-curve.png").is_file()


def test_a_place_the_worker_cannot_write_is_the_same_error_as_in_the_session(
        tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    with pytest.raises(OSError) as in_session:
        figures.publish([LOSS], values().__getitem__, Figures(blocked / "plots"))
    with pytest.raises(OSError) as in_worker:
        figures.publish([LOSS], values().__getitem__, Figures(blocked / "plots"),
                        FigureWorker().start())
    assert (in_worker.value.errno, in_worker.value.strerror) == (
        in_session.value.errno, in_session.value.strerror)


def test_the_worker_ends_when_the_session_goes_away() -> None:
    """Closed without a request (Ctrl-C, an error): it exits by itself, never lingers."""
    proc = subprocess.Popen([sys.executable, "-c", figure_worker._ENTRY],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=figure_worker.autograd_tutor.child_environment())
    out, _ = proc.communicate(b"", timeout=60)
    assert proc.returncode == 0 and out == b""


def test_values_travel_as_plain_numbers() -> None:
    sent = figure_worker.plain({"w": torch.tensor(1.5), "xs": torch.tensor([1.0, 2.0]),
                                "best": (2.0, 1.0), "path": [(0.0, 0.0), (0.5, 0.25)]})
    assert json.loads(json.dumps(sent)) == {"w": 1.5, "xs": [1.0, 2.0], "best": [2.0, 1.0],
                                            "path": [[0.0, 0.0], [0.5, 0.25]]}


def test_a_reveal_run_draws_through_the_worker(tmp_path: Path, monkeypatch) -> None:
    used: list[int] = []
    draw = FigureWorker.draw

    def counted(self: FigureWorker, jobs):  # type: ignore[no-untyped-def]
        reply = draw(self, jobs)
        used.append(len(reply["saved"]) if reply else 0)
        return reply

    monkeypatch.setattr(FigureWorker, "draw", counted)
    # A process that has matplotlib already draws in-process; this one must not look so.
    monkeypatch.delitem(sys.modules, session.PLOTS, raising=False)
    result = CliRunner().invoke(app, ["exercise", "5", "--reveal", "--plots", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert used == [1]
    assert (tmp_path / "exercise5-detach.png").read_bytes().startswith(PNG_SIGNATURE)


def test_a_process_with_matplotlib_loaded_draws_in_process(tmp_path: Path, monkeypatch) -> None:
    from autograd_tutor.views import plots  # noqa: F401  (loaded, as after an earlier run)

    def refuse(self: FigureWorker, jobs):  # type: ignore[no-untyped-def]
        raise AssertionError("started a worker though matplotlib was loaded")

    monkeypatch.setattr(FigureWorker, "draw", refuse)
    result = CliRunner().invoke(app, ["exercise", "5", "--reveal", "--plots", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "exercise5-detach.png").is_file()
