"""Install like a user: build the wheel and the sdist, install the wheel into a fresh venv
that cannot see the source tree, and run the tool from there.

Nothing is downloaded: the wheel is built without isolation from the setuptools already
installed, and installed with --no-deps; the fresh venv finds torch, typer and the rest in
the current environment's site-packages through a path file (a plain path entry, which
does not run that environment's own path files, so its editable install stays invisible).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
import reference

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.wheel


# One test builds once: the checks share a build that takes seconds, and a fixture shared
# by several tests would be built once per test worker (xdist's grouping, which would keep
# them on one worker, does not work under pytest 9).
@pytest.fixture
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _build(tmp_path_factory)


def _build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources, and two
    # test workers building in one tree at once would trip over each other.
    source = tmp_path_factory.mktemp("source") / "autograd-tutor"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "build", "dist", "*.egg-info", ".*_cache",
        ".hypothesis"))
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
                    "--outdir", str(out), str(source)], check=True, capture_output=True,
                   timeout=300)
    wheel = next(out.glob("*.whl"))
    sdist = next(out.glob("*.tar.gz"))
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=300)
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "current-environment.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return {"wheel": wheel, "sdist": sdist, "venv": venv}


def tool(built: dict[str, Path], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COLUMNS")}
    env.update(AUTOGRAD_TUTOR_HOME=str(cwd / "home"), MPLBACKEND="Agg", NO_COLOR="1")
    return subprocess.run([str(built["venv"] / "bin" / "autograd-tutor"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


def check_the_wheel_carries_every_pack_file_and_template(built: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    packs = ROOT / "autograd_tutor" / "content"
    expected = {str(p.relative_to(ROOT)) for p in packs.rglob("*")
                if p.is_file() and p.suffix in (".toml", ".py") and "__pycache__" not in p.parts}
    assert expected <= names, sorted(expected - names)
    assert "autograd_tutor/py.typed" in names


def check_the_sdist_carries_tests_examples_and_readme(built: dict[str, Path]) -> None:
    with tarfile.open(built["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for wanted in ("README.md", "docs/authoring.md", "tests/test_wheel.py",
                   "examples/packs/two-paths/pack.toml", "tests/fixtures/packs/valid/pack.toml"):
        assert wanted in names, wanted


def test_built_and_installed_like_a_user(built: dict[str, Path], tmp_path: Path) -> None:
    check_the_wheel_carries_every_pack_file_and_template(built)
    check_the_sdist_carries_tests_examples_and_readme(built)
    check_the_installed_tool_runs_without_the_source_tree(built, tmp_path)


def check_the_installed_tool_runs_without_the_source_tree(built: dict[str, Path],
                                                          tmp_path: Path) -> None:
    where = subprocess.run([str(built["venv"] / "bin" / "python"), "-c",
                            "import autograd_tutor; print(autograd_tutor.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    assert str(built["venv"]) in where.stdout and str(ROOT) not in where.stdout
    version = tool(built, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("autograd-tutor ")
    listing = tool(built, "pack", "list", "--json", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    packs = {p["name"]: p for p in json.loads(listing.stdout)}
    assert {"basics", "errors"} <= set(packs)
    for pack in packs.values():
        if pack["builtin"]:
            assert str(ROOT) not in pack["path"]
            checked = tool(built, "pack", "check", pack["path"], cwd=tmp_path)
            assert checked.returncode == 0, checked.stdout + checked.stderr
    right = reference.typed(reference.ex1()["x.grad"])  # PyTorch's answer, computed here
    run = tool(built, "exercise", "1", "--answer", f"x.grad={right}", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["steps"][0]["correct"] is True
    code = tool(built, "exercise", "4", "--code", cwd=tmp_path)
    assert code.returncode == 0, code.stderr
    scaffold = ROOT / "autograd_tutor" / "content" / "packs" / "basics" / "train_loop.py"
    assert (tmp_path / "train_loop.py").read_text(encoding="utf-8") == scaffold.read_text(
        encoding="utf-8")
