"""Answers in notations real models write, one rule per kind (issue 10, "answers it rejects
but should accept"), each next to the wrong answers that must still score 0."""

from __future__ import annotations

import pytest

from grpo_env.environments.math.checker import check_completion
from grpo_env.environments.math.extraction import extract_answer, own_turn
from grpo_env.environments.math.readings import (
    choice_letter,
    chosen_letter,
    clock_seconds,
    decimal_comma_number,
)


def score(gold: str, completion: str) -> float:
    return check_completion(gold, completion).score


def cases(right: list[tuple[str, str]], wrong: list[tuple[str, str]]) -> list:
    return [pytest.param(g, c, 1.0, id=f"right:{c[:40]}") for g, c in right] + [
        pytest.param(g, c, 0.0, id=f"wrong:{c[:40]}") for g, c in wrong
    ]


# ----- the completion stops where the model's turn ends --------------------------------------


def test_own_turn_cuts_at_the_first_turn_token():
    text = "The answer is 14.<|im_start|>user\nAnd 3 + 5?<|im_end|>\n<|im_start|>assistant\n8"
    assert own_turn(text) == "The answer is 14."
    assert own_turn("#### 29<|endoftext|>The answer is 42.") == "#### 29"
    assert own_turn("no turn token here") == "no turn token here"


@pytest.mark.parametrize(
    ("gold", "completion", "expected"),
    cases(
        right=[
            ("14", "The answer is 14.<|im_start|>user\nWhat is 3 + 5?<|im_end|>\nThe answer is 8."),
            ("29", "#### 29<|im_end|>\n<|im_start|>user\nNow 6 * 7.<|im_end|>\n\\boxed{42}"),
            ("5", "Answer: 5<|endoftext|>The answer is 10."),
        ],
        wrong=[
            # The value written in an invented next turn answers that turn, not this task.
            ("8", "The answer is 14.<|im_start|>user\nWhat is 3 + 5?<|im_end|>\nThe answer is 8."),
            ("42", "#### 29<|im_end|>\n<|im_start|>user\nNow 6 * 7.<|im_end|>\n\\boxed{42}"),
            ("14", "<|im_start|>assistant\nThe answer is 14."),
        ],
    ),
)
def test_chat_turn_run_on(gold, completion, expected):
    assert score(gold, completion) == expected


# ----- answer markers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        ("Answer:\n$$\n14\n$$", "14"),
        ("Final answer:\n\\[ \\frac{3}{4} \\]", "\\frac{3}{4}"),
        ("Hence $y \\leq 3$ is the answer.", "y \\leq 3"),
        ("Thus $x = 3$ is our final answer.", "x = 3"),
        ("So 42 is the answer.", "42"),
        ("Le résultat vaut 1,25.", "1,25"),
        ("Das Ergebnis ist 0,4.", "0,4"),
        ("Ergebnis 0,4", "0,4"),
        ("La respuesta es 3,75.", "3,75"),
        ("Réponse : $0,75$", "0,75"),
        ("The correct option is (B) 17.", "(B) 17"),
    ],
)
def test_more_answer_markers(completion, answer):
    assert extract_answer("Working.\n\n" + completion).answers == (answer,)


def test_the_answer_to_the_problem_is_a_marker():
    # The model's stated answer is 5; 120 only appears in its justification.
    assert score("120", "The answer to this problem is 5, because 5! = 120.") == 0.0
    assert score("120", "Working.\n\nThe answer to this problem is 120.") == 1.0


def test_a_trailing_marker_does_not_outrank_a_later_statement():
    text = "So 3 is the answer to part (a).\n\nThe answer is 5."
    assert extract_answer(text).answers == ("5",)


# ----- numbers: LaTeX thousands separators and decimal commas --------------------------------


@pytest.mark.parametrize(
    ("gold", "completion", "expected"),
    cases(
        right=[
            ("4096", "The answer is $4,\\! 096$."),
            ("4096", "\\boxed{4,\\!096}"),
            ("65536", "The answer is $65{,}536$."),
            ("10000", "\\boxed{10,\\! 000}"),
            ("(4, 96)", "\\boxed{(4,\\! 96)}"),
        ],
        wrong=[
            ("4096", "The answer is $4,\\! 069$."),
            ("4096", "\\boxed{40{,}960}"),
        ],
    ),
)
def test_latex_thousands_separators(gold, completion, expected):
    assert score(gold, completion) == expected


@pytest.mark.parametrize(
    ("gold", "completion", "expected"),
    cases(
        right=[
            ("1.25", "Le résultat vaut 1,25."),
            ("0.4", "Ergebnis 0,4"),
            ("2.5", "Die Antwort ist 2,5 Meter."),
            ("0.125", "La risposta è 0,125."),
            ("12.5", "La réponse est 12,5 %."),
            ("3.75", "La respuesta es $3{,}75$."),
        ],
        wrong=[
            ("1.25", "Le résultat vaut 1,35."),
            ("0.4", "Ergebnis 0,04"),
            ("2.5", "Die Antwort ist 2,5 oder 3,5."),
            ("1.5", "The answer is $(1, 5)$."),
            # Three digits after the comma are a thousands group in English.
            ("1.25", "The answer is 1,250."),
            # The reference is a list: the comma separates its items.
            ("1, 25", "The answer is 1.25."),
        ],
    ),
)
def test_decimal_commas(gold, completion, expected):
    assert score(gold, completion) == expected


def test_decimal_comma_reading_is_narrow():
    assert decimal_comma_number("1,25").value == pytest.approx(1.25)
    assert decimal_comma_number("0,125").value == pytest.approx(0.125)
    assert decimal_comma_number("6,4 kg").value == pytest.approx(6.4)
    assert decimal_comma_number("1,250") is None  # a thousands group
    assert decimal_comma_number("1,5 and 2,5") is None  # two numbers
    assert decimal_comma_number("(1,5)") is None  # a pair
    assert decimal_comma_number("1.25") is None  # no comma at all


# ----- matrices, inequalities ------------------------------------------------------------------

MATRIX = "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"
COLUMN = "\\begin{pmatrix} 2 \\\\ -1 \\\\ 3 \\end{pmatrix}"


@pytest.mark.parametrize(
    ("gold", "completion", "expected"),
    cases(
        right=[
            (MATRIX, "\\boxed{\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}}"),
            (MATRIX, "\\boxed{\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]}"),
            (COLUMN, "\\boxed{\\left[\\begin{array}{c} 2 \\\\ -1 \\\\ 3 \\end{array}\\right]}"),
            (COLUMN, "\\boxed{\\left(\\begin{array}{r} 2 \\\\ -1 \\\\ 3 \\end{array}\\right)}"),
        ],
        wrong=[
            (MATRIX, "\\boxed{\\left[\\begin{array}{cc} 1 & 3 \\\\ 2 & 4 \\end{array}\\right]}"),
            (COLUMN, "\\boxed{\\left[\\begin{array}{c} 2 \\\\ 1 \\\\ 3 \\end{array}\\right]}"),
        ],
    ),
)
def test_matrices_in_any_bracket_notation(gold, completion, expected):
    assert score(gold, completion) == expected


@pytest.mark.parametrize(
    ("gold", "completion", "expected"),
    cases(
        right=[
            ("-1 < x < 3", "\\boxed{x > -1 \\text{ and } x < 3}"),
            ("(-1, 3)", "\\boxed{x > -1 \\text{ and } x < 3}"),
            ("t \\in [\\sqrt{3}, +\\infty)", "\\boxed{t \\geq \\sqrt{3}}"),
            ("x \\neq 2", "\\boxed{x != 2}"),
        ],
        wrong=[
            ("-1 < x < 3", "\\boxed{x > -1 \\text{ and } x \\le 3}"),
            ("-1 < x < 3", "\\boxed{x > -1 \\text{ or } x < 3}"),
            ("t \\in [\\sqrt{3}, +\\infty)", "\\boxed{t > \\sqrt{3}}"),
        ],
    ),
)
def test_inequalities_joined_by_and_are_an_intersection(gold, completion, expected):
    assert score(gold, completion) == expected


# ----- several boxes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "completion", "expected"),
    cases(
        right=[
            ("a = 7, b = 3", "So $\\boxed{a = 7}$.\n\nSubstituting back, $\\boxed{b = 3}$."),
            ("x = 2, y = -1", "From (1), $\\boxed{x = 2}$. From (2), $\\boxed{y = -1}$."),
            (
                "(1, 4), (5, 0)",
                "The first is $\\boxed{(1, 4)}$.\n\nThe second is $\\boxed{(5, 0)}$.",
            ),
            ("2, 3", "$x_1 = \\boxed{2}$, $x_2 = \\boxed{3}$"),
        ],
        wrong=[
            # Two different answers to one question.
            ("7", "We find \\boxed{7}. Then the second part gives \\boxed{8}."),
            # A correction is not a list, even when the two values make up the reference.
            ("2, 3", "The answer is \\boxed{2}. Hmm, actually the answer is \\boxed{3}."),
            ("2, 3", "\\boxed{2}, or maybe \\boxed{3}"),
            ("a = 7, b = 3", "\\boxed{a = 7} or \\boxed{a = 3}"),
            ("a = 7, b = 3", "\\boxed{a = 7}. From the second, \\boxed{b = 4}."),
        ],
    ),
)
def test_boxes_that_together_are_the_answer(gold, completion, expected):
    assert score(gold, completion) == expected


# ----- multiple choice -------------------------------------------------------------------------


def test_choice_letters():
    assert choice_letter("B") == "B"
    assert choice_letter("(B)") == "B"
    assert choice_letter("17") is None
    assert chosen_letter("B. 17 apples") == "B"
    assert chosen_letter("(B) 17") == "B"
    assert chosen_letter("C: \\frac{3}{4}") == "C"
    assert chosen_letter("A = 5") is None  # a variable, not a choice
    assert chosen_letter("Bx + 1") is None
    assert chosen_letter("B, C") is None
    assert chosen_letter("A B C D E") is None  # every choice at once
    assert chosen_letter("(A) and (C)") is None
    assert chosen_letter("D. None of the above") == "D"
    assert chosen_letter("C. $\\Delta = 4$") == "C"


@pytest.mark.parametrize(
    ("gold", "completion", "expected"),
    cases(
        right=[
            ("B", "The answer is B. 17 apples"),
            ("B", "\\boxed{B. 17}"),
            ("B", "Answer: B) 17 apples"),
            ("C", "\\boxed{C. \\frac{3}{4}}"),
            ("D", "\\boxed{\\textbf{(D)}\\ 12}"),
            ("(B)", "The answer is B. 17 apples"),
        ],
        wrong=[
            ("B", "The answer is C. 17 apples"),
            ("B", "\\boxed{B, C}"),
            ("B", "The answer is (B) or (C)"),
            ("C", "The answer is B: $\\frac{3}{4}$"),
            ("A", "\\boxed{A B C D E}"),
            ("A", "The answer is (A) (B) (C) (D)."),
        ],
    ),
)
def test_multiple_choice_letter_with_option_text(gold, completion, expected):
    assert score(gold, completion) == expected


# ----- clock times -----------------------------------------------------------------------------


def test_clock_seconds():
    assert clock_seconds("14:05") == clock_seconds("14:05:00") == clock_seconds("2:05 PM")
    assert clock_seconds("2:05\\text{ p.m.}") == clock_seconds("14:05")
    assert clock_seconds("12:15 AM") == clock_seconds("00:15")
    assert clock_seconds("12:00 PM") == clock_seconds("12:00")
    assert clock_seconds("1:2") is None  # a ratio
    assert clock_seconds("25:00") is None
    assert clock_seconds("13:00 PM") is None
    assert clock_seconds("3:75") is None


@pytest.mark.parametrize(
    ("gold", "completion", "expected"),
    cases(
        right=[
            ("14:05", "The answer is 14:05:00"),
            ("14:05", "The answer is 2:05 PM"),
            ("14:05", "\\boxed{2:05\\text{ p.m.}}"),
            ("2:05 PM", "The answer is 14:05."),
            ("9:30 AM", "\\boxed{09:30}"),
            # The reference names its half of the day; the answer did not contradict it.
            ("2:05 PM", "The answer is 2:05."),
        ],
        wrong=[
            ("14:05", "The answer is 2:05 AM"),
            ("14:05", "The answer is 14:05:30"),
            ("12:15 AM", "\\boxed{12:15 PM}"),
            ("9:30 AM", "\\boxed{21:30}"),
            ("1:2", "The ratio is \\boxed{2:4}"),
            ("14:05", "The answer is 2:05."),
            ("2:05 PM", "The answer is 02:05."),
        ],
    ),
)
def test_clock_times(gold, completion, expected):
    assert score(gold, completion) == expected


# ----- prose conclusions (an env option) -------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        ("Solving the system, the point is $(4, 1)$.", "(4, 1)"),
        ("She had 20 and gave away 8. Therefore she has 12 apples left.", "12"),
        ("We subtract 3.\n\nThis gives $2x = 14$, so $x = 7$.", "x = 7"),
        ("Adding up the purchases, in total he spends \\$45.", "45"),
        ("Checking all cases, we conclude that there are 3 solutions.", "3"),
        ("Working it out.\n\nB. 17 apples", "B. 17 apples"),
        ("Working it out.\n\n(D) None of the above", "(D) None of the above"),
    ],
)
def test_prose_conclusion_reads_the_closing_sentence(completion, answer):
    assert not extract_answer(completion).found  # off by default
    extraction = extract_answer(completion, prose_conclusion=True)
    assert extraction.answers == (answer,)
    assert extraction.source == "prose"


@pytest.mark.parametrize(
    "completion",
    [
        "Thus the remainder is either 5 or 6.",  # a hedge
        "I am not sure. Maybe 9 or 10?",  # a question
        "There are 25 students and 30 desks in the room.",  # two values
        "He buys three items for 15 dollars each.",  # no conclusion
        "We need to find how many solutions there are.",  # nothing after the copula
        "So it is probably around 12 apples.",
    ],
)
def test_prose_that_concludes_nothing_states_nothing(completion):
    assert not extract_answer(completion, prose_conclusion=True).found
