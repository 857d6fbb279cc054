"""The steps of a chain_sum answer (process supervision), by hand."""

import pytest

from grpo_env.environments.math.chain_steps import chain_sum_steps, chain_terms, partial_sums
from grpo_env.types import Task, VerifyResult


def test_terms_and_partial_sums():
    assert chain_terms("4 - 1 - 7") == [4, -1, -7]
    assert chain_terms("57 + 87 + 70") == [57, 87, 70]
    assert partial_sums([4, -1, -7]) == {3, -4}
    assert partial_sums([57, 87, 70]) == {144, 214}


def test_right_partial_results_earn_one_each_then_the_outcome():
    text = "4 - 1 - 7 = 3 - 7 = -4"
    # "= 3" ends at 13, "= -4" at 22; then the final step (the verdict) at the end.
    assert chain_sum_steps([4, -1, -7], text, 1.0) == [(13, 1.0), (22, 1.0), (22, 1.0)]
    thousands = "57 + 87 + 70 = 144 + 70 = 214, so 1,234 = 1,234? No: =214.0"
    # 144 and 214 pay; 1,234 (thousands commas) is a wrong value; "=214.0" repeats 214.
    assert chain_sum_steps([57, 87, 70], thousands, 1.0) == [
        (18, 1.0),
        (29, 1.0),
        (47, 0.0),
        (len(thousands), 1.0),
    ]


def test_wrong_restated_and_repeated_results():
    terms = [4, -1, -7]
    # Wrong: 5 is no partial sum (0). Restated: 7 and -1 are the question's numbers (no step).
    # Repeated: the second "= 3" counts nothing. The answer is wrong: final step 0.
    text = "a = 7, b = -1. 4 - 1 = 3, again = 3, then = 5 = -4 → \\boxed{-5}"
    assert chain_sum_steps(terms, text, 0.0) == [
        (text.index("= 3") + 3, 1.0),
        (text.index("= 5") + 3, 0.0),
        (text.index("= -4") + 4, 1.0),
        (len(text), 0.0),
    ]
    # No "=" at all: only the outcome; "==", "<=" and ">=" are not results.
    assert chain_sum_steps(terms, "\\boxed{-4}", 1.0) == [(10, 1.0)]
    assert chain_sum_steps(terms, "x == 3, y <= 3, z >= 3", 0.0) == [(22, 0.0)]


def test_spraying_values_cannot_farm_steps():
    terms = [4, -1, -7]
    spray = " ".join(f"= {v}" for v in [*range(-10, 11), *range(-10, 11)])
    steps = chain_sum_steps(terms, spray, 0.0)
    rewards = [r for _, r in steps[:-1]]
    # Each partial sum pays once (3 and -4); every other distinct guess is a 0 step.
    # 4, 1, -1, 7 and -7 are the question's numbers: no steps.
    assert sum(rewards) == 2 and len(rewards) == 21 - 5


def test_the_env_hook_scores_chain_sum_only():
    from grpo_env.environments.math.env import ReasoningGymMathEnv

    env = ReasoningGymMathEnv("chain_sum", size=5, seed=1)
    task = env.tasks[0]  # 4 - 1 - 7 = -4
    assert task.metadata["entry_metadata"]["expression"] == "4 - 1 - 7"
    completion = "4 - 1 = 3, 3 - 7 = -4. \\boxed{-4}"
    (result,) = env.score_many(task, [completion])
    assert result.score == 1.0
    assert env.safe_step_rewards(task, completion, result) == [(9, 1.0), (21, 1.0), (33, 1.0)]
    # The prompt alone gives the terms when the metadata has no expression.
    bare = Task(id="b", prompt=task.prompt, answer=task.answer)
    assert env.step_rewards(bare, completion, result) == [(9, 1.0), (21, 1.0), (33, 1.0)]
    other = ReasoningGymMathEnv("basic_arithmetic", size=2, seed=0)
    assert other.step_rewards(other.tasks[0], "= 3", VerifyResult(score=0.0)) is None


def test_malformed_steps_are_refused():
    from grpo_env.env import VerifiableEnv

    class Bad(VerifiableEnv):
        def step_rewards(self, task, completion, result):
            return [(len(completion) + 1, 1.0)]

    env = Bad([Task(id="t", prompt="?")], rubric=lambda task, completion: 0.0)
    with pytest.raises(ValueError, match="bad step"):
        env.safe_step_rewards(env.tasks[0], "abc", VerifyResult(score=0.0))
