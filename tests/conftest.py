"""Each test gets its own progress directory and packs path, a fixed width, no forced colour,
headless plots."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def tutor_env(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOGRAD_TUTOR_HOME", str(home))
    # Only the built-in packs (and those a test adds): never the developer's own.
    monkeypatch.setenv("AUTOGRAD_TUTOR_PACKS", str(tmp_path / "no-extra-packs"))
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    return home


@pytest.fixture(autouse=True)
def ctrl_c_stays_ctrl_c():
    """No test may leave Ctrl-C ignored: pseudo-terminal tests' children would inherit it."""
    import signal

    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
