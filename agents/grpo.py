"""GRPO (Shao et al., DeepSeekMath 2024): PPO without a critic, baselined by the group mean.

For each prompt the agent samples G completions; the environment scores them; each
completion's advantage is its reward relative to its group (``advantages.group_advantages``).
The policy then takes ``mu`` optimiser steps on the clipped surrogate

    L = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) + beta * KL_k3(pi || pi_ref)

per completion token, aggregated as configured (``losses.aggregate``), where
``r = pi(token) / pi_old(token)``. ``pi_old`` is the policy that sampled the batch: its
logprobs are those of the first inner iteration's forward pass (detached), so the ratio is
exactly 1 there and only moves in iterations 2..mu. Logprobs use the sampling temperature.

``supervision = "process"`` (DeepSeekMath's process supervision): the steps of an episode (its
turns' ``turn_reward``s, or spans of one completion the env scores) carry their own rewards,
normalised over the group; a token's advantage is the sum of the normalised rewards of the
steps ending at or after it (``advantages.process_advantages``).

Masked out of the baseline and the loss: samples whose verifier had an ``infra_error``, and,
if ``mask_truncated``, completions cut at ``max_new_tokens``. Dynamic sampling (DAPO) drops
groups whose rewards are all equal and asks the trainer to refill the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field

from grpo_env.agents.advantages import (
    STD_EPS,
    Advantages,
    ScaleRewards,
    group_advantages,
    process_advantages,
)
from grpo_env.agents.losses import SurrogateTerms, grpo_token_loss
from grpo_env.agents.policy_gradient import (
    PolicyGradientAgent,
    PolicyGradientConfig,
    Rollout,
    advantage_metrics,
    check_groups,
    reward_matrix,
    samples_at,
)
from grpo_env.types import Group, Status

__all__ = ["GRPOAgent", "GRPOConfig", "advantage_metrics", "check_groups"]


class GRPOConfig(PolicyGradientConfig):
    """GRPO's knobs (names follow TRL's ``GRPOConfig`` where they mean the same thing)."""

    scale_rewards: ScaleRewards = "group"
    std_eps: float = Field(STD_EPS, ge=0, description="added to the std before dividing")
    dynamic_sampling: bool = Field(False, description="drop zero-variance groups and refill")
    max_refill_rounds: int = Field(4, ge=0, description="extra rollouts to refill a batch")
    supervision: Literal["outcome", "process"] = Field(
        "outcome",
        description="outcome: the episode's normalised return on every token; process: "
        "step rewards (a multi-turn episode's turn rewards, or spans the env scores) "
        "normalised over the group, each token getting the sum of the steps ending at or "
        "after it (DeepSeekMath)",
    )


class GRPOAgent(PolicyGradientAgent):
    """Group Relative Policy Optimization (see the module docstring).

    The update loop (micro-batches, inner iterations, clipping, reference, metrics) is the one
    every policy-gradient agent shares: ``agents.policy_gradient``.
    """

    Config = GRPOConfig
    config: GRPOConfig

    @property
    def wants_step_rewards(self) -> bool:
        return self.config.supervision == "process"

    # ----- dynamic sampling ---------------------------------------------------------------

    def keep_group(self, group: Group) -> bool:
        if not self.config.dynamic_sampling:
            return True
        rewards = [e.reward for e in group.episodes if e.result.status is not Status.INFRA_ERROR]
        return len(rewards) >= 2 and max(rewards) != min(rewards)

    @property
    def refill_rounds(self) -> int:
        return self.config.max_refill_rounds if self.config.dynamic_sampling else 0

    # ----- advantages ---------------------------------------------------------------------

    def group_rewards(self, groups: Sequence[Group]) -> tuple[torch.Tensor, torch.Tensor]:
        """The rewards ``[groups, G]`` the baseline is computed from, and which are valid."""
        return reward_matrix(groups)

    def advantages(self, groups: Sequence[Group]) -> Advantages:
        """Group-relative advantages ``[groups, G]``; infra errors masked (see advantages.py)."""
        check_groups(groups)
        rewards, valid = self.group_rewards(groups)
        return group_advantages(
            rewards, valid, scale=self.config.scale_rewards, eps=self.config.std_eps
        )

    def sample_advantages(self, rollout: Rollout) -> tuple[torch.Tensor, dict[str, float]]:
        adv = self.advantages(rollout.groups)
        metrics = advantage_metrics(adv, rollout.groups)
        if self.config.supervision == "process":
            return self.process_advantages(rollout), metrics
        return samples_at(adv.values, rollout.samples), metrics

    def process_advantages(self, rollout: Rollout) -> torch.Tensor:
        """Per-token advantages ``[N, C]`` from each group's step rewards (process supervision)."""
        result = torch.zeros_like(rollout.mask)
        rows = {(s.group, s.index): row for row, s in enumerate(rollout.samples)}
        for g, group in enumerate(rollout.groups):
            episodes = group.episodes
            valid = [e.result.status is not Status.INFRA_ERROR for e in episodes]
            lengths = [len(e.completion_ids) for e in episodes]
            steps = [list(e.step_rewards) for e in episodes]
            for i, adv in enumerate(
                process_advantages(steps, lengths, valid, eps=self.config.std_eps)
            ):
                row = rows.get((g, i))
                if row is not None:  # masked samples (truncated, infra) are not trained on
                    result[row, : len(adv)] = adv
        return result * rollout.mask

    def empty_batch_metrics(self, groups: Sequence[Group]) -> dict[str, float]:
        return advantage_metrics(self.advantages(groups), groups)

    def token_loss(
        self,
        logp: torch.Tensor,
        old_logp: torch.Tensor,
        advantages: torch.Tensor,
        ref_logp: torch.Tensor | None,
    ) -> tuple[torch.Tensor, SurrogateTerms, torch.Tensor | None]:
        cfg = self.config
        return grpo_token_loss(
            logp,
            old_logp,
            advantages,
            eps_low=cfg.epsilon_low,
            eps_high=cfg.epsilon_high or cfg.epsilon_low,
            beta=cfg.beta,
            ref_logp=ref_logp,
        )
