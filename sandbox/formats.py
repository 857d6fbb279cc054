"""Which kind of test file this is, and the suite it makes.

Formats: ``asserts`` (top-level asserts, one test each), ``check`` (HumanEval's
``def check(candidate)``, one test per assert in it), ``functions`` (pytest-style ``test_*``
functions and classes, ``unittest.TestCase`` classes: one test per function or method) and
``io`` (a JSON file of inputs and outputs: stdin/stdout cases for a program, or calls when it
names a ``fn_name``). ``auto`` picks by content: JSON is ``io``; then a ``check`` function,
then test functions, then asserts.
"""

from __future__ import annotations

import ast
from pathlib import PurePath
from typing import Literal

from .iocases import CaseDataError, suite_from_json
from .models import Compare, IOSuite, TestSuite
from .testfile import (
    TestFileError,
    check_call_target,
    check_function,
    suite_from_check,
    suite_from_test_source,
)
from .testfunctions import suite_from_test_functions, test_names

Format = Literal["auto", "asserts", "check", "functions", "io"]
FORMATS: tuple[str, ...] = ("auto", "asserts", "check", "functions", "io")
ALIASES = {"humaneval": "check", "pytest": "functions", "unittest": "functions", "stdio": "io"}


def detect_format(source: str, filename: str = "tests.py") -> str:
    """The format of a test file by its content (see the module docstring)."""
    if filename.endswith(".json") or source.lstrip()[:1] in ("{", "["):
        return "io"
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise TestFileError(f"{filename}:{err.lineno}: invalid syntax: {err.msg}") from None
    if check_function(tree) is not None:
        return "check"
    if test_names(tree):
        return "functions"
    return "asserts"


def _last_function(solution: str) -> str | None:
    """The solution's last top-level function: HumanEval's entry point comes last."""
    try:
        tree = ast.parse(solution)
    except SyntaxError:
        return None
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return names[-1] if names else None


def load_suite(
    source: str,
    *,
    filename: str = "tests.py",
    fmt: str = "auto",
    solution: str = "",
    solution_name: str = "solution",
    entry_point: str | None = None,
    compare: Compare = "exact",
) -> tuple[str, TestSuite | IOSuite]:
    """(format, suite) for a test file. ``solution`` (its code, parsed only, never run) and
    ``entry_point`` tell a ``check`` file which function is the candidate: ``entry_point``,
    else the target of the file's own ``check(...)`` call, else the solution's last function.
    Raises ``TestFileError`` naming the file."""
    fmt = ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise TestFileError(f"unknown test format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(source, filename)
    if fmt == "io":
        try:
            return fmt, suite_from_json(source, compare)
        except CaseDataError as err:
            raise TestFileError(f"{filename}: field {err.field!r}: {err.why}") from None
    if fmt == "functions":
        stem = PurePath(solution_name).stem
        return fmt, suite_from_test_functions(source, filename, ("solution", stem))
    if fmt == "check":
        try:
            target = check_call_target(ast.parse(source, filename=filename))
        except SyntaxError as err:
            raise TestFileError(f"{filename}:{err.lineno}: invalid syntax: {err.msg}") from None
        entry = entry_point or target or _last_function(solution)
        if entry is None:
            raise TestFileError(
                f"{filename}: which function is the candidate? Add `check(name)` to the file "
                "or give --entry-point"
            )
        return fmt, suite_from_check(source, entry, filename=filename)
    return fmt, suite_from_test_source(source, filename)
