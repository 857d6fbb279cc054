"""DAPO (Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale"):
GRPO with four changes, each a knob here.

1. Clip-higher: decoupled clip ranges, ``epsilon_low = 0.2``, ``epsilon_high = 0.28``, so
   unlikely tokens can grow (against entropy collapse).
2. Dynamic sampling: groups whose rewards are all equal carry no gradient; they are dropped
   and the batch is refilled with fresh prompts (``dynamic_sampling``, ``max_refill_rounds``).
3. Token-level loss: every token of the batch weighs the same (``loss_agg = "token-mean"``):

       L = -1/sum_i |o_i| * sum_i sum_t min(r A_i, clip(r, 1-eps_low, 1+eps_high) A_i)

4. Overlong reward shaping: a completion running into the last ``L_cache`` tokens of the
   budget ``L_max`` is penalised, linearly down to -1 at the limit (``advantages.
   overlong_penalty``), before the group-relative advantage:

       A_i = (R_i - mean(R)) / std(R),   R_i = score_i + R_length(|o_i|)

and no KL term (``beta = 0``). Multi-turn episodes: ``|o_i|`` is the longest model turn (each
turn has its own ``max_new_tokens``). The penalty shapes the advantages only: the logged reward
stays the verifier's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import Field

from grpo_env.agents.advantages import overlong_penalty
from grpo_env.agents.grpo import GRPOAgent, GRPOConfig
from grpo_env.agents.losses import LossAggregation
from grpo_env.agents.policy_gradient import reward_matrix
from grpo_env.types import Group


def longest_model_turn(mask: list[int]) -> int:
    """The longest run of model tokens: a single-turn completion's length; for a multi-turn
    episode, its longest turn (each turn has ``max_new_tokens``)."""
    best = run = 0
    for bit in mask:
        run = run + 1 if bit else 0
        best = max(best, run)
    return best


class DAPOConfig(GRPOConfig):
    """GRPO's knobs with DAPO's defaults, plus overlong shaping."""

    beta: float = Field(0.0, ge=0, description="KL weight (0: no reference model is loaded)")
    epsilon_high: float | None = Field(0.28, gt=0, description="clip range above 1 (clip-higher)")
    loss_agg: LossAggregation = "token-mean"
    dynamic_sampling: bool = Field(True, description="drop zero-variance groups and refill")
    overlong_buffer: int | None = Field(
        None, ge=1, description="L_cache in tokens (None: a fifth of max_new_tokens, as in DAPO)"
    )
    overlong_penalty: float = Field(1.0, ge=0, description="penalty at the limit (0: no shaping)")


class DAPOAgent(GRPOAgent):
    """GRPO with DAPO's defaults and overlong reward shaping (see the module docstring)."""

    Config = DAPOConfig
    config: DAPOConfig

    @property
    def overlong_buffer(self) -> int:
        max_tokens = self.sampling.max_new_tokens
        return min(self.config.overlong_buffer or max(1, max_tokens // 5), max_tokens)

    def group_rewards(self, groups: Sequence[Group]) -> tuple[torch.Tensor, torch.Tensor]:
        rewards, valid = reward_matrix(groups)
        if not self.config.overlong_penalty:
            return rewards, valid
        lengths = torch.zeros_like(rewards)
        for i, group in enumerate(groups):
            for j, episode in enumerate(group.episodes):
                lengths[i, j] = longest_model_turn(episode.model_mask)
        penalty = overlong_penalty(
            lengths,
            self.sampling.max_new_tokens,
            self.overlong_buffer,
            self.config.overlong_penalty,
        )
        return rewards + penalty.float() * valid, valid
