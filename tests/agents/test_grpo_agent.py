"""GRPOAgent on a tiny model: rules 1, 5, 6, 7 and 8 of DESIGN.md, through the real update."""

import functools

import pytest
import torch

import grpo_env.agents.grpo as grpo_module
from grpo_env.agents.frozen import FrozenAgent
from grpo_env.agents.grpo import GRPOAgent, GRPOConfig
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.models import load_policy
from grpo_env.testing import capture_update_grads, toy_groups
from grpo_env.types import Group, VerifyResult

SAMPLING = SamplingParams(max_new_tokens=4, temperature=1.0)


def make_agent(model_dir, *, lora=True, sampling=SAMPLING, **options):
    policy = load_policy(ModelConfig(name=str(model_dir), lora=lora))
    return GRPOAgent(policy, HFGenerator(policy), sampling, GRPOConfig(**options), total_steps=4)


groups_for = functools.partial(toy_groups, signal=False)


class Spy:
    """Records what grpo_token_loss sees on each call."""

    def __init__(self, monkeypatch):
        self.calls = []
        original = grpo_module.grpo_token_loss

        def spy(logp, old_logp, advantages, **kwargs):
            ref = kwargs.get("ref_logp")
            self.calls.append((logp.detach().clone(), old_logp.clone(), ref))
            return original(logp, old_logp, advantages, **kwargs)

        monkeypatch.setattr(grpo_module, "grpo_token_loss", spy)


@pytest.mark.parametrize("lora", [True, False])
def test_ratio_is_one_and_kl_zero_at_the_first_inner_step(toy_model, monkeypatch, lora):
    agent = make_agent(toy_model, lora=lora, beta=0.04, mu=2, micro_batch_size=5, lr=1e-2)
    groups = groups_for(agent)
    spy = Spy(monkeypatch)
    agent.update(groups)
    micro_batches = -(-sum(len(g) for g in groups) // 5)
    assert len(spy.calls) == 2 * micro_batches
    for logp, old, ref in spy.calls[:micro_batches]:  # first inner iteration
        assert torch.equal(torch.exp(logp - old), torch.ones_like(logp))  # exactly 1
        assert torch.allclose(ref, logp, atol=1e-6)  # policy == reference before any update
        kl = torch.exp(ref - logp) - (ref - logp) - 1
        assert kl.abs().max() < 1e-6
    moved = [(logp - old).abs().max() for logp, old, _ in spy.calls[micro_batches:]]
    assert max(moved) > 1e-4  # the second iteration sees the updated policy


def test_ratio_is_one_at_the_first_inner_step_of_later_updates(toy_model, monkeypatch):
    agent = make_agent(toy_model, beta=0.04, mu=1, lr=1e-2)
    agent.update(groups_for(agent, seed=1))
    spy = Spy(monkeypatch)
    metrics = agent.update(groups_for(agent, seed=2))
    for logp, old, ref in spy.calls:
        assert torch.equal(logp, old)
        assert (ref - logp).abs().max() > 1e-5  # the policy has left the reference
    assert metrics["ratio_mean"] == 1.0 and metrics["clip_ratio"] == 0.0
    assert metrics["kl"] > 0


def grads_after_update(model_dir, groups, **options):
    agent = make_agent(model_dir, lora=False, **options)
    captured = capture_update_grads(agent)
    agent.update(groups)
    return captured


@pytest.mark.parametrize("loss_agg", ["seq-mean-token-mean", "token-mean", "dr_grpo"])
def test_gradient_is_invariant_to_the_micro_batch_split(toy_model, loss_agg):
    probe = make_agent(toy_model, lora=False)
    groups = groups_for(probe, prompts=3, group_size=4)
    lengths = {len(e.completion_ids) for g in groups for e in g.episodes}
    assert len(lengths) > 1  # uneven lengths make the normaliser matter
    for group in groups:  # a random model rarely scores: give every group some signal
        for i, episode in enumerate(group.episodes):
            episode.reward = float(i % 2)
    whole = grads_after_update(toy_model, groups, loss_agg=loss_agg, micro_batch_size=64, beta=0.04)
    for size in (1, 5):
        split = grads_after_update(
            toy_model, groups, loss_agg=loss_agg, micro_batch_size=size, beta=0.04
        )
        for name, grad in whole.items():
            assert torch.allclose(split[name], grad, atol=1e-6, rtol=1e-4), (size, name)
    assert any(g.abs().max() > 0 for g in whole.values())


def test_infra_errors_are_masked_from_baseline_and_loss(toy_model):
    agent = make_agent(toy_model)
    groups = groups_for(agent)
    broken = groups[0].episodes[0]
    broken.result = VerifyResult.infra_error("sandbox down")
    broken.reward = 0.0
    adv = agent.advantages(groups)
    assert adv.values[0, 0] == 0.0
    metrics = agent.update(groups)
    assert metrics["masked_infra_error"] == 1.0
    assert metrics["samples_trained"] == sum(len(g) for g in groups) - 1


def test_truncated_completions_can_be_masked(toy_model):
    agent = make_agent(toy_model, mask_truncated=True, sampling=SamplingParams(max_new_tokens=2))
    groups = groups_for(agent)
    truncated = sum(e.truncated for g in groups for e in g.episodes)
    assert truncated > 0
    metrics = agent.update(groups)
    assert metrics["masked_truncated"] == truncated
    assert metrics["samples_trained"] == sum(len(g) for g in groups) - truncated


def test_groups_of_one_and_duplicate_ids_are_rejected(toy_model):
    agent = make_agent(toy_model)
    groups = groups_for(agent)
    lone = groups[0].episodes[0].model_copy(update={"group_id": "x"})
    single = Group(group_id="x", task_id=lone.task_id, episodes=[lone])
    with pytest.raises(ValueError, match="G >= 2"):
        agent.update([single])
    with pytest.raises(ValueError, match="twice"):
        agent.update([groups[0], groups[0]])


def test_dynamic_sampling_rejects_zero_variance_groups(toy_model):
    agent = make_agent(toy_model, dynamic_sampling=True, max_refill_rounds=2)
    plain = make_agent(toy_model)
    groups = groups_for(agent)
    for episode in groups[0].episodes:
        episode.reward = 1.0
    groups[1].episodes[0].reward = 1.0
    for episode in groups[1].episodes[1:]:
        episode.reward = 0.0
    assert not agent.keep_group(groups[0]) and agent.keep_group(groups[1])
    assert plain.keep_group(groups[0])
    assert agent.refill_rounds == 2 and plain.refill_rounds == 0


def test_update_moves_weights_and_frozen_does_not(toy_model):
    agent = make_agent(toy_model, lora=False, lr=1e-2)
    before = {n: p.clone() for n, p in agent.policy.model.named_parameters()}
    metrics = agent.update(groups_for(agent))
    assert metrics["grad_norm"] > 0
    assert any(not torch.equal(before[n], p) for n, p in agent.policy.model.named_parameters())

    policy = load_policy(ModelConfig(name=str(toy_model), lora=False))
    frozen = FrozenAgent(policy, HFGenerator(policy), SAMPLING)
    before = {n: p.clone() for n, p in policy.model.named_parameters()}
    frozen.update(groups_for(frozen))
    assert all(torch.equal(before[n], p) for n, p in policy.model.named_parameters())


def test_beta_zero_loads_no_reference(toy_model):
    assert make_agent(toy_model, beta=0.0, lora=False).reference is None
    full = make_agent(toy_model, beta=0.1, lora=False)
    assert full.reference is not None and full.reference.frozen is not None
    lora = make_agent(toy_model, beta=0.1, lora=True)
    assert lora.reference is not None and lora.reference.frozen is None  # adapters disabled


def test_greedy_sampling_is_refused_for_training(toy_model):
    with pytest.raises(ValueError, match="temperature"):
        make_agent(toy_model, sampling=SamplingParams(temperature=0.0))
