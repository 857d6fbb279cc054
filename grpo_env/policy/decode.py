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

from grpo_env.policy.fused_decode import FusedDecoder, compute_dtype
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


DRAW_BLOCK = 256


def draw(probs: torch.Tensor) -> torch.Tensor:
    """One token per row from ``probs`` (unnormalised weights will do) by inverse CDF: one
    uniform per row and a search, where ``torch.multinomial`` draws an exponential per
    vocabulary entry (the larger cost). Two levels: a block of ``DRAW_BLOCK`` entries by the
    cumulative block sums, then the entry inside it (a cumsum over a 49k vocabulary is one
    slow serial pass per row: 0.7 ms per decode step at 16 rows, ~0.05 ms this way)."""
    rows, vocab = probs.shape
    blocks = -(-vocab // DRAW_BLOCK)
    if blocks * DRAW_BLOCK != vocab:
        probs = torch.nn.functional.pad(probs, (0, blocks * DRAW_BLOCK - vocab))
    blocked = probs.view(rows, blocks, DRAW_BLOCK)
    block_cdf = blocked.sum(dim=-1).cumsum(dim=-1)
    u = torch.rand(rows, 1, device=probs.device, dtype=block_cdf.dtype) * block_cdf[:, -1:]
    # right=True: the first block whose cdf exceeds u, one with mass.
    block = torch.searchsorted(block_cdf, u, right=True).clamp(max=blocks - 1)
    before = torch.where(block > 0, block_cdf.gather(1, (block - 1).clamp(min=0)), 0.0)
    inner_cdf = blocked[torch.arange(rows, device=probs.device), block.squeeze(1)].cumsum(dim=-1)
    # Rounding can put u past the block's own total: then its last entry with mass.
    total = inner_cdf[:, -1:].contiguous()
    inner = torch.searchsorted(inner_cdf, torch.minimum(u - before, total), right=True)
    last = torch.searchsorted(inner_cdf, total, right=False)
    inner = torch.minimum(inner, last)
    return (block * DRAW_BLOCK + inner).squeeze(1)


class ModelDecoder:
    """Decode state through the model's own forward and ``DynamicCache``: ``step(tokens)``
    feeds one token per row and returns the next logits, ``keep(index)`` drops the other rows
    (``grpo_env.policy.fused_decode.FusedDecoder`` has the same two, faster)."""

    def __init__(
        self, model: nn.Module, cache: Any, attention: torch.Tensor, next_position: torch.Tensor
    ):
        self.model, self.cache = model, cache
        self.attention, self.next_position = attention, next_position

    def keep(self, index: torch.Tensor) -> None:
        self.cache.reorder_cache(index)
        self.attention, self.next_position = self.attention[index], self.next_position[index]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.attention = torch.cat([self.attention, self.attention.new_ones(len(tokens), 1)], 1)
        out = self.model(
            input_ids=tokens[:, None],
            attention_mask=self.attention,
            position_ids=self.next_position[:, None],
            cache=self.cache,
            use_cache=True,
        )
        self.next_position = self.next_position + 1
        return out.logits[:, -1, :]


# A prefix shorter than this is recomputed per prompt: its own pass runs every layer once more,
# for a handful of tokens (make train's prompts share 35).
SHARED_PREFIX_MIN = 16


def shared_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all ``prompts`` share, leaving each at least its last token (the
    one whose logits start the completion). 0 for a single prompt: nothing to share."""
    if len(prompts) < 2:
        return 0
    first = prompts[0]
    length = min(len(p) for p in prompts) - 1
    for prompt in prompts[1:]:
        same = 0
        while same < length and prompt[same] == first[same]:
            same += 1
        length = same
    return max(length, 0)


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
    fused: bool = False,
) -> list[Sampled]:
    """``n`` samples of each prompt, rows in prompt order (the G samples of a prompt adjacent).
    ``fused``: the prefill and the decode steps through ``FusedDecoder`` (the caller checked
    the model is supported), a prefix every prompt shares (a system prompt) run once for all;
    else through the model's forward."""
    greedy = temperature == 0.0
    scale = 1.0 if greedy else temperature
    prefix: list[int] = []
    if fused:
        shared = shared_prefix_length(prompts)
        if shared >= SHARED_PREFIX_MIN:
            prefix = list(prompts[0][:shared])
            prompts = [p[shared:] for p in prompts]
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt) :] = torch.tensor(list(prompt))
        mask[i, width - len(prompt) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    state: ModelDecoder | FusedDecoder
    if fused:
        dtype = compute_dtype(model, device)
        assert dtype is not None, "fused decode without a compute dtype"
        state = FusedDecoder(model, len(prompts) * n, max_new_tokens - 1, dtype)
        shared_ids = torch.tensor(prefix, dtype=torch.long, device=device) if prefix else None
        logits = state.prefill(ids, mask, n, prefix=shared_ids)
    else:
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(dim=1) - 1).clamp(min=0),
            logits_to_keep=1,
            cache=decode_cache(model, device),
            use_cache=True,
        )
        rows = torch.arange(len(prompts), device=device).repeat_interleave(n)
        out.cache.reorder_cache(rows)  # each prompt's keys/values, copied to its n rows
        logits = out.logits[:, -1, :][rows]
        state = ModelDecoder(model, out.cache, mask[rows], mask.sum(dim=1)[rows])
        del out
    eos = torch.tensor(sorted(set(eos_ids)), device=device)
    live = torch.arange(len(logits), device=device)  # which output row each batch row is
    tokens: list[list[int]] = [[] for _ in range(len(logits))]
    logps: list[list[float]] = [[] for _ in range(len(logits))]
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
            state.keep(index)  # finished rows leave the batch
            live, chosen = live[index], chosen[index]
        logits = state.step(chosen)
    return [Sampled(t, lp) for t, lp in zip(tokens, logps, strict=True)]
