"""What every agent is: ``act`` (sample), ``update`` (learn from scored groups), ``save``/``load``.

An agent is built by the trainer with the policy, a generation backend, the sampling
parameters and its own config (``Agent.Config``, a pydantic model: the ``[agent]`` table of
the run's TOML file). It never sees tasks or environments, only chat observations and scored
``Group``s; the trainer decides which tasks are drawn, so every agent given the same seed sees
the same tasks in the same order.

``AgentConfig`` holds the optimiser knobs every learning agent shares; subclasses add theirs.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from grpo_env.policy.generation import Completion, Generator, SamplingParams
from grpo_env.policy.models import Policy
from grpo_env.policy.precision import check_master_weights
from grpo_env.strict_model import StrictModel
from grpo_env.types import Group

Messages = list[dict[str, str]]


class AgentConfig(StrictModel):
    """Optimiser and batching knobs shared by learning agents."""

    lr: float = Field(2e-5, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(0.0, ge=0)
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.99, ge=0, lt=1)
    adam_eps: float = Field(1e-8, gt=0)
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0, description="linear warm-up, in optimiser steps")
    max_grad_norm: float = Field(1.0, ge=0, description="gradient clipping (0: off)")
    micro_batch_size: int = Field(8, ge=1, description="sequences per forward/backward pass")


class Agent(ABC):
    """Base class of every agent (see the module docstring)."""

    Config: ClassVar[type[AgentConfig]] = AgentConfig
    # Whether the rollout adds one greedy completion per prompt, scored and attached to the
    # Group as ``greedy`` (ReMax's baseline). The env never knows; the trainer counts it.
    wants_greedy_sample: ClassVar[bool] = False
    # False: the agent's update keeps no N-rank bookkeeping (global counts, lock-step passes),
    # so the trainer refuses to run it on several ranks.
    multi_rank: ClassVar[bool] = True

    def __init__(
        self,
        policy: Policy,
        generator: Generator,
        sampling: SamplingParams,
        config: AgentConfig | dict[str, Any] | None = None,
        *,
        total_steps: int = 1,
    ):
        if isinstance(config, dict) or config is None:
            config = self.Config.model_validate(config or {})
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}")
        self.policy = policy
        self.generator = generator
        self.sampling = sampling
        self.config = config
        self.total_steps = total_steps

    @property
    def wants_step_rewards(self) -> bool:
        """Whether the rollout fills single-turn episodes' ``step_rewards`` from the env's
        spans (process supervision); False spares every other agent the work."""
        return False

    # ----- acting -------------------------------------------------------------------------

    def act(self, observations: Sequence[Messages], n: int) -> list[list[Completion]]:
        """``n`` completions for each chat observation, sampled from the current policy."""
        prompts = [self.policy.encode_chat(obs) for obs in observations]
        return self.generator.generate(prompts, n, self.sampling)

    def act_greedy(self, observations: Sequence[Messages]) -> list[Completion]:
        """One greedy (temperature 0) completion per chat observation, same policy, same
        length budget: what ``wants_greedy_sample`` asks the rollout for. Draws no random
        numbers, so the sampled completions stay those of every other agent."""
        prompts = [self.policy.encode_chat(obs) for obs in observations]
        greedy = dataclasses.replace(self.sampling, temperature=0.0)
        return [samples[0] for samples in self.generator.generate(prompts, 1, greedy)]

    def keep_group(self, group: Group) -> bool:
        """Whether a freshly scored group enters the batch (dynamic sampling says no to some)."""
        return True

    @property
    def refill_rounds(self) -> int:
        """How many extra rollouts the trainer may make to replace groups ``keep_group`` dropped."""
        return 0

    # ----- learning -----------------------------------------------------------------------

    @abstractmethod
    def update(self, groups: Sequence[Group]) -> dict[str, float]:
        """Learn from scored groups; return metrics (plain floats, for the logs)."""

    # ----- persistence --------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Weights (adapter or full) in ``directory/policy``, plus the agent's own state."""
        self.policy.save_weights(directory / "policy")

    def load(self, directory: Path) -> None:
        self.policy.load_weights(directory / "policy")
        self.generator.sync_weights()


class OptimizingAgent(Agent):
    """An agent that trains the policy with AdamW: owns the optimiser and its schedule."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        params = self.policy.trainable_parameters()
        if not params:
            raise ValueError("the policy has no trainable parameters")
        self.optimizer, self.scheduler = adamw_with_schedule(
            params, self.config, self.optimizer_steps_total
        )

    def rebuild_optimizer(self) -> None:
        """A fresh optimiser over the policy's current parameters (after FSDP2 sharded them)."""
        self.optimizer, self.scheduler = adamw_with_schedule(
            self.policy.trainable_parameters(), self.config, self.optimizer_steps_total
        )

    @property
    def optimizer_steps_total(self) -> int:
        """Optimiser steps over the whole run (the schedule's horizon)."""
        return self.total_steps

    def optimizer_step(self) -> float:
        """Clip, step, schedule; the gradient norm before clipping."""
        return clip_and_step(
            self.policy.trainable_parameters(),
            self.optimizer,
            self.scheduler,
            self.config.max_grad_norm,
        )

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save(self, directory: Path) -> None:
        super().save(directory)
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        torch.save(state, directory / "optimizer.pt")

    def load(self, directory: Path) -> None:
        super().load(directory)
        state = torch.load(directory / "optimizer.pt", map_location=self.policy.device)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def adamw_with_schedule(
    params: list[torch.nn.Parameter], cfg: AgentConfig, total_steps: int, lr: float | None = None
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``params`` with ``cfg``'s knobs (``lr`` overrides its rate), and its
    learning-rate schedule over ``total_steps`` optimiser steps. Float32 master weights only."""
    check_master_weights(params)
    optimizer = torch.optim.AdamW(
        params,
        lr=cfg.lr if lr is None else lr,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        eps=cfg.adam_eps,
        weight_decay=cfg.weight_decay,
        # One kernel over each tensor instead of a dozen element-wise passes: on 135M float32
        # weights on this CPU, 0.18 -> 0.03 s per step. Same update up to float rounding.
        fused=all(p.device.type in ("cpu", "cuda") for p in params) or None,
    )
    schedule = lr_lambda_for(cfg.lr_schedule, cfg.warmup_steps, total_steps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def clip_and_step(
    params: list[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    max_grad_norm: float,
) -> float:
    """Clip the gradient norm (0: no clipping), step, advance the schedule, drop the
    gradients; returns the norm before clipping."""
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm or math.inf)
    if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor holding the global norm
        grad_norm = grad_norm.full_tensor()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(grad_norm)


def lr_lambda_for(schedule: str, warmup: int, total: int) -> Any:
    """Multiplier of the base learning rate after ``step`` optimiser steps."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
