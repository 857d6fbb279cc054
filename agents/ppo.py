"""PPO with a critic, as in RLHF (Schulman et al. 2017; Ziegler et al. 2019; Ouyang et al. 2022).

The baseline GRPO removed: every completion token is an action, a learned value model
(``critic.ValueModel``: the policy's architecture, its own copy of the weights, a scalar head)
estimates V(s_t), and generalised advantage estimation turns per-token rewards into advantages.

Multi-turn episodes: only the model's tokens are actions; the env's tokens between turns are
skipped (packed out before GAE, the results scattered back), not treated as actions.

Per-token reward, with the KL to the reference as a penalty (k1: ``log pi_old - log pi_ref``)
and the verifier's score at the last token T:

    r_t = -beta * (log pi_old(y_t) - log pi_ref(y_t))  +  [t == T] * score

GAE (gamma, lambda), then whitening over the batch's tokens:

    delta_t = r_t + gamma V(s_{t+1}) - V(s_t),   A_t = sum_l (gamma lambda)^l delta_{t+l},
    R_t = A_t + V(s_t)

Actor: the clipped surrogate on A_t (``policy_gradient``), ``mu`` epochs. Critic, its own
AdamW, on the same batch and epochs, with value clipping:

    L_V = 0.5 * max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)

Costs GRPO does not pay: a second network's weights, gradients and optimiser state (under LoRA:
a second copy of the base weights and its own adapters), and its forward/backward passes.
``bench/memory_grpo_vs_ppo.py`` measures the difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from grpo_env.agents.advantages import (
    gae,
    pack_model_tokens,
    token_rewards,
    unpack_model_tokens,
    whiten,
)
from grpo_env.agents.base import adamw_with_schedule, clip_and_step
from grpo_env.agents.critic import ValueModel
from grpo_env.agents.losses import (
    LossAggregation,
    LossNormalizer,
    aggregate,
    clipped_value_loss,
    k1_kl,
    masked_mean,
)
from grpo_env.agents.policy_gradient import (
    PolicyGradientAgent,
    PolicyGradientConfig,
    Rollout,
    group_metrics,
    value_range,
)

CRITIC_OPTIMIZER = "critic_optimizer.pt"


class PPOConfig(PolicyGradientConfig):
    """PPO's knobs; the actor's are those of every clipped policy-gradient agent."""

    beta: float = Field(0.04, ge=0, description="KL penalty per token, in the reward (0: none)")
    loss_agg: LossAggregation = "token-mean"
    gamma: float = Field(1.0, gt=0, le=1, description="discount over completion tokens")
    lam: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    whiten_advantages: bool = Field(True, description="normalise A over the batch's tokens")
    value_clip: float | None = Field(0.2, gt=0, description="value clipping range (None: off)")
    critic_lr: float | None = Field(None, gt=0, description="critic learning rate (None: lr)")


class PPOAgent(PolicyGradientAgent):
    """PPO with a separate critic (see the module docstring)."""

    Config = PPOConfig
    config: PPOConfig
    kl_in = "reward"
    needs_groups = False  # every token is an action; groups are just how samples arrive
    batch_wide_advantages = True  # whitening (whiten_advantages)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        cfg = self.config
        self.critic = ValueModel.from_policy_model(self.policy.model)
        self.critic.eval()
        self.critic_optimizer, self.critic_scheduler = adamw_with_schedule(
            self.critic.trainable_parameters(), cfg, self.optimizer_steps_total, cfg.critic_lr
        )

    @property
    def needs_scoring_pass(self) -> bool:
        return True  # the critic's values, always

    @torch.no_grad()
    def scoring_pass(self, rollout: Rollout) -> None:
        if self.config.beta > 0:
            super().scoring_pass(rollout)  # pi_old and pi_ref, for the KL penalty
        values = []
        for cpu_batch in rollout.batches:
            with self.policy.autocast():
                values.append(self.critic.values(cpu_batch.to(self.policy.device)).cpu())
        rollout.extras["values"] = rollout.stack(values)

    def sample_advantages(self, rollout: Rollout) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        mask = rollout.mask
        kl = None
        if rollout.policy_logp is not None and rollout.ref_logp is not None:
            kl = k1_kl(rollout.policy_logp, rollout.ref_logp)
        values = rollout.extras["values"]
        # GAE over the model's tokens only (rule 10): env tokens of a multi-turn episode are
        # not actions, so they are packed out, and the results scattered back.
        packed_values, packed_mask = pack_model_tokens(values, mask)
        packed_kl = pack_model_tokens(kl, mask)[0] if kl is not None else None
        rewards = token_rewards(rollout.scores, packed_kl, packed_mask, cfg.beta)
        packed_adv, packed_returns = gae(
            rewards, packed_values, packed_mask, gamma=cfg.gamma, lam=cfg.lam
        )
        advantages = unpack_model_tokens(packed_adv, mask)
        returns = unpack_model_tokens(packed_returns, mask)
        rollout.extras["returns"] = returns
        if cfg.whiten_advantages:
            advantages = whiten(advantages, mask)
        keep = mask.bool()
        metrics = {
            **group_metrics(rollout.groups),
            **value_range("adv", advantages[keep]),
            "value_mean": masked_mean(values, mask),
            "return_mean": masked_mean(returns, mask),
            "kl_penalty": float((cfg.beta * kl * mask).sum() / len(rollout.samples))
            if kl is not None
            else 0.0,
        }
        return advantages, metrics

    # ----- the critic's update ------------------------------------------------------------

    def after_policy_update(self, rollout: Rollout) -> dict[str, float]:
        cfg = self.config
        device = self.policy.device
        old_values, returns = rollout.extras["values"], rollout.extras["returns"]
        lengths = [s.episode.model_tokens for s in rollout.samples]
        norm = LossNormalizer.for_batch("token-mean", lengths, self.sampling.max_new_tokens)
        loss_sum = clipped = tokens = 0.0
        grad_norms = []
        self.critic.train()
        try:
            for _ in range(cfg.mu):
                for k, cpu_batch in enumerate(rollout.batches):
                    batch = cpu_batch.to(device)
                    with self.policy.autocast():
                        values = self.critic.values(batch)
                    per_token, was_clipped = clipped_value_loss(
                        values,
                        rollout.part(old_values, k).to(device),
                        rollout.part(returns, k).to(device),
                        cfg.value_clip,
                    )
                    loss = aggregate(per_token, batch.loss_mask, norm)
                    loss.backward()
                    loss_sum += float(loss.detach())
                    clipped += float((was_clipped * batch.loss_mask).sum())
                    tokens += float(batch.loss_mask.sum())
                grad_norms.append(self._critic_step())
        finally:
            self.critic.eval()
        mask = rollout.mask
        residual = (returns - old_values) * mask
        variance = _masked_variance(returns, mask)
        return {
            "value_loss": loss_sum / cfg.mu,
            "value_clip_frac": clipped / max(tokens, 1.0),
            "critic_grad_norm": sum(grad_norms) / len(grad_norms),
            "critic_lr": float(self.critic_optimizer.param_groups[0]["lr"]),
            # 1 - Var(R - V) / Var(R) before this update: how much of the return V explains.
            "explained_variance": 1.0 - _masked_variance(residual, mask) / variance
            if variance > 0
            else 0.0,
        }

    def _critic_step(self) -> float:
        return clip_and_step(
            self.critic.trainable_parameters(),
            self.critic_optimizer,
            self.critic_scheduler,
            self.config.max_grad_norm,
        )

    # ----- persistence --------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        super().save(directory)
        self.critic.save(directory)
        state = {
            "optimizer": self.critic_optimizer.state_dict(),
            "scheduler": self.critic_scheduler.state_dict(),
        }
        torch.save(state, directory / CRITIC_OPTIMIZER)

    def load(self, directory: Path) -> None:
        super().load(directory)
        self.critic.load(directory)
        state = torch.load(directory / CRITIC_OPTIMIZER, map_location=self.policy.device)
        self.critic_optimizer.load_state_dict(state["optimizer"])
        self.critic_scheduler.load_state_dict(state["scheduler"])


def _masked_variance(values: torch.Tensor, mask: torch.Tensor) -> float:
    mean = masked_mean(values, mask)
    return masked_mean((values - mean).square(), mask)
