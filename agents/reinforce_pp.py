"""REINFORCE++ (Hu et al. 2025, "REINFORCE++: An Efficient RLHF Algorithm with Robustness to Both
Prompt and Reward Models"): PPO's tricks without PPO's critic, normalised over the whole batch.

``reinforce_pp``. Every token is an action; its reward carries the KL penalty (k1) and the
verifier's score arrives at the last token T; the advantage is the undiscounted return, then
normalised over every token of the batch (global, not per prompt):

    r_t  = -beta * (log pi_old(y_t) - log pi_ref(y_t)) + [t == T] * score
    G_t  = sum_{s >= t} gamma^(s - t) r_s                     (gamma = 1)
    A_t  = (G_t - mean_batch(G)) / std_batch(G)

``reinforce_pp_baseline`` (the paper's variant for reasoning tasks with k > 1 samples per
prompt). The group mean is the baseline, the batch std the scale, and the KL moves into the
loss with the k2 estimator:

    A_i  = score_i - mean_group(score)
    A_t  = (A_i - mean_batch(A)) / std_batch(A)               (over the batch's tokens)
    L    = -clipped surrogate(A_t) + beta * 0.5 * (log pi(y_t) - log pi_ref(y_t))^2

Both take the clipped-surrogate step every agent here shares (``policy_gradient``).
"""

from __future__ import annotations

import torch
from pydantic import Field

from grpo_env.agents.advantages import (
    discounted_returns,
    group_advantages,
    pack_model_tokens,
    token_rewards,
    unpack_model_tokens,
    whiten,
)
from grpo_env.agents.losses import k1_kl
from grpo_env.agents.policy_gradient import (
    PolicyGradientAgent,
    PolicyGradientConfig,
    Rollout,
    group_metrics,
    sample_matrix,
    samples_at,
    value_range,
)


class ReinforcePPConfig(PolicyGradientConfig):
    """REINFORCE++'s knobs."""

    beta: float = Field(0.01, ge=0, description="KL penalty per token, in the reward (0: none)")
    gamma: float = Field(1.0, gt=0, le=1, description="discount over completion tokens")


class ReinforcePPAgent(PolicyGradientAgent):
    """REINFORCE++ with token-level KL in the reward (see the module docstring)."""

    Config = ReinforcePPConfig
    config: ReinforcePPConfig
    kl_in = "reward"
    needs_groups = False  # the paper samples one completion per prompt; more work the same
    batch_wide_advantages = True

    def sample_advantages(self, rollout: Rollout) -> tuple[torch.Tensor, dict[str, float]]:
        kl = None
        if rollout.policy_logp is not None and rollout.ref_logp is not None:
            kl = k1_kl(rollout.policy_logp, rollout.ref_logp)
        # Returns over the model's tokens only: env tokens (multi-turn) are packed out.
        packed_kl = pack_model_tokens(kl, rollout.mask)[0] if kl is not None else None
        packed_mask = pack_model_tokens(rollout.mask, rollout.mask)[1]
        rewards = token_rewards(rollout.scores, packed_kl, packed_mask, self.config.beta)
        packed = discounted_returns(rewards, packed_mask, self.config.gamma)
        returns = unpack_model_tokens(packed, rollout.mask)
        advantages = whiten(returns, rollout.mask)
        metrics = {
            **group_metrics(rollout.groups),
            **value_range("adv", advantages[rollout.mask.bool()]),
        }
        if kl is not None:
            penalty = (self.config.beta * kl * rollout.mask).sum() / len(rollout.samples)
            metrics["kl_penalty"] = float(penalty)
        return advantages, metrics


class ReinforcePPBaselineConfig(PolicyGradientConfig):
    """REINFORCE++-baseline's knobs (the KL is a k2 loss here)."""

    beta: float = Field(0.01, ge=0, description="k2 KL weight in the loss (0: no reference)")


class ReinforcePPBaselineAgent(PolicyGradientAgent):
    """REINFORCE++ with a group-mean baseline and global normalisation (see the module
    docstring)."""

    Config = ReinforcePPBaselineConfig
    config: ReinforcePPBaselineConfig
    kl_in = "loss"
    batch_wide_advantages = True
    kl_estimator = "k2"

    def sample_advantages(self, rollout: Rollout) -> tuple[torch.Tensor, dict[str, float]]:
        matrix, valid = sample_matrix(rollout, rollout.scores)
        centred = group_advantages(matrix, valid, scale="none")
        per_sample = samples_at(centred.values, rollout.samples)
        per_token = per_sample[:, None] * rollout.mask
        advantages = whiten(per_token, rollout.mask)
        metrics = {
            "frac_zero_std": float(centred.zero_std.float().mean()),
            "groups_degenerate": float(centred.degenerate.sum()),
            **value_range("adv", advantages[rollout.mask.bool()]),
        }
        return advantages, metrics
