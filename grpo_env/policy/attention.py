"""Attention for short sequences on CPU: plain matmuls where torch's CPU SDPA kernel is slow.

torch's flash-attention kernel for CPU has a high fixed cost per call: on SmolLM2-135M, a
decode step over 16 unpadded rows spends ~0.5 ms per layer in it, a third of the step. For the
short queries of RL sampling and of a GRPO loss over ~100 tokens, two matmuls and a float32
softmax are as fast or faster: that decode step 319 -> 434 tokens/s, one forward+backward over
8 x 110 tokens 1.71 -> 1.38 s (bf16 autocast, 2 cores). They materialise the score matrix, so
large calls (``batch * q_len * kv_len`` above ``EAGER_MAX_SCORES`` per head) still go to SDPA,
whose memory does not grow with it.

The grouped query heads of GQA share their key/value head by a reshape (no ``repeat_kv``
copy). The mask is transformers' SDPA mask (boolean, True = attend, or None when the pattern
is plain causal), so switching between the two paths per call needs no second mask.

A packed training row (``grpo_env.policy.packing``) comes with ``packed_groups`` (passed
through the model's forward to here): runs of queries with the keys they may see. Each run
is attended on its own, which skips the score entries its mask would zero.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

NAME = "grpo_env_short_eager"
# Score entries per head, over the batch, up to which the matmul path runs: a packed training
# row of 512 positions (``grpo_env.policy.packing``), or 8 rows of 64 x 512. With 9 heads the
# saved activations stay under ~20 MB per layer. (A 128 x 75 prefill goes to SDPA: ~4 % slower.)
EAGER_MAX_SCORES = 512 * 512


def short_eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: query [B, H, q, d], key/value [B, Hkv, k, d]
    -> output [B, q, H, d]."""
    groups = kwargs.pop("packed_groups", None)
    if groups:
        return _grouped_attention(module, query, key, value, groups, dropout, scaling)
    batch, heads, q_len, dim = query.shape
    kv_heads, kv_len = key.shape[1], key.shape[2]
    if batch * q_len * kv_len > EAGER_MAX_SCORES or kwargs.get("softcap") is not None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    groups = heads // kv_heads
    scale = scaling if scaling is not None else dim**-0.5
    # Head h uses key/value head h // groups (repeat_kv's order): fold the group into queries.
    # The scale goes on the queries (q_len x dim), not on the q_len x kv_len scores: one pass
    # less over the larger tensor; exact for head_dim 64 (a power-of-two scale).
    grouped = (query * scale).reshape(batch, kv_heads, groups * q_len, dim)
    scores = torch.matmul(grouped, key.transpose(2, 3))
    scores = scores.view(batch, kv_heads, groups, q_len, kv_len)
    allowed = attention_mask
    if allowed is None and q_len > 1:
        # None means plain causal: query i sits at key position i + (kv_len - q_len).
        rows = torch.arange(q_len, device=query.device)[:, None] + (kv_len - q_len)
        allowed = rows >= torch.arange(kv_len, device=query.device)[None, :]
    if allowed is not None:
        if allowed.dim() == 4:  # [B or 1, 1, q, k]: broadcast over the group axis
            allowed = allowed[:, :, None]
        if allowed.dtype == torch.bool:
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        else:  # an additive float mask
            scores = scores + allowed
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    if dropout and module.training:
        probs = nn.functional.dropout(probs, p=dropout)
    out = torch.matmul(probs.view(batch, kv_heads, groups * q_len, kv_len), value)
    out = out.view(batch, heads, q_len, dim).transpose(1, 2).contiguous()
    return out, None


def _grouped_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    groups: Any,
    dropout: float,
    scaling: float | None,
) -> tuple[torch.Tensor, None]:
    """A packed row's attention group by group (``grpo_env.policy.packing.QueryGroup``): each
    group's queries against the keys they may see, not the row's every key. The keys left out
    are the ones the mask zeroes, so the output is the full masked attention's (up to the
    order of float sums)."""
    outputs = []
    for group in groups:
        if len(group.keys) == 1:
            keys, values = key[:, :, group.keys[0]], value[:, :, group.keys[0]]
        else:
            keys = torch.cat([key[:, :, part] for part in group.keys], dim=2)
            values = torch.cat([value[:, :, part] for part in group.keys], dim=2)
        out, _ = short_eager_attention(
            module, query[:, :, group.queries], keys, values, group.allowed, dropout, scaling
        )
        outputs.append(out)
    return torch.cat(outputs, dim=1), None


def register() -> str:
    """Register the function (and SDPA's mask format) with transformers; returns its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, short_eager_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


def use_short_eager(model: nn.Module) -> bool:
    """Switch a model that runs SDPA on the CPU to the short-sequence path; False when the
    model cannot switch (not transformers' functional attention) or uses something else."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa":
        return False
    setter = getattr(model, "set_attn_implementation", None)
    if setter is None or not getattr(model, "_can_set_attn_implementation", lambda: False)():
        return False
    setter(register())
    return model.config._attn_implementation == NAME
