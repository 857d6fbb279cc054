"""pass@k, maj@k and the evaluation summary against hand values."""

import math

import pytest

from grpo_env.evaluation.evaluate import SampleRecord, summarize, vote_key
from grpo_env.evaluation.metrics import maj_at_k, majority_vote, pass_at_k, report_ks
from grpo_env.types import Status, VerifyResult


def test_pass_at_k_by_hand():
    # n = 5 samples, c = 2 correct: pass@1 = 2/5; pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # pass@3 = 1 - C(3,3)/C(5,3) = 1 - 1/10; pass@4: fewer than 4 wrong samples -> 1
    assert pass_at_k(5, 2, 3) == pytest.approx(0.9)
    assert pass_at_k(5, 2, 4) == 1.0
    assert pass_at_k(5, 0, 5) == 0.0 and pass_at_k(5, 5, 1) == 1.0


def test_pass_at_k_matches_the_binomial_formula_for_large_n():
    n, c, k = 200, 13, 10
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-12)


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match="k must be"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="correct"):
        pass_at_k(4, 5, 1)


def test_majority_vote_ties_go_to_the_first_and_none_does_not_vote():
    assert majority_vote(["3", "4", "3", None]) == 0
    assert majority_vote(["4", "3", "3", "4"]) == 0  # tie: "4" seen first
    assert majority_vote([None, "7", None, None]) == 1
    assert majority_vote([None, None]) is None


def test_maj_at_k_by_hand():
    answers = ["3", "4", "4", "3", "4"]
    correct = [False, True, True, False, True]
    assert not maj_at_k(answers, correct, 1)  # "3" alone
    assert not maj_at_k(answers, correct, 2)  # tie 3/4: first is "3"
    assert maj_at_k(answers, correct, 3)  # "4" twice
    assert maj_at_k(answers, correct, 5)
    assert not maj_at_k([None, None], [True, True], 2)  # nobody answered


def test_report_ks():
    assert report_ks(1) == [1]
    assert report_ks(8) == [1, 2, 4, 8]
    assert report_ks(6) == [1, 2, 4, 6]


def record(task, sample, reward, *, status="ok", answer=None, tokens=3, truncated=False):
    return SampleRecord(
        env="toy",
        model="m",
        task_id=task,
        sample=sample,
        task={"id": task, "prompt": "p"},
        prompt=[{"role": "user", "content": "p"}],
        completion=str(answer),
        tokens=tokens,
        truncated=truncated,
        reward=reward,
        status=status,
        components={"correct": reward} if status != "infra_error" else {},
        answer=answer,
        details={},
        temperature=1.0,
        max_new_tokens=8,
    )


def test_summary_by_hand():
    records = [
        # task a: answers 1 (right), 2, 2, infra error -> 3 valid samples, 1 correct
        record("a", 0, 1.0, answer="1", tokens=2),
        record("a", 1, 0.0, answer="2", tokens=4),
        record("a", 2, 0.0, answer="2", tokens=6, truncated=True),
        record("a", 3, 0.0, status="infra_error", tokens=8),
        # task b: 4 valid, 3 correct, one invalid format
        record("b", 0, 1.0, answer="5"),
        record("b", 1, 1.0, answer="5"),
        record("b", 2, 0.0, status="invalid_format"),
        record("b", 3, 1.0, answer="5"),
    ]
    report = summarize(records)
    assert report.tasks == 2 and report.samples_per_task == 4 and report.tasks_scored == 2
    # pass@1: a 1/3, b 3/4; pass@2: a 1 - C(2,2)/C(3,2) = 2/3, b 1; pass@4: only b (a has 3)
    assert report.pass_at["pass@1"] == pytest.approx((1 / 3 + 3 / 4) / 2)
    assert report.pass_at["pass@2"] == pytest.approx((2 / 3 + 1) / 2)
    assert report.pass_at["pass@4"] == pytest.approx(1.0)
    # maj@1: a "1" right, b "5" right; maj@2: a tie 1/2 -> "1" right; b right
    assert report.maj_at == {"maj@1": 1.0, "maj@2": 1.0, "maj@4": 1.0}
    assert report.mean_reward == pytest.approx(4 / 7)  # the infra error is not a 0
    assert report.reward_components == {"correct": pytest.approx(4 / 7)}
    assert (report.infra_errors, report.invalid_formats, report.timeouts) == (1, 1, 0)
    assert report.statuses == {"infra_error": 1, "invalid_format": 1, "ok": 6}
    assert report.length_max == 8 and report.truncated == pytest.approx(1 / 8)
    assert report.length_mean == pytest.approx((2 + 4 + 6 + 8 + 3 * 4) / 8)


def test_maj_at_k_follows_the_majority_even_when_it_is_wrong():
    records = [
        record("a", i, r, answer=a) for i, (r, a) in enumerate([(1.0, "1"), (0, "2"), (0, "2")])
    ]
    report = summarize(records)
    assert report.maj_at["maj@1"] == 1.0
    assert report.maj_at["maj@3"] == 0.0
    assert report.pass_at["pass@3"] == 1.0


def test_vote_key_uses_the_extracted_answer_when_there_is_one():
    math_like = VerifyResult(
        score=0.0, components={"correct": 0.0}, details={"correct": {"extracted": "42"}}
    )
    assert vote_key(math_like, "so the answer is \\boxed{42}") == "42"
    assert vote_key(VerifyResult(score=1.0), "  7 ") == "7"
    invalid = VerifyResult(score=0.0, status=Status.INVALID_FORMAT)
    assert vote_key(invalid, "whatever") is None
    listed = VerifyResult(score=0.0, details={"correct": {"extracted": ["1", "2"]}})
    assert vote_key(listed, "x") == '["1", "2"]'
