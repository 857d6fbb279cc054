"""Numeric precision of a run: which dtype the weights are stored in, which one the matmuls run in.

``model.dtype`` names the *compute* precision; master weights, optimiser state and the loss
are float32 whatever it says (trainable parameters in anything else are refused):

- ``float32``: everything in float32 (the exact path: sampler and trainer logprobs agree to
  1e-5).
- ``bfloat16``: mixed precision. Trainable weights stay float32 and matmuls run under bf16
  autocast; a frozen LoRA base is stored in bf16 (nothing updates it, and a bf16 copy is not
  re-cast at every decode step). Logprobs are still taken in float32 from the logits. On CUDA
  a LoRA base in bf16 runs without autocast, as before.
- ``auto``: CUDA -> ``bfloat16``; a CPU with bf16 matrix units (AMX or AVX-512 BF16, from
  ``/proc/cpuinfo``) -> ``bfloat16``; any other CPU -> ``float32`` (emulated bf16 is slower).
- ``float16`` is refused: it needs a GradScaler, which this trainer does not run.

``GRPO_ENV_CPU_BF16=0`` makes ``auto`` ignore the CPU's bf16 units (the test suite sets it, so
its exactness tests mean the same on every machine; bf16 tests ask for ``bfloat16``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

DTYPES = ("auto", "float32", "bfloat16")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class Precision:
    """How a policy runs: storage dtype of frozen weights, autocast dtype (None: no autocast)."""

    weights: torch.dtype = torch.float32
    autocast: torch.dtype | None = None
    reason: str = "float32"

    @property
    def name(self) -> str:
        """``float32`` or ``bfloat16``: the precision the matmuls run in."""
        low = self.autocast or self.weights
        return str(low).removeprefix("torch.")

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


FLOAT32 = Precision()


@lru_cache(maxsize=1)
def cpu_bf16_units() -> tuple[str, ...]:
    """The CPU flags that say bf16 matmuls run natively (empty: none, or not Linux)."""
    if os.environ.get("GRPO_ENV_CPU_BF16") == "0":
        return ()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    return tuple(flag for flag in BF16_CPU_FLAGS if flag in flags)


def resolve_precision(spec: str, device: torch.device, lora: bool) -> Precision:
    """The precision ``model.dtype = spec`` means on ``device`` (see the module docstring)."""
    if spec == "float16":
        raise ValueError(
            "model.dtype float16 is refused: float16 training needs a GradScaler, which this "
            "trainer does not run. Use bfloat16 (same speed on CUDA and on CPUs with AMX/AVX-512 "
            "BF16, no scaler needed) or float32."
        )
    if spec not in DTYPES:
        raise ValueError(f"unknown model.dtype {spec!r}; valid: {', '.join(DTYPES)}")
    if spec == "float32":
        return Precision(reason="asked for")
    if spec == "auto":
        if device.type == "cuda":
            reason = "auto: CUDA"
        elif device.type == "cpu" and cpu_bf16_units():
            reason = f"auto: CPU has {'+'.join(cpu_bf16_units())}"
        elif device.type == "cpu" and os.environ.get("GRPO_ENV_CPU_BF16") == "0":
            return Precision(reason="auto: GRPO_ENV_CPU_BF16=0 turns CPU bf16 off")
        else:
            return Precision(reason=f"auto: {device.type} without bf16 matrix units")
    else:
        reason = "asked for"
    if device.type == "cuda" and lora:
        # The existing CUDA rule: a bf16 base, fp32 adapters (peft keeps them float32).
        return Precision(weights=torch.bfloat16, autocast=None, reason=reason)
    weights = torch.bfloat16 if lora else torch.float32
    return Precision(weights=weights, autocast=torch.bfloat16, reason=f"{reason}; autocast")


def check_master_weights(params: list[nn.Parameter]) -> None:
    """Refuse pure low-precision training: every trainable parameter must be float32."""
    low = sorted({str(p.dtype).removeprefix("torch.") for p in params if p.dtype != torch.float32})
    if low:
        raise ValueError(
            f"trainable parameters in {', '.join(low)}: pure low-precision training (no float32 "
            "master weights) is refused, as updates smaller than the dtype's step would be lost. "
            "Load the model in float32 and set model.dtype = 'bfloat16' (float32 master weights, "
            "bf16 autocast)."
        )
