"""Backends: clear sandbox_error when Docker or the image is missing (never a fallback),
the opt-in of the unsafe local backend, the pool's reuse rules."""

from __future__ import annotations

import threading
import time

import pytest

from grpo_env.sandbox import (
    DockerSandbox,
    ExecutionRequest,
    LocalSandbox,
    Sandbox,
    SandboxUnavailable,
    TestCase,
    TestSuite,
)
from grpo_env.sandbox.base import PooledSandbox
from grpo_env.sandbox.pool import Worker

REQUEST = ExecutionRequest(
    code="def add(a, b):\n    return a + b\n",
    tests=TestSuite(cases=[TestCase(name="t", code="assert add(1, 2) == 3")]),
)


def test_dead_docker_daemon_is_a_sandbox_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    with DockerSandbox(concurrency=1) as sandbox:
        result = sandbox.run(REQUEST)
        assert result.status.value == "sandbox_error"
        assert "Docker engine not reachable" in result.error and "dockerd" in result.error
        assert result.tests_passed == 0 and result.tests == []
        with pytest.raises(SandboxUnavailable, match="not reachable"):
            sandbox.check()


@pytest.mark.docker
def test_missing_image_is_a_sandbox_error(docker_sandbox):
    with DockerSandbox(image="grpo-env-sandbox:does-not-exist", concurrency=1) as sandbox:
        result = sandbox.run(REQUEST)
        assert result.status.value == "sandbox_error"
        assert "not found" in result.error and "sandbox build --offline" in result.error
        with pytest.raises(SandboxUnavailable, match="not found"):
            sandbox.check()


def test_local_backend_needs_explicit_opt_in():
    with pytest.raises(ValueError, match="without isolation"):
        LocalSandbox()
    with pytest.warns(UserWarning, match="WITHOUT isolation"):
        sandbox = LocalSandbox(unsafe=True)
    with sandbox:
        assert isinstance(sandbox, Sandbox)
        assert sandbox.run(REQUEST).status.value == "passed"


@pytest.mark.docker
def test_run_many_keeps_order_and_runs_concurrently(docker_sandbox):
    requests = [
        ExecutionRequest(
            code=f"def add(a, b):\n    return a + b + {i % 2}\n",
            tests=REQUEST.tests,
        )
        for i in range(6)
    ]
    results = docker_sandbox.run_many(requests)
    assert [r.status.value for r in results] == ["passed", "failed"] * 3


class FakeWorker(Worker):
    """Answers runs like a server would; ``clean`` says whether it proves itself clean."""

    started = 0

    def __init__(self, key, clean=True):
        super().__init__(key)
        FakeWorker.started += 1
        self.clean = clean
        self.killed = False
        self.inbox = b""

    def _send(self, data):
        import json

        message = json.loads(data)
        reply = {"id": message["id"], "messages": [], "clean": self.clean, "pong": True}
        self.inbox += (json.dumps(reply) + "\n").encode()

    def _receive(self, timeout):
        data, self.inbox = self.inbox, b""
        if not data:
            raise TimeoutError
        return data

    def kill(self):
        self.killed = True


class FakeSandbox(PooledSandbox):
    name = "fake"

    def __init__(self, clean, concurrency=2):
        self.clean = clean
        self.workers = []
        super().__init__(concurrency, None)

    def _start_worker(self, key):
        worker = FakeWorker(key, self.clean)
        self.workers.append(worker)
        return worker


def test_pool_reuses_clean_workers_and_discards_unproven_ones():
    clean = FakeSandbox(clean=True)
    for _ in range(4):
        clean.run(REQUEST)
    assert len(clean.workers) == 1 and not clean.workers[0].killed
    dirty = FakeSandbox(clean=False)
    for _ in range(3):
        dirty.run(REQUEST)
    assert len(dirty.workers) == 3 and all(w.killed for w in dirty.workers)
    clean.close()
    assert clean.workers[0].killed


def test_pool_never_exceeds_its_size():
    sandbox = FakeSandbox(clean=True, concurrency=2)
    peak, busy, lock = [0], [0], threading.Lock()

    def slow(worker):
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        time.sleep(0.02)
        with lock:
            busy[0] -= 1
        return {"messages": [], "clean": True}

    threads = [threading.Thread(target=sandbox._pool.run, args=(("k",), slow)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 2 and len(sandbox.workers) == 2
