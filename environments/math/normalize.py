"""Cosmetic normalisation of an extracted answer (pure string work).

Everything here removes differences a human grader ignores: math delimiters, spacing
commands, ``\\left``/``\\right``, ``\\dfrac``, degree signs, currency signs, unicode math
symbols, unit words after a number, ``x =`` in front of a value. Nothing here decides
equality; ``equivalence`` does.
"""

from __future__ import annotations

import re

from grpo_env.environments.math.brackets import outside_brackets, split_top_level, step
from grpo_env.environments.math.extraction import clean_statement, find_boxed

_SPACING = re.compile(r"(?<!\\)\\[,;:!> ]|\\q?quad\b|~|\\(?:displaystyle|textstyle|limits)\b")
# "16,\\!386", "1\\,000", "12{,}000": spacing inside a number is part of a thousands separator.
# The space after the command is the writer's, not a second separator: "4,\\! 096".
_NUMBER_SPACING = re.compile(r"(?<=[\d,])\\[!,;: ] ?(?=\d)|(?<=\d)\\[!,;: ](?=,)")
_SIZING = re.compile(r"\\(?:left|right|[bB]igg?[lr]?)(?![A-Za-z])\s*")
_FRAC_VARIANTS = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_STYLE_WRAPPERS = re.compile(
    r"\\(?:mathrm|mathbf|mathit|mathsf|boldsymbol|bm|textbf|textit|textrm|emph"
    r"|operatorname)\s*\{([^{}]*)\}"
)
_TEXT_WRAPPERS = re.compile(r"\\(?:text|textnormal|mbox|hbox)\s*\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\circ(?![A-Za-z])|\\degree\b")
_PERCENT_WORDS = re.compile(r"\s*(?:\\%|%|\bpercent(?:age)?\b|\bpct\b)")
_CURRENCY = re.compile(r"\\\$|\$|€|£|¥|₹|\bUSD\b|\bEUR\b")
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,]|\.\d*,)")
_UNICODE = {
    "−": "-",
    "–": "-",
    "—": "-",
    "×": "\\times ",
    "÷": "\\div ",
    "·": "\\cdot ",
    "⋅": "\\cdot ",
    "√": "\\sqrt",
    "π": "\\pi ",
    "∞": "\\infty ",
    "≤": "\\le ",
    "≥": "\\ge ",
    "≠": "\\ne ",
    "∪": "\\cup ",
    "∩": "\\cap ",
    "±": "\\pm ",
    "∈": "\\in ",
    "…": "\\ldots ",
    "½": "\\frac{1}{2}",
    "⅓": "\\frac{1}{3}",
    "⅔": "\\frac{2}{3}",
    "¼": "\\frac{1}{4}",
    "¾": "\\frac{3}{4}",
    "∅": "\\emptyset ",
}
_ALL_REALS = re.compile(r"^(?:all\s+)?real\s+numbers$|^all\s+reals$", re.IGNORECASE)
# A one-column (or one-row) matrix is a vector: the same answer as the tuple (2, -1, 3).
# An array between brackets is a matrix: the same answer as pmatrix/bmatrix.
_ARRAY_MATRIX = re.compile(
    r"[\[(]\s*\\begin\{array\}\s*\{[lcr|\s]*\}(.*?)\\end\{array\}\s*[\])]", re.DOTALL
)
_VECTOR = re.compile(r"\\begin\{[pbv]?matrix\}(.*?)\\end\{[pbv]?matrix\}", re.DOTALL)
_REALS = re.compile(r"\\mathbb\s*\{?\s*R\s*\}?|ℝ")
_REALS_WITHOUT_POINT = re.compile(
    r"^\(-\\infty, \\infty\)\s*(?:\\setminus|\\backslash|-)\s*\\\{\s*([^{},]+?)\s*\\\}$"
)
_EMPTY_SET = re.compile(r"\\varnothing\b|\\\{\s*\\\}|^\{\s*\}$")
# Plain-text function names the LaTeX parser would read as products of letters (s*i*n).
_PLAIN_FUNCTIONS = re.compile(r"(?<![\\A-Za-z])(sin|cos|tan|cot|sec|csc|log|ln|exp)(?=\s*\()")
_SEQUENCE_DOTS = re.compile(r"\\(?:ldots|cdots|dots|dotsc|dotsb)\b|\.\.\.")
# A name that an answer may be assigned to: x, a_1, x_{10}, \theta, f(2), (a, b, c).
_NAME = r"(?:[A-Za-z](?:_\{?\w+\}?)?'*|\\[A-Za-z]+|[A-Za-z]\([^()=]*\)|\([A-Za-z_ ,]+\))"
_ASSIGNMENT = re.compile(rf"^\s*(?P<lhs>{_NAME})\s*(?:=|\\in(?![A-Za-z]))\s*(?P<rhs>.+)$")
# Words after a number are units ("125 miles", "15 cm^2"), as are \text{} blocks after one.
_UNIT_TEXT = re.compile(
    r"\\(?:text|textnormal|mbox|mathrm|textrm|rm)\s*\{\s*[A-Za-z][A-Za-z .\-/]*\}"
    r"(?:\s*\^\s*\{?[23]\}?)?"
)
_TRAILING_WORDS = re.compile(
    r"(?P<value>.*?[\d}])\s*(?P<unit>(?:[A-Za-z]{2,}|[A-Za-z]+(?=/))(?:[\s/-]+[A-Za-z]+)*)"
    r"(?:\s*\^\s*\{?[23]\}?)?\s*"
)
_REMARK = re.compile(r"\s+\([A-Za-z][A-Za-z\s]+\)$")
_COMMA = re.compile(r"[,;]")
_TUPLE_ASSIGNMENT = re.compile(r"^\s*\(([A-Za-z_ ,]+)\)\s*=\s*\((.+)\)\s*$")
_WORDY = re.compile(r"[A-Za-z][A-Za-z\s'\-]*[A-Za-z]")


def clean_answer(answer: str) -> str:
    """The answer without notation a grader ignores (keeps its mathematical content)."""
    text = answer.strip()
    boxes = find_boxed(text)
    if len(boxes) == 1 and boxes[0].start == 0 and boxes[0].end == len(text):
        text = boxes[0].content
    for symbol, latex in _UNICODE.items():
        text = text.replace(symbol, latex)
    text = clean_statement(text)
    text = _NUMBER_SPACING.sub("", text)
    text = _SPACING.sub(" ", text)
    text = _SIZING.sub("", text)
    text = _FRAC_VARIANTS.sub(r"\\frac", text)
    text = _DEGREES.sub("", text)
    text = _PERCENT_WORDS.sub("%", text)
    text = _CURRENCY.sub("", text)
    text = text.replace("{,}", ",").replace("\\!", "")
    text = _apply_until_stable(_STYLE_WRAPPERS, r"\1", text)
    whole_text = _TEXT_WRAPPERS.fullmatch(text.strip())
    if whole_text:  # \text{(C)} is (C)
        text = whole_text.group(1)
    text = _plain_text_math(text)
    text = _EMPTY_SET.sub(r"\\emptyset", text)
    text = _ALL_REALS.sub(r"\\mathbb{R}", text)
    text = _ARRAY_MATRIX.sub(r"\\begin{pmatrix}\1\\end{pmatrix}", text)
    text = _VECTOR.sub(_vector_as_tuple, text)
    text = _REALS.sub(r"(-\\infty, \\infty)", text)
    text = _REALS_WITHOUT_POINT.sub(r"(-\\infty, \1) \\cup (\1, \\infty)", text)
    text = re.sub(r"\s+", " ", text).strip()
    return clean_statement(text)


def _vector_as_tuple(match: re.Match[str]) -> str:
    rows = [r.strip() for r in match.group(1).split("\\\\")]
    rows = [r for r in rows if r]  # a trailing row break leaves an empty row
    cells = [[c.strip() for c in row.split("&")] for row in rows]
    if len(cells) > 1 and all(len(row) == 1 for row in cells):
        return "(" + ", ".join(row[0] for row in cells) + ")"
    if len(cells) == 1 and len(cells[0]) > 1:
        return "(" + ", ".join(cells[0]) + ")"
    return match.group(0)


def _apply_until_stable(pattern: re.Pattern[str], replacement: str, text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = pattern.sub(replacement, text)
    return text


def _plain_text_math(text: str) -> str:
    """Plain-text notation the LaTeX parser misreads: ``sqrt(2)``, ``\\sqrt(2)``, ``x**2``."""
    text = text.replace("**", "^")
    out: list[str] = []
    i = 0
    pattern = re.compile(r"\\?sqrt\s*\(")
    while True:
        match = pattern.search(text, i)
        if not match:
            out.append(text[i:])
            break
        close = _matching_paren(text, match.end() - 1)
        if close is None:
            out.append(text[i:])
            break
        out.append(text[i : match.start()])
        out.append("\\sqrt{" + text[match.end() : close] + "}")
        i = close + 1
    text = "".join(out)
    text = _PLAIN_FUNCTIONS.sub(r"\\\1", text)
    text = _POWER_TOWER.sub(_right_associative, text)
    return re.sub(r"(?<![\\A-Za-z])pi(?![A-Za-z])", r"\\pi", text)


# "2^3^2" in plain text means 2^(3^2), as in mathematics; LaTeX would read it left to right.
_POWER_TOWER = re.compile(r"(?:\w+|\{[^{}]*\})(?:\^(?:\w+|\{[^{}]*\})){2,}")


def _right_associative(match: re.Match[str]) -> str:
    atoms = re.findall(r"\w+|\{[^{}]*\}", match.group(0))
    nested = atoms[-1]
    for atom in reversed(atoms[:-1]):
        nested = f"{atom}^{{{nested}}}"
    return nested


def _matching_paren(text: str, open_at: int) -> int | None:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def collapse_thousands(text: str) -> str:
    """``1,234,567`` -> ``1234567`` outside brackets (``(100,200)`` stays a pair)."""
    out: list[str] = []
    depth = 0
    last = 0
    for match in _THOUSANDS.finditer(text):
        depth = _depth_at(text[: match.start()])
        if depth == 0:
            out.append(text[last : match.start()])
            out.append(match.group(0).replace(",", ""))
            last = match.end()
    out.append(text[last:])
    return "".join(out)


def _depth_at(prefix: str) -> int:
    depth = 0
    for char in prefix:
        depth = step(depth, char)
    return depth


def has_sequence_dots(text: str) -> bool:
    return bool(_SEQUENCE_DOTS.search(text))


def split_assignment(text: str) -> tuple[str | None, str]:
    """``x = 5`` -> ("x", "5"); ``x = 2 + 3 = 5`` -> ("x", "5"); ``5`` -> (None, "5")."""
    match = _ASSIGNMENT.match(text)
    if not match:
        return None, text
    rhs = match["rhs"]
    if "=" in rhs and re.search(r"[,;]", outside_brackets(rhs)):
        return None, text  # "x = 2, y = 3" is a list of assignments, not one
    if "=" in rhs and not re.search(r"[<>!\\]=|=[<>]", rhs):
        rhs = rhs.rsplit("=", 1)[1]  # a chain of steps: the last value is the answer
    return re.sub(r"\s+", "", match["lhs"]), rhs.strip()


def expand_tuple_assignment(text: str) -> str:
    """``(a, b) = (3, -2)`` -> ``a = 3, b = -2`` (unchanged unless the counts match)."""
    match = _TUPLE_ASSIGNMENT.match(text)
    if not match:
        return text
    names = [n.strip() for n in match.group(1).split(",")]
    values = split_top_level(match.group(2), _COMMA)
    if len(names) != len(values) or not all(names):
        return text
    return ", ".join(f"{n} = {v.strip()}" for n, v in zip(names, values, strict=True))


def is_assignment_list(text: str) -> bool:
    """``a = 3, b = -2``: several assignments separated by commas."""
    parts = split_top_level(text, _COMMA)
    return len(parts) > 1 and all(split_assignment(p.strip())[0] for p in parts)


def strip_units(text: str) -> str:
    """Drop unit words after a number: ``125 miles`` -> ``125``, ``15\\text{ cm}^2`` -> ``15``;
    and a remark in parentheses: ``13 (thirteen)`` -> ``13``."""
    if not re.search(r"\d", text):
        return text
    remark = _REMARK.search(text)
    if remark and re.search(r"\d", text[: remark.start()]):
        text = text[: remark.start()].rstrip()
    stripped = _UNIT_TEXT.sub("", text).strip()
    if stripped and re.search(r"\d", stripped):
        text = stripped
    match = _TRAILING_WORDS.fullmatch(text)
    if match and not re.search(r"[A-Za-z\\]", match["value"]):
        return match["value"].strip()
    return text


def unwrap_text(text: str) -> str:
    """``\\text{Evelyn}`` -> ``Evelyn`` (after units are gone, text is content)."""
    return _apply_until_stable(_TEXT_WRAPPERS, r"\1", text).strip()


def is_wordy(text: str) -> bool:
    """A word answer ("Monday", "no solution"): compared as text, never as a product of
    symbols (which would make anagrams equal)."""
    stripped = text.strip()
    return bool(_WORDY.fullmatch(stripped)) and len(re.sub(r"[^A-Za-z]", "", stripped)) >= 3


def squash(text: str) -> str:
    """Whitespace-free form for literal comparison."""
    return re.sub(r"\s+", "", text)
