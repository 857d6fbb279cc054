"""The ``Sandbox`` protocol every backend implements, and the errors they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .models import ExecutionRequest, ExecutionResult


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run anything (engine down, image missing, container won't start).
    Backends turn it into a ``sandbox_error`` result; ``check()`` raises it."""


@runtime_checkable
class Sandbox(Protocol):
    """Runs untrusted code. ``run`` never raises for problems of the code or of the sandbox:
    they come back as the result's status (``sandbox_error`` for the sandbox's own)."""

    name: str

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        """Run one request and wait for its result."""
        ...

    def run_many(self, requests: Sequence[ExecutionRequest]) -> list[ExecutionResult]:
        """Run several requests concurrently (up to the sandbox's concurrency); results in
        the order of ``requests``."""
        ...

    def check(self) -> None:
        """Raise ``SandboxUnavailable`` with a one-line reason if runs cannot succeed."""
        ...

    def close(self) -> None:
        """Release every resource (containers, processes). Idempotent."""
        ...
