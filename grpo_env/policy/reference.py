"""The reference policy of the KL penalty: the initial weights, frozen.

Under LoRA it is the policy itself with its adapters disabled (no second copy in memory);
under full fine-tuning it is a frozen copy taken before the first update (on resume, the
copy is taken before the checkpoint's weights are loaded, so it is still the initial model).
On CPU under bf16 the copy's linear weights are prepacked for oneDNN at its first use
(``grpo_env.policy.prepacked``: the same logprobs, faster matmuls), unless it was sharded.
An agent whose KL weight is 0 builds none (``make_reference`` returns None) and pays nothing.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from grpo_env.policy.logprobs import TokenBatch, token_logprobs
from grpo_env.policy.models import Policy
from grpo_env.policy.packing import ROW_TOKENS
from grpo_env.policy.prepacked import prepack_linears


class Reference:
    """Logprobs of completions under the reference policy (never with gradients)."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.frozen: nn.Module | None = None
        # False when sharded (FSDP2): one forward per batch, the same count on every rank.
        self.share_prompts: bool | None = None
        self.prepacked = False
        if not policy.lora:
            self.frozen = copy.deepcopy(policy.model)
            self.frozen.requires_grad_(False)
            self.frozen.eval()
            if policy.precision.autocast is not None:
                store_linear_weights_in(self.frozen, policy.precision.autocast)

    @torch.no_grad()
    def logprobs(self, batch: TokenBatch, temperature: float) -> torch.Tensor:
        with self.policy.autocast():
            if self.frozen is not None:
                if not self.prepacked and self.share_prompts is None:
                    # At the first use, not at construction: by then a sharded copy says so
                    # (share_prompts False), and FSDP2 needs its plain Linear layers.
                    prepack_linears(self.frozen, ROW_TOKENS)
                    self.prepacked = True
                return token_logprobs(
                    self.frozen, batch, temperature, share_prompts=self.share_prompts
                )[0]
            with self.policy.adapters_disabled():
                return token_logprobs(
                    self.policy.model, batch, temperature, share_prompts=self.share_prompts
                )[0]


def store_linear_weights_in(model: nn.Module, dtype: torch.dtype) -> None:
    """Keep a frozen model's linear weights in the autocast dtype: autocast would cast them to
    it at every forward anyway, so the logprobs are the same and the copy takes half the
    memory. Embeddings and norms stay float32 (they run outside autocast's matmuls); a linear
    layer tied to the embedding gets its own copy, so the embedding keeps its precision."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.weight = nn.Parameter(module.weight.detach().to(dtype), requires_grad=False)
            if module.bias is not None:
                module.bias = nn.Parameter(module.bias.detach().to(dtype), requires_grad=False)


def make_reference(policy: Policy, kl_weight: float) -> Reference | None:
    return Reference(policy) if kl_weight > 0 else None
