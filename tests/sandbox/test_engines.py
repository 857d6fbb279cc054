"""The sandbox on several Docker engines: URLs from arguments, $GRPO_ENV_DOCKER_HOSTS or the
env's config; the pool spread over them; an engine killed mid-run ends its in-flight runs as
infra_error (masked, never a failed verdict) while the other engine goes on, and it takes
sandboxes again once it is back. The engines are real: a second ``dockerd`` started here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from grpo_env import Status
from grpo_env.environments.code_unittest import CodeUnittestEnv
from grpo_env.sandbox import DockerSandbox, ExecutionRequest, SandboxUnavailable, TestCase
from grpo_env.sandbox import TestSuite as Suite
from grpo_env.sandbox.commands import make_sandbox
from grpo_env.sandbox.docker_backend import INSTANCE_LABEL
from grpo_env.sandbox.doctor import run_doctor
from grpo_env.sandbox.engines import (
    HOSTS_ENV,
    EngineDown,
    client_kwargs,
    engine_hosts,
    parse_hosts,
)
from grpo_env.sandbox.scratch_engine import ScratchEngine
from grpo_env.sandbox.testing import scratch_engine_or_skip

REQUEST = ExecutionRequest(
    code="def add(a, b):\n    return a + b\n",
    tests=Suite(cases=[TestCase(name="t", code="assert add(1, 2) == 3")]),
)
TASK = {
    "id": "add",
    "prompt": "add two numbers",
    "tests": Suite(cases=[TestCase(name="t", code="assert add(1, 2) == 3")]).model_dump(),
}


# ----- where the engines come from (no engine needed) -------------------------------------


def test_engine_urls_from_a_list_a_string_or_the_environment(monkeypatch):
    monkeypatch.delenv(HOSTS_ENV, raising=False)
    assert engine_hosts() == [None]  # the environment's engine, as docker.from_env finds it
    assert parse_hosts(" unix:///a.sock, ssh://me@box ,, unix:///a.sock") == [
        "unix:///a.sock",
        "ssh://me@box",
    ]
    assert parse_hosts(["tcp://10.0.0.2:2376", "unix:///b.sock"]) == [
        "tcp://10.0.0.2:2376",
        "unix:///b.sock",
    ]
    monkeypatch.setenv(HOSTS_ENV, "unix:///x.sock,tcp://y:2375")
    assert engine_hosts() == ["unix:///x.sock", "tcp://y:2375"]
    assert engine_hosts(["unix:///z.sock"]) == ["unix:///z.sock"]  # an argument wins
    sandbox = DockerSandbox()
    assert [e.name for e in sandbox.engines.engines] == ["unix:///x.sock", "tcp://y:2375"]
    sandbox.close()


@pytest.mark.parametrize("bad", ["ftp://box", "tcp://", "ssh://me@box/path"])
def test_a_bad_engine_url_is_refused_by_name(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        parse_hosts(["unix:///ok.sock", bad])
    with pytest.raises(ValueError, match="bad Docker engine URL"):
        CodeUnittestEnv([TASK], docker_hosts=bad)


def test_tls_for_tcp_from_the_environment_and_ssh_through_the_ssh_program(monkeypatch, tmp_path):
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    tcp = client_kwargs("tcp://box:2376")
    assert tcp["base_url"] == "tcp://box:2376" and tcp["tls"].verify
    assert tcp["tls"].ca_cert == str(tmp_path / "ca.pem")
    assert tcp["tls"].cert == (str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    assert not tcp["use_ssh_client"]
    ssh = client_kwargs("ssh://me@box")
    assert ssh["use_ssh_client"] and "tls" not in ssh
    assert "tls" not in client_kwargs("unix:///a.sock")
    explicit = object()
    assert client_kwargs("tcp://box:2376", tls=explicit)["tls"] is explicit


def test_the_env_config_reaches_the_sandbox(monkeypatch):
    monkeypatch.delenv(HOSTS_ENV, raising=False)
    env = CodeUnittestEnv([TASK], docker_hosts="unix:///one.sock,unix:///two.sock")
    assert [e.name for e in env.sandbox.engines.engines] == [
        "unix:///one.sock",
        "unix:///two.sock",
    ]
    env.close()
    box = make_sandbox("docker", docker_hosts=["unix:///three.sock"])
    assert [e.name for e in box.engines.engines] == ["unix:///three.sock"]
    box.close()


def test_all_engines_down_is_one_clear_infra_error(tmp_path):
    hosts = [f"unix://{tmp_path}/gone-{i}.sock" for i in (1, 2)]
    with DockerSandbox(docker_hosts=hosts, concurrency=2) as sandbox:
        result = sandbox.run(REQUEST)
        assert result.status.value == "sandbox_error"
        assert "all 2 Docker engines are down" in result.error
        assert all(f"{host} not reachable" in result.error for host in hosts)
        with pytest.raises(SandboxUnavailable, match="all 2 Docker engines are down"):
            sandbox.check()
    env = CodeUnittestEnv([TASK], docker_hosts=hosts)
    (verdict,) = env.score_many(env.tasks[0], ["```python\ndef add(a, b):\n    return a + b\n```"])
    assert verdict.status is Status.INFRA_ERROR
    assert "all 2 Docker engines are down" in verdict.details["reason"]
    env.close()


def test_doctor_reports_each_engine(tmp_path):
    gone = f"unix://{tmp_path}/gone.sock"
    report = run_doctor(docker_hosts=[gone])
    (engine,) = report.engines
    assert (engine.host, engine.reachable, engine.ok, report.ok) == (gone, False, False, False)
    assert "not reachable" in engine.error and gone in report.error
    command = [sys.executable, "-c", "from grpo_env.cli import main; main()"]
    args = ["sandbox", "doctor", "--json", "--docker-host", gone, "--docker-host", gone + "2"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    shown = json.loads(done.stdout)
    assert [e["host"] for e in shown["engines"]] == [gone, gone + "2"]
    assert shown["ok"] is False and not any(e["reachable"] for e in shown["engines"])
    bad = subprocess.run(
        [*command, "sandbox", "doctor", "--docker-host", "ftp://x"],
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "bad Docker engine URL" in bad.stderr


# ----- two real engines ------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(docker_sandbox) -> Iterator[ScratchEngine]:
    """A second dockerd on this machine (own socket, data root, containerd), with the image."""
    engine = scratch_engine_or_skip(docker_sandbox.image)
    yield engine
    engine.close()


@pytest.fixture
def main_url(docker_sandbox) -> str:
    return docker_sandbox.engines.engines[0].name


@pytest.mark.docker
def test_a_down_engine_waits_its_back_off_unless_a_check_finds_it_well(main_url):
    with DockerSandbox(docker_hosts=[main_url], concurrency=1) as sandbox:
        engine = sandbox.engines.engines[0]
        sandbox.engines.mark_down(engine, EngineDown("gone for a moment"))
        result = sandbox.run(REQUEST)  # inside its back-off: not asked again yet
        assert result.status.value == "sandbox_error" and "gone for a moment" in result.error
        sandbox.check()
        assert engine.up and sandbox.run(REQUEST).status.value == "passed"


class Recording(DockerSandbox):
    """Notes which engine each run went to (by the ``# sample N`` tag in its code) and how
    many are in flight on each."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.placed: dict[int, str] = {}
        self.in_flight: Counter[str] = Counter()
        self.changed = threading.Condition()

    def _execute(self, worker, payload, timeout):
        tag = re.search(r"# sample (\d+)", payload["request"]["code"] or "")
        name = worker.engine.name
        with self.changed:
            if tag:
                self.placed[int(tag.group(1))] = name
            self.in_flight[name] += 1
            self.changed.notify_all()
        try:
            return super()._execute(worker, payload, timeout)
        finally:
            with self.changed:
                self.in_flight[name] -= 1


def tagged(i: int, body: str = "return a + b") -> str:
    return f"```python\n# sample {i}\nimport time\n\ndef add(a, b):\n    {body}\n```"


@pytest.mark.docker
def test_the_pool_spreads_over_both_engines(scratch, main_url):
    with Recording(docker_hosts=[main_url, scratch.url], concurrency=4) as sandbox:
        sandbox.check()
        sandbox.warm(4)
        assert [e.load for e in sandbox.engines.engines] == [2, 2]
        for engine, url in ((sandbox.engines.engines[1], scratch.url), (None, main_url)):
            client = scratch.client() if engine else sandbox.client()
            ours = client.api.containers(filters={"label": f"{INSTANCE_LABEL}={sandbox.instance}"})
            assert len(ours) == 2, url
        env = CodeUnittestEnv([TASK], sandbox=sandbox)
        results = env.score_many(env.tasks[0], [tagged(i) for i in range(12)])
    assert [r.status for r in results] == [Status.OK] * 12
    assert all(r.score == 1.0 for r in results)
    assert set(sandbox.placed.values()) == {main_url, scratch.url}


@pytest.mark.docker
def test_an_engine_without_the_image_is_named_with_how_to_copy_it(
    scratch, main_url, docker_sandbox
):
    only_there = "grpo-env-scratch-only:1"  # tagged on the scratch engine only
    scratch.client().api.tag(docker_sandbox.image, "grpo-env-scratch-only", "1")
    with DockerSandbox(image=only_there, docker_hosts=[main_url, scratch.url]) as sandbox:
        with pytest.raises(SandboxUnavailable) as err:
            sandbox.check()
        assert f"not found on engine {main_url}" in str(err.value)
        assert f"docker save {only_there} | docker -H {main_url} load" in str(err.value)
        assert scratch.url not in str(err.value)
        # Runs still go to the engine that has it.
        assert [r.status.value for r in sandbox.run_many([REQUEST] * 3)] == ["passed"] * 3
        assert not sandbox.engines.engines[0].up and sandbox.engines.engines[1].up


@pytest.mark.docker
def test_an_engine_killed_mid_run_ends_its_runs_as_infra_errors_and_the_other_goes_on(
    scratch, main_url
):
    """SIGKILL the second dockerd while 3 runs are in flight on it and 3 on the main engine,
    6 more queued: the 3 are infra_error (masked, never a failed verdict), every other
    sample passes, later runs pass on the main engine; restarted, the engine rejoins."""
    sandbox = Recording(docker_hosts=[main_url, scratch.url], concurrency=6)
    env = CodeUnittestEnv([TASK], sandbox=sandbox, timeout_s=60)
    completions = [tagged(i, "time.sleep(3)\n    return a + b") for i in range(12)]
    results: list = []
    task = env.tasks[0]
    scorer = threading.Thread(target=lambda: results.extend(env.score_many(task, completions)))
    try:
        sandbox.warm(6)
        scorer.start()
        with sandbox.changed:
            assert sandbox.changed.wait_for(lambda: sandbox.in_flight[scratch.url] == 3, 120)
        on_scratch = {i for i, name in sandbox.placed.items() if name == scratch.url}
        time.sleep(0.5)  # the runs are inside their containers
        scratch.kill()
        scorer.join(120)
        assert not scorer.is_alive()

        assert len(results) == len(completions)  # every sample accounted for
        assert len(on_scratch) == 3
        for i, result in enumerate(results):
            if i in on_scratch:
                assert result.status is Status.INFRA_ERROR, (i, result)
                assert f"Docker engine {scratch.url} went down" in result.details["reason"]
            else:
                assert (result.status, result.score) == (Status.OK, 1.0), (i, result)
        assert all(sandbox.placed[i] == main_url for i in range(12) if i not in on_scratch)
        assert not sandbox.engines.engines[1].up

        later = env.score_many(env.tasks[0], [tagged(100 + i) for i in range(6)])
        assert [(r.status, r.score) for r in later] == [(Status.OK, 1.0)] * 6
        assert {sandbox.placed[100 + i] for i in range(6)} == {main_url}

        scratch.start()  # back: after its back-off it takes sandboxes again
        deadline, batch = time.monotonic() + 60, 200
        while scratch.url not in {sandbox.placed.get(i) for i in range(200, batch)}:
            assert time.monotonic() < deadline, "the restarted engine never rejoined"
            again = env.score_many(env.tasks[0], [tagged(batch + i) for i in range(6)])
            assert [(r.status, r.score) for r in again] == [(Status.OK, 1.0)] * 6
            batch += 6
            time.sleep(0.5)
    finally:
        sandbox.close()
