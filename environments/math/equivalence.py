"""Is an extracted answer equivalent to the reference answer? As a careful grader reads it.

The order of the checks, cheapest and most exact first:

1. identical after cosmetic normalisation (``normalize.clean_answer``);
2. the outer shape (``structure``): sets and bare lists match as multisets, bracketed
   tuples and intervals item by item with the same bracket types, unions as sets of parts;
3. each single value: ``x =`` stripped when the reference is a bare value, unit words
   dropped; word answers ("Monday") compared as text; plain numerals compared exactly as
   fractions (``numbers``); everything else by math-verify's grader made exact for numbers
   (``symbolic``), gold first.

Before 2, answers whose notation names their kind are read as that kind when the reference
is of it too (``readings``): clock times by the time of day, multiple-choice letters by the
letter chosen, and a decimal comma (``1,25``) against a reference that is one decimal
number.

Thousands separators are tried both ways: ``1,234`` is the number 1234 or the list (1, 234),
whichever the reference makes sense of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grpo_env.environments.math.normalize import (
    clean_answer,
    collapse_thousands,
    expand_tuple_assignment,
    has_sequence_dots,
    is_assignment_list,
    is_wordy,
    split_assignment,
    squash,
    strip_units,
    unwrap_text,
)
from grpo_env.environments.math.numbers import parse_plain_number, plain_numbers_equal
from grpo_env.environments.math.readings import (
    choice_letter,
    chosen_letter,
    clocks_equal,
    decimal_comma_number,
)
from grpo_env.environments.math.structure import compare_nodes, parse_structure


@dataclass(frozen=True)
class Verdict:
    equal: bool
    method: str


def answers_equal(gold: str, answer: str) -> Verdict:
    """Whether ``answer`` states the same mathematical object as ``gold``."""
    g, a = clean_answer(gold), clean_answer(answer)
    if not a:
        return Verdict(False, "empty answer")
    if not g:
        return Verdict(False, "empty reference")
    if squash(g) == squash(a):
        return Verdict(True, "string")
    by_kind = _reading_by_kind(g, a)
    if by_kind is not None:
        return by_kind
    attempts = [(collapse_thousands(g), collapse_thousands(a))]
    if attempts[0] != (g, a):
        attempts.append((g, a))
    first: Verdict | None = None
    for g_text, a_text in attempts:
        verdict = _Comparison().texts(g_text, a_text)
        if verdict.equal:
            return verdict
        first = first or verdict
    assert first is not None
    return first


def _reading_by_kind(gold: str, answer: str) -> Verdict | None:
    """A verdict from ``readings`` when both sides are of a kind they know, else None."""
    same_time = clocks_equal(gold, answer)
    if same_time is not None:
        return Verdict(same_time, "clock-time")
    letter = choice_letter(gold)
    if letter is not None:
        chosen = chosen_letter(answer)
        if chosen is not None:
            return Verdict(chosen == letter, "choice-letter")
    if "," not in gold:
        g_number = parse_plain_number(strip_units(unwrap_text(gold)))
        a_number = decimal_comma_number(unwrap_text(answer))
        if g_number is not None and a_number is not None:
            equal, _ = plain_numbers_equal(g_number, a_number)
            if equal:
                return Verdict(True, "decimal-comma")
    return None


class _Comparison:
    """One comparison; remembers which method decided it (for ``details``)."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def verdict(self, equal: bool) -> Verdict:
        method = self.methods[-1] if self.methods else "structure"
        return Verdict(equal, method)

    def texts(self, gold: str, answer: str) -> Verdict:
        if is_assignment_list(gold):
            answer = expand_tuple_assignment(answer)  # "(a, b) = (3, -2)" for "a = 3, b = -2"
        elif is_assignment_list(answer):
            gold = expand_tuple_assignment(gold)
        gold, answer = _strip_assignments(gold, answer)
        g_node, a_node = parse_structure(gold), parse_structure(answer)
        outcome = compare_nodes(g_node, a_node, self.leaf_equal)
        if outcome is not None:
            if g_node.kind != "leaf" or a_node.kind != "leaf":
                self.methods.append(
                    f"{g_node.kind}/{self.methods[-1]}" if self.methods else "structure"
                )
            return self.verdict(outcome)
        # The shapes differ ("\pm 2" against a list, "x \le 2" against an interval): compare
        # the whole texts as mathematical objects.
        if has_sequence_dots(gold) or has_sequence_dots(answer):
            self.methods.append("sequence")
            return self.verdict(False)
        return self.verdict(self.symbolic(gold, answer))

    def leaf_equal(self, gold: str, answer: str) -> bool:
        if squash(gold) == squash(answer):
            self.methods.append("string")
            return True
        if has_sequence_dots(gold) or has_sequence_dots(answer):
            # "1, 2, \ldots, n": sympy would evaluate the pieces into nonsense; only the
            # literal text is a safe comparison.
            self.methods.append("sequence")
            return squash(unwrap_text(gold)) == squash(unwrap_text(answer))
        stripped = _strip_assignments(gold, answer)
        if stripped != (gold, answer):
            return self.texts(*stripped).equal
        gold, answer = unwrap_text(strip_units(gold)), unwrap_text(strip_units(answer))
        if squash(gold) == squash(answer):
            self.methods.append("string")
            return True
        if is_wordy(gold) or is_wordy(answer):
            self.methods.append("text")
            return _text_key(gold) == _text_key(answer)
        g_number, a_number = parse_plain_number(gold), parse_plain_number(answer)
        if g_number is not None and a_number is not None:
            equal, method = plain_numbers_equal(g_number, a_number)
            self.methods.append(method)
            return equal
        return self.symbolic(gold, answer)

    def symbolic(self, gold: str, answer: str) -> bool:
        from grpo_env.environments.math import symbolic  # sympy: only in the worker

        g_expr = symbolic.to_sympy(_latex_percent(gold))
        a_expr = symbolic.to_sympy(_latex_percent(answer))
        if g_expr is None or a_expr is None:
            self.methods.append("unparsable")
            return False
        self.methods.append("symbolic")
        return symbolic.symbolic_equal(g_expr, a_expr)


def _strip_assignments(gold: str, answer: str) -> tuple[str, str]:
    """``x = 5`` answers ``5``; ``x = 5`` and ``x = 2 + 3`` compare their values; different
    names (``x = 5`` against ``y = 5``) are left whole for the symbolic check."""
    g_name, g_value = split_assignment(gold)
    a_name, a_value = split_assignment(answer)
    if g_name and a_name:
        return (g_value, a_value) if g_name == a_name else (gold, answer)
    if a_name and "=" not in gold:
        return gold, a_value
    if g_name and "=" not in answer:
        return g_value, answer
    return gold, answer


def _text_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _latex_percent(text: str) -> str:
    return re.sub(r"(?<!\\)%", r"\\%", text)
