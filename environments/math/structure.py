"""The outer shape of an answer: a set, a bracketed tuple or interval, a bare list, a union of
intervals, a ratio, or a single value (pure string work).

Graders that hand the whole answer to sympy inherit its readings: ``(3, -1)`` becomes an
empty interval, ``1:2`` becomes ``1/2``, ``12:00`` becomes ``zoo``. Splitting the shape first
keeps bracket types (``[1, 2)`` is not ``(1, 2)``), order (tuples) and multiplicity (sets)
under our control; only the single values inside go to the equivalence checker.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from grpo_env.environments.math.brackets import closes_at_end, split_top_level
from grpo_env.environments.math.numbers import parse_plain_number

Kind = Literal["leaf", "set", "list", "bracket", "union", "ratio", "plusminus"]

_UNION = re.compile(r"\\cup(?![A-Za-z])")
_COMMA = re.compile(r",|;")
_LIST = re.compile(r",|;|\s+and\s+|\\text\{\s*and\s*\}")
_AND = re.compile(r"\s+and\s+|\\text\{\s*and\s*\}")
_RATIO = re.compile(r":")
_PLUS_MINUS = re.compile(r"\\pm(?![A-Za-z])")
_INEQUALITY = re.compile(r"[<>≤≥]|\\(?:le|ge|leq|geq|lt|gt|leqslant|geqslant)(?![A-Za-z])")
MAX_MATCHED_ITEMS = 12


@dataclass(frozen=True)
class Node:
    kind: Kind
    text: str
    items: tuple[Node, ...] = ()
    opening: str = ""
    closing: str = ""

    @property
    def is_collection(self) -> bool:
        return self.kind in ("set", "list", "plusminus")


def parse_structure(text: str) -> Node:
    text = text.strip()
    parts = split_top_level(text, _UNION)
    if len(parts) > 1 and all(parts):
        return Node("union", text, tuple(parse_structure(p) for p in parts))

    if text.startswith("\\{") and closes_at_end(text):
        return Node("set", text, _items(text[2:-2], _COMMA))
    if text.startswith("{") and closes_at_end(text):
        inner_items = split_top_level(text[1:-1], _COMMA)
        if len(inner_items) > 1:
            return Node("set", text, _items(text[1:-1], _COMMA))
        return parse_structure(text[1:-1])
    if text[:1] in "([" and text[-1:] in ")]" and closes_at_end(text):
        inner = text[1:-1]
        items = split_top_level(inner, _COMMA)
        if len(items) == 1:
            return parse_structure(inner)  # (5) is 5, (A) is A
        return Node("bracket", text, _items(inner, _COMMA), text[0], text[-1])

    conjuncts = split_top_level(text, _AND)
    if len(conjuncts) > 1 and all(
        _INEQUALITY.search(p) and len(split_top_level(p, _COMMA)) == 1 for p in conjuncts
    ):
        # "x > -1 and x < 3" is one set, the intersection (written so unit-stripping keeps
        # the "and"; ``symbolic`` reads \land).
        return Node("leaf", " \\land ".join(conjuncts))
    items = split_top_level(text, _LIST)
    if len(items) > 1 and all(p.strip() for p in items):
        return Node("list", text, _flatten(parse_structure(p) for p in items))
    parts = split_top_level(text, _RATIO)
    if len(parts) > 1 and all(parse_plain_number(p) is not None for p in parts):
        return Node("ratio", text, tuple(Node("leaf", p.strip()) for p in parts))
    parts = split_top_level(text, _PLUS_MINUS)
    if len(parts) == 2 and parts[1]:
        # "1 \pm \sqrt{19}" is the pair of values 1 + \sqrt{19} and 1 - \sqrt{19}.
        left, right = parts
        pair = (Node("leaf", f"{left}+{right}"), Node("leaf", f"{left}-{right}"))
        return Node("plusminus", text, pair)
    return Node("leaf", text)


def _items(inner: str, separator: re.Pattern[str]) -> tuple[Node, ...]:
    parts = split_top_level(inner, separator)
    if len(parts) == 1 and not parts[0].strip():
        return ()
    return _flatten(parse_structure(p) for p in parts)


def _flatten(nodes: Iterable[Node]) -> tuple[Node, ...]:
    # {1 \pm \sqrt{5}, -2} has three elements.
    flat: list[Node] = []
    for node in nodes:
        flat.extend(node.items if node.kind == "plusminus" else (node,))
    return tuple(flat)


LeafEqual = Callable[[str, str], bool]


def compare_nodes(gold: Node, answer: Node, leaf_equal: LeafEqual) -> bool | None:
    """Compare two shapes item by item; None when the shapes do not correspond (the caller
    then compares the whole texts another way)."""
    if gold.kind == "leaf" and answer.kind == "leaf":
        return leaf_equal(gold.text, answer.text)

    # A one-element set or list is its element: {5} answers "5".
    if gold.is_collection and len(gold.items) == 1:
        return compare_nodes(gold.items[0], answer, leaf_equal)
    if answer.is_collection and len(answer.items) == 1:
        return compare_nodes(gold, answer.items[0], leaf_equal)

    if gold.is_collection and answer.is_collection:
        return _unordered_equal(gold.items, answer.items, leaf_equal)
    if gold.kind == "union" and answer.kind == "union":
        return _unordered_equal(gold.items, answer.items, leaf_equal)
    if gold.kind == "bracket" and answer.kind == "bracket":
        if (gold.opening, gold.closing) != (answer.opening, answer.closing):
            return False  # [1, 2) is not (1, 2)
        return _ordered_equal(gold.items, answer.items, leaf_equal)
    if gold.kind == "ratio" and answer.kind == "ratio":
        return _ordered_equal(gold.items, answer.items, leaf_equal)
    # An ordered pair written without its parentheses: (1, 2) answered "1, 2".
    is_pair = gold.kind == "bracket" and (gold.opening, gold.closing) == ("(", ")")
    if is_pair and answer.kind == "list":
        return _ordered_equal(gold.items, answer.items, leaf_equal)
    if gold.kind != "leaf" and answer.kind != "leaf" and gold.kind != answer.kind:
        return False
    return None


def _ordered_equal(gold: tuple[Node, ...], answer: tuple[Node, ...], leaf_equal: LeafEqual) -> bool:
    if len(gold) != len(answer):
        return False
    return all(compare_nodes(g, a, leaf_equal) is True for g, a in zip(gold, answer, strict=True))


def _unordered_equal(
    gold: tuple[Node, ...], answer: tuple[Node, ...], leaf_equal: LeafEqual
) -> bool:
    """A perfect matching between the items (multisets: {1, 1, 2} is not {1, 2, 2})."""
    if len(gold) != len(answer):
        return False
    if len(gold) > MAX_MATCHED_ITEMS:
        return _ordered_equal(gold, answer, leaf_equal)
    cache: dict[tuple[int, int], bool] = {}

    def equal(i: int, j: int) -> bool:
        if (i, j) not in cache:
            cache[(i, j)] = compare_nodes(gold[i], answer[j], leaf_equal) is True
        return cache[(i, j)]

    match_of_answer: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in range(len(answer)):
            if j in seen or not equal(i, j):
                continue
            seen.add(j)
            if j not in match_of_answer or augment(match_of_answer[j], seen):
                match_of_answer[j] = i
                return True
        return False

    return all(augment(i, set()) for i in range(len(gold)))
