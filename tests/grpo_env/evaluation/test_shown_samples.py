"""The completions shown beside an accuracy (issue 10: a number is read with its samples)."""

from grpo_env.evaluation.shown_samples import MAX_CHARS, pick_samples, shown_sample


def sample(i: int, score: float, status: str = "ok"):
    details = {"extracted": str(i), "reason": None if score else "the answer does not match"}
    return shown_sample(f"t{i}", f"question {i}", f"completion {i}", score, status, details)


def test_right_first_then_wrong_capped_per_side_and_infra_errors_left_out():
    samples = [sample(0, 0.0), sample(1, 1.0), sample(2, 0.0, "infra_error"), sample(3, 0.0)]
    samples += [sample(i, 1.0) for i in range(4, 9)] + [sample(9, 0.0), sample(10, 0.0)]
    picked = pick_samples(samples, per_side=3)
    assert [s.task_id for s in picked] == ["t1", "t4", "t5", "t0", "t3", "t9"]
    assert picked[3].reason == "the answer does not match" and picked[3].extracted == "0"


def test_threshold_and_clipping():
    picked = pick_samples([sample(0, 0.5), sample(1, 0.2)], threshold=0.5, per_side=1)
    assert [s.score for s in picked] == [0.5, 0.2]
    long = shown_sample("t", "q" * 1000, "c" * 1000, 1.0, "ok", {})
    assert len(long.completion) == MAX_CHARS and long.completion.endswith("…")
