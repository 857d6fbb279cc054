"""One check, start to finish, in the current process: extract the final answer, compare it
with the reference, build the ``VerifyResult``.

The worker processes run these functions; ``check_answer`` (in ``pool``) is the public,
time-limited entry point. Results are deterministic for the same input (no durations, no
process ids): Gymnasium's env checker compares the infos of two identical steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from grpo_env.environments.math.answer_form import (
    AnswerKind,
    asserted_value,
    has_relation,
    is_number,
    restates_question,
)
from grpo_env.environments.math.equivalence import answers_equal
from grpo_env.environments.math.extraction import Extraction, extract_answer, reference_answer
from grpo_env.environments.math.normalize import clean_answer
from grpo_env.environments.math.structure import parse_structure
from grpo_env.probes import question_expressions
from grpo_env.types import Status, VerifyResult

NO_ANSWER = (
    "no final answer found: expected \\boxed{...}, '#### N', 'The answer is ...' "
    "or an <answer> block"
)


def check_completion(
    gold: str,
    completion: str,
    *,
    last_number_fallback: bool = False,
    prose_conclusion: bool = False,
    question: str | None = None,
    answer_kind: AnswerKind = "expression",
) -> VerifyResult:
    """Score ``completion`` against the reference ``gold`` (a bare answer, or a worked
    solution with a box or ``####``). Score 1 or 0; ``details`` says why.

    ``question`` (the prompt the model answered) lets the checker refuse the question
    restated as its own answer; ``answer_kind`` says whether the answer must be a number
    (see ``answer_form``)."""
    reference = reference_answer(gold)
    problem = reference_problem(gold, reference)
    if problem:
        # The task is broken, not the completion: say so instead of "does not match".
        return VerifyResult(
            score=0.0,
            status=Status.ERROR,
            components={"correct": 0.0},
            details={"reason": f"bad reference answer: {problem}", "bad_reference": True},
        )
    extraction = extract_answer(
        completion, last_number_fallback=last_number_fallback, prose_conclusion=prose_conclusion
    )
    if extraction.source == "last_number" and question:
        # The last number of a restated question ("so 4 + 7") is not the model's answer.
        extraction = extract_answer(mask_question(completion, question), last_number_fallback=True)
    reads_relations = not has_relation(reference)

    def judge(candidate: str) -> tuple[bool, str]:
        if reads_relations:
            value = asserted_value(candidate)
            if value is None:
                return False, "states no value"
            candidate = value
        if not candidate.strip():
            return False, "empty answer"
        if question and restates_question(candidate, question, reference):
            return False, "restates the question"
        if answer_kind == "number" and not is_number(candidate):
            return False, "not a number"
        verdict = answers_equal(reference, candidate)
        return verdict.equal, verdict.method

    return judge_candidates(reference, extraction, judge)


def mask_question(completion: str, question: str) -> str:
    """``completion`` with every copy of the question's expressions blanked out."""
    for expression in question_expressions(question):
        tokens = re.findall(r"\\[A-Za-z]+|\d+(?:[.,]\d+)*|\S", expression)
        # Whole numbers only: "4 + 7" is not inside "14 + 75".
        pattern = r"(?<![\d.])" + r"\s*".join(re.escape(t) for t in tokens) + r"(?![\d.])"
        completion = re.sub(pattern, " ", completion)
    return completion


def reference_problem(gold: str, reference: str) -> str:
    """Why a reference answer cannot be compared with anything ("" when it can)."""
    if not reference.strip():
        return "the reference answer is empty"
    bare = gold.replace("\\{", "").replace("\\}", "")  # escaped braces are set notation
    if bare.count("{") != bare.count("}"):
        return f"its braces do not balance: {gold[-80:]!r}"
    return ""


def check_with_scorer(
    gold: str,
    completion: str,
    score: Callable[[str], float],
    *,
    last_number_fallback: bool = False,
    prose_conclusion: bool = False,
) -> VerifyResult:
    """Like ``check_completion`` but an external ``score(answer) -> float`` (reasoning-gym's
    own ``score_answer``) decides each candidate: full marks only."""
    extraction = extract_answer(
        completion, last_number_fallback=last_number_fallback, prose_conclusion=prose_conclusion
    )

    def judge(candidate: str) -> tuple[bool, str]:
        value = float(score(candidate))
        return value >= 1.0 - 1e-9, f"reasoning-gym score {value:g}"

    return judge_candidates(gold, extraction, judge)


def judge_candidates(
    reference: str, extraction: Extraction, judge: Callable[[str], tuple[bool, str]]
) -> VerifyResult:
    details: dict[str, Any] = {"reference": reference, "source": extraction.source}
    if not extraction.found:
        details["reason"] = NO_ANSWER
        return _result(False, Status.INVALID_FORMAT, details)

    candidates = list(extraction.answers)
    if len(candidates) > 1 and extraction.joined and is_multi_valued(reference):
        candidates = [extraction.joined]  # "\boxed{2}, \boxed{3}" answering "2, 3"

    if len(candidates) == 1:
        equal, method = judge(candidates[0])
        details.update(extracted=candidates[0], method=method)
        if not equal:
            details["reason"] = _MISMATCH_REASONS.get(
                method, "the answer does not match the reference"
            )
        return _result(equal, Status.OK, details)

    verdicts = [judge(c) for c in candidates]
    details.update(extracted=candidates, method=[m for _, m in verdicts])
    if all(equal for equal, _ in verdicts):
        return _result(True, Status.OK, details)  # several ways of writing one right answer
    details["reason"] = "several different final answers: " + ", ".join(repr(c) for c in candidates)
    return _result(False, Status.INVALID_FORMAT, details)


_MISMATCH_REASONS = {
    "restates the question": "the answer restates the question instead of answering it",
    "not a number": "the task asks for a number; the answer is not one",
    "empty answer": "the answer is empty",
    "states no value": "the answer is a relation that states no value (a side is missing)",
}


def is_multi_valued(reference: str) -> bool:
    """Whether the reference is a list, set, tuple or union (or a ``\\pm`` pair)."""
    cleaned = clean_answer(reference)
    return "\\pm" in cleaned or parse_structure(cleaned).kind != "leaf"


def _result(correct: bool, status: Status, details: dict[str, Any]) -> VerifyResult:
    value = 1.0 if correct else 0.0
    return VerifyResult(score=value, status=status, components={"correct": value}, details=details)
