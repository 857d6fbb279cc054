"""Random access to expensive reasoning-gym generators.

``grpo_env.tasks.ReasoningGymSource`` materialises a split by scanning the generator's stream
in order, so drawing task 9,000 means generating the 9,000 before it. That is instant for
``chain_sum`` (0.03 ms an item) but takes minutes for ``countdown`` (25 ms an item: it solves
every puzzle it makes), and every fresh environment would pay it again.

``BlockIndexedReasoningGymSource`` gives O(1) access: task ``i`` of a split is the first item
of block ``i`` of the stream (positions ``i*B … i*B+B-1``) whose question-hash bucket puts it
in that split. The partition rule is the same hash rule (a question is held out when
``question_bucket(question) < test_fraction``), so no question is in both splits.
"""

from __future__ import annotations

from typing import Any

from grpo_env.tasks import ReasoningGymSource, Split, question_bucket
from grpo_env.types import Task

BLOCK = 256  # P(a block of 256 holds no held-out item at test_fraction 0.1) ~ 2e-12


class BlockIndexedReasoningGymSource(ReasoningGymSource):
    """A ``ReasoningGymSource`` whose tasks are generated on demand, one block each."""

    def __init__(
        self,
        dataset: str,
        split: Split = "train",
        size: int | None = None,
        seed: int = 0,
        test_fraction: float = 0.1,
        **config: Any,
    ):
        super().__init__(
            dataset, split=split, size=size, seed=seed, test_fraction=test_fraction, **config
        )
        import reasoning_gym

        # The stream must be long enough for the last block (creating it generates nothing).
        self._dataset = reasoning_gym.create_dataset(
            dataset, seed=seed, size=self.size * BLOCK, **config
        )
        self._by_index: dict[int, Task] = {}

    def __getitem__(self, index: int) -> Task:
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(f"task index {index} out of range for {self.name} ({self.size})")
        if index not in self._by_index:
            self._by_index[index] = self._generate(index)
        return self._by_index[index]

    def get(self, task_id: str) -> Task:
        # Tasks generated so far first: scanning all of them would generate the whole split.
        for task in self._by_index.values():
            if task.id == task_id:
                return task
        return super().get(task_id)

    def _generate(self, index: int) -> Task:
        want_test = self.split == "test"
        for position in range(index * BLOCK, (index + 1) * BLOCK):
            entry = self._dataset[position]
            if (question_bucket(entry["question"]) < self.test_fraction) == want_test:
                return self._to_task(entry)
        raise ValueError(
            f"{self.name}: no {self.split} question among stream positions {index * BLOCK}-"
            f"{(index + 1) * BLOCK - 1}; test_fraction={self.test_fraction} is too extreme"
        )
