"""Advantage estimators: pure functions from rewards to advantages.

GRPO's group-relative advantages first; after them, the baselines' estimators (RLOO's
leave-one-out baseline, REINFORCE++'s token returns and global normalisation, PPO's GAE, DAPO's
overlong penalty), each with its equation in its docstring.

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


# ----- process supervision (DeepSeekMath, section 4.1.3) -------------------------------------


def process_advantages(
    steps: list[list[tuple[int, float]]],
    lengths: list[int],
    valid: list[bool] | None = None,
    *,
    eps: float = STD_EPS,
) -> list[torch.Tensor]:
    """GRPO with process supervision, for one group: each sample's steps have their own reward.

    ``steps[i]`` holds sample i's ``(end, reward)`` pairs (a step covers the tokens before
    ``end``); every step reward of the group's valid samples is normalised by the mean and
    (Bessel) std of all of them, ``r~ = (r - mean) / (std + eps)``, and a token's advantage is
    the sum of the normalised rewards of the steps that end at or after it:

        A_{i,t} = sum over steps j of sample i with end_j > t of r~_j

    Returns one ``[lengths[i]]`` tensor per sample; masked samples (``valid`` False), samples
    without steps and groups whose step rewards are all equal (or fewer than two) get zeros.
    """
    valid = [True] * len(steps) if valid is None else list(valid)
    pooled = [r for ok, s in zip(valid, steps, strict=True) if ok for _, r in s]
    values = torch.tensor(pooled, dtype=torch.float64)
    signal = len(pooled) >= 2 and bool(values.max() != values.min())
    mean = values.mean() if signal else torch.tensor(0.0, dtype=torch.float64)
    std = sample_std(values, torch.ones_like(values, dtype=torch.bool)) if signal else mean
    out = []
    for ok, sample, length in zip(valid, steps, lengths, strict=True):
        adv = torch.zeros(length, dtype=torch.float64)
        if ok and signal:
            for end, reward in sample:
                adv[: min(end, length)] += (reward - mean) / (std + eps)
        out.append(adv.float())
    return out


# ----- the baselines' estimators ------------------------------------------------------------


def _valid_or_all(rewards: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    return torch.ones_like(rewards, dtype=torch.bool) if valid is None else valid.bool()


def leave_one_out_advantages(
    rewards: torch.Tensor, valid: torch.Tensor | None = None
) -> Advantages:
    """RLOO (Kool et al. 2019; Ahmadian et al. 2024): each sample's baseline is the mean reward
    of the *other* valid samples of its group, ``[groups, G]`` in and out:

        A_i = r_i - 1/(n-1) * sum_{j != i} r_j  =  n/(n-1) * (r_i - mean(r))

    with ``n`` the group's valid samples. Masked samples get 0 and take no part; groups with
    fewer than two valid samples are ``degenerate`` (all 0), as in ``group_advantages``.
    """
    base = group_advantages(rewards, valid, scale="none")
    valid = _valid_or_all(rewards, valid)
    count = valid.double().sum(dim=1, keepdim=True)
    # (r_i - mean) is already exact zero where masked, zero-variance or degenerate.
    values = base.values.double() * count / (count - 1).clamp(min=1)
    return Advantages(
        values=values.float(),
        group_mean=base.group_mean,
        group_std=base.group_std,
        zero_std=base.zero_std,
        degenerate=base.degenerate,
    )


def token_rewards(
    scores: torch.Tensor, kl: torch.Tensor | None, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """Per-token rewards ``[B, C]`` of RLHF-style PPO and REINFORCE++:

        r_t = -beta * KL_t  +  [t == T] * score

    ``KL_t`` is a per-token estimate of the divergence from the reference (k1:
    ``log pi_old - log pi_ref``); the verifier's ``score`` ``[B]`` arrives at the last
    completion token ``T`` (the last position of ``mask``).
    """
    mask = mask.to(scores.dtype)
    lengths = mask.sum(dim=1).long()
    if (lengths < 1).any():
        raise ValueError("every completion needs at least one token")
    rewards = torch.zeros_like(mask)
    if kl is not None and beta:
        rewards = rewards - beta * kl.to(scores.dtype) * mask
    rows = torch.arange(mask.shape[0], device=mask.device)
    rewards[rows, lengths - 1] += scores
    return rewards


def pack_model_tokens(
    values: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's masked-in entries (the model's tokens) to the front, in order:
    ``[B, C]`` -> ``([B, C], packed mask)``. Multi-turn sequences interleave env tokens, which
    are not actions: token-level estimators (GAE, returns) run on the packed model tokens and
    ``unpack_model_tokens`` puts the results back. A single-turn mask (a prefix) packs to
    itself."""
    keep = mask.bool()
    rows, cols = keep.nonzero(as_tuple=True)
    slots = (keep.long().cumsum(dim=1) - 1)[rows, cols]
    packed = torch.zeros_like(values)
    packed[rows, slots] = values[rows, cols]
    counts = keep.sum(dim=1)
    packed_mask = torch.arange(mask.shape[1], device=mask.device)[None, :] < counts[:, None]
    return packed, packed_mask.to(mask.dtype)


def unpack_model_tokens(packed: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The inverse of ``pack_model_tokens``: packed entries back at the model's tokens, 0 on
    env tokens and padding."""
    keep = mask.bool()
    rows, cols = keep.nonzero(as_tuple=True)
    slots = (keep.long().cumsum(dim=1) - 1)[rows, cols]
    out = torch.zeros_like(packed)
    out[rows, cols] = packed[rows, slots]
    return out


def discounted_returns(
    rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    """Reward-to-go ``G_t = sum_{s >= t} gamma^(s-t) r_s`` per token ``[B, C]`` (REINFORCE++);
    0 after each completion's end."""
    mask = mask.to(rewards.dtype)
    rewards = rewards * mask
    returns = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        running = rewards[:, t] + gamma * running
        returns[:, t] = running
    return returns * mask


def whiten(
    values: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True, eps: float = STD_EPS
) -> torch.Tensor:
    """Global (batch) normalisation over every masked-in entry (REINFORCE++, PPO):

        A' = (A - mean_batch(A)) / (std_batch(A) + eps)

    with the Bessel-corrected std, as in ``group_advantages``. ``shift_mean=False`` only
    divides. Entries outside ``mask`` are 0. Fewer than two entries: returned unscaled.
    """
    keep = mask.bool()
    data = values.double()
    count = int(keep.sum())
    if count < 2:
        return torch.where(keep, data, torch.zeros_like(data)).to(values.dtype)
    mean = data[keep].mean()
    std = sample_std(data, keep)
    centred = data - mean if shift_mean else data
    out = centred / (std + eps)
    return torch.where(keep, out, torch.zeros_like(out)).to(values.dtype)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) per token, ``[B, C]``:

        delta_t = r_t + gamma * V_{t+1} - V_t        (V after the last token = 0: terminal)
        A_t     = sum_l (gamma * lam)^l * delta_{t+l}
        R_t     = A_t + V_t                          (the critic's regression target)

    A completion cut at ``max_new_tokens`` is still terminal: the verifier scored it as it is.
    Returns ``(advantages, returns)``, 0 after each completion's end.
    """
    mask = mask.to(rewards.dtype)
    rewards = rewards * mask
    values = values.to(rewards.dtype) * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    width = rewards.shape[1]
    for t in reversed(range(width)):
        next_value = values[:, t + 1] if t + 1 < width else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def overlong_penalty(
    lengths: torch.Tensor, max_tokens: int, buffer: int, factor: float = 1.0
) -> torch.Tensor:
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), added to the reward:

        0                                      if |y| <= L_max - L_cache
        ((L_max - L_cache) - |y|) / L_cache    if L_max - L_cache < |y| <= L_max
        -1                                     if |y| > L_max

    scaled by ``factor``; ``L_max`` is ``max_tokens`` and ``L_cache`` the ``buffer``.
    """
    if not 0 < buffer <= max_tokens:
        raise ValueError(f"overlong buffer must be in 1..max_tokens={max_tokens}, got {buffer}")
    start = max_tokens - buffer
    over = (lengths.double() - start).clamp(min=0)
    return -factor * (over / buffer).clamp(max=1.0)


def rejection_mask(
    rewards: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    keep: Literal["threshold", "best"] = "threshold",
    threshold: float = 1.0,
) -> torch.Tensor:
    """Which samples rejection-sampling fine-tuning keeps, ``[groups, G]`` bool: the gradient
    coefficient ``GC = I(o)`` of DeepSeekMath's unified paradigm (sec. 5.2.1).

    - ``threshold``: ``r_i >= threshold`` (DeepSeekMath's RFT: 1 if the answer is correct);
    - ``best``: the samples tied for the group's best valid reward, and only if that reward
      is ``>= threshold`` too (a group that all failed keeps nothing).

    Masked samples (``valid`` False: infra errors) are never kept and never the best.
    """
    valid = _valid_or_all(rewards, valid)
    above = (rewards >= threshold) & valid
    if keep == "threshold":
        return above
    if keep != "best":
        raise ValueError(f"keep must be 'threshold' or 'best', got {keep!r}")
    lowest = torch.full_like(rewards, -torch.finfo(rewards.dtype).max)
    best = torch.where(valid, rewards, lowest).amax(dim=1, keepdim=True)
    return above & (rewards == best)


def greedy_baseline_advantages(rewards: torch.Tensor, greedy_rewards: torch.Tensor) -> torch.Tensor:
    """ReMax (Li et al. 2023): the baseline of every sample of a prompt is the reward of the
    greedy completion of that prompt, ``A_i = r_i - r(greedy)``; ``[groups, G]`` and
    ``[groups]`` in, ``[groups, G]`` out."""
    return rewards - greedy_rewards.unsqueeze(1)
