"""Group-relative advantages against hand computations (correctness rules 1 and 2)."""

import math

import pytest
import torch

from grpo_env.agents.advantages import STD_EPS, group_advantages, sample_std


def approx(values, expected, tol=1e-6):
    assert torch.allclose(values, torch.tensor(expected, dtype=values.dtype), atol=tol), values


def test_group_scaling_uses_bessel_std_and_eps():
    # mean 0.5; Bessel std = sqrt(4 * 0.25 / 3) = sqrt(1/3); population std would be 0.5.
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
    std = math.sqrt(1 / 3)
    a = 0.5 / (std + STD_EPS)
    approx(adv.values, [[a, -a, -a, a]])
    approx(adv.group_std, [std])
    assert abs(a - 0.5 / (0.5 + STD_EPS)) > 0.1  # not the population std


def test_eps_is_added_to_the_std():
    adv = group_advantages(torch.tensor([[1.0, 0.0]]), eps=1.0)
    a = 0.5 / (math.sqrt(0.5) + 1.0)
    approx(adv.values, [[a, -a]])


def test_zero_variance_groups_give_exact_zero_and_are_counted():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.1, 0.1, 0.1], [1.0, 0.0, 0.0]])
    for scale in ("group", "batch", "none"):
        adv = group_advantages(rewards, scale=scale)
        assert torch.equal(adv.values[:2], torch.zeros(2, 3)), scale
        assert adv.zero_std.tolist() == [True, True, False]


def test_singleton_groups_are_rejected():
    with pytest.raises(ValueError, match="G >= 2"):
        group_advantages(torch.tensor([[1.0], [0.0]]))


def test_batch_scaling_divides_by_one_batch_std():
    # batch rewards 1, 0, 1, 1: mean 0.75, Bessel variance (3 * 0.0625 + 0.5625) / 3 = 0.25.
    adv = group_advantages(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), scale="batch")
    a = 0.5 / (0.5 + STD_EPS)
    approx(adv.values, [[a, -a], [0.0, 0.0]])


def test_no_scaling_is_reward_minus_group_mean():
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0]]), scale="none")
    approx(adv.values, [[2 / 3, -1 / 3, -1 / 3]])


def test_masked_samples_leave_the_baseline_and_get_zero():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    valid = torch.tensor([[True, True, False, True]])
    adv = group_advantages(rewards, valid)
    # valid rewards 1, 0, 1: mean 2/3, Bessel std sqrt(((1/3)^2 * 2 + (2/3)^2) / 2) = sqrt(1/3)
    std = math.sqrt(1 / 3)
    approx(adv.group_mean, [2 / 3])
    up, down = (1 / 3) / (std + STD_EPS), (-2 / 3) / (std + STD_EPS)
    approx(adv.values, [[up, down, 0.0, up]])


def test_group_left_with_one_valid_sample_is_degenerate_not_silent():
    adv = group_advantages(torch.tensor([[1.0, 0.0]]), torch.tensor([[True, False]]))
    assert adv.degenerate.tolist() == [True]
    assert torch.equal(adv.values, torch.zeros(1, 2))


def test_sample_std_matches_torch_bessel():
    values = torch.tensor([0.3, 1.2, -0.7, 2.0], dtype=torch.float64)
    assert float(sample_std(values, torch.ones(4, dtype=torch.bool))) == pytest.approx(
        float(values.std(unbiased=True))
    )


def test_bad_shapes_and_scales():
    with pytest.raises(ValueError, match="groups, G"):
        group_advantages(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.tensor([[1.0, 0.0]]), scale="global")


def test_process_supervision_by_hand():
    from grpo_env.agents.advantages import process_advantages

    # Sample 0: steps ending at tokens 2 and 4 with rewards 1 and 0; sample 1: one step (0).
    steps = [[(2, 1.0), (4, 0.0)], [(3, 0.0)]]
    adv = process_advantages(steps, [5, 3], eps=0.0)
    # Pooled rewards [1, 0, 0]: mean 1/3, Bessel std sqrt(1/3); normalised 1 -> 2/sqrt(3),
    # 0 -> -1/sqrt(3). A token sums the normalised rewards of the steps ending at or after it.
    high, low = 2 / 3**0.5, -1 / 3**0.5
    assert adv[0].tolist() == pytest.approx([high + low, high + low, low, low, 0.0], abs=1e-6)
    assert adv[1].tolist() == pytest.approx([low, low, low], abs=1e-6)
    # Masked samples take no part and get zeros; equal step rewards carry no signal.
    masked = process_advantages([*steps, [(1, 9.0)]], [5, 3, 2], [True, True, False], eps=0.0)
    assert masked[0].tolist() == pytest.approx(adv[0].tolist()) and masked[2].sum() == 0
    flat = process_advantages([[(1, 0.5)], [(2, 0.5)]], [2, 2])
    assert all(a.abs().sum() == 0 for a in flat)
