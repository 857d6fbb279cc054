"""The README's examples (a custom env, a multi-turn env, a tool env) run as printed, and their
envs are sound."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import grpo_env
from grpo_env.registry import envs

README = Path(__file__).resolve().parents[1] / "README.md"


def example_code(name: str = "custom-env") -> str:
    """The README's code block marked ``<!-- example: NAME -->``."""
    text = README.read_text(encoding="utf-8")
    pattern = rf"<!-- example: {re.escape(name)} -->\s*```python\n(.*?)```"
    match = re.search(pattern, text, re.DOTALL)
    assert match, f"README lost its {name} example"
    return match.group(1)


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(envs, "_specs", dict(envs._specs))
    gym_registration = gymnasium.envs.registration
    monkeypatch.setattr(gym_registration, "registry", dict(gym_registration.registry))


def test_example_is_short():
    code_lines = [line for line in example_code().splitlines() if line.strip()]
    assert len(code_lines) <= 16


def test_example_registers_a_working_env(scratch_registry):
    exec(compile(example_code(), str(README), "exec"), {"__name__": "readme_example"})
    env = grpo_env.make("reverse-word")
    check_env(env.unwrapped)
    obs, _ = env.reset(options={"task_id": "planet"})
    assert "planet" in obs[-1]["content"]
    assert env.step(" tenalp\n")[1] == 1.0
    env.reset(options={"task_id": "planet"})
    assert env.step("planet")[1] == 0.0


def test_example_works_from_the_cli_with_import(tmp_path):
    (tmp_path / "my_envs.py").write_text(example_code())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpo_env.cli",
            "--import",
            "my_envs",
            "envs",
            "check",
            "reverse-word",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (
        '"name": "gymnasium check_env"' in result.stdout and '"passed": false' not in result.stdout
    )


def test_multi_turn_example_is_short_and_plays(scratch_registry):
    code = example_code("multi-turn-env")
    assert len([line for line in code.splitlines() if line.strip()]) <= 25
    exec(compile(code, str(README), "exec"), {"__name__": "readme_multi_turn"})
    env = grpo_env.make("countdown")
    check_env(env.unwrapped)
    obs, _ = env.reset(options={"task_id": "from-3"})
    for said in ("3", "2"):
        obs, _, terminated, truncated, _ = env.step(said)
        assert obs[-1] == {"role": "user", "content": "next"} and not (terminated or truncated)
    assert env.step("1")[1:3] == (1.0, True)
    env.reset(options={"task_id": "from-3"})
    env.step("3")
    assert env.step("1")[1] == 0.0


def test_tool_example_is_at_most_15_lines():
    code = example_code("tool-env")
    assert len([line for line in code.splitlines() if line.strip()]) <= 15


def test_tool_example_registers_a_working_tool_env(scratch_registry):
    code = example_code("tool-env")
    exec(compile(code, str(README), "exec"), {"__name__": "readme_tools_example"})
    env = grpo_env.make("multiply-tool").unwrapped
    assert env.tool_schemas()[0]["function"]["parameters"]["required"] == ["a", "b"]
    obs, _ = env.reset(seed=0)
    task, state = env.task, env.initial_state(env.task)
    call = {"name": "multiply", "arguments": {"a": 1234, "b": 5678}}
    obs.append({"role": "assistant", "content": f"<tool_call>{json.dumps(call)}</tool_call>"})
    assert env.env_response(task, obs, state) == [{"role": "tool", "content": "7006652"}]
    obs += [{"role": "tool", "content": "7006652"}, {"role": "assistant", "content": "7006652"}]
    assert env.env_response(task, obs, state) is None
    assert env.verify_episode(task, obs, state).score == 1.0
    assert state == {"tool_calls": 1, "tool_errors": 0}
