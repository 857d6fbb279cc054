"""Generation backends: prompts in, completions (token ids, text, per-token logprobs) out.

Two backends share the ``Generator`` interface:

- ``hf`` (``HFGenerator``): all of a step's prompts x G samples in one batch (chunked by
  ``batch_size`` if asked), CPU or CUDA, on the policy's live weights (nothing to sync after an
  update), under the policy's precision (bf16 autocast where it has one). ``decode="loop"`` is
  ``grpo_env.policy.decode``'s loop: each prompt prefilled once, finished rows leave the batch;
  ``decode="fused"`` is the same loop with ``grpo_env.policy.fused_decode``'s decode step (fused
  projections, Llama-family models); ``decode="auto"`` (the default) is ``fused`` on CPU under
  bf16 autocast where the model is supported, else ``loop``; ``decode="generate"`` is
  transformers ``generate`` with every logits processor set neutral (the model's own generation
  config hidden).
- ``vllm`` (``grpo_env.policy.vllm_generator.VLLMGenerator``): optional extra, CUDA only;
  weights are pushed to the engine after each update (``sync_weights``).

Logprobs are of the sampled token under ``softmax(logits / temperature)`` of the raw model
(before top-k/top-p truncation): the same quantity the trainer computes, so the two can be
compared. Greedy decoding (temperature 0) reports logprobs at temperature 1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch

from grpo_env.policy.masking import trim_completion
from grpo_env.policy.models import Policy

HFDecode = Literal["auto", "fused", "loop", "generate"]


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


def neutral_generation_config(params: SamplingParams, policy: Policy) -> Any:
    """A ``GenerationConfig`` that samples exactly ``softmax(logits / temperature)`` (with the
    user's top-k/top-p): every logits processor that a model's ``generation_config.json`` could
    switch on is set to its neutral value here (correctness rule 9)."""
    from transformers import GenerationConfig

    sampling = {} if params.greedy else {"temperature": params.temperature}
    return GenerationConfig(
        do_sample=not params.greedy,
        max_new_tokens=params.max_new_tokens,
        min_new_tokens=0,
        eos_token_id=list(policy.eos_token_ids),
        pad_token_id=policy.pad_token_id,
        use_cache=True,
        num_beams=1,
        top_p=params.top_p if not params.greedy else 1.0,
        top_k=params.top_k if not params.greedy else 0,
        min_p=0.0,
        typical_p=1.0,
        epsilon_cutoff=0.0,
        eta_cutoff=0.0,
        repetition_penalty=1.0,
        encoder_repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        encoder_no_repeat_ngram_size=0,
        diversity_penalty=0.0,
        renormalize_logits=False,
        remove_invalid_values=False,
        **sampling,
    )


@contextmanager
def _model_defaults_hidden(model: Any) -> Iterator[None]:
    """Hide the model's own generation config while ``generate`` runs: transformers fills
    every field left unset (``None``: suppress_tokens, bad_words_ids, sequence_bias,
    forced_bos/eos...) from it, and None cannot be said explicitly."""
    from transformers import GenerationConfig

    holders = [m for m in (model, _base_model(model)) if hasattr(m, "generation_config")]
    saved = [(m, m.generation_config) for m in holders]
    try:
        for holder, _ in saved:
            holder.generation_config = GenerationConfig()
        yield
    finally:
        for holder, config in saved:
            holder.generation_config = config


def _base_model(model: Any) -> Any:
    getter = getattr(model, "get_base_model", None)
    return getter() if callable(getter) else model


class HFGenerator:
    """Batched sampling on the policy's own weights (see the module docstring)."""

    def __init__(self, policy: Policy, batch_size: int | None = None, decode: HFDecode = "auto"):
        if decode not in ("auto", "fused", "loop", "generate"):
            raise ValueError(f"unknown hf decode {decode!r}; valid: auto, fused, loop, generate")
        self.policy = policy
        self.batch_size = batch_size
        self.decode = decode
        # FSDP2 (grpo_env.training.parallel): every rank decodes until all are done, in lock-step.
        self.synced_gpus = False

    def generate(
        self, prompts: Sequence[Sequence[int]], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        if any(not p for p in prompts):
            raise ValueError("cannot generate from an empty prompt")
        # The loop's rows leave when they finish: sharded ranks would fall out of step, so
        # FSDP2 samples through transformers' generate with synced_gpus.
        if self.decode != "generate" and not self.synced_gpus:
            return self._generate_loop(prompts, n, params, fused=self._fused_step())
        rows = [list(p) for p in prompts for _ in range(n)]  # G copies of each prompt, adjacent
        size = self.batch_size or len(rows)
        flat: list[Completion] = []
        for start in range(0, len(rows), size):
            flat.extend(self._generate_rows(rows[start : start + size], params))
        return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _generate_rows(self, rows: list[list[int]], params: SamplingParams) -> list[Completion]:
        from transformers import LogitsProcessorList

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
        config = neutral_generation_config(params, policy)
        recorder = _LogprobRecorder(params.logprob_temperature)
        model = policy.model
        was_training = model.training
        model.eval()
        try:
            # no_grad, not inference_mode: autocast caches its weight casts only outside it,
            # and FSDP2 all-gathers into buffers it reuses (inference tensors would break that).
            with torch.no_grad(), policy.autocast(), _model_defaults_hidden(model):
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

    def describe(self) -> str:
        """Which sampling path ``generate`` takes (for the run's first line)."""
        if self.decode == "generate" or self.synced_gpus:
            return "transformers generate"
        return "fused decode step" if self._fused_step() else "decode loop"

    def _fused_step(self) -> bool:
        """Whether the loop decodes through ``FusedDecoder`` (``decode`` auto or fused)."""
        from grpo_env.policy.fused_decode import unsupported_reason

        if self.decode == "loop":
            return False
        policy = self.policy
        reason = unsupported_reason(policy.model, autocast=policy.precision.autocast is not None)
        if self.decode == "fused":
            if reason is not None:
                raise ValueError(f"generation.hf_decode = fused cannot run this model: {reason}")
            return True
        # auto: where it was measured faster (2-core CPU, bf16: decode steps ~15 % faster).
        cpu_bf16 = policy.device.type == "cpu" and policy.precision.autocast is not None
        return reason is None and cpu_bf16

    def _generate_loop(
        self, prompts: Sequence[Sequence[int]], n: int, params: SamplingParams, fused: bool
    ) -> list[list[Completion]]:
        from grpo_env.policy.decode import sample_rows

        policy = self.policy
        # batch_size counts rows; a prompt's n samples stay in one chunk (one prefill).
        per_chunk = max(1, (self.batch_size or n * len(prompts)) // n)
        model = policy.model
        was_training = model.training
        model.eval()
        groups: list[list[Completion]] = []
        try:
            for start in range(0, len(prompts), per_chunk):
                chunk = [list(p) for p in prompts[start : start + per_chunk]]
                with policy.autocast():
                    rows = sample_rows(
                        model,
                        chunk,
                        n,
                        max_new_tokens=params.max_new_tokens,
                        temperature=params.temperature,
                        top_k=params.top_k,
                        top_p=params.top_p,
                        eos_ids=policy.eos_token_ids,
                        pad_id=policy.pad_token_id,
                        device=policy.device,
                        fused=fused,
                    )
                for i, prompt in enumerate(chunk):
                    groups.append(
                        [self._completion(prompt, row) for row in rows[i * n : (i + 1) * n]]
                    )
        finally:
            model.train(was_training)
        return groups

    def _completion(self, prompt: list[int], row: Any) -> Completion:
        ids, truncated = trim_completion(row.token_ids, self.policy.eos_token_ids)
        return Completion(
            prompt_ids=prompt,
            token_ids=ids,
            text=self.policy.decode(ids),
            logprobs=row.logprobs[: len(ids)],
            truncated=truncated,
        )

    def sync_weights(self) -> None:
        """Nothing to do: sampling runs on the trained model itself."""

    def close(self) -> None:
        """Nothing to release."""


def make_generator(
    backend: str,
    policy: Policy,
    *,
    batch_size: int | None = None,
    hf_decode: HFDecode = "auto",
    **options: Any,
) -> Generator:
    """The generation backend ``backend`` (``hf`` or ``vllm``) for ``policy``; ``options``
    (gpu_memory_utilization, seed) are vLLM's."""
    if backend == "hf":
        return HFGenerator(policy, batch_size=batch_size, decode=hf_decode)
    if backend == "vllm":
        from grpo_env.policy.vllm_generator import VLLMGenerator

        return VLLMGenerator(policy, **options)
    raise ValueError(f"unknown generation backend {backend!r}; valid: hf, vllm")
