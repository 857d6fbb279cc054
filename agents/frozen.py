"""The control: samples from the initial policy and never updates it.

Trained against the same tasks and seeds as a learning agent, it shows how much of a reward
curve is the algorithm and how much is noise or an easy task. It has no optimiser and no
knobs; its weights are frozen (no gradient buffers), and a checkpoint records where the
initial weights come from instead of copying them, so ``grpo-env eval --checkpoint`` works on
a frozen run like on any other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grpo_env.agents.base import Agent
from grpo_env.agents.policy_gradient import group_metrics
from grpo_env.strict_model import StrictModel
from grpo_env.types import Group

POINTER = "policy.json"


class FrozenConfig(StrictModel):
    """The frozen agent has no knobs."""


class FrozenAgent(Agent):
    """Acts with the initial policy; ``update`` changes nothing (see the module docstring)."""

    Config = FrozenConfig  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.policy.model.requires_grad_(False)

    def update(self, groups: Sequence[Group]) -> dict[str, float]:
        """Nothing is learnt; the batch's statistics are still reported, for comparisons."""
        return {**group_metrics(groups), "samples_trained": 0.0}

    def save(self, directory: Path) -> None:
        target = directory / "policy"
        target.mkdir(parents=True, exist_ok=True)
        pointer = {"source": self.policy.source, "lora": False, "frozen": True}
        (target / POINTER).write_text(json.dumps(pointer) + "\n")

    def load(self, directory: Path) -> None:
        """Nothing to restore: the weights never changed. Refuses another agent's checkpoint."""
        path = directory / "policy" / POINTER
        if not path.is_file() or not json.loads(path.read_text()).get("frozen"):
            raise ValueError(f"{directory} was not written by the frozen agent")
