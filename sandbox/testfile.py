"""Split Python test code into separately counted test cases.

Every top-level statement that contains an ``assert`` (outside a nested ``def``, ``class`` or
``lambda``) is one case; the statements before it that hold none (imports, helpers,
``result = f(3)``) run first, as part of that case. So ``assert`` lines count one each, a loop
of asserts counts once, and a failing setup line fails only the case it precedes. Statements
after the last assert cannot change any verdict and are dropped.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from .models import TestCase, TestSuite


class TestFileError(ValueError):
    """Test code that cannot be split into cases; says where."""

    __test__ = False


def _holds_assert(node: ast.AST) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
        return False  # a helper that asserts is not itself a test
    return any(_holds_assert(child) for child in ast.iter_child_nodes(node))


def _is_trivial(node: ast.stmt) -> bool:
    """``assert True, "message"``: a placeholder that checks nothing."""
    return isinstance(node, ast.Assert) and isinstance(node.test, ast.Constant)


def cases_from_statements(
    statements: Sequence[ast.stmt], *, skip_trivial: bool = False, label: str = "line"
) -> list[TestCase]:
    """Cases from parsed statements (see the module docstring). ``skip_trivial`` drops
    asserts of a constant, which would count as free passes."""
    cases: list[TestCase] = []
    pending: list[str] = []
    for statement in statements:
        source = ast.unparse(statement)
        if not _holds_assert(statement) or (skip_trivial and _is_trivial(statement)):
            if not _is_trivial(statement):
                pending.append(source)
            continue
        first_line = source.splitlines()[0]
        title = first_line if len(first_line) <= 90 else first_line[:87] + "..."
        cases.append(
            TestCase(
                name=f"{label} {statement.lineno}: {title}",
                code="\n".join([*pending, source]),
            )
        )
        pending = []
    return cases


def suite_from_test_source(source: str, filename: str = "tests.py") -> TestSuite:
    """A ``TestSuite`` from a file of module-level asserts that use the solution's names as if
    ``from solution import *`` came first. Raises ``TestFileError`` (file:line: why)."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise TestFileError(f"{filename}:{err.lineno}: invalid syntax: {err.msg}") from None
    cases = cases_from_statements(tree.body)
    if not cases:
        raise TestFileError(f"{filename}: no assert statements: each top-level assert is a test")
    return TestSuite(cases=cases)
