# ruff: noqa: E501  (long literal completions read better on one line)
"""Build ``notation_set.jsonl``: a labelled evaluation set of answers in the notations real
models and people write, separate from the tuning set (tests/environments/data/).

    python bench/data/build_notation_set.py > bench/data/notation_set.jsonl

Every case is written here by hand as (gold, completion, correct): a notation family, then
right answers in it and wrong ones beside them (near misses, wrong values, hedges, the right
value for a different question). Labels are a careful grader's reading, decided case by
case; the ambiguous ones (``1,250`` against 1.25 in English prose) are left out rather than
guessed. See bench/data/README.md.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

Case = dict[str, object]


def case(
    gold: str,
    completion: str,
    correct: bool,
    category: str,
    note: str = "",
    question: str | None = None,
) -> Case:
    row: Case = {
        "gold": gold,
        "completion": completion,
        "correct": correct,
        "category": category,
        "note": note,
        "false_positive": False,
    }
    if question is not None:  # the checker refuses the question restated as the answer
        row["question"] = question
    return row


WORK = "Let me work it out step by step.\n\n"


def marker_delimiters() -> Iterator[Case]:
    # An answer marker followed by math delimiters.
    templates = [
        "Answer $ {v} $",
        "Answer \\( {v} \\)",
        "Answer $$ {v} $$",
        "Answer \\[ {v} \\]",
        "**Answer:** $ {v} $",
        "The final answer is ${v}$.",
        "Final answer: \\( {v} \\).",
        "The answer is: $$ {v} $$",
        "Answer:\n$$\n{v}\n$$",
    ]
    values = [
        ("14", "14", "15"),
        ("2048", "2,048", "2,084"),
        ("\\frac{3}{4}", "\\frac{3}{4}", "\\frac{4}{3}"),
        ("-7", "-7", "7"),
        ("0.25", "0.25", "0.2"),
    ]
    for i, template in enumerate(templates):
        for j, (gold, right, wrong) in enumerate(values):
            yield case(gold, WORK + template.format(v=right), True, "marker_delimiters")
            if (i + j) % 2:
                yield case(gold, WORK + template.format(v=wrong), False, "marker_delimiters")
    yield case("2048", "The final answer is $2,048$.", True, "marker_delimiters", "issue")
    yield case(
        "2048", "The final answer is $2,048$. I hope it is correct.", True, "marker_delimiters"
    )
    yield case("1024", "The final answer is $2,048$.", False, "marker_delimiters")
    yield case("14", "Answer $ 14 $ or $ 15 $", False, "marker_delimiters", "hedge")


def thousands() -> Iterator[Case]:
    right = {
        "4096": [
            "4,\\! 096",
            "4,\\!096",
            "4{,}096",
            "4\\,096",
            "4\\;096",
            "4\u2009096",
            "4\u202f096",
            "4\\ 096",
            "4,096",
        ],
        "65536": ["65,\\! 536", "65{,}536", "65\\,536", "65\u2009536", "65\\!,\\!536"],
        "1234567": ["1{,}234{,}567", "1,\\!234,\\!567", "1\\,234\\,567", "1\u2009234\u2009567"],
        "10000": ["10{,}000", "10,\\! 000", "10\\,000"],
    }
    wrong = {
        "4096": ["4,\\! 069", "4{,}906", "4\\,095", "40{,}960"],
        "65536": ["65,\\! 535", "6{,}5536", "65\\,563"],
        "1234567": ["1{,}234{,}576", "1,\\!243,\\!567"],
        "10000": ["100{,}000", "1{,}000"],
    }
    shapes = [
        "The answer is ${v}$.",
        "\\boxed{{{v}}}",
        "So there are ${v}$ ways.\n\n**Answer:** ${v}$",
        "Therefore the final answer is $\\boxed{{{v}}}$.",
    ]
    for gold, forms in right.items():
        for k, form in enumerate(forms):
            for shape in (shapes[k % len(shapes)], shapes[(k + 2) % len(shapes)]):
                yield case(gold, WORK + shape.format(v=form), True, "thousands")
    for gold, forms in wrong.items():
        for k, form in enumerate(forms):
            yield case(
                gold, WORK + shapes[(k + 1) % len(shapes)].format(v=form), False, "thousands"
            )
    # A list is not a thousands separator when the reference is a list.
    yield case("4, 96", "The answer is $4, 96$.", True, "thousands")
    yield case("(4, 96)", "The point is \\boxed{(4,\\! 96)}", True, "thousands")


def decimal_comma() -> Iterator[Case]:
    right = [
        ("1.25", "Le résultat vaut 1,25."),
        ("1.25", "Donc le résultat vaut $1,25$."),
        ("0.4", "Ergebnis 0,4"),
        ("0.4", "Das Ergebnis ist 0,4."),
        ("3.75", "La respuesta es 3,75."),
        ("3.75", "Por lo tanto, la respuesta es $3{,}75$."),
        ("2.5", "Die Antwort ist 2,5 Meter."),
        ("0.125", "La risposta è 0,125."),
        ("12.5", "La réponse est 12,5 %."),
        ("12.5", "Resposta: 12,5"),
        ("0.75", "Réponse : $0,75$"),
        ("6.4", "Ergebnis: 6,4 kg"),
        ("1.5", "\\boxed{1,5}"),
        ("0.05", "La réponse est 0,05."),
    ]
    for gold, completion in right:
        yield case(gold, WORK + completion, True, "decimal_comma")
    wrong = [
        ("1.25", "Le résultat vaut 1,35."),
        ("0.4", "Ergebnis 0,04"),
        ("0.4", "Das Ergebnis ist 4,0."),
        ("3.75", "La respuesta es 3,57."),
        ("2.5", "Die Antwort ist 2,5 oder 3,5."),
        ("0.125", "La risposta è 0,25."),
        ("12.5", "La réponse est 1,25."),
        ("6.4", "Ergebnis: 64 kg"),
        ("1.5", "\\boxed{1,6}"),
        ("0.75", "Réponse : $0,7$"),
        # A pair is not a decimal: the reference is one number.
        ("1.5", "The answer is $(1, 5)$."),
    ]
    for gold, completion in wrong:
        yield case(gold, WORK + completion, False, "decimal_comma")


def prose_conclusion() -> Iterator[Case]:
    right = [
        ("y \\leq 3", "Hence $y \\leq 3$ is the answer."),
        ("(4, 1)", "Solving the system, the point is $(4, 1)$."),
        ("50\\%", "Comparing the two years, the population grows by 50%."),
        ("12", "She had 20 apples and gave away 8. Therefore she has 12 apples left."),
        ("7", "Subtracting 3 from both sides gives $2x = 14$, so $x = 7$."),
        ("45", "Adding up the three purchases, in total he spends \\$45."),
        (
            "\\frac{1}{6}",
            "There is one favourable outcome out of six, so the probability is $\\frac{1}{6}$.",
        ),
        ("18", "She sells 9 eggs at 2 dollars each, so she makes 18 dollars."),
        ("5", "Thus the remainder is 5."),
        ("x = 3", "Thus $x = 3$ is our final answer."),
        ("2\\pi", "So the circumference is $2\\pi$."),
        ("16", "The area of the square is therefore 16 square units."),
        ("3", "Checking all cases, we conclude that there are 3 solutions."),
        ("240", "Multiplying, the total distance is 240 km."),
        ("\\sqrt{2}", "Hence the length of the diagonal is $\\sqrt{2}$."),
        ("9", "So, the answer to the question is 9."),
        ("-2", "Plugging back in, we find that $k = -2$."),
        ("25", "Therefore, 25 students passed the exam."),
    ]
    for gold, completion in right:
        yield case(gold, WORK + completion, True, "prose_conclusion")
    wrong = [
        ("y \\leq 3", "Hence $y < 3$ is the answer."),
        ("(4, 1)", "Solving the system, the point is $(1, 4)$."),
        ("50\\%", "Comparing the two years, the population grows by 40%."),
        ("12", "She had 20 apples and gave away 8. Therefore she has 13 apples left."),
        ("7", "Subtracting 3 from both sides gives $2x = 14$, so $x = 14$."),
        ("18", "She sells 9 eggs at 2 dollars each, so she makes 11 dollars."),
        ("5", "Thus the remainder is either 5 or 6."),
        ("2\\pi", "So the circumference is $\\pi$."),
        ("16", "The area of the square is therefore 8 square units."),
        ("240", "Multiplying, the total distance is 24 km."),
        ("9", "I am not sure how to solve this. Maybe 9 or 10?"),
        ("12", "How many apples does she have left if she had 20 and gave away 8?"),
        ("25", "There are 25 students and 30 desks in the room."),
        ("45", "He buys three items for 15 dollars each."),
        ("\\sqrt{2}", "Hence the length of the diagonal is $2$."),
        ("3", "We need to find how many solutions there are."),
        ("-2", "Plugging back in, we find that $k = 2$."),
    ]
    for gold, completion in wrong:
        yield case(gold, WORK + completion, False, "prose_conclusion")


NEXT_TURN = [
    "<|im_start|>user\nWhat is {q}?<|im_end|>\n<|im_start|>assistant\nThe answer is {w}.",
    "<|im_end|>\n<|im_start|>user\nNow do {q}.<|im_end|>\n<|im_start|>assistant\n\\boxed{{{w}}}",
    "<|im_start|>user\nThanks! And {q}?<|im_end|>\n<|im_start|>assistant\n#### {w}",
    "<|endoftext|>The answer is {w}.",
]


def chat_run_on() -> Iterator[Case]:
    answers = [
        ("14", "The answer is 14.", "3 + 5", "8"),
        ("29", "#### 29", "6 * 7", "42"),
        ("\\frac{1}{2}", "So the answer is $\\boxed{\\frac{1}{2}}$.", "1/3 + 1/3", "\\frac{2}{3}"),
        ("1260", "In one week: 180 * 7 = 1260 liters.\n\nThe answer is 1260.", "10 - 4", "6"),
        ("12", "Therefore the final answer is $12$.", "2 + 2", "4"),
        ("5", "Answer: 5", "9 + 1", "10"),
    ]
    for k, (gold, answer, question, other) in enumerate(answers):
        for m, tail in enumerate(NEXT_TURN):
            if (k + m) % 2:
                continue
            completion = WORK + answer + tail.format(q=question, w=other)
            yield case(gold, completion, True, "chat_run_on")
            # The value written in the invented next turn is not this task's answer.
            yield case(other, completion, False, "chat_run_on")
    yield case("14", "The answer is 15.<|im_start|>user\nIs it 14?<|im_end|>", False, "chat_run_on")
    # Run-on prose after the answer (the model's own turn went on): no new marker.
    yield case("14", "The answer is 14.<|im_start|>user\nGreat, thanks!", True, "chat_run_on")


MATRIX_ROWS = [
    ("1 & 2 \\\\ 3 & 4", "2 & 1 \\\\ 3 & 4", "1 & 3 \\\\ 2 & 4"),
    ("-1 & 0 \\\\ 5 & \\frac{1}{2}", "-1 & 0 \\\\ 5 & 2", "1 & 0 \\\\ 5 & \\frac{1}{2}"),
    ("2 & 0 & 1 \\\\ 0 & 3 & 0", "2 & 0 & 1 \\\\ 0 & 3 & 1", "0 & 2 & 1 \\\\ 0 & 3 & 0"),
]


def matrices() -> Iterator[Case]:
    for rows, near, swapped in MATRIX_ROWS:
        columns = rows.split("\\\\")[0].count("&") + 1
        gold = f"\\begin{{pmatrix}} {rows} \\end{{pmatrix}}"
        forms = [
            f"\\begin{{bmatrix}} {rows} \\end{{bmatrix}}",
            f"\\left[\\begin{{array}}{{{'c' * columns}}} {rows} \\end{{array}}\\right]",
            f"\\left(\\begin{{array}}{{{'r' * columns}}} {rows} \\end{{array}}\\right)",
            f"\\begin{{pmatrix}}{rows}\\end{{pmatrix}}",
            f"\\begin{{Bmatrix}} {rows} \\end{{Bmatrix}}".replace("Bmatrix", "bmatrix"),
        ]
        for k, form in enumerate(forms):
            shape = [
                "\\boxed{{{f}}}",
                "The answer is $${f}$$",
                "So $A = {f}$.\n\n**Answer:** $\\boxed{{{f}}}$",
            ][k % 3]
            yield case(gold, WORK + shape.format(f=form), True, "matrix")
        for bad in (near, swapped):
            yield case(
                gold,
                WORK + f"\\boxed{{\\begin{{bmatrix}} {bad} \\end{{bmatrix}}}}",
                False,
                "matrix",
            )
            yield case(
                gold,
                WORK
                + f"The answer is $$\\left[\\begin{{array}}{{{'c' * columns}}} {bad} \\end{{array}}\\right]$$",
                False,
                "matrix",
            )
    # A vector as a column matrix, against a tuple.
    yield case(
        "(2, -1, 3)", "\\boxed{\\begin{bmatrix} 2 \\\\ -1 \\\\ 3 \\end{bmatrix}}", True, "matrix"
    )
    yield case(
        "\\begin{pmatrix} 2 \\\\ -1 \\\\ 3 \\end{pmatrix}",
        "\\boxed{\\left[\\begin{array}{c} 2 \\\\ -1 \\\\ 3 \\end{array}\\right]}",
        True,
        "matrix",
    )
    yield case(
        "\\begin{pmatrix} 2 \\\\ -1 \\\\ 3 \\end{pmatrix}",
        "\\boxed{\\begin{bmatrix} 2 \\\\ 1 \\\\ 3 \\end{bmatrix}}",
        False,
        "matrix",
    )


def inequalities() -> Iterator[Case]:
    right = [
        ("t \\in [\\sqrt{3}, +\\infty)", "\\boxed{t \\geq \\sqrt{3}}"),
        ("t \\in [\\sqrt{3}, +\\infty)", "The answer is $t \\ge \\sqrt{3}$."),
        ("[\\sqrt{3}, \\infty)", "\\boxed{t \\geq \\sqrt{3}}"),
        ("x \\geq 2", "\\boxed{x >= 2}"),
        ("x \\geq 2", "\\boxed{x ≥ 2}"),
        ("x \\geq 2", "\\boxed{[2, \\infty)}"),
        ("x \\geq 2", "The answer is $x \\in [2, +\\infty)$."),
        ("x \\le -1", "\\boxed{x <= -1}"),
        ("x \\le -1", "\\boxed{x ≤ -1}"),
        ("x \\le -1", "\\boxed{(-\\infty, -1]}"),
        ("x < 5", "\\boxed{(-\\infty, 5)}"),
        ("x < 5", "The answer is $x \\lt 5$."),
        ("x \\neq 2", "\\boxed{x != 2}"),
        ("x \\neq 2", "\\boxed{x ≠ 2}"),
        ("x \\neq 2", "\\boxed{x \\ne 2}"),
        ("x \\neq 2", "\\boxed{(-\\infty, 2) \\cup (2, \\infty)}"),
        ("(-\\infty, 2) \\cup (2, \\infty)", "\\boxed{x \\neq 2}"),
        ("-1 < x < 3", "\\boxed{(-1, 3)}"),
        ("-1 < x < 3", "\\boxed{x > -1 \\text{ and } x < 3}"),
        ("(-1, 3)", "The answer is $-1 < x < 3$."),
        ("[0, 4]", "\\boxed{0 \\le x \\le 4}"),
        ("[0, 4]", "\\boxed{0 <= x <= 4}"),
        ("x > 0", "\\boxed{x>0}"),
        ("a \\geq \\frac{1}{2}", "\\boxed{a \\geqslant \\frac{1}{2}}"),
        ("a \\leq \\frac{1}{2}", "\\boxed{a \\leqslant \\frac12}"),
    ]
    for gold, completion in right:
        yield case(gold, WORK + completion, True, "inequality")
    wrong = [
        ("t \\in [\\sqrt{3}, +\\infty)", "\\boxed{t > \\sqrt{3}}"),
        ("t \\in [\\sqrt{3}, +\\infty)", "\\boxed{t \\leq \\sqrt{3}}"),
        ("[\\sqrt{3}, \\infty)", "\\boxed{(\\sqrt{3}, \\infty)}"),
        ("x \\geq 2", "\\boxed{x > 2}"),
        ("x \\geq 2", "\\boxed{x <= 2}"),
        ("x \\geq 2", "\\boxed{(2, \\infty)}"),
        ("x \\geq 2", "\\boxed{x ≥ 3}"),
        ("x \\le -1", "\\boxed{x < -1}"),
        ("x \\le -1", "\\boxed{[-1, \\infty)}"),
        ("x < 5", "\\boxed{(-\\infty, 5]}"),
        ("x \\neq 2", "\\boxed{x = 2}"),
        ("x \\neq 2", "\\boxed{x != -2}"),
        ("x \\neq 2", "\\boxed{(-\\infty, 2)}"),
        ("-1 < x < 3", "\\boxed{[-1, 3]}"),
        ("[0, 4]", "\\boxed{0 < x < 4}"),
        ("x > 0", "\\boxed{x \\geq 0}"),
        ("a \\geq \\frac{1}{2}", "\\boxed{a \\leqslant \\frac{1}{2}}"),
        ("x \\geq 2", "\\boxed{2}"),
    ]
    for gold, completion in wrong:
        yield case(gold, WORK + completion, False, "inequality")


def multiple_boxes() -> Iterator[Case]:
    right = [
        ("(1, 4), (5, 0)", "\\boxed{(1, 4)} and \\boxed{(5, 0)}"),
        ("(1, 4), (5, 0)", "The solutions are \\boxed{(1, 4)} and \\boxed{(5, 0)}."),
        (
            "(1, 4), (5, 0)",
            "The first solution is $\\boxed{(1, 4)}$.\n\nThe second solution is $\\boxed{(5, 0)}$.",
        ),
        ("a = 7, b = 3", "\\boxed{a = 7} and \\boxed{b = 3}"),
        ("a = 7, b = 3", "So $\\boxed{a = 7}$.\n\nSubstituting back, $\\boxed{b = 3}$."),
        ("a = 7, b = 3", "We get \\boxed{a=7}, then from the second equation \\boxed{b=3}."),
        ("x = 2, y = -1", "From (1), $\\boxed{x = 2}$. From (2), $\\boxed{y = -1}$."),
        ("2, 3", "The roots are $\\boxed{2}$ and $\\boxed{3}$."),
        ("2, 3", "$x_1 = \\boxed{2}$, $x_2 = \\boxed{3}$"),
        ("-3, 3", "\\boxed{-3}, \\boxed{3}"),
        ("1, 2, 3", "\\boxed{1}, \\boxed{2}, \\boxed{3}"),
        ("(2, -1)", "x = \\boxed{2} and y = \\boxed{-1}"),
        ("7", "We find \\boxed{7}. Checking: 7 works, so the answer is \\boxed{7}."),
        ("\\frac{1}{2}", "So $\\boxed{\\frac{1}{2}}$ ... which is $\\boxed{0.5}$."),
    ]
    for gold, completion in right:
        yield case(gold, WORK + completion, True, "multiple_boxes")
    wrong = [
        ("7", "\\boxed{7} or \\boxed{8}"),
        ("7", "We find \\boxed{7}. Wait, actually it is \\boxed{8}."),
        ("7", "The answer is \\boxed{6}, or maybe \\boxed{7}."),
        ("2, 3", "The answer is \\boxed{2}. Hmm, actually the answer is \\boxed{3}."),
        ("(1, 4), (5, 0)", "\\boxed{(1, 4)} and \\boxed{(5, 1)}"),
        ("(1, 4), (5, 0)", "The solution is \\boxed{(1, 4)}."),
        ("a = 7, b = 3", "\\boxed{a = 7} and \\boxed{b = 4}"),
        ("a = 7, b = 3", "\\boxed{a = 7} or \\boxed{a = 3}"),
        ("a = 7, b = 3", "\\boxed{a = 7}"),
        ("x = 2, y = -1", "From (1), $\\boxed{x = 2}$. From (2), $\\boxed{y = 1}$."),
        ("-3, 3", "\\boxed{3}"),
        ("1, 2, 3", "\\boxed{1}, \\boxed{2}, \\boxed{4}"),
        ("12", "\\boxed{12} and \\boxed{13}"),
        ("12", "Part one: \\boxed{12}. Part two: \\boxed{24}."),
    ]
    for gold, completion in wrong:
        yield case(gold, WORK + completion, False, "multiple_boxes")


def multiple_choice() -> Iterator[Case]:
    right = [
        ("B", "B. 17 apples"),
        ("B", "The answer is B. 17 apples"),
        ("B", "(B) 17 apples"),
        ("B", "\\boxed{B. 17}"),
        ("B", "\\boxed{(B)\\ 17}"),
        ("B", "Answer: B) 17 apples"),
        ("B", "**B. 17 apples**"),
        ("B", "The correct option is (B) 17."),
        ("B", "\\boxed{\\text{B}}"),
        ("C", "The answer is C: $\\frac{3}{4}$"),
        ("C", "\\boxed{C. \\frac{3}{4}}"),
        ("A", "Answer: (A) 2\\sqrt{3}"),
        ("D", "D. None of the above"),
        ("D", "\\boxed{\\textbf{(D)}\\ 12}"),
        ("E", "The answer is $\\textbf{(E) } 100$."),
    ]
    for gold, completion in right:
        yield case(gold, WORK + completion, True, "multiple_choice")
    wrong = [
        ("B", "C. 17 apples"),
        ("B", "The answer is A. 12 apples"),
        ("B", "(B) or (C)"),
        ("B", "\\boxed{B, C}"),
        ("B", "\\boxed{C. 17}"),
        ("C", "The answer is B: $\\frac{3}{4}$"),
        ("A", "Answer: (D) 2\\sqrt{3}"),
        ("D", "A. None of the above"),
        ("E", "The answer is $\\textbf{(A) } 100$."),
        ("B", "B or C. 17 apples"),
    ]
    for gold, completion in wrong:
        yield case(gold, WORK + completion, False, "multiple_choice")


def clock_times() -> Iterator[Case]:
    right = [
        ("14:05", "The answer is 14:05:00"),
        ("14:05", "The answer is 2:05 PM"),
        ("14:05", "The answer is 2:05 p.m."),
        ("14:05", "\\boxed{2:05\\text{ PM}}"),
        ("14:05", "\\boxed{2:05pm}"),
        ("14:05:00", "The answer is 14:05."),
        ("2:05 PM", "The answer is 14:05."),
        ("09:30", "The train arrives at 9:30 AM.\n\nAnswer: 9:30 AM"),
        ("09:30", "\\boxed{9:30}"),
        ("9:30 AM", "\\boxed{09:30}"),
        ("12:15 AM", "\\boxed{00:15}"),
        ("12:00", "\\boxed{12:00 PM}"),
        ("18:45", "The answer is 6:45 PM."),
        ("7:20", "#### 07:20"),
        ("23:59", "The answer is 11:59 p.m."),
    ]
    for gold, completion in right:
        yield case(gold, WORK + completion, True, "clock_time")
    wrong = [
        ("14:05", "The answer is 2:05 AM"),
        ("14:05", "The answer is 14:50"),
        ("14:05", "The answer is 14:05:30"),
        ("14:05", "\\boxed{4:05 PM}"),
        ("09:30", "\\boxed{9:30 PM}"),
        ("9:30 AM", "\\boxed{21:30}"),
        ("12:15 AM", "\\boxed{12:15 PM}"),
        ("18:45", "The answer is 6:45 AM."),
        ("23:59", "The answer is 11:59 a.m."),
        ("7:20", "#### 7:02"),
        # A ratio is not a time, and a time is not a ratio.
        ("1:2", "The ratio is \\boxed{2:4}"),
    ]
    for gold, completion in wrong:
        yield case(gold, WORK + completion, False, "clock_time")


def gsm_style() -> Iterator[Case]:
    # Ordinary answers to GSM8K/MATH-style questions in everyday notation (a control group:
    # these pass today and must keep passing).
    right = [
        ("1260", "Per day 15 * 12 = 180 liters, so per week 180 * 7 = 1260 liters.\n#### 1260"),
        ("1260", "The cows give \\boxed{1,260} liters."),
        ("29", "48 - 19 = 29 stickers are left.\n\nThe answer is 29."),
        ("155", "The answer is $155$ minutes."),
        ("0.5", "\\boxed{\\frac{1}{2}}"),
        ("\\frac{5}{6}", "The answer is $\\frac{10}{12}$."),
        ("\\sqrt{3}/2", "\\boxed{\\frac{\\sqrt{3}}{2}}"),
        ("x^2 + 1", "\\boxed{1 + x^2}"),
        ("2\\pi", "The answer is $2 \\pi$."),
        ("\\$18", "The answer is 18 dollars."),
        ("75\\%", "The answer is 75%."),
        ("3", "**Final Answer**\n\\[ \\boxed{3} \\]"),
        ("-\\frac{1}{3}", "The answer is $-1/3$."),
        ("10", "<answer>10</answer>"),
        ("8", "The final answer is 8 hours."),
    ]
    for gold, completion in right:
        yield case(gold, WORK + completion, True, "gsm_style")
    wrong = [
        ("1260", "#### 1250"),
        ("1260", "The cows give \\boxed{180} liters."),
        ("29", "The answer is 48."),
        ("155", "The answer is $135$ minutes."),
        ("0.5", "\\boxed{\\frac{1}{3}}"),
        ("\\frac{5}{6}", "The answer is $\\frac{6}{5}$."),
        ("x^2 + 1", "\\boxed{x^2 - 1}"),
        ("2\\pi", "The answer is $\\pi^2$."),
        ("75\\%", "The answer is 7.5%."),
        ("3", "**Final Answer**\n\\[ \\boxed{4} \\]"),
        ("10", "<answer>10 or 11</answer>"),
        ("8", "The final answer is 80 hours."),
    ]
    for gold, completion in wrong:
        yield case(gold, WORK + completion, False, "gsm_style")


def sampled() -> Iterator[Case]:
    """Answers sampled from the embedded model (SmolLM2-135M-Instruct, temperature 0.7) on
    the problems in environments/math/data/, labelled by hand (``smollm2_samples.jsonl``)."""
    path = Path(__file__).with_name("smollm2_samples.jsonl")
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        yield case(
            row["gold"],
            row["completion"],
            row["correct"],
            "sampled_smollm2",
            row["note"],
            question=row.get("question"),
        )


def everyday() -> Iterator[Case]:
    # Right answers as people type them: currency, trailing zeros, units, words around.
    right = [
        ("1260", "They give 1,260.00 liters in total.\n\n#### 1,260"),
        ("18", "She makes \\$18.00 every day.\n\nThe answer is \\$18.00."),
        ("18", "**Answer:** 18 dollars"),
        ("0.5", "The answer is $0.50$."),
        ("3.5", "The answer is 3.50 hours."),
        ("1000000", "The answer is $1{,}000{,}000$."),
        ("1000000", "The answer is 10^6."),
        ("\\frac{1}{4}", "The answer is 0.25."),
        ("25\\%", "The answer is 25 percent."),
        ("90^\\circ", "The answer is $90^{\\circ}$."),
        ("90", "The angle is \\boxed{90^\\circ}."),
        ("4\\sqrt{2}", "\\boxed{\\sqrt{32}}"),
        ("x = 4", "Answer: $x=4$"),
        ("-5", "The answer is $\\boxed{-5}$."),
        ("\\pi/2", "\\boxed{\\frac{\\pi}{2}}"),
        ("2", "The remainder is 2.\n\n#### 2"),
        ("(2, 5)", "The vertex is at $(2, 5)$.\n\n**Answer:** $(2,5)$"),
        ("[-3, 3]", "The answer is $[-3,3]$."),
        ("\\frac{2}{3}", "The answer is $\\dfrac{2}{3}$."),
        ("1275", "The sum is $\\frac{50 \\cdot 51}{2} = 1275$.\n\nThe answer is $1{,}275$."),
        ("6\\sqrt{2}", "\\boxed{6 \\sqrt 2}"),
        ("12", "The answer is **12**."),
        ("41", "Final answer: 41 years old."),
        ("84", "<answer>\n84\n</answer>"),
        ("120", "The answer is $\\boxed{120}$."),
        ("200", "#### 200 km"),
        ("15", "So it takes \\boxed{15\\text{ minutes}}."),
        ("333", "The answer is $333$."),
        ("22.5", "The answer is \\$22.50."),
        ("900", "The final answer is $\\boxed{900}$. I hope it is correct."),
        ("2048", "Answer: $2^{11} = 2048$"),
        ("65536", "\\[\\boxed{65\\,536}\\]"),
        ("0.125", "The answer is $\\frac{1}{8}$."),
        ("\\frac{1}{8}", "The answer is 0.125."),
        ("7", "Final Answer: The final answer is $7$. I hope it is correct."),
        ("B", "**Answer: B**"),
        ("C", "The correct answer is (C)."),
        ("14:05", "The meeting ends at 14:05.\n\n**Answer:** 14:05"),
        ("1.25", "The answer is 1.250."),
        ("1.25", "The answer is $\\frac{5}{4}$."),
        ("-\\frac{1}{2}", "\\boxed{-0.5}"),
        ("3", "The answer is $x = 3$."),
        ("10", "Answer \\( \\boxed{10} \\)"),
        ("(1, 4), (5, 0)", "\\boxed{(1, 4), (5, 0)}"),
        ("a = 7, b = 3", "\\boxed{a = 7, b = 3}"),
        ("x \\geq 2", "The answer is $x \\geqslant 2$."),
        (
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}",
        ),
        ("45", "In total he spends \\$45.\n\nThe answer is 45."),
        ("5", "Answer: 5 (five)"),
        ("24", "The answer is twenty-four, i.e. $24$.\n\n\\boxed{24}"),
        ("9", "So the final answer is: **9**"),
        ("4096", "The answer is $2^{12} = 4,\\!096$.\n\n\\boxed{4096}"),
        ("50\\%", "The population grows by 50%.\n\nAnswer: 50%"),
        ("12", "Therefore she has 12 apples left.\n\n#### 12"),
        ("0.4", "Ergebnis: 0,4\n\nThe answer is 0.4."),
    ]
    for gold, completion in right:
        yield case(gold, WORK + completion, True, "everyday")


SECTIONS = [
    marker_delimiters,
    thousands,
    decimal_comma,
    prose_conclusion,
    chat_run_on,
    matrices,
    inequalities,
    multiple_boxes,
    multiple_choice,
    clock_times,
    gsm_style,
    everyday,
    sampled,
]


def build() -> list[Case]:
    cases = [c for section in SECTIONS for c in section()]
    seen: set[tuple[object, object]] = set()
    unique = []
    for c in cases:
        key = (c["gold"], c["completion"])
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique


def main() -> None:
    for c in build():
        sys.stdout.write(json.dumps(c, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
