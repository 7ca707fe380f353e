"""Target functions written as text (`expr = "sin(x) + 0.1*x**2"`), compiled without `eval`.

An experiment file may come from anyone, so the text is parsed with `ast` and only a whitelist of
nodes is accepted: numbers, the variable `x` (or `x0`, `x1`, ... for several inputs), the constants `pi` and `e`, unary + and -, the binary
operators + - * / % ** and calls of the functions in `FUNCTIONS`. Everything else is a `ConfigError`
that names the offending piece.

Compilation builds a tree of closures once, so calling the result does no AST work. Subexpressions
without `x` are folded at compile time on float64 torch tensors (never Python ints, so `9**9**9` is
`inf` at once instead of a hang); the rest runs as torch operations on the input tensor, whatever
its shape, dtype and device. With `inputs = k`, the variables are the columns x0 ... x(k-1) of an
(..., k) input, and the result has the shape (...) of one column.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import NoReturn

import torch

from nnrun.errors import ConfigError, suggest

#: The functions an expression may call, each taking one argument.
FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "abs": torch.abs,
    "acos": torch.acos,
    "asin": torch.asin,
    "atan": torch.atan,
    "cos": torch.cos,
    "cosh": torch.cosh,
    "exp": torch.exp,
    "expm1": torch.expm1,
    "log": torch.log,
    "log10": torch.log10,
    "log1p": torch.log1p,
    "log2": torch.log2,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "sign": torch.sign,
    "sin": torch.sin,
    "sinh": torch.sinh,
    "sqrt": torch.sqrt,
    "tan": torch.tan,
    "tanh": torch.tanh,
}
CONSTANTS = {"pi": math.pi, "e": math.e}
VARIABLE = "x"
MAX_LENGTH = 1000
MAX_DEPTH = 100

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,  # torch.remainder: the sign of the divisor, like Python's %
    ast.Pow: operator.pow,
}
_FORBIDDEN_OPERATORS = {
    ast.BitXor: "'^'",
    ast.BitOr: "'|'",
    ast.BitAnd: "'&'",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.FloorDiv: "'//'",
    ast.MatMult: "'@'",
    ast.Not: "'not'",
    ast.Invert: "'~'",
}
_DESCRIPTIONS = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Slice: "slicing",
    ast.Lambda: "a lambda",
    ast.Compare: "a comparison",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "a conditional expression",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.NamedExpr: "an assignment expression",
    ast.Starred: "unpacking",
    ast.Await: "await",
    ast.Yield: "yield",
}


def _allowed(variables: tuple[str, ...]) -> str:
    named = (
        f"the variable {variables[0]}"
        if len(variables) == 1
        else (f"the variables {', '.join(variables)}")
    )
    return (
        f"Allowed are {named}, numbers, the constants {' and '.join(CONSTANTS)}, "
        f"the operators + - * / % ** with parentheses, and the functions {', '.join(FUNCTIONS)}"
    )


ALLOWED = _allowed((VARIABLE,))


def variables(inputs: int | None) -> tuple[str, ...]:
    """The names an expression over `inputs` columns may use: x0, x1, ...; one input is also x."""
    if inputs is None:
        return (VARIABLE,)
    return tuple(f"x{i}" for i in range(inputs))


#: A compiled subexpression: a float when it does not depend on x, else a closure over x.
_Node = float | Callable[[torch.Tensor], torch.Tensor]


class Expression:
    """A compiled expression: call it on a floating-point tensor of any shape.

    Pickles as its text (closures cannot be pickled), so it can be sent to worker processes.
    """

    def __init__(self, text: str, node: _Node, inputs: int | None = None):
        self.text = text
        self._node = node
        self.inputs = inputs

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError(
                f"expression {self.text!r} needs a floating-point tensor, got {x.dtype}"
            )
        if self.inputs is not None and (x.dim() < 1 or x.shape[-1] != self.inputs):
            raise ValueError(
                f"expression {self.text!r} takes {self.inputs} input columns, "
                f"got shape {tuple(x.shape)}"
            )
        shape = x.shape if self.inputs is None else x.shape[:-1]
        if isinstance(self._node, float):  # a constant still gives one value per input
            return torch.full(shape, self._node, dtype=x.dtype, device=x.device)
        y = self._node(x)
        return y.clone() if y is x else y  # never hand back the caller's own tensor

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __reduce__(self):
        return compile_expression, (self.text, self.inputs)


def compile_expression(text: str, inputs: int | None = None) -> Expression:
    """Parse `text` (a function of x, or of x0 ... x(inputs-1)) against the whitelist; raise
    ConfigError if it is not allowed. One input also accepts `x`."""
    if not isinstance(text, str):
        raise ConfigError(f'an expression must be a string like "x**2", got {text!r}')
    if len(text) > MAX_LENGTH:
        raise ConfigError(
            f"expression {text[:40]!r}... is {len(text)} characters long; the limit is {MAX_LENGTH}"
        )
    names = variables(inputs)
    allowed = _allowed(names)
    source = text.strip()  # eval mode rejects leading blanks as an indent
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise ConfigError(f"invalid expression {text!r}: {exc.msg}{where}. {allowed}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, parser stack overflow
        raise ConfigError(f"invalid expression {text!r}: {exc}. {allowed}") from None
    return Expression(text, _Compiler(source, inputs).compile(tree.body, depth=0), inputs)


class _Compiler:
    def __init__(self, text: str, inputs: int | None = None):
        self.text = text
        self.names = variables(inputs)
        # x itself, elementwise; or, over columns, each name picks its column (x also, for one)
        self.columns: dict[str, _Node] = (
            {VARIABLE: _identity}
            if inputs is None
            else {
                **({VARIABLE: _column(0)} if inputs == 1 else {}),
                **{name: _column(i) for i, name in enumerate(self.names)},
            }
        )

    def compile(self, node: ast.AST, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            self.fail(node, f"it nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            return self._number(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            operand = self.compile(node.operand, depth + 1)
            return operand if isinstance(node.op, ast.UAdd) else _apply(operator.neg, operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left = self.compile(node.left, depth + 1)
            right = self.compile(node.right, depth + 1)
            return _apply(_BINARY[type(node.op)], left, right)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, (ast.UnaryOp, ast.BinOp)):
            operator_ = _FORBIDDEN_OPERATORS.get(type(node.op), type(node.op).__name__)
            hint = " (use ** for powers)" if isinstance(node.op, ast.BitXor) else ""
            self.fail(node, f"the operator {operator_} is not allowed: {self.piece(node)!r}{hint}")
        what = _DESCRIPTIONS.get(type(node), type(node).__name__)
        self.fail(node, f"{what} is not allowed: {self.piece(node)!r}")

    def _number(self, node: ast.Constant) -> float:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(node, f"the constant {self.piece(node)} is not a number")
        try:
            return float(value)  # ints become floats here, so no Python big-int arithmetic runs
        except OverflowError:
            self.fail(node, f"the number {self.piece(node)[:20]}... is too large")

    def _name(self, node: ast.Name) -> _Node:
        if node.id in self.columns:
            return self.columns[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            self.fail(node, f"the function {node.id!r} must be called, as in {node.id}(x)")
        hint = suggest(node.id.lower(), [*self.columns, *CONSTANTS, *FUNCTIONS])
        which = (
            f"the input variable is {self.names[0]}"
            if len(self.names) == 1
            else f"the input variables are {', '.join(self.names)}"
        )
        self.fail(node, f"unknown name {node.id!r} ({which}){hint}")

    def _call(self, node: ast.Call, depth: int) -> _Node:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in FUNCTIONS:
            self.fail(
                func,
                f"attribute access {self.piece(func)!r} is not allowed; write {func.attr}(...)",
            )
        if not isinstance(func, ast.Name):
            what = _DESCRIPTIONS.get(type(func), type(func).__name__)
            self.fail(func, f"only named functions can be called, not {what}: {self.piece(func)!r}")
        if func.id in (*self.columns, *CONSTANTS):
            self.fail(func, f"{func.id!r} is not a function: {self.piece(node)!r}")
        if func.id not in FUNCTIONS:
            hint = suggest(func.id.lower(), FUNCTIONS)
            self.fail(func, f"unknown function {func.id!r}{hint}")
        if node.keywords:
            self.fail(node, f"keyword arguments are not allowed: {self.piece(node)!r}")
        if len(node.args) != 1:
            self.fail(
                node, f"{func.id} takes one argument, got {len(node.args)}: {self.piece(node)!r}"
            )
        return _apply(FUNCTIONS[func.id], self.compile(node.args[0], depth + 1))

    def piece(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def fail(self, node: ast.AST, problem: str) -> NoReturn:
        end = "" if problem.endswith("?") else "."
        raise ConfigError(
            f"invalid expression {self.text!r}: {problem}{end} {_allowed(self.names)}"
        )


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _column(index: int) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: x[..., index]


def _apply(op: Callable, *args: _Node) -> _Node:
    """`op` over constants runs now, on float64 CPU tensors; over anything with x, it runs per call."""
    if len(args) == 1:
        (f,) = args
        return _fold(op, f) if isinstance(f, float) else lambda x: op(f(x))
    left, right = args
    if isinstance(left, float):
        if isinstance(right, float):
            return _fold(op, left, right)
        return lambda x: op(left, right(x))
    if isinstance(right, float):
        return lambda x: op(left(x), right)
    return lambda x: op(left(x), right(x))


def _fold(op: Callable, *constants: float) -> float:
    return float(op(*(torch.tensor(c, dtype=torch.float64) for c in constants)))
