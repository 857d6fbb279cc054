"""The value a completion concludes with in prose, with no answer marker (pure string work).

Used only when the env opts in (``extract_answer(..., prose_conclusion=True)``): reading
prose is a policy choice. The rule is narrow on purpose, so that rambling does not score:

- only the closing sentence counts (the last sentence of the last non-empty line); a
  question ("Maybe 9?") or a hedge ("either 5 or 6", "maybe", "not sure") states nothing;
- a last line that is nothing but an answer ("$x = 7$", "12 apples") or a choice label
  with its option ("B. 17 apples", "(D) None of the above") is that answer;
- otherwise the sentence must conclude: a cue ("so", "therefore", "in total", "we find")
  or a copula ("is", "are", "equals"), and exactly one value may follow the last of them
  ("Therefore she has 12 apples left." -> 12; "There are 25 students and 30 desks." -> none).
"""

from __future__ import annotations

import re

MAX_SENTENCE_CHARS = 300

_CUE = re.compile(
    r"\b(?:so|thus|hence|therefore|finally|altogether|overall|in\s+total|in\s+all"
    r"|we\s+(?:get|find|obtain|conclude|have)(?:\s+that)?|this\s+gives|which\s+gives"
    r"|gives|is|are|was|were|equals|makes|becomes)\b|=",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:or|either|maybe|perhaps|probably|possibly|might|could|guess|not\s+sure|unsure"
    r"|approximately|about|around|roughly)\b",
    re.IGNORECASE,
)
# A sentence ends at . ! ? followed by a space or the end, not inside math and not in a
# decimal (3.5) or after a single capital letter ("B. 17 apples" is one answer).
_SENTENCE_END = re.compile(r"(?<![A-Z])(?<!\b[A-Z])[.!?](?=\s|$)")
_MATH = re.compile(r"\$([^$]+)\$|\\\((.+?)\\\)")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*\s*%?")
_PROSE = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}")
_CHOICE_LINE = re.compile(r"^(?:\([A-E]\)|[A-E][.)])\s+\S")


def concluded_value(text: str) -> str | None:
    """The value the closing sentence of ``text`` concludes with, or None."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    last_line = lines[-1].replace("\\$", " ")  # an escaped dollar is currency, not math
    if last_line.rstrip().endswith("?"):
        return None
    bare = _bare_line(last_line)
    if bare is not None:
        return bare
    sentence = _last_sentence(last_line)
    if not sentence or len(sentence) > MAX_SENTENCE_CHARS:
        return None
    if _HEDGE.search(_MATH.sub(" ", sentence)):
        return None
    cues = [m for m in _CUE.finditer(sentence) if sentence[: m.start()].count("$") % 2 == 0]
    if not cues:
        return None
    values = _values(sentence[cues[-1].end() :])
    return values[0] if len(values) == 1 else None


def _bare_line(line: str) -> str | None:
    """The line itself when it is nothing but an answer: no two words in a row outside
    math, and something to compare (a digit, math, or a choice letter)."""
    line = line.strip().strip("*").strip()
    if _CHOICE_LINE.match(line):
        return line  # "D. None of the above": a choice label, then its option's text
    words = re.sub(r"\$[^$]*\$|\\[A-Za-z]+\s*(?:\{[^{}]*\})?", " ", line)
    if _PROSE.search(words) or not re.search(r"[\d$\\]", line):
        return None
    return line


def _last_sentence(line: str) -> str:
    ends = [m for m in _SENTENCE_END.finditer(line) if line[: m.start()].count("$") % 2 == 0]
    # The final period closes the last sentence; the one before it opens it.
    bounds = [m.end() for m in ends if m.end() < len(line.rstrip())]
    start = bounds[-1] if bounds else 0
    return line[start:].strip()


def _values(tail: str) -> list[str]:
    """The distinct values written in ``tail``: math segments first, else numbers."""
    math = [a or b for a, b in _MATH.findall(tail)]
    outside = _MATH.sub(" ", tail)
    numbers = [n.strip() for n in _NUMBER.findall(outside)]
    values = [m.strip() for m in math] + numbers
    return list(dict.fromkeys(v for v in values if v))
