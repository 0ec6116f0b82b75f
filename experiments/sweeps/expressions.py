"""Arithmetic expressions over the columns of a sweep's results (report configs).

An expression is a Python expression restricted to: numbers, strings, ``True`` /
``False``; column names, dotted ones included (``spec.n_out``, ``prune.total_bits``,
``baseline.index_bits``); ``+ - * / // % **``, unary ``-``/``+``, ``not``;
comparisons (``< <= > >= == !=``, chained), ``and`` / ``or``, ``a if c else b``; and
the functions ``min``, ``max``, ``abs``, ``sqrt``, ``exp``, ``log`` (natural),
``log2``, ``log10``. Anything else (attribute calls, subscripts, lambdas, ...) is
rejected when parsing.

Evaluation reads the names from a mapping. A missing value (name mapped to None), a
division by zero, a domain error (``log(0)``, ``sqrt(-1)``) or a non-finite result
gives None: an empty cell, not an error. Arithmetic on a string raises
:class:`ExpressionError`.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
}
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class ExpressionError(ValueError):
    """An expression cannot be parsed, or applies arithmetic to a non-number."""


class _Missing(Exception):
    """A value the expression needs is missing or undefined (the result is None)."""


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _check(node: ast.AST, text: str, names: list[str]) -> None:
    def bad(what: str) -> ExpressionError:
        return ExpressionError(f"expression {text!r}: {what} is not allowed")

    if isinstance(node, ast.Expression):
        _check(node.body, text, names)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool)):
            raise bad(f"the constant {node.value!r}")
    elif isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted(node)
        if name is None:
            raise bad("an attribute of something other than a column name")
        if name in FUNCTIONS:
            raise ExpressionError(f"expression {text!r}: {name} is a function; call it")
        names.append(name)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, text, names)
        _check(node.right, text, names)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, text, names)
    elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        for child in [node.left, *node.comparators]:
            _check(child, text, names)
    elif isinstance(node, ast.BoolOp):
        for child in node.values:
            _check(child, text, names)
    elif isinstance(node, ast.IfExp):
        for child in (node.test, node.body, node.orelse):
            _check(child, text, names)
    elif isinstance(node, ast.Call):
        func = node.func.id if isinstance(node.func, ast.Name) else None
        if func not in FUNCTIONS or node.keywords or not node.args:
            raise bad(
                f"the call {ast.unparse(node)!r} (functions: {', '.join(FUNCTIONS)}, "
                f"positional arguments only)"
            )
        for child in node.args:
            _check(child, text, names)
    else:
        raise bad(f"{type(node).__name__} {ast.unparse(node)!r}")


def _number(value: Any, text: str) -> float | int:
    if isinstance(value, str):
        raise ExpressionError(f"expression {text!r}: arithmetic on the string {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Expression:
    """A parsed expression: its ``text`` and the column ``names`` it reads."""

    text: str
    names: tuple[str, ...]
    tree: ast.Expression = dataclasses.field(repr=False, compare=False)

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """The value with ``values`` (name -> value) for the names; None when a value
        it needs is None or the arithmetic is undefined (see the module docstring).
        A name absent from ``values`` raises :class:`ExpressionError`."""
        try:
            result = self._eval(self.tree.body, values)
        except _Missing:
            return None
        if isinstance(result, float) and not math.isfinite(result):
            return None
        return result

    def _eval(self, node: ast.expr, values: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = _dotted(node)
            if name not in values:
                raise ExpressionError(
                    f"expression {self.text!r}: unknown name {name!r}; known: {', '.join(values)}"
                )
            if values[name] is None:
                raise _Missing
            return values[name]
        if isinstance(node, ast.BinOp):
            left = _number(self._eval(node.left, values), self.text)
            right = _number(self._eval(node.right, values), self.text)
            try:
                return _BINARY[type(node.op)](left, right)
            except (ZeroDivisionError, OverflowError):
                raise _Missing from None
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, values)
            if not isinstance(node.op, ast.Not):
                value = _number(value, self.text)
            return _UNARY[type(node.op)](value)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, values)
            for op, child in zip(node.ops, node.comparators, strict=True):
                right = self._eval(child, values)
                try:
                    if not _COMPARE[type(op)](left, right):
                        return False
                except TypeError:
                    raise ExpressionError(
                        f"expression {self.text!r}: cannot compare {left!r} with {right!r}"
                    ) from None
                left = right
            return True
        if isinstance(node, ast.BoolOp):
            want = isinstance(node.op, ast.Or)
            for child in node.values:
                if bool(self._eval(child, values)) == want:
                    return want
            return not want
        if isinstance(node, ast.IfExp):
            branch = node.body if self._eval(node.test, values) else node.orelse
            return self._eval(branch, values)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        args = [_number(self._eval(a, values), self.text) for a in node.args]
        try:
            return FUNCTIONS[node.func.id](*args)
        except (ValueError, OverflowError, ZeroDivisionError):
            raise _Missing from None
        except TypeError as exc:
            raise ExpressionError(f"expression {self.text!r}: {exc}") from None


def parse(text: str) -> Expression:
    """Parse ``text`` (see the module docstring); :class:`ExpressionError` names what
    is not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"an expression is a non-empty string, got {text!r}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"expression {text!r}: not valid syntax ({exc.msg})") from None
    names: list[str] = []
    _check(tree, text, names)
    return Expression(text, tuple(dict.fromkeys(names)), tree)
