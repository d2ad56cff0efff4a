"""Run a check's child in a process forked from a forkserver, instead of a fresh Python.

Why: a fresh Python process that imports torch costs about 2 s here, and a test that only
judges what a learner's file computed doesn't need one. `run_child` stands in for
`checker._run_child`: a "forkserver" (a clean, single-threaded process started once per test
process, with torch and the checker already imported; never the pytest process itself,
which has threads and has used torch) forks a child that runs the sandbox's own
`child_main` on the checker's function, with stdin from /dev/null and stdout and stderr in a
file; the result and the output are read with the sandbox's and the checker's own
functions. What is about the process itself (the time limit and the hard kill, process
groups, signals, the result channel, where the output goes) is tested through the real
child, in tests that don't use this.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.forkserver
import os
import secrets
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from autograd_tutor.engine import checker, sandbox

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["torch", "autograd_tutor.engine.checker",
                                  "autograd_tutor.engine.sandbox"])


def _child(path: str, channel: str, timeout: float, output: str, env: dict[str, str],
           cwd: str, spec: dict[str, Any]) -> None:
    """In the forked process: what the sandbox's `python -c` sets up, then the real child."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    out = os.open(output, os.O_WRONLY)
    os.dup2(out, 1)
    os.dup2(out, 2)
    payload = json.dumps([path, timeout, spec])
    sandbox.child_main([checker._CHILD_FUNCTION, channel, "-1", payload])  # ends the process


def run_child(path: Path, timeout: float, spec: dict[str, Any]) -> checker._Run:
    """`checker._run_child`, with the child forked from the forkserver."""
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="forked-check-") as tmp:
        channel, output = Path(tmp, "channel"), Path(tmp, "output")
        channel.write_bytes(token.encode("ascii"))
        output.touch()
        args = (str(path), str(channel), timeout, str(output), checker._child_env(), os.getcwd(),
                spec)
        proc = _CONTEXT.Process(target=_child, args=args)
        proc.start()
        try:
            proc.join(timeout + checker.STARTUP_GRACE)
            killed = proc.exitcode is None
        finally:
            if proc.exitcode is None:
                proc.kill()
                proc.join(5)
        tail = sandbox.Tail()
        with output.open("rb") as stream:
            while tail.read_from(stream):
                pass
        with channel.open("rb") as handle:
            outcome = sandbox._read_result(handle, token)
    outcome.killed, outcome.returncode, outcome.output = killed, proc.exitcode, tail.text()
    return checker._as_run(outcome)


@contextmanager
def forked_checks() -> Iterator[None]:
    """While inside, every check_file forks its child from the forkserver."""
    real, checker._run_child = checker._run_child, run_child
    try:
        yield
    finally:
        checker._run_child = real


def stop_forkserver(within: float = 5.0) -> None:
    """Stop the forkserver, if it was started; kill it if it doesn't end `within` seconds."""
    server: Any = multiprocessing.forkserver._forkserver
    pid = server._forkserver_pid
    if pid is None:
        return
    stopper = threading.Thread(target=server._stop, daemon=True)
    stopper.start()
    stopper.join(within)
    if stopper.is_alive():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stopper.join(within)
