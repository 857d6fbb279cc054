"""What the ``grpo-env sandbox`` commands do (cli.py only parses arguments and prints)."""

from __future__ import annotations

from pathlib import Path

from .docker_backend import DockerSandbox
from .local import LocalSandbox
from .models import ExecutionRequest, ExecutionResult, Limits
from .protocol import Sandbox
from .testfile import suite_from_test_source

SANDBOX_KINDS = ("docker", "local-unsafe")


def make_sandbox(
    kind: str = "docker", *, concurrency: int = 2, image: str | None = None
) -> Sandbox:
    """A sandbox by name: ``docker`` (isolated) or ``local-unsafe`` (no isolation; warns)."""
    if kind == "docker":
        return DockerSandbox(image=image, concurrency=concurrency)
    if kind == "local-unsafe":
        return LocalSandbox(concurrency=concurrency, unsafe=True)
    raise ValueError(f"unknown sandbox {kind!r}: use one of {', '.join(SANDBOX_KINDS)}")


def _read(path: Path, what: str) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def run_files(
    solution: Path,
    tests: Path,
    *,
    sandbox: str = "docker",
    image: str | None = None,
    limits: Limits | None = None,
) -> ExecutionResult:
    """Run SOLUTION.py against TESTS.py (module-level asserts, one test each, that use the
    solution's names as if ``from solution import *`` came first)."""
    code = _read(solution, "solution file")
    suite = suite_from_test_source(_read(tests, "tests file"), filename=str(tests))
    request = ExecutionRequest(code=code, tests=suite, limits=limits or Limits())
    box = make_sandbox(sandbox, concurrency=1, image=image)
    try:
        return box.run(request)
    finally:
        box.close()
