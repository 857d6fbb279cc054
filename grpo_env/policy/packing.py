"""Packed rows for the training forward pass: each distinct prompt once, its completions after
it, no padding.

A GRPO micro-batch is G completions of one prompt, of lengths that vary from a few tokens to
``max_new_tokens``. Right-padding them to the longest spends the forward, the backward and
the vocabulary-sized head on padding (half the positions of a typical chain-sum group). Here
a row holds ``[prompt | completion 1 | completion 2 | ...]``; a mask lets each completion see
its prompt and its own earlier tokens, nothing else, and position ids restart after the
prompt for each completion, so every token sees exactly what it saw when it was sampled.

Only the positions that predict a completion token are kept for the head: the prompt's last
position (the first token of every completion of that prompt) and each completion token but
its last (which predicts nothing, so it is not even fed). Rows are filled up to
``ROW_TOKENS`` positions (a completion longer than that gets a row of its own): the mask's
cost grows with the square of a row's length, so rows stay short enough for it to be small
beside the matmuls.

Most of that square is masked: a completion sees its prompt and itself, not its neighbours.
A row's ``groups`` (``QueryGroup``) split its queries into runs of consecutive completions
(up to ``GROUP_QUERIES`` positions, a prompt with the first of its completions) with the keys
each run may see; ``grpo_env.policy.attention`` computes a packed row group by group. On a
349-position chain-sum row that is 3 groups and 44 % of the score entries; one bf16
forward+backward of SmolLM2 over that row takes 0.66-0.70 s instead of 0.72 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from grpo_env.policy.logprobs import TokenBatch

# Positions per packed row: 512 x 512 mask entries per head, the short-eager attention's limit.
ROW_TOKENS = 512
# Query positions per attention group (``QueryGroup``): a completion sees its prompt and itself,
# so a row's attention runs as groups of consecutive completions, each against its prompt and
# its own keys only, instead of every query against every key.
GROUP_QUERIES = 128


@dataclass(frozen=True)
class QueryGroup:
    """Consecutive query positions of a packed row and the key positions they may see (the
    prompt's and their own), with the mask ``[1, 1, queries, keys]`` over those."""

    queries: slice
    keys: tuple[slice, ...]
    allowed: torch.Tensor


@dataclass
class PackedRow:
    """One forward pass's input: ``[1, N]`` tokens and positions, a ``[1, 1, N, N]`` mask
    (True = may attend), and the ``T`` kept positions with the token each one predicts
    (``targets``: flat indices ``b * C + j`` into the batch's ``[B, C]`` completion ids)."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    allowed: torch.Tensor
    keep: torch.Tensor
    targets: torch.Tensor
    groups: tuple[QueryGroup, ...] = ()


class _RowBuilder:
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.positions: list[int] = []
        self.block: list[int] = []  # the block (a prompt or a completion) of each position
        self.prompt_block: list[int] = []  # the prompt block that position also sees
        self.keep: list[int] = []
        self.targets: list[int] = []
        self.prompt: int | None = None  # the distinct prompt of the open segment
        self.prompt_end = 0  # its last position
        self.prompt_length = 0
        self.open_prompt_block = 0  # its block
        self.blocks = 0
        self.spans: list[tuple[int, int, bool]] = []  # (start, end, is a prompt) of each block

    def __len__(self) -> int:
        return len(self.ids)

    def add_prompt(self, prompt: int, ids: list[int]) -> None:
        self.prompt, self.prompt_length = prompt, len(ids)
        self.open_prompt_block = self.blocks
        self._add(ids, range(len(ids)), prompt=True)
        self.prompt_end = len(self.ids) - 1

    def add_completion(self, ids: list[int], first_target: int) -> None:
        """``ids``: the completion's tokens; all but the last are fed."""
        start = len(self.ids)
        self._add(ids[:-1], range(self.prompt_length, self.prompt_length + len(ids) - 1))
        self.keep += [self.prompt_end, *range(start, len(self.ids))]
        self.targets += range(first_target, first_target + len(ids))

    def _add(self, ids: list[int], positions: range, prompt: bool = False) -> None:
        self.spans.append((len(self.ids), len(self.ids) + len(ids), prompt))
        self.ids += ids
        self.positions += positions
        self.block += [self.blocks] * len(ids)
        self.prompt_block += [self.open_prompt_block] * len(ids)
        self.blocks += 1

    def build(self, device: torch.device) -> PackedRow:
        block = torch.tensor(self.block, device=device)
        prompt_block = torch.tensor(self.prompt_block, device=device)
        order = torch.arange(len(self.ids), device=device)
        # Query i sees key j <= i of its own block, or of the prompt its completion follows.
        seen = (block[None, :] == block[:, None]) | (block[None, :] == prompt_block[:, None])
        allowed = seen & (order[None, :] <= order[:, None])
        return PackedRow(
            input_ids=torch.tensor([self.ids], device=device),
            position_ids=torch.tensor([self.positions], device=device),
            allowed=allowed[None, None],
            keep=torch.tensor(self.keep, device=device),
            targets=torch.tensor(self.targets, device=device),
            groups=self._groups(allowed),
        )

    def _groups(self, allowed: torch.Tensor) -> tuple[QueryGroup, ...]:
        """Each prompt with the completions after it up to ``GROUP_QUERIES`` positions (keys:
        the same positions), then groups of the following completions (keys: the prompt's
        positions and the group's own). A completion is never split."""
        groups: list[tuple[int, int, int, int]] = []  # (start, end, prompt start, prompt end)
        for start, end, prompt in self.spans:
            if end == start:
                continue
            if prompt:
                groups.append((start, end, start, end))
                continue
            first, _, p_start, p_end = groups[-1]
            if end - first <= GROUP_QUERIES:
                groups[-1] = (first, end, p_start, p_end)
            else:
                groups.append((start, end, p_start, p_end))
        out = []
        for start, end, p_start, p_end in groups:
            queries = slice(start, end)
            if start == p_start:  # the prompt's own group: its keys are its queries
                keys: tuple[slice, ...] = (queries,)
                mask = allowed[queries, queries]
            else:
                keys = (slice(p_start, p_end), queries)
                mask = torch.cat([allowed[queries, p_start:p_end], allowed[queries, queries]], 1)
            out.append(QueryGroup(queries, keys, mask[None, None]))
        return tuple(out)


def pack_rows(batch: TokenBatch, row_tokens: int | None = None) -> list[PackedRow]:
    """The batch's prompts and completions in rows of at most ``row_tokens`` positions (or one
    prompt and one completion, when those alone are longer), completions in batch order."""
    row_tokens = row_tokens or ROW_TOKENS
    device = batch.completion_ids.device
    width = batch.completion_ids.shape[1]
    prompt_lengths = batch.prompt_mask.sum(dim=1).tolist()
    prompt_rows = batch.prompt_ids.tolist()
    prompts = [row[len(row) - n :] for row, n in zip(prompt_rows, prompt_lengths, strict=True)]
    lengths = batch.completion_mask.sum(dim=1).long().tolist()
    rows: list[PackedRow] = []
    row = _RowBuilder()
    for b, (prompt, completion) in enumerate(
        zip(batch.prompt_index.tolist(), batch.completion_ids.tolist(), strict=True)
    ):
        fed = lengths[b] - 1
        same_prompt = row.prompt == prompt
        if len(row) + fed + (0 if same_prompt else len(prompts[prompt])) > row_tokens and len(row):
            rows.append(row.build(device))
            row, same_prompt = _RowBuilder(), False
        if not same_prompt:
            row.add_prompt(prompt, prompts[prompt])
        row.add_completion(completion[: lengths[b]], b * width)
    rows.append(row.build(device))
    return rows
