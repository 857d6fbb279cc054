"""A sandbox lost during a run (container killed, connection cut, engine stopped) is
``sandbox_error`` -> ``infra_error``, masked, never the model's ``error`` with a score of 0:
only the in-box server reports what the code did, and here it could not report anything."""

from __future__ import annotations

import logging
import threading

import pytest

from grpo_env import Status
from grpo_env.environments.code_unittest import CodeUnittestEnv
from grpo_env.sandbox import ExecutionRequest, TestCase, TestSuite
from grpo_env.sandbox.base import PooledSandbox
from grpo_env.sandbox.docker_backend import INSTANCE_LABEL, DockerSandbox, DockerWorker
from grpo_env.sandbox.pool import Worker

REQUEST = ExecutionRequest(
    code="def add(a, b):\n    return a + b\n",
    tests=TestSuite(cases=[TestCase(name="t", code="assert add(1, 2) == 3")]),
)


class DyingWorker(Worker):
    """Its connection closes (or it never answers) while a run is in flight."""

    def __init__(self, key, how):
        super().__init__(key)
        self.how = how

    def _send(self, data):
        pass

    def _receive(self, timeout):
        if self.how == "timeout":
            raise TimeoutError
        return b""  # end of stream: the box is gone

    def kill(self):
        pass


class DyingSandbox(PooledSandbox):
    name = "dying"

    def __init__(self, how):
        self.how = how
        super().__init__(1, None)

    def _start_worker(self, key):
        return DyingWorker(key, self.how)


@pytest.mark.parametrize("how", ["lost", "timeout"])
def test_a_run_the_server_never_reported_is_a_sandbox_error(how):
    result = DyingSandbox(how).run(REQUEST)
    assert result.status.value == "sandbox_error", result.error
    assert result.is_sandbox_error and result.tests_passed == 0


def test_code_unittest_masks_a_lost_sandbox_and_logs_it_once(caplog):
    env = CodeUnittestEnv(sandbox=DyingSandbox("lost"), split="test")
    task = env.tasks[0]
    with caplog.at_level(logging.WARNING):
        results = env.score_many(task, ["```python\nx = 1\n```"] * 3)
    assert [r.status for r in results] == [Status.INFRA_ERROR] * 3
    assert all(r.score == 0.0 for r in results)
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 3, [r.getMessage() for r in lines]  # one line per sample
    assert all(r.exc_info is None for r in lines)  # a line, not a traceback


SLOW = "```python\nimport time\n\ndef add(a, b):\n    time.sleep(120)\n    return a + b\n```"
FAST = "```python\ndef add(a, b):\n    return a + b\n```"
TASK = {
    "id": "add",
    "prompt": "add two numbers",
    "tests": TestSuite(cases=[TestCase(name="t", code="assert add(1, 2) == 3")]).model_dump(),
}


@pytest.mark.docker
def test_containers_killed_mid_run_are_infra_errors_and_every_sample_is_accounted_for(
    docker_sandbox, monkeypatch
):
    """The pool's containers are removed through the Docker API while two runs are in
    flight: those two are infra_error; the queued one runs in a fresh container; the one
    without code stays invalid_format."""
    sandbox = DockerSandbox(concurrency=2)
    in_flight: list[str] = []
    both = threading.Event()
    send = DockerWorker._send

    def recording_send(self, data):
        send(self, data)
        if b'"op":"run"' in data.replace(b" ", b""):
            in_flight.append(self.container_id)
            if len(in_flight) == 2:
                both.set()

    monkeypatch.setattr(DockerWorker, "_send", recording_send)
    env = CodeUnittestEnv([TASK], sandbox=sandbox, timeout_s=300)
    results: list = []
    scorer = threading.Thread(
        target=lambda: results.extend(env.score_many(env.tasks[0], [SLOW, SLOW, FAST, "no code"]))
    )
    try:
        scorer.start()
        assert both.wait(120), "the two slow runs never started"
        api = sandbox.client().api
        ours = {c["Id"] for c in api.containers(filters={"label": INSTANCE_LABEL})}
        for container_id in in_flight[:2]:
            assert container_id in ours
            api.remove_container(container_id, force=True)
        scorer.join(120)
        assert not scorer.is_alive()
    finally:
        sandbox.close()
    statuses = [r.status for r in results]
    assert statuses == [Status.INFRA_ERROR, Status.INFRA_ERROR, Status.OK, Status.INVALID_FORMAT]
    assert [r.score for r in results] == [0.0, 0.0, 1.0, 0.0]
    assert "lost the sandbox during the run" in results[0].details["reason"]
