"""The checker on our labelled set: (gold, completion, correct) cases in the spirit of public
graders' test suites and their known failure reports (tests/environments/data/).

``bench/math_accuracy.py`` prints the same measurement next to math-verify alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grpo_env.environments.math import CheckerPool

CASES_FILE = Path(__file__).parent / "data" / "math_accuracy.jsonl"
MIN_ACCURACY = 0.98


@pytest.fixture(scope="module")
def verdicts():
    cases = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines()]
    with CheckerPool(workers=2) as pool:
        results = pool.check_many([(c["gold"], c["completion"]) for c in cases], timeout=20.0)
    return cases, results


def test_the_set_is_substantial():
    cases = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines()]
    assert len(cases) >= 500
    assert sum(c["false_positive"] for c in cases) >= 30
    assert {c["correct"] for c in cases} == {True, False}


@pytest.mark.slow
def test_no_known_false_positive_is_accepted(verdicts):
    cases, results = verdicts
    accepted = [
        (c["gold"], c["completion"], c["note"])
        for c, r in zip(cases, results, strict=True)
        if c["false_positive"] and r.score > 0
    ]
    assert not accepted


@pytest.mark.slow
def test_accuracy_on_the_labelled_set(verdicts):
    cases, results = verdicts
    assert not [r for r in results if r.status.value in ("timeout", "infra_error")]
    wrong = [
        (c["gold"], c["completion"][-80:], c["correct"])
        for c, r in zip(cases, results, strict=True)
        if (r.score >= 1.0) != c["correct"]
    ]
    accuracy = 1 - len(wrong) / len(cases)
    assert accuracy >= MIN_ACCURACY, wrong
