"""Every agent on multi-turn batches (issue 13): the guarantees of the single-turn tests hold
when episodes interleave model and env tokens: ratio 1 and KL 0 at the first inner step,
micro-batch invariance, infra_error masking, and env tokens never carrying loss."""

import pytest
import torch

from grpo_env.agents.advantages import gae, pack_model_tokens, unpack_model_tokens
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.models import load_policy
from grpo_env.registry import agents as registry
from grpo_env.testing import capture_update_grads, game_model_dir, guess_number_env
from grpo_env.training.rollout import rollout_groups
from grpo_env.types import VerifyResult

SAMPLING = SamplingParams(max_new_tokens=2, temperature=1.0)
LEARNERS = ["grpo", "ppo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "dr_grpo", "dapo"]


@pytest.fixture(scope="module")
def game_model(tmp_path_factory):
    return game_model_dir(tmp_path_factory.mktemp("game"))


def make_agent(name, model_dir, *, lora=False, **options):
    policy = load_policy(ModelConfig(name=str(model_dir), lora=lora))
    factory = registry.resolve(name).load()
    return factory(policy, HFGenerator(policy), SAMPLING, factory.Config(**options), total_steps=4)


def multiturn_groups(agent, seed=0, prompts=3, group_size=4):
    torch.manual_seed(seed)
    env = guess_number_env()
    groups = rollout_groups(env, agent, [env.tasks[i] for i in range(prompts)], group_size, tag="t")
    for g, group in enumerate(groups):  # a random model rarely wins: give groups variance
        for i, episode in enumerate(group.episodes):
            episode.reward = float((i + g) % 3 == 0)
    return groups


def test_the_rollout_plays_several_turns_with_env_tokens_masked(game_model):
    agent = make_agent("grpo", game_model)
    groups = multiturn_groups(agent)
    episodes = [e for g in groups for e in g.episodes]
    assert max(e.turns for e in episodes) > 1
    for episode in episodes:
        assert len(episode.loss_mask) == len(episode.completion_ids) == len(episode.logprobs)
        assert sum(episode.loss_mask) == episode.model_tokens < len(episode.completion_ids) or (
            episode.turns == 1
        )
        assert episode.messages[: len(episode.prompt)] == episode.prompt
        assert sum(m["role"] == "assistant" for m in episode.messages) == episode.turns
        assert episode.truncated_by in (None, "turns", "tokens")


@pytest.mark.parametrize("name", LEARNERS)
def test_ratio_is_one_and_kl_zero_at_the_first_inner_step(game_model, monkeypatch, name):
    agent = make_agent(name, game_model, beta=0.04, mu=2, micro_batch_size=5, lr=1e-2)
    groups = multiturn_groups(agent)
    calls = []
    original = agent.token_loss

    def spy(logp, old_logp, advantages, ref_logp):
        calls.append((logp.detach().clone(), old_logp.clone(), ref_logp))
        return original(logp, old_logp, advantages, ref_logp)

    monkeypatch.setattr(agent, "token_loss", spy)
    metrics = agent.update(groups)
    first = -(-int(metrics["samples_trained"]) // 5)
    for logp, old, ref in calls[:first]:
        assert torch.equal(torch.exp(logp - old), torch.ones_like(logp))
        assert ref is not None and torch.allclose(ref, logp, atol=1e-6)
    assert max((logp - old).abs().max() for logp, old, _ in calls[first:]) > 1e-4
    # The sampler's logprobs equal the trainer's on the model's tokens (float32).
    assert metrics["sampler_logprob_gap"] < 1e-5


def grads_after_update(name, model_dir, groups, **options):
    agent = make_agent(name, model_dir, **options)
    captured = capture_update_grads(agent)
    agent.update(groups)
    return captured


@pytest.mark.parametrize("name", ["grpo", "ppo", "rloo", "reinforce_pp", "dapo"])
def test_gradient_is_invariant_to_the_micro_batch_split(game_model, name):
    groups = multiturn_groups(make_agent(name, game_model))
    whole = grads_after_update(name, game_model, groups, micro_batch_size=64)
    assert any(g.abs().max() > 0 for k, g in whole.items() if k.startswith("policy."))
    split = grads_after_update(name, game_model, groups, micro_batch_size=5)
    assert split.keys() == whole.keys()
    for key, grad in whole.items():
        assert torch.allclose(split[key], grad, atol=1e-6, rtol=1e-4), key


@pytest.mark.parametrize("name", ["grpo", "ppo", "reinforce_pp"])
def test_env_tokens_get_exactly_zero_gradient_in_the_update(game_model, monkeypatch, name):
    agent = make_agent(name, game_model, beta=0.04, micro_batch_size=64)
    groups = multiturn_groups(agent, seed=1)
    seen = []
    original = agent.token_loss

    def spy(logp, old_logp, advantages, ref_logp):
        logp.retain_grad()
        seen.append(logp)
        return original(logp, old_logp, advantages, ref_logp)

    monkeypatch.setattr(agent, "token_loss", spy)
    agent.update(groups)
    (logp,) = seen
    episodes = [e for g in groups for e in g.episodes]
    env = torch.zeros_like(logp, dtype=torch.bool)
    model = torch.zeros_like(env)
    for row, episode in enumerate(episodes):
        bits = torch.tensor(episode.loss_mask, dtype=torch.bool)
        env[row, : len(bits)] = ~bits
        model[row, : len(bits)] = bits
    assert env.sum() > 0
    assert torch.count_nonzero(logp.grad[env]) == 0
    assert torch.count_nonzero(logp.grad[model]) > 0


def test_infra_errors_are_masked_for_every_agent(game_model):
    for name in [*LEARNERS, "online_rft"]:
        agent = make_agent(name, game_model)
        groups = multiturn_groups(agent)
        groups[0].episodes[0].result = VerifyResult.infra_error("sandbox down")
        groups[0].episodes[0].reward = 0.0
        metrics = agent.update(groups)
        assert metrics["masked_infra_error"] == 1.0, name
        assert metrics["samples_trained"] == sum(len(g) for g in groups) - 1, name


def test_online_dpo_scores_a_transcript_by_its_model_tokens_only(game_model):
    agent = make_agent("online_dpo", game_model, micro_batch_size=64)
    groups = multiturn_groups(agent)
    pairs, _ = agent.make_pairs(groups)
    assert pairs
    ((chunk, batch),) = agent.pair_batches(pairs)
    rows = [e for p in chunk for e in (p.chosen, p.rejected)]
    assert any(0 in e.loss_mask for e in rows)  # env tokens are in these sequences
    from grpo_env.policy.logprobs import token_logprobs

    with torch.no_grad():
        logp, _ = token_logprobs(agent.policy.model, batch, SAMPLING.temperature)
        summed = agent.sequence_logps(batch)
    for row, episode in enumerate(rows):
        mask = torch.tensor(episode.loss_mask, dtype=torch.float32)
        expected = (logp[row, : len(mask)].float() * mask).sum()
        assert torch.allclose(summed[row], expected, atol=1e-5), row
        # ... which is not the sum over every token after the prompt.
        if 0 in episode.loss_mask:
            assert not torch.allclose(summed[row], logp[row, : len(mask)].float().sum())


def test_remax_refuses_multi_turn_envs_clearly(game_model):
    agent = make_agent("remax", game_model)
    env = guess_number_env()
    with pytest.raises(ValueError, match="single-turn environments only"):
        rollout_groups(env, agent, [env.tasks[0]], 4, tag="t")


def test_ppo_gae_runs_over_model_tokens_only():
    # Two turns of two model tokens around two env tokens: [m m e e m m].
    mask = torch.tensor([[1, 1, 0, 0, 1, 1]]).float()
    values = torch.tensor([[0.1, 0.2, 9.0, 9.0, 0.3, 0.4]])
    rewards = torch.tensor([[0.0, 0.0, 5.0, 5.0, 0.0, 1.0]])
    packed_v, packed_mask = pack_model_tokens(values, mask)
    assert packed_mask.tolist() == [[1, 1, 1, 1, 0, 0]]
    assert packed_v[0, :4].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    adv, _ = gae(pack_model_tokens(rewards, mask)[0], packed_v, packed_mask, gamma=1.0, lam=1.0)
    scattered = unpack_model_tokens(adv, mask)
    # lambda = gamma = 1: A_t = (sum of later model-token rewards) - V_t; env tokens skipped.
    expected = [1.0 - 0.1, 1.0 - 0.2, 0.0, 0.0, 1.0 - 0.3, 1.0 - 0.4]
    assert scattered[0].tolist() == pytest.approx(expected)
    # A prefix mask (single-turn) packs to itself.
    prefix = torch.tensor([[1, 1, 1, 0]]).float()
    same = torch.tensor([[1.0, 2.0, 3.0, 0.0]])
    assert torch.equal(pack_model_tokens(same, prefix)[0], same)
    assert torch.equal(unpack_model_tokens(same, prefix), same)


def test_resume_takes_the_same_next_step_on_multi_turn_episodes(tmp_path, game_model):
    import json

    from grpo_env.training.config import validate_config
    from grpo_env.training.trainer import Trainer

    def config(out, steps):
        return validate_config(
            {
                "env": "guess-number",
                "steps": steps,
                "group_size": 4,
                "prompts_per_step": 2,
                "out": str(out),
                "model": {"name": str(game_model), "lora": False},
                "generation": {"max_new_tokens": 2},
                "agent": {"name": "grpo", "lr": 1e-2, "supervision": "process"},
                "log": {"save_every": 2, "progress": False, "tensorboard": False},
            }
        )

    Trainer(config(tmp_path / "a", 3), env=guess_number_env()).run()
    Trainer(config(tmp_path / "b", 2), env=guess_number_env()).run()
    Trainer(config(tmp_path / "b", 3), resume=True, env=guess_number_env()).run()
    timing = ("seconds", "per_s", "peak_memory")

    def rows(run):
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [
            {k: v for k, v in json.loads(line).items() if not any(t in k for t in timing)}
            for line in lines
        ]

    assert rows("a") == rows("b") and rows("a")[0]["turns_mean"] > 1
