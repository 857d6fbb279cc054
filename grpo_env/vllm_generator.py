"""The ``vllm`` generation backend (optional extra ``grpo-env[vllm]``, CUDA only).

A vLLM engine runs in this process beside the trained model ("colocated"), with the policy's
weights. After every update ``sync_weights`` pushes the current weights into the engine
(under LoRA: each adapted weight is sent as base + LoRA delta, so the engine always serves
plain weights) and clears its prefix cache, which would otherwise serve
stale keys and values.

Logprobs are requested as ``processed_logprobs`` (after temperature); the trainer recomputes
its own old/ref logprobs anyway and logs the gap (``sampler_logprob_gap``).

Untested on this project's machines (no GPU): written against vLLM's documented offline API
(``vllm.LLM``, ``SamplingParams``, token-id prompts) and the in-process worker layout that
``distributed_executor_backend="external_launcher"`` gives.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from grpo_env.generation import Completion, SamplingParams
from grpo_env.masking import trim_completion
from grpo_env.models import Policy


class VLLMUnavailable(RuntimeError):
    """vLLM cannot run here (not installed, or no CUDA)."""


def _import_vllm() -> Any:
    if not torch.cuda.is_available():
        raise VLLMUnavailable(
            "the vllm backend needs a CUDA GPU; none is visible here (use --backend hf)"
        )
    try:
        import vllm
    except ImportError as err:
        raise VLLMUnavailable(
            "the vllm backend needs the vllm package: pip install 'grpo-env[vllm]' "
            "(or use --backend hf)"
        ) from err
    return vllm


class VLLMGenerator:
    """Sampling with an in-process vLLM engine that mirrors the policy's weights."""

    def __init__(
        self,
        policy: Policy,
        *,
        gpu_memory_utilization: float = 0.3,
        seed: int = 0,
        max_model_len: int | None = None,
    ):
        vllm = _import_vllm()
        self.policy = policy
        self._vllm = vllm
        # external_launcher keeps the engine's worker in this process (no RPC), which is what
        # lets sync_weights reach the model; it needs the torch.distributed variables.
        for key, value in (
            ("RANK", "0"),
            ("LOCAL_RANK", "0"),
            ("WORLD_SIZE", "1"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", str(29500 + os.getpid() % 1000)),
        ):
            os.environ.setdefault(key, value)
        options: dict[str, Any] = {
            "model": policy.source,
            "tokenizer": policy.source,
            "dtype": "bfloat16",
            "gpu_memory_utilization": gpu_memory_utilization,
            "seed": seed,
            "distributed_executor_backend": "external_launcher",
            "logprobs_mode": "processed_logprobs",
            "enable_prefix_caching": True,
        }
        if max_model_len is not None:
            options["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**options)
        self.sync_weights()  # a resumed or LoRA policy differs from the files on disk

    def generate(
        self, prompts: Sequence[Sequence[int]], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        sampling = {
            "n": n,
            "max_tokens": params.max_new_tokens,
            "temperature": 0.0 if params.greedy else params.temperature,
            "top_p": params.top_p,
            "logprobs": 0,  # the sampled token's logprob only
            "stop_token_ids": list(self.policy.eos_token_ids),
            "skip_special_tokens": True,
        }
        if params.top_k > 0:
            sampling["top_k"] = params.top_k
        requests = [{"prompt_token_ids": list(p)} for p in prompts]
        outputs = self.llm.generate(
            requests, sampling_params=self._vllm.SamplingParams(**sampling), use_tqdm=False
        )
        results: list[list[Completion]] = []
        for prompt, output in zip(prompts, outputs, strict=True):
            group = []
            for sample in output.outputs:
                ids, truncated = trim_completion(list(sample.token_ids), self.policy.eos_token_ids)
                logprobs = [
                    float(step[token].logprob)
                    for step, token in zip(sample.logprobs or [], ids, strict=False)
                ]
                group.append(
                    Completion(
                        prompt_ids=list(prompt),
                        token_ids=ids,
                        text=self.policy.decode(ids),
                        logprobs=logprobs if len(logprobs) == len(ids) else [],
                        truncated=truncated,
                    )
                )
            results.append(group)
        return results

    def sync_weights(self) -> None:
        """Push the policy's current weights into the engine, then drop its prefix cache."""
        engine_model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        with torch.no_grad():
            for name, tensor in self._named_weights():
                engine_model.load_weights([(name, tensor)])
        self.llm.reset_prefix_cache()

    def _named_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, tensor) in the base model's naming; LoRA deltas added to fresh copies (never
        merged in place, which would drift the base weights through rounding)."""
        model = self.policy.model
        if not self.policy.lora:
            for name, param in model.named_parameters():
                yield name, param.detach()
            return
        from peft.tuners.lora import LoraLayer

        deltas = {
            f"{name}.base_layer.weight": module
            for name, module in model.named_modules()
            if isinstance(module, LoraLayer)
        }
        for name, param in model.named_parameters():
            if model.prefix in name:  # the adapters themselves ("lora_A", "lora_B")
                continue
            tensor = param.detach()
            if name in deltas:
                delta = deltas[name].get_delta_weight(model.active_adapter)
                tensor = tensor + delta.to(tensor.dtype)
            yield name.removeprefix("base_model.model.").replace(".base_layer", ""), tensor

    def close(self) -> None:
        del self.llm
        torch.cuda.empty_cache()
