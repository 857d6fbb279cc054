"""Accuracy of the math checker against math-verify alone, on the same labelled cases.

    python bench/math_accuracy.py [--cases tests/environments/data/math_accuracy.jsonl]
    python bench/math_accuracy.py --cases bench/data/notation_set.jsonl

Each case is (gold, completion, correct): a reference answer, a model-style completion, and
whether a careful human grader would accept it; a case may carry the ``question`` it
answers (the question restated is no answer). "ours" is ``check_answer`` (extraction,
exact equivalence, worker pool). "ours_prose_conclusion" is the same check with the env
option ``prose_conclusion=True`` (answers concluded in prose with no marker). "math-verify
alone" is the library used as its README shows:
``verify(parse("$" + gold + "$"), parse(completion))`` with its default settings.

Prints one JSON object: for each grader its accuracy, false positives (wrong answers
accepted), false negatives (right answers rejected), how many known false positives it
accepted, per-category accuracy, and the cases it gets wrong (``--show-errors``).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

DEFAULT_CASES = Path(__file__).resolve().parents[1] / "tests/environments/data/math_accuracy.jsonl"


def load_cases(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def math_verify_alone(gold: str, completion: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse(f"${gold}$"), parse(completion)))
    except Exception:  # a crash is a rejection, as in math-verify's own error handling
        return False


def ours(cases: list[dict[str, Any]], *, prose_conclusion: bool = False) -> list[bool]:
    """``check_answer`` through the worker pool, with the case's question where it has one
    (the question restated is no answer) and the env option ``prose_conclusion``."""
    from grpo_env.environments.math import CheckerPool
    from grpo_env.environments.math.pool import check_request

    requests = [
        check_request(
            c["gold"],
            c["completion"],
            prose_conclusion=prose_conclusion,
            question=c.get("question"),
        )
        for c in cases
    ]
    with CheckerPool() as pool:
        results = pool.run_many(requests, timeout=10.0)
    return [r.score >= 1.0 for r in results]


def summarise(cases: list[dict[str, Any]], verdicts: list[bool]) -> dict[str, Any]:
    right = [v == c["correct"] for c, v in zip(cases, verdicts, strict=True)]
    by_category: dict[str, list[bool]] = defaultdict(list)
    for case, ok in zip(cases, right, strict=True):
        by_category[case["category"]].append(ok)
    false_positives = [c for c, v in zip(cases, verdicts, strict=True) if v and not c["correct"]]
    false_negatives = [c for c, v in zip(cases, verdicts, strict=True) if not v and c["correct"]]
    return {
        "accuracy": round(sum(right) / len(right), 4),
        "correct": sum(right),
        "false_positives": len(false_positives),
        "false_negatives": len(false_negatives),
        "known_false_positives_accepted": sum(
            c.get("false_positive", False) for c in false_positives
        ),
        "by_category": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_category.items())},
        "_errors": [
            {"gold": c["gold"], "completion": c["completion"][-120:], "truth": c["correct"]}
            for c in false_positives + false_negatives
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES, help="A labelled JSONL set.")
    parser.add_argument("--show-errors", action="store_true", help="List every misjudged case.")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # math-verify logs every parse failure
    cases = load_cases(args.cases)
    report: dict[str, Any] = {"cases": len(cases), "known_false_positives": 0}
    report["known_false_positives"] = sum(c.get("false_positive", False) for c in cases)
    report["wrong_share"] = round(sum(not c["correct"] for c in cases) / len(cases), 3)
    graders = {
        "ours": ours(cases),
        "ours_prose_conclusion": ours(cases, prose_conclusion=True),
        "math_verify_alone": [math_verify_alone(c["gold"], c["completion"]) for c in cases],
    }
    for name, verdicts in graders.items():
        summary = summarise(cases, verdicts)
        errors = summary.pop("_errors")
        if args.show_errors:
            summary["errors"] = errors
        report[name] = summary
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
