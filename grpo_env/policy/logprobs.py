"""Per-token logprobs of completions under a model: the one place every agent gets them.

A ``TokenBatch`` holds each distinct prompt once (left-padded) and the completions sampled
from it (right-padded), with the index of each completion's prompt. The forward pass packs
them (``grpo_env.policy.packing``): a row is ``[prompt | completion | completion | ...]``
with a mask, so each prompt runs once per row and no position is padding. A GRPO group of 8
samples of a 48-token prompt, with completions of 10 to 64 tokens, costs 48 plus the
completions' own tokens instead of 8 x 112 positions, in compute, in activation memory and in
the vocabulary-sized head; gradients flow into the prompt through the completions' attention.
Attention implementations that ignore custom masks (flash-attention), sliding-window models
(a custom mask would make those layers attend to everything) and sharded or data-parallel
modules (one forward per backward) take the flat layout ``[left-padded prompt | right-padded
completion]``, one row per completion; both give the same numbers.

Explicit position ids make left padding invisible (as in generation); only completion
positions produce ``vocab``-sized logits; logits are divided by the sampling temperature (the
distribution the tokens were drawn from) and computed in float32 whatever the weights' dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from grpo_env.policy.attention import NAME as ATTENTION_NAME
from grpo_env.policy.masking import lengths_to_mask
from grpo_env.policy.packing import PackedRow, pack_rows


@dataclass
class TokenBatch:
    """Distinct prompts and the completions sampled from them, ready for a forward pass."""

    prompt_ids: torch.Tensor  # [U, P] left-padded distinct prompts
    prompt_mask: torch.Tensor  # [U, P] 1 on real prompt tokens
    prompt_index: torch.Tensor  # [B] the prompt row of each completion
    completion_ids: torch.Tensor  # [B, C] right-padded
    completion_mask: torch.Tensor  # [B, C] float: 1 on the completion's own tokens
    # [B, C] float: 1 on the tokens the loss sees (the model's); 0 on env tokens and padding.
    # Equal to completion_mask for single-turn completions.
    loss_mask: torch.Tensor

    def to(self, device: torch.device) -> TokenBatch:
        return TokenBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    # The flat layout [left-padded prompt | right-padded completion], one row per completion.

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids[self.prompt_index], self.completion_ids], dim=1)

    @property
    def attention_mask(self) -> torch.Tensor:
        completion = self.completion_mask.to(self.prompt_mask.dtype)
        return torch.cat([self.prompt_mask[self.prompt_index], completion], dim=1)

    @property
    def position_ids(self) -> torch.Tensor:
        return (self.attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def pack_sequences(
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    pad_id: int,
    loss_masks: Sequence[Sequence[int]] | None = None,
) -> TokenBatch:
    """Pack (prompt ids, completion ids) pairs, each distinct prompt once; the completion
    mask comes from lengths, never from the pad id (which may be an EOS id). ``loss_masks``
    (multi-turn: 1 model token, 0 env token; an empty one means all ones) default to the
    completion mask."""
    if len(prompts) != len(completions) or not prompts:
        raise ValueError(f"got {len(prompts)} prompts for {len(completions)} completions")
    if any(not c for c in completions):
        raise ValueError("a completion has no tokens (it needs at least its EOS)")
    if any(not p for p in prompts):
        raise ValueError("a prompt has no tokens")
    rows: dict[tuple[int, ...], int] = {}
    index = [rows.setdefault(tuple(p), len(rows)) for p in prompts]
    distinct = list(rows)
    prompt_width = max(len(p) for p in distinct)
    prompt_ids = torch.full((len(distinct), prompt_width), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((len(distinct), prompt_width), dtype=torch.long)
    for row, prompt in enumerate(distinct):
        prompt_ids[row, prompt_width - len(prompt) :] = torch.tensor(prompt)
        prompt_mask[row, prompt_width - len(prompt) :] = 1
    width = max(len(c) for c in completions)
    completion_ids = torch.full((len(completions), width), pad_id, dtype=torch.long)
    for row, completion in enumerate(completions):
        completion_ids[row, : len(completion)] = torch.tensor(list(completion))
    completion_mask = lengths_to_mask([len(c) for c in completions], width).float()
    loss_mask = completion_mask.clone()
    for row, mask in enumerate(loss_masks or []):
        if mask:
            if len(mask) != len(completions[row]):
                raise ValueError(
                    f"row {row}: {len(mask)} loss-mask entries, {len(completions[row])} tokens"
                )
            loss_mask[row, : len(mask)] = torch.tensor(list(mask), dtype=loss_mask.dtype)
    return TokenBatch(
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        prompt_index=torch.tensor(index, dtype=torch.long),
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        loss_mask=loss_mask,
    )


def token_logprobs(
    model: nn.Module,
    batch: TokenBatch,
    temperature: float,
    *,
    with_entropy: bool = False,
    share_prompts: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logprob ``[B, C]`` of each completion token at ``temperature``, and optionally the
    policy's entropy at each position (no gradient: a metric). Padding positions hold 0 in
    the packed pass and the pad token's values in the flat one: both are masked out.

    ``share_prompts`` None packs the rows when the model's attention takes a custom mask.
    """
    mask_dtype = _packing_mask_dtype(model, share_prompts)
    if mask_dtype is None:
        logits = _flat_logits(model, batch)
        return SelectedLogprobs.apply(logits, batch.completion_ids, temperature, with_entropy)
    flat_ids = batch.completion_ids.reshape(-1)
    logps, entropies, targets = [], [], []
    grouped = _attention_name(model) == ATTENTION_NAME
    for row in pack_rows(batch):
        logits = _row_outputs(model, row, mask_dtype, grouped)
        logp, entropy = SelectedLogprobs.apply(
            logits, flat_ids[row.targets][None], temperature, with_entropy
        )
        logps.append(logp[0])
        entropies.append(entropy[0] if entropy is not None else None)
        targets.append(row.targets)
    index = torch.cat(targets)
    logp = _scatter(torch.cat(logps), index, batch.completion_ids.shape)
    if not with_entropy:
        return logp, None
    return logp, _scatter(torch.cat(entropies), index, batch.completion_ids.shape)


def completion_outputs(
    model: nn.Module, batch: TokenBatch, *, share_prompts: bool | None = None
) -> torch.Tensor:
    """``model``'s outputs (its ``.logits``: token logits, or a critic's values) at the
    positions that predict each completion token, ``[B, C, *]`` (zeros at padding in the
    packed pass). ``model`` takes a causal LM's arguments (a 4D ``attention_mask``, a tensor
    ``logits_to_keep``). ``share_prompts`` None packs when the model's attention allows."""
    mask_dtype = _packing_mask_dtype(model, share_prompts)
    if mask_dtype is None:
        return _flat_logits(model, batch)
    rows = pack_rows(batch)
    grouped = _attention_name(model) == ATTENTION_NAME
    outputs = torch.cat([_row_outputs(model, row, mask_dtype, grouped)[0] for row in rows])
    index = torch.cat([row.targets for row in rows])
    return _scatter(outputs, index, batch.completion_ids.shape)


# The attention implementations that take a custom 4D mask, and the mask's form for each.
_MASK_DTYPES = {"sdpa": torch.bool, ATTENTION_NAME: torch.bool, "eager": torch.float32}


def _packing_mask_dtype(model: nn.Module, share_prompts: bool | None) -> torch.dtype | None:
    """The dtype of the packed pass's mask, or None for the flat pass (asked for, or an
    attention implementation that ignores custom masks, like flash-attention's, or
    sliding-window layers, which a custom mask would turn into full attention)."""
    if share_prompts is False:
        return None
    config = _config(model)
    implementation = getattr(config, "_attn_implementation", None)
    sliding = getattr(config, "sliding_window", None) and getattr(
        config, "use_sliding_window", True
    )
    if "sliding_attention" in (getattr(config, "layer_types", None) or []):
        sliding = True
    dtype = _MASK_DTYPES.get(implementation) if not sliding else None
    if dtype is None and share_prompts:
        raise ValueError(f"attention {implementation!r} cannot run the packed (shared-prompt) pass")
    return dtype


def _config(model: nn.Module) -> Any:
    return next((m.config for m in model.modules() if hasattr(m, "config")), None)


def _attention_name(model: nn.Module) -> str | None:
    return getattr(_config(model), "_attn_implementation", None)


def _row_outputs(
    model: nn.Module, row: PackedRow, mask_dtype: torch.dtype, grouped: bool
) -> torch.Tensor:
    """Outputs ``[1, T, *]`` at a packed row's kept positions."""
    mask = row.allowed
    if mask_dtype != torch.bool:  # eager attention adds its mask to the scores
        mask = torch.zeros(mask.shape, dtype=mask_dtype, device=mask.device).masked_fill_(
            ~mask, torch.finfo(mask_dtype).min
        )
    # Our attention (``grouped``) runs the row group by group; others take the whole mask.
    groups = {"packed_groups": row.groups} if grouped else {}
    output = model(
        input_ids=row.input_ids,
        attention_mask=mask,
        position_ids=row.position_ids,
        logits_to_keep=row.keep,
        use_cache=False,
        **groups,
    )
    return output.logits


def _scatter(values: torch.Tensor, index: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``values [T, *]`` at flat positions ``index`` of a zero ``[*shape, *]`` (differentiable)."""
    rest = values.shape[1:]
    flat = values.new_zeros((shape.numel(), *rest)).index_copy(0, index, values)
    return flat.view(*shape, *rest)


def _flat_logits(model: nn.Module, batch: TokenBatch) -> torch.Tensor:
    """Logits ``[B, C, V]``: every row runs its own prompt."""
    width = batch.completion_ids.shape[1]
    input_ids, attention = batch.input_ids, batch.attention_mask
    output = model(
        input_ids=input_ids[:, :-1],
        attention_mask=attention[:, :-1],
        position_ids=((attention.cumsum(dim=1) - 1).clamp(min=0))[:, :-1],
        logits_to_keep=width,
        use_cache=False,
    )
    return output.logits


def logsumexp_parts(
    x: torch.Tensor, *, overwrite: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``logsumexp(x)`` over the last dim, with the ``exp(x - max)`` and its row sums that it
    is made of: the same operations as ``torch.logsumexp`` on CPU and CUDA, so the same bits,
    and the sampler and the trainer both call this one function (rule 4). ``overwrite``
    computes ``exp(x - max)`` in ``x``'s memory (the same bits, one vocabulary-sized
    allocation less)."""
    top = torch.amax(x, dim=-1, keepdim=True)
    top.masked_fill_(top.abs() == float("inf"), 0)  # an all -inf row: its lse stays -inf
    shifted = (x.sub_(top) if overwrite else x - top).exp_()
    sums = shifted.sum(dim=-1)
    return sums.log() + top.squeeze(-1), shifted, sums


def _rowwise_dot(a: torch.Tensor, b: torch.Tensor, rows: int = 64) -> torch.Tensor:
    """``(a * b).sum(-1)``, ``rows`` positions at a time: the product is never vocabulary-sized
    for the whole batch (a batched mat-vec is slower here: it copies both operands)."""
    width = a.shape[-1]
    pairs = zip(a.reshape(-1, width).split(rows), b.reshape(-1, width).split(rows), strict=True)
    return torch.cat([(x * y).sum(-1) for x, y in pairs]).reshape(a.shape[:-1])


class SelectedLogprobs(torch.autograd.Function):
    """Logprob of ``token_ids`` under ``softmax(logits / temperature)`` in float32, and the
    entropy of that distribution (no gradient: a metric), in a few passes over the
    ``batch x length x vocab`` tensor.

    Autograd through ``gather - logsumexp`` plus a separate entropy pass reads and writes that
    tensor about 18 times (forward, backward, entropy); here the forward's ``exp(x - max)``
    serves the entropy and is kept as the backward's softmax: 8 passes, about 2.5x less time
    on the vocabulary-sized tensor (float32 gradients equal within float rounding)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        logits: torch.Tensor,
        token_ids: torch.Tensor,
        temperature: float,
        with_entropy: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = logits.float()
        if temperature != 1.0:
            # A division, as the sampler's (the same rounding); a new tensor when ``logits``
            # already was float32 (the model's output is not changed in place).
            x = x.div_(temperature) if x is not logits else x / temperature
        picked = x.gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)
        # x is ours to overwrite when it is a copy and the entropy does not need it.
        lse, shifted, sums = logsumexp_parts(x, overwrite=x is not logits and not with_entropy)
        logp = picked - lse
        entropy = None
        if with_entropy:  # H = lse - E_p[x], with p = shifted / sums
            entropy = lse - _rowwise_dot(shifted, x) / sums
            ctx.mark_non_differentiable(entropy)
        ctx.save_for_backward(shifted, sums, token_ids)
        ctx.temperature = temperature
        ctx.logits_dtype = logits.dtype
        return logp, entropy

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_logp: torch.Tensor, grad_entropy: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        if getattr(ctx, "spent", False):
            raise RuntimeError("SelectedLogprobs reuses its saved softmax: one backward only")
        ctx.spent = True
        shifted, sums, token_ids = ctx.saved_tensors
        # d(x_t - lse)/dx = onehot(t) - softmax(x); the saved exp(x - max) becomes the gradient.
        grad = shifted.mul_((-grad_logp / sums).unsqueeze(-1))
        grad.scatter_add_(-1, token_ids.unsqueeze(-1), grad_logp.unsqueeze(-1))
        if ctx.temperature != 1.0:
            grad.div_(ctx.temperature)
        return grad.to(ctx.logits_dtype), None, None, None
