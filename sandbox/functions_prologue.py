"""Trusted code run before a file of test functions, on the trusted side (the harness; never in
the solution's process). Its source is sent as the suite's setup, after one line that sets
``_GRPO_MODULE_NAMES``. It provides:

- the solution as an importable module (``from solution import add``), made of the proxies the
  harness bound, so nothing of the solution is ever imported here;
- a small ``pytest`` (``raises``, ``approx``, ``mark.parametrize``/``skip``/``skipif``/``xfail``,
  ``fixture``, ``skip``, ``fail``) as the sandbox has none;
- the runners each case calls: a test function (every parameter set), a method of a plain
  test class, a ``unittest.TestCase`` method (``setUpClass``, ``setUp``, ``tearDown``, sub-tests).

A skipped or expected-to-fail test raises: it checked nothing, so it counts as failed.
"""

if __name__ != "__main__":  # the harness runs it as __main__; imported, it would patch pytest
    raise ImportError("functions_prologue is sent to the sandbox as text, never imported")

import inspect as _grpo_inspect
import itertools as _grpo_itertools
import math as _grpo_math
import re as _grpo_re
import sys as _grpo_sys
import types as _grpo_types
import unittest as _grpo_unittest

_GRPO_MODULE_NAMES = globals().get("_GRPO_MODULE_NAMES", ("solution",))
_GRPO_TEST_FILE = globals().get("_GRPO_TEST_FILE", "tests.py")
_GRPO_SETUP_LINE = _grpo_re.compile(r'File "<test setup>", line (\d+)')


def _grpo_solution_module():
    module = _grpo_types.ModuleType("solution")
    for name, value in list(globals().items()):
        if not name.startswith("_"):
            setattr(module, name, value)  # only the solution's names are bound at this point
    for name in _GRPO_MODULE_NAMES:
        # Never in place of a module the trusted side may import (a solution file json.py).
        taken = name in _grpo_sys.modules or name in _grpo_sys.stdlib_module_names
        if name == "solution" or not taken:
            _grpo_sys.modules[name] = module


_grpo_solution_module()


class _GrpoSkipped(Exception):
    """A test that did not run its checks (skipped, xfail, no parameter sets)."""


_GrpoSkipped.__name__ = _GrpoSkipped.__qualname__ = "Skipped"  # as the failure detail shows it


def _grpo_skip(reason="", **_):
    raise _GrpoSkipped(f"skipped ({reason})" if reason else "skipped")


def _grpo_fail(reason="", **_):
    raise AssertionError(reason or "failed")


class _GrpoRaises:
    def __init__(self, expected, match=None):
        self.expected, self.match, self.value = expected, match, None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            raise AssertionError(f"DID NOT RAISE {self.expected}")
        # Only the solution's own errors count: never a refused comparison or an incident.
        if not issubclass(kind, Exception) or kind.__name__ == "NotPlainData":
            return False
        if not issubclass(kind, self.expected):
            return False
        if self.match is not None and not _grpo_re.search(self.match, str(value)):
            raise AssertionError(f"{str(value)!r} does not match {self.match!r}")
        self.value = value
        return True


def _grpo_raises(expected, *args, match=None, **kwargs):
    context = _GrpoRaises(expected, match)
    if not args:
        return context
    with context:
        args[0](*args[1:], **kwargs)
    return context


class _GrpoApprox:
    def __init__(self, expected, rel=None, abs=None):
        self.expected = expected
        self.rel = 1e-6 if rel is None else rel
        self.abs = 1e-12 if abs is None else abs

    def _close(self, got, want):
        if isinstance(want, dict):
            return (
                type(got) is dict
                and got.keys() == want.keys()
                and all(self._close(got[k], want[k]) for k in want)
            )
        if isinstance(want, list | tuple):
            return (
                type(got) in (list, tuple)
                and len(got) == len(want)
                and all(self._close(g, w) for g, w in zip(got, want, strict=True))
            )
        if type(got) in (int, float) and type(want) in (int, float):
            return _grpo_math.isclose(got, want, rel_tol=self.rel, abs_tol=self.abs)
        return type(got) in (int, float, str, bool, type(None), complex) and got == want

    def __eq__(self, other):
        return self._close(other, self.expected)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = None

    def __repr__(self):
        return f"approx({self.expected!r})"


def _grpo_marker(attribute, value_of):
    """A mark usable bare (``@mark.skip``) or called (``@mark.skip(reason=...)``)."""

    def mark(*args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            setattr(args[0], attribute, value_of((), {}))
            return args[0]

        def decorate(fn):
            value = value_of(args, kwargs)
            if value is not None:
                setattr(fn, attribute, value)
            return fn

        return decorate

    return mark


def _grpo_skipif_value(args, kwargs):
    condition = args[0] if args else kwargs.get("condition", True)
    return kwargs.get("reason", "skipif") if condition else None


class _GrpoMark:
    skip = staticmethod(_grpo_marker("_grpo_skip", lambda a, k: k.get("reason", "skip")))
    skipif = staticmethod(_grpo_marker("_grpo_skip", _grpo_skipif_value))
    xfail = staticmethod(_grpo_marker("_grpo_skip", lambda a, k: "xfail"))

    @staticmethod
    def parametrize(names, values, **_):
        def decorate(fn):
            fn._grpo_params = [(names, list(values)), *getattr(fn, "_grpo_params", [])]
            return fn

        return decorate

    def __getattr__(self, name):  # custom marks: no effect
        return _grpo_marker("_grpo_unused_mark", lambda a, k: None)


class _GrpoParam:
    def __init__(self, *values, id=None, marks=()):
        self.values = values


_GRPO_FIXTURES = {}


def _grpo_fixture(fn=None, *, name=None, **_):
    def register(f):
        _GRPO_FIXTURES[name or f.__name__] = f
        return f

    return register(fn) if callable(fn) else register


_grpo_pytest = _grpo_types.ModuleType("pytest")
_grpo_pytest.raises = _grpo_raises
_grpo_pytest.approx = _GrpoApprox
_grpo_pytest.mark = _GrpoMark()
_grpo_pytest.param = _GrpoParam
_grpo_pytest.fixture = _grpo_fixture
_grpo_pytest.skip = _grpo_skip
_grpo_pytest.fail = _grpo_fail
_grpo_sys.modules["pytest"] = _grpo_pytest


def _grpo_param_sets(fn):
    sets = [{}]
    for names, values in getattr(fn, "_grpo_params", []):
        keys = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        rows = []
        for value in values:
            if isinstance(value, _GrpoParam):
                row = value.values
            else:
                row = (value,) if len(keys) == 1 else tuple(value)
            if len(row) != len(keys):
                raise TypeError(f"parametrize: {len(keys)} names but a row of {len(row)}")
            rows.append(dict(zip(keys, row, strict=True)))
        sets = [{**a, **b} for a, b in _grpo_itertools.product(sets, rows)]
    if not sets:
        raise _GrpoSkipped("no parameter sets")
    return sets


def _grpo_fixture_value(name, cleanups, seen=()):
    if name not in _GRPO_FIXTURES or name in seen:
        raise TypeError(f"fixture {name!r} is not available in the sandbox")
    fixture = _GRPO_FIXTURES[name]
    kwargs = {
        arg: _grpo_fixture_value(arg, cleanups, (*seen, name))
        for arg in _grpo_inspect.signature(fixture).parameters
    }
    value = fixture(**kwargs)
    if _grpo_inspect.isgenerator(value):
        cleanups.append(value)
        value = next(value)
    return value


def _grpo_file_line(setup_line):
    """The test file's line for a line of the setup (the file follows this prologue)."""
    line = setup_line - globals().get("_GRPO_LINE_OFFSET", 0)
    return f"{_GRPO_TEST_FILE}:{line}" if line > 0 else ""


def _grpo_pointed(err):
    """The failure, said with the test file's line where it happened."""
    where = ""
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<test setup>":
            where = _grpo_file_line(tb.tb_lineno) or where
        tb = tb.tb_next
    if not where:
        return None
    what = f"{type(err).__name__}: {err}" if not isinstance(err, AssertionError) else str(err)
    return AssertionError(f"{where}: {what}" if what else where)


def _grpo_call(fn, params):
    try:
        _grpo_call_once(fn, params)
    except _GrpoSkipped:
        raise
    except Exception as err:  # never an incident: those are BaseExceptions and pass through
        pointed = _grpo_pointed(err)
        if pointed is None:
            raise
        raise pointed from None


def _grpo_call_once(fn, params):
    cleanups = []
    wanted = [n for n in _grpo_inspect.signature(fn).parameters if n not in params]
    kwargs = {**params, **{n: _grpo_fixture_value(n, cleanups) for n in wanted}}
    result = fn(**kwargs)
    if _grpo_inspect.isgenerator(result) or _grpo_inspect.iscoroutine(result):
        raise TypeError("generator and async tests are not supported: nothing was checked")
    for cleanup in reversed(cleanups):
        next(cleanup, None)


def _grpo_run_function(fn):
    if getattr(fn, "_grpo_skip", None) is not None:
        raise _GrpoSkipped(f"marked {fn._grpo_skip}")
    for params in _grpo_param_sets(fn):
        _grpo_call(fn, params)


def _grpo_run_method(cls, name):
    if isinstance(cls, type) and issubclass(cls, _grpo_unittest.TestCase):
        _grpo_run_unittest(cls, name)
        return
    for params in _grpo_param_sets(getattr(cls, name)):
        instance = cls()
        method = getattr(instance, name)
        if getattr(method, "_grpo_skip", None) is not None:
            raise _GrpoSkipped(f"marked {method._grpo_skip}")
        if hasattr(instance, "setup_method"):
            instance.setup_method(method)
        _grpo_call(method, params)
        if hasattr(instance, "teardown_method"):
            instance.teardown_method(method)


_GRPO_CLASSES_SET_UP = {}


def _grpo_run_unittest(cls, name):
    if cls not in _GRPO_CLASSES_SET_UP:
        try:
            cls.setUpClass()
            _GRPO_CLASSES_SET_UP[cls] = None
        except Exception as err:
            _GRPO_CLASSES_SET_UP[cls] = err
    if _GRPO_CLASSES_SET_UP[cls] is not None:
        raise AssertionError(f"setUpClass failed: {_GRPO_CLASSES_SET_UP[cls]!r}")
    result = _grpo_unittest.TestResult()
    cls(name).run(result)
    problems = result.errors + result.failures
    if problems:
        text = problems[0][1].strip()
        lines = _GRPO_SETUP_LINE.findall(text)
        where = _grpo_file_line(int(lines[-1])) if lines else ""
        last = text.splitlines()[-1]
        raise AssertionError((f"{where}: {last}" if where else last)[:500])
    if result.skipped:
        raise _GrpoSkipped(f"skipped ({result.skipped[0][1]})")
    if result.expectedFailures or result.unexpectedSuccesses:
        raise _GrpoSkipped("marked expectedFailure")
    if result.testsRun != 1 or not result.wasSuccessful():
        raise AssertionError("the test did not run")
