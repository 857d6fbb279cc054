"""PPO's critic: a value model with the policy's architecture, its own weights, a scalar head.

As in standard RLHF PPO (Ziegler et al. 2019, Ouyang et al. 2022), the critic is a second copy
of the network: the transformer body of the policy's model, deep-copied (its own memory, never
shared with the policy), with the language-model head replaced by ``Linear(hidden, 1)``. With
no reward model to start from (the reward is a verifier), it starts from the policy's weights.

Under LoRA the copy keeps the policy's adapter layout: the critic is its own LoRA adapters on
its own frozen copy of the base weights, plus the value head; under full fine-tuning every
weight of the copy trains. The head starts at zero, so the first values are 0 and the first
advantages are plain reward-to-go; that keeps the global RNG untouched too (agents compared
with the same seed draw the same samples).

``values(batch)[b, t]`` is V(s_t), the value of the state just before completion token t:
the hidden state at the position that predicts token t, exactly where the policy's logits
for token t come from.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from grpo_env.policy.logprobs import TokenBatch, completion_outputs

WEIGHTS = "critic.safetensors"


def decoder_of(model: nn.Module) -> nn.Module:
    """The transformer body (no LM head) of a causal LM, or of a peft model wrapping one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if hasattr(base, "get_decoder"):
        decoder = base.get_decoder()
        if decoder is not None:
            return decoder
    prefix = getattr(base, "base_model_prefix", "model")
    if not hasattr(base, prefix):
        raise TypeError(f"cannot find the transformer body of {type(base).__name__}")
    return getattr(base, prefix)


@dataclass
class ValueOutput:
    logits: torch.Tensor  # [B, L, 1] values, named as a causal LM's output is


class ValueModel(nn.Module):
    """Transformer body + scalar value head (see the module docstring)."""

    def __init__(self, body: nn.Module, hidden_size: int):
        super().__init__()
        self.body = body
        # skip_init: a default Linear would draw its init from the global RNG and shift the
        # sampling stream of this run against the other agents'.
        self.head = torch.nn.utils.skip_init(nn.Linear, hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_policy_model(cls, model: nn.Module) -> ValueModel:
        """A critic built from a deep copy of ``model`` (its own weights, same architecture)."""
        # float32 master weights whatever the policy's base is stored in (a LoRA base may be
        # bf16): the critic trains every weight, and bf16 autocast still speeds its matmuls.
        body = copy.deepcopy(decoder_of(model)).float()
        critic = cls(body, int(body.config.hidden_size))
        # The head stays float32 whatever the body's dtype: values are regression targets.
        critic.head.to(device=next(body.parameters()).device, dtype=torch.float32)
        return critic

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        logits_to_keep: int | torch.Tensor = 0,
        use_cache: bool = False,
        **attention_kwargs: Any,
    ) -> ValueOutput:
        """A causal LM's call, values in place of logits (``[B, L, 1]``), so the packed
        forward of ``grpo_env.policy.logprobs`` (each prompt once per row) serves the critic
        too. ``logits_to_keep``: the last that many positions, or a tensor of positions;
        ``attention_kwargs`` (a packed row's attention groups) go on to the attention."""
        output = self.body(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            **attention_kwargs,
        )
        hidden = output.last_hidden_state
        if isinstance(logits_to_keep, torch.Tensor):
            hidden = hidden[:, logits_to_keep]
        elif logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        with torch.autocast(hidden.device.type, enabled=False):  # the head in float32
            values = self.head(hidden.float())
        return ValueOutput(logits=values)

    def values(self, batch: TokenBatch, *, share_prompts: bool | None = None) -> torch.Tensor:
        """Values ``[B, C]`` (float32) of the states before each completion token."""
        return completion_outputs(self, batch, share_prompts=share_prompts).squeeze(-1)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ----- persistence: only what trains (the base copy is rebuilt from the policy) ----------

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        state = {
            name: param.detach().cpu().contiguous()
            for name, param in self.named_parameters()
            if param.requires_grad
        }
        save_file(state, str(directory / WEIGHTS))

    def load(self, directory: Path) -> None:
        from safetensors.torch import load_file

        path = directory / WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: this checkpoint has no PPO critic")
        state = load_file(str(path))
        trainable = {n for n, p in self.named_parameters() if p.requires_grad}
        if set(state) != trainable:
            missing, extra = sorted(trainable - set(state)), sorted(set(state) - trainable)
            raise ValueError(
                f"{path} does not fit this critic (missing {missing[:3]}, unexpected {extra[:3]})"
            )
        self.load_state_dict(state, strict=False)
