"""Files of test functions as test suites: pytest-style ``test_*`` functions, test classes and
``unittest.TestCase`` classes, each test function or method one counted case.

The whole file (less ``if __name__ == "__main__":`` blocks and ``unittest.main()`` calls) is
the suite's trusted setup, after ``functions_prologue`` (a small ``pytest``, the solution as
an importable module, the runners). Each case calls one runner, so a test that fails, errors
or is skipped fails alone.
"""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import PurePath

from .models import TestCase, TestSuite
from .testfile import TestFileError

_PROLOGUE = resources.files(__package__).joinpath("functions_prologue.py").read_text("utf-8")


def _is_test_name(name: str) -> bool:
    return name.startswith("test")


def _is_test_class(node: ast.ClassDef) -> bool:
    if node.name.startswith("Test"):
        return True
    return any(ast.unparse(base).endswith("TestCase") for base in node.bases)


def _test_methods(node: ast.ClassDef) -> list[tuple[str, int]]:
    return [
        (item.name, item.lineno)
        for item in node.body
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and _is_test_name(item.name)
    ]


def test_names(tree: ast.Module) -> list[tuple[str | None, str, int]]:
    """(class or None, function, line) of every test the file defines, in file order."""
    found: list[tuple[str | None, str, int]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            found.append((None, node.name, node.lineno))
        elif isinstance(node, ast.ClassDef) and _is_test_class(node):
            found.extend((node.name, method, line) for method, line in _test_methods(node))
    return found


def _is_main_block(node: ast.stmt) -> bool:
    if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return ast.unparse(node.value.func) in ("unittest.main", "pytest.main", "main")
    return False


def suite_from_test_functions(
    source: str, filename: str = "tests.py", module_names: tuple[str, ...] = ("solution",)
) -> TestSuite:
    """A ``TestSuite`` from pytest/unittest-style test code. ``module_names``: names under
    which the tests may import the solution (``from solution import add``)."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise TestFileError(f"{filename}:{err.lineno}: invalid syntax: {err.msg}") from None
    tests = test_names(tree)
    if not tests:
        raise TestFileError(
            f"{filename}: no test functions: define `def test_...()` functions or a "
            "`unittest.TestCase` class with `test_...` methods"
        )
    # The file as written, less its main blocks (blanked, so line numbers stay the file's).
    lines = source.splitlines()
    for node in tree.body:
        if _is_main_block(node):
            for index in range(node.lineno - 1, node.end_lineno or node.lineno):
                lines[index] = ""
    names = tuple(n for n in module_names if n.isidentifier())
    head = f"_GRPO_MODULE_NAMES = {names!r}\n_GRPO_TEST_FILE = {PurePath(filename).name!r}\n"
    head += _PROLOGUE.rstrip("\n") + "\n"
    offset = len(head.splitlines()) + 1
    setup = f"{head}_GRPO_LINE_OFFSET = {offset}\n" + "\n".join(lines) + "\n"
    cases = []
    for cls, name, line in tests:
        if cls is None:
            cases.append(TestCase(name=f"{name} (line {line})", code=f"_grpo_run_function({name})"))
        else:
            code = f"_grpo_run_method({cls}, {name!r})"
            cases.append(TestCase(name=f"{cls}.{name} (line {line})", code=code))
    return TestSuite(cases=cases, setup=setup)
