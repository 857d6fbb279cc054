"""Helpers for test suites that need the real Docker sandbox (used by grpo-env's own tests).

Without a Docker engine and image the tests skip, unless ``GRPO_ENV_REQUIRE_DOCKER=1`` (CI),
where they fail: a sandbox that silently skips its security tests proves nothing.
"""

from __future__ import annotations

import os

from .docker_backend import DockerSandbox
from .protocol import SandboxUnavailable

REQUIRE_ENV = "GRPO_ENV_REQUIRE_DOCKER"


def docker_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def docker_sandbox_or_skip(concurrency: int = 2, image: str | None = None) -> DockerSandbox:
    """A ready ``DockerSandbox``; skips the test (fails it under ``GRPO_ENV_REQUIRE_DOCKER=1``)
    when the engine or the image is missing."""
    import pytest

    sandbox = DockerSandbox(image=image, concurrency=concurrency)
    try:
        sandbox.check()
    except SandboxUnavailable as err:
        sandbox.close()
        if docker_required():
            pytest.fail(f"{REQUIRE_ENV}=1 but the Docker sandbox is unavailable: {err}")
        pytest.skip(f"Docker sandbox unavailable: {err}")
    return sandbox
