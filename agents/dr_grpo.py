"""Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training: A Critical Perspective"):
GRPO "done right", without the two normalisations that bias it.

GRPO divides each group's centred rewards by the group's std (favouring questions that are
too easy or too hard) and each completion's loss by its own length (favouring long wrong
answers). Dr. GRPO drops both:

    A_i = r_i - mean(r_group)                                      (no std)
    L   = -1/(G * L_max) * sum_i sum_t min(r A_i, clip(r, 1-eps, 1+eps) A_i)

i.e. ``scale_rewards = "none"`` and ``loss_agg = "dr_grpo"`` (a constant normaliser,
``max_new_tokens`` per completion), and no KL term (``beta = 0``), as in the paper. Everything
else is GRPO's; any knob can still be changed.
"""

from __future__ import annotations

from pydantic import Field

from grpo_env.agents.advantages import ScaleRewards
from grpo_env.agents.grpo import GRPOAgent, GRPOConfig
from grpo_env.agents.losses import LossAggregation


class DrGRPOConfig(GRPOConfig):
    """GRPO's knobs with Dr. GRPO's defaults."""

    beta: float = Field(0.0, ge=0, description="KL weight (0: no reference model is loaded)")
    scale_rewards: ScaleRewards = "none"
    loss_agg: LossAggregation = "dr_grpo"


class DrGRPOAgent(GRPOAgent):
    """GRPO with Dr. GRPO's defaults (see the module docstring)."""

    Config = DrGRPOConfig
    config: DrGRPOConfig
