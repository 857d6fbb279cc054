"""What a training run writes as it goes: metrics, sample completions, TensorBoard events.

- ``DIR/metrics.jsonl``: one JSON object per step (append-only, flushed every line);
- ``DIR/samples.jsonl``: a few scored completions per step, for reading what the model does;
- ``DIR/eval.jsonl``: held-out evaluations;
- ``DIR/tb/``: TensorBoard scalars (``tensorboard --logdir DIR/tb``).

On resume, lines of steps after the checkpoint are dropped (the steps are redone), so each
step appears once.
"""

from __future__ import annotations

import json
import math
import os
import resource
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from grpo_env.jsonl import read_jsonl
from grpo_env.types import Episode, Group

METRICS = "metrics.jsonl"
SAMPLES = "samples.jsonl"
EVAL = "eval.jsonl"


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA max allocated on GPU, peak RSS of this process on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class RunLog:
    def __init__(self, run_dir: Path, *, tensorboard: bool = True):
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(run_dir / "tb"))

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self._append(METRICS, {"step": step, **values})
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()

    def evaluation(self, step: int, values: dict[str, Any]) -> None:
        self._append(EVAL, {"step": step, **values})
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(f"eval/{key}", value, step)
            self._writer.flush()

    def samples(self, step: int, groups: Sequence[Group]) -> None:
        for group in groups:
            for episode in group.episodes:
                self._append(
                    SAMPLES,
                    {
                        "step": step,
                        "task_id": episode.task_id,
                        "group_id": episode.group_id,
                        "prompt": episode.prompt[-1]["content"] if episode.prompt else "",
                        "completion": episode.completion,
                        "reward": episode.reward,
                        "status": str(episode.result.status),
                        "components": episode.result.components,
                        "truncated": episode.truncated,
                        "tokens": len(episode.completion_ids),
                        **episode_transcript(episode),
                    },
                )

    def truncate_after(self, step: int) -> None:
        """Drop lines of steps after ``step`` (resume redoes them), atomically per file."""
        for name in (METRICS, SAMPLES, EVAL):
            path = self.run_dir / name
            if not path.is_file():
                continue
            # A torn last line (the crash that stopped the run) is dropped with a warning; every
            # kept line is written back whole, so appending starts on a fresh line.
            rows = read_jsonl(path, append_only=True).rows
            kept = [json.dumps(row) + "\n" for _, row in rows if _row_step(row) <= step]
            tmp = path.with_name(f".{name}.tmp-{os.getpid()}")
            tmp.write_text("".join(kept), encoding="utf-8")
            os.replace(tmp, path)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _append(self, name: str, row: dict[str, Any]) -> None:
        with (self.run_dir / name).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, default=str) + "\n")
            handle.flush()


def _row_step(row: Any) -> int:
    try:
        return int(row.get("step", 0))
    except (AttributeError, ValueError, TypeError):
        return 10**12  # not a step's row: dropped with the redone steps


class NullRunLog(RunLog):
    """What ranks other than 0 log: nothing (rank 0 writes the run's files)."""

    def __init__(self) -> None:
        self._writer = None

    def metrics(self, step: int, values: dict[str, float]) -> None:
        pass

    def evaluation(self, step: int, values: dict[str, Any]) -> None:
        pass

    def samples(self, step: int, groups: Sequence[Group]) -> None:
        pass

    def truncate_after(self, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def episode_transcript(episode: Episode) -> dict[str, Any]:
    """A multi-turn episode's whole transcript and counters, for samples files ({} for a
    single-turn one, whose line stays as it was)."""
    if not episode.messages:
        return {}
    return {
        "messages": episode.messages,
        "turns": episode.turns,
        "turn_rewards": episode.turn_rewards,
        "tool_calls": episode.tool_calls,
        "tool_errors": episode.tool_errors,
        "truncated_by": episode.truncated_by,
        "model_tokens": episode.model_tokens,
    }
