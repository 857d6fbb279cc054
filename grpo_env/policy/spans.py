"""Character spans of a completion's text -> token positions of its sampled ids.

An env scores spans of a completion by character offsets in its text (process supervision's
steps); the loss needs them in tokens. The text is the decode of the sampled ids (what the
generator returns), so a step's token end is the first prefix of the ids whose decode already
holds the step's characters: ``decode(ids[:k])`` agrees with the text on its first ``end``
characters. A character split over several tokens (UTF-8 bytes of byte-level BPE) decodes to a
replacement character until its last byte arrives, which never matches, so the step ends at
the token that completes it; a token that spans the boundary ("7 +" for a step ending after
"7") ends the step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Decode = Callable[[Sequence[int]], str]


def matched_chars(prefix: str, text: str) -> int:
    """How many leading characters ``prefix`` and ``text`` share."""
    count = 0
    for a, b in zip(prefix, text, strict=False):
        if a != b:
            break
        count += 1
    return count


def token_ends(token_ids: Sequence[int], char_ends: Sequence[int], decode: Decode) -> list[int]:
    """The token end (exclusive) of each character end, in the order given.

    ``decode`` turns ids into text as the generator did (``Policy.decode``); the text is
    ``decode(token_ids)``. An end at or past the text's end is the whole completion
    (``len(token_ids)``: the final step covers the EOS token too); an end of 0 covers no token.
    Decoding more tokens only appends text (an incomplete trailing character matches nothing),
    so the matched length grows with k and a bisection finds each end in O(log n) decodes.
    """
    ids = list(token_ids)
    text = decode(ids)
    cache: dict[int, int] = {len(ids): len(text), 0: 0}

    def matched(k: int) -> int:
        if k not in cache:
            cache[k] = matched_chars(decode(ids[:k]), text)
        return cache[k]

    out = []
    for end in char_ends:
        if end <= 0:
            out.append(0)
            continue
        if end >= len(text):
            out.append(len(ids))
            continue
        low, high = 0, len(ids)  # matched(low) < end <= matched(high)
        while high - low > 1:
            middle = (low + high) // 2
            if matched(middle) >= end:
                high = middle
            else:
                low = middle
        out.append(high)
    return out
