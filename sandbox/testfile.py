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


def _compiles_at_module_level(cases: list[TestCase]) -> bool:
    try:
        for case in cases:
            compile(case.code, "<case>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


def check_function(tree: ast.Module) -> ast.FunctionDef | None:
    """The module's top-level ``def check(candidate)``, if any."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check" and node.args.args:
            return node
    return None


def check_call_target(tree: ast.Module) -> str | None:
    """``X`` of a top-level ``check(X)`` call (how HumanEval's harness runs the check)."""
    for node in tree.body:
        call = node.value if isinstance(node, ast.Expr) else None
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == "check"
            and len(call.args) == 1
            and isinstance(call.args[0], ast.Name)
        ):
            return call.args[0].id
    return None


def suite_from_check(
    source: str, entry_point: str, *, shared_setup: str = "", filename: str = "tests.py"
) -> TestSuite:
    """HumanEval's ``def check(candidate): assert ...`` as separately counted cases: every
    top-level statement of the body that asserts is one case (statements before it run as part
    of it; ``assert True`` placeholders dropped). ``candidate`` means ``entry_point``; a
    top-level ``check(...)`` call is dropped (the cases replace it). A body that cannot be
    split (a ``return`` in it) is one case."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise TestFileError(f"{filename}:{err.lineno}: invalid syntax: {err.msg}") from None
    check = check_function(tree)
    if check is None:
        raise TestFileError(f"{filename}: no `def check(candidate)` function")
    if not entry_point.isidentifier():
        raise TestFileError(f"{filename}: entry point {entry_point!r} is not an identifier")
    param = check.args.args[0].arg
    calls_check = {id(n) for n in tree.body if check_call_target(ast.Module([n], [])) is not None}
    others = [n for n in tree.body if n is not check and id(n) not in calls_check]
    cases = cases_from_statements(check.body, skip_trivial=True, label="check line")
    common = {"shared_setup": shared_setup, "entry_points": [entry_point]}
    if not cases or not _compiles_at_module_level(cases):
        body = ast.unparse([*others, check])
        one = TestCase(name=f"check({param})", code=f"check({param})")
        return TestSuite(cases=[one], setup=body, aliases={param: entry_point}, **common)
    setup = ast.unparse(others) if others else ""
    return TestSuite(cases=cases, setup=setup, aliases={param: entry_point}, **common)
