"""Where the tutor reads and writes, and what kind of terminal it is talking to.

Built from the real process at call time (never at import), and passed in, so tests can
swap streams and flip the tty flags.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TextIO


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class Environment:
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    stdin_isatty: bool
    stdout_isatty: bool
    stderr_isatty: bool
    no_color: bool
    dumb: bool

    @classmethod
    def from_system(cls) -> Environment:
        return cls(
            stdin=sys.stdin,
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdin_isatty=_isatty(sys.stdin),
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
            no_color="NO_COLOR" in os.environ and os.environ["NO_COLOR"] != "",
            dumb=os.environ.get("TERM", "") == "dumb",
        )

    @property
    def interactive(self) -> bool:
        """A person at a terminal: only then do animations and pauses make sense."""
        return self.stdin_isatty and self.stdout_isatty and not self.dumb
