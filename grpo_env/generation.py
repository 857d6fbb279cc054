"""Generation backends: prompts in, completions (token ids, text, per-token logprobs) out.

Two backends share the ``Generator`` interface:

- ``hf`` (``HFGenerator``): transformers ``generate``, all of a step's prompts x G samples in
  one batched call (chunked by ``batch_size`` if asked), CPU or CUDA. It reads the policy's
  live weights, so nothing needs syncing after an update.
- ``vllm`` (``grpo_env.vllm_generator.VLLMGenerator``): optional extra, CUDA only; weights are
  pushed to the engine after each update (``sync_weights``).

Logprobs are of the sampled token under ``softmax(logits / temperature)`` of the raw model
(before top-k/top-p truncation): the same quantity the trainer computes, so the two can be
compared. Greedy decoding (temperature 0) reports logprobs at temperature 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from grpo_env.masking import trim_completion
from grpo_env.models import Policy


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def logprob_temperature(self) -> float:
        return 1.0 if self.greedy else self.temperature


@dataclass
class Completion:
    """One sampled completion: tokens through the first EOS, their text and logprobs."""

    prompt_ids: list[int]
    token_ids: list[int]
    text: str
    logprobs: list[float] = field(default_factory=list)
    truncated: bool = False  # hit max_new_tokens without an EOS


class Generator(Protocol):
    """What an agent samples through."""

    def generate(
        self, prompts: Sequence[Sequence[int]], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        """``n`` completions for each prompt (token ids), in prompt order."""
        ...

    def sync_weights(self) -> None:
        """Make the next ``generate`` use the policy's current weights."""
        ...

    def close(self) -> None: ...


class _LogprobRecorder:
    """A logits processor that records the logprob of each sampled token.

    ``generate`` calls processors once per new token, with the ids so far (the previous
    step's sampled token last) and that step's raw logits (custom processors run before the
    temperature/top-k/top-p warpers). Keeping one step of log-softmax at a time costs
    ``batch x vocab`` memory instead of ``batch x length x vocab``.
    """

    def __init__(self, temperature: float):
        self.temperature = temperature
        self.previous: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.previous is not None:
            self._record(input_ids[:, -1])
        self.previous = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def _record(self, chosen: torch.Tensor) -> None:
        assert self.previous is not None
        self.steps.append(self.previous.gather(1, chosen[:, None].long()).squeeze(1))

    def finish(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """Logprobs ``[batch, generated]`` once ``generate`` returned its new tokens."""
        if self.previous is not None and len(self.steps) < new_tokens.shape[1]:
            self._record(new_tokens[:, len(self.steps)])
        if not self.steps:
            return torch.zeros(new_tokens.shape[0], 0)
        return torch.stack(self.steps, dim=1)


class HFGenerator:
    """Batched sampling with transformers ``generate`` on the policy's own weights."""

    def __init__(self, policy: Policy, batch_size: int | None = None):
        self.policy = policy
        self.batch_size = batch_size
        # FSDP2 (grpo_env.parallel): every rank decodes until all are done, in lock-step.
        self.synced_gpus = False

    def generate(
        self, prompts: Sequence[Sequence[int]], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        rows = [list(p) for p in prompts for _ in range(n)]  # G copies of each prompt, adjacent
        size = self.batch_size or len(rows)
        flat: list[Completion] = []
        for start in range(0, len(rows), size):
            flat.extend(self._generate_rows(rows[start : start + size], params))
        return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _generate_rows(self, rows: list[list[int]], params: SamplingParams) -> list[Completion]:
        from transformers import GenerationConfig, LogitsProcessorList

        policy = self.policy
        if any(not row for row in rows):
            raise ValueError("cannot generate from an empty prompt")
        width = max(len(r) for r in rows)
        # Left padding: every row's next token sits in the same (last) column.
        input_ids = torch.full((len(rows), width), policy.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row) :] = torch.tensor(row)
            attention[i, width - len(row) :] = 1
        sampling = (
            {}
            if params.greedy
            else {
                "temperature": params.temperature,
                "top_p": params.top_p,
                "top_k": params.top_k,
            }
        )
        config = GenerationConfig(
            do_sample=not params.greedy,
            max_new_tokens=params.max_new_tokens,
            eos_token_id=list(policy.eos_token_ids),
            pad_token_id=policy.pad_token_id,
            use_cache=True,
            **sampling,
        )
        recorder = _LogprobRecorder(params.logprob_temperature)
        model = policy.model
        was_training = model.training
        model.eval()
        try:
            # FSDP2 all-gathers into buffers it reuses: inference tensors would break that.
            no_grad = torch.no_grad() if self.synced_gpus else torch.inference_mode()
            with no_grad, policy.autocast():
                output = model.generate(
                    input_ids=input_ids.to(policy.device),
                    attention_mask=attention.to(policy.device),
                    generation_config=config,
                    logits_processor=LogitsProcessorList([recorder]),
                    synced_gpus=self.synced_gpus,
                )
        finally:
            model.train(was_training)
        new_tokens = output[:, width:].cpu()
        logprobs = recorder.finish(new_tokens).cpu()
        completions = []
        for i, row in enumerate(rows):
            ids, truncated = trim_completion(new_tokens[i].tolist(), policy.eos_token_ids)
            completions.append(
                Completion(
                    prompt_ids=row,
                    token_ids=ids,
                    text=policy.decode(ids),
                    logprobs=logprobs[i, : len(ids)].tolist(),
                    truncated=truncated,
                )
            )
        return completions

    def sync_weights(self) -> None:
        """Nothing to do: ``generate`` runs on the trained model itself."""

    def close(self) -> None:
        """Nothing to release."""


def make_generator(
    backend: str, policy: Policy, *, batch_size: int | None = None, **options: Any
) -> Generator:
    """The generation backend ``backend`` (``hf`` or ``vllm``) for ``policy``; ``options``
    (gpu_memory_utilization, seed) are vLLM's."""
    if backend == "hf":
        return HFGenerator(policy, batch_size=batch_size)
    if backend == "vllm":
        from grpo_env.vllm_generator import VLLMGenerator

        return VLLMGenerator(policy, **options)
    raise ValueError(f"unknown generation backend {backend!r}; valid: hf, vllm")
