"""The README's tool-env example runs as printed, and its env answers calls and scores."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium
import pytest

import grpo_env
from grpo_env.registry import envs

README = Path(__file__).resolve().parents[1] / "README.md"


def example_code() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- example: tool-env -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "README lost its tool-env example"
    return match.group(1)


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(envs, "_specs", dict(envs._specs))
    gym_registration = gymnasium.envs.registration
    monkeypatch.setattr(gym_registration, "registry", dict(gym_registration.registry))


def test_example_is_at_most_15_lines():
    assert len([line for line in example_code().splitlines() if line.strip()]) <= 15


def test_example_registers_a_working_tool_env(scratch_registry):
    exec(compile(example_code(), str(README), "exec"), {"__name__": "readme_tools_example"})
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
