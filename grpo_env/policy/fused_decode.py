"""A decode step for Llama-family models with fused projections: the sampling loop's fast path.

At 16 rows a CPU decode step of SmolLM2-135M is ~2/3 matmul and ~1/3 the ~2000 small ops
around it (per layer: three q/k/v casts and matmuls, rotary embeddings twice, a cache
``cat`` per tensor, autocast's dispatch, peft's wrappers). This step does the same arithmetic
in fewer ops, as vLLM does on GPUs:

- q/k/v run as one matmul over the concatenated weights, gate/up as another; LoRA adapters as
  one ``A`` matmul over the concatenated ``A``s and one over a block-diagonal ``B``;
- rotary embeddings rotate the queries and keys together;
- keys and values go into buffers that grow ``BUFFER_STEP`` positions at a time (no ``cat``
  per step), and attention runs over the whole buffer with unwritten positions masked;
- casts are explicit (no autocast dispatch): the same casts autocast makes, in the same places,
  so under bf16 the logits match the model's own forward to the bit (measured on SmolLM2) and
  in float32 to rounding;
- bf16 weights on CPU are reordered once into oneDNN's blocked layout
  (``grpo_env.policy.prepacked``). A plain bf16 ``F.linear`` reorders its weight at every
  call: at 16 rows that is more than half of the matmul's time (SmolLM2's decode-step matmuls
  17.7 -> 9.2 ms, bit-identical outputs).

The weights are copied once per sampling call (concatenated, in the compute dtype: the
copies autocast would cache anyway; prepacked, they are these copies' only form). The
prompts' prefill runs through the same layer code (``prefill``): each prompt once, its keys
and values then copied to its rows. On two 43-token prompts it takes 42 ms where the model's
own forward took 81 (that forward re-casts every weight under autocast). A prefix every prompt
shares (``sample_rows`` finds it: a system prompt, a task's fixed wording) runs once for all
of them: `make train`'s 200 held-out prompts of 46-48 tokens share 35, and their prefill takes
1.05 s instead of 3.35 s (an evaluation 10.4 -> 8.1 s).

Supported: ``llama``, ``qwen2`` and ``mistral`` configs with full attention in every layer
(``unsupported_reason`` says why not otherwise), plain LoRA adapters (no DoRA, no adapter
bias). Anything else samples through the model's own forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from grpo_env.policy.prepacked import linear, pack

MODEL_TYPES = ("llama", "qwen2", "mistral")
# Positions the key/value buffers grow by. Attention runs over the whole buffer, so a larger
# step reads more unwritten positions per decode step; a smaller one copies the buffers more
# often. `make train`'s decode steps (64 new tokens): 16 is 3-5 % faster than 64 or 32, and 8
# no faster; the logprobs are the same to the bit (masked positions add exact zeros).
BUFFER_STEP = 16
_PARTS = {
    "qkv": ("self_attn", ("q_proj", "k_proj", "v_proj")),
    "o": ("self_attn", ("o_proj",)),
    "gate_up": ("mlp", ("gate_proj", "up_proj")),
    "down": ("mlp", ("down_proj",)),
}


def _causal_lm(model: nn.Module) -> nn.Module:
    getter = getattr(model, "get_base_model", None)
    return getter() if callable(getter) else model


def compute_dtype(model: nn.Module, device: torch.device) -> torch.dtype | None:
    """The dtype the fused step's matmuls run in: autocast's where it is on, float32 where
    every weight is float32, else None (mixed dtypes without autocast: not supported)."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    if all(p.dtype == torch.float32 for p in model.parameters()):
        return torch.float32
    return None


def unsupported_reason(model: nn.Module, *, autocast: bool = True) -> str | None:
    """Why the fused step cannot run ``model`` (None: it can); ``autocast`` False: it will run
    without autocast, so every weight must be float32 (``compute_dtype``'s rule)."""
    if not autocast and any(p.dtype != torch.float32 for p in model.parameters()):
        return "weights in a low precision without autocast"
    lm = _causal_lm(model)
    config = getattr(lm, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in MODEL_TYPES:
        return f"model type {model_type!r} (supported: {', '.join(MODEL_TYPES)})"
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    window = getattr(config, "sliding_window", None)
    if layer_types != {"full_attention"} or (model_type == "mistral" and window is not None):
        return "sliding-window attention"
    inner = getattr(lm, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None or getattr(lm, "lm_head", None) is None:
        return "no model.layers / lm_head"
    for layer in layers:
        for owner, names in _PARTS.values():
            for name in names:
                reason = _projection_problem(getattr(getattr(layer, owner, None), name, None))
                if reason:
                    return f"{owner}.{name}: {reason}"
    return None


def _projection_problem(module: Any) -> str | None:
    base = getattr(module, "base_layer", module)
    if not isinstance(base, nn.Linear):
        return f"not a Linear ({type(module).__name__})"
    if base is module or getattr(module, "disable_adapters", False) or module.merged:
        return None
    for name in module.active_adapters:
        if name not in module.lora_A:
            continue
        if module.use_dora.get(name, False):
            return "DoRA adapter"
        if module.lora_B[name].bias is not None:
            return "LoRA adapter with a bias"
        if not isinstance(module.lora_A[name], nn.Linear):
            return "LoRA adapter that is not a Linear"
    return None


def _adapters(module: Any) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """(A, B, scaling) of each active LoRA adapter on ``module`` (none when there are none, or
    they are disabled or merged into the base weight)."""
    if getattr(module, "base_layer", None) is None or module.disable_adapters or module.merged:
        return []
    return [
        (module.lora_A[name].weight, module.lora_B[name].weight, float(module.scaling[name]))
        for name in module.active_adapters
        if name in module.lora_A
    ]


@dataclass
class _Projection:
    """Several Linear layers (and their LoRA adapters) that read the same input, as one."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    lora_a: torch.Tensor | None  # [sum of ranks, in]
    lora_b: torch.Tensor | None  # [out, sum of ranks], block-diagonal
    lora_scale: float | torch.Tensor

    @classmethod
    def build(cls, modules: list[Any], dtype: torch.dtype, rows: int) -> _Projection:
        """``rows``: the batch's rows, to ``pack`` the weights for."""
        bases = [getattr(m, "base_layer", m) for m in modules]
        # One module's weight is used as it is when it has the dtype already (a LoRA base).
        weight = (
            bases[0].weight.to(dtype)
            if len(bases) == 1
            else torch.cat([b.weight.to(dtype) for b in bases])
        )
        bias = None
        if any(b.bias is not None for b in bases):
            bias = torch.cat(
                [b.bias if b.bias is not None else b.weight.new_zeros(len(b.weight)) for b in bases]
            ).to(dtype)
        blocks = []  # (out offset, A, B, scaling)
        offset = 0
        for module, base in zip(modules, bases, strict=True):
            blocks += [(offset, a, b, s) for a, b, s in _adapters(module)]
            offset += len(base.weight)
        if not blocks:
            return cls(pack(weight, rows), bias, None, None, 1.0)
        lora_a = torch.cat([a for _, a, _, _ in blocks]).to(dtype)
        lora_b = weight.new_zeros(offset, len(lora_a))
        scale = torch.empty(offset)
        rank_at = 0
        for out_at, a, b, s in blocks:
            lora_b[out_at : out_at + len(b), rank_at : rank_at + len(a)] = b
            scale[out_at : out_at + len(b)] = s
            rank_at += len(a)
        scales = set(scale.tolist())
        # One scale (the usual case) multiplies as peft does: tensor * python float.
        lora_scale = scales.pop() if len(scales) == 1 else scale.to(weight.device)
        return cls(pack(weight, rows), bias, pack(lora_a, rows), pack(lora_b, rows), lora_scale)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = linear(x, self.weight, self.bias)
        if self.lora_a is not None and self.lora_b is not None:
            delta = linear(linear(x, self.lora_a, None), self.lora_b, None)
            if isinstance(self.lora_scale, torch.Tensor):
                delta = (delta.float() * self.lora_scale).to(delta.dtype)
            else:
                delta = delta * self.lora_scale
            out = out + delta
        return out


@dataclass
class _Layer:
    input_norm: nn.Module
    post_attention_norm: nn.Module
    qkv: _Projection
    o: _Projection
    gate_up: _Projection
    down: _Projection
    act: nn.Module


def _rms_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """transformers' Llama RMSNorm, without the module call: float32 statistics, the input's
    dtype out, then the weight."""
    dtype = x.dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * h.to(dtype)


class FusedDecoder:
    """Decode state over a batch of rows: ``prefill(ids, mask, copies)`` runs the prompts once
    and returns the first logits of each of their ``copies`` rows, ``step(tokens)`` feeds one
    token per row and returns the next logits, ``keep(index)`` drops the other rows."""

    def __init__(self, model: nn.Module, rows: int, new_tokens: int, dtype: torch.dtype):
        """``rows``: the batch's rows (prompts x copies); ``new_tokens``: the most ``step``s."""
        lm = _causal_lm(model)
        inner = lm.model
        self.dtype = dtype
        self.embed = inner.embed_tokens
        self.rotary = inner.rotary_emb
        self.final_norm = inner.norm
        # bf16 CPU weights get prepacked for this many rows.
        self.head = _Projection.build([lm.lm_head], dtype, rows)
        self.layers = []
        for layer in inner.layers:
            parts = {
                key: _Projection.build(
                    [getattr(getattr(layer, owner), n) for n in names], dtype, rows
                )
                for key, (owner, names) in _PARTS.items()
            }
            self.layers.append(
                _Layer(
                    layer.input_layernorm,
                    layer.post_attention_layernorm,
                    act=layer.mlp.act_fn,
                    **parts,
                )
            )
        attn = inner.layers[0].self_attn
        self.head_dim = attn.head_dim
        self.scaling = attn.scaling
        config = lm.config
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.intermediate = self.layers[0].gate_up.weight.shape[0] // 2
        self.new_tokens = new_tokens
        # Key/value buffers that grow BUFFER_STEP positions at a time, up to what the completion
        # can reach; attention runs over the whole buffer (a slice would make each matmul copy
        # it) with the unwritten positions masked (zeros, so a masked score times its value is
        # 0, not NaN). A 4096-token limit does not cost 4096 positions from the first step.
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.allowed = torch.zeros(0, 0, dtype=torch.bool)
        self.length = self.limit = 0
        self.next_position = torch.zeros(0, dtype=torch.long)

    def prefill(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        copies: int,
        prefix: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the left-padded prompts ``ids`` ``[U, W]`` (``mask`` 1 on real tokens) once and
        return the logits ``[U * copies, vocab]`` after each prompt, for its ``copies`` rows
        (adjacent); their keys and values become every row's start. ``prefix`` ``[P]``: tokens
        every prompt starts with, left out of ``ids``; they run once for all the prompts and
        lead every row's keys and values."""
        with torch.inference_mode(), torch.autocast(ids.device.type, enabled=False):
            past = [] if prefix is None or not len(prefix) else self._prefix(prefix)
            return self._prefill(ids, mask, copies, past)

    def _prefix(self, prefix: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's keys and values ``[1, kv_heads, P, head_dim]`` over the ``prefix``."""
        x = self.embed(prefix[None])
        cos, sin = self.rotary(x, torch.arange(len(prefix), device=prefix.device)[None])
        size = len(prefix)
        blocked = ~torch.ones(size, size, dtype=torch.bool, device=prefix.device).tril()
        past = []
        for layer in self.layers:
            x, key, value = self._layer(layer, x, cos[:, None], sin[:, None], blocked)
            past.append((key, value))
        return past

    def _prefill(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        copies: int,
        past: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        prompts, width = ids.shape
        start = past[0][0].shape[2] if past else 0  # positions the prefix took
        positions = start + (mask.cumsum(dim=1) - 1).clamp(min=0)
        # transformers' mask for a left-padded prefill: causal, padding keys never seen; the
        # prefix, before the padding, is seen by every query.
        causal = torch.ones(width, width, dtype=torch.bool, device=ids.device).tril()
        seen = causal[None] & mask.bool()[:, None, :]  # [U, W, W]
        seen = torch.cat([seen.new_ones(prompts, width, start), seen], dim=2)
        blocked = ~seen[:, None, None]  # [U, 1, 1, W, P + W]
        x = self.embed(ids)  # [U, W, hidden]
        cos, sin = self.rotary(x, positions)
        keys, values = [], []
        for i, layer in enumerate(self.layers):
            x, key, value = self._layer(
                layer, x, cos[:, None], sin[:, None], blocked, past=past[i] if past else None
            )
            keys.append(key)
            values.append(value)
        x = _rms_norm(self.final_norm, x[:, -1])  # left padding: every prompt ends last
        logits = self.head(x.to(self.dtype))
        rows = torch.arange(prompts, device=ids.device).repeat_interleave(copies)
        self.keys = [key.index_select(0, rows) for key in keys]
        self.values = [value.index_select(0, rows) for value in values]
        self.allowed = seen[:, -1].index_select(0, rows)  # the last query sees every real key
        self.length = start + width
        self.limit = self.length + self.new_tokens
        self.next_position = (start + mask.sum(dim=1)).index_select(0, rows)
        return logits.index_select(0, rows)

    def _layer(
        self,
        layer: _Layer,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        blocked: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor, int] | None = None,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoder layer over ``x`` ``[B, q, hidden]``: the new residual stream and the
        keys and values it attends over (``[B, kv_heads, positions, head_dim]``). ``cache``:
        key and value buffers to write the ``q == 1`` new position ``at`` into and attend
        over; None: attend over the ``q`` positions themselves (the prefill), after ``past``
        keys and values ``[1, kv_heads, P, head_dim]`` if given (a shared prefix)."""
        batch, q_len = x.shape[:2]
        half = self.head_dim // 2
        qk_heads = self.heads + self.kv_heads
        split = qk_heads * self.head_dim
        h = _rms_norm(layer.input_norm, x).to(self.dtype)
        qkv = layer.qkv(h)
        qk = qkv[..., :split].view(batch, q_len, qk_heads, self.head_dim).transpose(1, 2)
        value = qkv[..., split:].view(batch, q_len, self.kv_heads, self.head_dim).transpose(1, 2)
        # The model's apply_rotary_pos_emb on queries and keys at once.
        turned = torch.cat((-qk[..., half:], qk[..., :half]), dim=-1)
        qk = qk * cos + turned * sin  # [B, qk_heads, q, head_dim]
        if cache is None:
            keys, values = qk[:, self.heads :].to(self.dtype), value
            if past is not None:
                shape = (batch, -1, -1, -1)
                keys = torch.cat([past[0].expand(shape), keys], dim=2)
                values = torch.cat([past[1].expand(shape), values], dim=2)
        else:
            keys, values, at = cache
            keys[:, :, at] = qk[:, self.heads :, 0]
            values[:, :, at] = value[:, :, 0]
        # Query head h reads key/value head h // groups (repeat_kv's order).
        groups = self.heads // self.kv_heads
        query = (qk[:, : self.heads] * self.scaling).to(self.dtype)
        query = query.reshape(batch, self.kv_heads, groups * q_len, self.head_dim)
        scores = torch.matmul(query, keys.transpose(2, 3))
        scores = scores.view(batch, self.kv_heads, groups, q_len, -1)
        scores = scores.masked_fill(blocked, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(values.dtype)
        mixed = torch.matmul(probs.view(batch, self.kv_heads, groups * q_len, -1), values)
        mixed = mixed.view(batch, self.heads, q_len, self.head_dim).transpose(1, 2)
        x = x + layer.o(mixed.reshape(batch, q_len, self.heads * self.head_dim).to(self.dtype))
        h = _rms_norm(layer.post_attention_norm, x).to(self.dtype)
        gate_up = layer.gate_up(h)
        h = layer.act(gate_up[..., : self.intermediate]) * gate_up[..., self.intermediate :]
        return x + layer.down(h), keys, values

    def _grow(self) -> None:
        size = min(self.limit, self.allowed.shape[1] + BUFFER_STEP) - self.allowed.shape[1]

        def wider(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t, t.new_zeros(*t.shape[:2], size, *t.shape[3:])], dim=2)

        self.keys = [wider(k) for k in self.keys]
        self.values = [wider(v) for v in self.values]
        self.allowed = torch.cat([self.allowed, self.allowed.new_zeros(len(self.allowed), size)], 1)

    def keep(self, index: torch.Tensor) -> None:
        self.keys = [k.index_select(0, index) for k in self.keys]
        self.values = [v.index_select(0, index) for v in self.values]
        self.allowed = self.allowed.index_select(0, index)
        self.next_position = self.next_position.index_select(0, index)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``[rows, vocab]`` after feeding ``tokens`` (one per row)."""
        # Inference mode: no version counters or view tracking on ~1000 small ops (-4 % per
        # step). Autocast off: every cast below is explicit already.
        with torch.inference_mode(), torch.autocast(tokens.device.type, enabled=False):
            return self._step(tokens)

    def _step(self, tokens: torch.Tensor) -> torch.Tensor:
        at = self.length
        if at >= self.limit:
            raise RuntimeError("FusedDecoder: more tokens fed than it was built for")
        if at >= self.allowed.shape[1]:
            self._grow()
        self.allowed[:, at] = True
        blocked = ~self.allowed[:, None, None, None, :]  # [rows, 1, 1, 1, positions]
        x = self.embed(tokens[:, None])  # [rows, 1, hidden]
        cos, sin = self.rotary(x, self.next_position[:, None])
        cos, sin = cos[:, None], sin[:, None]  # [rows, 1, 1, head_dim]
        for i, layer in enumerate(self.layers):
            x, _, _ = self._layer(
                layer, x, cos, sin, blocked, cache=(self.keys[i], self.values[i], at)
            )
        self.length = at + 1
        self.next_position = self.next_position + 1
        x = _rms_norm(self.final_norm, x)
        return self.head(x[:, 0].to(self.dtype))
