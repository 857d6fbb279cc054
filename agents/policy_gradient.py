"""The update every policy-gradient agent here shares: PPO's clipped surrogate on sampled tokens.

    samples  = the batch's completions (infra errors, and truncations if asked, masked out)
    scoring  = old and reference logprobs first, no grad   (only when the advantages need them)
    A        = the agent's advantages: one per completion, or one per token
    repeat mu times:
        for each micro-batch:
            logp = log pi(token | prefix)        (logits / temperature, float32)
            iteration 1: pi_old = logp.detach()  (the ratio is exactly 1 there)
            L    = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) + beta_loss * KL(pi || ref)
            aggregate L (``loss_agg``) with whole-batch normalisers, backward
        clip the gradient, one optimiser step

Agents differ in ``A`` and in where the KL to the reference goes:

- in the loss (``kl_in = "loss"``: GRPO and its presets with k3, REINFORCE++-baseline with k2);
- in the reward (``kl_in = "reward"``: PPO, RLOO, REINFORCE++, with k1): then the advantages
  depend on the policy's and the reference's logprobs, so a no-grad *scoring pass* computes
  them before the update. The ratio's ``pi_old`` still comes from iteration 1's own forward pass,
  so the ratio is exactly 1 there whatever the kernels do.

Correctness rules of DESIGN.md kept here: groups checked (1), masks from lengths (3), logprobs
at the sampling temperature (4), ratio 1 and KL 0 at the first step (5), beta = 0 loads no
reference (6), the loss invariant to the micro-batch split (7), infra errors and (optionally)
truncations masked (8).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator

from grpo_env.agents.advantages import Advantages, group_advantages
from grpo_env.agents.base import AgentConfig, OptimizingAgent
from grpo_env.agents.losses import (
    KLEstimator,
    LossAggregation,
    LossNormalizer,
    SurrogateTerms,
    aggregate,
    k3_kl,
    policy_token_loss,
)
from grpo_env.policy.logprobs import TokenBatch, pack_sequences, token_logprobs
from grpo_env.policy.reference import make_reference
from grpo_env.training import distributed, parallel
from grpo_env.types import Episode, Group, Status


class PolicyGradientConfig(AgentConfig):
    """Knobs of the clipped policy-gradient update (names follow TRL where they mean the same)."""

    beta: float = Field(0.04, ge=0, description="KL weight (0: no reference model is loaded)")
    epsilon_low: float = Field(0.2, gt=0, lt=1, description="clip range below 1")
    epsilon_high: float | None = Field(None, gt=0, description="clip range above 1 (None: low)")
    mu: int = Field(1, ge=1, description="optimiser steps on each batch (inner iterations)")
    loss_agg: LossAggregation = "seq-mean-token-mean"
    mask_truncated: bool = Field(False, description="drop completions cut at max_new_tokens")

    @model_validator(mode="after")
    def _fill_epsilon_high(self) -> PolicyGradientConfig:
        if self.epsilon_high is None:
            self.epsilon_high = self.epsilon_low
        return self


@dataclass
class TrainSample:
    """One completion the loss sees, and where it sits among the groups."""

    episode: Episode
    group: int
    index: int


@dataclass
class Rollout:
    """A batch ready for the update: samples packed in micro-batches, plus, after a scoring
    pass, the policy's and the reference's logprobs of every completion token.

    Whole-batch tensors are ``[N, C]`` (N samples, C the longest completion), zero-padded.
    """

    groups: Sequence[Group]
    samples: list[TrainSample]
    batches: list[TokenBatch]  # on the CPU, ``micro_batch_size`` samples each, in order
    scores: torch.Tensor  # [N] the verifier's reward of each sample
    mask: torch.Tensor  # [N, C] the loss mask: the model's completion tokens (env tokens 0)
    policy_logp: torch.Tensor | None = None  # [N, C] scoring pass: pi_old
    ref_logp: torch.Tensor | None = None  # [N, C] scoring pass: pi_ref
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # an agent's own ([N, C])

    def rows(self, k: int) -> slice:
        start = sum(len(b.completion_ids) for b in self.batches[:k])
        return slice(start, start + len(self.batches[k].completion_ids))

    def stack(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """Micro-batch tensors ``[B_k, C_k]`` -> one ``[N, C]`` tensor (zero-padded)."""
        width = self.mask.shape[1]
        return torch.cat([torch.nn.functional.pad(p, (0, width - p.shape[1])) for p in parts])

    def part(self, values: torch.Tensor, k: int) -> torch.Tensor:
        """Micro-batch ``k``'s slice of a whole-batch ``[N]`` or ``[N, C]`` tensor."""
        rows = values[self.rows(k)]
        if values.dim() == 1:
            return rows
        return rows[:, : self.batches[k].completion_ids.shape[1]]


@dataclass
class UpdateStats:
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


class PolicyGradientAgent(OptimizingAgent):
    """Base class of the clipped policy-gradient agents (see the module docstring).

    Subclasses define ``sample_advantages``; they may change ``kl_in``, ``kl_estimator`` (the
    KL *loss*) and ``needs_groups`` (whether a batch must be groups of >= 2 samples).
    """

    Config: ClassVar[type[AgentConfig]] = PolicyGradientConfig
    config: PolicyGradientConfig
    kl_in: ClassVar[Literal["loss", "reward"]] = "loss"
    kl_estimator: ClassVar[KLEstimator] = "k3"
    needs_groups: ClassVar[bool] = True
    # Set by grpo_env.training.parallel on N ranks: the DDP wrapper or the FSDP2 root to train
    # through.
    train_module: torch.nn.Module | None = None
    # Advantages normalised over the whole batch (whitening): a rank's share would give other
    # numbers than one process, so N ranks refuse the agent (DESIGN rule 11).
    batch_wide_advantages: ClassVar[bool] = False

    @property
    def advantages_need_whole_batch(self) -> bool:
        return self.batch_wide_advantages or getattr(self.config, "scale_rewards", "") == "batch"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.sampling.greedy:
            raise ValueError(
                f"{type(self).__name__} learns from sampled completions: temperature must be > 0 "
                "for training"
            )
        self.reference = make_reference(self.policy, self.config.beta)

    @property
    def optimizer_steps_total(self) -> int:
        return self.total_steps * self.config.mu

    @property
    def beta_loss(self) -> float:
        """The KL weight inside the loss (0 when the KL is part of the reward)."""
        return self.config.beta if self.kl_in == "loss" else 0.0

    @property
    def needs_scoring_pass(self) -> bool:
        """Whether the advantages need old and reference logprobs before the update."""
        return self.kl_in == "reward" and self.config.beta > 0

    # ----- what subclasses define ---------------------------------------------------------

    @abstractmethod
    def sample_advantages(self, rollout: Rollout) -> tuple[torch.Tensor, dict[str, float]]:
        """Advantages ``[N]`` (one per completion) or ``[N, C]`` (per token), and metrics."""

    def empty_batch_metrics(self, groups: Sequence[Group]) -> dict[str, float]:
        """Metrics of a batch in which every sample was masked out (nothing to train on)."""
        return group_metrics(groups)

    def after_policy_update(self, rollout: Rollout) -> dict[str, float]:
        """More learning on the same batch (PPO's critic); its metrics."""
        return {}

    def token_loss(
        self,
        logp: torch.Tensor,
        old_logp: torch.Tensor,
        advantages: torch.Tensor,
        ref_logp: torch.Tensor | None,
    ) -> tuple[torch.Tensor, SurrogateTerms, torch.Tensor | None]:
        """The per-token loss ``[B, C]`` (before aggregation), its surrogate terms and KL."""
        cfg = self.config
        return policy_token_loss(
            logp,
            old_logp,
            advantages,
            eps_low=cfg.epsilon_low,
            eps_high=cfg.epsilon_high or cfg.epsilon_low,
            beta=self.beta_loss,
            ref_logp=ref_logp,
            kl_estimator=self.kl_estimator,
        )

    # ----- the update ---------------------------------------------------------------------

    def update(self, groups: Sequence[Group]) -> dict[str, float]:
        if self.needs_groups:
            check_groups(groups)
        elif not groups:
            raise ValueError("update() got no groups")
        samples, metrics = self.training_samples(groups)
        metrics["samples_trained"] = float(len(samples))
        if not samples:
            metrics = {**self.empty_batch_metrics(groups), **metrics, "lr": self.lr}
            return metrics
        started = time.perf_counter()  # the scoring pass is training work too
        rollout = self.prepare(groups, samples)
        advantages, adv_metrics = self.sample_advantages(rollout)
        metrics = {**adv_metrics, **metrics}
        stats = self.optimize_policy(rollout, advantages)
        more = self.after_policy_update(rollout)
        elapsed = time.perf_counter() - started
        self.generator.sync_weights()
        metrics.update(self.stats_metrics(stats))
        metrics.update(more)
        metrics["train_seconds"] = elapsed
        metrics["train_tokens_per_s"] = stats.tokens / self.config.mu / max(elapsed, 1e-9)
        return metrics

    def training_samples(
        self, groups: Sequence[Group]
    ) -> tuple[list[TrainSample], dict[str, float]]:
        """The completions the loss sees: infra errors (and, if asked, truncations) left out."""
        samples: list[TrainSample] = []
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
                        f"{type(self).__name__} trains on what the policy sampled"
                    )
                samples.append(TrainSample(episode, i, j))
        return samples, {"masked_infra_error": float(infra), "masked_truncated": float(truncated)}

    def prepare(self, groups: Sequence[Group], samples: list[TrainSample]) -> Rollout:
        """Pack micro-batches; run the scoring pass if the advantages need it."""
        size = self.config.micro_batch_size
        pad = self.policy.pad_token_id
        batches = [
            pack_sequences(
                [s.episode.prompt_ids for s in samples[k : k + size]],
                [s.episode.completion_ids for s in samples[k : k + size]],
                pad,
                [s.episode.loss_mask for s in samples[k : k + size]],
            )
            for k in range(0, len(samples), size)
        ]
        width = max(b.completion_ids.shape[1] for b in batches)
        mask = torch.cat(
            [
                torch.nn.functional.pad(b.loss_mask, (0, width - b.loss_mask.shape[1]))
                for b in batches
            ]
        )
        rollout = Rollout(
            groups=groups,
            samples=samples,
            batches=batches,
            scores=torch.tensor([s.episode.reward for s in samples], dtype=torch.float32),
            mask=mask,
        )
        if self.needs_scoring_pass:
            self.scoring_pass(rollout)
        return rollout

    @torch.no_grad()
    def scoring_pass(self, rollout: Rollout) -> None:
        """``pi_old`` and ``pi_ref`` logprobs of every completion token, without gradients."""
        policy, temperature = self.policy, self.sampling.temperature
        old, ref = [], []
        policy.model.eval()
        for cpu_batch in rollout.batches:
            batch = cpu_batch.to(policy.device)
            with policy.autocast():
                old.append(token_logprobs(policy.model, batch, temperature)[0].cpu())
            if self.reference is not None:
                ref.append(self.reference.logprobs(batch, temperature).cpu())
        rollout.policy_logp = rollout.stack(old)
        rollout.ref_logp = rollout.stack(ref) if ref else None

    def optimize_policy(self, rollout: Rollout, advantages: torch.Tensor) -> UpdateStats:
        cfg = self.config
        policy = self.policy
        temperature = self.sampling.temperature
        # Only the model's tokens carry loss (rule 10): the normalisers count those.
        lengths = [s.episode.model_tokens for s in rollout.samples]
        norm = LossNormalizer.for_batch(cfg.loss_agg, lengths, self.sampling.max_new_tokens)
        # N ranks (DESIGN rule 11): global counts, losses scaled against the gradient average,
        # the same number of passes on every rank.
        norm = distributed.global_normalizer(norm)
        scale = distributed.gradient_scale()
        module = self.train_module if self.train_module is not None else policy.model
        wrapped = self.train_module is not None
        pad_id = policy.pad_token_id
        passes = parallel.step_pass_count(len(rollout.batches)) if wrapped else len(rollout.batches)
        chunks = [rollout.samples[rollout.rows(k)] for k in range(len(rollout.batches))]
        old: list[torch.Tensor] = []
        ref: list[torch.Tensor | None] = []
        stats = UpdateStats()
        policy.model.train()
        try:
            for iteration in range(cfg.mu):
                # One autocast region per optimiser step: autocast casts each float32 weight to
                # bf16 once per region, so the micro-batches share the casts (the weights change
                # only at the step, outside the region).
                with policy.autocast():
                    for k, (chunk, cpu_batch) in enumerate(
                        zip(chunks, rollout.batches, strict=True)
                    ):
                        batch = cpu_batch.to(policy.device)
                        adv = rollout.part(advantages, k).to(policy.device)
                        first = iteration == 0
                        if first:
                            # The reference pass first: its transient memory is freed before the
                            # policy's graph is built, which lowers the step's peak.
                            ref.append(self._reference_logp(rollout, k, batch))
                        last = k == passes - 1
                        with parallel.gradient_sync(module, last):
                            # One forward per backward on N ranks (flat layout): DDP and FSDP2
                            # hooks expect that.
                            logp, entropy = token_logprobs(
                                module,
                                batch,
                                temperature,
                                with_entropy=first,
                                share_prompts=False if wrapped else None,
                            )
                            if first:
                                # pi_old is the sampling policy: this very forward pass, detached.
                                old.append(logp.detach())
                            per_token, terms, _ = self.token_loss(logp, old[k], adv, ref[k])
                            loss = aggregate(per_token, batch.loss_mask, norm)
                            (loss * scale if scale != 1.0 else loss).backward()
                        kl = k3_kl(logp.detach(), ref[k]) if ref[k] is not None else None
                        self._accumulate(stats, batch, chunk, loss, terms, kl, entropy, logp)
                    for k in range(len(rollout.batches), passes):
                        if iteration == 0 and self.reference is not None:
                            # A sharded reference all-gathers too: the same collectives, in order.
                            self.reference.logprobs(parallel.pad_batch(pad_id, policy.device), 1.0)
                        parallel.pad_pass(module, pad_id, policy.device, k == passes - 1)
                stats.grad_norms.append(self.optimizer_step())
        finally:
            policy.model.eval()
        return reduce_stats(stats) if wrapped else stats

    def _reference_logp(self, rollout: Rollout, k: int, batch: TokenBatch) -> torch.Tensor | None:
        if rollout.ref_logp is not None:
            return rollout.part(rollout.ref_logp, k).to(self.policy.device)
        if self.reference is None:
            return None
        return self.reference.logprobs(batch, self.sampling.temperature)

    @staticmethod
    def _accumulate(stats, batch: TokenBatch, chunk, loss, terms, kl, entropy, logp) -> None:
        mask = batch.loss_mask
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
                if sampled:  # on the model's tokens (env tokens have no sampler logprob)
                    mine = logp.detach()[row, : len(sampled)].cpu()
                    model = mask[row, : len(sampled)].cpu()
                    gap = (mine - torch.tensor(sampled)).abs() * model
                    stats.sampler_gap += float(gap.sum())
                    stats.sampler_tokens += float(model.sum())

    def stats_metrics(self, stats: UpdateStats) -> dict[str, float]:
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


# ----- helpers shared by the agents -----------------------------------------------------------


def reduce_stats(stats: UpdateStats) -> UpdateStats:
    """The step's sums over every rank (the gradient norms are global already)."""
    names = [f for f in UpdateStats.__dataclass_fields__ if f != "grad_norms"]
    totals = distributed.all_reduce([getattr(stats, f) for f in names])
    return UpdateStats(**dict(zip(names, totals, strict=True)), grad_norms=stats.grad_norms)


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


def reward_matrix(groups: Sequence[Group]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards ``[groups, G]`` (zero-padded) and which entries are valid (no infra error)."""
    width = max(len(g) for g in groups)
    rewards = torch.zeros(len(groups), width)
    valid = torch.zeros(len(groups), width, dtype=torch.bool)
    for i, group in enumerate(groups):
        for j, episode in enumerate(group.episodes):
            rewards[i, j] = episode.reward
            valid[i, j] = episode.result.status is not Status.INFRA_ERROR
    return rewards, valid


def advantage_metrics(
    adv: Advantages, groups: Sequence[Group], valid: torch.Tensor | None = None
) -> dict[str, float]:
    """Group statistics and the advantages' range over ``valid`` entries (default: all but
    infra errors)."""
    if valid is None:
        _, valid = reward_matrix(groups)
    values = adv.values[valid]
    return {
        "frac_zero_std": float(adv.zero_std.float().mean()),
        "groups_degenerate": float(adv.degenerate.sum()),
        **value_range("adv", values),
    }


def group_metrics(groups: Sequence[Group]) -> dict[str, float]:
    """``frac_zero_std`` of a batch (the share of groups without signal), for any agent."""
    if not groups or min(len(g) for g in groups) < 2:
        return {}
    rewards, valid = reward_matrix(groups)
    adv = group_advantages(rewards, valid)
    return {
        "frac_zero_std": float(adv.zero_std.float().mean()),
        "groups_degenerate": float(adv.degenerate.sum()),
    }


def value_range(prefix: str, values: torch.Tensor) -> dict[str, float]:
    """``{prefix}_min/mean/max`` of a flat tensor (zeros when it is empty)."""
    if not values.numel():
        return {f"{prefix}_min": 0.0, f"{prefix}_mean": 0.0, f"{prefix}_max": 0.0}
    return {
        f"{prefix}_min": float(values.min()),
        f"{prefix}_mean": float(values.mean()),
        f"{prefix}_max": float(values.max()),
    }


def samples_at(matrix: torch.Tensor, samples: Sequence[TrainSample]) -> torch.Tensor:
    """Entries ``[group, index]`` of a ``[groups, G]`` matrix for each training sample: ``[N]``."""
    return torch.stack([matrix[s.group, s.index] for s in samples])


def sample_matrix(rollout: Rollout, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``values`` ``[N]`` laid out as ``[groups, G]``, and which entries are training
    samples (masked ones are 0 and invalid): the inverse of ``samples_at``."""
    width = max(len(g) for g in rollout.groups)
    matrix = torch.zeros(len(rollout.groups), width, dtype=values.dtype)
    valid = torch.zeros(len(rollout.groups), width, dtype=torch.bool)
    for sample, value in zip(rollout.samples, values, strict=True):
        matrix[sample.group, sample.index] = value
        valid[sample.group, sample.index] = True
    return matrix, valid


def sequence_kl(rollout: Rollout) -> torch.Tensor | None:
    """Sum over each completion of the k1 KL estimate ``log pi_old - log pi_ref``: ``[N]``
    (None without a scoring pass or a reference)."""
    if rollout.policy_logp is None or rollout.ref_logp is None:
        return None
    return ((rollout.policy_logp - rollout.ref_logp) * rollout.mask).sum(dim=1)
