"""Readings of answers whose notation says what kind of value they are (pure string work):
clock times, multiple-choice letters, decimal commas.

Each reading applies only when the reference has the same kind, so it can only add the
equalities a grader sees (``14:05`` is ``2:05 PM``; ``B. 17 apples`` answers ``B``;
``1,25`` is 1.25 in a French sentence) and it decides the comparison once both sides are
of that kind (``12:15 AM`` is not ``12:15 PM``, though sympy and unit-stripping would
drop the suffix).
"""

from __future__ import annotations

import re

from grpo_env.environments.math.numbers import PlainNumber, parse_plain_number

_CLOCK = re.compile(
    r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?\s*"
    r"(?P<half>[ap]\.?\s*m\.?)?",
    re.IGNORECASE,
)
_TEXT = re.compile(r"\\(?:text|mathrm|textrm|mbox)\s*\{([^{}]*)\}")
# A choice letter opening an answer, then its option text: "B. 17 apples", "(B) 17",
# "B) 17", "C: 3/4", "(D)" alone.
_CHOICE = re.compile(
    r"(?P<open>\()?(?P<letter>[A-E])(?(open)\))(?P<mark>[.):]\s*|\s+|$)(?P<rest>.*)", re.DOTALL
)
_LETTER = re.compile(r"\(?([A-E])\)?")
_OTHER_LETTER = re.compile(r"(?<![A-Za-z\\])[A-E](?![A-Za-z])")
# A decimal comma: digits, a comma, digits that are not a thousands group (not exactly
# three, or a whole part of 0: "0,125" cannot be a thousands separator).
_DECIMAL_COMMA = re.compile(r"(?<![\d,.])(?P<whole>-?\d+),(?P<frac>\d+)(?![\d,.])")


def clock_seconds(text: str) -> int | None:
    """Seconds after midnight for a time of day (``14:05``, ``14:05:00``, ``2:05 PM``,
    ``2:05\\text{ p.m.}``), or None when ``text`` is not one."""
    clock = _clock(text)
    return None if clock is None else clock[0]


def clocks_equal(gold: str, answer: str) -> bool | None:
    """Whether two times of day are the same; None unless both are times. An answer with no
    AM/PM and an hour of 12 or less, against a reference that names its half of the day,
    is read on the 12-hour clock (``2:05`` answers ``2:05 PM``); otherwise hours are exact
    (``2:05`` does not answer ``14:05``)."""
    g, a = _clock(gold), _clock(answer)
    if g is None or a is None:
        return None
    if g[1] and not a[1] and a[2]:
        return g[0] % (12 * 3600) == a[0] % (12 * 3600)
    return g[0] == a[0]


def _clock(text: str) -> tuple[int, bool, bool] | None:
    """(seconds after midnight, names AM/PM, could be a 12-hour reading) or None."""
    match = _CLOCK.fullmatch(_TEXT.sub(r" \1", text).strip())
    if not match:
        return None
    hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
    if minute > 59 or second > 59:
        return None
    if match["half"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match["half"][0].lower() == "p" else 0)
    elif hour > 23:
        return None
    twelve_hour = not match["half"] and 1 <= hour <= 12 and not match["h"].startswith("0")
    return (hour * 60 + minute) * 60 + second, bool(match["half"]), twelve_hour


def choice_letter(text: str) -> str | None:
    """The letter of a multiple-choice reference (``B``, ``(B)``), or None."""
    match = _LETTER.fullmatch(text.strip())
    return match.group(1) if match else None


def chosen_letter(text: str) -> str | None:
    """The choice an answer opens with (``B. 17 apples`` -> ``B``), or None. A letter that
    starts a word or an expression (``Bx + 1``, ``A = 5``) is not a choice."""
    match = _CHOICE.fullmatch(text.strip())
    if not match:
        return None
    if _OTHER_LETTER.search(match["rest"]):
        return None  # "A B C D E", "(A) and (C)": every choice at once is none of them
    if match["open"] or match["mark"].strip():
        return match["letter"]  # "(B) ...", "B. ...", "B) ...", "C: ..."
    if match["rest"].strip()[:1] in ("=", "<", ">", "+", "-", "^", "_", "*", "/", "\\"):
        return None
    return match["letter"]


def decimal_comma_number(text: str) -> PlainNumber | None:
    """``text`` read with its one decimal comma as a point (``1,25`` -> 1.25, ``6,4 kg``),
    or None when it holds no such number, several numbers, or a thousands group."""
    matches = list(_DECIMAL_COMMA.finditer(text))
    if len(matches) != 1 or len(re.findall(r"\d+", text)) != 2:
        return None
    match = matches[0]
    if len(match["frac"]) == 3 and match["whole"].lstrip("-") != "0":
        return None  # 1,250 is twelve hundred and fifty in English
    rest = (text[: match.start()] + text[match.end() :]).strip()
    if rest not in ("", "%", "\\%") and not re.fullmatch(r"\\?%?\s*[A-Za-z ]*", rest):
        return None
    return parse_plain_number(f"{match['whole']}.{match['frac']}{'%' if '%' in rest else ''}")
