"""Figures drawn and saved by a process of their own, for runs that wait for nobody.

Importing matplotlib takes about as long as a third of PyTorch's import, and both only use
one core. A `--reveal` run starts this process first thing: it loads matplotlib on the
other core while the session loads PyTorch and trains, then draws what it is sent. The
values are PyTorch's, computed in the session and sent as plain numbers. Whenever the
process can't do the job (it failed to start, crashed, or is too slow), the session draws
the figures itself, so a figure is never lost to this shortcut. Windows (`--show`) are
always opened by the session itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import autograd_tutor

TIMEOUT = 120.0
_ENTRY = "from autograd_tutor.views.figure_worker import main; main()"


class FigureWorker:
    """The parent's end: start early, then `draw` once."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> FigureWorker:
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _ENTRY], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=autograd_tutor.child_environment())
        except OSError:
            self.proc = None
        return self

    def draw(self, jobs: Sequence[tuple[str, dict[str, Any], Path]]) -> dict[str, Any] | None:
        """Send (kind, arguments, path) for each figure; the reply, or None if the worker
        could not do it (the caller then draws in-process). Raises OSError when a figure
        could not be saved, as drawing in-process would."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        request = {"figures": [{"kind": kind, "args": plain(args), "path": str(path)}
                               for kind, args, path in jobs]}
        try:
            out, _ = proc.communicate(json.dumps(request).encode("utf-8") + b"\n",
                                      timeout=TIMEOUT)
            reply = json.loads(out)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            _stop(proc)
            return None
        if not isinstance(reply, dict):
            return None
        if "os_error" in reply:
            number, reason, name = reply["os_error"]
            raise OSError(number, reason, name)
        return reply if isinstance(reply.get("saved"), list) else None

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.kill()
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        pass
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def plain(value: Any) -> Any:
    """Tensors and arrays as lists of numbers, tuples as lists: what JSON can carry."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def main() -> None:
    """The worker: load matplotlib, wait for one request, draw, save, reply, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the session handles Ctrl-C; EOF ends us
    try:
        from autograd_tutor.views import figures, plots
    except Exception:
        sys.exit(1)  # the session draws them itself and reports what is wrong
    line = sys.stdin.buffer.readline()
    if not line:
        return
    try:
        jobs = json.loads(line)["figures"]
        saved = [str(plots.save(figures.KINDS[job["kind"]](job["args"]), Path(job["path"])))
                 for job in jobs]
        reply: dict[str, Any] = {"saved": saved, "replaced_backend": plots.REPLACED_BACKEND}
    except OSError as error:
        reply = {"os_error": [error.errno, error.strerror,
                             str(error.filename) if error.filename else None]}
    except Exception as error:  # drawn again in the session, which reports it
        reply = {"error": f"{type(error).__name__}: {error}"}
    try:
        sys.stdout.write(json.dumps(reply))
        sys.stdout.flush()
    except OSError:
        pass
    os._exit(0)
