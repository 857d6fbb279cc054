"""ReMax (Li et al. 2023, "ReMax: A Simple, Effective, and Efficient Reinforcement Learning
Method for Aligning Large Language Models"): REINFORCE whose baseline is the reward of the
greedy completion of the same prompt.

For a prompt x the policy samples completions o_i and decodes one greedy completion
o_greedy = argmax decoding of pi(. | x), with the same weights at the same step; the env
scores all of them. The gradient is REINFORCE's with that baseline:

    grad J = E[x] sum_i (r(x, o_i) - r(x, o_greedy)) 1/|o_i| sum_t grad log pi(o_i,t | x, o_i,<t)

so A_i = r_i - r_greedy (``advantages.greedy_baseline_advantages``), one per completion, on
each of its tokens. The greedy completion is the baseline only: it carries no gradient. The
update is the shared clipped-surrogate step (``policy_gradient``); with ``mu = 1`` (the
default) the ratio is exactly 1 and that is REINFORCE's gradient. The paper puts a KL penalty
in the reward; here ``beta`` (default 0: no reference) adds GRPO's k3 KL to the loss instead,
so the baseline stays the verifier's reward.

The greedy sample comes from the rollout (``wants_greedy_sample``): one per prompt, generated
after the G samples (greedy decoding draws no random numbers, so the G samples are those every
other agent draws with the same seed), scored by the same env in the same call, attached to the
Group as ``greedy``. It is counted in the sample budget: a step generates
``prompts_per_step x (G + 1)`` completions (the trainer's ``samples_generated``); to match a
G-sample budget run ReMax with ``group_size = G - 1``.

Masked: samples with an ``infra_error`` (as for every agent); and a group whose *greedy*
completion had an ``infra_error`` has no baseline, so the whole group is left out of the loss
(counted in ``groups_masked_greedy_infra_error``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import Field

from grpo_env.agents.advantages import greedy_baseline_advantages
from grpo_env.agents.policy_gradient import (
    PolicyGradientAgent,
    PolicyGradientConfig,
    Rollout,
    TrainSample,
    group_metrics,
    sample_matrix,
    samples_at,
    value_range,
)
from grpo_env.types import Group, Status


class ReMaxConfig(PolicyGradientConfig):
    """ReMax's knobs (the baseline is the greedy reward; the KL, if any, is in the loss)."""

    beta: float = Field(0.0, ge=0, description="k3 KL weight in the loss (0: no reference)")


class ReMaxAgent(PolicyGradientAgent):
    """REINFORCE with the greedy completion's reward as baseline (see the module docstring)."""

    Config = ReMaxConfig
    config: ReMaxConfig
    wants_greedy_sample = True
    needs_groups = False  # the greedy sample is the baseline: one sample per prompt would do

    def training_samples(
        self, groups: Sequence[Group]
    ) -> tuple[list[TrainSample], dict[str, float]]:
        """Every agent's masks, and the groups whose greedy baseline failed left out."""
        samples, metrics = super().training_samples(groups)
        broken = set()
        for i, group in enumerate(groups):
            if group.greedy is None:
                raise ValueError(
                    f"group {group.group_id!r} has no greedy completion: ReMax's baseline comes "
                    "from the rollout (wants_greedy_sample)"
                )
            if group.greedy.result.status is Status.INFRA_ERROR:
                broken.add(i)
        metrics["groups_masked_greedy_infra_error"] = float(len(broken))
        return [s for s in samples if s.group not in broken], metrics

    def sample_advantages(self, rollout: Rollout) -> tuple[torch.Tensor, dict[str, float]]:
        matrix, valid = sample_matrix(rollout, rollout.scores)
        greedy = torch.tensor([greedy_reward(g) for g in rollout.groups])
        adv = greedy_baseline_advantages(matrix, greedy) * valid
        values = samples_at(adv, rollout.samples)
        scored = [
            g.greedy.reward
            for g in rollout.groups
            if g.greedy and not g.greedy.result.is_infra_error
        ]
        metrics = {
            **group_metrics(rollout.groups),
            **value_range("adv", values),
            "greedy_reward_mean": sum(scored) / len(scored) if scored else 0.0,
            "frac_zero_adv": float((values == 0).float().mean()),
        }
        return values, metrics

    def empty_batch_metrics(self, groups: Sequence[Group]) -> dict[str, float]:
        return group_metrics(groups)


def greedy_reward(group: Group) -> float:
    """The verifier's reward of the group's greedy completion (0 if it had an infra error: the
    group is masked then, see ``training_samples``)."""
    assert group.greedy is not None
    return float(group.greedy.reward)
