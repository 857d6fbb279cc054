"""The multi-turn learning test (issue 13): a randomly initialised tiny Llama learns to play
``guess-number`` (a secret in 1..7, higher/lower feedback, 3 guesses) from the episode's return
alone (outcome supervision) and from its turn rewards (process supervision)."""

import json

import pytest

from grpo_env.testing import game_model_dir, guess_number_env
from grpo_env.training.config import validate_config
from grpo_env.training.trainer import Trainer

STEPS = 150


def run(tmp_path, agent, seed):
    model = game_model_dir(tmp_path / "model", seed=seed)
    out = tmp_path / f"{agent['name']}-{agent.get('supervision', 'outcome')}"
    config = validate_config(
        {
            "env": "guess-number",
            "steps": STEPS,
            "group_size": 8,
            "prompts_per_step": 4,
            "seed": seed,
            "out": str(out),
            "model": {"name": str(model), "lora": False},
            "generation": {"max_new_tokens": 2, "temperature": 1.0},
            "agent": agent,
            "log": {"save_every": 0, "tensorboard": False, "progress": False, "sample_groups": 1},
            "eval": {"tasks": 0},
        }
    )
    Trainer(config, env=guess_number_env()).run()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return rows, out


@pytest.mark.slow
@pytest.mark.parametrize("supervision", ["outcome", "process"])
def test_grpo_learns_the_guessing_game(tmp_path, supervision):
    agent = {"name": "grpo", "lr": 3e-3, "beta": 0.0, "supervision": supervision}
    rows, out = run(tmp_path, agent, seed=0)
    returns = [r["reward_mean"] for r in rows]
    start, end = sum(returns[:5]) / 5, sum(returns[-10:]) / 10
    print(f"{supervision}: mean return first 5 steps {start:.3f}, last 10 steps {end:.3f}")
    assert end > start + 0.15, returns
    assert rows[0]["turns_mean"] > 1.5  # episodes are really multi-turn
    sample = json.loads((out / "samples.jsonl").read_text().splitlines()[-1])
    assert sample["messages"][-1]["role"] == "assistant" and sample["turns"] >= 1
