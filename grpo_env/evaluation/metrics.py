"""Evaluation metrics over K samples per task: pure functions, checked against hand values.

- ``pass_at_k(n, c, k)``: the unbiased estimator of Chen et al. (2021, "Evaluating Large
  Language Models Trained on Code"): with ``n`` samples of which ``c`` are correct, the chance
  that at least one of ``k`` drawn without replacement is correct,

      pass@k = 1 - C(n - c, k) / C(n, k)

  computed as a product (``1 - prod_{i = n-c+1}^{n} (1 - k / i)``) so large ``n`` never
  overflows. Averaged over tasks.
- ``maj_at_k``: majority voting (self-consistency, Wang et al. 2023): the most frequent answer
  among the first ``k`` samples is the task's answer, correct when the samples giving it are.
  Ties go to the answer seen first; samples without an answer do not vote.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one task with ``n`` samples, ``c`` of them correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= correct <= samples, got correct={c}, samples={n}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n} (the samples per task), got {k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def majority_vote(answers: Sequence[str | None]) -> int | None:
    """Index of the first sample giving the most frequent answer (None: nobody answered)."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(i for i, a in enumerate(answers) if a is not None and counts[a] == top)


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int) -> bool:
    """Whether majority voting over the first ``k`` samples picks a correct answer."""
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} answers for {len(correct)} verdicts")
    if not 1 <= k <= len(answers):
        raise ValueError(f"k must be in 1..{len(answers)}, got {k}")
    winner = majority_vote(answers[:k])
    return winner is not None and bool(correct[winner])


def report_ks(samples: int) -> list[int]:
    """The k reported for ``samples`` per task: 1, the powers of two below it, and itself."""
    ks = {1, samples}
    power = 2
    while power < samples:
        ks.add(power)
        power *= 2
    return sorted(ks)
