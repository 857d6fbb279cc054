"""The control: samples from the initial policy and never updates it.

Trained against the same tasks and seeds as a learning agent, it shows how much of a reward
curve is the algorithm and how much is noise or an easy task.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grpo_env.agents.base import Agent
from grpo_env.types import Group


class FrozenAgent(Agent):
    """Acts with the initial policy; ``update`` changes nothing."""

    def update(self, groups: Sequence[Group]) -> dict[str, float]:
        return {"samples_trained": 0.0}

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "frozen.txt").write_text("the frozen agent has no state of its own\n")

    def load(self, directory: Path) -> None:
        """Nothing to restore: the weights never changed."""
