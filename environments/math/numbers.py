"""Exact numbers: plain numerals parsed to ``Fraction``, and when a decimal may stand for an
exact value (pure Python, no sympy).

Comparison is exact first: ``0.5 == 1/2`` but ``0.333 != 1/3`` and ``1/2^99 != 1/2^98``
however small the difference. Float rounding to a fixed number of places (math-verify's
``float_rounding``) is what lets ``1/2004!`` equal ``1/2006!``, so no such rounding happens
here. A decimal is accepted for an exact value it does not equal in two narrow cases, the way
a careful grader reads them:

- the answer is a decimal approximation of an exact value that has no finite decimal form
  at that precision (``0.333333`` for ``1/3``, ``1.41421356`` for ``\\sqrt 2``): at least 6
  significant digits (math-verify's 6 places, made relative), and the exact value correctly
  rounded or truncated (``1.414214`` and ``1.414213`` stand for ``\\sqrt 2``, ``1.414215``
  does not; ``0.3333`` and ``1.414`` are too coarse to be accepted for an exact answer);
- the reference is a rounded decimal (``33.3``, at least 3 significant digits) and the answer
  is the exact value it was rounded from (``100/3``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Literal

Role = Literal["gold", "answer"]

MIN_SIG_ANSWER_APPROX = 6
MIN_SIG_GOLD_ROUNDED = 3
FLOAT_DIGITS = 15

_UNSIGNED = r"(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+|\d+)(?:\.\d*)?|\.\d+"
_EXPONENT = (
    r"(?:[eE](?P<e1>[+-]?\d+)"
    r"|\s*(?:\\times|\\cdot|\*|×|x)\s*10\s*\^\s*\{?\s*(?P<e2>[+-]?\d+)\s*\}?)"
)
_DECIMAL = re.compile(rf"(?P<sign>[+-]?)\s*(?P<mant>{_UNSIGNED})(?:{_EXPONENT})?")
_FRAC_LATEX = re.compile(
    r"(?P<sign>[+-]?)\s*\\frac\s*(?:\{\s*(?P<n>[^{}]+?)\s*\}|(?P<n1>\d))\s*"
    r"(?:\{\s*(?P<d>[^{}]+?)\s*\}|(?P<d1>\d))"
)
_FRAC_SLASH = re.compile(r"(?P<n>[+-]?[^/]+?)\s*/\s*(?P<d>[+-]?[^/]+)")
_REPEATING = re.compile(
    r"(?P<sign>[+-]?)\s*(?P<whole>\d*)\.(?P<fixed>\d*)\s*\\overline\s*\{\s*(?P<period>\d+)\s*\}"
)
_MIXED_LATEX = re.compile(r"(?P<sign>[+-]?)\s*(?P<whole>\d+)\s*(?P<frac>\\frac.*)")
_MIXED_SLASH = re.compile(r"(?P<sign>[+-]?)\s*(?P<whole>\d+)\s+(?P<frac>\d+\s*/\s*\d+)")


@dataclass(frozen=True)
class PlainNumber:
    """A numeral as written: its exact value and, for decimals, the precision it shows."""

    value: Fraction
    decimal: Decimal | None = None  # set when written with a point or an exponent
    percent: bool = False

    def variants(self) -> list[Fraction]:
        # "50%" is 1/2 or, when the question asked for a percentage, 50.
        if self.percent:
            return [self.value / 100, self.value]
        return [self.value]


def parse_plain_number(text: str) -> PlainNumber | None:
    """``text`` as one plain number, or None.

    Accepts integers, decimals, thousands separators (``1,234,567``, ``1 234``), scientific
    notation (``1.5e3``, ``1.5\\times10^{3}``), fractions (``3/4``, ``\\frac{3}{4}``,
    ``\\frac34``), mixed numbers (``2\\frac{1}{2}``, ``2 1/2``) and a trailing ``%``.
    """
    text = text.strip()
    percent = False
    if text.endswith("%"):
        percent = True
        text = text[:-1].rstrip()
    number = _parse_unsigned_form(text)
    if number is None:
        return None
    return PlainNumber(number.value, number.decimal, percent)


def _parse_unsigned_form(text: str) -> PlainNumber | None:
    if not text:
        return None
    match = _DECIMAL.fullmatch(text)
    if match:
        return _decimal_number(match)
    match = _REPEATING.fullmatch(text)
    if match:
        return PlainNumber(_repeating_value(match))
    for pattern in (_MIXED_LATEX, _MIXED_SLASH):
        match = pattern.fullmatch(text)
        if match:
            frac = _parse_fraction(match["frac"])
            # Only a proper fraction makes a mixed number: "2 3/4", never "2 5/4".
            if frac is not None and 0 <= frac < 1:
                value = int(match["whole"]) + frac
                return PlainNumber(-value if match["sign"] == "-" else value)
            return None
    value = _parse_fraction(text)
    return PlainNumber(value) if value is not None else None


def _parse_fraction(text: str) -> Fraction | None:
    match = _FRAC_LATEX.fullmatch(text)
    if match:
        num = _simple_value(match["n"] if match["n"] is not None else match["n1"])
        den = _simple_value(match["d"] if match["d"] is not None else match["d1"])
        sign = -1 if match["sign"] == "-" else 1
    else:
        match = _FRAC_SLASH.fullmatch(text)
        if not match:
            return None
        num, den = _simple_value(match["n"]), _simple_value(match["d"])
        sign = 1
    if num is None or den is None or den == 0:
        return None
    return sign * num / den


def _repeating_value(match: re.Match[str]) -> Fraction:
    """``0.1\\overline{6}`` = 1/6: the fixed digits, then the period repeating forever."""
    fixed, period = match["fixed"], match["period"]
    value = Fraction(int(match["whole"] or 0))
    if fixed:
        value += Fraction(int(fixed), 10 ** len(fixed))
    value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    return -value if match["sign"] == "-" else value


def _simple_value(text: str) -> Fraction | None:
    match = _DECIMAL.fullmatch(text.strip())
    return _decimal_number(match).value if match else None


def _decimal_number(match: re.Match[str]) -> PlainNumber:
    mantissa = match["mant"].replace(",", "").replace(" ", "")
    exponent = match["e1"] or match["e2"]
    written = Decimal(mantissa if not mantissa.endswith(".") else mantissa[:-1])
    if exponent is not None:
        written = written.scaleb(int(exponent))
    if match["sign"] == "-":
        written = -written
    is_decimal = "." in mantissa or exponent is not None
    return PlainNumber(Fraction(written), written if is_decimal else None)


def significant_digits(decimal: Decimal) -> int:
    digits = decimal.as_tuple().digits
    stripped = "".join(map(str, digits)).lstrip("0")
    return len(stripped)


def unit_in_last_place(decimal: Decimal) -> Fraction:
    exponent = decimal.as_tuple().exponent
    assert isinstance(exponent, int)
    return Fraction(10) ** exponent


def representable(value: Fraction, decimal: Decimal) -> bool:
    """Whether ``value`` can be written exactly with ``decimal``'s number of places."""
    scaled = value / unit_in_last_place(decimal)
    return scaled.denominator == 1


def decimal_stands_for(
    decimal: Decimal, exact: Fraction, *, exact_is_rational: bool, role: Role
) -> bool:
    """Whether the written ``decimal`` is a faithful approximation of ``exact`` (see the module
    docstring). ``exact`` is the exact value, or a 50-digit approximation of an irrational
    one (then ``exact_is_rational`` is False). ``role`` says who wrote the decimal."""
    written = Fraction(decimal)
    if written == exact:
        return True
    if exact_is_rational and representable(exact, decimal):
        return False  # e.g. 1234.1 for 1234: the answer could have been written exactly
    error = abs(written - exact)
    ulp = unit_in_last_place(decimal)
    sig = significant_digits(decimal)
    rounded = error <= ulp / 2
    if role == "gold":
        return sig >= MIN_SIG_GOLD_ROUNDED and rounded
    truncated = error < ulp and abs(written) <= abs(exact) and (written >= 0) == (exact >= 0)
    # A printed double (1.4142135623730951) may be off by one in its 16th-17th digit.
    float_noise = sig >= FLOAT_DIGITS and error < ulp
    return sig >= MIN_SIG_ANSWER_APPROX and (rounded or truncated or float_noise)


def plain_numbers_equal(gold: PlainNumber, answer: PlainNumber) -> tuple[bool, str]:
    """Exact comparison of two plain numbers, then the decimal rules. Returns (equal, method)."""
    if gold.percent and answer.percent:
        # Both say "%": 12.5% is not 0.125%.
        gold, answer = (
            PlainNumber(gold.value, gold.decimal),
            PlainNumber(answer.value, answer.decimal),
        )
    for g in gold.variants():
        for a in answer.variants():
            if g == a:
                return True, "exact-number"
    if answer.decimal is not None and gold.decimal is None:
        for g in gold.variants():
            if decimal_stands_for(answer.decimal, g, exact_is_rational=True, role="answer"):
                return True, "decimal-approximation"
    if gold.decimal is not None and answer.decimal is None:
        for a in answer.variants():
            if decimal_stands_for(gold.decimal, a, exact_is_rational=True, role="gold"):
                return True, "rounded-reference"
    return False, "exact-number"


def decimal_from_float_text(text: str) -> Decimal:
    """A Decimal from a number's shortest printed form (``0.1``, not the binary expansion
    ``0.1000000000000000055…``), so the digits that were written are the ones compared."""
    with localcontext() as ctx:
        ctx.prec = 60
        return Decimal(text)
