"""RLOO: REINFORCE with a leave-one-out baseline (Kool et al. 2019; Ahmadian et al. 2024,
"Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback").

For each prompt, k completions; each completion is one action whose reward carries the KL
penalty (k1, summed over its tokens), and whose baseline is the mean reward of the other k - 1:

    R_i = score_i - beta * sum_t (log pi_old(y_t) - log pi_ref(y_t))
    A_i = R_i - 1/(k-1) * sum_{j != i} R_j

No critic, no std division. The policy takes the clipped-surrogate step of every agent here
(``policy_gradient``) with ``A_i`` on each of the completion's tokens; with ``mu = 1`` (the
default) the ratio is 1 and that is exactly REINFORCE's gradient ``A_i * grad log pi(y_i)``,
normalised per sequence (``loss_agg = "seq-mean-token-mean"``).

Masked samples (infra errors; truncations with ``mask_truncated``) are neither trained on nor
part of any baseline.
"""

from __future__ import annotations

import torch
from pydantic import Field

from grpo_env.agents.advantages import leave_one_out_advantages
from grpo_env.agents.policy_gradient import (
    PolicyGradientAgent,
    PolicyGradientConfig,
    Rollout,
    advantage_metrics,
    sample_matrix,
    samples_at,
    sequence_kl,
)


class RLOOConfig(PolicyGradientConfig):
    """RLOO's knobs (the KL weight is a reward penalty here, as in the paper)."""

    beta: float = Field(0.05, ge=0, description="KL penalty in the reward (0: no reference)")


class RLOOAgent(PolicyGradientAgent):
    """REINFORCE leave-one-out (see the module docstring)."""

    Config = RLOOConfig
    config: RLOOConfig
    kl_in = "reward"

    def sample_advantages(self, rollout: Rollout) -> tuple[torch.Tensor, dict[str, float]]:
        rewards = rollout.scores
        kl = sequence_kl(rollout)
        if kl is not None:
            rewards = rewards - self.config.beta * kl
        matrix, valid = sample_matrix(rollout, rewards)
        adv = leave_one_out_advantages(matrix, valid)
        metrics = advantage_metrics(adv, rollout.groups, valid)
        if kl is not None:
            metrics["kl_penalty"] = float(self.config.beta * kl.mean())
        return samples_at(adv.values, rollout.samples), metrics
