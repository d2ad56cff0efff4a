"""Lesson packs: finding them, reading them into the engine's records, one catalogue.

A pack is a directory with `pack.toml` and one TOML file per exercise (format 1 or 2,
described in docs/authoring.md; format 2 adds hidden `prepare` code and predictions of
shapes, flags, dtypes and grad_fns). Reading a pack parses TOML and checks fields, names and
expression syntax; it never runs a pack's code (that is `pack check`'s job, in content.check).
Nothing here imports torch.
"""

from __future__ import annotations

import ast
import math
import os
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from msgspec import Struct, field
from msgspec.structs import replace

from autograd_tutor.content.schema import (
    Fields,
    Problem,
    TomlCache,
    Where,
    read_toml,
    visible,
)
from autograd_tutor.engine.model import (
    EXACT,
    FIGURE_KINDS,
    NO_ERROR,
    OUTCOME_WORDS,
    OUTCOMES,
    READ_KINDS,
    RENAMED,
    Coding,
    DeclaredName,
    Exercise,
    FigureSpec,
    Gradcheck,
    Kind,
    Misconception,
    Pack,
    Param,
    Prediction,
    Step,
    Template,
    Tolerance,
)

FORMAT = 2  # the newest format this tool reads
FORMATS = (1, 2)
BUILTIN_DIR = Path(__file__).parent / "packs"
CATALOGUE_FILE = Path(__file__).parent / "catalogue.toml"
PACKS_VARIABLE = "AUTOGRAD_TUTOR_PACKS"
DEFAULT_PACK = "basics"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}\Z")
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.@:\[\]-]{0,59}\Z")
CHOICE_COUNT = (2, 4)
# Words an `actual` holds when it may read something other than a number or a tensor.
_NOT_VALUE = ("shape", "requires_grad", "is_leaf", "dtype", "grad_fn", "==", "!=", "True",
              "False")

# How much one pack may hold: enough for any course, never enough to slow every command.
MAX_EXERCISES = 200
MAX_STEPS = 50
MAX_TEMPLATES = 100


class PackError(ValueError):
    """A pack that cannot be used; the message lists its problems."""


# The catalogue ---------------------------------------------------------------------------


class Catalogue(Struct, frozen=True):
    """Every concept and misconception name that may be used, with its human title."""

    concepts: dict[str, str] = field(default_factory=dict)
    misconceptions: dict[str, tuple[str, str]] = field(default_factory=dict)  # title, text
    # Old names kept in stored histories, and the name each now stands for: the one table
    # of them, engine.model.RENAMED.
    renamed: dict[str, str] = field(default_factory=dict)

    def merged(self, pack: Pack) -> Catalogue:
        return Catalogue(
            {**self.concepts, **dict(pack.concepts)},
            {**self.misconceptions, **{n: (t, e) for n, t, e in pack.misconceptions}},
            self.renamed,
        )

    def title(self, misconception: str) -> str:
        return self.misconceptions.get(misconception, (misconception, ""))[0] or misconception


# The kept TOML (the pack cache) the catalogue may be read from: `installed` sets it, so a
# command that reads the packs from the cache parses no TOML at all.
_catalogue_kept: list[TomlCache] = []


@cache
def _catalogue_data() -> dict[str, Any]:
    problems: list[Problem] = []
    kept = _catalogue_kept[-1] if _catalogue_kept else None
    data = read_toml(CATALOGUE_FILE, Where(problems, CATALOGUE_FILE.name), kept) or {}
    if problems:
        raise PackError(str(problems[0]))
    return data


@cache
def builtin_catalogue() -> Catalogue:
    data = _catalogue_data()
    concepts = {str(k): str(v) for k, v in data.get("concepts", {}).items()}
    misconceptions = {str(name): (str(t.get("title", name)), str(t.get("explanation", "")))
                      for name, t in data.get("misconceptions", {}).items()}
    return Catalogue(concepts, misconceptions, dict(RENAMED))


@cache
def course_order() -> tuple[str, ...]:
    """The built-in packs' names in course order (the catalogue's [course] order)."""
    order = _catalogue_data().get("course", {}).get("order", [])
    return tuple(str(name) for name in order) if isinstance(order, list) else ()


def course_key(name: str) -> tuple[int, str]:
    """Sorts pack names in course order; names outside the course after it, by name."""
    order = course_order()
    return (order.index(name) if name in order else len(order), name)


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
    from autograd_tutor.content.cache import PackCache

    found = Installed()
    kept = PackCache.open(home)
    _catalogue_kept.append(kept)
    for place, builtin in search_path(home):
        roots = _pack_dirs(place)
        if builtin:  # the course's order, not the alphabet's
            roots.sort(key=lambda root: course_key(root.name))
        for root in roots:
            pack, problems = kept.pack(root, builtin), list[Problem]()
            if pack is None:
                served = kept.served
                kept.reading()
                pack, problems = load_pack(root, builtin=builtin, deep=False, kept=kept)
                if problems and kept.served > served:  # in case the cache was edited: the
                    pack, problems = load_pack(root, builtin=builtin, deep=False,  # files
                                               kept=kept.fresh())
                if pack is not None and not problems:
                    kept.keep_pack(pack)
            shown = visible(str(root))
            clashes = [] if pack is None else redefinitions(pack, found.packs.values())
            if pack is None or problems:
                found.skipped.append(f"pack in {shown} is not usable ({len(problems)} "
                                     f"problem{'s' * (len(problems) != 1)}: {problems[0]}); "
                                     f"see: autograd-tutor pack check {shown}")
            elif pack.name in found.packs:
                found.skipped.append(f"pack {pack.name!r} in {shown} is ignored: a pack of "
                                     f"that name is already in "
                                     f"{visible(str(found.packs[pack.name].root))}")
            elif clashes:
                found.skipped.append(f"pack {pack.name!r} in {shown} is ignored: {clashes[0]}")
            else:
                found.packs[pack.name] = pack
    kept.save()
    return found


def redefinitions(pack: Pack, others: Iterable[Pack], catalogue: bool = True) -> list[str]:
    """The concepts and misconceptions `pack` declares that the built-in catalogue (when
    `catalogue`) or one of `others` already declares: a pack adds names, it never changes
    another's (nor, so, what another pack's exercises teach and `progress` shows)."""
    owners: dict[str, str] = {}
    for other in others:
        if other.name != pack.name:
            owners |= {name: f"pack {other.name!r}" for name, _ in other.concepts}
            owners |= {f"~{name}": f"pack {other.name!r}" for name, _, _ in other.misconceptions}
    if catalogue:
        known = builtin_catalogue()
        owners |= {name: "the built-in catalogue" for name in known.concepts}
        owners |= {f"~{name}": "the built-in catalogue" for name in known.misconceptions}
    found = [f"concept {name!r} is already declared by {owners[name]}; a pack may not "
             "redefine it (use it, or choose another name)"
             for name, _ in pack.concepts if name in owners]
    found += [f"misconception {name!r} is already declared by {owners['~' + name]}; a pack "
              "may not redefine it (use it, or choose another name)"
              for name, _, _ in pack.misconceptions if "~" + name in owners]
    return found


# Reading one pack ------------------------------------------------------------------------


def load_pack(root: Path, builtin: bool = False, deep: bool = True,
              kept: TomlCache | None = None) -> tuple[Pack | None, list[Problem]]:
    """The pack in `root` and every problem found reading it (no code is run). `deep` also
    compiles each step's code and parses each expression. `kept`: parsed TOML kept from an
    earlier run (the pack cache), checked here exactly as freshly parsed TOML is."""
    problems: list[Problem] = []
    where = Where(problems, "pack.toml")
    data = read_toml(root / "pack.toml", where, kept)
    if data is None:
        return None, problems
    top = Fields(data, where, "pack.toml")
    version = top.integer("format", 0)
    if "format" not in data:
        where.problem(f"pack.toml has no 'format' (required; this tool reads format 1 to "
                      f"{FORMAT})")
    elif version not in FORMATS:
        where.problem(f"format {version} is not one this autograd-tutor reads (it reads "
                      f"format 1 to {FORMAT}); upgrade autograd-tutor")
        return None, problems
    name = top.text("name", required=True, one_line=True)
    # The name used is checked, whether written or taken from the directory.
    pack_name = name or root.name
    if not NAME_PATTERN.match(pack_name):
        where.problem(f"name {pack_name!r} must be 1 to 40 lower-case letters, digits and '-'"
                      + ("" if name else " (the pack has no name of its own, so its "
                                         "directory's name is used)"))
    title = top.text("title", required=True, one_line=True)
    files = top.texts("exercises")
    if "exercises" not in data:
        where.problem("pack.toml has no 'exercises' (required: a list of exercise files)")
    elif not files:
        where.problem("'exercises' lists no exercise file (a pack needs at least one)")
    if len(files) > MAX_EXERCISES:
        where.problem(f"'exercises' lists {len(files)} files; a pack holds at most "
                      f"{MAX_EXERCISES} (split it into several packs)")
        files = ()
    concepts = _concepts(top, where)
    declared = _misconceptions(top.table_of("misconceptions"), where)
    practice_tables, practice_files = _practice_entries(top, data)
    top.unknown()
    helpers = root / "helpers.py"
    catalogue = Catalogue(
        {**builtin_catalogue().concepts, **{k: str(v) for k, v in concepts.items()}},
        {**builtin_catalogue().misconceptions, **{n: (t, e) for n, t, e in declared}},
    )
    reader = _Reader(pack_name, root, catalogue, helpers.is_file(), deep, kept)
    reader.format = version if version in FORMATS else FORMAT
    exercises = []
    for number, file in enumerate(files, start=1):
        exercise = reader.exercise(root, file, number, problems)
        if exercise is not None:
            exercises.append(exercise)
    templates = [reader.template(table, Where(problems, "pack.toml").at(step=index))
                 for index, table in enumerate(practice_tables[:MAX_TEMPLATES], start=1)]
    for file in practice_files[:MAX_TEMPLATES]:
        fwhere = Where(problems, file)
        pdata = read_toml(_inside(root, file, fwhere) or root / "?", fwhere, kept)
        if pdata is None:
            continue
        pfields = Fields(pdata, fwhere, file)
        for index, table in enumerate(pfields.tables("practice", required=True), start=1):
            templates.append(reader.template(table, fwhere.at(step=index)))
        pfields.unknown()
    if len(practice_tables) > MAX_TEMPLATES or len(templates) > MAX_TEMPLATES:
        where.problem(f"a pack holds at most {MAX_TEMPLATES} practice templates")
    pack = Pack(
        name=pack_name, title=title, root=root, exercises=tuple(exercises),
        concepts=tuple((k, str(v)) for k, v in concepts.items()),
        misconceptions=tuple(declared),
        practice=(*templates, *reader.derived),
        helpers=helpers if helpers.is_file() else None, builtin=builtin,
    )
    if not builtin:
        for message in redefinitions(pack, ()):
            where.problem(message)
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
    try:
        path = (root / file).resolve()
        inside = path.is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL in the name
        where.problem(f"{file!r} can't be resolved (a symbolic link loop?)")
        return None
    if not inside:
        where.problem(f"{file!r} is outside the pack's directory")
        return None
    return path


def _concepts(top: Fields, where: Where) -> dict[str, str]:
    fields = Fields(top.table_of("concepts"), where, "[concepts]")
    concepts = {}
    for key, value in fields.table.items():
        if not NAME_PATTERN.match(key):
            where.problem(f"concept name {key!r} must be 1 to 40 lower-case letters, digits "
                          "and '-'")
        elif not isinstance(value, str):
            where.problem(f"concept {key!r} must have a one-line description (text)")
        else:
            concepts[key] = fields.text(key, one_line=True)
    return concepts


def _misconceptions(table: dict[str, Any], where: Where) -> list[DeclaredName]:
    result = []
    for name, entry in table.items():
        if not NAME_PATTERN.match(name):
            where.problem(f"misconception name {name!r} must be 1 to 40 lower-case letters, "
                          "digits and '-'")
            continue
        if not isinstance(entry, dict):
            where.problem(f"[misconceptions.{name}] must be a table with title and explanation")
            continue
        fields = Fields(entry, where, f"[misconceptions.{name}]")
        result.append(DeclaredName(name, fields.text("title", required=True, one_line=True),
                                   fields.text("explanation", required=True)))
        fields.unknown()
    return result


class _Reader:
    """Reads exercise files of one pack, checking names against its catalogue."""

    def __init__(self, pack: str, root: Path, catalogue: Catalogue, has_helpers: bool,
                 deep: bool = True, kept: TomlCache | None = None) -> None:
        self.pack = pack
        self.root = root
        self.catalogue = catalogue
        self.has_helpers = has_helpers
        self.deep = deep
        self.format = FORMAT  # the pack's; what format 2 adds is refused in format 1
        # Templates made of the exercises' parameterised steps, in reading order.
        self.derived: list[Template] = []
        self.kept = kept

    def needs_format_2(self, where: Where, what: str) -> None:
        if self.format < 2:
            where.problem(f"{what} needs format = 2 in pack.toml")

    def exercise(self, root: Path, file: str, number: int,
                 problems: list[Problem]) -> Exercise | None:
        where = Where(problems, file)
        path = _inside(root, file, where)
        data = read_toml(path, where, self.kept) if path is not None else None
        if data is None:
            return None
        top = Fields(data, where, file)
        title = top.text("title", required=True, one_line=True)
        level = top.text("level", required=True, one_line=True)
        intro = top.text("intro", required=True)
        closing = top.text("closing")
        coding = self.coding(top.table_of("coding"), where) if "coding" in data else None
        tables = top.tables("steps", required=True)
        top.unknown()
        if not tables and "steps" in data:
            where.problem("an exercise needs at least one [[steps]]")
        if len(tables) > MAX_STEPS:
            where.problem(f"an exercise holds at most {MAX_STEPS} steps, not {len(tables)}")
            tables = tables[:MAX_STEPS]
        ids: set[str] = set()
        steps = []
        for index, table in enumerate(tables, start=1):
            step = self.step(table, where.at(step=index), ids)
            if step is not None:
                steps.append(step)
                if step.params:
                    self.step_template(table, step, where.at(step=index))
        return Exercise(self.pack, number, title, level, intro, tuple(steps), closing,
                        coding, source=file)

    def step_template(self, table: dict[str, Any], step: Step, where: Where) -> None:
        """A parameterised step is also a practice problem for its concept."""
        concept = next((p.concept for p in step.predictions if p.concept), "")
        if not concept:
            where.problem("a step with params needs a prediction with a concept (its "
                          "practice problems are that concept's)")
            return
        raw = self.step_raw(table, where)
        self.derived.append(Template(concept, replace(raw, params=step.params), step.params,
                                     self.pack, origin=f"{where.file}: step {where.step}"))

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

    def step(self, table: dict[str, Any], where: Where, ids: set[str],
             fill: bool = True) -> Step | None:
        params, at = self.step_params(table, where)
        if at and fill:
            from autograd_tutor.engine.practice import fill_template, spelled

            table = fill_template(table, spelled(params, dict(at)))
        fields = Fields(table, where, "the step")
        fields.known |= {"params", "at"}
        title = fields.text("title", required=True, one_line=True)
        setup = fields.text("setup", required=True)
        code = fields.text("code", required=True)
        graph = fields.text("graph") or None
        explanation = fields.text("explanation")
        values = fields.texts("values")
        live = fields.flag("live")
        prepare = fields.text("prepare")
        figures = [self.figure(t, where) for t in fields.tables("figures")]
        tables = fields.tables("predictions")
        fields.unknown()
        self.check_code(code, where)
        if prepare:
            self.needs_format_2(where, "prepare (hidden code)")
            self.check_code(prepare, where, "prepare")
        self.check_template(explanation, where, "explanation")
        predictions: list[Prediction] = []
        for table_ in tables:
            predictions.extend(self.prediction(table_, where, ids))
        return Step(title, setup, code, tuple(predictions), explanation, values, graph, live,
                    tuple(f for f in figures if f is not None), prepare=prepare,
                    params=tuple(params), at=tuple(at))

    def step_params(self, table: dict[str, Any], where: Where
                    ) -> tuple[list[Param], list[tuple[str, float]]]:
        """A step's `params` (drawn for practice, as a template's) and `at` (the values the
        exercise shows); each needs the other, with the same names."""
        fields = Fields(table, where, "the step")
        raw_params = fields.table_of("params")
        raw_at = fields.table_of("at")
        if not raw_params and not raw_at:
            return [], []
        params = self.params(raw_params, False, where)
        at: list[tuple[str, float]] = []
        for name, value in raw_at.items():
            if (not isinstance(value, int | float) or isinstance(value, bool)
                    or not math.isfinite(value)):
                where.problem(f"'at' value of {name!r} must be a finite number")
                continue
            at.append((name, float(value)))
        if not raw_at or not raw_params:
            where.problem("a step with 'params' needs 'at' (the values the exercise shows), "
                          "and 'at' needs 'params'")
        elif set(raw_at) != set(raw_params):
            where.problem("a step's 'params' and 'at' must name the same parameters")
        return params, at

    def params(self, table: dict[str, Any], halves: bool,
               where: Where) -> list[Param]:
        """[low, high] whole numbers, or [low, high, 0.5] for multiples of 0.5."""
        params = []
        for name, bounds in table.items():
            ok = (isinstance(bounds, list) and len(bounds) in (2, 3)
                  and all(isinstance(b, int | float) and not isinstance(b, bool)
                          and math.isfinite(b) for b in bounds)
                  and bounds[0] <= bounds[1] and bounds[2:] in ([], [0.5]))
            if not ok:
                where.problem(f"param {name!r} must be [low, high] with low <= high, "
                              "both finite (or [low, high, 0.5] for multiples of 0.5)")
                # Still a name, so its placeholders aren't reported as a second problem.
                params.append(Param(name, 0.0, 0.0, halves))
                continue
            half = halves or bounds[2:] == [0.5]
            params.append(Param(name, float(bounds[0]), float(bounds[1]), half))
        return params

    def check_code(self, code: str, where: Where, what: str = "code") -> None:
        if not self.deep:
            return
        try:
            compile(code, "<step>", "exec", dont_inherit=True)
        except SyntaxError as error:
            where.problem(f"{what} does not parse: {error.msg} (line {error.lineno})")
        except ValueError as error:
            where.problem(f"{what} does not parse: {error}")

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
            for expression, spec in expressions.placeholders(text):
                self.check_expression(expression, where, f"placeholder in {what}")
                problem = expressions.spec_problem(spec) if spec else None
                if problem:
                    where.problem(f"placeholder {{{expression}:{spec}}} in {what}: {problem}")
        except expressions.ExprError as error:
            where.problem(f"{what}: {error}")

    def prediction(self, table: dict[str, Any], step_where: Where,
                   ids: set[str]) -> list[Prediction]:
        raw_id = table.get("id")
        where = step_where.at(prediction=raw_id if isinstance(raw_id, str) else "?")
        fields = Fields(table, where, "the prediction")
        pid = fields.text("id", required=True)
        label = fields.text("label", one_line=True) or pid
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
        if kind == Kind.OUTCOME:
            result = self.outcome(fields, where, pid, label, hints, concept, feedback,
                                  misconceptions, ids)
        else:
            declared = "kind" in fields.table
            if kind not in READ_KINDS:
                names = ", ".join([*READ_KINDS, Kind.OUTCOME])
                where.problem(f"kind {kind!r} is not one of: {names}")
            elif kind != Kind.VALUE:
                self.needs_format_2(where, f"kind = {kind!r}")
            result = [self.value_prediction(fields, where, pid, label, hints, concept,
                                            feedback, misconceptions,
                                            Kind(kind) if declared and kind in READ_KINDS
                                            else None)]
        fields.unknown()
        return result

    def value_prediction(self, fields: Fields, where: Where, pid: str, label: str,
                         hints: tuple[str, ...], concept: str, feedback: str,
                         misconceptions: tuple[Misconception, ...],
                         declared: Kind | None = None) -> Prediction:
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
        kind = self.kind_of(actual, declared, where)
        if choices and kind in (Kind.SHAPE, Kind.FLAG):
            where.problem(f"choices do not go with a {kind} prediction: the learner types it")
        return Prediction(pid, label, actual, by_hand, by_hand_text, hints, tolerance, concept,
                          misconceptions, feedback, choices, kind=kind,
                          tensor=kind == Kind.VALUE and not choices and self.format >= 2)

    def kind_of(self, actual: str, declared: Kind | None, where: Where) -> Kind:
        """The kind follows from what `actual` reads (.shape, .requires_grad, ...); a
        declared `kind` is needed only where it can't be seen (a helper's result), and must
        agree with what can."""
        if not any(word in actual for word in _NOT_VALUE):
            return declared or Kind.VALUE  # most predictions: no need to parse anything
        from autograd_tutor.engine import expressions  # ast work, as check_expression's

        try:
            inferred = Kind(expressions.result_kind(expressions.parse_pack_expression(actual)))
        except expressions.ExprError:
            return declared or Kind.VALUE  # reported by check_expression
        if inferred != Kind.VALUE:
            self.needs_format_2(where, f"actual {actual!r} (a {inferred} prediction)")
        if declared is not None and inferred != Kind.VALUE and declared != inferred:
            where.problem(f"kind {declared!r} does not fit actual {actual!r}, which reads a "
                          f"{inferred}")
        return declared or inferred

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
                          choices=OUTCOMES, kind=Kind.OUTCOME, code=code, error_match=error_match)
        if not choices:
            if right_choice:
                where.problem("error_choice is given without error_choices")
            return [main]
        # A learner who predicts error is asked which one whatever the code does, so code
        # that runs or warns may have error_choices too: then there is no right one.
        low, high = CHOICE_COUNT
        if not low <= len(choices) <= high:
            where.problem(f"error_choices must name {low} to {high} errors, not {len(choices)}")
        if expected != "error":
            if right_choice:
                where.problem(f"error_choice goes only with outcome = \"error\": code that "
                              f"is declared to be {expected!r} raises no error to name")
            right_choice = NO_ERROR
        elif right_choice not in choices:
            where.problem(f"error_choice {right_choice!r} is not one of the error_choices")
        which_id = f"{pid}:which"
        if which_id in ids:
            where.problem(f"duplicate prediction id {which_id!r}")
        ids.add(which_id)
        which = Prediction(which_id, "which error", actual="",
                           by_hand=f'"{right_choice}"',
                           by_hand_text="matched against PyTorch's message"
                           if expected == "error" else "the lesson's answer: it raises none",
                           hints=which_hints,
                           concept=concept,
                           choices=choices, kind=Kind.WHICH, code=code, error_match=error_match)
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
        params = self.params(params_table, halves, where)
        if isinstance(step_table.get("predictions"), list):  # new tables: the data is kept
            step_table["predictions"] = [  # a template's own concept, unless one is given
                {"concept": concept, **p} if isinstance(p, dict) else p
                for p in step_table["predictions"]]
        if self.deep:  # fields and syntax, on an example draw
            self.step(_fill_example(step_table, params), where, set())
        # Keep the raw text (with {param} placeholders); the example only checked its syntax.
        raw = self.step_raw(step_table, where)
        return Template(concept, raw, tuple(params), self.pack)

    def step_raw(self, table: dict[str, Any], where: Where) -> Step:
        silent = _Reader(self.pack, self.root, self.catalogue, True, deep=False)
        silent.format = self.format
        quiet = Where([], where.file, where.step)
        step = silent.step(table, quiet, set(), fill=False)
        return step if step is not None else Step("", "", "")


def _fill_example(table: dict[str, Any], params: list[Param]) -> Any:
    """The template with each {param} replaced by its low bound, to check its syntax."""
    from autograd_tutor.engine.practice import fill_template, spelled

    return fill_template(table, spelled(params, {name: low for name, low, _, _ in params}))


# Naming an exercise ----------------------------------------------------------------------


def parse_key(text: str) -> tuple[str, int]:
    """'3' -> ('basics', 3); 'errors/2' -> ('errors', 2). Raises ValueError."""
    pack, sep, number = text.strip().rpartition("/")
    if not sep:
        pack = DEFAULT_PACK
    number = number.strip()
    # ASCII digits only: int() would read '٣' (Arabic-Indic) or '１' (full-width) as well.
    if not (number.isascii() and number.isdigit()) or not pack:
        raise ValueError(text)
    return pack, int(number)


def key_text(exercise: Exercise) -> str:
    """How a command names this exercise: N for the built-in basics pack, PACK/N otherwise."""
    return str(exercise.number) if exercise.pack == DEFAULT_PACK else exercise.key


def builtin_packs() -> list[Pack]:
    return [builtin(root.name) for root in _pack_dirs(BUILTIN_DIR)]


@cache
def builtin(name: str = DEFAULT_PACK) -> Pack:
    """A built-in pack, read once; PackError if it is not sound (a bug in the tool)."""
    pack, problems = load_pack(BUILTIN_DIR / name, builtin=True)
    if pack is None or problems:
        raise PackError(f"built-in pack {name!r}: " + "; ".join(map(str, problems)))
    return pack
