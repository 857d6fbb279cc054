"""The learning test: GRPO raises the reward of a toy verifiable task; the frozen control
does not. A randomly initialised tiny Llama (built from a config) must learn to answer a digit
d with (d + 1) mod 10, from the verifier's reward alone."""

import json

import pytest

from grpo_env.testing import next_digit_env, toy_model_dir
from grpo_env.training.config import validate_config
from grpo_env.training.trainer import Trainer


def run(tmp_path, agent, seed):
    model = toy_model_dir(tmp_path / "model", seed=seed)
    config = validate_config(
        {
            "env": "next-digit",
            "steps": 100,
            "group_size": 8,
            "prompts_per_step": 8,
            "seed": seed,
            "out": str(tmp_path / agent["name"]),
            "model": {"name": str(model), "lora": False},
            "generation": {"max_new_tokens": 2, "temperature": 1.0},
            "agent": agent,
            "log": {"save_every": 0, "tensorboard": False, "progress": False},
            "eval": {"tasks": 10},
        }
    )
    summary = Trainer(config, env=next_digit_env(), eval_env=next_digit_env()).run()
    lines = (tmp_path / agent["name"] / "metrics.jsonl").read_text().splitlines()
    rewards = [json.loads(line)["reward_mean"] for line in lines]
    return rewards, summary


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_grpo_learns_the_toy_task_and_frozen_does_not(tmp_path, seed):
    grpo = {"name": "grpo", "lr": 3e-3, "beta": 0.0}
    rewards, summary = run(tmp_path, grpo, seed)
    start, end = sum(rewards[:5]) / 5, sum(rewards[-10:]) / 10
    assert start < 0.3, rewards
    # Not 0.8: a run can stall on a digit whose every sample is wrong (no variance, no signal).
    # Seed 1 plateaus at 0.78-0.86 in float32 depending on rounding (fused or per-tensor AdamW,
    # packed or flat forward); the frozen control below stays under 0.3.
    assert end > 0.75, rewards
    assert summary.eval_after.accuracy > summary.eval_before.accuracy

    frozen_rewards, frozen = run(tmp_path, {"name": "frozen"}, seed)
    assert sum(frozen_rewards[-10:]) / 10 < 0.3, frozen_rewards
    assert frozen.eval_after.accuracy == frozen.eval_before.accuracy
