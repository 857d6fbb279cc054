"""The trainer says once, in plain words, when most groups have no reward spread."""

from __future__ import annotations

import logging
from io import StringIO

from rich.console import Console

from grpo_env import Task, VerifiableEnv, VerifyResult
from grpo_env.training.config import validate_config
from grpo_env.training.no_signal import NoSignalWatch, flat_groups
from grpo_env.training.trainer import Trainer
from grpo_env.types import Episode, Group

TASKS = [{"id": f"t{d}", "prompt": str(d), "answer": str(d)} for d in range(4)]


def group(*rewards: float, infra: int = 0) -> Group:
    episodes = [
        Episode(
            task_id="t",
            group_id="g",
            prompt=[],
            completion="",
            reward=r,
            result=VerifyResult(score=r),
        )
        for r in rewards
    ]
    episodes += [
        Episode(
            task_id="t",
            group_id="g",
            prompt=[],
            completion="",
            reward=0.0,
            result=VerifyResult.infra_error("down"),
        )
        for _ in range(infra)
    ]
    return Group(group_id="g", task_id="t", episodes=episodes)


def test_flat_groups_counts_zeros_and_tops_and_ignores_infra_errors():
    groups = [group(0, 0), group(1, 1), group(0, 1), group(0.5, 0.5), group(1, 1, infra=1)]
    assert flat_groups(groups) == (4, 1, 2)
    assert flat_groups([group(0, 1, infra=2)]) == (0, 0, 0)


def test_says_it_once_after_patience_steps():
    watch = NoSignalWatch(threshold=0.75, patience=3)
    hard = [group(0, 0), group(0, 0), group(0, 0), group(0, 1)]
    assert watch.observe(hard) is None
    assert watch.observe(hard) is None
    message = watch.observe(hard)
    assert message is not None
    assert "Nothing is being learned" in message and "too hard" in message
    assert "larger group size" in message and "partial credit" in message
    assert watch.observe(hard) is None  # once


def test_a_step_with_signal_resets_the_streak():
    watch = NoSignalWatch(threshold=0.75, patience=2)
    hard = [group(0, 0)] * 4
    mixed = [group(0, 1)] * 4
    assert watch.observe(hard) is None
    assert watch.observe(mixed) is None
    assert watch.observe(hard) is None
    assert watch.observe(hard) is not None


def test_too_easy_says_so():
    watch = NoSignalWatch(threshold=0.5, patience=1)
    message = watch.observe([group(1, 1), group(1, 1)])
    assert message is not None and "too easy" in message


class AlwaysZero(VerifiableEnv):
    def __init__(self) -> None:
        super().__init__(TASKS)

    def verify(self, task: Task, completion: str) -> VerifyResult:
        return VerifyResult(score=0.0)


def test_the_trainer_prints_the_notice_once(tmp_path, toy_model, caplog):
    config = validate_config(
        {
            "env": "toy",
            "steps": 5,
            "group_size": 2,
            "prompts_per_step": 2,
            "out": str(tmp_path / "run"),
            "model": {"name": str(toy_model), "lora": False},
            "generation": {"max_new_tokens": 2},
            "agent": {"name": "grpo", "lr": 1e-3, "beta": 0.0},
            "log": {"save_every": 0, "progress": False, "tensorboard": False},
        }
    )
    out = StringIO()
    console = Console(file=out, width=400)
    Trainer(config, env=AlwaysZero(), console=console).run()
    text = out.getvalue()
    assert text.count("Nothing is being learned") == 1, text
    assert "too hard" in text
    # Not a second time on stderr: a WARNING record with no handler configured is printed by
    # Python's last-resort handler.
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in loud if "Nothing is being learned" in r.getMessage()]
