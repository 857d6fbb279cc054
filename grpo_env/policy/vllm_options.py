"""How the vLLM engine is built: options, executor and environment, as pure functions of the
run (testable without vLLM or a GPU; ``grpo_env.policy.vllm_generator`` uses them).

- ``max_model_len`` = prompt budget + ``max_new_tokens``: vLLM sizes its KV cache for the
  model's full context otherwise (32k for Qwen2.5), which may not fit beside the trainer.
- ``gpu_memory_utilization``: the share of the GPU vLLM takes (weights + KV cache); the
  trainer lives in the rest.
- Executor. One process, tensor_parallel_size 1: ``external_launcher`` keeps the worker in
  this process (weights are pushed by reference); it reads torch.distributed's variables, which
  are set for the engine's construction only and removed after (they would leak into every
  later subprocess). N ranks under torchrun, tp 1: ``external_launcher`` with torchrun's own
  variables, each rank one engine (one replica). One process, tp > 1: vLLM's ``mp`` workers;
  any launcher variables are hidden from them while they start (a worker that inherits
  ``RANK=3`` would join the wrong world). Under torchrun, tp > 1 needs the tp ranks to share
  prompts, which the trainer's group sharding does not do: refused with a message.
- Sleep mode (vLLM >= 0.7.3): the engine frees its weights and KV cache (``sleep(level=1)``)
  during the update and wakes before the next sampling.
- Logprobs: ``logprobs_mode="processed_logprobs"`` (vLLM >= 0.10.2): after temperature *and*
  after top-k/top-p renormalisation. The ``hf`` backend and the trainer use
  ``log_softmax(logits / T)`` before truncation: the same number when top_k = 0 and
  top_p = 1, not otherwise (``logprob_caveat`` says so; the trainer logs the gap and warns).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK")
LAUNCHER_VARS += ("ROLE_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")

MIN_VERSION = (0, 10, 2)  # logprobs_mode
SLEEP_VERSION = (0, 7, 3)


class VLLMConfigError(ValueError):
    """A vLLM set-up that cannot work; the message says why and what to change."""


@dataclass(frozen=True)
class EnginePlan:
    """What to pass to ``vllm.LLM`` and how the environment looks while it is built."""

    options: dict[str, Any]
    env_set: dict[str, str] = field(default_factory=dict)
    env_hidden: tuple[str, ...] = ()
    in_process: bool = True  # weights can be pushed by reference
    sleep: bool = False


def parse_version(text: str) -> tuple[int, ...]:
    """``"0.10.2.dev3+cu128"`` -> ``(0, 10, 2)``."""
    parts = []
    for piece in text.split("+")[0].split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
        if match.end() != len(piece):  # "1rc2": a pre-release of 1, nothing after counts
            break
    return tuple(parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plan_engine(
    *,
    model: str,
    version: tuple[int, ...],
    world_size: int,
    rank: int,
    tensor_parallel_size: int,
    gpu_memory_utilization: float,
    max_prompt_tokens: int,
    max_new_tokens: int,
    seed: int,
    sleep: bool,
    port: int | None = None,
) -> EnginePlan:
    """The engine's options (see the module docstring)."""
    if version < MIN_VERSION:
        have = ".".join(map(str, version))
        raise VLLMConfigError(
            f"vLLM {have} is too old: the vllm backend needs >= 0.10.2 (logprobs_mode, to get "
            "logprobs after temperature): pip install -U 'grpo-env[vllm]'"
        )
    tp = tensor_parallel_size
    if tp < 1:
        raise VLLMConfigError(f"tensor_parallel_size must be >= 1, got {tp}")
    if world_size > 1 and tp > 1:
        raise VLLMConfigError(
            f"tensor_parallel_size={tp} under torchrun ({world_size} ranks) needs the tp ranks "
            "to sample the same prompts, which the trainer's group sharding does not do: use "
            "tensor_parallel_size=1 (one engine per rank) or one process with tp > 1"
        )
    options: dict[str, Any] = {
        "model": model,
        "tokenizer": model,
        "dtype": "bfloat16",
        "gpu_memory_utilization": gpu_memory_utilization,
        "max_model_len": max_prompt_tokens + max_new_tokens,
        "tensor_parallel_size": tp,
        "seed": seed,
        "logprobs_mode": "processed_logprobs",
        "enable_prefix_caching": True,
    }
    use_sleep = sleep and version >= SLEEP_VERSION
    if use_sleep:
        options["enable_sleep_mode"] = True
    if tp > 1:  # one process, several GPUs: vLLM's own worker processes
        options["distributed_executor_backend"] = "mp"
        return EnginePlan(options, env_hidden=LAUNCHER_VARS, in_process=False, sleep=use_sleep)
    options["distributed_executor_backend"] = "external_launcher"
    if world_size > 1:  # torchrun's variables are the engine's world: one replica per rank
        options["seed"] = seed + rank
        return EnginePlan(options, sleep=use_sleep)
    env = {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port if port is not None else free_port()),
    }
    return EnginePlan(options, env_set=env, sleep=use_sleep)


@contextmanager
def scoped_env(
    set_: Mapping[str, str], hidden: tuple[str, ...] = (), environ: Any = None
) -> Iterator[None]:
    """``set_`` and ``hidden`` applied to the environment inside, restored after."""
    environ = os.environ if environ is None else environ
    saved = {k: environ.get(k) for k in (*set_, *hidden)}
    try:
        for key in hidden:
            environ.pop(key, None)
        environ.update(set_)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value


def logprob_caveat(top_k: int, top_p: float) -> str | None:
    """Why vLLM's logprobs may differ from the trainer's, or None when they are the same."""
    if top_k == 0 and top_p >= 1.0:
        return None
    return (
        f"vLLM reports logprobs after top-k/top-p (top_k={top_k}, top_p={top_p}), renormalised "
        "over the kept tokens; the trainer's are over the whole vocabulary: "
        "sampler_logprob_gap will not be ~0"
    )
