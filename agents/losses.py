"""Policy-gradient losses: pure functions of logprobs, advantages and masks.

Shapes: ``logp``, ``old_logp``, ``ref_logp`` and ``mask`` are ``[B, C]`` (completion tokens);
``advantages`` is ``[B]`` (one per sequence) or ``[B, C]`` (per token).

Aggregation turns per-token losses into one number, and is a named choice:

- ``seq-mean-token-mean`` (GRPO paper): mean over a sequence's tokens, then over sequences;
- ``token-mean`` (DAPO): mean over every token of the batch, so long sequences weigh more;
- ``dr_grpo`` (Dr. GRPO): sum over tokens divided by a constant, sequences x max_new_tokens,
  which removes the length bias of the other two.

The normalisers (sequence count, token count) are those of the *whole* batch, passed in as a
``LossNormalizer``: summing the losses of micro-batches then gives exactly the loss (and the
gradient) of the full batch, however the batch was split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

LossAggregation = Literal["seq-mean-token-mean", "token-mean", "dr_grpo"]
LOSS_AGGREGATIONS: tuple[str, ...] = ("seq-mean-token-mean", "token-mean", "dr_grpo")


@dataclass(frozen=True)
class LossNormalizer:
    """Batch-wide counts that make the loss independent of the micro-batch split."""

    mode: LossAggregation
    num_sequences: int
    num_tokens: int
    max_tokens: int  # max_new_tokens, for dr_grpo's constant

    @classmethod
    def for_batch(
        cls, mode: LossAggregation, lengths: list[int], max_tokens: int
    ) -> LossNormalizer:
        if mode not in LOSS_AGGREGATIONS:
            raise ValueError(f"loss aggregation {mode!r} unknown; valid: {list(LOSS_AGGREGATIONS)}")
        return cls(mode, len(lengths), sum(lengths), max_tokens)


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, norm: LossNormalizer) -> torch.Tensor:
    """This (micro-)batch's share of the batch loss (see the module docstring)."""
    masked = per_token * mask
    if norm.mode == "seq-mean-token-mean":
        per_sequence = masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return per_sequence.sum() / max(norm.num_sequences, 1)
    if norm.mode == "token-mean":
        return masked.sum() / max(norm.num_tokens, 1)
    if norm.mode == "dr_grpo":
        return masked.sum() / max(norm.num_sequences * norm.max_tokens, 1)
    raise ValueError(f"loss aggregation {norm.mode!r} unknown; valid: {list(LOSS_AGGREGATIONS)}")


@dataclass
class SurrogateTerms:
    objective: torch.Tensor  # [B, C] clipped surrogate (to maximise)
    ratio: torch.Tensor  # [B, C] pi / pi_old
    clipped_low: torch.Tensor  # [B, C] bool: ratio < 1 - eps_low with A < 0 (gradient cut)
    clipped_high: torch.Tensor  # [B, C] bool: ratio > 1 + eps_high with A > 0 (gradient cut)


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    eps_low: float,
    eps_high: float,
) -> SurrogateTerms:
    """PPO's clipped objective ``min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)`` per token."""
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    ratio = torch.exp(logp - old_logp)
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    objective = torch.minimum(ratio * adv, clipped * adv)
    return SurrogateTerms(
        objective=objective,
        ratio=ratio,
        clipped_low=(ratio < 1.0 - eps_low) & (adv < 0),
        clipped_high=(ratio > 1.0 + eps_high) & (adv > 0),
    )


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(pi || ref) per sampled token: always >= 0, unbiased.

    ``exp(ref - logp) - (ref - logp) - 1``
    """
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


def k1_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """The plain log-ratio ``logp - ref`` per sampled token: unbiased for KL(pi || ref), may be
    negative. The per-token KL penalty in the reward of RLHF PPO, RLOO and REINFORCE++."""
    return logp - ref_logp


def k2_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """``0.5 * (logp - ref)^2`` per sampled token: its gradient is the log-ratio times the
    score, which makes it the right KL *loss* for REINFORCE++-baseline."""
    return 0.5 * (logp - ref_logp).square()


KL_ESTIMATORS = {"k1": k1_kl, "k2": k2_kl, "k3": k3_kl}


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's critic loss per token, with value clipping (as in OpenAI's baselines):

        L_V = 0.5 * max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)

    ``clip=None`` gives the plain ``0.5 * (V - R)^2``. Returns the loss and a bool tensor of
    where the clipped term won (its gradient is cut there).
    """
    plain = (values - returns).square()
    if clip is None:
        return 0.5 * plain, torch.zeros_like(plain, dtype=torch.bool)
    clipped_values = old_values + (values - old_values).clamp(-clip, clip)
    clipped = (clipped_values - returns).square()
    return 0.5 * torch.maximum(plain, clipped), clipped > plain


KLEstimator = Literal["k1", "k2", "k3"]


def policy_token_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    *,
    eps_low: float,
    eps_high: float,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    kl_estimator: KLEstimator = "k3",
) -> tuple[torch.Tensor, SurrogateTerms, torch.Tensor | None]:
    """Per-token ``-clipped surrogate + beta * KL(pi || ref)``, with its parts; the KL term
    uses ``kl_estimator`` (``KL_ESTIMATORS``) and is returned (None without a reference)."""
    terms = clipped_surrogate(logp, old_logp, advantages, eps_low, eps_high)
    loss = -terms.objective
    kl = None
    if ref_logp is not None:
        kl = KL_ESTIMATORS[kl_estimator](logp, ref_logp)
        if beta:
            loss = loss + beta * kl
    elif beta:
        raise ValueError("beta > 0 needs reference logprobs")
    return loss, terms, kl


def grpo_token_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    *,
    eps_low: float,
    eps_high: float,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
) -> tuple[torch.Tensor, SurrogateTerms, torch.Tensor | None]:
    """GRPO's per-token loss ``-clipped surrogate + beta * k3 KL``, with its parts."""
    return policy_token_loss(
        logp,
        old_logp,
        advantages,
        eps_low=eps_low,
        eps_high=eps_high,
        beta=beta,
        ref_logp=ref_logp,
        kl_estimator="k3",
    )


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean of ``values`` where ``mask`` is set (0.0 for an empty mask), as a Python float."""
    total = mask.sum()
    return float((values * mask).sum() / total) if total > 0 else 0.0


def likelihood_token_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, coefficients: torch.Tensor
) -> tuple[torch.Tensor, SurrogateTerms, None]:
    """Rejection-sampling fine-tuning's per-token loss ``-GC * log pi(token)``: the negative
    log-likelihood of the kept samples (``coefficients`` 1) and nothing for the others (0).
    No ratio clipping (every inner iteration maximises the likelihood); the ratio to
    ``old_logp`` is returned as a metric only."""
    coef = coefficients.unsqueeze(1) if coefficients.dim() == 1 else coefficients
    ratio = torch.exp(logp.detach() - old_logp)
    never = torch.zeros_like(ratio, dtype=torch.bool)
    terms = SurrogateTerms(
        objective=coef * logp, ratio=ratio, clipped_low=never, clipped_high=never
    )
    return -coef * logp, terms, None


DPOLossType = Literal["sigmoid", "ipo"]


def dpo_loss(
    chosen_logp: torch.Tensor,
    rejected_logp: torch.Tensor,
    chosen_ref: torch.Tensor,
    rejected_ref: torch.Tensor,
    beta: float,
    loss_type: DPOLossType = "sigmoid",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO's loss per pair (Rafailov et al. 2023), from *sequence* logprobs ``[P]`` (the sum
    of a completion's token logprobs) of the chosen (higher-rewarded) and rejected sample:

        h = (log pi(o+) - log pi_ref(o+)) - (log pi(o-) - log pi_ref(o-))
        sigmoid (DPO):  L = -log sigmoid(beta * h)
        ipo (Azar et al. 2023):  L = (h - 1 / (2 beta))^2

    Returns the loss ``[P]`` and the implicit rewards ``beta * (log pi - log pi_ref)`` of the
    chosen and of the rejected samples (``[P]`` each, detached).
    """
    chosen_ratio = chosen_logp - chosen_ref
    rejected_ratio = rejected_logp - rejected_ref
    h = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        loss = -torch.nn.functional.logsigmoid(beta * h)
    elif loss_type == "ipo":
        loss = (h - 1.0 / (2.0 * beta)).square()
    else:
        raise ValueError(f"DPO loss type {loss_type!r} unknown; valid: sigmoid, ipo")
    return loss, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()
