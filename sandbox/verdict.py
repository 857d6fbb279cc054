"""Turn what the sandbox server sent back into an ``ExecutionResult``.

The host trusts its own request for the number of tests: a case the harness did not report
as passed (missing, malformed, duplicated, out of range) is failed, so a harness cut short,
by the candidate or by the watchdog, can only lower the count.
"""

from __future__ import annotations

from typing import Any

from .models import ExecutionRequest, ExecutionResult, ExecutionStatus, TestOutcome

# When not every test passed, the status names the most telling incident.
_LIMIT_STATUS = (
    ("timeout", ExecutionStatus.TIMEOUT),
    ("memory", ExecutionStatus.MEMORY_EXCEEDED),
    ("output", ExecutionStatus.OUTPUT_EXCEEDED),
)


def case_names(request: ExecutionRequest) -> list[str]:
    return request.case_names


def sandbox_error(message: str, backend: str, duration_s: float = 0.0) -> ExecutionResult:
    """The sandbox failed: no verdict (agents mask these, they are never a 0)."""
    return ExecutionResult(
        status=ExecutionStatus.SANDBOX_ERROR, error=message, backend=backend, duration_s=duration_s
    )


def summarize(
    request: ExecutionRequest, reply: dict[str, Any], backend: str, duration_s: float
) -> ExecutionResult:
    names = case_names(request)
    reported: dict[int, dict[str, Any]] = {}
    final: dict[str, Any] | None = None
    crash = ""
    for message in reply.get("messages", []):
        if not isinstance(message, dict):
            continue
        index = message.get("case")
        if type(index) is int and 0 <= index < len(names) and index not in reported:
            reported[index] = message
        elif isinstance(message.get("final"), dict):
            final = message["final"]
        elif "crash" in message:
            crash = str(message["crash"])[:500]

    outcomes = [_outcome(name, reported.get(i)) for i, name in enumerate(names)]
    passed = sum(o.passed for o in outcomes)
    final = final or {}
    incidents = final.get("incidents") if isinstance(final.get("incidents"), dict) else {}
    if reply.get("watchdog"):
        incidents = {**incidents, "timeout": 1}
    status, error = _status(request, passed, len(names), final, incidents, crash)
    return ExecutionResult(
        status=status,
        tests_passed=passed,
        tests_total=len(names),
        tests=outcomes,
        compiled=final.get("compiled") if isinstance(final.get("compiled"), bool) else None,
        exit_code=final.get("exit_code") if type(final.get("exit_code")) is int else None,
        stdout=str(final.get("stdout", "")),
        stderr=str(final.get("stderr", "")),
        output_truncated=bool(final.get("output_truncated", False)),
        duration_s=duration_s,
        error=error,
        backend=backend,
    )


def _outcome(name: str, message: dict[str, Any] | None) -> TestOutcome:
    if message is None:
        return TestOutcome(name=name, passed=False, kind="not_run", detail="no result reported")
    passed = message.get("passed") is True and message.get("kind") == "passed"
    duration = message.get("duration_s")
    return TestOutcome(
        name=name,
        passed=passed,
        kind=str(message.get("kind", "failed"))[:20] if not passed else "passed",
        detail=str(message.get("detail", ""))[:600],
        duration_s=float(duration) if type(duration) in (int, float) else 0.0,
    )


def _status(
    request: ExecutionRequest,
    passed: int,
    total: int,
    final: dict[str, Any],
    incidents: dict[str, Any],
    crash: str,
) -> tuple[ExecutionStatus, str]:
    if request.command is not None:
        for key, status in _LIMIT_STATUS:
            if key in incidents:
                return status, f"{key} limit reached"
        if not final:
            return ExecutionStatus.ERROR, crash or "the run ended without a report"
        if final.get("exit_code") == 0:
            return ExecutionStatus.PASSED, ""
        return ExecutionStatus.FAILED, str(final.get("ended", ""))

    if total and passed == total:
        return ExecutionStatus.PASSED, ""
    for key, status in _LIMIT_STATUS:
        if key in incidents:
            return status, _first(final, "load_error") or f"{key} limit reached"
    if crash:
        return ExecutionStatus.ERROR, f"the test harness failed: {crash}"
    if not final:
        return (
            ExecutionStatus.ERROR,
            "the test harness ended before reporting (the solution may have killed it)",
        )
    for key in ("compile_error", "load_error", "setup_error"):
        if final.get(key):
            return ExecutionStatus.ERROR, str(final[key])[:500]
    return ExecutionStatus.FAILED, ""


def _first(final: dict[str, Any], key: str) -> str:
    value = final.get(key)
    return str(value)[:500] if value else ""
