"""Advantage estimators: pure functions from rewards to advantages.

GRPO's baseline is the mean reward of the group of G completions sampled for one prompt:

    A_i = (r_i - mean(r_group)) / (std + eps)

with ``std`` chosen by ``scale``:

- ``"group"`` (GRPO paper): the group's own standard deviation;
- ``"batch"``: one standard deviation over every reward in the batch (more stable when groups
  are small);
- ``"none"`` (Dr. GRPO): no division at all, ``A_i = r_i - mean``.

Standard deviations are sample standard deviations, with Bessel's correction (divide by n - 1),
and ``eps`` defaults to 1e-4. A group whose rewards are all equal (zero variance) carries no
signal: its advantages are exactly 0 under every scaling, and it is counted in ``zero_std``.

Masked samples (``valid`` False: the verifier had an infrastructure error) take no part in
the mean or the std and get advantage 0. A group needs at least two valid samples to have a
baseline: fewer makes it ``degenerate`` (all zero, counted), never a silent group of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

ScaleRewards = Literal["group", "batch", "none"]
STD_EPS = 1e-4


@dataclass
class Advantages:
    values: torch.Tensor  # [groups, G], 0 where masked, zero-variance or degenerate
    group_mean: torch.Tensor  # [groups]
    group_std: torch.Tensor  # [groups], Bessel-corrected, 0 for degenerate groups
    zero_std: torch.Tensor  # [groups] bool: every valid reward equal
    degenerate: torch.Tensor  # [groups] bool: fewer than two valid samples


def sample_std(values: torch.Tensor, valid: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Bessel-corrected standard deviation of the ``valid`` entries (0 when fewer than two)."""
    weight = valid.to(values.dtype)
    count = weight.sum() if dim is None else weight.sum(dim)
    total = (values * weight).sum() if dim is None else (values * weight).sum(dim)
    mean = total / count.clamp(min=1)
    centred = values - (mean if dim is None else mean.unsqueeze(dim))
    weighted = centred.square() * weight
    squares = weighted.sum() if dim is None else weighted.sum(dim)
    variance = squares / (count - 1).clamp(min=1)
    return torch.where(count >= 2, variance.sqrt(), torch.zeros_like(variance))


def group_advantages(
    rewards: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    scale: ScaleRewards = "group",
    eps: float = STD_EPS,
) -> Advantages:
    """Group-relative advantages of ``rewards`` ``[groups, G]`` (see the module docstring)."""
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [groups, G], got shape {tuple(rewards.shape)}")
    if rewards.shape[1] < 2:
        raise ValueError(
            f"groups of size {rewards.shape[1]}: a group-relative baseline needs G >= 2 "
            "samples per prompt"
        )
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    rewards = rewards.double()  # hand-checkable precision; tiny tensors
    valid = torch.ones_like(rewards, dtype=torch.bool) if valid is None else valid.bool()
    weight = valid.double()
    count = weight.sum(dim=1)
    mean = (rewards * weight).sum(dim=1) / count.clamp(min=1)
    std = sample_std(rewards, valid, dim=1)
    degenerate = count < 2
    big = torch.finfo(rewards.dtype).max
    high = torch.where(valid, rewards, torch.full_like(rewards, -big)).amax(dim=1)
    low = torch.where(valid, rewards, torch.full_like(rewards, big)).amin(dim=1)
    zero_std = (high == low) & ~degenerate

    centred = rewards - mean.unsqueeze(1)
    if scale == "group":
        values = centred / (std.unsqueeze(1) + eps)
    elif scale == "batch":
        usable = valid & ~degenerate.unsqueeze(1)
        values = centred / (sample_std(rewards, usable) + eps)
    else:
        values = centred
    # Exactly zero where there is no signal (float means of equal numbers can be off by 1 ulp).
    silent = (zero_std | degenerate).unsqueeze(1) | ~valid
    values = torch.where(silent, torch.zeros_like(values), values)
    return Advantages(
        values=values.float(),
        group_mean=mean.float(),
        group_std=std.float(),
        zero_std=zero_std,
        degenerate=degenerate,
    )
