"""autograd-tutor: learn PyTorch's autograd by predicting gradients before PyTorch reveals them."""

import os
from pathlib import Path


def child_environment() -> dict[str, str]:
    """This environment for a Python child that imports this package by name, from wherever
    it was imported here (a source tree, too)."""
    package_root = str(Path(__file__).resolve().parent.parent)
    paths = [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
