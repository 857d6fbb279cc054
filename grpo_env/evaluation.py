"""Greedy held-out evaluation: one deterministic completion per task, scored by the env.

Used by the trainer (``[eval]``: before training, every N steps, at the end) for before/after
numbers. The full evaluation command (pass@k, maj@k, rescoring) builds on this.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

from grpo_env.env import VerifiableEnv
from grpo_env.generation import Generator, SamplingParams
from grpo_env.models import Policy
from grpo_env.types import Status, Task


class EvalResult(BaseModel):
    """Greedy results over ``tasks`` held-out tasks."""

    model_config = ConfigDict(extra="forbid")

    tasks: int
    accuracy: float  # fraction of tasks with full marks (reward >= 1)
    mean_reward: float  # over tasks without infra errors
    infra_errors: int
    statuses: dict[str, int]
    mean_length: float  # completion tokens
    truncated: float  # fraction cut at max_new_tokens


def evaluate_greedy(
    env: VerifiableEnv,
    policy: Policy,
    generator: Generator,
    tasks: Sequence[Task],
    *,
    max_new_tokens: int,
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> EvalResult:
    """Greedy-decode every task once and score it (see the module docstring)."""
    if not tasks:
        raise ValueError("evaluation needs at least one task")
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    rewards: list[float] = []
    statuses: Counter[str] = Counter()
    lengths: list[int] = []
    truncated = 0
    for start in range(0, len(tasks), batch_size):
        chunk = list(tasks[start : start + batch_size])
        prompts = []
        for task in chunk:
            observation, _ = env.reset(options={"task": task})
            prompts.append(policy.encode_chat(observation))
        outputs = generator.generate(prompts, 1, params)
        for task, (completion,) in zip(chunk, outputs, strict=True):
            (result,) = env.score_many(task, [completion.text])
            statuses[str(result.status)] += 1
            lengths.append(len(completion.token_ids))
            truncated += completion.truncated
            if result.status is not Status.INFRA_ERROR:
                rewards.append(float(result.score))
        if on_batch is not None:
            on_batch(len(chunk))
    infra = statuses.get(str(Status.INFRA_ERROR), 0)
    return EvalResult(
        tasks=len(tasks),
        accuracy=sum(r >= 1.0 for r in rewards) / len(tasks),
        mean_reward=sum(rewards) / len(rewards) if rewards else 0.0,
        infra_errors=infra,
        statuses=dict(statuses),
        mean_length=sum(lengths) / len(lengths),
        truncated=truncated / len(tasks),
    )
