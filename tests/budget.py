"""How hard the property tests try: a quick budget for `make test` (run on every change),
the full one for `make fuzz` (HYPOTHESIS_PROFILE=thorough)."""

from __future__ import annotations

import os

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


def examples(full: int) -> int:
    """The number of examples: `full` when fuzzing thoroughly, a tenth (at least 20) else."""
    return full if THOROUGH else max(20, full // 10)
