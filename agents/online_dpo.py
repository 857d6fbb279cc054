"""Online DPO (Guo et al. 2024, "Direct Language Model Alignment from Online AI Feedback"):
DPO's loss on preference pairs made, at every step, from the current policy's own samples
ranked by the verifier.

DPO (Rafailov et al. 2023) for a prompt q, a preferred completion o+ and a dispreferred o-:

    L = -log sigmoid( beta * log pi(o+|q)/pi_ref(o+|q) - beta * log pi(o-|q)/pi_ref(o-|q) )

where log pi(o | q) = sum_t log pi(o_t | q, o_<t) is the *sequence* logprob (a sum over the
completion's tokens, in float32, logits divided by the sampling temperature as everywhere
here). In DeepSeekMath's unified paradigm (Shao et al. 2024, sec. 5.2.1) its gradient
coefficient is sigma(beta log(pi(o-)/pi_ref(o-)) - beta log(pi(o+)/pi_ref(o+))), positive for
o+ and negative for o-. ``loss_type = "ipo"`` uses IPO's ``(h - 1/(2 beta))^2`` instead.

Pairs (``preference_pairs``), from each group of G scored samples, infra errors (and, with
``mask_truncated``, truncations) left out:

- ``pairs = "best_worst"`` (default): one pair, the highest- against the lowest-rewarded
  sample (ties broken by the first sample in the group);
- ``pairs = "all"``: every (i, j) with r_i > r_j, in group order, at most
  ``max_pairs_per_group`` of them.

A group whose valid rewards are all equal (or with fewer than two valid samples) gives no
pair: it has no preference to learn (counted in ``frac_no_pair``). A step without any pair
makes no update.

The loss is the mean over the batch's pairs; a pair never straddles two micro-batches
(``micro_batch_size`` sequences hold ``micro_batch_size // 2`` pairs), and each micro-batch's
sum is divided by the whole batch's pair count, so the gradient does not depend on the split.
One optimiser step per batch. The reference is the initial policy, frozen
(``reference.make_reference``): under LoRA the base model with its adapters disabled (no
second copy), under full fine-tuning a frozen copy. At the first step pi = pi_ref, so every
pair's loss is log 2 and its implicit reward margin 0. One process only (the trainer refuses
several ranks).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import Field

from grpo_env.agents.base import AgentConfig, OptimizingAgent
from grpo_env.agents.losses import DPOLossType, dpo_loss
from grpo_env.agents.policy_gradient import check_groups, group_metrics
from grpo_env.policy.logprobs import TokenBatch, pack_sequences, token_logprobs
from grpo_env.policy.reference import make_reference
from grpo_env.types import Episode, Group, Status

PairRule = Literal["best_worst", "all"]


class OnlineDPOConfig(AgentConfig):
    """Online DPO's knobs (names follow TRL's ``OnlineDPOConfig``)."""

    beta: float = Field(0.1, gt=0, description="DPO's beta (the reference is always loaded)")
    loss_type: DPOLossType = "sigmoid"
    pairs: PairRule = Field("best_worst", description="best_worst: one pair per group; all: "
                            "every higher/lower pair")  # fmt: skip
    max_pairs_per_group: int | None = Field(None, ge=1, description="cap for pairs = 'all'")
    mask_truncated: bool = Field(False, description="drop completions cut at max_new_tokens")


def preference_pairs(
    rewards: Sequence[float],
    valid: Sequence[bool],
    rule: PairRule = "best_worst",
    cap: int | None = None,
) -> list[tuple[int, int]]:
    """(chosen, rejected) index pairs of one group (see the module docstring)."""
    usable = [i for i, ok in enumerate(valid) if ok]
    if len(usable) < 2:
        return []
    if rule == "best_worst":
        best = max(usable, key=lambda i: (rewards[i], -i))
        worst = min(usable, key=lambda i: (rewards[i], i))
        return [(best, worst)] if rewards[best] > rewards[worst] else []
    if rule != "all":
        raise ValueError(f"pairs must be 'best_worst' or 'all', got {rule!r}")
    pairs = [(i, j) for i in usable for j in usable if rewards[i] > rewards[j]]
    return pairs[:cap] if cap is not None else pairs


@dataclass
class Pair:
    chosen: Episode
    rejected: Episode


class OnlineDPOAgent(OptimizingAgent):
    """Online DPO on verifier-ranked pairs of the policy's own samples (see the module
    docstring)."""

    Config = OnlineDPOConfig
    config: OnlineDPOConfig
    multi_rank = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.sampling.greedy:
            raise ValueError(
                "OnlineDPOAgent learns from sampled completions: temperature must be > 0 for "
                "training"
            )
        self.reference = make_reference(self.policy, self.config.beta)

    # ----- pairs --------------------------------------------------------------------------

    def make_pairs(self, groups: Sequence[Group]) -> tuple[list[Pair], dict[str, float]]:
        cfg = self.config
        pairs: list[Pair] = []
        infra = truncated = no_pair = 0
        for group in groups:
            valid = []
            for episode in group.episodes:
                if episode.result.status is Status.INFRA_ERROR:
                    infra += 1
                    valid.append(False)
                elif cfg.mask_truncated and episode.truncated:
                    truncated += 1
                    valid.append(False)
                else:
                    valid.append(True)
            found = preference_pairs(group.rewards, valid, cfg.pairs, cfg.max_pairs_per_group)
            no_pair += not found
            pairs.extend(Pair(group.episodes[i], group.episodes[j]) for i, j in found)
        for pair in pairs:
            if not pair.chosen.completion_ids or not pair.rejected.completion_ids:
                raise ValueError("OnlineDPOAgent trains on what the policy sampled: token ids")
        distinct = {id(e) for p in pairs for e in (p.chosen, p.rejected)}
        return pairs, {
            "pairs": float(len(pairs)),
            "frac_no_pair": no_pair / len(groups),
            "samples_trained": float(len(distinct)),
            "masked_infra_error": float(infra),
            "masked_truncated": float(truncated),
        }

    # ----- the update ---------------------------------------------------------------------

    def update(self, groups: Sequence[Group]) -> dict[str, float]:
        check_groups(groups)
        pairs, metrics = self.make_pairs(groups)
        metrics.update(group_metrics(groups))
        if not pairs:
            return {**metrics, "lr": self.lr}
        started = time.perf_counter()
        metrics.update(self.optimize_pairs(pairs))
        metrics["train_seconds"] = time.perf_counter() - started
        self.generator.sync_weights()
        return metrics

    def pair_batches(self, pairs: list[Pair]) -> list[tuple[list[Pair], TokenBatch]]:
        """Micro-batches of whole pairs, rows ``[c1, r1, c2, r2, ...]`` (shared prompts)."""
        per_batch = max(1, self.config.micro_batch_size // 2)
        batches = []
        for k in range(0, len(pairs), per_batch):
            chunk = pairs[k : k + per_batch]
            rows = [e for p in chunk for e in (p.chosen, p.rejected)]
            batch = pack_sequences(
                [e.prompt_ids for e in rows],
                [e.completion_ids for e in rows],
                self.policy.pad_token_id,
                loss_masks=[e.loss_mask for e in rows],  # multi-turn: the model's tokens only
            )
            batches.append((chunk, batch))
        return batches

    def sequence_logps(self, batch: TokenBatch, ref: bool = False) -> torch.Tensor:
        """Sum of each row's model-token logprobs ``[B]``, float32 (DPO's log pi(o|q)); a
        multi-turn episode's env tokens are not the policy's actions and are left out."""
        temperature = self.sampling.temperature
        if ref:
            assert self.reference is not None
            logp = self.reference.logprobs(batch, temperature)
        else:
            with self.policy.autocast():
                logp, _ = token_logprobs(self.policy.model, batch, temperature)
        return (logp.float() * batch.loss_mask).sum(dim=1)

    def optimize_pairs(self, pairs: list[Pair]) -> dict[str, float]:
        cfg = self.config
        device = self.policy.device
        total = len(pairs)  # the whole batch's normaliser, whatever the split
        sums = {"loss": 0.0, "chosen": 0.0, "rejected": 0.0, "correct": 0.0}
        sums.update(logp_chosen=0.0, logp_rejected=0.0, tokens=0.0)
        self.policy.model.train()
        try:
            for _, cpu_batch in self.pair_batches(pairs):
                batch = cpu_batch.to(device)
                ref = self.sequence_logps(batch, ref=True)  # first: its memory is freed early
                logp = self.sequence_logps(batch)
                loss, chosen, rejected = dpo_loss(
                    logp[0::2], logp[1::2], ref[0::2], ref[1::2], cfg.beta, cfg.loss_type
                )
                (loss.sum() / total).backward()
                sums["loss"] += float(loss.detach().sum())
                sums["chosen"] += float(chosen.sum())
                sums["rejected"] += float(rejected.sum())
                sums["correct"] += float((chosen > rejected).float().sum())
                sums["logp_chosen"] += float(logp[0::2].detach().sum())
                sums["logp_rejected"] += float(logp[1::2].detach().sum())
                sums["tokens"] += float(batch.loss_mask.sum())
            grad_norm = self.optimizer_step()
        finally:
            self.policy.model.eval()
        return {
            "loss": sums["loss"] / total,
            "rewards/chosen": sums["chosen"] / total,
            "rewards/rejected": sums["rejected"] / total,
            "rewards/margins": (sums["chosen"] - sums["rejected"]) / total,
            "rewards/accuracies": sums["correct"] / total,
            "logps/chosen": sums["logp_chosen"] / total,
            "logps/rejected": sums["logp_rejected"] / total,
            "grad_norm": grad_norm,
            "lr": self.lr,
            "train_tokens": sums["tokens"],
        }
