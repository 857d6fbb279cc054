"""Rubric arithmetic against hand computations."""

from __future__ import annotations

import pytest

from grpo_env import Criterion, Rubric, Status, Task, VerifyResult

TASK = Task(id="t", prompt="q", answer="4")


def const(value: float):
    return lambda task, completion: value


def test_weighted_sum_of_components():
    rubric = Rubric(
        [Criterion("a", const(1.0), weight=0.7), Criterion("b", const(0.5), weight=0.6)]
    )
    result = rubric.score(TASK, "x")
    assert result.score == pytest.approx(0.7 * 1.0 + 0.6 * 0.5)
    assert result.components == {"a": 1.0, "b": 0.5}
    assert rubric.max_score == pytest.approx(1.3)


def test_zero_weight_is_a_logged_metric_only():
    rubric = Rubric([Criterion("correct", const(1.0)), Criterion("length", const(123.0), weight=0)])
    result = rubric.score(TASK, "x")
    assert result.score == 1.0
    assert result.components["length"] == 123.0


def test_gate_closed_zeroes_the_gated_component_and_skips_it():
    calls = []

    def correct(task, completion):
        calls.append(completion)
        return 1.0

    rubric = Rubric(
        [
            Criterion("format", const(0.0), weight=0.2),
            Criterion("correct", correct, weight=1.0, gated_by=("format",)),
        ]
    )
    result = rubric.score(TASK, "x")
    assert result.score == 0.0 and calls == []
    assert result.components == {"format": 0.0, "correct": 0.0}
    assert "skipped" in result.details["correct"]


def test_gate_open_counts_both():
    rubric = Rubric(
        [
            Criterion("format", const(1.0), weight=0.2),
            Criterion("correct", const(1.0), weight=1.0, gated_by=("format",)),
        ]
    )
    assert rubric.score(TASK, "x").score == pytest.approx(1.2)


def test_gate_evaluated_but_not_counted_when_not_skipping():
    rubric = Rubric(
        [
            Criterion("format", const(0.5), weight=0.0),
            Criterion("correct", const(1.0), gated_by=("format",), gate_threshold=0.75),
        ],
        skip_when_gated=False,
    )
    result = rubric.score(TASK, "x")
    assert result.score == 0.0 and result.components["correct"] == 1.0


def test_partial_gate_threshold():
    rubric = Rubric(
        [
            Criterion("format", const(0.75), weight=0.0),
            Criterion("correct", const(1.0), gated_by=("format",), gate_threshold=0.75),
        ]
    )
    assert rubric.score(TASK, "x").score == 1.0


def test_status_is_the_most_severe_and_infra_error_scores_zero():
    def timeout(task, completion):
        return VerifyResult(score=0.0, status=Status.TIMEOUT, details={"why": "slow"})

    def infra(task, completion):
        return VerifyResult.infra_error("sandbox down")

    r = Rubric([Criterion("a", const(1.0)), Criterion("b", timeout)]).score(TASK, "x")
    assert r.status is Status.TIMEOUT and r.score == 1.0 and r.details["b"] == {"why": "slow"}
    r = Rubric([Criterion("a", const(1.0)), Criterion("b", infra)]).score(TASK, "x")
    assert r.status is Status.INFRA_ERROR and r.score == 0.0


def test_sub_components_of_a_criterion_are_kept():
    def fmt(task, completion):
        return VerifyResult(score=0.5, components={"think": 1.0, "answer": 0.0})

    result = Rubric([Criterion("format", fmt)]).score(TASK, "x")
    assert result.components == {"format": 0.5, "format/think": 1.0, "format/answer": 0.0}


def test_invalid_rubrics_are_rejected():
    with pytest.raises(ValueError, match="two criteria named"):
        Rubric([Criterion("a", const(1)), Criterion("a", const(1))])
    with pytest.raises(ValueError, match="not an earlier criterion"):
        Rubric([Criterion("a", const(1), gated_by=("b",)), Criterion("b", const(1))])
    with pytest.raises(ValueError, match="at least one"):
        Rubric([])
