"""Process supervision on a single-turn env (issue 13, item 6): the env scores spans of the
completion (``step_rewards``), the rollout maps them onto the sampled tokens for agents that
train on steps, and GRPO's per-token advantages are DeepSeekMath's, by hand."""

import json
import logging

import pytest
import torch

from grpo_env.agents.grpo import GRPOAgent, GRPOConfig
from grpo_env.env import VerifiableEnv
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import Completion, HFGenerator, SamplingParams
from grpo_env.policy.models import load_policy
from grpo_env.testing import toy_model_dir
from grpo_env.training.config import validate_config
from grpo_env.training.rollout import rollout_groups
from grpo_env.training.trainer import Trainer
from grpo_env.types import VerifyResult

SAMPLING = SamplingParams(max_new_tokens=3, temperature=1.0)


class NextTwoDigits(VerifiableEnv):
    """The prompt is a digit d; the answer is (d + 1) mod 10 then (d + 2) mod 10. The reward is
    the share of the two digits right; each digit is a step (1 right, 0 wrong)."""

    def __init__(self) -> None:
        tasks = [
            {"id": f"d{d}", "prompt": str(d), "answer": f"{(d + 1) % 10}{(d + 2) % 10}"}
            for d in range(10)
        ]
        super().__init__(tasks, rubric=self.share_right)
        self.step_calls = 0

    @staticmethod
    def share_right(task, completion):
        return sum(c == a for c, a in zip(completion[:2], task.answer, strict=False)) / 2

    def step_rewards(self, task, completion, result):
        self.step_calls += 1
        pairs = zip(completion, task.answer, strict=False)
        return [(i + 1, float(c == a)) for i, (c, a) in enumerate(pairs)]


class CrashingSteps(NextTwoDigits):
    def step_rewards(self, task, completion, result):
        self.step_calls += 1
        raise RuntimeError("step scorer bug")


def make_agent(model_dir, generator=None, **options):
    policy = load_policy(ModelConfig(name=str(model_dir), lora=False))
    return GRPOAgent(
        policy, generator or HFGenerator(policy), SAMPLING, GRPOConfig(**options), total_steps=4
    )


def test_the_rollout_fills_steps_only_under_process_supervision(toy_model):
    env = NextTwoDigits()
    outcome = make_agent(toy_model)
    torch.manual_seed(0)
    groups = rollout_groups(env, outcome, env.tasks[:3], 4, tag="t")
    assert env.step_calls == 0 and all(not e.step_rewards for g in groups for e in g.episodes)

    process = make_agent(toy_model, supervision="process")
    groups = rollout_groups(env, process, env.tasks[:3], 4, tag="t")
    assert env.step_calls == 12
    specials = set(process.policy.tokenizer.all_special_ids)
    for task, group in zip(env.tasks[:3], groups, strict=True):
        for episode in group.episodes:
            # One token per character, and special tokens (sampled BOS, pad) decode to nothing:
            # a step ends just after the token of its character, the final one at the end of
            # the completion (its EOS included).
            text, ids = episode.completion, episode.completion_ids
            after = [k + 1 for k, token in enumerate(ids) if token not in specials]
            expected = [
                (after[i] if i + 1 < len(text) else len(ids), float(c == a))
                for i, (c, a) in enumerate(zip(text, task.answer, strict=False))
            ]
            assert episode.step_rewards == expected
    assert any(e.step_rewards for g in groups for e in g.episodes)


def test_a_crashing_step_hook_gives_no_steps_logged_once(toy_model, caplog):
    env = CrashingSteps()
    agent = make_agent(toy_model, supervision="process")
    with caplog.at_level(logging.ERROR, logger="grpo_env.training.rollout"):
        for _ in range(2):
            groups = rollout_groups(env, agent, env.tasks[:2], 2, tag="t")
            assert all(not e.step_rewards for g in groups for e in g.episodes)
    assert env.step_calls == 8
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "CrashingSteps.step_rewards raised RuntimeError: step scorer bug"
    )


def test_an_env_without_steps_is_named_once(toy_model, caplog):
    class NoSteps(VerifiableEnv):
        pass

    env = NoSteps(NextTwoDigits().tasks, rubric=NextTwoDigits.share_right)
    agent = make_agent(toy_model, supervision="process")
    with caplog.at_level(logging.WARNING, logger="grpo_env.training.rollout"):
        for _ in range(2):
            groups = rollout_groups(env, agent, env.tasks[:2], 2, tag="t")
    assert all(not e.step_rewards for g in groups for e in g.episodes)
    (record,) = caplog.records
    assert record.getMessage().startswith("NoSteps scores no steps")


def test_infra_error_episodes_get_no_steps(toy_model):
    env = NextTwoDigits()
    env.rubric = None
    env.verify = lambda task, completion: VerifyResult.infra_error("checker down")  # type: ignore[method-assign]
    agent = make_agent(toy_model, supervision="process")
    groups = rollout_groups(env, agent, env.tasks[:2], 2, tag="t")
    assert env.step_calls == 0 and all(not e.step_rewards for g in groups for e in g.episodes)


class Scripted:
    """A generator that returns the same completions for every prompt."""

    def __init__(self, tokenizer, texts, eos):
        self.tokenizer, self.texts, self.eos = tokenizer, texts, eos

    def generate(self, prompts, n, params):
        assert n == len(self.texts)
        out = []
        for prompt in prompts:
            samples = []
            for text in self.texts:
                ids = [*self.tokenizer.encode(text, add_special_tokens=False), self.eos]
                samples.append(Completion(list(prompt), ids, text, [0.0] * len(ids)))
            out.append(samples)
        return out

    def sync_weights(self):
        pass

    def close(self):
        pass


def test_grpo_process_advantages_by_hand_through_the_real_update(toy_model, monkeypatch):
    policy = load_policy(ModelConfig(name=str(toy_model), lora=False))
    tokenizer = policy.tokenizer
    generator = Scripted(tokenizer, ["23", "27"], tokenizer.eos_token_id)
    config = GRPOConfig(supervision="process", std_eps=0.0, beta=0.0)
    agent = GRPOAgent(policy, generator, SAMPLING, config, total_steps=1)
    env = NextTwoDigits()
    groups = rollout_groups(env, agent, [env.tasks[1]], 2, tag="t")  # prompt "1", answer "23"
    # "23"+EOS: steps (1, 1) and (3, 1); "27"+EOS: steps (1, 1) and (3, 0).
    assert [e.step_rewards for e in groups[0].episodes] == [
        [(1, 1.0), (3, 1.0)],
        [(1, 1.0), (3, 0.0)],
    ]
    seen = []
    original = agent.sample_advantages

    def spy(rollout):
        advantages, metrics = original(rollout)
        seen.append(advantages.clone())
        return advantages, metrics

    monkeypatch.setattr(agent, "sample_advantages", spy)
    agent.update(groups)
    # Pooled step rewards [1, 1, 1, 0]: mean 3/4, Bessel std sqrt(0.75 / 3) = 1/2; normalised
    # 1 -> 1/2, 0 -> -3/2. Token 0 sums both steps of its sample, tokens 1-2 the last one.
    expected = torch.tensor([[1.0, 0.5, 0.5], [-1.0, -1.5, -1.5]])
    assert torch.allclose(seen[0], expected, atol=1e-6), seen[0]


@pytest.mark.slow
def test_grpo_learns_a_single_turn_task_from_its_steps(tmp_path):
    model = toy_model_dir(tmp_path / "model", seed=0)
    out = tmp_path / "process"
    config = validate_config(
        {
            "env": "next-two-digits",
            "steps": 30,
            "group_size": 8,
            "prompts_per_step": 8,
            "seed": 0,
            "out": str(out),
            "model": {"name": str(model), "lora": False},
            "generation": {"max_new_tokens": 2, "temperature": 1.0},
            "agent": {"name": "grpo", "lr": 5e-3, "beta": 0.0, "supervision": "process"},
            "log": {"save_every": 0, "tensorboard": False, "progress": False},
            "eval": {"tasks": 0},
        }
    )
    env = NextTwoDigits()
    Trainer(config, env=env).run()
    rewards = [json.loads(line)["reward_mean"] for line in (out / "metrics.jsonl").open()]
    start, end = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    print(f"process supervision, single turn: reward {start:.3f} -> {end:.3f}")
    assert env.step_calls == 30 * 64  # the trainer's rollout asked for the steps
    assert end > start + 0.2, rewards  # seed 0: about 0.06 -> 0.36
