"""Starting a pack: `pack new` writes one that passes `pack check` at once; `pack import`
turns a predict-first notebook into a draft whose TODOs `pack check` lists.

Both write a new directory and nothing else: an existing one is refused before anything is
written. Nothing here runs code; `pack check` runs it afterwards.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograd_tutor.content.packs import NAME_PATTERN
from autograd_tutor.engine.store import StoreError, read_regular

# A notebook far larger than this is not a lesson (its outputs would be images).
MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024
EXERCISE_HEADING = re.compile(r"^##\s+Exercise\s+(\d+)\s*[:.\-–—]\s*(.+?)\s*$", re.MULTILINE)
OTHER_HEADING = re.compile(r"^#{1,2}\s+\S", re.MULTILINE)
LEVEL = re.compile(r"^(.*?)\s*\(([A-Za-z][A-Za-z -]{0,19})\)\s*$")
TODO_MISCONCEPTION = "TODO-name-a-misconception"


class AuthoringError(Exception):
    """Why the pack was not written. `usage`: the command was given something wrong (exit 2);
    otherwise the input could not be used (exit 1)."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class Written:
    """A pack directory that was written, its name, and its files in the order written."""

    name: str
    directory: Path
    files: list[str]
    exercises: int = 0
    predictions: int = 0
    todos: int = 0


# Writing a new directory safely ----------------------------------------------------------


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise AuthoringError(f"{name!r} is not a pack name: use 1 to 40 lower-case letters, "
                             "digits and '-', starting with a letter or digit", usage=True)
    return name


def _write_pack(directory: Path, name: str, files: dict[str, str], **counts: int) -> Written:
    """Make `directory` (refused when anything is there) and write `files` in it, each
    created new (never through a link)."""
    if directory.exists() or directory.is_symlink():
        raise AuthoringError(f"{directory} already exists; choose another name or --dir "
                             "(nothing was written)", usage=True)
    try:
        directory.mkdir(parents=True)
    except FileExistsError:
        raise AuthoringError(f"{directory} already exists; nothing was written",
                             usage=True) from None
    except OSError as error:
        raise AuthoringError(f"can't make {directory}: {error.strerror or error}") from None
    try:
        for file, text in files.items():
            fd = os.open(directory / file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
    except OSError as error:
        raise AuthoringError(f"can't write the pack in {directory}: "
                             f"{error.strerror or error}") from None
    return Written(name, directory, list(files), **counts)


def toml_text(text: str) -> str:
    """`text` as a TOML string: a literal block when it can be one, else a basic string
    (JSON's escapes are TOML's)."""
    plain = all(c.isprintable() or c in "\n\t" for c in text)
    if "\n" in text and plain and "'''" not in text and not text.endswith("'"):
        return "'''\n" + text + "'''"
    return json.dumps(text, ensure_ascii=False)


# pack new --------------------------------------------------------------------------------


PACK_TOML = '''\
# A lesson pack for autograd-tutor. Every field is described in the authoring guide
# (docs/authoring.md). Check the pack with `autograd-tutor pack check DIR`; when it passes,
# `autograd-tutor pack add DIR` installs it and `autograd-tutor exercise {name}/1` runs it.

# The pack format this file is written in: this autograd-tutor reads format 1.
format = 1
# The pack's name: lower-case letters, digits and '-'. Learners name exercises {name}/N.
name = "{name}"
# One line, shown by `pack list` and above each exercise table.
title = "{name}: a first exercise (rename me)"
# The exercise files, in order: the first is exercise 1, the second exercise 2, ...
exercises = ["1-first.toml"]

# Concepts of your own: name = one line saying what the learner should come to know.
# Predictions name one with `concept`; `progress`, `review` and `report` count per concept.
[concepts]
square-plus-line = "The slope of x² + k·x at x is 2x + k"

# Misconceptions of your own: a wrong mental model that a wrong answer can reveal.
# Predictions name one with [[steps.predictions.misconceptions]] and the value it gives.
[misconceptions.power-not-brought-down]
title = "power not brought down"   # the short name `progress` and `report` show
explanation = "d(x²)/dx is 2x: the power comes down in front. Lowering it alone gives x."
'''

EXERCISE_TOML = '''\
# One exercise: an intro, then steps. Each step shows its setup and code, asks its
# predictions, then runs the code with PyTorch and reveals the answers.

title = "The slope of x² + 3x"   # the exercise's heading
level = "Guided"                 # any short word: Guided, Supported, Stretch, ...
intro = "Predict a gradient, then let PyTorch check you."   # shown before the first step
closing = "Each term adds its own slope to x.grad."        # optional: after the last step

[[steps]]
title = "One backward pass"      # the step's heading
# What the learner reads before predicting. Never write an answer here: pack check fails
# when any text shown before a prediction contains its answer.
setup = "Take **y = x² + 3x** at **x = 4**. Predict what `y.backward()` leaves in `x.grad`."
# The exact code that runs (with torch in scope) after every prediction of the step.
code = \'\'\'
x = torch.tensor(4.0, requires_grad=True)
y = x ** 2 + 3 * x
y.backward()
\'\'\'
values = ["x", "y"]              # optional: forward values the reveal shows
graph = "y"                      # optional: draw the autograd graph of this tensor
# Optional: shown after the reveal; {{...}} is filled with PyTorch's values then.
explanation = "PyTorch added both terms' slopes: 2·{{x}} + 3 = {{answer(\\"x.grad\\")}}."

[[steps.predictions]]
id = "x.grad"                    # unique in the exercise; --answer and --json use it
actual = "x.grad"                # an expression reading what the code left behind
# The same quantity without autograd; pack check makes it agree with `actual`.
# helpers.NAME(...) calls a function of this pack's helpers.py.
by_hand = "helpers.square_plus_line_slope(x, 3)"
by_hand_text = "2x + 3 at x = {{x}}"   # shown beside the by-hand value in the reveal
concept = "square-plus-line"     # declared in pack.toml or the built-in catalogue
# Up to three, each more specific; the learner types ? to see the next one.
hints = ["x.grad is dy/dx, the slope, not the value of y.", "d(x²)/dx = 2x and d(3x)/dx = 3."]
# For a wrong answer no misconception explains.
feedback = "Differentiate each term and add the slopes."

# A wrong mental model and what it gives here; a learner whose answer equals this value
# is shown its explanation. pack check makes sure it differs from the right answer.
[[steps.predictions.misconceptions]]
name = "power-not-brought-down"  # declared in pack.toml
value = "x + 3"

[[steps.predictions.misconceptions]]
name = "value-not-gradient"      # from the built-in catalogue
value = "y"
'''

HELPERS_PY = '''\
"""Helpers for this pack's expressions: what one expression cannot say.

Expressions call them as helpers.NAME(...). They receive plain floats and lists of floats
(tensors are passed as their values) and return plain values. Import no torch here: the
by-hand column must be worked out without autograd.
"""

from __future__ import annotations


def square_plus_line_slope(x: float, k: float) -> float:
    """d(x² + k·x)/dx = 2x + k, by hand."""
    return 2 * x + k
'''


def new_pack(name: str, parent: Path) -> Written:
    """A new pack `name` in `parent`/`name` that passes `pack check` as it is."""
    check_name(name)
    files = {
        "pack.toml": PACK_TOML.format(name=name),
        "1-first.toml": EXERCISE_TOML.format(),
        "helpers.py": HELPERS_PY,
    }
    return _write_pack(parent / name, name, files, exercises=1, predictions=1)


# pack import -----------------------------------------------------------------------------


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    source: str


@dataclass
class DraftStep:
    title: str
    setup: str
    code: str
    reads: list[str]  # candidate predictions: expressions over what the code binds


@dataclass
class DraftExercise:
    number: int
    title: str
    level: str
    intro: str
    steps: list[DraftStep] = field(default_factory=list)
    closing: str = ""
    # Names the exercise's cells bind at their top level, and those bound to a literal.
    bound: set[str] = field(default_factory=set)
    inputs: set[str] = field(default_factory=set)


def read_notebook(path: Path) -> tuple[str, list[Cell]]:
    """The notebook's title (its first # heading) and cells, read with nbformat. Outputs
    are never read: they would hold the answers."""
    try:
        data = read_regular(path, limit=MAX_NOTEBOOK_BYTES)
    except StoreError as error:
        raise AuthoringError(str(error).split(";")[0]) from None
    if data is None:
        raise AuthoringError(f"{path}: no such file", usage=True)
    import nbformat  # only for this command (it loads a JSON schema validator)

    try:
        notebook = nbformat.reads(data.decode("utf-8", errors="replace"), as_version=4,
                                  capture_validation_error={})
        cells = [Cell(str(cell.get("cell_type", "")), _source(cell.get("source", "")))
                 for cell in notebook.get("cells", [])]
    except Exception as error:  # nbformat raises many kinds (JSON, schema, version)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AuthoringError(f"{path} is not a Jupyter notebook nbformat can read "
                             f"({reason[:200]})") from None
    title = ""
    for cell in cells:
        found = re.search(r"^#\s+(.+?)\s*$", cell.source, re.MULTILINE)
        if cell.kind == "markdown" and found:
            title = found.group(1)
            break
    return title, cells


def _source(source: object) -> str:
    """A cell's text, without control characters (escape codes): a pack may hold none."""
    from autograd_tutor.content.schema import CONTROL

    return CONTROL.sub("", "".join(source) if isinstance(source, list) else str(source))


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip() and p.strip() != "---"]


def split_exercises(cells: list[Cell]) -> list[DraftExercise]:
    """Each `## Exercise N: title` heading and the cells after it, up to the next heading
    of level 1 or 2: markdown before a code cell is that step's setup, the code its code."""
    exercises: list[DraftExercise] = []
    current: DraftExercise | None = None
    prose: list[str] = []
    for cell in cells:
        if cell.kind == "markdown":
            text = cell.source
            heading = EXERCISE_HEADING.search(text)
            if heading is not None:
                prose.extend(_paragraphs(text[:heading.start()]) if current else [])
                _close(current, prose)
                title, level = heading.group(2), "Guided"
                levelled = LEVEL.match(title)
                if levelled:
                    title, level = levelled.group(1), levelled.group(2).strip()
                current = DraftExercise(int(heading.group(1)), title.strip(), level, "")
                exercises.append(current)
                prose = _paragraphs(text[heading.end():])
                continue
            other = OTHER_HEADING.search(text) if current is not None else None
            if other is not None:
                prose.extend(_paragraphs(text[:other.start()]))
                _close(current, prose)
                current, prose = None, []
                continue
            prose.extend(_paragraphs(text))
        elif cell.kind == "code" and current is not None:
            if not current.steps and not current.intro and prose:
                current.intro = prose.pop(0)
            current.steps.append(DraftStep(_step_title(cell.source, len(current.steps) + 1),
                                           "\n\n".join(prose), *_code_and_reads(
                                               cell.source, current)))
            prose = []
    _close(current, prose)
    return exercises


def _close(exercise: DraftExercise | None, prose: list[str]) -> None:
    if exercise is not None and prose:
        if exercise.steps:
            exercise.closing = "\n\n".join(prose)
        elif not exercise.intro:
            exercise.intro = prose[0]
    if exercise is not None and not exercise.intro:
        exercise.intro = exercise.title


def _step_title(code: str, number: int) -> str:
    for line in code.splitlines():
        line = line.strip()
        if line.startswith("#"):
            words = line.lstrip("#").strip(" =-")
            if words:
                return words[:80]
        elif line:
            break
    return f"Step {number}"


# Reading what a code cell prints ----------------------------------------------------------


def _is_print(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name) and node.value.func.id == "print")


def _read_text(node: ast.expr, env: dict[str, ast.expr]) -> str | None:
    """The pack expression for a read the code prints: a name, NAME.grad, either with a
    constant index; `.item()` dropped (a one-element tensor stands for its float)."""
    while (isinstance(node, ast.Call) and not node.args and not node.keywords
           and isinstance(node.func, ast.Attribute) and node.func.attr == "item"):
        node = node.func.value
    if isinstance(node, ast.Name):
        if node.id in env:
            return _read_text(env[node.id], {})
        return node.id
    if isinstance(node, ast.Attribute) and node.attr == "grad":
        inner = _read_text(node.value, env)
        return f"{inner}.grad" if inner and "." not in inner and "[" not in inner else None
    if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int) and not isinstance(node.slice.value, bool)):
        inner = _read_text(node.value, env)
        return f"{inner}[{node.slice.value}]" if inner else None
    return None


def _printed(node: ast.Call) -> list[ast.expr]:
    values: list[ast.expr] = []
    for arg in node.args:
        if isinstance(arg, ast.JoinedStr):
            values.extend(part.value for part in arg.values
                          if isinstance(part, ast.FormattedValue))
        else:
            values.append(arg)
    return values


def _is_constant(node: ast.expr) -> bool:
    """A literal input: 3.0, -1, or torch called on literals (torch.tensor(3.0, ...))."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    if isinstance(node, ast.Call):
        func = node.func
        while isinstance(func, ast.Attribute):
            func = func.value
        return (isinstance(func, ast.Name) and func.id == "torch"
                and all(_is_constant(a) for a in node.args)
                and all(_is_constant(k.value) for k in node.keywords))
    return False


class _Reads(ast.NodeVisitor):
    """Every read a cell prints, in order; loops over a literal list are unrolled, and a
    name assigned from a read stands for that read."""

    def __init__(self, top_level: set[str], inputs: set[str]) -> None:
        self.top_level = top_level
        self.inputs = inputs
        self.env: dict[str, ast.expr] = {}
        self.found: list[str] = []

    def visit_For(self, node: ast.For) -> None:
        if isinstance(node.iter, ast.List | ast.Tuple):
            for item in node.iter.elts:
                saved = dict(self.env)
                self._bind(node.target, item)
                for statement in node.body:
                    self.visit(statement)
                self.env = saved
            return
        self.generic_visit(node)

    def _bind(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
        elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(
                target.elts) == len(value.elts):
            for name, item in zip(target.elts, value.elts, strict=True):
                self._bind(name, item)

    def visit_Assign(self, node: ast.Assign) -> None:
        # `grad = tensor.grad.item()` then `print(grad)`: the print reads tensor.grad.
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            text = _read_text(node.value, self.env)
            if text is not None and text.endswith(".grad"):
                self.env[node.targets[0].id] = ast.parse(text, mode="eval").body
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "print":
            for value in _printed(node):
                text = _read_text(value, self.env)
                if text is None or text in self.found:
                    continue
                root = re.split(r"[.\[]", text)[0]
                if root not in self.top_level:
                    continue  # bound only inside a loop, or not by this exercise
                if text == root and root in self.inputs:
                    continue  # a literal the code sets: given, not predicted
                self.found.append(text)
        self.generic_visit(node)


def _code_and_reads(source: str, exercise: DraftExercise) -> tuple[str, list[str]]:
    """The cell's code without its top-level print calls (the reveal shows the values),
    and the reads those prints made. Code that does not parse is kept whole."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source.strip("\n") + "\n", []
    bound, inputs = exercise.bound, exercise.inputs
    for statement in tree.body:
        for node in ast.walk(statement):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    literal = node is statement and isinstance(node, ast.Assign) and \
                        _is_constant(node.value)
                    (inputs.add if literal else inputs.discard)(target.id)
                    if node is statement:
                        bound.add(target.id)
    reads = _Reads(bound, inputs)
    reads.visit(tree)
    lines = source.splitlines()
    for statement in reversed(tree.body):
        if _is_print(statement):
            del lines[statement.lineno - 1:statement.end_lineno or statement.lineno]
    code = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"
    return code, reads.found


# Writing the draft ------------------------------------------------------------------------

DRAFT_HEADER = '''\
# A draft made by `autograd-tutor pack import` from a notebook. The code and the reads
# are the notebook's; what it cannot know is marked TODO, and `autograd-tutor pack check
# DIR` lists every TODO left. For each prediction:
# - by_hand (required): the same value worked out without autograd, from the names the
#   code binds, e.g. by_hand = "2 * x"; pack check makes it agree with actual;
# - hints: one to three, each more specific (write them, then rename TODO_hints to hints);
# - misconceptions: the wrong mental model behind a likely wrong answer, named in the
#   built-in catalogue or in pack.toml's [misconceptions], and the value it gives here.
# Delete the predictions not worth asking. See docs/authoring.md.
'''

PREDICTION_TODOS = '''\
# TODO by_hand = "..." (required)
TODO_hints = ["TODO: a first nudge", "TODO: a more specific hint"]
[[steps.predictions.misconceptions]]   # TODO: name one, and the value it gives
name = "{name}"
value = "TODO"
'''


def _slug(text: str, limit: int = 30) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return slug or "exercise"


def draft_exercise(exercise: DraftExercise) -> tuple[str, int, int]:
    """The exercise file's text, its number of predictions and of TODOs."""
    lines = [DRAFT_HEADER, f"title = {toml_text(exercise.title)}",
             f"level = {toml_text(exercise.level)}   # any short word: Guided, Supported, ...",
             f"intro = {toml_text(exercise.intro)}"]
    if exercise.closing:
        lines.append(f"closing = {toml_text(exercise.closing)}")
    predictions = todos = 0
    ids: set[str] = set()
    if not exercise.steps:
        lines.append("\n# TODO steps (required): the notebook had no code cell under this "
                     "heading; add [[steps]].")
        todos += 1
    for number, step in enumerate(exercise.steps, start=1):
        lines += ["", "[[steps]]", f"title = {toml_text(step.title)}"]
        if step.setup:
            lines.append(f"setup = {toml_text(step.setup)}")
        else:
            lines.append("# TODO setup (required): what the learner reads before predicting.")
            todos += 1
        lines.append(f"code = {toml_text(step.code)}")
        for read in step.reads:
            pid = read if read not in ids else f"{read}@{number}"
            if pid in ids:
                continue
            ids.add(pid)
            predictions += 1
            todos += 3
            lines += ["", "[[steps.predictions]]", f"id = {toml_text(pid)}",
                      f"actual = {toml_text(read)}   # what the notebook's code printed",
                      PREDICTION_TODOS.format(name=TODO_MISCONCEPTION).rstrip("\n")]
    return "\n".join(lines) + "\n", predictions, todos


def import_notebook(path: Path, parent: Path, name: str | None = None) -> Written:
    """A draft pack in `parent`/NAME from the notebook at `path` (NAME defaults to the
    notebook's file name). AuthoringError when there is nothing to import."""
    name = check_name(name if name is not None else _slug(path.stem, 40))
    directory = parent / name
    if directory.exists() or directory.is_symlink():  # before reading: nothing is written
        raise AuthoringError(f"{directory} already exists; choose another --name or --dir "
                             "(nothing was written)", usage=True)
    title, cells = read_notebook(path)
    exercises = split_exercises(cells)
    if not exercises:
        raise AuthoringError(f"{path} has no exercise headings ('## Exercise N: title' in a "
                             "markdown cell); nothing was written")
    files: dict[str, str] = {}
    predictions = todos = 0
    for position, exercise in enumerate(exercises, start=1):
        text, found, marked = draft_exercise(exercise)
        files[f"{position}-{_slug(exercise.title)}.toml"] = text
        predictions += found
        todos += marked
    listed = ", ".join(json.dumps(file) for file in files)
    pack_toml = "\n".join([
        DRAFT_HEADER, "format = 1", f"name = {toml_text(name)}",
        f"title = {toml_text(title or name)}", f"exercises = [{listed}]", "",
        "# Misconceptions of your own, named by the exercises' predictions:",
        "# [misconceptions.my-mistake]",
        '# title = "a short name"',
        '# explanation = "What the learner thought, and why PyTorch disagrees."', ""])
    return _write_pack(directory, name, {"pack.toml": pack_toml, **files},
                       exercises=len(exercises), predictions=predictions, todos=todos)
