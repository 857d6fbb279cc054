"""Symbolic comparison: math-verify's grader with its float step replaced by an exact one.

math-verify compares numbers by rounding floats to 6 places and by ``evalf(chop=True)``,
which chops tiny values to zero: that is how ``1/2004!`` equals ``1/2006!`` and ``1/2^99``
equals ``1/2^98``. We run a private copy of its grader (its functions re-bound to a copy of
the module namespace, so nothing in the installed package or the caller's process changes)
in which ``sympy_numeric_eq`` decides numbers exactly: rationals by value, irrational
constants at 50 significant digits (relative, never absolute), decimals by the rules in
``numbers``. Expressions with free symbols are left to sympy's ``simplify``.

This module imports sympy and math-verify: it runs inside the checker's worker processes.
Its timeouts are off (``timeout_seconds=None``): math-verify's own use SIGALRM, which only
works on the main thread; the worker pool enforces a hard wall limit instead.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from fractions import Fraction
from types import FunctionType
from typing import Any

import sympy
from latex2sympy2_extended import NormalizationConfig, latex2sympy, normalize_latex
from math_verify import grader as _mv_grader
from mpmath.libmp import prec_to_dps, to_str

from grpo_env.environments.math.numbers import decimal_from_float_text, decimal_stands_for

# math-verify warns once that its timeouts are off (we enforce our own), and logs every
# comparison error at debug level: neither is news to our users.
logging.getLogger("math_verify").setLevel(logging.ERROR)

_NORMALIZATION = NormalizationConfig(
    basic_latex=True,
    units=True,
    malformed_operators=True,
    nits=True,
    boxed="all",
    equations=False,
)
_PERCENT = sympy.UnevaluatedExpr(sympy.Rational(1, 100))
_RELATIVE_TOLERANCE = sympy.Float("1e-40", 60)
_DIGITS = 50
_OR = re.compile(r"\s+or\s+|\\text\{\s*or\s*\}|\\(?:lor|vee)(?![A-Za-z])")
_AND = re.compile(r"\s+and\s+|\\text\{\s*and\s*\}|\\(?:land|wedge)(?![A-Za-z])")
# "3+4i", "2i": an i written next to a number is the imaginary unit.
_IMAGINARY_UNIT = re.compile(r"(?<=\d)\s*i(?![A-Za-z])|(?<![A-Za-z\\])i(?![A-Za-z])")


def to_sympy(text: str) -> Any | None:
    """``text`` (LaTeX or plain math) as a sympy object, or None when it does not parse.

    Inequalities joined by "or" (``x \\le -3 \\text{ or } x \\ge 3``) become the union of
    their solution sets; joined by "and" (``x > -1 \\text{ and } x < 3``), the intersection."""
    for separator, combine in ((_OR, sympy.Union), (_AND, sympy.Intersection)):
        parts = separator.split(text)
        if len(parts) > 1:
            relations = [_to_sympy(p) for p in parts]
            if all(isinstance(r, sympy.core.relational.Relational) for r in relations):
                try:
                    return combine(*(r.as_set() for r in relations))
                except (MemoryError, RecursionError):
                    raise
                except Exception:
                    return None
    return _to_sympy(text)


def _to_sympy(text: str) -> Any | None:
    normalized = normalize_latex(text, config=_NORMALIZATION)
    complex_valued = _mv_grader.should_treat_as_complex(normalized) or bool(
        _IMAGINARY_UNIT.search(normalized)
    )
    try:
        expr = latex2sympy(
            normalized,
            is_real=not complex_valued,
            convert_degrees=False,
            normalization_config=None,
        )
    except (MemoryError, RecursionError):
        raise
    except Exception:
        return None
    if complex_valued and hasattr(expr, "free_symbols"):
        # latex2sympy leaves "i" a plain symbol: make it the imaginary unit.
        units = {s: sympy.I for s in expr.free_symbols if getattr(s, "name", "") == "i"}
        if units:
            expr = expr.xreplace(units)
    return expr


def symbolic_equal(gold: Any, answer: Any) -> bool:
    """math-verify's ``verify`` (gold first: it is asymmetric) on parsed objects, with exact
    numbers. Comparison errors count as "not equal", as in math-verify."""
    if _is_unsolved_equation(answer) and not isinstance(gold, sympy.core.relational.Relational):
        return False
    try:
        return bool(
            _GRADER["verify"](
                gold,
                answer,
                timeout_seconds=None,
                allow_set_relation_comp=True,
                raise_on_error=True,
            )
        )
    except (MemoryError, RecursionError):
        raise
    except Exception:
        return False


def _is_unsolved_equation(expr: Any) -> bool:
    """``x^2 = 4`` answering "4": math-verify compares the right-hand side, so any equation
    ending in the right number would pass. Only a value assigned to a name (``x = 4``,
    ``f(2) = 4``) or a computation (``2 + 2 = 4``) states the value."""
    if not isinstance(expr, sympy.Eq):
        return False
    lhs = expr.lhs
    if not lhs.free_symbols:
        return False
    if isinstance(lhs, sympy.Symbol):
        return False
    # f(2) = 4 or f(x) = x^2: a function named by its arguments.
    return not (
        isinstance(lhs, sympy.Function)
        and all(not a.free_symbols or isinstance(a, sympy.Symbol) for a in lhs.args)
    )


def numbers_equal(gold: Any, answer: Any) -> bool | None:
    """Exact equality of two numeric sympy expressions; None when either is not a number."""
    if not (_is_number(gold) and _is_number(answer)):
        return None
    gold_variants, answer_variants = _percent_variants(gold), _percent_variants(answer)
    if len(gold_variants) == len(answer_variants) == 2:
        gold_variants, answer_variants = gold_variants[1:], answer_variants[1:]  # both "%"
    for g in gold_variants:
        for a in answer_variants:
            if _single_numbers_equal(g, a):
                return True
    return False


def _is_number(expr: Any) -> bool:
    return (
        isinstance(expr, sympy.Expr)
        and not isinstance(expr, sympy.MatrixBase)
        and bool(expr.is_number)
    )


def _percent_variants(expr: sympy.Expr) -> list[sympy.Expr]:
    # latex2sympy reads "50\%" as 50 * UnevaluatedExpr(1/100): 1/2, or 50 when the question
    # asked for a percentage.
    if isinstance(expr, sympy.Mul) and len(expr.args) == 2 and expr.args[1] == _PERCENT:
        value = expr.args[0]
        return [value / 100, value]
    return [expr]


def _single_numbers_equal(gold: sympy.Expr, answer: sympy.Expr) -> bool:
    gold, answer = _evaluated(gold), _evaluated(answer)
    if gold == answer:
        return True
    gold_float, answer_float = gold.has(sympy.Float), answer.has(sympy.Float)
    if not gold_float and not answer_float:
        if gold.is_Rational and answer.is_Rational:
            return False
        return _exact_values_close(gold, answer)
    if gold_float and answer_float:
        gold_decimal, answer_decimal = _as_decimal(gold), _as_decimal(answer)
        return gold_decimal is not None and gold_decimal == answer_decimal
    decimal_side, exact_side = (gold, answer) if gold_float else (answer, gold)
    decimal = _as_decimal(decimal_side)
    exact = _as_fraction(exact_side)
    if decimal is None or exact is None:
        return False
    return decimal_stands_for(
        decimal,
        exact,
        exact_is_rational=bool(exact_side.is_Rational),
        role="gold" if gold_float else "answer",
    )


def _evaluated(expr: sympy.Expr) -> sympy.Expr:
    try:
        return expr.doit()
    except (MemoryError, RecursionError):
        raise
    except Exception:
        return expr


def _exact_values_close(gold: sympy.Expr, answer: sympy.Expr) -> bool:
    """Two exact non-rational numbers (radicals, pi, e...) at 50 significant digits: a
    relative test, so tiny values are compared as carefully as large ones."""
    try:
        g = sympy.N(gold, _DIGITS)
        a = sympy.N(answer, _DIGITS)
        if not (g.is_finite and a.is_finite):
            return False
        scale = max(abs(g), abs(a))
        if scale == 0:
            return True
        return bool(abs(g - a) <= scale * _RELATIVE_TOLERANCE)
    except (MemoryError, RecursionError):
        raise
    except Exception:
        return False


def _as_decimal(expr: sympy.Expr) -> Decimal | None:
    """The decimal as written: a Float carries the precision of the digits it was parsed
    from, and its shortest string at that precision gives them back (``0.3333``, not
    ``0.333300000000000``)."""
    try:
        value = expr if isinstance(expr, sympy.Float) else sympy.N(expr, 15)
        if not isinstance(value, sympy.Float):
            return None
        text = to_str(value._mpf_, prec_to_dps(value._prec), strip_zeros=True)
        return decimal_from_float_text(text)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _as_fraction(expr: sympy.Expr) -> Fraction | None:
    if expr.is_Rational:
        return Fraction(int(expr.p), int(expr.q))
    try:
        value = sympy.N(expr, _DIGITS)
        if not isinstance(value, sympy.Float):
            return None
        return Fraction(Decimal(str(value)))
    except (TypeError, ValueError, ArithmeticError):
        return None


def _private_grader() -> dict[str, Any]:
    """A copy of math-verify's grader namespace whose ``sympy_numeric_eq`` is exact."""
    namespace = dict(vars(_mv_grader))
    for name, obj in list(namespace.items()):
        if isinstance(obj, FunctionType) and obj.__module__ == _mv_grader.__name__:
            clone = FunctionType(
                obj.__code__, namespace, obj.__name__, obj.__defaults__, obj.__closure__
            )
            clone.__kwdefaults__ = obj.__kwdefaults__
            namespace[name] = clone
    if "sympy_numeric_eq" not in namespace or "verify" not in namespace:
        raise ImportError(
            "this math-verify version has no grader.sympy_numeric_eq/verify; "
            "grpo-env supports math-verify 0.8-0.9"
        )
    original = namespace["sympy_numeric_eq"]

    def exact_numeric_eq(a: Any, b: Any, float_rounding: int, numeric_precision: int) -> bool:
        verdict = numbers_equal(a, b)
        if verdict is not None:
            return verdict
        if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
            return bool(original(a, b, float_rounding, numeric_precision))  # element-wise
        # Free symbols: no float shortcut (evalf(chop=True) equates x/2004! and x/2006!);
        # math-verify's simplify-based symbolic step runs next.
        return False

    namespace["sympy_numeric_eq"] = exact_numeric_eq
    return namespace


_GRADER = _private_grader()
