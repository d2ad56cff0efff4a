"""The console script's entry: start-up itself is guarded, so Ctrl-C while the tool is still
importing ends with status 130 and one line, like Ctrl-C anywhere else."""

from __future__ import annotations

import signal
import sys
from typing import NoReturn

EXIT_INTERRUPTED = 130


def interrupted() -> NoReturn:
    # A second Ctrl-C during interpreter shutdown (torch's exit hooks) must not print a
    # traceback either: from here on it is ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("\nerror: interrupted.", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


def main() -> None:
    try:
        from autograd_tutor.cli import main as run
    except KeyboardInterrupt:
        interrupted()
    sys.exit(run())
