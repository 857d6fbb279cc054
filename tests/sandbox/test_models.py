from __future__ import annotations

import pytest
from pydantic import ValidationError

from grpo_env.sandbox import ExecutionRequest, Limits, TestCase, TestSuite

SUITE = TestSuite(cases=[TestCase(name="a", code="assert 1")])


def test_exactly_one_mode():
    with pytest.raises(ValidationError, match="exactly one"):
        ExecutionRequest(code="x = 1")
    with pytest.raises(ValidationError, match="exactly one"):
        ExecutionRequest(code="x", tests=SUITE, command=["ls"])
    assert ExecutionRequest(command=["python3", "-c", "1"]).tests_total == 0
    assert ExecutionRequest(code="x", tests=SUITE).tests_total == 1


@pytest.mark.parametrize("path", ["/etc/passwd", "../up", "a/../../b", "", "nul\x00"])
def test_files_must_stay_in_the_work_dir(path):
    with pytest.raises(ValidationError, match="relative"):
        ExecutionRequest(command=["ls"], files={path: "x"})


def test_solution_py_is_reserved_in_test_mode():
    with pytest.raises(ValidationError, match="reserved"):
        ExecutionRequest(code="x", tests=SUITE, files={"solution.py": "y"})


def test_suite_names_must_be_identifiers():
    with pytest.raises(ValidationError):
        TestSuite(cases=SUITE.cases, entry_points=["not an id"])
    with pytest.raises(ValidationError):
        TestSuite(cases=SUITE.cases, aliases={"candidate": "1x"})
    with pytest.raises(ValidationError):
        TestSuite(cases=[])


def test_limits_bounds_and_container_key():
    with pytest.raises(ValidationError):
        Limits(timeout_s=0)
    with pytest.raises(ValidationError):
        Limits(memory_mb=1)
    assert Limits(timeout_s=3).container_key() == Limits().container_key()
    assert Limits(memory_mb=256).container_key() != Limits().container_key()
