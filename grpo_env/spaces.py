"""Gymnasium spaces for language: any unicode text, and chat transcripts.

Gymnasium's ``Text`` space defaults to an alphanumeric charset, so a completion with a space,
a newline or a ``\\boxed{}`` would be "outside the action space". These spaces accept any
string; sampling draws from a mixed charset (ASCII, whitespace, LaTeX, non-Latin, emoji) so
that env checkers exercise verifiers with awkward text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gymnasium.spaces import Space, Text

from grpo_env.types import Message

_SAMPLE_CHARSET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    " \n\t.,;:!?'\"()[]{}<>/\\|+-*=^_#$%&@~`"
    "éüßñçøλπΣ∫√∞≤≥中文日本語한국어🙂"
)
ROLES: tuple[str, ...] = tuple(Message.model_fields["role"].annotation.__args__)  # type: ignore[union-attr]


class UnicodeText(Text):
    """Any Python ``str`` up to ``max_length`` characters (no charset restriction)."""

    def __init__(self, max_length: int = 100_000, *, min_length: int = 0, seed: Any = None):
        super().__init__(
            max_length=max_length, min_length=min_length, charset=_SAMPLE_CHARSET, seed=seed
        )

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, UnicodeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )


class ChatSpace(Space[list[dict[str, str]]]):
    """A chat transcript: a list of ``{"role": ..., "content": ...}`` dicts."""

    def __init__(self, max_messages: int = 64, max_length: int = 100_000, seed: Any = None):
        super().__init__(shape=None, dtype=None, seed=seed)
        self.max_messages = max_messages
        self.content = UnicodeText(max_length)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def seed(self, seed: int | None = None) -> int | list[int] | dict[str, int]:  # type: ignore[override]
        seeds = super().seed(seed)
        self.content.seed(int(self.np_random.integers(2**31)))
        return seeds

    def sample(self, mask: Any = None, probability: Any = None) -> list[dict[str, str]]:
        # A user turn, then alternating assistant/user turns, like a real transcript.
        n = int(self.np_random.integers(1, min(4, self.max_messages) + 1))
        return [
            {"role": ("user", "assistant")[i % 2], "content": self.content.sample()}
            for i in range(n)
        ]

    def contains(self, x: Any) -> bool:
        if not isinstance(x, Sequence) or isinstance(x, str) or not 0 < len(x) <= self.max_messages:
            return False
        return all(
            isinstance(m, dict)
            and set(m) == {"role", "content"}
            and m["role"] in ROLES
            and self.content.contains(m["content"])
            for m in x
        )

    def __repr__(self) -> str:
        return f"ChatSpace(max_messages={self.max_messages})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatSpace) and other.max_messages == self.max_messages

    def to_jsonable(self, sample_n: Sequence[list[dict[str, str]]]) -> list[Any]:
        return [list(map(dict, s)) for s in sample_n]

    def from_jsonable(self, sample_n: list[Any]) -> list[list[dict[str, str]]]:
        return [list(map(dict, s)) for s in sample_n]
