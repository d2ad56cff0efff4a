"""Where the tutor reads and writes, and what kind of terminal it is talking to.

Built from the real process at call time (never at import), and passed in, so tests can
swap streams and flip the tty flags.
"""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO

from msgspec import Struct

# COLUMNS outside this range is clamped: 1 or -5 columns can't show a title, and a
# hundred thousand would make every rule and table megabytes long.
MIN_WIDTH, MAX_WIDTH = 20, 400


def width_from(value: str | None) -> int | None:
    """The width COLUMNS asks for, clamped; None when unset or not a number."""
    try:
        wanted = int((value or "").strip())
    except ValueError:
        return None
    return max(MIN_WIDTH, min(MAX_WIDTH, wanted))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Environment(Struct):
    """The terminal facts the views depend on, passed in so tests can set them."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    stdin_isatty: bool
    stdout_isatty: bool
    stderr_isatty: bool
    no_color: bool
    dumb: bool
    width: int | None = None

    @classmethod
    def from_system(cls) -> Environment:
        # A closed stdin (`<&-`) reads as empty input, not as a crash.
        stdin = sys.stdin if sys.stdin is not None else io.StringIO("")
        return cls(
            stdin=stdin,
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdin_isatty=_isatty(stdin),
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
            no_color="NO_COLOR" in os.environ and os.environ["NO_COLOR"] != "",
            dumb=os.environ.get("TERM", "") == "dumb",
            width=width_from(os.environ.get("COLUMNS")),
        )

    @property
    def interactive(self) -> bool:
        """A person at a terminal: only then do animations and pauses make sense."""
        return self.stdin_isatty and self.stdout_isatty and not self.dumb
