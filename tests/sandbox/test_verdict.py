"""Host-side summary of a run: only cases the harness reported as passed count."""

from __future__ import annotations

from grpo_env.sandbox import ExecutionRequest, TestCase, TestSuite
from grpo_env.sandbox.verdict import summarize

REQUEST = ExecutionRequest(
    code="x",
    tests=TestSuite(cases=[TestCase(name=n, code="assert 1") for n in ("a", "b", "c")]),
)
FINAL = {"final": {"compiled": True, "loaded": True, "incidents": {}, "exit_code": -9}}


def passed(i):
    return {"case": i, "passed": True, "kind": "passed"}


def test_all_reported_passed_is_passed():
    result = summarize(REQUEST, {"messages": [passed(0), passed(1), passed(2), FINAL]}, "t", 0.1)
    assert (result.status.value, result.tests_passed, result.tests_total) == ("passed", 3, 3)


def test_missing_duplicate_and_out_of_range_cases_fail():
    messages = [passed(0), passed(0), passed(7), passed(-1), {"case": "1", "passed": True}, FINAL]
    result = summarize(REQUEST, {"messages": messages}, "t", 0.1)
    assert (result.status.value, result.tests_passed) == ("failed", 1)
    assert [t.kind for t in result.tests] == ["passed", "not_run", "not_run"]


def test_passed_flag_without_kind_is_not_a_pass():
    messages = [{"case": 0, "passed": True, "kind": "timeout"}, passed(1), passed(2), FINAL]
    result = summarize(REQUEST, {"messages": messages}, "t", 0.1)
    assert result.tests_passed == 2


def test_no_final_report_is_an_error_and_watchdog_a_timeout():
    result = summarize(REQUEST, {"messages": [passed(0)]}, "t", 0.1)
    assert result.status.value == "error" and "harness" in result.error
    result = summarize(REQUEST, {"messages": [passed(0)], "watchdog": True}, "t", 0.1)
    assert result.status.value == "timeout"


def test_limit_incidents_name_the_status():
    for incident, status in (("memory", "memory_exceeded"), ("output", "output_exceeded")):
        final = {"final": {**FINAL["final"], "incidents": {incident: 1}}}
        result = summarize(REQUEST, {"messages": [passed(0), final]}, "t", 0.1)
        assert result.status.value == status


def test_command_mode_reports_how_it_ended():
    request = ExecutionRequest(command=["true"])
    ok = {"messages": [{"final": {"exit_code": 0, "incidents": {}}}]}
    assert summarize(request, ok, "t", 0.1).status.value == "passed"
    bad = {"messages": [{"final": {"exit_code": 2, "incidents": {}, "ended": "exited with 2"}}]}
    assert summarize(request, bad, "t", 0.1).status.value == "failed"
