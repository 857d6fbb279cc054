"""Isolated code execution. Knows nothing of RL: requests in, results out.

    from grpo_env.sandbox import DockerSandbox, ExecutionRequest, TestSuite, TestCase

    with DockerSandbox(concurrency=2) as sandbox:
        result = sandbox.run(ExecutionRequest(
            code="def add(a, b):\n    return a + b\n",
            tests=TestSuite(cases=[TestCase(name="add", code="assert add(2, 3) == 5")]),
        ))
    result.status, result.tests_passed, result.tests_total   # passed, 1, 1

The verdict never depends on anything the candidate's code controls: tests run in a trusted
process that does not execute the candidate's code (see ``runtime.harness``).
"""

from .docker_backend import DEFAULT_IMAGE, DockerSandbox, default_image
from .local import LocalSandbox, UnsafeSandboxWarning
from .models import (
    ExecutionRequest,
    ExecutionResult,
    ExecutionStatus,
    IOCase,
    IOSuite,
    Limits,
    TestCase,
    TestOutcome,
    TestSuite,
)
from .protocol import Sandbox, SandboxUnavailable

__all__ = [
    "DEFAULT_IMAGE",
    "DockerSandbox",
    "ExecutionRequest",
    "ExecutionResult",
    "ExecutionStatus",
    "IOCase",
    "IOSuite",
    "Limits",
    "LocalSandbox",
    "Sandbox",
    "SandboxUnavailable",
    "TestCase",
    "TestOutcome",
    "TestSuite",
    "UnsafeSandboxWarning",
    "default_image",
]
