"""What counts as an answer: relations read as their right side, the question restated never
scores, a number where the task is to compute one (issue 10: GRPO gamed all three)."""

from __future__ import annotations

import pytest

from grpo_env.environments.math import MathEnv, ReasoningGymMathEnv
from grpo_env.environments.math.answer_form import asserted_value, is_number, restates_question
from grpo_env.environments.math.checker import check_completion, mask_question
from grpo_env.types import Task

CHAIN_PROMPT = "State the final answer to the following arithmetic problem: 4 + 7 ="
CHAIN_TASK = Task(id="4+7", prompt=CHAIN_PROMPT, answer="11")

# The table of issue 10: what the checker scored 1.0 before, and what a careful grader says.
ISSUE_TABLE = [
    ("4 + 7 ≈ 99", 0.0),
    ("4+7 ≈7.07", 0.0),
    ("4 + 7", 0.0),
    ("\\boxed{4+7}", 0.0),
    ("The answer is 4 + 7.", 0.0),
    ("4 + 7 = 99", 0.0),
    ("3 + 2 ≈ 5.", 0.0),
    # what must still score
    ("4 + 7 = 11", 1.0),
    ("4 + 7 ≈ 11", 1.0),
    ("\\boxed{11}", 1.0),
    ("The answer is 11.", 1.0),
    ("4 + 7 = 5 + 6 = 11", 1.0),
    ("We add them and get 11", 1.0),  # last number, with the fallback on
]


@pytest.fixture(scope="module")
def chain_env():
    env = ReasoningGymMathEnv("chain_sum", size=20, last_number_fallback=True)
    yield env
    env.close()


def test_issue_table_through_the_env_the_trainer_uses(chain_env):
    assert chain_env.task_answer_kind(CHAIN_TASK) == "number"
    completions = [c for c, _ in ISSUE_TABLE]
    results = chain_env.score_many(CHAIN_TASK, completions)
    scored = {c: r.score for c, r in zip(completions, results, strict=True)}
    assert scored == dict(ISSUE_TABLE)


def test_restating_the_question_then_stopping_is_not_the_last_number(chain_env):
    # With the fallback, "so 4 + 7" used to end on 7; when 7 is the answer that scored.
    task = Task(id="0+7", prompt="Compute: 0 + 7 =", answer="7")
    echo, stated, restated = chain_env.score_many(
        task, ["Compute: 0 + 7 =", "so the sum is 7", "Let me see, 0 + 7"]
    )
    assert (echo.score, stated.score, restated.score) == (0.0, 1.0, 0.0)
    assert "0 + 7" not in mask_question("Let me see, 0 +7", "Compute: 0 + 7 =")
    assert mask_question("10 + 72 = 82", "Compute: 0 + 7 =") == "10 + 72 = 82"


def test_reasons_say_why_an_answer_was_refused():
    restated = check_completion("11", "\\boxed{4 + 7}", question=CHAIN_PROMPT)
    assert restated.details["method"] == "restates the question"
    assert "restates the question" in restated.details["reason"]
    not_number = check_completion("11", "\\boxed{2 \\cdot 5 + 1}", answer_kind="number")
    assert not_number.details["method"] == "not a number"
    no_value = check_completion("3", "\\boxed{\\approx 3}")
    assert no_value.details["method"] == "states no value"


@pytest.mark.parametrize(
    "answer, value",
    [
        ("11", "11"),
        ("4 + 7 = 11", "11"),
        ("x = 5", "5"),
        ("x \\approx 3.5", "3.5"),
        ("4+7 \\Rightarrow 11", "11"),
        ("a_n \\to 0", "0"),
        ("f(2) := 9", "9"),
        ("a = 7, b = 3", "7, 3"),
        ("1,234", "1,234"),
        ("\\frac{1}{2} + \\frac{1}{3} = \\frac{5}{6}", "\\frac{5}{6}"),
        ("x^2 = 4", "x^2 = 4"),  # an equation in an unknown stays whole
        ("x^2 \\approx 4", None),  # an approximation of an unknown's expression: no value
        ("\\approx 3", None),
        ("4 + 7 =", None),
        ("\\{x : x = 1\\}", "\\{x : x = 1\\}"),  # inside braces: not the answer's relation
    ],
)
def test_asserted_value(answer, value):
    assert asserted_value(answer) == value


@pytest.mark.parametrize(
    "answer, number",
    [
        ("11", True),
        ("-3.5", True),
        ("1,234", True),
        ("\\frac{3}{4}", True),
        ("3/4", True),
        ("50\\%", True),
        ("1.5e3", True),
        ("\\$18", True),
        ("18 dollars", True),
        ("(-5)", True),
        ("4 + 7", False),
        ("2 \\cdot 5", False),
        ("10^6", False),
        ("x", False),
        ("eleven", False),
    ],
)
def test_is_number(answer, number):
    assert is_number(answer) is number


def test_restated_question_rules():
    question = "Compute $\\sin 60^\\circ$ and simplify."
    assert restates_question("\\sin 60^\\circ", question, "\\frac{\\sqrt{3}}{2}")
    assert not restates_question("\\frac{\\sqrt 3}{2}", question, "\\frac{\\sqrt{3}}{2}")
    # arithmetic on the prompt's own numbers, still to be done
    word = "Tom has 3 boxes of 12 eggs. How many eggs?"
    assert restates_question("3 \\times 12", word, "36")
    assert not restates_question("36", word, "36")
    assert not restates_question("4 \\times 9", word, "36")  # numbers not from the prompt
    # a reference written as the prompt's expression is the answer
    choice = "Which is larger, $2^{10}$ or $10^3$?"
    assert not restates_question("2^{10}", choice, "2^{10}")


def test_math_form_keeps_equivalent_forms_but_refuses_the_question():
    task = Task(
        id="sin",
        prompt="Compute $\\sin 60^\\circ$.",
        answer="\\frac{\\sqrt{3}}{2}",
        metadata={"format": "math"},
    )
    env = MathEnv([task])
    try:
        assert env.task_answer_kind(task) == "expression"
        restated, equivalent, decimal = env.score_many(
            task,
            [
                "\\boxed{\\sin 60^\\circ}",
                "\\boxed{\\sqrt{3}/2}",
                "\\boxed{0.8660254}",
            ],
        )
        assert (restated.score, equivalent.score, decimal.score) == (0.0, 1.0, 1.0)
    finally:
        env.close()


def test_gsm8k_form_wants_a_number():
    task = Task(
        id="eggs",
        prompt="Tom has 3 boxes of 12 eggs. How many eggs?",
        answer="36",
        metadata={"format": "gsm8k"},
    )
    env = MathEnv([task])
    try:
        assert env.task_answer_kind(task) == "number"
        scores = [r.score for r in env.score_many(task, ["#### 3*12", "#### 36", "#### 36 eggs"])]
        assert scores == [0.0, 1.0, 1.0]
    finally:
        env.close()


def test_a_bad_answer_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="answer_kind must be one of"):
        MathEnv([CHAIN_TASK], answer_kind="integer")


def test_prose_conclusion_is_an_env_option_off_by_default():
    task = Task(id="p", prompt="What is 6 times 7?", answer="42", metadata={"format": "math"})
    prose = "I multiplied the two numbers. So the total comes to 42."
    strict, reading = MathEnv([task]), MathEnv([task], prose_conclusion=True)
    try:
        (off,) = strict.score_many(task, [prose])
        (on,) = reading.score_many(task, [prose])
        assert (off.score, on.score) == (0.0, 1.0)
        # the question restated stays refused when prose is read
        (echo,) = reading.score_many(task, ["So the answer comes to 6 \\times 7."])
        assert echo.score == 0.0
    finally:
        strict.close()
        reading.close()
