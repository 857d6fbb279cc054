"""Finding the final answer in a completion (pure string work, no sympy).

The completion is first cut at the first chat-template turn token (``<|im_start|>``,
``<|im_end|>``, ``<|endoftext|>``...): a model that runs on into an invented next turn
answers that turn's question there, not this one.

Where a final answer may be, strongest marker first:

1. an ``<answer>…</answer>`` block: extraction then looks only inside it (and takes the whole
   block when it holds no other marker);
2. the last ``\\boxed{…}`` (nested braces, ``\\fbox``, ``\\boxed 5``);
3. a GSM8K line ``#### N``;
4. "the (final) answer is …" / "Answer: …" (the last such statement), also when the
   answer follows on the next lines as display math (``Answer:\\n$$ 14 $$``), the same
   markers in other languages ("La réponse est …", "Ergebnis: …"), and the marker after
   the answer ("Hence $y \\le 3$ is the answer.");
5. the whole completion, when it is nothing but an answer (``$\\frac{1}{3}$``, ``x = 5``);
6. optionally (``prose_conclusion``), the value a closing sentence concludes with, no marker
   ("Therefore she has 12 apples left.", see ``prose``);
7. optionally, the last number in the text (off by default: it rewards rambling).

A completion that commits to several different answers ("either 3 or 4", ``\\boxed{3}
\\boxed{4}``) yields several candidates; the checker scores it 0 unless all of them are right.
Several boxes also offer ``joined``, one list, unless the text between them hedges or
corrects ("or", "wait", "actually"...): the checker reads it only when the reference is
itself a list (``\\boxed{a = 7}`` ... ``\\boxed{b = 3}`` against ``a = 7, b = 3``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from grpo_env.environments.math.brackets import split_top_level
from grpo_env.environments.math.prose import concluded_value

BOXED_COMMANDS = ("\\boxed", "\\fbox")

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_GSM8K = re.compile(r"^[ \t]*####[ \t]*(.+?)[ \t]*$", re.MULTILINE)
# Answer markers in other languages, with their copulas: "La réponse est", "Ergebnis:".
_FOREIGN_MARKER = (
    r"(?:r[ée]ponse|r[ée]sultat|antwort|ergebnis|respuesta|resultado|resposta|risposta"
    r"|risultato)"
)
_FOREIGN_COPULA = r"(?:est|vaut|ist|lautet|es|é|è|=|:)"
_ANSWER_IS = re.compile(
    r"(?:\bfinal\s+answer|\bthe\s+answer|^\W{0,4}answer"
    r"|\bthe\s+answer\s+to\s+(?:this|the)\s+[^.\n$]{1,60}?(?=\s+is\b)"
    r"|\bthe\s+correct\s+(?:answer|option|choice))\s*(?:is\b|:|=)\s*:?"
    r"|^\W{0,4}answer\s+(?=\$|\\[(\[])"  # "Answer \( 9 \)": the word opens the line
    rf"|\b{_FOREIGN_MARKER}\s*{_FOREIGN_COPULA}\s*:?"
    rf"|^\W{{0,4}}(?:answer|{_FOREIGN_MARKER})\s+(?=-?\d)",  # "Ergebnis 0,4" opens the line
    re.IGNORECASE | re.MULTILINE,
)
# The marker after the answer: "Hence $y \le 3$ is the answer.", "x = 3 is our final answer".
_IS_THE_ANSWER = re.compile(r"\s+is\s+(?:the|our|my)\s+(?:final\s+)?answer\b", re.IGNORECASE)
# Display math opening the lines after a marker that ends its own line ("Answer:\n$$ 14 $$").
_DISPLAY_MATH = re.compile(r"^\s*(\$\$.+?\$\$|\\\[.+?\\\])", re.DOTALL)
# Chat-template tokens that end the model's turn; anything after them is another turn.
_TURN_END = re.compile(
    r"<\|(?:im_start|im_end|endoftext|end_of_text|eot_id|start_header_id|end|user|assistant)\|>"
    r"|<(?:end|start)_of_turn>|</s>"
)
# Words between two boxes that hedge or correct: the boxes are alternatives, not a list.
_HEDGE = re.compile(
    r"\b(?:or|wait|actually|instead|alternatively|maybe|perhaps|probably|mistake|wrong"
    r"|incorrect|recheck|reconsider|correction|oops|hmm|however|but|not|no|sorry|hold"
    r"|double-check|let\s+me|either)\b",
    re.IGNORECASE,
)
MAX_LIST_GAP_CHARS = 200
# Where an "answer is" statement ends: a line break, or a sentence-ending period (not the
# point of a decimal such as 3.5).
_STATEMENT_END = re.compile(r"\n|\.(?=\s|$)(?!\d)")
MAX_BARE_ANSWER_CHARS = 300
# Two words in a row outside math: a sentence, not a bare answer.
_PROSE = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}")
_COPULA = re.compile(r"\s(?:is|are|equals|was|be)\s", re.IGNORECASE)
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+")
# Text between two boxes that still reads as one list ("\boxed{3}, \boxed{5}", "… and …").
_LIST_GLUE = re.compile(r"^[\s,;$]*(?:(?:and|or|&|\\text\{\s*(?:and|or)\s*\}|\\quad)[\s,;$]*)?$")
# Alternatives inside one answer: "3 or 4", "3 \text{ or } 4", "either 3 or 4".
_ALTERNATIVES = re.compile(r"\s+or\s+|\\text\{\s*or\s*\}|\\(?:lor|vee)\b", re.IGNORECASE)
_INEQUALITY = re.compile(r"[<>≤≥]|\\(?:le|ge|leq|geq|lt|gt)(?![A-Za-z])")
_EITHER = re.compile(r"^\s*(?:\\text\{\s*)?either\b\s*\}?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Boxed:
    content: str
    start: int
    end: int


@dataclass(frozen=True)
class Extraction:
    """The final answer(s) found in a completion.

    ``answers`` are the distinct candidates in order of appearance (empty: none found).
    ``joined`` is the candidates read as one list when they were written side by side
    (``\\boxed{3}, \\boxed{5}``): right when the reference answer is itself a list.
    """

    answers: tuple[str, ...]
    source: str | None
    joined: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.answers)


def find_boxed(text: str) -> list[Boxed]:
    """Every complete ``\\boxed{…}`` / ``\\fbox{…}`` in ``text``, with nested braces.

    An unclosed box (a completion cut off by the token limit) is ignored: it states nothing.
    """
    found: list[Boxed] = []
    pattern = re.compile("|".join(re.escape(c) for c in BOXED_COMMANDS) + r"(?![A-Za-z])")
    for match in pattern.finditer(text):
        i = match.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "{":
            end = _closing_brace(text, i)
            if end is not None:
                found.append(Boxed(text[i + 1 : end].strip(), match.start(), end + 1))
        elif i > match.end():  # "\boxed 5": the argument is the next token
            token = re.match(r"[^\s$]+", text[i:])
            if token:
                found.append(Boxed(token.group(0), match.start(), i + token.end()))
    return found


def _closing_brace(text: str, open_at: int) -> int | None:
    depth = 0
    i = open_at
    while i < len(text):
        char = text[i]
        if char == "\\":  # \{ and \} are literal braces (set notation), not grouping
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last complete box, or None."""
    boxes = find_boxed(text)
    return boxes[-1].content if boxes else None


def extract_answer(
    completion: str, *, last_number_fallback: bool = False, prose_conclusion: bool = False
) -> Extraction:
    """The final answer(s) stated in ``completion`` (see the module docstring).

    ``prose_conclusion``: with no marked answer, read the value the closing sentence
    concludes with ("So the point is $(4, 1)$."). A policy choice, off by default."""
    completion = own_turn(completion)
    blocks = [b.strip() for b in _ANSWER_BLOCK.findall(completion) if b.strip()]
    if blocks:
        distinct = _distinct(blocks)
        if len(distinct) > 1:
            return Extraction(tuple(distinct), "answer_tag")
        inner = _extract_marked(distinct[0], last_number_fallback=False)
        if inner.found:
            return Extraction(inner.answers, f"answer_tag/{inner.source}", inner.joined)
        return _with_alternatives(distinct[0], "answer_tag")
    return _extract_marked(
        completion, last_number_fallback=last_number_fallback, prose_conclusion=prose_conclusion
    )


def own_turn(completion: str) -> str:
    """The completion up to the first chat-template token that ends the model's turn."""
    end = _TURN_END.search(completion)
    return completion[: end.start()] if end else completion


def _extract_marked(
    text: str, *, last_number_fallback: bool, prose_conclusion: bool = False
) -> Extraction:
    boxes = [b for b in find_boxed(text) if b.content]
    if boxes:
        distinct = _distinct([b.content for b in boxes])
        if len(distinct) == 1:
            return _with_alternatives(distinct[0], "boxed")
        joined = None
        if all(_reads_as_list(text[a.end : b.start]) for a, b in itertools.pairwise(boxes)):
            joined = ", ".join(b.content for b in boxes)
        return Extraction(tuple(distinct), "boxed", joined)

    gsm = [m.strip() for m in _GSM8K.findall(text) if m.strip()]
    if gsm:
        distinct = _distinct(gsm)
        if len(distinct) == 1:
            return _with_alternatives(distinct[0], "gsm8k")
        return Extraction(tuple(distinct), "gsm8k")

    stated = _last_answer_statement(text)
    if stated:
        return _with_alternatives(stated, "answer_is")

    bare = _bare_answer(text)
    if bare:
        return _with_alternatives(bare, "whole")

    if prose_conclusion:
        concluded = concluded_value(text)
        if concluded:
            return _with_alternatives(clean_statement(concluded), "prose")

    if last_number_fallback:
        numbers = _NUMBER.findall(text)
        if numbers:
            return Extraction((numbers[-1].strip(),), "last_number")
    return Extraction((), None)


def _bare_answer(text: str) -> str | None:
    """The whole completion when it is nothing but an answer (``$\\frac{1}{3}$``, ``x = 5``,
    ``Evelyn``): short, and no sentence outside its math."""
    stripped = text.strip()
    if not stripped or len(stripped) > MAX_BARE_ANSWER_CHARS or stripped.count("\n") > 2:
        return None
    if any(command in stripped for command in BOXED_COMMANDS):
        return None  # a box was started but never closed: the answer was cut off
    words = re.sub(r"\$[^$]*\$|\\[A-Za-z]+\s*(?:\{[^{}]*\})?", " ", stripped)
    if _PROSE.search(words) or "<" in words:
        return None
    return clean_statement(stripped) or None


def _reads_as_list(gap: str) -> bool:
    """Whether the text between two boxes joins them into one list: list glue, or a short
    stretch of prose that neither hedges nor corrects ("From (2), ...")."""
    if _LIST_GLUE.match(gap):
        return True
    return len(gap) <= MAX_LIST_GAP_CHARS and not _HEDGE.search(gap)


def _last_answer_statement(text: str) -> str | None:
    statements: list[tuple[int, str]] = []
    for match in _ANSWER_IS.finditer(text):
        rest = text[match.end() :]
        display = _DISPLAY_MATH.match(rest)
        rest = display.group(1) if display else rest[: _statement_end(rest)]
        statements.append((match.start(), rest))
    for match in _IS_THE_ANSWER.finditer(text):
        statements.append((match.start(), _sentence_before(text[: match.start()])))
    for _, rest in sorted(statements, reverse=True):
        answer = clean_statement(_after_prose(rest))
        if answer:
            return answer
    return None


def _sentence_before(text: str) -> str:
    """The sentence that ends at the end of ``text``, without a leading "Hence,"/"So"."""
    starts = [m.end() for m in _STATEMENT_END.finditer(text) if _outside_math(text, m.start())]
    sentence = text[starts[-1] :] if starts else text
    sentence = re.sub(
        r"^\s*(?:hence|thus|therefore|so|then|and|finally)\b,?", "", sentence, flags=re.I
    )
    math = re.findall(r"\$([^$]+)\$", sentence)
    if math and _PROSE.search(re.sub(r"\$[^$]*\$", " ", sentence)):
        return math[-1]  # "we see that $x = 3$ is the answer"
    return sentence.strip()


def _outside_math(text: str, position: int) -> bool:
    return text[:position].count("$") % 2 == 0


def _after_prose(statement: str) -> str:
    """ "The largest $n$ is 34" -> "34": when the statement is a sentence, its answer is what
    follows the last "is"/"equals" (math in $...$ is left alone)."""
    outside_math = re.sub(r"\$[^$]*\$", " ", statement)
    if not _PROSE.search(outside_math):
        return statement
    cut = None
    for match in _COPULA.finditer(statement):
        if statement[: match.start()].count("$") % 2 == 0:
            cut = match.end()
    tail = statement[cut:] if cut is not None else statement
    math = re.findall(r"\$([^$]+)\$", tail)
    if math and _PROSE.search(re.sub(r"\$[^$]*\$", " ", tail)):
        return math[-1]  # "$\frac{1}{2}$ of the pie": the math is the answer
    return tail


def _statement_end(rest: str) -> int:
    # A period inside $...$ math is not the end of the sentence.
    in_math = False
    for match in _STATEMENT_END.finditer(rest):
        in_math = rest[: match.start()].count("$") % 2 == 1
        if match.group(0) == "\n" or not in_math:
            return match.start()
    return len(rest)


def clean_statement(answer: str) -> str:
    """Strip the wrapping a sentence puts around an answer: markdown bold, math delimiters,
    surrounding quotes, trailing punctuation."""
    answer = answer.strip()
    previous = None
    while previous != answer:
        previous = answer
        answer = answer.strip().strip("*`").strip()
        answer = re.sub(r"(?:[.,;:]|(?<![\w)}])!)+$", "", answer).strip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ('"', '"')):
            if answer.startswith(left) and answer.endswith(right) and len(answer) > 2 * len(left):
                inner = answer[len(left) : -len(right)]
                if left != "$" or "$" not in inner:
                    answer = inner
    return answer.strip()


def _with_alternatives(answer: str, source: str) -> Extraction:
    """One stated answer, split when it hedges between alternatives ("3 or 4"). Inequalities
    joined by "or" (``x < -1 or x > 1``) describe one set, not alternatives."""
    body = _EITHER.sub("", answer)
    parts = [clean_statement(p) for p in split_top_level(body, _ALTERNATIVES)]
    parts = [p for p in parts if p]
    if len(parts) > 1 and all(_INEQUALITY.search(p) for p in parts):
        return Extraction((answer,), source)
    if len(parts) > 1:
        return Extraction(tuple(_distinct(parts)), source, ", ".join(parts))
    return Extraction((answer,), source)


def split_alternatives(answer: str) -> list[str]:
    """``answer`` split at top-level "or"s (one element when it does not hedge)."""
    parts = [clean_statement(p) for p in split_top_level(_EITHER.sub("", answer), _ALTERNATIVES)]
    return [p for p in parts if p] or [answer]


def _distinct(items: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(re.sub(r"\s+", "", item), item)
    return list(seen.values())


def reference_answer(gold: str) -> str:
    """The final answer inside a reference: the last box of a worked solution, the part after
    ``####`` of a GSM8K answer, or the whole string when it is already a bare answer."""
    boxed = last_boxed(gold)
    if boxed:
        return boxed
    gsm = _GSM8K.findall(gold)
    if gsm:
        return gsm[-1].strip()
    return clean_statement(gold)
