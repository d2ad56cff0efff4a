"""The console script's entry: start-up itself is guarded, so Ctrl-C while the tool is still
importing ends with status 130 and one line, like Ctrl-C anywhere else."""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

from autograd_tutor.exits import EXIT_INTERRUPTED


def interrupted() -> NoReturn:
    # A second Ctrl-C during interpreter shutdown (torch's exit hooks) must not print a
    # traceback either: from here on it is ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("\nerror: interrupted.", file=sys.stderr)
    # Without threading loaded there is no other thread. With one (torch still importing in
    # the background, perhaps holding the import lock) Python's shutdown could wait for it:
    # leave at once, importing nothing, needing no lock.
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_INTERRUPTED)


def main() -> None:
    try:
        from autograd_tutor.cli import main as run
    except KeyboardInterrupt:
        interrupted()
    sys.exit(run())
