"""Test files of every format become the right suites; stdin/stdout comparison rules."""

from __future__ import annotations

import json

import pytest

from grpo_env.sandbox.formats import detect_format, load_suite
from grpo_env.sandbox.iocases import CaseDataError, suite_from_data
from grpo_env.sandbox.models import IOSuite, TestSuite
from grpo_env.sandbox.runtime.judge import compare
from grpo_env.sandbox.testfile import TestFileError

CHECK = (
    "def check(candidate):\n    assert candidate(1) == 2\n    assert True\n"
    "    assert candidate(2) == 3\n"
)
FUNCTIONS = (
    "def test_a():\n    assert f(1) == 2\n\n"
    "class TestB:\n    def test_c(self):\n        assert f(2) == 3\n"
)
UNITTEST = (
    "import unittest\n\nclass T(unittest.TestCase):\n    def setUp(self):\n        self.x = 1\n"
    "    def test_x(self):\n        self.assertEqual(f(self.x), 2)\n\n"
    "if __name__ == '__main__':\n    unittest.main()\n"
)


@pytest.mark.parametrize(
    ("source", "filename", "expected"),
    [
        ("assert f(1) == 2\n", "t.py", "asserts"),
        (CHECK, "t.py", "check"),
        (FUNCTIONS, "t.py", "functions"),
        (UNITTEST, "t.py", "functions"),
        ('{"inputs": ["1"], "outputs": ["2"]}', "t.json", "io"),
        ('[{"input": "1", "output": "2"}]', "cases.txt", "io"),
    ],
)
def test_detect_format(source, filename, expected):
    assert detect_format(source, filename) == expected


def test_check_file_counts_each_assert_and_finds_the_candidate():
    fmt, suite = load_suite(CHECK + "check(inc)\n", fmt="auto")
    assert fmt == "check" and isinstance(suite, TestSuite)
    assert len(suite.cases) == 2  # `assert True` is a free pass, dropped
    assert suite.aliases == {"candidate": "inc"}
    assert "check(inc)" not in suite.setup
    # Without a check(...) call: --entry-point, else the solution's last function.
    assert load_suite(CHECK, entry_point="g")[1].aliases == {"candidate": "g"}
    solution = "def helper(x):\n    return x\n\ndef inc(x):\n    return x + 1\n"
    assert load_suite(CHECK, solution=solution)[1].aliases == {"candidate": "inc"}
    with pytest.raises(TestFileError, match="entry-point"):
        load_suite(CHECK, solution="x = 1\n")


def test_functions_one_case_per_test_and_no_main_block():
    _, suite = load_suite(FUNCTIONS)
    assert [c.code for c in suite.cases] == [
        "_grpo_run_function(test_a)",
        "_grpo_run_method(TestB, 'test_c')",
    ]
    _, suite = load_suite(UNITTEST)
    assert [c.name for c in suite.cases] == ["T.test_x (line 6)"]
    assert "unittest.main()" not in suite.setup


def test_forced_format_that_does_not_fit_says_so():
    with pytest.raises(TestFileError, match="no test functions"):
        load_suite("assert f(1) == 2\n", fmt="functions")
    with pytest.raises(TestFileError, match="no assert statements"):
        load_suite(FUNCTIONS, fmt="asserts")
    with pytest.raises(TestFileError, match="unknown test format"):
        load_suite(FUNCTIONS, fmt="yaml")


def test_io_shapes():
    suite = suite_from_data({"inputs": [["1 2", "3"]], "outputs": ["6\n"]}, "tokens")
    assert isinstance(suite, IOSuite) and suite.compare == "tokens"
    assert suite.cases[0].input == "1 2\n3\n"
    suite = suite_from_data({"input": ["a"], "output": ["b"]})
    assert isinstance(suite, IOSuite) and suite.cases[0].output == "b"
    calls = suite_from_data({"fn_name": "add", "inputs": [[1, 2]], "outputs": [[3]]})
    assert isinstance(calls, TestSuite) and "_grpo_target('add')(*[1, 2])" in calls.cases[0].code
    for bad, field in [
        ({"inputs": ["1"], "outputs": []}, "outputs"),
        ({"inputs": "1", "outputs": ["1"]}, "inputs"),
        ({"inputs": [1], "outputs": ["1"]}, "inputs"),
        ({"fn_name": "a b", "inputs": [], "outputs": []}, "fn_name"),
        ({"x": 1}, "inputs"),
    ]:
        with pytest.raises(CaseDataError) as err:
            suite_from_data(bad)
        assert err.value.field == field


def test_bad_json_names_the_file():
    with pytest.raises(TestFileError, match=r"cases\.json"):
        load_suite("{not json", filename="cases.json")
    with pytest.raises(TestFileError, match=r"cases\.json"):
        load_suite(json.dumps({"inputs": []}), filename="cases.json")


@pytest.mark.parametrize(
    ("got", "expected", "mode", "passed"),
    [
        ("3\n", "3", "exact", True),
        ("3   \r\n\n\n", "3\n", "exact", True),
        ("1 2\n", "1  2\n", "exact", False),  # inner whitespace counts in exact mode
        ("1 2\n", "1  2\n", "tokens", True),
        (" 1\n2 ", "1 2", "tokens", True),
        ("", "0", "exact", False),
        ("0.3333333", "0.333333333", "float", True),
        ("0.334", "0.333333333", "float", False),
        ("1e6", "1000000.0000001", "float", True),
        ("nan", "1", "float", False),
        ("YES 0.5", "YES 0.5000000001", "float", True),
        ("NO 0.5", "YES 0.5", "float", False),
        ("0.3333333", "0.333333333", "tokens", False),
    ],
)
def test_compare(got, expected, mode, passed):
    assert compare(got, expected, mode, 1e-6)[0] is passed
