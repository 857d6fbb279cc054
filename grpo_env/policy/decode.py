"""The ``hf`` backend's own sampling loop: prompts once, G samples each, finished rows leave.

transformers ``generate`` decodes a batch until its longest row ends, runs every prompt G times
and applies whatever logits processors the model's ``generation_config.json`` names. This loop:

- runs each distinct prompt once and copies its keys/values to its G rows (as the trainer's
  shared-prompt pass does);
- drops a row from the batch (and the KV cache) as soon as it emits an EOS, so a step costs
  the tokens actually sampled, not rows x longest;
- under autocast, keeps the cached keys in the autocast dtype (``AutocastKeyCache``);
- samples ``softmax(logits / temperature)`` (top-k/top-p truncation only if asked) and records
  the logprob of each sampled token in float32 from the same logits: the trainer's quantity
  (rule 4), with no logits processor anywhere (rule 9).

Greedy (temperature 0) takes the argmax and reports logprobs at temperature 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache

from grpo_env.policy.logprobs import logsumexp_parts


@dataclass
class Sampled:
    """One row's new tokens (through its first EOS, or max_new_tokens) and their logprobs."""

    token_ids: list[int]
    logprobs: list[float]


class AutocastKeyCache(DynamicCache):
    """A KV cache that stores keys in autocast's dtype. Rotary embeddings run in the float32
    of the residual stream, so under bf16 autocast the new keys come out float32 (values come
    out of their projection in bf16): the cache kept them float32, and each attention matmul
    cast the whole cache back to bf16, every layer, every step. Casting once on insert gives
    the matmul the same bf16 keys (the same logits to the bit) and halves the cache's copies."""

    def __init__(self, dtype: torch.dtype, **kwargs: Any):
        super().__init__(**kwargs)
        self.key_dtype = dtype

    def update(  # type: ignore[override]
        self,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        layer_idx: int,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return super().update(
            key_states.to(self.key_dtype), value_states, layer_idx, *args, **kwargs
        )


def decode_cache(model: nn.Module, device: torch.device) -> DynamicCache | None:
    """The cache for a decode under the current autocast (None: the model makes its own)."""
    if not torch.is_autocast_enabled(device.type):
        return None
    return AutocastKeyCache(torch.get_autocast_dtype(device.type), config=model.config)


def warp_for_sampling(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Tempered logits with top-k / top-p truncation (-inf outside), for drawing only."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p (keep the first).
        drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def draw(probs: torch.Tensor) -> torch.Tensor:
    """One token per row from ``probs`` (unnormalised weights will do) by inverse CDF: one
    uniform per row and a search, where ``torch.multinomial`` draws an exponential per
    vocabulary entry (the larger cost)."""
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(probs.shape[0], 1, device=probs.device, dtype=cdf.dtype) * cdf[:, -1:]
    # right=True: the first entry whose cdf exceeds u, never a zero-probability one.
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp(max=probs.shape[-1] - 1)


# no_grad, not inference_mode: under inference_mode autocast does not cache its bf16 copies of
# the float32 weights, and re-casts all of them at every decode step.
@torch.no_grad()
def sample_rows(
    model: nn.Module,
    prompts: Sequence[Sequence[int]],
    n: int,
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int,
    top_p: float,
    eos_ids: Sequence[int],
    pad_id: int,
    device: torch.device,
) -> list[Sampled]:
    """``n`` samples of each prompt, rows in prompt order (the G samples of a prompt adjacent)."""
    greedy = temperature == 0.0
    scale = 1.0 if greedy else temperature
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt) :] = torch.tensor(list(prompt))
        mask[i, width - len(prompt) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=(mask.cumsum(dim=1) - 1).clamp(min=0),
        logits_to_keep=1,
        cache=decode_cache(model, device),
        use_cache=True,
    )
    rows = torch.arange(len(prompts), device=device).repeat_interleave(n)
    cache = out.cache
    cache.reorder_cache(rows)  # each prompt's keys/values, copied to its n rows
    logits = out.logits[:, -1, :][rows]
    attention = mask[rows]
    next_position = mask.sum(dim=1)[rows]
    eos = torch.tensor(sorted(set(eos_ids)), device=device)
    live = torch.arange(len(rows), device=device)  # which output row each batch row is
    tokens: list[list[int]] = [[] for _ in range(len(rows))]
    logps: list[list[float]] = [[] for _ in range(len(rows))]
    for step in range(max_new_tokens):
        scaled = logits.float()
        if scale != 1.0:
            scaled = scaled / scale  # a division, as the trainer's: the same rounding
        # The trainer's function and formula (SelectedLogprobs): gather - logsumexp.
        norm, weights, _ = logsumexp_parts(scaled)
        if greedy:
            chosen = scaled.argmax(dim=-1)
        elif top_k or top_p < 1.0:
            chosen = draw(warp_for_sampling(scaled, top_k, top_p).softmax(dim=-1))
        else:
            chosen = draw(weights)  # exp(x - max): the softmax up to its (unneeded) sum
        chosen_logp = scaled.gather(1, chosen[:, None]).squeeze(1) - norm
        picked = zip(live.tolist(), chosen.tolist(), chosen_logp.tolist(), strict=True)
        for row, token, value in picked:
            tokens[row].append(token)
            logps[row].append(value)
        if step == max_new_tokens - 1:
            break
        keep = ~torch.isin(chosen, eos)
        if not bool(keep.any()):
            break
        if not bool(keep.all()):
            index = keep.nonzero().squeeze(1)
            cache.reorder_cache(index)  # finished rows leave the batch
            live, chosen = live[index], chosen[index]
            attention, next_position = attention[index], next_position[index]
        attention = torch.cat([attention, attention.new_ones(len(live), 1)], dim=1)
        out = model(
            input_ids=chosen[:, None],
            attention_mask=attention,
            position_ids=next_position[:, None],
            cache=cache,
            use_cache=True,
        )
        next_position = next_position + 1
        logits = out.logits[:, -1, :]
    return [Sampled(t, lp) for t, lp in zip(tokens, logps, strict=True)]
