"""Per-token logprobs of completions under a model: the one place every agent gets them.

Sequences are packed as ``[left-padded prompt | right-padded completion]`` so that every
completion starts in the same column; explicit position ids make the left padding invisible
to the model (as in generation). The model is run on all but the last token and asked for
the last ``C`` positions only (``logits_to_keep``), so prompt positions never produce
``vocab``-sized logits.

Logits are divided by the sampling temperature before the softmax (the distribution the
tokens were actually drawn from), and computed in float32 whatever the weights' dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import nn

from grpo_env.masking import lengths_to_mask


@dataclass
class TokenBatch:
    """Prompt + completion token ids, ready for a forward pass."""

    input_ids: torch.Tensor  # [B, P + C]
    attention_mask: torch.Tensor  # [B, P + C]
    position_ids: torch.Tensor  # [B, P + C]
    completion_ids: torch.Tensor  # [B, C]
    completion_mask: torch.Tensor  # [B, C], float: 1 for the completion's own tokens

    @property
    def prompt_width(self) -> int:
        return self.input_ids.shape[1] - self.completion_ids.shape[1]

    def to(self, device: torch.device) -> TokenBatch:
        return TokenBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def pack_sequences(
    prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int
) -> TokenBatch:
    """Pack (prompt ids, completion ids) pairs; the mask comes from lengths, not from pad."""
    if len(prompts) != len(completions) or not prompts:
        raise ValueError(f"got {len(prompts)} prompts for {len(completions)} completions")
    if any(not c for c in completions):
        raise ValueError("a completion has no tokens (it needs at least its EOS)")
    rows = len(prompts)
    prompt_width = max(len(p) for p in prompts)
    width = max(len(c) for c in completions)
    input_ids = torch.full((rows, prompt_width + width), pad_id, dtype=torch.long)
    attention = torch.zeros((rows, prompt_width + width), dtype=torch.long)
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        start = prompt_width - len(prompt)
        input_ids[i, start:prompt_width] = torch.tensor(list(prompt))
        input_ids[i, prompt_width : prompt_width + len(completion)] = torch.tensor(list(completion))
        attention[i, start : prompt_width + len(completion)] = 1
    position_ids = (attention.cumsum(dim=1) - 1).clamp(min=0)
    mask = lengths_to_mask([len(c) for c in completions], width).float()
    return TokenBatch(
        input_ids=input_ids,
        attention_mask=attention,
        position_ids=position_ids,
        completion_ids=input_ids[:, prompt_width:].clone(),
        completion_mask=mask,
    )


def completion_logits(model: nn.Module, batch: TokenBatch) -> torch.Tensor:
    """Logits ``[B, C, V]`` predicting each completion token (float32)."""
    width = batch.completion_ids.shape[1]
    output = model(
        input_ids=batch.input_ids[:, :-1],
        attention_mask=batch.attention_mask[:, :-1],
        position_ids=batch.position_ids[:, :-1],
        logits_to_keep=width,
        use_cache=False,
    )
    return output.logits.float()


def token_logprobs(
    model: nn.Module, batch: TokenBatch, temperature: float, *, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logprob ``[B, C]`` of each completion token at ``temperature``, and optionally the
    policy's entropy at each position (no gradient: a metric)."""
    logits = completion_logits(model, batch)
    if temperature != 1.0:
        # In place: the lm_head's backward does not need its output, and a copy of a
        # batch x length x vocab tensor is the biggest allocation of the step.
        logits = logits.div_(temperature)
    logp = gather_logprobs(logits, batch.completion_ids)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = entropy_from_logits(logits.detach())
    return logp, entropy


def gather_logprobs(logits: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)[token]`` without materialising the full log-softmax."""
    picked = logits.gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits: torch.Tensor, chunk: int = 2) -> torch.Tensor:
    """Entropy of ``softmax(logits)`` over the last dim, a few rows at a time (memory)."""
    parts = []
    for rows in logits.split(chunk, dim=0):
        logp = torch.log_softmax(rows, dim=-1)
        parts.append(-(logp.exp() * logp).sum(dim=-1))
    return torch.cat(parts, dim=0)
