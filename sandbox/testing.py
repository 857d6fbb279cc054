"""Helpers for test suites that need the real Docker sandbox (used by grpo-env's own tests).

Without a Docker engine and image the tests skip, unless ``GRPO_ENV_REQUIRE_DOCKER=1`` (CI),
where they fail: a sandbox that silently skips its security tests proves nothing.
"""

from __future__ import annotations

import os

from .docker_backend import DockerSandbox
from .protocol import SandboxUnavailable
from .scratch_engine import ScratchEngine, scratch_engine_unavailable

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


def scratch_engine_or_skip(image: str) -> ScratchEngine:
    """A second, throwaway Docker engine on this machine with ``image`` loaded (see
    ``scratch_engine``); skips without root or ``dockerd`` (fails under
    ``GRPO_ENV_REQUIRE_DOCKER=1``). The caller closes it."""
    import pytest

    why = scratch_engine_unavailable()
    if not why:
        engine = ScratchEngine()
        try:
            engine.start()
            engine.load_image(image)
            return engine
        except SandboxUnavailable as err:
            engine.close()
            why = str(err)
    if docker_required():
        pytest.fail(f"{REQUIRE_ENV}=1 but no second Docker engine can start here: {why}")
    pytest.skip(f"no second Docker engine: {why}")
