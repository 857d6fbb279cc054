from __future__ import annotations

from collections.abc import Iterator

import pytest

from grpo_env.sandbox import DockerSandbox, LocalSandbox
from grpo_env.sandbox.testing import docker_sandbox_or_skip


@pytest.fixture(scope="session")
def docker_sandbox() -> Iterator[DockerSandbox]:
    """The real Docker sandbox (skips without one; fails under GRPO_ENV_REQUIRE_DOCKER=1)."""
    sandbox = docker_sandbox_or_skip(concurrency=2)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="session")
def local_sandbox() -> Iterator[LocalSandbox]:
    with pytest.warns(UserWarning, match="WITHOUT isolation"):
        sandbox = LocalSandbox(concurrency=2, unsafe=True)
    yield sandbox
    sandbox.close()


@pytest.fixture(params=["docker", "local"])
def any_sandbox(request: pytest.FixtureRequest) -> DockerSandbox | LocalSandbox:
    """Both backends: the verdict logic must hold in each."""
    if request.param == "docker":
        request.applymarker(pytest.mark.docker)
        return request.getfixturevalue("docker_sandbox")
    return request.getfixturevalue("local_sandbox")
