"""A third-party agent, installed as a package with a ``grpo_env.agents`` entry point, is found
by name, trained with its own knobs, and listed beside the built-in ones."""

import json
import os
import subprocess
import sys

import pytest

from grpo_env.testing import fake_distribution

PLUGIN = '''
"""An agent from outside grpo-env: advantage = scale * sign(reward - group mean)."""
from pydantic import Field

from grpo_env.agents.advantages import group_advantages
from grpo_env.agents.policy_gradient import (
    PolicyGradientAgent, PolicyGradientConfig, sample_matrix, samples_at,
)


class SignConfig(PolicyGradientConfig):
    scale: float = Field(1.0, gt=0)


class SignAgent(PolicyGradientAgent):
    Config = SignConfig

    def sample_advantages(self, rollout):
        matrix, valid = sample_matrix(rollout, rollout.scores)
        signs = group_advantages(matrix, valid, scale="none").values.sign() * self.config.scale
        return samples_at(signs, rollout.samples), {"sign_scale": self.config.scale}
'''


@pytest.fixture
def plugin_path(tmp_path):
    return fake_distribution(
        tmp_path / "site",
        "my-sign-agent",
        {
            "grpo_env.agents": {"sign": "my_sign_agent:SignAgent"},
            "grpo_env.environments": {"next-digit-v0": "grpo_env.testing:next_digit_env"},
        },
        {"my_sign_agent": PLUGIN},
    )


def cli(*args, path, cwd):
    env = {**os.environ, "PYTHONPATH": str(path), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "grpo_env.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


@pytest.mark.slow
def test_an_installed_plugin_agent_is_listed_and_trains(tmp_path, plugin_path, toy_model):
    listed = cli("agents", "list", "--json", path=plugin_path, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["sign"]["source"] == "entry point (my-sign-agent)"
    assert rows["grpo"]["source"] == "built-in"

    common = ["train", "--env", "next-digit", "--agent", "sign", "--model", str(toy_model)]
    common += ["--steps", "2", "--group-size", "4", "--prompts-per-step", "2"]
    common += ["--max-new-tokens", "2", "--set", "log.progress=false"]
    run = cli(*common, "--set", "agent.scale=2.5", "--out", "run", path=plugin_path, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["sign_scale"] == 2.5 for r in rows)

    bad = cli(*common, "--set", "agent.bogus=1", "--out", "bad", path=plugin_path, cwd=tmp_path)
    assert bad.returncode == 2
    (error,) = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert "unknown key 'bogus' in [agent]" in error and "scale" in error
