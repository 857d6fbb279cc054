"""A few completions with their scores, shown beside every accuracy.

A rise in reward is believed only with its samples: a verifier with a hole is found by GRPO
within a few dozen steps (issue 10), and the samples show it at once where the number does
not. Evaluations keep a handful of right and wrong completions (``pick_samples``); ``eval``
and the end-of-training summary print them, and ``eval.jsonl`` keeps them for ``docs/``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

from grpo_env.types import Status

MAX_CHARS = 400


class ShownSample(BaseModel):
    """One completion as a reader checks it: the question, the answer, the verdict."""

    model_config = ConfigDict(extra="forbid")

    task_id: str
    question: str
    completion: str
    score: float
    status: str
    extracted: Any = None  # what the verifier read as the answer, where it says
    reason: str | None = None  # why it was refused, where it says


def shown_sample(
    task_id: str, question: str, completion: str, score: float, status: str, details: dict
) -> ShownSample:
    return ShownSample(
        task_id=task_id,
        question=_clip(question),
        completion=_clip(completion),
        score=score,
        status=status,
        extracted=find_key(details, "extracted"),
        reason=find_key(details, "reason"),
    )


def find_key(data: Any, key: str) -> Any:
    """The first value of ``key`` in nested dicts (a rubric nests each criterion's details)."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            found = find_key(value, key)
            if found is not None:
                return found
    return None


def pick_samples(
    samples: Iterable[ShownSample], *, threshold: float = 1.0, per_side: int = 3
) -> list[ShownSample]:
    """The first ``per_side`` samples that reached ``threshold`` and the first ``per_side``
    that did not (infra errors left out: they say nothing of the model), in that order."""
    right: list[ShownSample] = []
    wrong: list[ShownSample] = []
    for sample in samples:
        if sample.status == str(Status.INFRA_ERROR):
            continue
        side = right if sample.score >= threshold else wrong
        if len(side) < per_side:
            side.append(sample)
        if len(right) >= per_side and len(wrong) >= per_side:
            break
    return right + wrong


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def samples_markdown(samples: Iterable[ShownSample], *, limit: int = 120) -> list[str]:
    """A markdown table of scored completions (for reports in ``docs/``)."""
    lines = [
        "| score | status | task | question | completion | read as |",
        "|---:|---|---|---|---|---|",
    ]
    for sample in samples:
        cells = [
            f"{sample.score:.2f}",
            sample.status,
            sample.task_id,
            _cell(sample.question, limit),
            _cell(sample.completion, limit),
            _cell("" if sample.extracted is None else str(sample.extracted), 40),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cell(text: str, limit: int) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
