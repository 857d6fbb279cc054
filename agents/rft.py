"""Rejection-sampling fine-tuning (RFT, Yuan et al. 2023), offline: sample once from the
initial policy, keep the good samples, train on the kept set for several epochs.

In DeepSeekMath's unified paradigm (Shao et al. 2024, sec. 5.2.1) the gradient is

    grad J = E[(q, o) ~ D] ( 1/|o| sum_t GC(q, o, t) * grad log pi(o_t | q, o_<t) )

with the data source D = questions q and outputs o sampled from the *initial* (SFT) policy,
and GC(q, o, t) = I(o): 1 if o's answer is correct (kept), 0 otherwise. Maximising the
likelihood of the kept set is supervised fine-tuning on it:

    L = -1/|K| sum_{o in K} 1/|o| sum_t log pi(o_t | q, o_<t)      (K: the kept samples)

The keep rule is online RFT's (``keep``, ``reward_threshold``: ``agents.online_rft``).

How it fits the trainer's loop (draw tasks, roll out G samples each, ``update``): the agent
does not learn while it collects, so every sample of the first ``collect_steps`` steps comes
from the initial policy, on the very tasks (same seed, same order) the online agents see.
``update`` keeps each step's kept samples; at step ``collect_steps`` it trains on them for
``epochs`` epochs. One epoch replays the collected steps in a shuffled order (a local RNG:
the run's random stream is untouched), one optimiser step per step that kept anything, with
the kept samples of that step as the batch (micro-batched, whole-batch normalisers, the shared
update of ``policy_gradient`` with ``mu = 1`` and coefficient 1 for every sample).

Sample budget, matched to the online methods: by default ``collect_steps`` is the run's
``steps``, so RFT draws exactly ``steps x prompts_per_step x G`` samples, the online methods'
total, all of them from the initial policy, and trains once at the last step (its reward curve
stays the initial policy's: the held-out evaluation after the run shows what it learnt). With
``collect_steps < steps`` it trains on ``collect_steps x prompts_per_step x G`` samples and the
later steps sample from the trained policy without learning (a measurement, like the frozen
control's steps), which shows the trained policy's reward in the curve.

The kept set is part of a checkpoint (``rft_kept.jsonl``), so ``--resume`` continues the
collection. One process only (the trainer refuses several ranks): a rank with nothing kept in
a step would fall out of step with the others.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from grpo_env.agents.advantages import rejection_mask
from grpo_env.agents.online_rft import OnlineRFTAgent, OnlineRFTConfig
from grpo_env.agents.policy_gradient import TrainSample, UpdateStats, group_metrics
from grpo_env.types import Episode, Group

KEPT_FILE = "rft_kept.jsonl"
STATE_FILE = "rft_state.json"


class RFTConfig(OnlineRFTConfig):
    """Offline RFT's knobs: online RFT's keep rule, the collection and the epochs."""

    mu: int = Field(1, ge=1, le=1, description="one optimiser step per stored batch (see epochs)")
    epochs: int = Field(3, ge=1, description="passes over the kept set")
    collect_steps: int | None = Field(
        None, ge=1, description="steps sampled from the initial policy (None: every step)"
    )


class RFTAgent(OnlineRFTAgent):
    """Offline rejection-sampling fine-tuning (see the module docstring)."""

    Config = RFTConfig
    config: RFTConfig
    multi_rank = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.updates_seen = 0
        self.stored: list[list[Episode]] = []  # the kept samples of each collected step

    @property
    def collect_steps(self) -> int:
        return min(self.config.collect_steps or self.total_steps, self.total_steps)

    @property
    def optimizer_steps_total(self) -> int:
        # At most one optimiser step per collected step and epoch.
        return max(1, (self.config.collect_steps or self.total_steps) * self.config.epochs)

    def update(self, groups: Sequence[Group]) -> dict[str, float]:
        if not groups:
            raise ValueError("update() got no groups")
        self.updates_seen += 1
        if self.updates_seen > self.collect_steps:  # trained: sampling only, no more learning
            return {**group_metrics(groups), "samples_trained": 0.0, "lr": self.lr}
        samples, metrics = self.training_samples(groups)
        kept = self.keep(groups, samples)
        self.stored.append([s.episode for s in kept])
        metrics.update(group_metrics(groups))
        metrics["samples_kept"] = float(len(kept))
        metrics["frac_kept"] = len(kept) / max(len(samples), 1)
        metrics["rft_kept_total"] = float(sum(len(s) for s in self.stored))
        metrics["samples_trained"] = 0.0
        metrics["lr"] = self.lr
        if self.updates_seen == self.collect_steps:
            metrics.update(self.train_on_kept_set())
        return metrics

    def keep(self, groups: Sequence[Group], samples: list[TrainSample]) -> list[TrainSample]:
        """The samples (infra errors already out) the keep rule keeps."""
        if not samples:
            return []
        width = max(len(g) for g in groups)
        rewards = torch.zeros(len(groups), width)
        valid = torch.zeros(len(groups), width, dtype=torch.bool)
        for s in samples:
            rewards[s.group, s.index] = s.episode.reward
            valid[s.group, s.index] = True
        mask = rejection_mask(
            rewards, valid, keep=self.config.keep, threshold=self.config.reward_threshold
        )
        return [s for s in samples if mask[s.group, s.index]]

    def train_on_kept_set(self) -> dict[str, float]:
        """``epochs`` passes over the stored steps' kept samples (see the module docstring)."""
        batches = [episodes for episodes in self.stored if episodes]
        order_rng = torch.Generator().manual_seed(0)
        total = UpdateStats()
        steps = 0
        for _ in range(self.config.epochs):
            for i in torch.randperm(len(batches), generator=order_rng).tolist():
                samples = [TrainSample(e, 0, j) for j, e in enumerate(batches[i])]
                rollout = self.prepare([], samples)
                stats = self.optimize_policy(rollout, torch.ones(len(samples)))
                for name in UpdateStats.__dataclass_fields__:
                    setattr(total, name, getattr(total, name) + getattr(stats, name))
                steps += 1
        self.generator.sync_weights()
        if not steps:
            return {"rft_optimizer_steps": 0.0}
        metrics = self.stats_metrics(total)
        metrics["loss"] = total.loss / steps
        metrics["samples_trained"] = float(sum(len(b) for b in batches) * self.config.epochs)
        metrics["rft_optimizer_steps"] = float(steps)
        return metrics

    # ----- persistence: the collection so far -------------------------------------------------

    def save(self, directory: Path) -> None:
        super().save(directory)
        with (directory / KEPT_FILE).open("w", encoding="utf-8") as handle:
            for step, episodes in enumerate(self.stored):
                for episode in episodes:
                    handle.write(json.dumps({"step": step, "episode": episode.model_dump()}))
                    handle.write("\n")
        state = {"updates_seen": self.updates_seen, "collected": len(self.stored)}
        (directory / STATE_FILE).write_text(json.dumps(state) + "\n")

    def load(self, directory: Path) -> None:
        super().load(directory)
        state = json.loads((directory / STATE_FILE).read_text())
        self.updates_seen = int(state["updates_seen"])
        self.stored = [[] for _ in range(int(state["collected"]))]
        for line in (directory / KEPT_FILE).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            self.stored[row["step"]].append(Episode.model_validate(row["episode"]))
