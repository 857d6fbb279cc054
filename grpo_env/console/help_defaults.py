"""``--help`` shows every option's default, including the options whose default is "whatever
the config says": those read ``None`` in the signature, so click would show nothing.

An option that maps to a run config key shows that key's default (``TrainConfig``, or the
agent's own config for ``[agent]`` knobs, GRPO's by default); any other ``None`` default says
"unset". Only run for ``--help`` (the agents' configs import torch).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

# option name -> run config key, for the options of train and compare
CONFIG_KEYS = {
    "env": "env",
    "agent": "agent.name",
    "model": "model.name",
    "steps": "steps",
    "group_size": "group_size",
    "prompts_per_step": "prompts_per_step",
    "max_new_tokens": "generation.max_new_tokens",
    "seed": "seed",
    "lr": "agent.lr",
    "beta": "agent.beta",
    "lora": "model.lora",
    "temperature": "generation.temperature",
    "backend": "generation.backend",
    "device": "model.device",
    "dtype": "model.dtype",
    "save_every": "log.save_every",
    "eval_tasks": "eval.tasks",
    "out": "out",
}
TRAIN_LIKE = {"train", "compare"}


def config_default(dotted: str) -> Any:
    """The default of a run config key (``agent.*``: the GRPO agent's)."""
    from grpo_env.training.config import TrainConfig

    model: Any = TrainConfig
    parts = dotted.split(".")
    if parts[0] == "agent" and parts[1:] != ["name"]:
        from grpo_env.agents.grpo import GRPOConfig

        model, parts = GRPOConfig, parts[1:]
    value: Any = None
    for part in parts:
        value = model.model_fields[part].get_default(call_default_factory=True)
        model = type(value) if isinstance(value, BaseModel) else None
    return value


def annotate_defaults(command: Any, name: str = "") -> None:
    """Set ``show_default`` on every option of ``command`` (a click command or group)."""
    for sub_name, sub in getattr(command, "commands", {}).items():
        annotate_defaults(sub, sub_name)
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) and param.name != "help" and param.default is not None:
            param.show_default = "on" if param.default else "off"  # click hides False
            continue
        if param.default is not None or isinstance(getattr(param, "show_default", None), str):
            continue
        key = CONFIG_KEYS.get(param.name or "") if name in TRAIN_LIKE else None
        if key is None:
            param.show_default = "unset"
            continue
        value = config_default(key)
        if value is PydanticUndefined:
            param.show_default = "required, unless --config sets it"
            continue
        agent_knob = key.startswith("agent.") and key != "agent.name"
        where = "the agent's own; grpo: " if agent_knob else ""
        param.show_default = f"{where}{value}, unless --config sets it"
