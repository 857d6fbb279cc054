"""The policy's configuration: which weights, how they are trained, where they run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from grpo_env.strict_model import StrictModel

DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class ModelConfig(StrictModel):
    """The policy: which weights, how they are trained, where they run."""

    name: str = Field(
        "smollm2-135m-instruct",
        description="a local model directory, an embedded model name, or a hub id",
    )
    lora: bool = Field(True, description="train LoRA adapters (False: full fine-tuning)")
    lora_rank: int = Field(16, ge=1)
    lora_alpha: float = Field(32.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_targets: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LORA_TARGETS),
        description="module names that get adapters (every linear layer of a Llama block)",
    )
    device: str = Field("auto", description="auto (CUDA if available, else CPU), cpu, cuda, cuda:N")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="matmul precision; weights that train stay float32. auto: bfloat16 autocast "
        "on CUDA and on CPUs with AMX/AVX-512 BF16, else float32; float16 is refused",
    )
    attention: Literal["auto", "model"] = Field(
        "auto",
        description="auto: on CPU, short sequences (decode steps, ~100-token losses) run "
        "attention as plain matmuls, faster than torch's CPU SDPA kernel; long ones keep SDPA. "
        "model: the attention the model loads with, everywhere",
    )
    gradient_checkpointing: bool = False
    extra_eos_tokens: list[str] = Field(
        default_factory=list, description="more tokens that end a completion, by their text"
    )
