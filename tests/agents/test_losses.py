"""Clipped surrogate, k3 KL and loss aggregation against hand computations (rules 6 and 7)."""

import math

import pytest
import torch

from grpo_env.agents.losses import (
    LossNormalizer,
    aggregate,
    clipped_surrogate,
    grpo_token_loss,
    k3_kl,
    masked_mean,
)


def logs(*ratios):
    return torch.log(torch.tensor([list(ratios)], dtype=torch.float64))


def test_clipped_surrogate_by_hand():
    old = torch.zeros(1, 4, dtype=torch.float64)
    # ratios 1.5 (A>0: clipped to 1.2), 0.5 (A<0: clipped to 0.8), 0.5 (A>0: not clipped),
    # 1.5 (A<0: not clipped, min picks the unclipped, more pessimistic term)
    logp = logs(1.5, 0.5, 0.5, 1.5)
    adv = torch.tensor([[2.0, -1.0, 2.0, -1.0]], dtype=torch.float64)
    terms = clipped_surrogate(logp, old, adv, eps_low=0.2, eps_high=0.2)
    assert terms.objective.tolist()[0] == pytest.approx([2.4, -0.8, 1.0, -1.5])
    assert terms.clipped_high.tolist() == [[True, False, False, False]]
    assert terms.clipped_low.tolist() == [[False, True, False, False]]


def test_asymmetric_clip_higher():
    old = torch.zeros(1, 2, dtype=torch.float64)
    terms = clipped_surrogate(logs(1.25, 1.4), old, torch.tensor([1.0]), 0.2, 0.28)
    # 1.25 < 1.28 is inside the range; 1.4 is cut at 1.28
    assert terms.objective.tolist()[0] == pytest.approx([1.25, 1.28])
    assert terms.clipped_high.tolist() == [[False, True]]


def test_sequence_advantages_broadcast_over_tokens():
    old = torch.zeros(2, 2)
    terms = clipped_surrogate(torch.zeros(2, 2), old, torch.tensor([1.0, -2.0]), 0.2, 0.2)
    assert terms.objective.tolist() == [[1.0, 1.0], [-2.0, -2.0]]
    assert torch.equal(terms.ratio, torch.ones(2, 2))


def test_k3_kl_by_hand():
    logp = torch.tensor([math.log(0.5), math.log(0.2)], dtype=torch.float64)
    ref = torch.tensor([math.log(0.25), math.log(0.2)], dtype=torch.float64)
    kl = k3_kl(logp, ref)
    # delta = log(0.25/0.5) = -log 2: exp(delta) - delta - 1 = 0.5 + log 2 - 1
    assert kl.tolist() == pytest.approx([0.5 + math.log(2) - 1, 0.0])
    assert (k3_kl(torch.randn(100), torch.randn(100)) >= 0).all()


def test_aggregations_by_hand():
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    lengths = [3, 1]
    expected = {"seq-mean-token-mean": (2.0 + 4.0) / 2, "token-mean": 10 / 4, "dr_grpo": 10 / 8}
    for mode, value in expected.items():
        norm = LossNormalizer.for_batch(mode, lengths, max_tokens=4)
        assert float(aggregate(per_token, mask, norm)) == pytest.approx(value), mode


@pytest.mark.parametrize("mode", ["seq-mean-token-mean", "token-mean", "dr_grpo"])
def test_micro_batch_shares_sum_to_the_full_batch_loss(mode):
    torch.manual_seed(0)
    per_token = torch.randn(6, 5)
    lengths = [5, 1, 3, 2, 5, 4]
    mask = (torch.arange(5)[None, :] < torch.tensor(lengths)[:, None]).float()
    norm = LossNormalizer.for_batch(mode, lengths, max_tokens=5)
    full = aggregate(per_token, mask, norm)
    for size in (1, 2, 4):
        parts = sum(
            aggregate(per_token[i : i + size], mask[i : i + size], norm) for i in range(0, 6, size)
        )
        assert float(parts) == pytest.approx(float(full), abs=1e-6)


def test_grpo_token_loss_adds_beta_kl():
    logp = torch.log(torch.tensor([[0.5, 0.5]]))
    ref = torch.log(torch.tensor([[0.25, 0.5]]))
    loss, terms, kl = grpo_token_loss(
        logp, logp.detach(), torch.tensor([1.0]), eps_low=0.2, eps_high=0.2, beta=0.1, ref_logp=ref
    )
    assert loss.tolist()[0] == pytest.approx([-1.0 + 0.1 * (0.5 + math.log(2) - 1), -1.0])
    assert kl.tolist()[0] == pytest.approx([0.5 + math.log(2) - 1, 0.0])
    assert torch.equal(terms.ratio, torch.ones(1, 2))
    with pytest.raises(ValueError, match="reference"):
        grpo_token_loss(logp, logp, torch.tensor([1.0]), eps_low=0.2, eps_high=0.2, beta=0.1)


def test_unknown_aggregation_is_rejected():
    with pytest.raises(ValueError, match="valid"):
        LossNormalizer.for_batch("sum", [1], 4)


def test_masked_mean():
    assert masked_mean(torch.tensor([1.0, 3.0, 100.0]), torch.tensor([1.0, 1.0, 0.0])) == 2.0
    assert masked_mean(torch.tensor([1.0]), torch.tensor([0.0])) == 0.0
