"""Input/output test data as suites: stdin/stdout cases (``IOSuite``) or, when a function name
is given (APPS/TACO ``fn_name``), calls whose results are compared as plain data.

Accepted shapes: ``{"inputs": [...], "outputs": [...]}`` (APPS/TACO ``input_output``, with an
optional ``fn_name``), ``{"input": [...], "output": [...]}`` (CodeContests) and a list of
``{"input": ..., "output": ...}`` objects (LiveCodeBench). An input or output given as a list
of lines is joined with newlines.
"""

from __future__ import annotations

import json
from typing import Any

from .models import Compare, IOCase, IOSuite, TestCase, TestSuite

# Call-based checks, as APPS judges them: tuples compare as lists, and an expected value
# wrapped in a one-element list also matches the bare value.
_CALL_SETUP = """
import builtins as _grpo_builtins


def _grpo_target(name):
    # A top-level function of that name (bound as _grpo_fn, even under a builtin's name), else
    # a method of the LeetCode-style class Solution.
    if name not in globals() and "Solution" in globals():
        return _grpo_builtins.getattr(Solution(), name)
    return _grpo_fn


def _grpo_same(got, expected):
    # The builtins' own functions: fn_name may shadow a builtin's name in this namespace.
    if _grpo_builtins.isinstance(got, _grpo_builtins.tuple):
        got = _grpo_builtins.list(got)
    if got == expected:
        return True
    one = _grpo_builtins.isinstance(expected, _grpo_builtins.list)
    return one and _grpo_builtins.len(expected) == 1 and got == expected[0]
"""


class CaseDataError(ValueError):
    """Input/output data that cannot be made into cases; says which field."""

    def __init__(self, field: str, why: str):
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


def _text(value: Any, field: str, index: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value) + ("\n" if value else "")
    raise CaseDataError(field, f"item {index} is a {type(value).__name__}, not text")


def pairs_from_data(data: Any) -> tuple[list[Any], list[Any], str | None]:
    """(inputs, outputs, fn_name) from any accepted shape (see the module docstring)."""
    if isinstance(data, list):
        if not all(isinstance(row, dict) and "input" in row and "output" in row for row in data):
            raise CaseDataError("cases", 'a list of cases must hold {"input", "output"} objects')
        return [r["input"] for r in data], [r["output"] for r in data], None
    if not isinstance(data, dict):
        raise CaseDataError("cases", f"expected an object or a list, got {type(data).__name__}")
    for ins, outs in (("inputs", "outputs"), ("input", "output")):
        if ins in data or outs in data:
            inputs, outputs = data.get(ins), data.get(outs)
            if not isinstance(inputs, list) or not isinstance(outputs, list):
                raise CaseDataError(ins, f"{ins!r} and {outs!r} must both be lists")
            if len(inputs) != len(outputs):
                raise CaseDataError(outs, f"{len(inputs)} inputs but {len(outputs)} outputs")
            fn_name = data.get("fn_name")
            if fn_name is not None and not (isinstance(fn_name, str) and fn_name.isidentifier()):
                raise CaseDataError("fn_name", "must be a Python identifier")
            return inputs, outputs, fn_name
    raise CaseDataError("inputs", 'no "inputs"/"outputs" (or "input"/"output") lists')


def io_suite(inputs: list[Any], outputs: list[Any], compare: Compare = "exact") -> IOSuite:
    if not inputs:
        raise CaseDataError("inputs", "no cases")
    cases = []
    for index, (given, expected) in enumerate(zip(inputs, outputs, strict=True)):
        stdin = _text(given, "inputs", index)
        first = stdin.strip().splitlines()[0] if stdin.strip() else ""
        name = f"case {index + 1}" + (f": {first[:60]}" if first else "")
        cases.append(IOCase(name=name, input=stdin, output=_text(expected, "outputs", index)))
    return IOSuite(cases=cases, compare=compare)


def call_suite(fn_name: str, inputs: list[Any], outputs: list[Any]) -> TestSuite:
    """Each case calls ``fn_name`` (or ``Solution().fn_name``) with one input's arguments."""
    if not inputs:
        raise CaseDataError("inputs", "no cases")
    cases = []
    for index, (args, expected) in enumerate(zip(inputs, outputs, strict=True)):
        if not isinstance(args, list):
            raise CaseDataError("inputs", f"item {index} must be a list of arguments")
        call = f"_grpo_target({fn_name!r})(*{args!r})"
        shown = f"{fn_name}({', '.join(map(repr, args))})"
        name = f"case {index + 1}: {shown[:80]}"
        code = f"assert _grpo_same({call}, {expected!r}), 'wrong result'"
        cases.append(TestCase(name=name, code=code))
    return TestSuite(cases=cases, setup=_CALL_SETUP, aliases={"_grpo_fn": fn_name})


def suite_from_data(data: Any, compare: Compare = "exact") -> IOSuite | TestSuite:
    inputs, outputs, fn_name = pairs_from_data(data)
    return call_suite(fn_name, inputs, outputs) if fn_name else io_suite(inputs, outputs, compare)


def suite_from_json(text: str, compare: Compare = "exact") -> IOSuite | TestSuite:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CaseDataError("json", f"line {err.lineno}: not JSON: {err.msg}") from None
    return suite_from_data(data, compare)
