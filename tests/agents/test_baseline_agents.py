"""The baseline agents on a tiny model: each one's equations through its real update, the
correctness rules every agent keeps (ratio 1 and KL 0 at the first step, micro-batch
invariance), PPO's critic and the frozen control."""

import json
import math

import pytest
import torch

from grpo_env.agents.advantages import (
    discounted_returns,
    gae,
    group_advantages,
    leave_one_out_advantages,
    token_rewards,
    whiten,
)
from grpo_env.agents.critic import ValueModel, decoder_of
from grpo_env.agents.dapo import DAPOConfig
from grpo_env.agents.dr_grpo import DrGRPOConfig
from grpo_env.agents.frozen import FrozenAgent
from grpo_env.agents.grpo import GRPOAgent
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.models import load_policy
from grpo_env.registry import agents as registry
from grpo_env.strict_model import ConfigError
from grpo_env.testing import capture_update_grads, next_digit_env, toy_groups
from grpo_env.training.config import validate_config
from grpo_env.training.trainer import Trainer

SAMPLING = SamplingParams(max_new_tokens=4, temperature=1.0)
LEARNERS = ["grpo", "ppo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "dr_grpo", "dapo"]
LEARNERS += ["online_rft", "remax"]  # the shared update, with their own coefficients


def make_agent(name, model_dir, *, lora=True, sampling=SAMPLING, **options):
    policy = load_policy(ModelConfig(name=str(model_dir), lora=lora))
    factory = registry.resolve(name).load()
    return factory(policy, HFGenerator(policy), sampling, factory.Config(**options), total_steps=4)


groups_for = toy_groups


def test_every_agent_is_registered_with_a_description():
    specs = {spec.id: spec for spec in registry.specs()}
    for name in [*LEARNERS, "frozen"]:
        assert specs[name].description and specs[name].source == "built-in"
        assert hasattr(specs[name].load(), "Config")


# ----- correctness rules every learning agent keeps -----------------------------------------


class LossSpy:
    """Records what an agent's per-token loss sees: logp, pi_old, pi_ref, advantages."""

    def __init__(self, agent, monkeypatch):
        self.calls = []
        original = agent.token_loss

        def spy(logp, old_logp, advantages, ref_logp):
            self.calls.append((logp.detach().clone(), old_logp.clone(), ref_logp, advantages))
            return original(logp, old_logp, advantages, ref_logp)

        monkeypatch.setattr(agent, "token_loss", spy)


@pytest.mark.parametrize("lora", [True, False])
@pytest.mark.parametrize("name", LEARNERS)
def test_ratio_is_one_and_kl_zero_at_the_first_inner_step(toy_model, monkeypatch, name, lora):
    agent = make_agent(name, toy_model, lora=lora, beta=0.04, mu=2, micro_batch_size=5, lr=1e-2)
    groups = groups_for(agent)
    spy = LossSpy(agent, monkeypatch)
    metrics = agent.update(groups)
    first = -(-int(metrics["samples_trained"]) // 5)
    assert len(spy.calls) == 2 * first
    for logp, old, ref, _ in spy.calls[:first]:
        assert torch.equal(torch.exp(logp - old), torch.ones_like(logp))  # exactly 1
        assert ref is not None and torch.allclose(ref, logp, atol=1e-6)  # policy == reference
    moved = [(logp - old).abs().max() for logp, old, _, _ in spy.calls[first:]]
    assert max(moved) > 1e-4  # the second iteration sees the updated policy
    assert math.isfinite(metrics["loss"])


def grads_after_update(name, model_dir, groups, **options):
    agent = make_agent(name, model_dir, lora=False, **options)
    captured = capture_update_grads(agent)
    agent.update(groups)
    return captured


@pytest.mark.parametrize("name", ["ppo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "dapo"])
def test_gradient_is_invariant_to_the_micro_batch_split(toy_model, name):
    # Batch-wide advantages (whitening, group baselines) are computed before the split.
    probe = make_agent(name, toy_model, lora=False)
    groups = groups_for(probe, prompts=3, group_size=4)
    assert len({len(e.completion_ids) for g in groups for e in g.episodes}) > 1
    whole = grads_after_update(name, toy_model, groups, micro_batch_size=64)
    assert any(g.abs().max() > 0 for k, g in whole.items() if k.startswith("policy."))
    if name == "ppo":
        assert any(k.startswith("critic.") for k in whole)
    for size in (1, 5):
        split = grads_after_update(name, toy_model, groups, micro_batch_size=size)
        assert split.keys() == whole.keys()
        for key, grad in whole.items():
            assert torch.allclose(split[key], grad, atol=1e-6, rtol=1e-4), (size, key)


def test_infra_errors_are_masked_for_every_agent(toy_model):
    from grpo_env.types import VerifyResult

    for name in LEARNERS:
        agent = make_agent(name, toy_model)
        groups = groups_for(agent)
        groups[0].episodes[0].result = VerifyResult.infra_error("sandbox down")
        groups[0].episodes[0].reward = 0.0
        metrics = agent.update(groups)
        assert metrics["masked_infra_error"] == 1.0, name
        assert metrics["samples_trained"] == sum(len(g) for g in groups) - 1, name


# ----- each agent's advantages, by hand -----------------------------------------------------


def prepared(agent, groups, policy_logp=None, ref_logp=None):
    """The agent's rollout of ``groups``, with chosen old/reference logprobs."""
    samples, _ = agent.training_samples(groups)
    rollout = agent.prepare(groups, samples)
    if policy_logp is not None:
        rollout.policy_logp = policy_logp * rollout.mask
        rollout.ref_logp = ref_logp * rollout.mask
    return rollout


def logprob_pair(rollout, seed=3):
    gen = torch.Generator().manual_seed(seed)
    shape = rollout.mask.shape
    return -torch.rand(shape, generator=gen), -torch.rand(shape, generator=gen)


def test_rloo_advantages_are_leave_one_out_of_the_kl_penalised_reward(toy_model):
    agent = make_agent("rloo", toy_model, beta=0.1)
    groups = groups_for(agent, prompts=2, group_size=4)
    rollout = prepared(agent, groups)
    old, ref = logprob_pair(rollout)
    rollout.policy_logp, rollout.ref_logp = old * rollout.mask, ref * rollout.mask
    values, metrics = agent.sample_advantages(rollout)
    penalised = rollout.scores - 0.1 * ((old - ref) * rollout.mask).sum(dim=1)
    expected = leave_one_out_advantages(penalised.view(2, 4)).values.flatten()
    assert torch.allclose(values, expected, atol=1e-6)
    penalty = float(0.1 * ((old - ref) * rollout.mask).sum() / 8)
    assert metrics["kl_penalty"] == pytest.approx(penalty, rel=1e-5)


def test_reinforce_pp_advantages_are_globally_whitened_token_returns(toy_model):
    agent = make_agent("reinforce_pp", toy_model, beta=0.2)
    rollout = prepared(agent, groups_for(agent, prompts=2, group_size=4))
    old, ref = logprob_pair(rollout)
    rollout.policy_logp, rollout.ref_logp = old * rollout.mask, ref * rollout.mask
    values, _ = agent.sample_advantages(rollout)
    mask = rollout.mask
    rewards = token_rewards(rollout.scores, (old - ref) * mask, mask, 0.2)
    expected = whiten(discounted_returns(rewards, mask), mask)
    assert torch.allclose(values, expected, atol=1e-6)
    kept = values[mask.bool()]
    assert float(kept.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(kept.std()) == pytest.approx(1.0, abs=1e-3)


def test_reinforce_pp_baseline_subtracts_the_group_mean_then_whitens(toy_model):
    agent = make_agent("reinforce_pp_baseline", toy_model)
    rollout = prepared(agent, groups_for(agent, prompts=2, group_size=4))
    values, _ = agent.sample_advantages(rollout)
    centred = group_advantages(rollout.scores.view(2, 4), scale="none").values.flatten()
    expected = whiten(centred[:, None] * rollout.mask, rollout.mask)
    assert torch.allclose(values, expected, atol=1e-6)
    assert agent.kl_in == "loss" and agent.kl_estimator == "k2"


def test_ppo_advantages_are_whitened_gae_of_the_kl_penalised_token_rewards(toy_model):
    agent = make_agent("ppo", toy_model, beta=0.1, gamma=0.9, lam=0.8)
    rollout = prepared(agent, groups_for(agent, prompts=2, group_size=3))
    assert torch.equal(rollout.extras["values"], torch.zeros_like(rollout.mask))  # head at 0
    values_in = torch.rand(rollout.mask.shape, generator=torch.Generator().manual_seed(1))
    rollout.extras["values"] = values_in * rollout.mask
    old, ref = logprob_pair(rollout)
    rollout.policy_logp, rollout.ref_logp = old * rollout.mask, ref * rollout.mask
    values, _ = agent.sample_advantages(rollout)
    mask = rollout.mask
    rewards = token_rewards(rollout.scores, (old - ref) * mask, mask, 0.1)
    adv, returns = gae(rewards, values_in * mask, mask, gamma=0.9, lam=0.8)
    assert torch.allclose(values, whiten(adv, mask), atol=1e-6)
    assert torch.allclose(rollout.extras["returns"], returns, atol=1e-6)


def test_dapo_shapes_overlong_rewards_and_keeps_only_groups_with_signal(toy_model):
    agent = make_agent("dapo", toy_model, sampling=SamplingParams(max_new_tokens=10))
    assert agent.overlong_buffer == 2  # a fifth of the budget
    groups = groups_for(agent, prompts=1, group_size=4)
    lengths = [1, 8, 9, 10]
    for episode, length in zip(groups[0].episodes, lengths, strict=True):
        episode.completion_ids = [5] * length
        episode.reward = 1.0
    rewards, _ = agent.group_rewards(groups)
    assert rewards[0].tolist() == pytest.approx([1.0, 1.0, 0.5, 0.0])
    assert not agent.keep_group(groups[0])  # the verifier's rewards are all equal
    assert agent.refill_rounds == 4


def test_presets_carry_their_papers_defaults_and_stay_tunable():
    dr = DrGRPOConfig()
    assert (dr.scale_rewards, dr.loss_agg, dr.beta) == ("none", "dr_grpo", 0.0)
    dapo = DAPOConfig()
    assert (dapo.epsilon_low, dapo.epsilon_high, dapo.loss_agg) == (0.2, 0.28, "token-mean")
    assert dapo.dynamic_sampling and dapo.beta == 0.0 and dapo.overlong_penalty == 1.0
    assert DAPOConfig(epsilon_high=0.3).epsilon_high == 0.3
    with pytest.raises(ValueError):
        DrGRPOConfig(scale_rewards="global")


def test_agents_without_kl_load_no_reference(toy_model):
    for name in ("dr_grpo", "dapo"):
        assert make_agent(name, toy_model, lora=False).reference is None
    assert make_agent("ppo", toy_model, lora=False, beta=0.0).reference is None


# ----- PPO's critic -------------------------------------------------------------------------


def storage(module):
    return {p.untyped_storage().data_ptr() for p in module.parameters()}


@pytest.mark.parametrize("lora", [True, False])
def test_ppo_critic_is_a_separate_copy_of_the_network(toy_model, lora):
    agent = make_agent("ppo", toy_model, lora=lora)
    critic, policy = agent.critic, agent.policy.model
    assert isinstance(critic, ValueModel)
    assert not storage(critic) & storage(policy)  # its own memory, nothing shared
    body = decoder_of(policy)
    assert sum(p.numel() for p in critic.body.parameters()) == sum(
        p.numel() for p in body.parameters()
    )
    hidden = body.config.hidden_size
    assert critic.head.weight.shape == (1, hidden)
    trainable = {n for n, p in critic.named_parameters() if p.requires_grad}
    assert {"head.weight", "head.bias"} <= trainable
    if lora:  # its own adapters on its own frozen base copy
        assert all("lora_" in n for n in trainable - {"head.weight", "head.bias"})
        assert any(not p.requires_grad for p in critic.body.parameters())
    else:
        assert all(p.requires_grad for p in critic.parameters())


@pytest.mark.parametrize("lora", [True, False])
def test_critic_values_are_the_same_with_shared_prompts(toy_model, lora):
    agent = make_agent("ppo", toy_model, lora=lora)
    torch.nn.init.normal_(agent.critic.head.weight, generator=torch.Generator().manual_seed(0))
    batch = prepared(agent, groups_for(agent)).batches[0]
    assert len(batch.prompt_ids) < len(batch.completion_ids)  # prompts really are shared
    mask = batch.completion_mask
    shared = agent.critic.values(batch, share_prompts=True)
    flat = agent.critic.values(batch, share_prompts=False)
    assert shared.shape == mask.shape and shared.abs().max() > 0
    assert torch.allclose(shared * mask, flat * mask, atol=1e-5)


def test_ppo_critic_learns_the_returns(toy_model):
    agent = make_agent("ppo", toy_model, lr=1e-2, mu=4, value_clip=None)
    groups = groups_for(agent, prompts=4, group_size=6)
    losses = [agent.update(groups)["value_loss"] for _ in range(4)]
    assert losses[-1] < 0.5 * losses[0], losses


def test_ppo_resume_restores_the_critic_exactly(tmp_path, toy_model):
    def config(out, save_every):
        return validate_config(
            {
                "env": "toy",
                "steps": 4,
                "group_size": 4,
                "prompts_per_step": 3,
                "out": str(out),
                "model": {"name": str(toy_model), "lora": True},
                "generation": {"max_new_tokens": 3},
                "agent": {"name": "ppo", "lr": 1e-2, "mu": 2},
                "log": {"save_every": save_every, "progress": False, "tensorboard": False},
            }
        )

    Trainer(config(tmp_path / "a", 2), env=next_digit_env()).run()
    trainer = Trainer(config(tmp_path / "b", 2), env=next_digit_env())
    trainer.config.steps = 2
    trainer.run()
    resumed = config(tmp_path / "b", 2)
    Trainer(resumed, resume=True, env=next_digit_env()).run()
    timing = ("seconds", "per_s", "peak_memory")

    def rows(run):
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [
            {k: v for k, v in json.loads(line).items() if not any(t in k for t in timing)}
            for line in lines
        ]

    assert rows("a") == rows("b")
    from safetensors.torch import load_file

    final = "checkpoints/step-000004/critic.safetensors"
    a, b = load_file(tmp_path / "a" / final), load_file(tmp_path / "b" / final)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ppo_refuses_a_checkpoint_without_a_critic(tmp_path, toy_model):
    grpo = make_agent("grpo", toy_model)
    grpo.save(tmp_path)
    ppo = make_agent("ppo", toy_model)
    with pytest.raises(FileNotFoundError, match="no PPO critic"):
        ppo.load(tmp_path)


# ----- the frozen control -------------------------------------------------------------------


def test_frozen_agent_has_no_gradients_no_knobs_and_a_pointer_checkpoint(tmp_path, toy_model):
    policy = load_policy(ModelConfig(name=str(toy_model), lora=True))
    frozen = FrozenAgent(policy, HFGenerator(policy), SAMPLING)
    assert not any(p.requires_grad for p in policy.model.parameters())
    before = {n: p.clone() for n, p in policy.model.named_parameters()}
    metrics = frozen.update(groups_for(frozen))
    assert metrics["samples_trained"] == 0.0 and "frac_zero_std" in metrics
    assert all(torch.equal(before[n], p) for n, p in policy.model.named_parameters())
    frozen.save(tmp_path / "ckpt")
    pointer = json.loads((tmp_path / "ckpt" / "policy" / "policy.json").read_text())
    assert pointer == {"source": str(toy_model), "lora": False, "frozen": True}
    frozen.load(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="Extra inputs"):  # no knobs at all
        FrozenAgent(policy, HFGenerator(policy), SAMPLING, {"lr": 1e-3})
    other = tmp_path / "other"
    GRPOAgent(load_policy(ModelConfig(name=str(toy_model))), HFGenerator(policy), SAMPLING).save(
        other
    )
    with pytest.raises(ValueError, match="not written by the frozen agent"):
        frozen.load(other)


def test_unknown_agent_options_name_the_valid_ones(tmp_path, toy_model):
    config = validate_config(
        {
            "env": "toy",
            "out": str(tmp_path / "run"),
            "model": {"name": str(toy_model)},
            "agent": {"name": "ppo", "lambda": 0.9},
        }
    )
    with pytest.raises(ConfigError, match=r"valid keys: .*lam"):
        Trainer(config, env=next_digit_env())


def test_every_agent_draws_the_same_first_batch(tmp_path, toy_model):
    """Fair comparisons: building an agent (critic, reference...) must not move the RNG, so
    with one seed every agent samples the very same completions of the same tasks first."""
    first = {}
    for name in [*LEARNERS, "frozen"]:
        config = validate_config(
            {
                "env": "toy",
                "steps": 1,
                "group_size": 4,
                "prompts_per_step": 3,
                "seed": 5,
                "out": str(tmp_path / name),
                "model": {"name": str(toy_model)},
                "generation": {"max_new_tokens": 3},
                "agent": {"name": name},
                "log": {"sample_groups": 3, "progress": False, "tensorboard": False},
            }
        )
        Trainer(config, env=next_digit_env()).run()
        lines = (tmp_path / name / "samples.jsonl").read_text().splitlines()
        first[name] = [(row["task_id"], row["completion"]) for row in map(json.loads, lines)]
    assert len(first["grpo"]) == 12
    assert all(samples == first["grpo"] for samples in first.values()), first
