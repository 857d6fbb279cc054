"""The training run's configuration: pydantic models, TOML loading, CLI overrides.

A run is described by one ``TrainConfig``. It can come from a TOML file (every knob), from
command-line options (the common ones), or both: options override the file. Unknown keys are
errors that name the file, the table and the valid keys, so a typo never silently does nothing.

The ``[agent]`` table is validated in two stages: ``name`` picks the agent, and the rest is
checked against that agent's own config class (``Agent.Config``), so third-party agents bring
their own knobs without this module knowing them.

    env = "math-chain-sum"
    steps = 200
    group_size = 8
    prompts_per_step = 4
    out = "runs/chain-sum"

    [model]
    name = "smollm2-135m-instruct"
    lora = true

    [generation]
    max_new_tokens = 64
    temperature = 1.0

    [agent]
    name = "grpo"
    lr = 2e-5
    beta = 0.04

    [eval]
    tasks = 200
    env_kwargs = { split = "test" }
"""

from __future__ import annotations

import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grpo_env.policy.config import ModelConfig
from grpo_env.strict_model import ConfigError, StrictModel


class GenerationConfig(StrictModel):
    """How completions are sampled."""

    backend: Literal["hf", "vllm"] = "hf"
    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(1.0, gt=0, description="also divides the logits at training time")
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 disables top-k")
    batch_size: int | None = Field(
        None, ge=1, description="sequences per generate call (None: all of a step's at once)"
    )
    hf_decode: Literal["auto", "fused", "loop", "generate"] = Field(
        "auto",
        description="hf backend: loop (prompts prefilled once, finished rows leave the batch), "
        "fused (the loop with fused q/k/v and gate/up matmuls; Llama, Qwen2, Mistral), "
        "auto (fused on CPU under bf16 where the model allows, else loop) or generate "
        "(transformers generate, every row to the longest)",
    )
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    vllm_max_prompt_tokens: int = Field(
        1024, ge=1, description="vLLM's max_model_len is this + max_new_tokens (KV cache size)"
    )
    vllm_tensor_parallel_size: int = Field(1, ge=1, description="GPUs per vLLM engine")
    vllm_sleep: bool = Field(True, description="free vLLM's memory during the update")


class LogConfig(StrictModel):
    """What is written to the run directory, and how often."""

    save_every: int = Field(25, ge=0, description="checkpoint every K steps (0: only at the end)")
    keep_checkpoints: int = Field(2, ge=1)
    sample_groups: int = Field(1, ge=0, description="groups per step written to samples.jsonl")
    tensorboard: bool = True
    progress: bool = True


class EvalConfig(StrictModel):
    """Greedy held-out evaluation at the start, every ``every`` steps, and at the end."""

    tasks: int = Field(0, ge=0, description="held-out tasks to evaluate (0: no evaluation)")
    every: int = Field(0, ge=0, description="evaluate every N steps (0: start and end only)")
    env_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="overrides making the held-out env, e.g. split='test'"
    )
    max_new_tokens: int | None = Field(None, ge=1)
    batch_size: int = Field(
        128,
        ge=1,
        description="tasks decoded together: greedy rows leave the batch as they end, so larger "
        "batches amortise each decode step (200 chain-sum tasks on 2 CPU cores: 34 s at 32, "
        "23 s at 100-200); lower it when long completions of a large model run out of memory",
    )


class GuardConfig(StrictModel):
    """Stop a run whose verifier keeps failing: its infra_error samples are masked, so it
    would learn nothing (see grpo_env.training.guard)."""

    max_infra_error_frac: float = Field(
        0.5, ge=0, le=1, description="largest share of infra_error samples a step may have (1: off)"
    )
    patience: int = Field(3, ge=1, description="steps in a row over it before the run stops")


class DistributedConfig(StrictModel):
    """Several ranks (``torchrun``; see grpo_env.training.distributed). Ignored in a single
    process."""

    strategy: Literal["auto", "ddp", "fsdp2"] = Field(
        "auto", description="auto: ddp (replicated); fsdp2 shards full fine-tuning"
    )
    timeout_s: float = Field(
        600.0, gt=0, description="how long a collective waits for the other ranks"
    )
    seed_per_group: bool = Field(
        False,
        description="sample each group from its own (seed, step, group) seed; always on with "
        "several ranks, so a 1-rank run with it on draws what N ranks draw",
    )


class AgentSection(BaseModel):
    """``[agent]``: ``name`` plus that agent's own knobs (checked by ``resolve_agent_config``)."""

    model_config = ConfigDict(extra="allow")

    name: str = "grpo"

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainConfig(StrictModel):
    """Everything one training run needs."""

    env: str = Field(description="registered environment id, e.g. math-chain-sum")
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    steps: int = Field(100, ge=1)
    group_size: int = Field(8, ge=2, description="G completions per prompt (>= 2: a group)")
    prompts_per_step: int = Field(4, ge=1)
    seed: int = 0
    shuffle_tasks: bool = Field(True, description="a fresh permutation per epoch (else in order)")
    out: Path = Path("runs/train")
    model: ModelConfig = Field(default_factory=ModelConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    agent: AgentSection = Field(default_factory=AgentSection)
    log: LogConfig = Field(default_factory=LogConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @field_validator("env")
    @classmethod
    def _env_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("env is empty: name a registered environment (grpo-env envs list)")
        return value


# ----- loading ------------------------------------------------------------------------------


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Read a TOML file (optional), apply dotted ``overrides`` ({"agent.lr": 1e-5}), validate."""
    data: dict[str, Any] = {}
    where = "config"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML ({err})") from err
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    return validate_config(data, where=where)


def build_train_config(
    config_file: str | Path | None, overrides: dict[str, Any], *, resume: bool = False
) -> TrainConfig:
    """The CLI's config: the TOML file, or on ``--resume`` without one the run's own saved
    ``config.json``; then the command-line ``overrides`` on top."""
    if config_file is not None or not resume or "out" not in overrides:
        return load_config(config_file, overrides)
    saved = Path(overrides["out"]) / "config.json"
    if not saved.is_file():
        return load_config(None, overrides)
    data = json.loads(saved.read_text(encoding="utf-8"))
    for dotted, value in overrides.items():
        set_dotted(data, dotted, value)
    return validate_config(data, where=str(saved))


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"agent.mu=2"`` -> ``("agent.mu", 2)``; the value is read as TOML, else as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE (e.g. agent.mu=2), got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip(), value


def validate_config(data: dict[str, Any], *, where: str = "config") -> TrainConfig:
    check_keys(TrainConfig, data, where=where)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{where}: {describe_validation_error(err)}") from err


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *tables, key = dotted.split(".")
    node = data
    for table in tables:
        node = node.setdefault(table, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted!r}: {table!r} is not a table")
    node[key] = value


def check_keys(model: type[BaseModel], data: Any, *, where: str, table: str = "") -> None:
    """Reject keys ``model`` does not know, listing the ones it does; recurse into sub-tables."""
    if not isinstance(data, dict):
        return
    if model.model_config.get("extra") == "allow":
        return
    fields = model.model_fields
    for key, value in data.items():
        if key not in fields:
            place = f"[{table}]" if table else "the top level"
            raise ConfigError(
                f"{where}: unknown key {key!r} in {place}; valid keys: {', '.join(sorted(fields))}"
            )
        sub = _model_type(fields[key].annotation)
        if sub is not None:
            check_keys(sub, value, where=where, table=f"{table}.{key}" if table else key)


def _model_type(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_type(arg)
            if found is not None:
                return found
    return None


def describe_validation_error(err: ValidationError, prefix: str = "") -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    loc = f"{prefix}.{loc}" if prefix and loc else prefix or loc
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{loc}: {first['msg']}{more}" if loc else f"{first['msg']}{more}"


def resolve_agent_config(section: AgentSection, config_class: type[BaseModel]) -> BaseModel:
    """Validate ``[agent]``'s options against the chosen agent's config class."""
    options = section.options()
    check_keys(config_class, options, where=f"agent {section.name!r}", table="agent")
    try:
        return config_class.model_validate(options)
    except ValidationError as err:
        raise ConfigError(
            f"agent {section.name!r}: {describe_validation_error(err, 'agent')}"
        ) from err


def config_to_toml_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as plain data (for the run directory's config.json)."""
    data = config.model_dump(mode="json")
    data["agent"] = {"name": config.agent.name, **config.agent.options()}
    return data
