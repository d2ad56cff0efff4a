"""The playground's expression language, parsed with `ast` against a whitelist.

    expr = parse_expression("x**2 * w + sin(x)")      # validates; raises ExprError
    expr.variables                                     # ("x", "w") in order of appearance
    out = expr.build({"x": x_tensor, "w": w_tensor})   # real torch operations

Allowed: numbers, variable names, `+ - * / **`, unary minus and plus, parentheses and the
functions in FUNCTIONS with one argument. Nothing typed is ever evaluated by Python: the
validated tree is walked and each node becomes a torch call. Anything else raises ExprError
(a ValueError) whose message names the offending part and its column. torch is imported
only by `build`, so parsing and validation stay cheap.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import unicodedata
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

FUNCTIONS = ("sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu")
MAX_LENGTH = 300
MAX_DEPTH = 40  # nesting of the syntax tree, and of parentheses
MAX_EXPONENT = 64  # largest constant exponent
MAX_MAGNITUDE = 1e300
MAX_NAME_LENGTH = 30

# Python warns about some typos ("1if x") while parsing; the learner should see our one-line
# error, not a SyntaxWarning. A filter for this parser's own filename, set once: a
# catch_warnings block would race with the thread that imports torch meanwhile.
_SOURCE = "<expression>"
# (An invalid escape such as "\\_" is a DeprecationWarning before Python 3.12.)
for _category in (SyntaxWarning, DeprecationWarning):
    warnings.filterwarnings("ignore", category=_category, module=r"<expression>\Z")

_BINARY: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.Pow: ("**", operator.pow),
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
# What a learner probably meant, for the syntax a whitelist refuses.
_REFUSED = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Lambda: "lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Compare: "a comparison",
    ast.BoolOp: "and/or",
    ast.IfExp: "if/else",
    ast.NamedExpr: "assignment (:=)",
    ast.Starred: "*unpacking",
    ast.JoinedStr: "an f-string",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


class ExprError(ValueError):
    """The text is not an allowed expression. `column` is 1-based (None when not one spot)."""

    def __init__(
        self, message: str, text: str = "", column: int | None = None, length: int = 1
    ) -> None:
        self.reason = message
        self.text = text
        self.column = column
        self.length = max(1, length)
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.column is None or not self.text:
            return self.reason
        if self.column > len(self.text):
            return f"{self.reason} (at the end of the expression)"
        snippet = self.text[self.column - 1 : self.column - 1 + self.length]
        if len(snippet) > 40:
            snippet = snippet[:37] + "..."
        return f"{self.reason} (column {self.column}: {snippet!r})"

    def caret(self) -> str:
        """The expression with a ^^^ line under the offending part (for multi-line output)."""
        if self.column is None or not self.text:
            return self.text
        return f"{self.text}\n{' ' * (self.column - 1)}{'^' * self.length}"


@dataclass(frozen=True)
class Expression:
    """A validated expression: its text, its syntax tree and the variables it uses."""

    text: str
    tree: ast.expr
    variables: tuple[str, ...]

    def build(self, values: Mapping[str, Any], dtype: Any = None) -> Any:
        """The expression as real torch operations on `values` (name -> tensor or number).

        Constants stay Python numbers next to tensors, exactly as in hand-written code
        (`2 * x`); a part made only of constants is computed as a torch tensor of `dtype`
        (default float64), so `1/0` is inf and `(-8)**(1/3)` is nan, as torch would say.
        """
        import torch

        missing = [name for name in self.variables if name not in values]
        if missing:
            raise ExprError(f"no value for {', '.join(missing)}")
        builder = _Builder(self.text, values, dtype if dtype is not None else torch.float64)
        try:
            result = builder.build(self.tree)
        except (RuntimeError, TypeError, ValueError, OverflowError, ZeroDivisionError) as error:
            raise ExprError(f"cannot compute this expression: {error}") from None
        return builder.tensor(result)


def parse_expression(text: str, allowed: Mapping[str, object] | None = None) -> Expression:
    """Validate `text`; with `allowed`, every variable must be one of its keys."""
    if not isinstance(text, str):
        raise ExprError("the expression must be text")
    _check_characters(text)
    text = text.replace("^", "**")  # as in predictions: `^` means power
    _check_parentheses(text)
    tree = _parse(text)
    _check_depth(tree, text)
    variables: list[str] = []
    _Validator(text, variables).visit(tree)
    if allowed is not None:
        unknown = [name for name in variables if name not in allowed]
        if unknown:
            raise ExprError(f"unknown name{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    return Expression(text, tree, tuple(variables))


def _check_characters(text: str) -> None:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"the expression is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ExprError("the expression is empty: type something like x**2 + 3*x")
    for index, char in enumerate(text):
        if char in "\r\n":
            raise ExprError("the expression must be on one line", text, index + 1)
        if not (char.isascii() and (char.isprintable() or char == "\t")):
            name = unicodedata.name(char, "a control character")
            raise ExprError(
                f"unexpected character U+{ord(char):04X} ({name}); use plain ASCII",
                text,
                index + 1,
            )


def _check_parentheses(text: str) -> None:
    """Nested parentheses add no tree nodes, so they are counted on the text itself."""
    depth = 0
    for index, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth > MAX_DEPTH:
            raise ExprError(
                f"the expression is nested more than {MAX_DEPTH} levels deep", text, index + 1
            )


# A number written straight before a name, as on paper: `2x`, `0.5sin(x)`, `3e2y`.
_IMPLICIT_PRODUCT = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)([A-Za-z_]\w*)")


def _parse(text: str) -> ast.expr:
    try:
        module = ast.parse(text.strip(), filename=_SOURCE, mode="eval")
    except SyntaxError as error:
        reason = (error.msg or "invalid syntax").split(" (")[0]
        product = _IMPLICIT_PRODUCT.search(text)
        if reason == "invalid decimal literal" and product:  # `2x`: a product, as on paper
            number, name = product.groups()
            if text[product.end():].lstrip().startswith("("):
                name += "(...)"
            raise ExprError(f"cannot read the expression: write {number}*{name} for "
                            f"{number} times {name}", text, product.start() + 1,
                            len(product.group())) from None
        if error.offset and error.offset > 0:
            # .strip() above removed leading spaces; point into the original text.
            column = error.offset + len(text) - len(text.lstrip())
        else:  # Python gives no position when the text stops too early (`x +`)
            column = len(text) + 1
        raise ExprError(f"cannot read the expression: {reason}", text, column) from None
    except (ValueError, RecursionError, MemoryError, OverflowError):
        raise ExprError("cannot read the expression: it is too complex") from None
    return module.body


# Operators that chain without nesting: `a + b - c` is one flat sum, however long.
_CHAINS = ((ast.Add, ast.Sub), (ast.Mult, ast.Div))


def _continues(node: ast.AST, child: ast.AST) -> bool:
    """`child` is the left part of a flat chain `node` extends (`a + b` in `a + b + c`)."""
    return (isinstance(node, ast.BinOp) and isinstance(child, ast.BinOp)
            and child is node.left and any(isinstance(node.op, ops) and isinstance(child.op, ops)
                                           for ops in _CHAINS))


def _check_depth(tree: ast.AST, text: str, chains: bool = True) -> None:
    """Refuse deep nesting before any recursive walk (iteratively, so it cannot overflow).
    With `chains`, a flat chain of + and - (or * and /) is one level: its length is bounded
    by MAX_LENGTH, which keeps the walks' recursion within Python's limit. (A pack's
    expressions, longer and evaluated by another walk, count every operator.)"""
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExprError(f"the expression is nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + (not (chains and _continues(node, child))))
                     for child in ast.iter_child_nodes(node))


def _location(node: ast.AST, text: str) -> tuple[int | None, int]:
    """1-based column and length of `node` in the original text."""
    col = getattr(node, "col_offset", None)
    if col is None:
        return None, 1
    offset = len(text) - len(text.lstrip())  # _parse stripped leading spaces
    end = getattr(node, "end_col_offset", None)
    line_ok = getattr(node, "lineno", 1) == 1 and getattr(node, "end_lineno", 1) == 1
    length = end - col if end is not None and line_ok else 1
    return col + 1 + offset, length


class _Validator:
    """Walks the tree once: only whitelisted nodes, known functions, bounded constants."""

    def __init__(self, text: str, variables: list[str]) -> None:
        self.text = text
        self.variables = variables

    def fail(self, message: str, node: ast.AST) -> ExprError:
        column, length = _location(node, self.text)
        return ExprError(message, self.text, column, length)

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            self._constant(node)
        elif isinstance(node, ast.Name):
            self._name(node)
        elif isinstance(node, ast.BinOp):
            self._binop(node)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise self.fail("only unary minus and plus are allowed", node)
            self.visit(node.operand)
        elif isinstance(node, ast.Call):
            self._call(node)
        else:
            what = _REFUSED.get(type(node), type(node).__name__)
            raise self.fail(f"{what} is not allowed here", node)

    def _constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"only numbers are allowed, not {type(value).__name__}", node)
        try:
            magnitude = abs(float(value))
        except OverflowError:
            magnitude = math.inf
        if not magnitude <= MAX_MAGNITUDE:
            raise self.fail("this number is too large", node)

    def _name(self, node: ast.Name) -> None:
        name = node.id
        if name in FUNCTIONS:
            raise self.fail(f"{name} is a function: write {name}(...)", node)
        if name.startswith("_") or len(name) > MAX_NAME_LENGTH:
            raise self.fail(f"{name!r} is not allowed as a variable name", node)
        if name not in self.variables:
            self.variables.append(name)

    def _binop(self, node: ast.BinOp) -> None:
        if type(node.op) not in _BINARY:
            hint = " (use ** for powers)" if isinstance(node.op, ast.BitXor) else ""
            raise self.fail(f"only + - * / ** are allowed{hint}", node)
        self.visit(node.left)
        self.visit(node.right)
        if isinstance(node.op, ast.Pow):
            exponent = _constant_value(node.right)
            if exponent is not None and not abs(exponent) <= MAX_EXPONENT:
                raise self.fail(f"exponents larger than {MAX_EXPONENT} are not allowed", node.right)

    def _call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise self.fail("attribute access is not allowed here", func)
        if isinstance(func, ast.Constant) and node.args:  # `2(x + 1)`: a product
            raise self.fail(f"write {ast.unparse(func)}*(...) to multiply by "
                            f"{ast.unparse(func)}", node)
        if not isinstance(func, ast.Name):
            raise self.fail("only the functions " + ", ".join(FUNCTIONS) + " can be called", node)
        if func.id not in FUNCTIONS:
            raise self.fail(f"unknown function {func.id!r}; allowed: {', '.join(FUNCTIONS)}", func)
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise self.fail(f"{func.id}() takes exactly one argument", node)
        self.visit(node.args[0])


def _constant_value(node: ast.expr) -> float | None:
    """The value of a part made only of numbers and + - * / **, or None when it has a
    variable or function (or cannot be computed safely). Used to bound exponents, so that
    `2**10**10` is refused instead of computed; every power is bounded the same way."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        inner = _constant_value(node.operand)
        return None if inner is None else _UNARY[type(node.op)](inner)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _constant_value(node.left), _constant_value(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            return math.inf
        try:
            value = _BINARY[type(node.op)][1](left, right)
        except (ZeroDivisionError, OverflowError, ValueError):
            return None
        return value if isinstance(value, float) and math.isfinite(value) else None
    return None


class _Builder:
    """Turns a validated tree into torch operations (recursion depth <= MAX_DEPTH)."""

    def __init__(self, text: str, values: Mapping[str, Any], dtype: Any) -> None:
        import torch

        self.torch = torch
        self.text = text
        self.values = values
        self.dtype = dtype
        self.functions: dict[str, Callable[[Any], Any]] = {
            "sin": torch.sin,
            "cos": torch.cos,
            "tan": torch.tan,
            "exp": torch.exp,
            "log": torch.log,
            "sqrt": torch.sqrt,
            "abs": torch.abs,
            "tanh": torch.tanh,
            "sigmoid": torch.sigmoid,
            "relu": torch.relu,
        }

    def tensor(self, value: Any) -> Any:
        if isinstance(value, self.torch.Tensor):
            return value
        return self.torch.tensor(float(value), dtype=self.dtype)

    def build(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return float(cast(float, node.value))  # the validator allowed only int and float
        if isinstance(node, ast.Name):
            return self.values[node.id]
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self.build(node.operand))
        if isinstance(node, ast.BinOp):
            left, right = self.build(node.left), self.build(node.right)
            if not isinstance(left, self.torch.Tensor) and not isinstance(right, self.torch.Tensor):
                left = self.tensor(left)  # numbers only: let torch give inf/nan, not Python errors
            return _BINARY[type(node.op)][1](left, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self.functions[node.func.id](self.tensor(self.build(node.args[0])))
        raise ExprError("internal: unvalidated expression")  # parse_expression prevents this


# ---------------------------------------------------------------------------------------
# Pack expressions: the same parser and whitelist, widened for what a lesson reads back.
#
# Besides the playground's grammar, a pack's `actual`, `by_hand`, misconception values,
# figure arguments and {placeholders} may use: None, True, False and text constants;
# list literals [...] and tuples (...); `NAME.grad`; the reads `.shape`, `.requires_grad`,
# `.is_leaf`, `.dtype`, `.grad_fn` (of a name, NAME.grad or NAME[i]) and `.numel()`;
# `a == b`, `a != b`; indexing (`v[1]`, `v.grad[0]`, `params[39][0]`); sum(), mean(), len(),
# min(), max(), numel(); answer("ID") (PyTorch's value of an earlier prediction);
# helpers.NAME(...) (the pack's helpers.py). They are evaluated over plain values: a
# one-element tensor stands for its float, a larger one for a (nested) list of floats, a
# Python number for itself; a shape is a tuple of ints, a dtype its name ("float32"), a
# grad_fn its class name ("MulBackward0") or None.

PACK_FUNCTIONS = ("sum", "mean", "len", "min", "max", "numel", "answer")
# The attributes a pack expression may read, and the kind of prediction each one makes.
READS = {"grad": "value", "shape": "shape", "requires_grad": "flag", "is_leaf": "flag",
         "dtype": "dtype", "grad_fn": "grad_fn"}


def result_kind(expression: PackExpression) -> str:
    """The kind of prediction an `actual` makes, from what it reads: "shape", "flag",
    "dtype", "grad_fn", or "value" (a number, None or a tensor)."""
    tree = expression.tree
    if isinstance(tree, ast.Attribute):
        return READS.get(tree.attr, "value")
    if isinstance(tree, ast.Compare) or (isinstance(tree, ast.Constant)
                                         and isinstance(tree.value, bool)):
        return "flag"
    return "value"
PACK_MAX_LENGTH = 400


@dataclass(frozen=True)
class PackExpression:
    text: str
    tree: ast.expr
    names: tuple[str, ...]  # the step's names it reads (not functions, not helpers)
    uses_helpers: bool
    reads_code: bool  # reads something PyTorch computed (a name or an earlier answer)


def parse_pack_expression(text: str) -> PackExpression:
    if not isinstance(text, str):
        raise ExprError("the expression must be text")
    if len(text) > PACK_MAX_LENGTH:
        raise ExprError(f"the expression is longer than {PACK_MAX_LENGTH} characters")
    if not text.strip():
        raise ExprError("the expression is empty")
    _check_parentheses(text)
    tree = _parse(text)
    _check_depth(tree, text, chains=False)
    validator = _PackValidator(text, [])
    validator.visit(tree)
    reads = bool(validator.variables) or validator.uses_answer
    return PackExpression(text, tree, tuple(validator.variables), validator.uses_helpers, reads)


class _PackValidator(_Validator):
    def __init__(self, text: str, variables: list[str]) -> None:
        super().__init__(text, variables)
        self.uses_helpers = False
        self.uses_answer = False

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant) and (node.value is None
                                               or isinstance(node.value, str | bool)):
            return
        if isinstance(node, ast.Attribute):
            if node.attr not in READS:
                raise self.fail(f"only {', '.join('.' + a for a in READS)} can be read, "
                                f"not .{node.attr}", node)
            if node.attr != "grad" and not _holder(node.value):
                raise self.fail(f".{node.attr} can only be read from a name, NAME.grad or "
                                "NAME[i]", node)
            if node.attr == "grad" and not isinstance(node.value, ast.Name):
                raise self.fail(".grad can only be read from a name, like x.grad", node)
            self.visit(node.value)
            return
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1 or not isinstance(node.ops[0], ast.Eq | ast.NotEq):
                raise self.fail("only one == or != comparison is allowed", node)
            self.visit(node.left)
            self.visit(node.comparators[0])
            return
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice | ast.Tuple):
                raise self.fail("only a single index is allowed, like v[0]", node)
            self.visit(node.value)
            self.visit(node.slice)
            return
        if isinstance(node, ast.List | ast.Tuple):
            for item in node.elts:
                self.visit(item)
            return
        super().visit(node)

    def _name(self, node: ast.Name) -> None:
        if node.id == "helpers":
            raise self.fail("helpers is only used to call a helper: helpers.NAME(...)", node)
        if node.id in PACK_FUNCTIONS:
            raise self.fail(f"{node.id} is a function: write {node.id}(...)", node)
        super()._name(node)

    def _call(self, node: ast.Call) -> None:
        func = node.func
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.fail("only plain arguments are allowed in a call", node)
        if isinstance(func, ast.Attribute) and func.attr == "numel" and not (
                isinstance(func.value, ast.Name) and func.value.id == "helpers"):
            if node.args or not _holder(func.value):
                raise self.fail(".numel() takes no argument and is read from a name, "
                                "NAME.grad or NAME[i]", node)
            self.visit(func.value)
            return
        if isinstance(func, ast.Attribute):
            if not (isinstance(func.value, ast.Name) and func.value.id == "helpers"):
                raise self.fail("only helpers.NAME(...) and .numel() can be called with a "
                                "dot", func)
            if func.attr.startswith("_"):
                raise self.fail(f"helpers.{func.attr} is private", func)
            self.uses_helpers = True
            for arg in node.args:
                self.visit(arg)
            return
        if isinstance(func, ast.Name) and func.id == "answer":
            args = node.args
            if len(args) != 1 or not (isinstance(args[0], ast.Constant)
                                      and isinstance(args[0].value, str)):
                raise self.fail('answer() takes one prediction ID in quotes: answer("x.grad")',
                                node)
            self.uses_answer = True
            return
        if isinstance(func, ast.Name) and func.id in PACK_FUNCTIONS:
            if len(node.args) != 1:
                raise self.fail(f"{func.id}() takes exactly one argument", node)
            self.visit(node.args[0])
            return
        if isinstance(func, ast.Name) and func.id not in FUNCTIONS:
            allowed = ", ".join(FUNCTIONS + PACK_FUNCTIONS)
            raise self.fail(f"unknown function {func.id!r}; allowed: {allowed}, helpers.NAME",
                            func)
        super()._call(node)


def _holder(node: ast.expr) -> bool:
    """Whether an attribute may be read from this: a name, NAME.grad, or an indexed one."""
    if isinstance(node, ast.Name):
        return node.id != "helpers"
    if isinstance(node, ast.Attribute):
        return node.attr == "grad" and isinstance(node.value, ast.Name)
    if isinstance(node, ast.Subscript):
        return _holder(node.value)
    return False


class EvalError(ValueError):
    """A pack expression could not be computed; the message says why."""


@dataclass
class Scope:
    """What a pack expression may read: the step's names, earlier answers, the helpers."""

    names: Mapping[str, Any]
    answers: Mapping[str, Any]
    helpers: Any = None


def plain(value: Any) -> Any:
    """A tensor as a float or a (nested) list of floats; tuples as lists; numbers as floats."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if type(value).__name__ == "Size":  # a torch.Size: a shape, kept as a tuple of ints
        return tuple(int(d) for d in value)
    if hasattr(value, "numel") and hasattr(value, "tolist"):
        if value.numel() == 1:
            return float(value.item())
        return value.detach().tolist()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    raise EvalError(f"a {type(value).__name__} is not a number, a list or a tensor")


def evaluate(expression: PackExpression, scope: Scope) -> Any:
    """The expression's value over plain floats, lists, None and text."""
    try:
        return _Evaluator(scope, expression.text).value(expression.tree)
    except EvalError:
        raise
    except (ArithmeticError, ValueError, TypeError, IndexError, KeyError) as error:
        raise EvalError(f"{type(error).__name__}: {error}") from None


_MATH: dict[str, Callable[[float], float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "log": math.log,
    "sqrt": math.sqrt, "abs": abs, "tanh": math.tanh,
    "sigmoid": lambda v: 1 / (1 + math.exp(-v)), "relu": lambda v: max(v, 0.0),
}


class _Evaluator:
    def __init__(self, scope: Scope, text: str) -> None:
        self.scope = scope
        self.text = text

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            value = node.value
            if value is None or isinstance(value, str | bool):
                return value
            return float(cast(float, value))
        if isinstance(node, ast.Name):
            if node.id not in self.scope.names:
                raise EvalError(f"{node.id!r} is not a name the step's code binds")
            return plain(self.scope.names[node.id])
        if isinstance(node, ast.Attribute):
            if node.attr == "grad":
                return self.grad(node.value)
            return self.read(node)
        if isinstance(node, ast.Tuple):
            return tuple(self.value(item) for item in node.elts)
        if isinstance(node, ast.Compare):
            left, right = self.value(node.left), self.value(node.comparators[0])
            same = _same(left, right)
            return same if isinstance(node.ops[0], ast.Eq) else not same
        if isinstance(node, ast.Subscript):
            container = self.value(node.value)
            index = self.number(self.value(node.slice), "an index")
            if isinstance(container, tuple):  # a shape
                container = [float(item) for item in container]
            if not isinstance(container, list):
                raise EvalError("only a list or a tensor with several elements can be indexed")
            if not index.is_integer():
                raise EvalError(f"index {index:g} is not a whole number")
            return container[int(index)]
        if isinstance(node, ast.List | ast.Tuple):
            return [self.value(item) for item in node.elts]
        if isinstance(node, ast.UnaryOp):
            operation = _UNARY[type(node.op)]
            return self.elementwise(lambda v, _: operation(v), self.value(node.operand), 0.0)
        if isinstance(node, ast.BinOp):
            return self.elementwise(lambda a, b: self.arithmetic(node.op, a, b),
                                    self.value(node.left), self.value(node.right))
        if isinstance(node, ast.Call):
            return self.call(node)
        raise EvalError("internal: unvalidated expression")

    def grad(self, node: ast.expr) -> Any:
        return plain(self.raw_grad(node))

    def raw_grad(self, node: ast.expr) -> Any:
        if not isinstance(node, ast.Name):
            raise EvalError(".grad can only be read from a name, like x.grad")
        if node.id not in self.scope.names:
            raise EvalError(f"{node.id!r} is not a name the step's code binds")
        holder = self.scope.names[node.id]
        if not hasattr(holder, "grad"):
            raise EvalError(f"{node.id!r} is not a tensor, so it has no .grad")
        with warnings.catch_warnings():
            # Reading a non-leaf's .grad warns; the lesson shows that warning itself.
            warnings.simplefilter("ignore")
            return holder.grad

    def raw(self, node: ast.expr) -> Any:
        """The object itself (a tensor, not its plain value), for reading its attributes."""
        if isinstance(node, ast.Name):
            if node.id not in self.scope.names:
                raise EvalError(f"{node.id!r} is not a name the step's code binds")
            return self.scope.names[node.id]
        if isinstance(node, ast.Attribute):
            return self.raw_grad(node.value)
        if isinstance(node, ast.Subscript):
            container = self.raw(node.value)
            index = self.number(self.value(node.slice), "an index")
            if not index.is_integer():
                raise EvalError(f"index {index:g} is not a whole number")
            if container is None or not hasattr(container, "__getitem__"):
                raise EvalError("only a list or a tensor can be indexed")
            return container[int(index)]
        raise EvalError("internal: unvalidated expression")

    def holder(self, node: ast.expr, what: str) -> Any:
        holder = self.raw(node)
        if holder is None:
            raise EvalError(f"{ast.unparse(node)} is None, so it has no {what}")
        if not hasattr(holder, "requires_grad"):
            raise EvalError(f"{ast.unparse(node)} is not a tensor, so it has no {what}")
        return holder

    def read(self, node: ast.Attribute) -> Any:
        """.shape, .requires_grad, .is_leaf, .dtype or .grad_fn of a tensor."""
        holder = self.holder(node.value, f".{node.attr}")
        if node.attr == "shape":
            return tuple(int(d) for d in holder.shape)
        if node.attr in ("requires_grad", "is_leaf"):
            return bool(getattr(holder, node.attr))
        if node.attr == "dtype":
            return str(holder.dtype).removeprefix("torch.")
        function = holder.grad_fn  # grad_fn
        return None if function is None else type(function).__name__
    def arithmetic(self, op: ast.operator, left: float, right: float) -> float:
        if isinstance(op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise EvalError(f"exponents larger than {MAX_EXPONENT} are not allowed")
        return _BINARY[type(op)][1](left, right)

    def elementwise(self, operation: Callable[[float, float], float], left: Any,
                    right: Any) -> Any:
        """Arithmetic on numbers, and element by element on tensors (a number with every
        element, or two tensors of the same shape), as `2 * x` or `x - 1` in PyTorch."""
        if isinstance(left, list) or isinstance(right, list):
            if isinstance(left, list) and isinstance(right, list):
                if len(left) != len(right):
                    raise EvalError(f"tensors of {len(left)} and {len(right)} elements "
                                    "cannot be combined element by element")
                return [self.elementwise(operation, a, b) for a, b in zip(left, right,
                                                                          strict=True)]
            if isinstance(left, list):
                return [self.elementwise(operation, a, right) for a in left]
            return [self.elementwise(operation, left, b) for b in right]
        return operation(self.number(left), self.number(right))

    def number(self, value: Any, what: str = "arithmetic") -> float:
        if isinstance(value, float):
            return value
        if value is None:
            raise EvalError(f"None (no gradient) cannot be used in {what}")
        if isinstance(value, list):
            raise EvalError(f"a list cannot be used in {what}; use sum(), mean() or [i]")
        raise EvalError(f"{value!r} is not a number")

    def call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "numel" and not (
                isinstance(func.value, ast.Name) and func.value.id == "helpers"):
            return float(self.holder(func.value, ".numel()").numel())
        if isinstance(func, ast.Attribute):  # helpers.NAME(...)
            helper = getattr(self.scope.helpers, func.attr, None)
            if self.scope.helpers is None or not callable(helper):
                raise EvalError(f"the pack's helpers.py has no function {func.attr!r}")
            try:
                return plain(helper(*[self.value(arg) for arg in node.args]))
            except EvalError:
                raise
            except Exception as error:  # the pack's own code failed: say where
                raise EvalError(f"helpers.{func.attr} raised {type(error).__name__}: "
                                f"{error}") from None
        assert isinstance(func, ast.Name)
        name = func.id
        if name == "answer":
            wanted = str(cast(ast.Constant, node.args[0]).value)
            if wanted not in self.scope.answers:
                raise EvalError(f'answer("{wanted}") names no earlier prediction')
            return self.scope.answers[wanted]
        if name == "numel":
            argument = self.value(node.args[0])
            return float(len(_flat(argument))) if isinstance(argument, list | tuple) else (
                1.0 if isinstance(argument, float) else self.number(argument, "numel()"))
        argument = self.value(node.args[0])
        if isinstance(argument, tuple):  # a shape: its sizes as numbers
            argument = [float(item) for item in argument]
        if name in ("sum", "mean", "len", "min", "max"):
            if not isinstance(argument, list):
                raise EvalError(f"{name}() needs a list or a tensor with several elements")
            if name == "len":
                return float(len(argument))
            items = [self.number(item, f"{name}()") for item in argument]
            if not items:
                raise EvalError(f"{name}() of an empty list")
            if name == "sum":
                return math.fsum(items)
            if name == "mean":
                return math.fsum(items) / len(items)
            return float(min(items) if name == "min" else max(items))
        return _MATH[name](self.number(argument, f"{name}()"))


def _flat(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return [element for item in value for element in _flat(item)]
    return [value]


def _comparable(value: Any) -> Any:
    """Tuples as lists and numbers as floats, so a shape (3,) equals [3] and 3 equals 3.0."""
    if isinstance(value, list | tuple):
        return [_comparable(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(_comparable(left) == _comparable(right))


def placeholders(text: str) -> list[tuple[str, str]]:
    """The (expression, format spec) of each {placeholder} in a text; {{ and }} are braces.
    Raises ExprError for an unmatched brace."""
    import string

    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as error:
        raise ExprError(f"{error} (write {{{{ or }}}} for a literal brace)") from None
    found = []
    for _, field_name, spec, conversion in parts:
        if field_name is None:
            continue
        if conversion:  # {x!r} is not ours; read it back as part of the expression
            field_name = f"{field_name}!{conversion}"
        found.append((field_name, spec or ""))
    return found


# A number's format spec as a pack may write it ({x:.3f}, {x:>8.2g}): Python's own syntax for
# floats, with width and precision kept small (a width of a billion would fill the memory).
_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?z?#?0?(?:[1-9]\d?)?[,_]?(?:\.\d{1,2})?[eEfFgGn%]?\Z",
                   re.DOTALL)


def spec_problem(spec: str) -> str | None:
    """Why `spec` is not a format spec for a number (None when it is one)."""
    if not _SPEC.match(spec):
        return (f"format spec {spec!r} is not a number format (like .3f, .2g or >8.2f; "
                "width and precision below 100)")
    try:
        format(1.5, spec)
    except ValueError as error:
        return f"format spec {spec!r} is not a number format: {error}"
    return None


def fill(text: str, value_of: Callable[[str], Any], fmt: Callable[[Any, str], str]) -> str:
    """The text with each {placeholder} replaced: value_of(expression) formatted by fmt."""
    import string

    out = []
    for literal, field_name, spec, conversion in string.Formatter().parse(text):
        out.append(literal)
        if field_name is not None:
            name = f"{field_name}!{conversion}" if conversion else field_name
            out.append(fmt(value_of(name), spec or ""))
    return "".join(out)
