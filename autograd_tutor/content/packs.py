"""Lesson packs: finding them, reading them into the engine's records, one catalogue.

A pack is a directory with `pack.toml` and one TOML file per exercise (format 1, described
in docs/authoring.md). Reading a pack parses TOML and checks fields, names and expression
syntax; it never runs a pack's code (that is `pack check`'s job, in engine.packcheck).
Nothing here imports torch.
"""

from __future__ import annotations

import ast
import math
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from autograd_tutor.content.schema import Fields, Problem, Where, read_toml
from autograd_tutor.engine.model import (
    EXACT,
    OUTCOME_WORDS,
    OUTCOMES,
    Coding,
    Exercise,
    FigureSpec,
    Gradcheck,
    Misconception,
    Pack,
    Prediction,
    Step,
    Template,
    Tolerance,
)

FORMAT = 1
BUILTIN_DIR = Path(__file__).parent / "packs"
CATALOGUE_FILE = Path(__file__).parent / "catalogue.toml"
PACKS_VARIABLE = "AUTOGRAD_TUTOR_PACKS"
DEFAULT_PACK = "basics"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}\Z")
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.@:\[\]-]{0,59}\Z")
CHOICE_COUNT = (2, 4)
# Each figure kind a step may ask for, and the arguments it needs (drawn by views.figures).
FIGURE_KINDS: dict[str, tuple[str, ...]] = {
    "loss": ("losses",),
    "fit": ("xs", "ys", "w", "b"),
    "least-squares": ("xs", "ys", "w", "b", "best"),
    "detach": ("without", "with"),
}


class PackError(ValueError):
    """A pack that cannot be used; the message lists its problems."""


# The catalogue ---------------------------------------------------------------------------


class Catalogue(Struct, frozen=True):
    """Every concept and misconception name that may be used, with its human title."""

    concepts: dict[str, str] = field(default_factory=dict)
    misconceptions: dict[str, tuple[str, str]] = field(default_factory=dict)  # title, text
    # Old names kept in stored histories, and the name each now stands for.
    renamed: dict[str, str] = field(default_factory=dict)

    def merged(self, pack: Pack) -> Catalogue:
        return Catalogue(
            {**self.concepts, **dict(pack.concepts)},
            {**self.misconceptions, **{n: (t, e) for n, t, e in pack.misconceptions}},
            self.renamed,
        )

    def title(self, misconception: str) -> str:
        return self.misconceptions.get(misconception, (misconception, ""))[0] or misconception


@cache
def builtin_catalogue() -> Catalogue:
    problems: list[Problem] = []
    data = read_toml(CATALOGUE_FILE, Where(problems, CATALOGUE_FILE.name)) or {}
    if problems:
        raise PackError(str(problems[0]))
    concepts = {str(k): str(v) for k, v in data.get("concepts", {}).items()}
    misconceptions = {str(name): (str(t.get("title", name)), str(t.get("explanation", "")))
                      for name, t in data.get("misconceptions", {}).items()}
    renamed = {str(k): str(v) for k, v in data.get("renamed", {}).items()}
    return Catalogue(concepts, misconceptions, renamed)


# Finding packs ---------------------------------------------------------------------------


def search_path(home: Path) -> list[tuple[Path, bool]]:
    """The places that hold packs as sub-directories, in order: built-in, the progress
    directory's packs/, then each directory in $AUTOGRAD_TUTOR_PACKS."""
    places = [(BUILTIN_DIR, True), (home / "packs", False)]
    for entry in os.environ.get(PACKS_VARIABLE, "").split(os.pathsep):
        if entry.strip():
            places.append((Path(entry).expanduser(), False))
    return places


def _pack_dirs(place: Path) -> list[Path]:
    try:
        return sorted(p for p in place.iterdir() if (p / "pack.toml").is_file())
    except OSError:
        return []


class Installed(Struct):
    """The installed packs by name, and a line for each one that could not be used."""

    packs: dict[str, Pack] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def get(self, name: str) -> Pack:
        try:
            return self.packs[name]
        except KeyError:
            raise PackError(f"no pack named {name!r}; installed: "
                            + ", ".join(self.packs)) from None

    def catalogue(self) -> Catalogue:
        merged = builtin_catalogue()
        for pack in self.packs.values():
            merged = merged.merged(pack)
        return merged

    def templates(self) -> list[Template]:
        return [t for pack in self.packs.values() for t in pack.practice]


def installed(home: Path) -> Installed:
    """Every usable pack. Read without compiling code or parsing expressions, so `list`
    stays as fast as a bare table; `pack check` (and `pack add`) read deeply."""
    return _installed(home, os.environ.get(PACKS_VARIABLE, ""))


def forget() -> None:
    """After a pack was added: the next `installed()` reads the places again."""
    _installed.cache_clear()


@cache
def _installed(home: Path, variable: str) -> Installed:
    del variable  # part of the cache key: search_path reads it
    from autograd_tutor.content.cache import PackCache, signature

    found = Installed()
    kept = PackCache.open(home)
    for place, builtin in search_path(home):
        for root in _pack_dirs(place):
            stamp = signature(root)
            pack, problems = kept.get(root, stamp), []
            if pack is None or pack.builtin != builtin:
                pack, problems = load_pack(root, builtin=builtin, deep=False)
                if pack is not None and not problems:
                    kept.put(root, stamp, pack)
            if pack is None or problems:
                found.skipped.append(f"pack in {root} is not usable ({len(problems)} "
                                     f"problem{'s' * (len(problems) != 1)}: {problems[0]}); "
                                     f"see: autograd-tutor pack check {root}")
            elif pack.name in found.packs:
                found.skipped.append(f"pack {pack.name!r} in {root} is ignored: a pack of "
                                     f"that name is already in {found.packs[pack.name].root}")
            else:
                found.packs[pack.name] = pack
    kept.save()
    return found


# Reading one pack ------------------------------------------------------------------------


def load_pack(root: Path, builtin: bool = False,
              deep: bool = True) -> tuple[Pack | None, list[Problem]]:
    """The pack in `root` and every problem found reading it (no code is run). `deep` also
    compiles each step's code and parses each expression."""
    problems: list[Problem] = []
    where = Where(problems, "pack.toml")
    data = read_toml(root / "pack.toml", where)
    if data is None:
        return None, problems
    top = Fields(data, where, "pack.toml")
    version = top.integer("format", 0)
    if "format" not in data:
        where.problem("pack.toml has no 'format' (required; this tool reads format 1)")
    elif version != FORMAT:
        where.problem(f"format {version} is not one this autograd-tutor reads (it reads "
                      f"format {FORMAT}); upgrade autograd-tutor")
        return None, problems
    name = top.text("name", required=True)
    if name and not NAME_PATTERN.match(name):
        where.problem(f"name {name!r} must be lower-case letters, digits and '-'")
    title = top.text("title", required=True)
    files = top.texts("exercises")
    if "exercises" not in data:
        where.problem("pack.toml has no 'exercises' (required: a list of exercise files)")
    concepts = {str(k): v for k, v in top.table_of("concepts").items()}
    for key, value in concepts.items():
        if not isinstance(value, str):
            where.problem(f"concept {key!r} must have a one-line description (text)")
    declared = _misconceptions(top.table_of("misconceptions"), where)
    practice_tables, practice_files = _practice_entries(top, data)
    top.unknown()
    helpers = root / "helpers.py"
    pack_name = name or root.name
    catalogue = Catalogue(
        {**builtin_catalogue().concepts, **{k: str(v) for k, v in concepts.items()}},
        {**builtin_catalogue().misconceptions, **{n: (t, e) for n, t, e in declared}},
    )
    reader = _Reader(pack_name, root, catalogue, helpers.is_file(), deep)
    exercises = []
    for number, file in enumerate(files, start=1):
        exercise = reader.exercise(root, file, number, problems)
        if exercise is not None:
            exercises.append(exercise)
    templates = [reader.template(table, Where(problems, "pack.toml").at(step=index))
                 for index, table in enumerate(practice_tables, start=1)]
    for file in practice_files:
        fwhere = Where(problems, file)
        pdata = read_toml(_inside(root, file, fwhere) or root / "?", fwhere)
        if pdata is None:
            continue
        pfields = Fields(pdata, fwhere, file)
        for index, table in enumerate(pfields.tables("practice", required=True), start=1):
            templates.append(reader.template(table, fwhere.at(step=index)))
        pfields.unknown()
    pack = Pack(
        name=pack_name, title=title, root=root, exercises=tuple(exercises),
        concepts=tuple((k, str(v)) for k, v in concepts.items()),
        misconceptions=tuple(declared),
        practice=tuple(templates),
        helpers=helpers if helpers.is_file() else None, builtin=builtin,
    )
    return pack, problems


def _practice_entries(top: Fields, data: dict[str, Any]
                      ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """`practice` is either [[practice]] tables or a list of the files that hold them."""
    raw = data.get("practice", [])
    if isinstance(raw, list) and raw and all(isinstance(item, dict) for item in raw):
        return top.tables("practice"), ()
    return [], top.texts("practice")


def _functions(module: Path) -> set[str]:
    """The names of the functions a pack's module defines at its top level (read, not run)."""
    try:
        tree = ast.parse(module.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def _inside(root: Path, file: str, where: Where) -> Path | None:
    """A file named by the pack must lie inside the pack's directory."""
    path = (root / file).resolve()
    if not path.is_relative_to(root.resolve()):
        where.problem(f"{file!r} is outside the pack's directory")
        return None
    return path


def _misconceptions(table: dict[str, Any], where: Where) -> list[tuple[str, str, str]]:
    result = []
    for name, entry in table.items():
        if not isinstance(entry, dict):
            where.problem(f"[misconceptions.{name}] must be a table with title and explanation")
            continue
        fields = Fields(entry, where, f"[misconceptions.{name}]")
        result.append((name, fields.text("title", required=True),
                       fields.text("explanation", required=True)))
        fields.unknown()
    return result


class _Reader:
    """Reads exercise files of one pack, checking names against its catalogue."""

    def __init__(self, pack: str, root: Path, catalogue: Catalogue, has_helpers: bool,
                 deep: bool = True) -> None:
        self.pack = pack
        self.root = root
        self.catalogue = catalogue
        self.has_helpers = has_helpers
        self.deep = deep

    def exercise(self, root: Path, file: str, number: int,
                 problems: list[Problem]) -> Exercise | None:
        where = Where(problems, file)
        path = _inside(root, file, where)
        data = read_toml(path, where) if path is not None else None
        if data is None:
            return None
        top = Fields(data, where, file)
        title = top.text("title", required=True)
        level = top.text("level", required=True)
        intro = top.text("intro", required=True)
        closing = top.text("closing")
        coding = self.coding(top.table_of("coding"), where) if "coding" in data else None
        tables = top.tables("steps", required=True)
        top.unknown()
        if not tables and "steps" in data:
            where.problem("an exercise needs at least one [[steps]]")
        ids: set[str] = set()
        steps = []
        for index, table in enumerate(tables, start=1):
            step = self.step(table, where.at(step=index), ids)
            if step is not None:
                steps.append(step)
        return Exercise(self.pack, number, title, level, intro, tuple(steps), closing,
                        coding, source=file)

    def coding(self, table: dict[str, Any], where: Where) -> Coding | None:
        fields = Fields(table, where, "[coding]")
        scaffold = self.pack_file(fields, "scaffold", where, required=True)
        solution = self.pack_file(fields, "solution", where, required=True)
        names = fields.texts("names")
        optional = fields.texts("optional")
        compare = fields.texts("compare")
        tolerance = fields.number("tolerance", 1e-6)
        seed = fields.integer("seed", 0)
        gradcheck = self.gradcheck(fields.table_of("gradcheck"), where) \
            if "gradcheck" in table else None
        module = self.pack_file(fields, "module", where) if "module" in table else None
        diagnoses = fields.texts("diagnoses")
        summary = fields.text("summary")
        default_file = fields.text("file", default=scaffold.name if scaffold else "")
        fields.unknown()
        for name in names + optional:
            if not name.isidentifier():
                where.problem(f"[coding] name {name!r} is not a Python name")
        for name in compare:
            if name not in names + optional:
                where.problem(f"[coding] compare {name!r} is not one of its names")
        if not names:
            where.problem("[coding] needs 'names': what to read back from the learner's run")
        if not (compare or gradcheck or diagnoses):
            where.problem("[coding] judges nothing: give compare, gradcheck or diagnoses")
        if tolerance is None or not tolerance >= 0:
            where.problem("[coding] tolerance must be a number of at least 0")
        if (diagnoses or summary) and "module" not in table:
            module = self.root / "helpers.py" if self.has_helpers else None
            if module is None:
                where.problem("[coding] diagnoses need a module (or the pack's helpers.py)")
        for function in diagnoses + ((summary,) if summary else ()):
            if module is not None and function not in _functions(module):
                where.problem(f"[coding] {function!r} is not a function of {module.name}")
        if scaffold is None or solution is None or not names:
            return None
        return Coding(scaffold, solution, names, optional, compare, tolerance or 0.0, seed,
                      gradcheck, module, diagnoses, summary, default_file)

    def pack_file(self, fields: Fields, key: str, where: Where,
                  required: bool = False) -> Path | None:
        """A file of the pack named by `key` of [coding]."""
        name = fields.text(key, required=required)
        path = _inside(self.root, name, where) if name else None
        if path is not None and not path.is_file():
            where.problem(f"[coding] {key} {name!r} is not a file in the pack")
            return None
        return path

    def gradcheck(self, table: dict[str, Any], where: Where) -> Gradcheck | None:
        fields = Fields(table, where, "[coding.gradcheck]")
        function = fields.text("function", required=True)
        shapes = fields._get("shapes", list, False, [[4]])
        fields.unknown()
        if not (isinstance(shapes, list) and shapes and all(
                isinstance(shape, list) and len(shape) <= 4 and all(
                    type(n) is int and 1 <= n <= 64 for n in shape) for shape in shapes)):
            where.problem("[coding.gradcheck] shapes must be a list of shapes such as [[4]] "
                          "(up to 4 sizes of 1 to 64 each)")
            return None
        if not function.isidentifier():
            if function:
                where.problem(f"[coding.gradcheck] function {function!r} is not a Python name")
            return None
        return Gradcheck(function, tuple(tuple(shape) for shape in shapes))

    def step(self, table: dict[str, Any], where: Where, ids: set[str]) -> Step | None:
        fields = Fields(table, where, "the step")
        title = fields.text("title", required=True)
        setup = fields.text("setup", required=True)
        code = fields.text("code", required=True)
        graph = fields.text("graph") or None
        explanation = fields.text("explanation")
        values = fields.texts("values")
        live = fields.flag("live")
        figures = [self.figure(t, where) for t in fields.tables("figures")]
        tables = fields.tables("predictions")
        fields.unknown()
        self.check_code(code, where)
        self.check_template(explanation, where, "explanation")
        predictions: list[Prediction] = []
        for table_ in tables:
            predictions.extend(self.prediction(table_, where, ids))
        return Step(title, setup, code, tuple(predictions), explanation, values, graph, live,
                    tuple(f for f in figures if f is not None))

    def check_code(self, code: str, where: Where) -> None:
        if not self.deep:
            return
        try:
            compile(code, "<step>", "exec", dont_inherit=True)
        except SyntaxError as error:
            where.problem(f"code does not parse: {error.msg} (line {error.lineno})")
        except ValueError as error:
            where.problem(f"code does not parse: {error}")

    def figure(self, table: dict[str, Any], where: Where) -> FigureSpec | None:
        fields = Fields(table, where, "[[steps.figures]]")
        name = fields.text("name", required=True)
        kind = fields.text("kind", required=True)
        args = fields.table_of("args")
        fields.unknown()
        if kind and kind not in FIGURE_KINDS:
            where.problem(f"figure kind {kind!r} is not one of: {', '.join(FIGURE_KINDS)}")
        if name and not NAME_PATTERN.match(name):
            where.problem(f"figure name {name!r} must be lower-case letters, digits and '-'")
        missing = [a for a in FIGURE_KINDS.get(kind, ()) if a not in args]
        if missing:
            where.problem(f"figure {name!r} of kind {kind!r} needs args {', '.join(missing)}")
        for key, text in args.items():
            if not isinstance(text, str):
                where.problem(f"figure argument {key!r} must be an expression (text)")
            else:
                self.check_expression(text, where, f"figure argument {key!r}")
        if not name or kind not in FIGURE_KINDS:
            return None
        return FigureSpec(name, kind, tuple((k, str(v)) for k, v in args.items()))

    def check_expression(self, text: str, where: Where, what: str) -> None:
        if not self.deep:
            return
        from autograd_tutor.engine import expressions  # ast work: only for a deep read

        try:
            tree = expressions.parse_pack_expression(text)
        except expressions.ExprError as error:
            where.problem(f"{what} {text!r} does not parse: {error}")
            return
        if tree.uses_helpers and not self.has_helpers:
            where.problem(f"{what} calls helpers, but the pack has no helpers.py")

    def check_template(self, text: str, where: Where, what: str) -> None:
        if not self.deep:
            return
        from autograd_tutor.engine import expressions

        try:
            for expression, _ in expressions.placeholders(text):
                self.check_expression(expression, where, f"placeholder in {what}")
        except expressions.ExprError as error:
            where.problem(f"{what}: {error}")

    def prediction(self, table: dict[str, Any], step_where: Where,
                   ids: set[str]) -> list[Prediction]:
        raw_id = table.get("id")
        where = step_where.at(prediction=raw_id if isinstance(raw_id, str) else "?")
        fields = Fields(table, where, "the prediction")
        pid = fields.text("id", required=True)
        label = fields.text("label") or pid
        kind = fields.text("kind", default="value")
        hints = fields.texts("hints")
        concept = fields.text("concept")
        feedback = fields.text("feedback")
        if pid and not ID_PATTERN.match(pid):
            where.problem(f"id {pid!r} may hold only letters, digits and _ . @ : [ ] -")
        if pid in ids:
            where.problem(f"duplicate prediction id {pid!r}")
        ids.add(pid)
        if concept and concept not in self.catalogue.concepts:
            where.problem(f"concept {concept!r} is declared neither in the pack's [concepts] "
                          "nor in the built-in catalogue")
        misconceptions = tuple(self.misconception(t, where)
                               for t in fields.tables("misconceptions"))
        if kind == "outcome":
            result = self.outcome(fields, where, pid, label, hints, concept, feedback,
                                  misconceptions, ids)
        else:
            if kind != "value":
                where.problem(f"kind {kind!r} is not one of: value, outcome")
            result = [self.value_prediction(fields, where, pid, label, hints, concept,
                                            feedback, misconceptions)]
        fields.unknown()
        return result

    def value_prediction(self, fields: Fields, where: Where, pid: str, label: str,
                         hints: tuple[str, ...], concept: str, feedback: str,
                         misconceptions: tuple[Misconception, ...]) -> Prediction:
        actual = fields.text("actual", required=True)
        by_hand = fields.text("by_hand", required=True)
        by_hand_text = fields.text("by_hand_text")
        choices = fields.texts("choices")
        tolerance = self.tolerance(fields, where)
        for what, text in (("actual", actual), ("by_hand", by_hand)):
            if text:
                self.check_expression(text, where, what)
        for m in misconceptions:
            self.check_expression(m.value, where, f"misconception {m.name!r} value")
        self.check_template(by_hand_text, where, "by_hand_text")
        return Prediction(pid, label, actual, by_hand, by_hand_text, hints, tolerance, concept,
                          misconceptions, feedback, choices)

    def outcome(self, fields: Fields, where: Where, pid: str, label: str,
                hints: tuple[str, ...], concept: str, feedback: str,
                misconceptions: tuple[Misconception, ...], ids: set[str]) -> list[Prediction]:
        code = fields.text("code", required=True)
        expected = fields.text("outcome", required=True)
        error_match = fields.text("error_match")
        choices = fields.texts("error_choices")
        right_choice = fields.text("error_choice")
        which_hints = fields.texts("error_choice_hints")
        if expected and expected not in OUTCOMES:
            where.problem(f"outcome {expected!r} is not one of: {', '.join(OUTCOMES)}")
        if expected == "error" and not error_match:
            where.problem("an outcome of 'error' needs error_match, a pattern of PyTorch's "
                          "message (the message itself is never written in the pack)")
        if error_match:
            try:
                re.compile(error_match)
            except re.error as error:
                where.problem(f"error_match is not a regular expression: {error}")
        for m in misconceptions:
            word = OUTCOME_WORDS.get(m.value.strip().strip('"').lower())
            if word is None:
                where.problem(f"misconception {m.name!r} of an outcome must have value "
                              "runs, error or warning")
        main = Prediction(pid, label if "label" in fields.table else code or pid,
                          actual="", by_hand=f'"{expected}"',
                          by_hand_text="the lesson's answer, checked against PyTorch",
                          hints=hints, concept=concept,
                          misconceptions=misconceptions, feedback=feedback,
                          choices=OUTCOMES, kind="outcome", code=code, error_match=error_match)
        if not choices:
            if right_choice:
                where.problem("error_choice is given without error_choices")
            return [main]
        if expected != "error":
            where.problem("error_choices only go with outcome = \"error\": there is no "
                          "error to choose")
        low, high = CHOICE_COUNT
        if not low <= len(choices) <= high:
            where.problem(f"error_choices must name {low} to {high} errors, not {len(choices)}")
        if right_choice not in choices:
            where.problem(f"error_choice {right_choice!r} is not one of the error_choices")
        which_id = f"{pid}:which"
        if which_id in ids:
            where.problem(f"duplicate prediction id {which_id!r}")
        ids.add(which_id)
        which = Prediction(which_id, "which error", actual="",
                           by_hand=f'"{right_choice}"',
                           by_hand_text="matched against PyTorch's message", hints=which_hints,
                           concept=concept,
                           choices=choices, kind="which", code=code, error_match=error_match)
        return [main, which]

    def tolerance(self, fields: Fields, where: Where) -> Tolerance:
        absolute = fields.number("tolerance")
        relative = fields.number("relative_tolerance")
        for value in (absolute, relative):
            if value is not None and not 0 < value < 1e6:
                where.problem("a tolerance must be a positive number")
                return EXACT
        if relative is not None:
            return Tolerance(relative=relative, absolute=absolute or 1e-9)
        if absolute is not None:
            return Tolerance(relative=0.0, absolute=absolute)
        return EXACT

    def misconception(self, table: dict[str, Any], where: Where) -> Misconception:
        fields = Fields(table, where, "a misconception")
        name = fields.text("name", required=True)
        value = fields.text("value", required=True)
        explanation = fields.text("explanation")
        fields.unknown()
        declared = self.catalogue.misconceptions.get(name)
        if name and declared is None:
            where.problem(f"misconception {name!r} is declared neither in the pack's "
                          "[misconceptions] nor in the built-in catalogue")
        title, default = declared if declared else (name, "")
        return Misconception(name, value, explanation or default, title)

    def template(self, table: dict[str, Any], where: Where) -> Template:
        fields = Fields(table, where, "[[practice]]")
        concept = fields.text("concept", required=True)
        params_table = fields.table_of("params")
        halves = fields.flag("halves")
        step_table = {k: v for k, v in table.items()
                      if k not in {"concept", "params", "halves"}}
        fields.known |= set(step_table)
        fields.unknown()
        step_table.setdefault("title", f"Practice: {concept}")
        if concept and concept not in self.catalogue.concepts:
            where.problem(f"practice concept {concept!r} is not declared")
        params = []
        for name, bounds in params_table.items():
            ok = (isinstance(bounds, list) and len(bounds) == 2
                  and all(isinstance(b, int | float) and not isinstance(b, bool)
                          and math.isfinite(b) for b in bounds)
                  and bounds[0] <= bounds[1])
            if not ok:
                where.problem(f"param {name!r} must be [low, high] with low <= high, "
                              "both finite")
                # Still a name, so its placeholders aren't reported as a second problem.
                params.append((name, 0.0, 0.0, halves))
                continue
            params.append((name, float(bounds[0]), float(bounds[1]), halves))
        for prediction in step_table.get("predictions", []):
            if isinstance(prediction, dict):
                prediction.setdefault("concept", concept)  # a template's own concept
        if self.deep:  # fields and syntax, on an example draw
            self.step(_fill_example(step_table, params), where, set())
        # Keep the raw text (with {param} placeholders); the example only checked its syntax.
        raw = self.step_raw(step_table, where)
        return Template(concept, raw, tuple(params), self.pack)

    def step_raw(self, table: dict[str, Any], where: Where) -> Step:
        silent = _Reader(self.pack, self.root, self.catalogue, True, deep=False)
        quiet = Where([], where.file, where.step)
        step = silent.step(table, quiet, set())
        return step if step is not None else Step("", "", "")


def _fill_example(table: dict[str, Any], params: list[tuple[str, float, float, bool]]) -> Any:
    """The template with each {param} replaced by its low bound, to check its syntax."""
    from autograd_tutor.engine.practice import fill_template

    return fill_template(table, {name: low for name, low, _, _ in params})


# Naming an exercise ----------------------------------------------------------------------


def parse_key(text: str) -> tuple[str, int]:
    """'3' -> ('basics', 3); 'errors/2' -> ('errors', 2). Raises ValueError."""
    pack, sep, number = text.strip().rpartition("/")
    if not sep:
        pack = DEFAULT_PACK
    if not number.strip().isdigit() or not pack:
        raise ValueError(text)
    return pack, int(number)


def key_text(exercise: Exercise) -> str:
    """How a command names this exercise: N for the built-in basics pack, PACK/N otherwise."""
    return str(exercise.number) if exercise.pack == DEFAULT_PACK else exercise.key


@cache
def builtin(name: str = DEFAULT_PACK) -> Pack:
    """A built-in pack, read once; PackError if it is not sound (a bug in the tool)."""
    pack, problems = load_pack(BUILTIN_DIR / name, builtin=True)
    if pack is None or problems:
        raise PackError(f"built-in pack {name!r}: " + "; ".join(map(str, problems)))
    return pack
