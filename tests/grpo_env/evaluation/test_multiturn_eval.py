"""Evaluation on a multi-turn env (issue 13): pass@k/maj@k on the final result, turns per
episode, truncations, whole transcripts in the samples file."""

import json

import torch

from grpo_env import Task, VerifiableEnv, VerifyResult
from grpo_env.evaluation.evaluate import (
    evaluate_greedy,
    evaluate_samples,
    read_records,
    replay_episode,
    rescore_records,
)
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.models import load_policy
from grpo_env.testing import game_model_dir, guess_number_env


def test_sampled_and_greedy_evaluation_play_whole_episodes(tmp_path):
    policy = load_policy(ModelConfig(name=str(game_model_dir(tmp_path / "m")), lora=False))
    env = guess_number_env()
    tasks = [env.tasks[i] for i in range(3)]
    torch.manual_seed(0)
    report = evaluate_samples(
        env,
        policy,
        HFGenerator(policy),
        tasks,
        env_id="guess-number",
        model="tiny",
        samples=4,
        params=SamplingParams(max_new_tokens=2, temperature=1.0),
        out=tmp_path / "samples.jsonl",
    )
    assert "pass@1" in report.pass_at and "maj@4" in report.maj_at
    assert report.episodes["turns_mean"] > 1
    assert 0 <= report.episodes["truncated_by_turns"] <= 1
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    row = max(rows, key=lambda r: r["turns"])
    assert row["turns"] > 1 and row["messages"][-1]["content"] == row["completion"]
    assert [m["role"] for m in row["messages"]].count("assistant") == row["turns"]

    greedy = evaluate_greedy(env, policy, HFGenerator(policy), tasks, max_new_tokens=2)
    assert greedy.tasks == 3 and greedy.episodes["turns_mean"] >= 1


def test_rescore_replays_a_multi_turn_transcript(tmp_path):
    policy = load_policy(ModelConfig(name=str(game_model_dir(tmp_path / "m")), lora=False))
    env = guess_number_env()
    torch.manual_seed(1)
    evaluate_samples(
        env,
        policy,
        HFGenerator(policy),
        [env.tasks[i] for i in range(3)],
        env_id="guess-number",
        model="tiny",
        samples=4,
        params=SamplingParams(max_new_tokens=2, temperature=1.0),
        out=tmp_path / "samples.jsonl",
    )
    records = read_records(tmp_path / "samples.jsonl")
    again = rescore_records(records, guess_number_env(), env_id="guess-number")
    assert [(r.reward, r.status) for r in again] == [(r.reward, r.status) for r in records]


class AttemptsEnv(VerifiableEnv):
    """A verdict that depends on state built by ``env_response``: 1 / attempts."""

    def __init__(self):
        super().__init__([Task(id="t", prompt="say ok", answer="ok")], max_turns=3)

    def initial_state(self, task):
        return {"attempts": 0}

    def env_response(self, task, messages, state):
        state["attempts"] += 1
        return None if messages[-1]["content"] == "ok" else "try again"

    def verify_episode(self, task, messages, state):
        solved = messages[-1]["content"] == "ok"
        return VerifyResult(score=float(solved) / state["attempts"])


def test_replay_rebuilds_the_state_the_verdict_depends_on():
    env = AttemptsEnv()
    task = env.tasks[0]
    transcript = [
        {"role": "user", "content": "say ok"},
        {"role": "assistant", "content": "no"},
        {"role": "user", "content": "try again"},
        {"role": "assistant", "content": "ok"},
    ]
    assert replay_episode(env, task, transcript).score == 0.5  # two attempts, as in play
    env.reset(options={"task": task})
    env.step("no")
    *_, info = env.step("ok")
    assert info["verify"].score == 0.5
    assert replay_episode(env, task, transcript[:1]).is_infra_error  # nothing to rescore
