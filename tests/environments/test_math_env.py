"""The math environments: contract checks, format gating, group scoring, held-out splits."""

from __future__ import annotations

import re

import pytest

import grpo_env
from grpo_env.checks import run_env_checks
from grpo_env.environments.math import MATH_SYSTEM_PROMPT, MathEnv, ReasoningGymMathEnv
from grpo_env.environments.math.data import shipped_math_tasks
from grpo_env.types import Status, Task

MATH_ENV_IDS = [
    "math-v0",
    "math-gsm-symbolic-v0",
    "math-basic-arithmetic-v0",
    "math-chain-sum-v0",
    "math-countdown-v0",
]
TASKS = [
    {"id": "half", "prompt": "What is 1/2 as a decimal?", "answer": "0.5"},
    {"id": "roots", "prompt": "Roots of x^2-5x+6?", "answer": "2, 3"},
]


@pytest.mark.slow
@pytest.mark.parametrize("env_id", MATH_ENV_IDS)
def test_env_passes_the_env_checks(env_id):
    outcomes = run_env_checks(env_id)
    failed = [o for o in outcomes if o.passed is False]
    assert not failed, failed
    assert all(o.passed for o in outcomes), outcomes  # gold completions exist: nothing skipped


def test_registered_ids_resolve():
    for env_id in MATH_ENV_IDS:
        assert grpo_env.envs.resolve(env_id).id == env_id
    assert grpo_env.envs.resolve("math").id == "math-v0"


def test_step_scores_the_final_answer():
    env = MathEnv(TASKS)
    obs, info = env.reset(options={"task_id": "half"})
    assert obs[0] == {"role": "system", "content": MATH_SYSTEM_PROMPT}
    _, reward, terminated, truncated, info = env.step("1 divided by 2 is \\boxed{\\frac{1}{2}}")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["verify"].status is Status.OK
    assert info["components"] == {"correct": 1.0}
    env.reset(options={"task_id": "half"})
    _, reward, _, _, info = env.step("\\boxed{0.25}")
    assert reward == 0.0
    assert info["verify"].details["correct"]["extracted"] == "0.25"


def test_format_gates_correctness():
    env = MathEnv(TASKS, require_format=True, format_weight=0.5)
    assert env.reward_components == ("format", "correct")
    task = env.tasks.get("half")
    good = "<think>\n1/2 = 0.5\n</think>\n<answer>\n\\boxed{0.5}\n</answer>"
    right_but_unformatted = "It is \\boxed{0.5}."
    wrong = "<think>\nhmm\n</think>\n<answer>\n0.2\n</answer>"
    results = env.score_many(task, [good, right_but_unformatted, wrong])
    assert [r.score for r in results] == [1.5, 0.0, 0.5]
    assert results[0].components["correct"] == 1.0 and results[0].components["format"] == 1.0
    assert results[1].status is Status.INVALID_FORMAT
    assert results[1].components["correct"] == 0.0  # gated: not even checked
    assert results[2].components == {**results[2].components, "format": 1.0, "correct": 0.0}
    assert "<answer>" in env.system_prompt


def test_score_many_matches_step_by_step_scoring():
    env = MathEnv(TASKS)
    task = env.tasks.get("roots")
    completions = [
        "\\boxed{2, 3}",
        "\\boxed{3, 2}",
        "$\\boxed{2}$ and $\\boxed{3}$",
        "\\boxed{2}",
        "no idea",
        "\\boxed{2, 3}",
        "\\boxed{\\{2,3\\}}",
        "The answer is x = 2 or x = 3",
    ]
    grouped = env.score_many(task, completions)
    one_by_one = [env.verify(task, c) for c in completions]
    assert grouped == one_by_one
    assert [r.score for r in grouped] == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_gold_completion_earns_full_reward():
    for require_format in (False, True):
        env = MathEnv(split="test", require_format=require_format)
        for task in env.tasks:
            gold = env.gold_completion(task)
            assert gold is not None
            assert env.verify(task, gold).score == env.rubric.max_score, task.id


def test_system_prompt_can_be_replaced():
    env = MathEnv(TASKS, system_prompt="Answer with #### N.")
    obs, _ = env.reset(seed=0)
    assert obs[0]["content"] == "Answer with #### N."


def test_shipped_splits_are_disjoint():
    train, test = shipped_math_tasks("train"), shipped_math_tasks("test")
    assert len(train) >= 40 and len(test) >= 20
    assert not {t.id for t in train} & {t.id for t in test}
    assert not {t.prompt for t in train} & {t.prompt for t in test}


def test_math_env_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="split selects the shipped dataset"):
        MathEnv(path=tmp_path / "x.jsonl", split="test")
    with pytest.raises(ValueError, match="not both"):
        MathEnv(TASKS, path=tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="timeout"):
        MathEnv(TASKS, timeout=0)


def test_missing_reference_answer_is_an_infra_error_not_a_zero():
    env = MathEnv([Task(id="t", prompt="?")])
    env.reset()
    _, reward, _, _, info = env.step("\\boxed{1}")
    assert info["verify"].status is Status.INFRA_ERROR
    assert reward == 0.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "config"),
    [
        # A tiny question space (19 x 19 sums) makes collisions certain if the split leaks.
        ("chain_sum", {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}),
        ("countdown", {}),
    ],
)
def test_reasoning_gym_held_out_split_is_disjoint_from_train(dataset, config):
    test_size = 8 if dataset == "countdown" else 20
    train = ReasoningGymMathEnv(dataset, split="train", size=30, seed=3, **config)
    test = ReasoningGymMathEnv(dataset, split="test", size=test_size, seed=3, **config)
    train_questions = {t.prompt for t in train.tasks}
    test_questions = {t.prompt for t in test.tasks}
    assert len(test_questions) == test_size
    assert not train_questions & test_questions
    # Same seed, same tasks: the split is fixed.
    again = ReasoningGymMathEnv(dataset, split="test", size=test_size, seed=3, **config)
    assert [t.prompt for t in again.tasks] == [t.prompt for t in test.tasks]


def test_reasoning_gym_config_passes_through():
    env = grpo_env.make(
        "math-chain-sum-v0", size=30, min_terms=2, max_terms=2, min_digits=1, max_digits=2
    )
    for task in env.unwrapped.tasks:
        expression = task.prompt.split(":")[-1]
        assert len(re.findall(r"\d+", expression)) == 2, task.prompt
        assert all(len(n) <= 2 for n in re.findall(r"\d+", expression))


def test_chain_sum_answers_are_checked_for_equivalence():
    env = ReasoningGymMathEnv("chain_sum", size=5, seed=1)
    task = env.tasks[0]
    answer = int(task.answer)
    results = env.score_many(
        task, [f"\\boxed{{{answer}}}", f"The answer is {answer}.0", f"\\boxed{{{answer + 1}}}"]
    )
    assert [r.score for r in results] == [1.0, 1.0, 0.0]


def test_countdown_uses_reasoning_gyms_own_scorer():
    env = ReasoningGymMathEnv("countdown", size=3, seed=0)
    assert env.scorer == "reasoning_gym"
    task = env.tasks[0]
    numbers = task.metadata["entry_metadata"]["numbers"]
    reference = str(task.answer)
    # The dataset's scorer evaluates the expression (any spelling reaching the target with
    # the given numbers is right); using the numbers differently is wrong.
    results = env.score_many(
        task,
        [
            f"\\boxed{{{reference}}}",
            f"The answer is ({reference}).",
            f"\\boxed{{{' + '.join(str(n) for n in numbers)}}}",
            "no expression",
        ],
    )
    assert [r.score for r in results[:2]] == [1.0, 1.0]
    target = task.metadata["entry_metadata"]["target"]
    assert results[2].score == (1.0 if sum(numbers) == target else 0.0)
    assert results[3].score == 0.0 and results[3].status is Status.INVALID_FORMAT
    assert "reasoning-gym score" in results[0].details["correct"]["method"]
