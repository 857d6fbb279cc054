"""Where a completion ends, and which tokens the loss sees.

A completion runs up to and including its first EOS token, for every EOS id the model has.
Everything after it is padding, whatever its id: the mask is never derived from
``token != pad``, which breaks when pad == eos (the EOS itself would be masked out, and a
model that never learns to emit EOS never stops).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


def completion_length(token_ids: Sequence[int], eos_ids: Iterable[int]) -> tuple[int, bool]:
    """Length up to and including the first EOS, and whether an EOS was found."""
    eos = set(eos_ids)
    for i, token in enumerate(token_ids):
        if token in eos:
            return i + 1, True
    return len(token_ids), False


def trim_completion(token_ids: Sequence[int], eos_ids: Iterable[int]) -> tuple[list[int], bool]:
    """The completion's own tokens (first EOS kept), and ``truncated`` (no EOS at all)."""
    length, ended = completion_length(token_ids, eos_ids)
    return list(token_ids[:length]), not ended


def completion_mask(token_ids: torch.Tensor, eos_ids: Iterable[int]) -> torch.Tensor:
    """Mask (1 = in the completion) for a batch of raw generated rows ``[batch, length]``.

    Ones up to and including each row's first EOS (any of ``eos_ids``), zeros after it.
    """
    eos = torch.tensor(sorted(set(eos_ids)), device=token_ids.device)
    is_eos = torch.isin(token_ids, eos)
    # Number of EOS tokens strictly before each position: 0 means still inside the completion.
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    return (before == 0).long()


def lengths_to_mask(lengths: Sequence[int], width: int) -> torch.Tensor:
    """Right-padded mask ``[len(lengths), width]`` from per-row lengths."""
    positions = torch.arange(width)
    return (positions[None, :] < torch.tensor(list(lengths))[:, None]).long()
