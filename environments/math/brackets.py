"""Bracket depth, shared by the string-level parts of the checker.

Every kind of bracket counts the same: ``(``, ``[``, ``{`` and the escaped ``\\{`` of set
notation open; ``)``, ``]``, ``}`` close. Intervals mix them (``[1, 2)``), so matching is by
depth, not by kind.
"""

from __future__ import annotations

import re

OPENING = "([{"
CLOSING = ")]}"


def step(depth: int, char: str) -> int:
    if char in OPENING:
        return depth + 1
    if char in CLOSING:
        return max(0, depth - 1)
    return depth


def split_top_level(text: str, separator: re.Pattern[str]) -> list[str]:
    """Split at ``separator`` matches outside every bracket; parts are stripped."""
    parts: list[str] = []
    depth = 0
    start = 0
    position = 0
    for match in separator.finditer(text):
        for char in text[position : match.start()]:
            depth = step(depth, char)
        position = match.start()
        if depth == 0:
            parts.append(text[start : match.start()].strip())
            start = match.end()
    parts.append(text[start:].strip())
    return parts


def outside_brackets(text: str) -> str:
    """``text`` with everything inside brackets removed."""
    out = []
    depth = 0
    for char in text:
        new_depth = step(depth, char)
        if depth == 0 and new_depth == 0:
            out.append(char)
        depth = new_depth
    return "".join(out)


def closes_at_end(text: str) -> bool:
    """Whether the bracket opening ``text`` is closed by its last character."""
    depth = 0
    opened = False
    for i, char in enumerate(text):
        depth = step(depth, char)
        opened = opened or depth > 0
        if opened and depth == 0:
            return i == len(text) - 1
    return False
