"""The ``vllm`` generation backend (optional extra ``grpo-env[vllm]``, CUDA only).

A vLLM engine runs beside the trained model ("colocated"), with the policy's weights. After
every update ``sync_weights`` pushes the current weights into the engine (under LoRA: each
adapted weight is sent as base + LoRA delta, so the engine always serves plain weights) and
clears its prefix cache, which would otherwise serve stale keys and values. With sleep mode the
engine frees its memory during the update (``release_memory``) and wakes in ``sync_weights``.

How the engine is built (executor, launcher variables, max_model_len, which logprobs) is
decided by ``grpo_env.policy.vllm_options.plan_engine``; read it there. Weights travel through
``LLM.collective_rpc`` (public since vLLM 0.7.3), called with a function of the worker; the
worker's model is reached as ``worker.model_runner.model``, checked, with a clear error naming
the installed version when a vLLM release moves it.

Untested on this project's machines (no GPU): written from a reading of vLLM's offline API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from grpo_env.policy.generation import Completion, SamplingParams
from grpo_env.policy.masking import trim_completion
from grpo_env.policy.models import Policy
from grpo_env.policy.vllm_options import logprob_caveat, parse_version, plan_engine, scoped_env

log = logging.getLogger(__name__)


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


def _load_into_worker(worker: Any, weights: list[tuple[str, torch.Tensor]]) -> None:
    """Runs inside vLLM's worker (``collective_rpc``): load (name, tensor) pairs."""
    runner = getattr(worker, "model_runner", None)
    model = getattr(runner, "model", None)
    if model is None or not hasattr(model, "load_weights"):
        raise RuntimeError(
            f"this vLLM's worker ({type(worker).__name__}) has no model_runner.model.load_weights"
        )
    model.load_weights(weights)


class VLLMGenerator:
    """Sampling with a vLLM engine that mirrors the policy's weights."""

    def __init__(
        self,
        policy: Policy,
        *,
        gpu_memory_utilization: float = 0.3,
        seed: int = 0,
        max_prompt_tokens: int = 1024,
        max_new_tokens: int = 256,
        tensor_parallel_size: int = 1,
        sleep: bool = True,
        world_size: int = 1,
        rank: int = 0,
    ):
        vllm = _import_vllm()
        self.version = parse_version(getattr(vllm, "__version__", "0"))
        plan = plan_engine(
            model=policy.source,
            version=self.version,
            world_size=world_size,
            rank=rank,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_prompt_tokens=max_prompt_tokens,
            max_new_tokens=max_new_tokens,
            seed=seed,
            sleep=sleep,
        )
        self.policy = policy
        self._vllm = vllm
        self._plan = plan
        self._asleep = False
        with scoped_env(plan.env_set, plan.env_hidden):
            self.llm = vllm.LLM(**plan.options)
        if not hasattr(self.llm, "collective_rpc"):
            raise VLLMUnavailable(
                f"vLLM {vllm.__version__} has no LLM.collective_rpc to push weights: "
                "pip install -U 'grpo-env[vllm]'"
            )
        self._warned: set[str] = set()
        self.sync_weights()  # a resumed or LoRA policy differs from the files on disk

    def generate(
        self, prompts: Sequence[Sequence[int]], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        caveat = None if params.greedy else logprob_caveat(params.top_k, params.top_p)
        if caveat and caveat not in self._warned:
            self._warned.add(caveat)
            log.warning(caveat)
        if self._asleep:  # released for an update that did not happen (an empty batch)
            self.llm.wake_up()
            self._asleep = False
        sampling = {
            # Drawn from torch's RNG: the trainer's per-group seeds reach vLLM's sampler too.
            "seed": int(torch.randint(0, 2**31 - 1, ()).item()),
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

    def release_memory(self) -> None:
        """Free the engine's GPU memory for the update (sleep mode; a no-op without it)."""
        if self._plan.sleep and not self._asleep:
            self.llm.sleep(level=1)
            self._asleep = True

    def sync_weights(self) -> None:
        """Wake the engine if asleep, push the policy's current weights into it, then drop its
        prefix cache. In process the tensors go by reference; to ``mp`` workers (tp > 1) they
        are copied to the CPU first (pickled)."""
        if self._asleep:
            self.llm.wake_up()
            self._asleep = False
        with torch.no_grad():
            for name, tensor in self._named_weights():
                sent = tensor if self._plan.in_process else tensor.detach().cpu()
                self.llm.collective_rpc(_load_into_worker, args=([(name, sent)],))
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
