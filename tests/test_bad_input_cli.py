"""What a user sees when the verifier cannot score or the input is bad: one line, the right
exit code (2: fix your input, 3: the verifier's infrastructure failed), and no model loaded
or completion generated first. The CLI runs as a user runs it (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOY_ENVS = '''
import grpo_env
from grpo_env import VerifiableEnv, VerifyResult

TASKS = [{"id": f"digit-{d}", "prompt": str(d), "answer": str((d + 1) % 10)} for d in range(10)]


class Flaky(VerifiableEnv):
    """Its checker crashes on one task (3): those samples cannot be scored."""

    def verify(self, task, completion):
        if task.id == "digit-3":
            raise ZeroDivisionError("division by zero")
        return VerifyResult(score=float(completion.strip()[:1] == task.answer))


class Broken(VerifiableEnv):
    """A checker with a deterministic bug: every call raises."""

    def verify(self, task, completion):
        return 1 / 0


grpo_env.register("flaky-v0", lambda **kw: Flaky(TASKS, **kw), description="flaky")
grpo_env.register("broken-v0", lambda **kw: Broken(TASKS, **kw), description="broken")
'''
NO_MODEL = "/nonexistent/model"  # loading it would fail: these errors must come first


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "toy_envs.py").write_text(TOY_ENVS)
    return tmp_path


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "grpo_env.cli", "-I", "toy_envs", *args]
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400", **env}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environ)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


DEAD_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@pytest.mark.parametrize("command", ["train", "eval"])
def test_a_dead_sandbox_engine_stops_train_and_eval_before_any_model_loads(workdir, command):
    result = cli(command, "--env", "code-unittest", "--model", NO_MODEL, cwd=workdir, **DEAD_ENGINE)
    assert result.returncode == 3
    line = error_line(result)
    assert "code-unittest cannot score: Docker engine not reachable" in line
    assert "grpo-env sandbox doctor" in line
    assert "evaluating" not in result.stderr


def test_a_verifier_that_always_raises_stops_train_before_any_model_loads(workdir):
    result = cli("train", "--env", "broken", "--model", NO_MODEL, "--out", "r", cwd=workdir)
    assert result.returncode == 3
    line = error_line(result)
    assert "broken cannot score" in line and "ZeroDivisionError" in line


@pytest.mark.slow
def test_eval_exits_3_when_a_sample_could_not_be_scored_and_says_so_first(workdir, toy_model):
    args = ["eval", "--env", "flaky", "--model", str(toy_model), "--samples", "2"]
    result = cli(*args, "--max-new-tokens", "2", "--out", "e.jsonl", "--json", cwd=workdir)
    assert result.returncode == 3, result.stderr
    line = error_line(result)
    assert line.startswith("error: 2 of 20 samples could not be scored (infra_error)")
    assert "ZeroDivisionError" in line and "rescore" in line
    report = json.loads(result.stdout)
    assert report["infra_errors"] == 2 and report["samples"] == 20
    statuses = [json.loads(row)["status"] for row in (workdir / "e.jsonl").read_text().splitlines()]
    assert len(statuses) == 20 and statuses.count("infra_error") == 2
    # Each infra error is one log line, no traceback.
    assert result.stderr.count("task digit-3") == 2


def test_out_that_is_a_file_is_one_line_before_the_model_loads(workdir):
    (workdir / "taken").write_text("")
    for out in ("taken", "taken/run"):
        result = cli("train", "--env", "flaky", "--model", NO_MODEL, "--out", out, cwd=workdir)
        assert result.returncode == 2
        assert "taken is a file, not a directory" in error_line(result)
    evaluated = cli("eval", "--env", "flaky", "--model", NO_MODEL, "--out", ".", cwd=workdir)
    assert evaluated.returncode == 2 and "is a directory" in error_line(evaluated)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--agent", "grp"], "grpo"),
        (["--set", "agent.clip=0.1"], "valid keys"),
        (["--env", "no-such-env"], "no-such-env"),
    ],
)
def test_agent_and_env_names_are_checked_before_the_model_loads(workdir, extra, message):
    args = ["train", "--env", "flaky", "--model", NO_MODEL, "--out", "r", *extra]
    result = cli(*args, cwd=workdir)
    assert result.returncode == 2
    assert message in error_line(result)


def test_resume_without_a_run_is_an_error_that_says_what_exists(workdir):
    missing = cli("train", "--out", "runs/typo", "--resume", cwd=workdir)
    assert missing.returncode == 2
    assert "no run to resume: runs/typo does not exist" in error_line(missing)
    (workdir / "empty").mkdir()
    empty = cli("train", "--env", "flaky", "--out", "empty", "--resume", cwd=workdir)
    assert empty.returncode == 2 and "empty is empty" in error_line(empty)
    (workdir / "other").mkdir()
    (workdir / "other" / "notes.txt").write_text("")
    other = cli("train", "--env", "flaky", "--out", "other", "--resume", cwd=workdir)
    assert other.returncode == 2 and "other holds notes.txt" in error_line(other)


def test_eval_resume_without_its_samples_file_is_an_error(workdir):
    args = ["eval", "--env", "flaky", "--model", NO_MODEL, "--out", "typo.jsonl", "--resume"]
    result = cli(*args, cwd=workdir)
    assert result.returncode == 2
    assert "--resume: typo.jsonl does not exist" in error_line(result)
