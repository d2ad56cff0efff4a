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
warnings.filterwarnings("ignore", category=SyntaxWarning, module=r"<expression>\Z")

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


def _parse(text: str) -> ast.expr:
    try:
        module = ast.parse(text.strip(), filename=_SOURCE, mode="eval")
    except SyntaxError as error:
        reason = (error.msg or "invalid syntax").split(" (")[0]
        if error.offset and error.offset > 0:
            # .strip() above removed leading spaces; point into the original text.
            column = error.offset + len(text) - len(text.lstrip())
        else:  # Python gives no position when the text stops too early (`x +`)
            column = len(text) + 1
        raise ExprError(f"cannot read the expression: {reason}", text, column) from None
    except (ValueError, RecursionError, MemoryError, OverflowError):
        raise ExprError("cannot read the expression: it is too complex") from None
    return module.body


def _check_depth(tree: ast.AST, text: str) -> None:
    """Refuse deep nesting before any recursive walk (iteratively, so it cannot overflow)."""
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExprError(f"the expression is nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


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
