"""GRPO (Shao et al., DeepSeekMath 2024): PPO without a critic, baselined by the group mean.

For each prompt the agent samples G completions; the environment scores them; each
completion's advantage is its reward relative to its group (``advantages.group_advantages``).
The policy then takes ``mu`` optimiser steps on the clipped surrogate

    L = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) + beta * KL_k3(pi || pi_ref)

per completion token, aggregated as configured (``losses.aggregate``), where
``r = pi(token) / pi_old(token)``. ``pi_old`` is the policy that sampled the batch: its
logprobs are those of the first inner iteration's forward pass (detached), so the ratio is
exactly 1 there and only moves in iterations 2..mu. Logprobs use the sampling temperature.

Masked out of the baseline and the loss: samples whose verifier had an ``infra_error``, and,
if ``mask_truncated``, completions cut at ``max_new_tokens``. Dynamic sampling (DAPO) drops
groups whose rewards are all equal and asks the trainer to refill the batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from pydantic import Field, model_validator

from grpo_env.agents.advantages import STD_EPS, Advantages, ScaleRewards, group_advantages
from grpo_env.agents.base import AgentConfig, OptimizingAgent
from grpo_env.agents.losses import LossAggregation, LossNormalizer, aggregate, grpo_token_loss
from grpo_env.logprobs import TokenBatch, pack_sequences, token_logprobs
from grpo_env.reference import make_reference
from grpo_env.types import Episode, Group, Status


class GRPOConfig(AgentConfig):
    """GRPO's knobs (names follow TRL's ``GRPOConfig`` where they mean the same thing)."""

    beta: float = Field(0.04, ge=0, description="KL weight (0: no reference model is loaded)")
    epsilon_low: float = Field(0.2, gt=0, lt=1, description="clip range below 1")
    epsilon_high: float | None = Field(None, gt=0, description="clip range above 1 (None: low)")
    mu: int = Field(1, ge=1, description="optimiser steps on each batch (inner iterations)")
    loss_agg: LossAggregation = "seq-mean-token-mean"
    scale_rewards: ScaleRewards = "group"
    std_eps: float = Field(STD_EPS, ge=0, description="added to the std before dividing")
    mask_truncated: bool = Field(False, description="drop completions cut at max_new_tokens")
    dynamic_sampling: bool = Field(False, description="drop zero-variance groups and refill")
    max_refill_rounds: int = Field(3, ge=0, description="extra rollouts to refill a batch")

    @model_validator(mode="after")
    def _fill_epsilon_high(self) -> GRPOConfig:
        if self.epsilon_high is None:
            self.epsilon_high = self.epsilon_low
        return self


@dataclass
class _Sample:
    episode: Episode
    advantage: float


@dataclass
class _Stats:
    """Token- and sequence-weighted sums over micro-batches, turned into metrics at the end."""

    tokens: float = 0.0
    loss: float = 0.0
    kl: float = 0.0
    entropy: float = 0.0
    entropy_tokens: float = 0.0
    clip_low: float = 0.0
    clip_high: float = 0.0
    ratio: float = 0.0
    sampler_gap: float = 0.0
    sampler_tokens: float = 0.0
    grad_norms: list[float] = field(default_factory=list)


class GRPOAgent(OptimizingAgent):
    """Group Relative Policy Optimization (see the module docstring)."""

    Config = GRPOConfig
    config: GRPOConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.sampling.greedy:
            raise ValueError("GRPO samples its groups: temperature must be > 0 for training")
        self.reference = make_reference(self.policy, self.config.beta)

    @property
    def optimizer_steps_total(self) -> int:
        return self.total_steps * self.config.mu

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

    def advantages(self, groups: Sequence[Group]) -> Advantages:
        """Group-relative advantages ``[groups, G]``; infra errors masked (see advantages.py)."""
        check_groups(groups)
        width = max(len(g) for g in groups)
        rewards = torch.zeros(len(groups), width)
        valid = torch.zeros(len(groups), width, dtype=torch.bool)
        for i, group in enumerate(groups):
            for j, episode in enumerate(group.episodes):
                rewards[i, j] = episode.reward
                valid[i, j] = episode.result.status is not Status.INFRA_ERROR
        return group_advantages(
            rewards, valid, scale=self.config.scale_rewards, eps=self.config.std_eps
        )

    # ----- the update ---------------------------------------------------------------------

    def update(self, groups: Sequence[Group]) -> dict[str, float]:
        adv = self.advantages(groups)
        samples, masked = self._training_samples(groups, adv)
        metrics = advantage_metrics(adv, groups)
        metrics.update(masked)
        metrics["samples_trained"] = float(len(samples))
        if not samples:
            metrics["lr"] = self.lr
            return metrics
        started = time.perf_counter()
        stats = self._optimize(samples)
        elapsed = time.perf_counter() - started
        self.generator.sync_weights()
        metrics.update(self._stats_metrics(stats))
        metrics["train_seconds"] = elapsed
        metrics["train_tokens_per_s"] = stats.tokens / self.config.mu / max(elapsed, 1e-9)
        return metrics

    def _training_samples(
        self, groups: Sequence[Group], adv: Advantages
    ) -> tuple[list[_Sample], dict[str, float]]:
        samples: list[_Sample] = []
        infra = truncated = 0
        for i, group in enumerate(groups):
            for j, episode in enumerate(group.episodes):
                if episode.result.status is Status.INFRA_ERROR:
                    infra += 1
                    continue
                if self.config.mask_truncated and episode.truncated:
                    truncated += 1
                    continue
                if not episode.completion_ids:
                    raise ValueError(
                        f"episode of task {episode.task_id!r} has no completion token ids: "
                        "GRPO trains on what the policy sampled"
                    )
                samples.append(_Sample(episode, float(adv.values[i, j])))
        return samples, {"masked_infra_error": float(infra), "masked_truncated": float(truncated)}

    def _optimize(self, samples: list[_Sample]) -> _Stats:
        cfg = self.config
        policy = self.policy
        temperature = self.sampling.temperature
        lengths = [len(s.episode.completion_ids) for s in samples]
        norm = LossNormalizer.for_batch(cfg.loss_agg, lengths, self.sampling.max_new_tokens)
        chunks = [
            samples[k : k + cfg.micro_batch_size]
            for k in range(0, len(samples), cfg.micro_batch_size)
        ]
        batches = [
            pack_sequences(
                [s.episode.prompt_ids for s in chunk],
                [s.episode.completion_ids for s in chunk],
                policy.pad_token_id,
            )
            for chunk in chunks
        ]
        old: list[torch.Tensor] = []
        ref: list[torch.Tensor | None] = []
        stats = _Stats()
        policy.model.train()
        try:
            for iteration in range(cfg.mu):
                for k, (chunk, cpu_batch) in enumerate(zip(chunks, batches, strict=True)):
                    batch = cpu_batch.to(policy.device)
                    advantages = torch.tensor([s.advantage for s in chunk], device=policy.device)
                    first = iteration == 0
                    if first:
                        # The reference pass first: its transient memory is freed before the
                        # policy's graph is built, which lowers the step's peak.
                        ref.append(
                            self.reference.logprobs(batch, temperature) if self.reference else None
                        )
                    with policy.autocast():
                        logp, entropy = token_logprobs(
                            policy.model, batch, temperature, with_entropy=first
                        )
                    if first:
                        # pi_old is the sampling policy: this very forward pass, detached.
                        old.append(logp.detach())
                    per_token, terms, kl = grpo_token_loss(
                        logp,
                        old[k],
                        advantages,
                        eps_low=cfg.epsilon_low,
                        eps_high=cfg.epsilon_high or cfg.epsilon_low,
                        beta=cfg.beta,
                        ref_logp=ref[k],
                    )
                    loss = aggregate(per_token, batch.completion_mask, norm)
                    loss.backward()
                    self._accumulate(stats, batch, chunk, loss, terms, kl, entropy, logp)
                stats.grad_norms.append(self.optimizer_step())
        finally:
            policy.model.eval()
        return stats

    @staticmethod
    def _accumulate(stats, batch: TokenBatch, chunk, loss, terms, kl, entropy, logp) -> None:
        mask = batch.completion_mask
        tokens = float(mask.sum())
        stats.tokens += tokens
        stats.loss += float(loss.detach())
        stats.clip_low += float((terms.clipped_low * mask).sum())
        stats.clip_high += float((terms.clipped_high * mask).sum())
        stats.ratio += float((terms.ratio.detach() * mask).sum())
        if kl is not None:
            stats.kl += float((kl.detach() * mask).sum())
        if entropy is not None:
            stats.entropy += float((entropy * mask).sum())
            stats.entropy_tokens += tokens
            # How far the sampler's logprobs are from the trainer's (backend/numerics check).
            for row, sample in enumerate(chunk):
                sampled = sample.episode.logprobs
                if sampled:
                    mine = logp.detach()[row, : len(sampled)].cpu()
                    stats.sampler_gap += float((mine - torch.tensor(sampled)).abs().sum())
                    stats.sampler_tokens += len(sampled)

    def _stats_metrics(self, stats: _Stats) -> dict[str, float]:
        tokens = max(stats.tokens, 1.0)
        clip_low, clip_high = stats.clip_low / tokens, stats.clip_high / tokens
        metrics = {
            "loss": stats.loss / self.config.mu,
            "kl": stats.kl / tokens,
            "entropy": stats.entropy / max(stats.entropy_tokens, 1.0),
            "clip_ratio": clip_low + clip_high,
            "clip_ratio_low": clip_low,
            "clip_ratio_high": clip_high,
            "ratio_mean": stats.ratio / tokens,
            "grad_norm": sum(stats.grad_norms) / len(stats.grad_norms),
            "lr": self.lr,
            "train_tokens": stats.tokens / self.config.mu,
        }
        if stats.sampler_tokens:
            metrics["sampler_logprob_gap"] = stats.sampler_gap / stats.sampler_tokens
        return metrics


def check_groups(groups: Sequence[Group]) -> None:
    """Correctness rule 1: real groups (>= 2 samples of one task), distinct group ids."""
    if not groups:
        raise ValueError("update() got no groups")
    seen: set[str] = set()
    for group in groups:
        if len(group) < 2:
            raise ValueError(
                f"group {group.group_id!r} has {len(group)} sample: a group-relative baseline "
                "needs G >= 2 completions per prompt"
            )
        if group.group_id in seen:
            raise ValueError(f"group id {group.group_id!r} appears twice in one batch")
        seen.add(group.group_id)


def advantage_metrics(adv: Advantages, groups: Sequence[Group]) -> dict[str, float]:
    valid = torch.zeros_like(adv.values, dtype=torch.bool)
    for i, group in enumerate(groups):
        for j, episode in enumerate(group.episodes):
            valid[i, j] = episode.result.status is not Status.INFRA_ERROR
    values = adv.values[valid]
    return {
        "frac_zero_std": float(adv.zero_std.float().mean()),
        "groups_degenerate": float(adv.degenerate.sum()),
        "adv_min": float(values.min()) if values.numel() else 0.0,
        "adv_mean": float(values.mean()) if values.numel() else 0.0,
        "adv_max": float(values.max()) if values.numel() else 0.0,
    }
