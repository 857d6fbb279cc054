"""The baselines' advantage estimators and losses against hand computations."""

import math

import pytest
import torch

from grpo_env.agents.advantages import (
    STD_EPS,
    discounted_returns,
    gae,
    leave_one_out_advantages,
    overlong_penalty,
    token_rewards,
    whiten,
)
from grpo_env.agents.losses import clipped_value_loss, k1_kl, k2_kl, policy_token_loss


def approx(values, expected, tol=1e-6):
    expected = torch.as_tensor(expected, dtype=torch.float64)
    assert torch.allclose(values.double(), expected, atol=tol), values


# ----- RLOO ---------------------------------------------------------------------------------


def test_leave_one_out_baseline_by_hand():
    # group 1: rewards 1, 0, 0, 1 -> A_0 = 1 - (0 + 0 + 1) / 3 = 2/3, A_1 = 0 - 2/3 = -2/3
    # group 2: rewards 0.5, 0.2, 0.2 -> A_0 = 0.5 - 0.2 = 0.3, A_1 = 0.2 - 0.35 = -0.15
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.2, 0.2, 0.0]])
    valid = torch.tensor([[True, True, True, True], [True, True, True, False]])
    adv = leave_one_out_advantages(rewards, valid)
    approx(adv.values, [[2 / 3, -2 / 3, -2 / 3, 2 / 3], [0.3, -0.15, -0.15, 0.0]])
    assert adv.zero_std.tolist() == [False, False]


def test_leave_one_out_is_k_over_k_minus_one_times_the_centred_reward():
    rewards = torch.tensor([[0.3, 0.9, 0.1, 0.4, 0.8]])
    loo = leave_one_out_advantages(rewards).values
    approx(loo, (5 / 4) * (rewards - rewards.mean()))


def test_leave_one_out_zero_variance_and_degenerate_groups_give_zero():
    adv = leave_one_out_advantages(
        torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]),
        torch.tensor([[True, True, True], [True, False, False]]),
    )
    assert torch.equal(adv.values, torch.zeros(2, 3))
    assert adv.zero_std.tolist() == [True, False]
    assert adv.degenerate.tolist() == [False, True]


# ----- REINFORCE++ and PPO: token rewards, returns, whitening, GAE --------------------------


def test_token_rewards_put_the_score_on_the_last_token_and_the_kl_on_each():
    scores = torch.tensor([1.0, 0.0])
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = token_rewards(scores, kl, mask, beta=0.5)
    approx(rewards, [[-0.05, -0.1, -0.15 + 1.0], [-0.2, -0.25, 0.0]])
    approx(token_rewards(scores, None, mask, beta=0.5), [[0, 0, 1.0], [0, 0, 0]])


def test_discounted_returns_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    approx(discounted_returns(rewards, mask), [[6.0, 5.0, 3.0], [9.0, 5.0, 0.0]])
    # gamma 0.5: G_1 = 2 + 0.5 * 3 = 3.5, G_0 = 1 + 0.5 * 3.5 = 2.75
    approx(discounted_returns(rewards, mask, gamma=0.5)[0], [2.75, 3.5, 3.0])


def test_whiten_uses_the_masked_entries_only():
    values = torch.tensor([[1.0, 2.0, 3.0], [5.0, 100.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    # masked-in 1, 2, 3, 5: mean 2.75, Bessel variance (3.0625 + 0.5625 + 0.0625 + 5.0625) / 3
    std = math.sqrt(8.75 / 3)
    expected = [
        [(v - 2.75) / (std + STD_EPS) for v in (1, 2, 3)],
        [(5 - 2.75) / (std + STD_EPS), 0, 0],
    ]
    approx(whiten(values, mask), expected)
    divided = whiten(values, mask, shift_mean=False)
    approx(divided[0], [v / (std + STD_EPS) for v in (1, 2, 3)])


def test_whiten_of_one_entry_is_left_alone():
    approx(whiten(torch.tensor([[3.0, 7.0]]), torch.tensor([[1.0, 0.0]])), [[3.0, 0.0]])


def test_gae_by_hand():
    # one sequence of 3 tokens, rewards 0, 0, 1, values 0.5, 0.6, 0.8, gamma 1, lambda 0.5
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.6, 0.8, 0.9]])  # the 4th is padding: must be ignored
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    adv, returns = gae(rewards, values, mask, gamma=1.0, lam=0.5)
    d2 = 1.0 - 0.8  # terminal: V after the last token is 0
    d1 = 0.0 + 0.8 - 0.6
    d0 = 0.0 + 0.6 - 0.5
    a2, a1 = d2, d1 + 0.5 * d2
    a0 = d0 + 0.5 * a1
    approx(adv, [[a0, a1, a2, 0.0]])
    approx(returns, [[a0 + 0.5, a1 + 0.6, a2 + 0.8, 0.0]])


def test_gae_with_lambda_one_and_zero_values_is_the_return():
    rewards = torch.tensor([[0.1, -0.2, 1.0]])
    mask = torch.ones(1, 3)
    adv, returns = gae(rewards, torch.zeros(1, 3), mask, gamma=1.0, lam=1.0)
    approx(adv, discounted_returns(rewards, mask))
    approx(returns, adv)


# ----- DAPO's overlong shaping --------------------------------------------------------------


def test_overlong_penalty_by_hand():
    # L_max 10, L_cache 4: free up to 6, then -(L - 6) / 4, -1 at 10 and beyond
    lengths = torch.tensor([3, 6, 7, 8, 10, 12])
    approx(overlong_penalty(lengths, 10, 4), [0, 0, -0.25, -0.5, -1.0, -1.0])
    approx(overlong_penalty(lengths, 10, 4, factor=0.5), [0, 0, -0.125, -0.25, -0.5, -0.5])
    with pytest.raises(ValueError, match="buffer"):
        overlong_penalty(lengths, 10, 0)


# ----- KL estimators and the critic's loss --------------------------------------------------


def test_k1_and_k2_by_hand():
    logp = torch.tensor([math.log(0.5), math.log(0.2)], dtype=torch.float64)
    ref = torch.tensor([math.log(0.25), math.log(0.4)], dtype=torch.float64)
    approx(k1_kl(logp, ref), [math.log(2), -math.log(2)])
    approx(k2_kl(logp, ref), [0.5 * math.log(2) ** 2] * 2)


def test_policy_token_loss_with_the_k2_estimator():
    logp = torch.log(torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    ref = torch.log(torch.tensor([[0.25, 0.5]], dtype=torch.float64))
    loss, _, kl = policy_token_loss(
        logp, logp, torch.tensor([2.0]), eps_low=0.2, eps_high=0.2, beta=0.1, ref_logp=ref,
        kl_estimator="k2",
    )  # fmt: skip
    approx(loss, [[-2.0 + 0.1 * 0.5 * math.log(2) ** 2, -2.0]])
    approx(kl, [[0.5 * math.log(2) ** 2, 0.0]])


def test_clipped_value_loss_by_hand():
    old = torch.tensor([0.0, 0.0, 0.0])
    values = torch.tensor([0.5, 0.5, -0.1])
    returns = torch.tensor([1.0, 0.0, 0.0])
    loss, clipped = clipped_value_loss(values, old, returns, clip=0.2)
    # 1st: plain (0.5-1)^2 = 0.25, clipped V = 0.2 -> 0.64: the max (clipped) wins
    # 2nd: plain 0.25, clipped 0.04: plain wins. 3rd: inside the range, both 0.01
    approx(loss, [0.5 * 0.64, 0.5 * 0.25, 0.5 * 0.01])
    assert clipped.tolist() == [True, False, False]
    plain, none_clipped = clipped_value_loss(values, old, returns, clip=None)
    approx(plain, [0.5 * 0.25, 0.5 * 0.25, 0.5 * 0.01])
    assert not none_clipped.any()
