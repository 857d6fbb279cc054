"""The steps of a ``chain_sum`` answer (process supervision): its checkable intermediate results.

A chain sum ``a1 + a2 - a3 ...`` has left-to-right partial sums ``P_k = a1 +/- ... a_k``
(``k >= 2``; ``P_n`` is the final value). A completion's steps are the numbers it writes right
after an ``=`` ("4 - 1 - 7 = 3 - 7 = -4": 3, then -4), each ending where the number ends:

- reward 1 if the number is one of the partial sums (a partial evaluation is checkable),
  0 otherwise;
- each distinct value counts once, at its first ``=``: restating a result earns nothing more;
- a number of the question itself (a term, signed or not) is no step: echoing the question
  proves nothing, and is not penalised either;
- then a final step at the completion's end: the verdict's score (the outcome).

So steps pay at most once per partial sum (``n - 1`` in all) plus the outcome, and guessing
numbers after ``=`` costs a 0 step per wrong value: spraying values cannot farm reward.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

# A number right after "=" (not "==", "<=", ">=", "!="): optional minus, thousands commas.
_RESULT = re.compile(r"(?<![<>!=])=(?!=)\s*([-\u2212]?\s*\d+(?:,\d{3})*(?:\.\d+)?)")
_TERM = re.compile(r"([+-]?)\s*(\d+)")


def chain_terms(expression: str) -> list[int]:
    """The signed terms of ``"4 - 1 - 7"``: ``[4, -1, -7]``."""
    return [int(digits) * (-1 if sign == "-" else 1) for sign, digits in _TERM.findall(expression)]


def partial_sums(terms: Sequence[int]) -> set[int]:
    """``P_2 .. P_n``: the sums of the first k terms, k >= 2 (``P_n`` is the answer)."""
    return {sum(terms[:k]) for k in range(2, len(terms) + 1)}


def chain_sum_steps(
    terms: Sequence[int], completion: str, outcome: float
) -> list[tuple[int, float]]:
    """``(character end, reward)`` steps of ``completion`` (see the module docstring)."""
    targets = partial_sums(terms)
    question = {t for term in terms for t in (term, abs(term))}
    seen: set[Decimal] = set()
    steps: list[tuple[int, float]] = []
    for match in _RESULT.finditer(completion):
        text = re.sub(r"[\s,]", "", match.group(1)).replace("\u2212", "-")
        value = Decimal(text)
        if value in seen or value in question:
            continue
        seen.add(value)
        steps.append((match.end(1), 1.0 if value in targets else 0.0))
    steps.append((len(completion), float(outcome)))
    return steps
