"""What counts as an answer at all, before it is compared with the reference.

A verifier is attacked by the policy it trains: GRPO on ``math-chain-sum`` learned within 40
steps that ``4 + 7 ≈ 99`` scored as if it said 11 (the relation was cut and its left side, the
question, was scored) and that ``\\boxed{4+7}`` scored because it *equals* 11. Three rules close
that, for every math env, before the equivalence check runs:

1. **A relation asserts its rightmost side** (``asserted_value``) when what it relates is a
   name or plain arithmetic: ``4 + 7 = 11``, ``x ≈ 11``, ``y \\to 11`` and
   ``4+7 \\Rightarrow 11`` answer 11; ``4 + 7 ≈ 99`` answers 99. An equation in an unknown
   (``x^2 = 4``) is left whole for the equivalence check, which does not take it for its right
   side; an approximation or arrow from such a left side, or a relation with a side missing
   (``\\approx 3``, ``4 + 7 =``), states no value. Nothing is cut when the reference is itself
   a relation (an equation such as ``y = 2x + 3``).
2. **The question restated is not an answer** (``restates_question``): an answer equal, after
   normalisation, to an expression of the prompt (``$\\sin 60^\\circ$``, ``4 + 7``), or
   arithmetic on the prompt's own numbers still to be done, never scores, unless the reference
   itself is written that way.
3. **Where the task is to compute a number, the answer is a number** (``AnswerKind``):
   ``"number"`` accepts any numeral notation (``1,234``, ``-3.5``, ``\\frac{3}{4}``, ``3/4``,
   ``50\\%``, ``1.5e3``, ``18 dollars``) and nothing that still holds an operation;
   ``"expression"`` accepts every equivalent form (``\\frac{\\sqrt 3}{2}``, ``2\\pi``, and
   ``10^6`` or ``\\sqrt{16}`` for a numeric reference, as MATH graders do). The arithmetic
   envs (chain_sum, basic_arithmetic, gsm_symbolic, GSM8K-form files) declare ``"number"``;
   MATH-form tasks ``"expression"``; countdown keeps reasoning-gym's scorer.
"""

from __future__ import annotations

import re
from typing import Literal

from grpo_env.environments.math.brackets import split_top_level
from grpo_env.environments.math.normalize import clean_answer, squash, strip_units, unwrap_text
from grpo_env.environments.math.numbers import parse_plain_number
from grpo_env.probes import question_expressions

AnswerKind = Literal["number", "expression"]
ANSWER_KINDS: tuple[str, ...] = ("number", "expression")

# Relations, longest spelling first so ":=" is not read as ":" then "=".
_RELATION = re.compile(
    r":=|==|=>|->|⟹|⇒|→|⟶|≈|≃|≅|∼|≡"
    r"|\\(?:approx|simeq|sim|cong|equiv|to|rightarrow|longrightarrow|Rightarrow"
    r"|Longrightarrow|implies|mapsto)(?![A-Za-z])"
    r"|(?<![<>!=\\])=(?![=>])"
)
_COMMA = re.compile(r"[,;]")
# What may stand left of a relation whose right side is the answer: x, a_n, f(x), \theta.
_NAME = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?'*|\\[A-Za-z]+|[A-Za-z]+\s*\([^()]*\)|\\text\{[^{}]*\}")
# Arithmetic still to be done: numbers joined by operators, nothing else.
_OPERATOR = re.compile(r"[+\-*/×÷^·]|\\(?:cdot|times|div)(?![A-Za-z])")
_ARITHMETIC_ONLY = re.compile(
    r"^(?:\s|\d|[.,+\-*/×÷^·()\[\]{}]|\\(?:cdot|times|div|left|right)(?![A-Za-z]))+$"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def has_relation(text: str) -> bool:
    """Whether ``text`` holds a relation outside every bracket."""
    return len(split_top_level(text, _RELATION)) > 1


def asserted_value(answer: str) -> str | None:
    """The value ``answer`` asserts (see rule 1 of the module docstring): ``answer`` itself
    when it holds no relation, the rightmost side of a relation from a name or plain
    arithmetic, ``answer`` whole for an equation in an unknown, None when it states no value.

    ``a = 7, b = 3`` (a list whose every item is a relation) becomes ``7, 3``. A list whose
    items are not all relations is left whole: its commas may be thousands separators.
    """
    items = split_top_level(answer, _COMMA)
    if len(items) > 1:
        if not all(has_relation(item) for item in items):
            return answer
        values = [_relation_value(item) for item in items]
        return None if None in values else ", ".join(v for v in values if v is not None)
    return _relation_value(answer) if has_relation(answer) else answer


def _relation_value(text: str) -> str | None:
    sides = [side.strip() for side in split_top_level(text, _RELATION)]
    if not all(sides):
        return None  # "\approx 3", "4 + 7 =": a side is missing
    if _NAME.fullmatch(sides[0]) or not _has_unknown(sides[0]):
        return sides[-1]
    signs = [m.group(0) for m in _RELATION.finditer(text)]
    if all(sign == "=" for sign in signs):
        return text  # an equation in an unknown: the equivalence check reads it whole
    return None


def _has_unknown(text: str) -> bool:
    """Whether ``text`` holds a letter outside LaTeX commands (``\\frac{1}{2}`` has none)."""
    return bool(re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", text)))


def is_number(answer: str) -> bool:
    """Whether ``answer`` is one number in an accepted notation (units and a leading
    ``$`` or unit word allowed), with no operation left to do."""
    text = unwrap_text(strip_units(clean_answer(answer)))
    text = re.sub(r"^\((.*)\)$", r"\1", text.strip())  # "(-5)"
    return parse_plain_number(text) is not None


def restates_question(answer: str, question: str, reference: str) -> bool:
    """Whether ``answer`` is the question written back: an expression of the prompt, or
    arithmetic on the prompt's numbers not yet carried out (see the module docstring)."""
    key = _key(answer)
    if not key or key == _key(reference) or is_number(answer):
        return False
    expressions = {_key(e) for e in question_expressions(question)}
    if key in expressions:
        return True
    return _unfinished_arithmetic(answer, question)


def _unfinished_arithmetic(answer: str, question: str) -> bool:
    text = clean_answer(answer)
    if not _ARITHMETIC_ONLY.match(text) or not _OPERATOR.search(_strip_leading_sign(text)):
        return False
    available = _NUMBER.findall(question)
    for number in _NUMBER.findall(text):
        if number not in available:
            return False
        available.remove(number)
    return True


def _strip_leading_sign(text: str) -> str:
    return re.sub(r"^\s*[+\-]", "", text)


def _key(text: str) -> str:
    cleaned = clean_answer(text)
    cleaned = re.sub(r"\s*(?:=|\?)\s*$", "", cleaned)  # "4 + 7 =" is "4 + 7"
    return squash(cleaned).replace("\\cdot", "*").replace("\\times", "*").replace("×", "*")
