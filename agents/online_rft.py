"""Online rejection-sampling fine-tuning (online RFT): keep the good samples, maximise their
likelihood. No reference, no critic, no baseline.

DeepSeekMath (Shao et al. 2024, sec. 5.2.1, "Towards to a Unified Paradigm") writes every
method's gradient as

    grad J = E[(q, o) ~ D] ( 1/|o| sum_t GC(q, o, t, pi_rf) * grad log pi(o_t | q, o_<t) )

and RFT (Yuan et al. 2023) / online RFT as the gradient coefficient

    GC(q, o, t) = I(o) = 1 if o is kept (its answer is correct), 0 otherwise.

RFT samples D once from the initial (SFT) policy (``agents.rft``); online RFT samples it from
the *current* policy at every step: for each prompt q, G completions o_1..o_G are sampled and
scored, the kept ones get coefficient 1 (``advantages.rejection_mask``):

- ``keep = "threshold"`` (default): ``r_i >= reward_threshold`` (1.0: a correct answer);
- ``keep = "best"``: the samples tied for the group's best reward, if it is ``>= threshold``.

The loss per completion token is the negative log-likelihood weighted by the coefficient,

    L = -I(o) * log pi(o_t | q, o_<t)        (``losses.likelihood_token_loss``)

aggregated with the shared normalisers (``loss_agg``, default ``seq-mean-token-mean``: the
``1/|o|`` of the formula, then the mean over the batch's N samples: E over every sampled
(q, o), kept or not, as in the formula; a step that keeps few samples takes a small step).
There is no ratio clipping: every inner iteration (``mu``) maximises the likelihood again; so
``epsilon_low``/``epsilon_high`` are unused. No KL by default (``beta = 0``: no reference model
is loaded, as in the paper); ``beta > 0`` adds GRPO's k3 KL to the reference to the loss.
The update is the one every policy-gradient agent shares (``policy_gradient``): micro-batches
with whole-batch normalisers, infra errors masked (never kept, never in the normaliser),
truncations masked with ``mask_truncated``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field

from grpo_env.agents.advantages import rejection_mask
from grpo_env.agents.losses import SurrogateTerms, k3_kl, likelihood_token_loss
from grpo_env.agents.policy_gradient import (
    PolicyGradientAgent,
    PolicyGradientConfig,
    Rollout,
    group_metrics,
    sample_matrix,
    samples_at,
)
from grpo_env.types import Group

KeepRule = Literal["threshold", "best"]


class OnlineRFTConfig(PolicyGradientConfig):
    """Online RFT's knobs: which samples are kept; the optimiser's are every agent's."""

    beta: float = Field(0.0, ge=0, description="k3 KL weight in the loss (0, RFT's: no reference)")
    keep: KeepRule = Field("threshold", description="threshold: r >= reward_threshold; best: "
                           "the group's best samples (if >= reward_threshold)")  # fmt: skip
    reward_threshold: float = Field(1.0, description="the lowest reward a kept sample has")


class OnlineRFTAgent(PolicyGradientAgent):
    """Online rejection-sampling fine-tuning (see the module docstring)."""

    Config = OnlineRFTConfig
    config: OnlineRFTConfig

    def kept(self, rollout: Rollout) -> torch.Tensor:
        """The coefficient ``I(o)`` of every training sample, ``[N]`` (float 0/1)."""
        matrix, valid = sample_matrix(rollout, rollout.scores)
        mask = rejection_mask(
            matrix, valid, keep=self.config.keep, threshold=self.config.reward_threshold
        )
        return samples_at(mask.float(), rollout.samples)

    def sample_advantages(self, rollout: Rollout) -> tuple[torch.Tensor, dict[str, float]]:
        coefficients = self.kept(rollout)
        metrics = {**group_metrics(rollout.groups), **keep_metrics(rollout, coefficients)}
        return coefficients, metrics

    def token_loss(
        self,
        logp: torch.Tensor,
        old_logp: torch.Tensor,
        advantages: torch.Tensor,
        ref_logp: torch.Tensor | None,
    ) -> tuple[torch.Tensor, SurrogateTerms, torch.Tensor | None]:
        loss, terms, _ = likelihood_token_loss(logp, old_logp, advantages)
        kl = k3_kl(logp, ref_logp) if ref_logp is not None else None
        if kl is not None and self.config.beta:
            loss = loss + self.config.beta * kl
        return loss, terms, kl

    def empty_batch_metrics(self, groups: Sequence[Group]) -> dict[str, float]:
        return {**group_metrics(groups), "frac_kept": 0.0, "samples_kept": 0.0}


def keep_metrics(rollout: Rollout, coefficients: torch.Tensor) -> dict[str, float]:
    """How many samples were kept, and in how many groups none was."""
    kept_groups = {s.group for s, c in zip(rollout.samples, coefficients, strict=True) if c > 0}
    return {
        "samples_kept": float(coefficients.sum()),
        "frac_kept": float(coefficients.mean()) if coefficients.numel() else 0.0,
        "frac_groups_none_kept": 1.0 - len(kept_groups) / max(len(rollout.groups), 1),
    }
