"""Atomic checkpoints of a training run.

    DIR/checkpoints/step-000050/
        policy/            adapter (LoRA) or full weights + tokenizer (transformers/peft format)
        optimizer.pt       optimiser and LR-schedule state (learning agents)
        trainer.json       step, task-sampler counters
        rng.pt             Python, NumPy and torch (CPU and CUDA) random states
    DIR/checkpoints/latest     name of the newest complete checkpoint

A checkpoint is written into a temporary directory and renamed into place, and ``latest`` is
replaced atomically after it: a crash mid-save leaves the previous checkpoint as the latest.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINTS = "checkpoints"
LATEST = "latest"


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def capture_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: Path,
    step: int,
    save_agent: Callable[[Path], None],
    trainer_state: dict[str, Any],
    *,
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` atomically, point ``latest`` at it, keep the newest ``keep``."""
    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(step)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        save_agent(tmp)
        (tmp / "trainer.json").write_text(json.dumps({"step": step, **trainer_state}) + "\n")
        torch.save(capture_rng_state(), tmp / "rng.pt")
        final = root / name
        if final.exists():  # the same step saved twice (e.g. Ctrl-C right after a save)
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    write_text_atomic(root / LATEST, name + "\n")
    _prune(root, keep)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / CHECKPOINTS / LATEST
    if not pointer.is_file():
        return None
    path = run_dir / CHECKPOINTS / pointer.read_text().strip()
    if not (path / "trainer.json").is_file():
        raise FileNotFoundError(f"{pointer} names {path.name}, which is missing or incomplete")
    return path


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / "trainer.json").read_text())


def load_rng_state(checkpoint: Path) -> None:
    # RNG states hold NumPy arrays and Python tuples: trusted (our own file), not weights_only.
    restore_rng_state(torch.load(checkpoint / "rng.pt", weights_only=False))


def _prune(root: Path, keep: int) -> None:
    complete = sorted(p for p in root.glob("step-*") if (p / "trainer.json").is_file())
    for old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
