"""Which tasks ``code-unittest`` trains on when the user names no task option.

HumanEval is far beyond the embedded SmolLM2-135M: nearly every group scores 0 for every sample
and GRPO learns nothing. So ``grpo-env train --env code-unittest`` on the embedded model uses the
seeded beginner set; any other model, or any task option (``task_set``, ``split``, ``tasks``,
``tasks_path``), keeps the env's own default, HumanEval. The run's first lines say which.
"""

from __future__ import annotations

from typing import Any

from grpo_env.policy.default_model import EMBEDDED_MODELS

CODE_ENV_IDS = ("code-unittest", "code-unittest-v0")
TASK_OPTIONS = ("task_set", "split", "tasks", "tasks_path")


def choose_tasks(env_id: str, env_kwargs: dict[str, Any], model: str) -> tuple[dict, str]:
    """(the env's kwargs, a line saying which task set a code run uses; "" for other envs)."""
    if env_id not in CODE_ENV_IDS:
        return env_kwargs, ""
    if any(key in env_kwargs for key in TASK_OPTIONS):
        chosen = env_kwargs.get("task_set", "humaneval")
        source = (
            env_kwargs.get("tasks_path") or f"{chosen}, split {env_kwargs.get('split', 'train')}"
        )
        return env_kwargs, f"code-unittest tasks: {source} (as configured)"
    if model in EMBEDDED_MODELS:
        note = (
            f"code-unittest tasks: the seeded beginner set (600 train / 120 held out), as "
            f"HumanEval is out of reach of the embedded {model}; for HumanEval: "
            "--set env_kwargs.task_set=humaneval"
        )
        return {**env_kwargs, "task_set": "beginner"}, note
    return env_kwargs, "code-unittest tasks: HumanEval, split train (131 problems)"


def eval_env_kwargs(train_kwargs: dict[str, Any], eval_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The held-out evaluation's env kwargs: the training ones with ``eval.env_kwargs`` on top;
    for the beginner set, its held-out split unless the eval says otherwise."""
    merged = {**train_kwargs, **eval_kwargs}
    if train_kwargs.get("task_set") == "beginner" and "split" not in eval_kwargs:
        merged["split"] = "test"
    return merged
