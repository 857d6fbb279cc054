"""The README's custom-environment example runs as printed, and its env is sound."""

from __future__ import annotations

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


def example_code() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- example: custom-env -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "README lost its custom-env example"
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


def multi_turn_code() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- example: multi-turn-env -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "README lost its multi-turn example"
    return match.group(1)


def test_multi_turn_example_is_short_and_plays(scratch_registry):
    code = multi_turn_code()
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
