"""Online RFT, offline RFT, online DPO and ReMax on a tiny model: each one's equations by hand
through its real update, micro-batch invariance, infra-error masking, the greedy sample the
rollout attaches for ReMax, and every one of them through the trainer."""

import functools
import json
import math

import pytest
import torch

from grpo_env.agents.advantages import greedy_baseline_advantages, rejection_mask
from grpo_env.agents.losses import dpo_loss, likelihood_token_loss
from grpo_env.agents.online_dpo import preference_pairs
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.logprobs import pack_sequences, token_logprobs
from grpo_env.policy.models import load_policy
from grpo_env.registry import agents as registry
from grpo_env.testing import capture_update_grads, next_digit_env, toy_groups
from grpo_env.training.config import validate_config
from grpo_env.training.rollout import rollout_groups
from grpo_env.training.trainer import Trainer
from grpo_env.types import VerifyResult

SAMPLING = SamplingParams(max_new_tokens=4, temperature=1.0)
NEW = ["online_rft", "rft", "online_dpo", "remax"]


def make_agent(name, model_dir, *, lora=True, sampling=SAMPLING, total_steps=4, **options):
    policy = load_policy(ModelConfig(name=str(model_dir), lora=lora))
    factory = registry.resolve(name).load()
    config = factory.Config(**options)
    return factory(policy, HFGenerator(policy), sampling, config, total_steps=total_steps)


groups_for = functools.partial(toy_groups, greedy_signal=True)


def sequence_terms(model, episodes, temperature=1.0):
    """Per-token logprobs ``[N, C]`` and the completion mask of ``episodes``, with gradients."""
    batch = pack_sequences(
        [e.prompt_ids for e in episodes], [e.completion_ids for e in episodes], pad_id=0
    )
    logp, _ = token_logprobs(model, batch, temperature)
    return logp, batch.completion_mask


def grads_of(model, loss):
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
    # Keyed like capture_update_grads: the policy's parameters under "policy.".
    return {f"policy.{n}": g for (n, _), g in zip(params, grads, strict=True) if g is not None}


def assert_same_grads(actual, expected):
    assert expected and actual.keys() >= expected.keys()
    for name, grad in expected.items():
        assert torch.allclose(actual[name], grad, atol=1e-6, rtol=1e-4), name
    assert any(g.abs().max() > 0 for g in expected.values())


def test_the_new_agents_are_registered_with_a_description():
    specs = {spec.id: spec for spec in registry.specs()}
    for name in NEW:
        assert specs[name].description and specs[name].source == "built-in"
        assert hasattr(specs[name].load(), "Config")


# ----- pure functions, by hand --------------------------------------------------------------


def test_rejection_mask_keeps_by_threshold_or_the_groups_best():
    rewards = torch.tensor([[1.0, 0.5, 1.0, 0.0], [0.5, 0.2, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    valid = torch.tensor([[False, True, True, True], [True] * 4, [True] * 4])
    kept = rejection_mask(rewards, valid, keep="threshold", threshold=1.0)
    assert kept.tolist() == [[False, False, True, False], [False] * 4, [False] * 4]
    best = rejection_mask(rewards, valid, keep="best", threshold=0.3)
    assert best.tolist() == [[False, False, True, False], [True, False, True, False], [False] * 4]
    assert rejection_mask(rewards, keep="best", threshold=-1.0)[2].all()  # ties all kept


def test_likelihood_loss_is_the_coefficient_weighted_nll():
    logp = torch.tensor([[-0.5, -1.0], [-2.0, -0.1]], requires_grad=True)
    loss, terms, kl = likelihood_token_loss(logp, logp.detach(), torch.tensor([1.0, 0.0]))
    assert loss.tolist() == [[0.5, 1.0], [0.0, 0.0]] and kl is None
    assert torch.equal(terms.ratio, torch.ones_like(logp)) and not terms.clipped_low.any()


def test_dpo_loss_by_hand():
    c, r = torch.tensor([-3.0, -1.0]), torch.tensor([-4.0, -1.5])
    cr, rr = torch.tensor([-3.5, -1.0]), torch.tensor([-3.0, -1.0])
    loss, chosen, rejected = dpo_loss(c, r, cr, rr, beta=0.5)
    h = [(-3.0 + 3.5) - (-4.0 + 3.0), (-1.0 + 1.0) - (-1.5 + 1.0)]  # [1.5, 0.5]
    expected = [math.log1p(math.exp(-0.5 * x)) for x in h]
    assert loss.tolist() == pytest.approx(expected, rel=1e-6)
    assert chosen.tolist() == pytest.approx([0.25, 0.0]) and rejected.tolist() == [-0.5, -0.25]
    ipo, _, _ = dpo_loss(c, r, cr, rr, beta=0.5, loss_type="ipo")
    assert ipo.tolist() == pytest.approx([(x - 1.0) ** 2 for x in h])


def test_preference_pairs_rules():
    rewards = [0.0, 1.0, 0.5, 1.0, 0.0]
    valid = [True] * 5
    assert preference_pairs(rewards, valid) == [(1, 0)]  # first best vs first worst
    assert preference_pairs(rewards, [True, False, True, True, False]) == [(3, 0)]
    assert preference_pairs([0.5] * 4, [True] * 4) == []  # all equal: no pair
    assert preference_pairs([1.0, 0.0], [True, False]) == []  # one valid sample: no pair
    every = preference_pairs(rewards, valid, "all")
    assert every == [(1, 0), (1, 2), (1, 4), (2, 0), (2, 4), (3, 0), (3, 2), (3, 4)]
    assert preference_pairs(rewards, valid, "all", cap=3) == every[:3]


def test_greedy_baseline_advantages_by_hand():
    adv = greedy_baseline_advantages(torch.tensor([[1.0, 0.0], [0.5, 1.0]]), torch.tensor([1, 0.5]))
    assert adv.tolist() == [[0.0, -1.0], [0.0, 0.5]]


# ----- online RFT and ReMax: the equations through the real update --------------------------


def expected_pg_grads(agent, groups, coefficient):
    """-(1/N) sum_i c_i 1/|o_i| sum_t grad log pi(o_i,t): DeepSeekMath's unified gradient with
    seq-mean-token-mean aggregation, ``coefficient(group, index, episode)`` the GC."""
    samples, _ = agent.training_samples(groups)
    episodes = [s.episode for s in samples]
    coef = torch.tensor([coefficient(groups[s.group], s.index, s.episode) for s in samples])
    logp, mask = sequence_terms(agent.policy.model, episodes, agent.sampling.temperature)
    per_sequence = (logp * mask).sum(dim=1) / mask.sum(dim=1)
    return grads_of(agent.policy.model, -(coef * per_sequence).sum() / len(episodes))


def test_online_rft_gradient_is_the_likelihood_of_the_kept_samples(toy_model):
    agent = make_agent("online_rft", toy_model, lora=False, micro_batch_size=5)
    groups = groups_for(agent)
    expected = expected_pg_grads(agent, groups, lambda g, i, e: float(e.reward >= 1.0))
    captured = capture_update_grads(agent)
    metrics = agent.update(groups)
    assert_same_grads(captured, expected)
    assert metrics["samples_kept"] == sum(e.reward >= 1 for g in groups for e in g.episodes)
    assert agent.reference is None  # no KL, no reference


def test_remax_gradient_uses_the_greedy_reward_as_baseline(toy_model):
    agent = make_agent("remax", toy_model, lora=False, micro_batch_size=5)
    groups = groups_for(agent)
    expected = expected_pg_grads(agent, groups, lambda g, i, e: e.reward - g.greedy.reward)
    captured = capture_update_grads(agent)
    metrics = agent.update(groups)
    assert_same_grads(captured, expected)
    assert metrics["greedy_reward_mean"] == pytest.approx(0.5)


# ----- online DPO: the equations through the real update ------------------------------------


def test_online_dpo_first_step_loss_is_log2(toy_model):
    agent = make_agent("online_dpo", toy_model, lora=True)
    assert agent.reference is not None and agent.reference.frozen is None  # adapters disabled
    metrics = agent.update(groups_for(agent))
    assert metrics["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert metrics["rewards/margins"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["pairs"] == 4 and metrics["frac_no_pair"] == 0.0


def test_online_dpo_gradient_by_hand(toy_model):
    agent = make_agent("online_dpo", toy_model, lora=False, beta=0.5, micro_batch_size=3)
    assert agent.reference.frozen is not None  # full fine-tuning: a frozen copy
    with torch.no_grad():  # move the policy off the reference, so every term matters
        gen = torch.Generator().manual_seed(0)
        for param in agent.policy.model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    groups = groups_for(agent)
    chosen, rejected = [], []
    for group in groups:
        rewards = group.rewards
        chosen.append(group.episodes[rewards.index(max(rewards))])
        rejected.append(group.episodes[rewards.index(min(rewards))])
    logp_c, mask_c = sequence_terms(agent.policy.model, chosen)
    logp_r, mask_r = sequence_terms(agent.policy.model, rejected)
    with torch.no_grad():
        ref_c, _ = sequence_terms(agent.reference.frozen, chosen)
        ref_r, _ = sequence_terms(agent.reference.frozen, rejected)
    c, r = (logp_c * mask_c).sum(1), (logp_r * mask_r).sum(1)
    h = (c - (ref_c * mask_c).sum(1)) - (r - (ref_r * mask_r).sum(1))
    loss = -torch.nn.functional.logsigmoid(0.5 * h).mean()
    expected = grads_of(agent.policy.model, loss)
    captured = capture_update_grads(agent)
    metrics = agent.update(groups)
    assert_same_grads(captured, expected)
    assert metrics["loss"] == pytest.approx(float(loss.detach()), rel=1e-5)


def test_online_dpo_counts_groups_without_a_pair(toy_model):
    agent = make_agent("online_dpo", toy_model)
    groups = groups_for(agent)
    for episode in groups[0].episodes:
        episode.reward = 1.0
    metrics = agent.update(groups)
    assert metrics["pairs"] == 3 and metrics["frac_no_pair"] == 0.25
    for group in groups:
        for episode in group.episodes:
            episode.reward = 0.0
    empty = agent.update(groups)
    assert empty["pairs"] == 0 and empty["frac_no_pair"] == 1.0 and "loss" not in empty


# ----- rules every agent keeps --------------------------------------------------------------


def grads_after_update(name, model_dir, groups, **options):
    agent = make_agent(name, model_dir, lora=False, **options)
    captured = capture_update_grads(agent)
    agent.update(groups)
    return captured


@pytest.mark.parametrize("name", ["online_rft", "online_dpo", "remax"])
def test_gradient_is_invariant_to_the_micro_batch_split(toy_model, name):
    probe = make_agent(name, toy_model, lora=False)
    groups = groups_for(probe, prompts=3, group_size=4)
    assert len({len(e.completion_ids) for g in groups for e in g.episodes}) > 1
    whole = grads_after_update(name, toy_model, groups, micro_batch_size=64)
    assert any(g.abs().max() > 0 for g in whole.values())
    for size in (1, 3, 5):
        split = grads_after_update(name, toy_model, groups, micro_batch_size=size)
        assert split.keys() == whole.keys()
        for key, grad in whole.items():
            assert torch.allclose(split[key], grad, atol=1e-6, rtol=1e-4), (size, key)


@pytest.mark.parametrize("name", NEW)
def test_infra_errors_are_masked(toy_model, name):
    agent = make_agent(name, toy_model, total_steps=1)
    groups = groups_for(agent)
    broken = groups[0].episodes[0]  # reward 1 in the signal pattern: the best of its group
    broken.result, broken.reward = VerifyResult.infra_error("sandbox down"), 0.0
    metrics = agent.update(groups)
    assert metrics["masked_infra_error"] == 1.0
    total = sum(len(g) for g in groups)
    if name in ("online_rft", "remax"):
        assert metrics["samples_trained"] == total - 1
    if name == "online_dpo":
        pairs, _ = agent.make_pairs(groups)
        assert all(broken not in (p.chosen, p.rejected) for p in pairs) and len(pairs) == 4
    if name == "rft":  # never kept: 7 of the 8 reward-1 samples
        assert metrics["samples_kept"] == 7.0


def test_remax_masks_a_group_whose_greedy_sample_failed(toy_model):
    agent = make_agent("remax", toy_model)
    groups = groups_for(agent)
    groups[1].greedy.result = VerifyResult.infra_error("checker crashed")
    groups[1].greedy.reward = 0.0
    metrics = agent.update(groups)
    assert metrics["groups_masked_greedy_infra_error"] == 1.0
    assert metrics["samples_trained"] == sum(len(g) for g in groups) - len(groups[1])
    no_greedy = groups_for(agent)
    no_greedy[0].greedy = None
    with pytest.raises(ValueError, match="greedy"):
        agent.update(no_greedy)


# ----- ReMax's greedy sample: the rollout's hook --------------------------------------------


def test_rollout_attaches_a_greedy_sample_without_moving_the_samples(toy_model):
    remax = make_agent("remax", toy_model)
    grpo = make_agent("grpo", toy_model)
    with_greedy = groups_for(remax, signal=False)
    plain = groups_for(grpo, signal=False)
    assert all(g.greedy is None for g in plain)
    for a, b in zip(with_greedy, plain, strict=True):
        assert [e.completion for e in a.episodes] == [e.completion for e in b.episodes]
        assert a.greedy is not None and a.greedy.group_id == a.group_id
        observation = a.greedy.prompt
        again = remax.act_greedy([observation])[0]  # greedy: the same completion every time
        assert a.greedy.completion_ids == again.token_ids
        task = next(t for t in next_digit_env().tasks if t.id == a.task_id)
        assert a.greedy.reward == (1.0 if again.text.strip()[:1] == task.answer else 0.0)
    env = next_digit_env()
    seeded = rollout_groups(env, remax, env.tasks[:2], 3, tag="s", seeds=[1, 2])
    assert all(g.greedy is not None and len(g) == 3 for g in seeded)


# ----- offline RFT --------------------------------------------------------------------------


def test_rft_collects_from_the_initial_policy_then_trains_epochs(tmp_path, toy_model):
    agent = make_agent("rft", toy_model, total_steps=4, collect_steps=3, epochs=2)
    weights = lambda: {n: p.clone() for n, p in agent.policy.model.named_parameters()}  # noqa: E731
    start = weights()
    for step in (1, 2):
        metrics = agent.update(groups_for(agent, seed=step))
        assert metrics["samples_trained"] == 0.0 and metrics["samples_kept"] == 8.0
        assert all(torch.equal(start[n], p) for n, p in weights().items())
    agent.save(tmp_path / "ckpt")
    resumed = make_agent("rft", toy_model, total_steps=4, collect_steps=3, epochs=2)
    resumed.load(tmp_path / "ckpt")
    assert resumed.updates_seen == 2
    assert [[e.completion for e in s] for s in resumed.stored] == [
        [e.completion for e in s] for s in agent.stored
    ]
    metrics = agent.update(groups_for(agent, seed=3))
    assert metrics["rft_optimizer_steps"] == 6.0  # 2 epochs x 3 collected steps
    assert metrics["samples_trained"] == 2 * 24.0
    trained = weights()
    assert any(not torch.equal(start[n], p) for n, p in trained.items())
    after = agent.update(groups_for(agent, seed=4))  # the budget is spent: no more learning
    assert after["samples_trained"] == 0.0
    assert all(torch.equal(trained[n], p) for n, p in weights().items())


# ----- through the trainer ------------------------------------------------------------------


def test_every_new_agent_runs_in_the_trainer_on_the_same_first_batch(tmp_path, toy_model):
    first, generated = {}, {}
    for name in ["grpo", *NEW]:
        config = validate_config(
            {
                "env": "toy",
                "steps": 2,
                "group_size": 4,
                "prompts_per_step": 3,
                "seed": 5,
                "out": str(tmp_path / name),
                "model": {"name": str(toy_model)},
                "generation": {"max_new_tokens": 3},
                "agent": {"name": name, "lr": 1e-2},
                "log": {"sample_groups": 3, "progress": False, "tensorboard": False},
            }
        )
        Trainer(config, env=next_digit_env()).run()
        rows = (tmp_path / name / "samples.jsonl").read_text().splitlines()
        first[name] = [(r["task_id"], r["completion"]) for r in map(json.loads, rows[:12])]
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        generated[name] = [json.loads(line)["samples_generated"] for line in lines]
    assert all(samples == first["grpo"] for samples in first.values()), first
    assert generated["remax"] == [15.0, 15.0]  # 3 prompts x (4 samples + 1 greedy)
    assert all(generated[name] == [12.0, 12.0] for name in ["grpo", "online_rft", "online_dpo"])
