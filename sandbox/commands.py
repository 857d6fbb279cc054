"""What the ``grpo-env sandbox`` commands do (cli.py only parses arguments and prints)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .docker_backend import DockerSandbox
from .formats import load_suite
from .local import LocalSandbox
from .models import Compare, ExecutionRequest, ExecutionResult, IOSuite, Limits
from .protocol import Sandbox

SANDBOX_KINDS = ("docker", "local-unsafe")


def make_sandbox(
    kind: str = "docker",
    *,
    concurrency: int = 2,
    image: str | None = None,
    docker_hosts: str | Sequence[str] | None = None,
) -> Sandbox:
    """A sandbox by name: ``docker`` (isolated; on ``docker_hosts``, default
    $GRPO_ENV_DOCKER_HOSTS or the environment's engine) or ``local-unsafe`` (no isolation;
    warns)."""
    if kind == "docker":
        return DockerSandbox(image=image, concurrency=concurrency, docker_hosts=docker_hosts)
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
    docker_hosts: Sequence[str] | None = None,
    limits: Limits | None = None,
    fmt: str = "auto",
    entry_point: str | None = None,
    compare: Compare = "exact",
) -> ExecutionResult:
    """Run SOLUTION against TESTS in any format of ``formats`` (auto-detected by default):
    asserts, a HumanEval check, test functions, or a JSON file of stdin/stdout cases."""
    code = _read(solution, "solution file")
    _, suite = load_suite(
        _read(tests, "tests file"),
        filename=str(tests),
        fmt=fmt,
        solution=code,
        solution_name=solution.name,
        entry_point=entry_point,
        compare=compare,
    )
    limits = limits or Limits()
    if isinstance(suite, IOSuite):
        request = ExecutionRequest(code=code, io=suite, limits=limits)
    else:
        request = ExecutionRequest(code=code, tests=suite, limits=limits)
    box = make_sandbox(sandbox, concurrency=1, image=image, docker_hosts=docker_hosts)
    try:
        return box.run(request)
    finally:
        box.close()
