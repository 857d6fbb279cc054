"""Finding the final answer in a completion (pure string work, no worker processes)."""

from __future__ import annotations

import pytest

from grpo_env.environments.math.extraction import (
    extract_answer,
    find_boxed,
    last_boxed,
    reference_answer,
)


def test_boxed_keeps_nested_braces():
    text = r"so $x = \boxed{\frac{\sqrt{3}}{2}}$."
    assert last_boxed(text) == r"\frac{\sqrt{3}}{2}"


def test_boxed_escaped_braces_are_content_not_grouping():
    assert last_boxed(r"\boxed{\{1, 2\}}") == r"\{1, 2\}"


def test_fbox_and_space_forms():
    assert last_boxed(r"\fbox{7}") == "7"
    assert last_boxed(r"thus \boxed 5$") == "5"


def test_unclosed_box_states_nothing():
    # A completion cut off by the token limit has not given that answer.
    assert find_boxed(r"first \boxed{3} then \boxed{4") == find_boxed(r"first \boxed{3}")
    assert extract_answer(r"\boxed{12").answers == ()


def test_last_box_wins_when_boxes_agree():
    extraction = extract_answer(r"We get \boxed{5}. Checking again: \boxed{ 5 }.")
    assert extraction.answers == ("5",)
    assert extraction.source == "boxed"


def test_different_boxes_are_all_candidates():
    extraction = extract_answer(r"It is \boxed{3}. Hmm, or rather \boxed{4}.")
    assert extraction.answers == ("3", "4")
    assert extraction.joined is None  # prose between them: not one list


def test_adjacent_boxes_read_as_one_list():
    extraction = extract_answer(r"The roots are $\boxed{2}$ and $\boxed{3}$.")
    assert extraction.answers == ("2", "3")
    assert extraction.joined == "2, 3"


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        ("Adding up gives 72 cookies.\n#### 72", "72"),
        ("#### 1,234\n", "1,234"),
        ("The answer is 3.5.", "3.5"),
        ("So the final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
        ("**Answer:** 42", "42"),
        ("Final Answer: The final answer is $28 \\%$. I hope it is correct.", "28 \\%"),
        ("Thus the answer is $x = 3.5$. Done.", "x = 3.5"),
    ],
)
def test_marked_answers(completion, answer):
    assert extract_answer(completion).answers == (answer,)


def test_box_outranks_answer_statement():
    extraction = extract_answer("The answer is 4, so \\boxed{5}")
    assert extraction.answers == ("5",)


def test_last_answer_statement_wins():
    text = "At first the answer is 4? No. Rechecking, the answer is 6."
    assert extract_answer(text).answers == ("6",)


def test_answer_block_scopes_extraction():
    text = "<think>maybe \\boxed{3}</think>\n<answer>\nThe answer is \\boxed{5}\n</answer>"
    extraction = extract_answer(text)
    assert extraction.answers == ("5",)
    assert extraction.source == "answer_tag/boxed"


def test_answer_block_without_marker_is_the_answer():
    assert extract_answer("<think>x</think><answer> 17 </answer>").answers == ("17",)


def test_several_answer_blocks_disagreeing():
    extraction = extract_answer("<answer>1</answer> <answer>2</answer>")
    assert extraction.answers == ("1", "2")


@pytest.mark.parametrize(
    "completion",
    [
        "The answer is either 3 or 4.",
        "The answer is 3 or 4",
        r"\boxed{3 \text{ or } 4}",
    ],
)
def test_hedging_gives_several_candidates(completion):
    assert extract_answer(completion).answers == ("3", "4")


def test_or_inside_brackets_is_not_a_hedge():
    assert extract_answer(r"\boxed{\{x : x < 0 \text{ or } x > 1\}}").answers == (
        r"\{x : x < 0 \text{ or } x > 1\}",
    )


def test_last_number_fallback_is_off_by_default():
    text = "I computed 12 and then 15 apples"
    assert not extract_answer(text).found
    fallback = extract_answer(text, last_number_fallback=True)
    assert fallback.answers == ("15",)
    assert fallback.source == "last_number"


def test_no_answer():
    assert extract_answer("").answers == ()
    assert extract_answer("I do not know.").source is None


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        ("7,425,000", "7,425,000"),
        ("$\\frac{1}{3}$", "\\frac{1}{3}"),
        ("x = 5", "x = 5"),
        ("Evelyn", "Evelyn"),
    ],
)
def test_a_completion_that_is_only_an_answer(completion, answer):
    extraction = extract_answer(completion)
    assert extraction.answers == (answer,)
    assert extraction.source == "whole"


def test_prose_without_a_marked_answer_states_nothing():
    assert not extract_answer("She sells 9 eggs, so she makes 18 dollars.").found
    assert extract_answer("either 3 or 4").answers == ("3", "4")


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("Worked out.\n#### 1,260", "1,260"),
        (r"So it is $\boxed{\frac{5}{6}}$.", r"\frac{5}{6}"),
        ("  72 ", "72"),
        ("$x = 2$", "x = 2"),
    ],
)
def test_reference_answer(gold, answer):
    assert reference_answer(gold) == answer
