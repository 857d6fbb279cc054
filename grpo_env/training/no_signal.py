"""Noticing when a run cannot learn: most groups give every sample the same reward.

GRPO's advantage is ``(r - mean) / std`` inside a group; when all G samples of a task score the
same (all 0: too hard; all 1: too easy), the group's advantage is zero and it teaches nothing.
When that holds for most groups for several steps in a row, the trainer says so once, in plain
words, with what to try. Computed from the sampled groups, so it works for every env and agent.
"""

from __future__ import annotations

from collections.abc import Sequence

from grpo_env.types import Group, Status

DEFAULT_THRESHOLD = 0.8
DEFAULT_PATIENCE = 3


def flat_groups(groups: Sequence[Group]) -> tuple[int, int, int]:
    """(groups whose scored samples all got the same reward, of which all 0, of which all at
    the top). Samples with an infrastructure error are left out; a group with fewer than two
    scored samples counts as flat (it has no spread to learn from either)."""
    flat = zeros = tops = 0
    for group in groups:
        rewards = [e.reward for e in group.episodes if e.result.status is not Status.INFRA_ERROR]
        if len(rewards) >= 2 and max(rewards) - min(rewards) > 1e-9:
            continue
        flat += 1
        if rewards and max(rewards) <= 0.0:
            zeros += 1
        elif rewards and min(rewards) >= 1.0:
            tops += 1
    return flat, zeros, tops


class NoSignalWatch:
    """Says once when at least ``threshold`` of the groups were flat for ``patience`` steps."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, patience: int = DEFAULT_PATIENCE):
        self.threshold = threshold
        self.patience = patience
        self.streak = 0
        self.said = False
        self._zeros = self._tops = self._total = 0

    def observe(self, groups: Sequence[Group]) -> str | None:
        """The message, the first time the condition holds; None otherwise."""
        if not groups or self.said:
            return None
        flat, zeros, tops = flat_groups(groups)
        if flat / len(groups) < self.threshold:
            self.streak = 0
            self._zeros = self._tops = self._total = 0
            return None
        self.streak += 1
        self._zeros += zeros
        self._tops += tops
        self._total += len(groups)
        if self.streak < self.patience:
            return None
        self.said = True
        return self.message()

    def message(self) -> str:
        share = f"{self.threshold:.0%}"
        head = (
            f"Nothing is being learned: for {self.streak} steps in a row at least {share} of "
            "the groups gave every sample the same reward, so their advantage is zero."
        )
        if self._zeros >= self._tops:
            why = (
                f" Most of them scored 0 everywhere ({self._zeros} of {self._total} groups): "
                "the tasks are too hard for this model."
            )
            tips = (
                "Try easier tasks, a larger group size (--group-size), a bigger model, a "
                "higher temperature, or partial credit (a reward that counts each part done "
                "right rather than all or nothing, where the env offers one)."
            )
        else:
            why = (
                f" Most of them scored full marks everywhere ({self._tops} of {self._total} "
                "groups): the tasks are too easy."
            )
            tips = "Try harder tasks, or evaluate: the model may already solve this set."
        return f"{head}{why} {tips}"
