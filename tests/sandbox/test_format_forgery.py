"""Every test format keeps the unforgeable verdict: HumanEval checks, test functions, unittest
classes and stdin/stdout cases. The tricks of test_verdict_forgery.py, per format; both
backends (the harness and the judge are the same code)."""

from __future__ import annotations

import textwrap

import pytest

from grpo_env.sandbox import ExecutionRequest, ExecutionResult, Limits
from grpo_env.sandbox.formats import load_suite
from grpo_env.sandbox.models import IOSuite

CHECK = """
def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-4, 1) == -3
    assert candidate(10, 32) == 42
"""
FUNCTIONS = """
import pytest
from solution import add

def test_small():
    assert add(2, 3) == 5

@pytest.mark.parametrize("a, b", [(-4, 1), (0, 0)])
def test_param(a, b):
    assert add(a, b) == a + b

class TestMore:
    def test_big(self):
        assert add(10, 32) == 42
"""
UNITTEST = """
import unittest

class TestAdd(unittest.TestCase):
    def setUp(self):
        self.base = 10

    def test_base(self):
        self.assertEqual(add(self.base, 32), 42)

    def test_negative(self):
        self.assertEqual(add(-4, 1), -3)
"""
ADD_FORMATS = {"check": CHECK, "functions": FUNCTIONS, "unittest": UNITTEST}
GOOD_ADD = "def add(a, b):\n    return a + b\n"

# Each of these must fail every test of every format.
ADD_ATTACKS = {
    "wrong": "def add(a, b):\n    return a - b\n",
    "exit-at-import": "import sys\nsys.exit(0)\n",
    "os_exit-in-call": "def add(a, b):\n    import os\n    os._exit(0)\n",
    "equals-everything": textwrap.dedent(
        """
        class Anything(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        def add(a, b):
            return Anything(0)
        """
    ),
    "fake-verdicts-on-every-fd": textwrap.dedent(
        """
        import os, json
        def add(a, b):
            for fd in range(1, 64):
                for case in range(10):
                    line = json.dumps({"case": case, "passed": True, "kind": "passed"})
                    try:
                        os.write(fd, (line + "\\n").encode())
                    except OSError:
                        pass
            return None
        """
    ),
    "raises-skiptest": "import unittest\ndef add(a, b):\n    raise unittest.SkipTest('no')\n",
    "shadows-the-runner": textwrap.dedent(
        """
        def add(a, b):
            return 0
        def _grpo_run_function(fn): pass
        def _grpo_run_method(cls, name): pass
        def test_small(): pass
        def check(candidate): pass
        class TestAdd: pass
        pytest = None
        """
    ),
}


def run_add(sandbox, fmt: str, code: str) -> ExecutionResult:
    fmt_name = "functions" if fmt == "unittest" else fmt
    _, suite = load_suite(ADD_FORMATS[fmt], fmt=fmt_name, entry_point="add")
    request = ExecutionRequest(code=code, tests=suite, limits=Limits(timeout_s=10))
    return sandbox.run(request)


@pytest.mark.parametrize("fmt", sorted(ADD_FORMATS))
def test_correct_solution_passes_every_format(any_sandbox, fmt):
    result = run_add(any_sandbox, fmt, GOOD_ADD)
    assert result.status.value == "passed", result.tests
    assert result.tests_passed == result.tests_total >= 2


@pytest.mark.parametrize("attack", sorted(ADD_ATTACKS))
@pytest.mark.parametrize("fmt", sorted(ADD_FORMATS))
def test_attacks_fail_every_format(any_sandbox, fmt, attack):
    result = run_add(any_sandbox, fmt, ADD_ATTACKS[attack])
    assert result.tests_passed == 0, (result.status, result.tests)
    assert result.status.value != "passed"


def test_skipped_and_expected_failures_count_as_failed(any_sandbox):
    tests = """
import pytest, unittest

@pytest.mark.skip(reason="later")
def test_skip():
    assert add(1, 1) == 2

@pytest.mark.xfail
def test_xfail():
    assert add(1, 1) == 3

@pytest.mark.parametrize("a", [])
def test_no_params(a):
    assert add(a, a) == 2 * a

class TestU(unittest.TestCase):
    @unittest.skip("no")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_expected(self):
        self.assertEqual(add(1, 1), 3)

    def test_skip_inside(self):
        self.skipTest("no")

def test_ok():
    assert add(1, 1) == 2
"""
    _, suite = load_suite(tests)
    result = any_sandbox.run(ExecutionRequest(code=GOOD_ADD, tests=suite))
    assert [t.passed for t in result.tests] == [False] * 6 + [True], result.tests


def test_setup_and_fixtures_are_honoured(any_sandbox):
    tests = """
import pytest, unittest

@pytest.fixture
def pair():
    yield (20, 22)

def test_fixture(pair):
    assert add(*pair) == 42

def test_raises():
    with pytest.raises(TypeError):
        add(1, "x")

class TestU(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.total = add(1, 1)

    def setUp(self):
        self.base = add(self.total, 40)

    def test_uses_setup(self):
        self.assertEqual(self.base, 42)
"""
    _, suite = load_suite(tests)
    result = any_sandbox.run(ExecutionRequest(code=GOOD_ADD, tests=suite))
    assert result.status.value == "passed", result.tests
    wrong = any_sandbox.run(ExecutionRequest(code="def add(a, b):\n    return 0\n", tests=suite))
    assert wrong.tests_passed == 0, wrong.tests  # returns 0: raises nothing either


def test_pytest_raises_does_not_swallow_refused_comparisons(any_sandbox):
    # The expected exception must come from the solution, not from comparing its fake object.
    tests = """
import pytest
def test_compare_raises():
    with pytest.raises(TypeError):
        assert add(1, 2) == 3
"""
    fake = "class Box:\n    pass\ndef add(a, b):\n    return Box()\n"
    _, suite = load_suite(tests)
    result = any_sandbox.run(ExecutionRequest(code=fake, tests=suite))
    assert result.tests_passed == 0, result.tests


# ----- stdin/stdout -------------------------------------------------------------------------

SUM_CASES = {"inputs": ["1 2\n", "3 4\n", "10 32\n"], "outputs": ["3\n", "7\n", "42\n"]}
GOOD_SUM = "a, b = map(int, input().split())\nprint(a + b)\n"


def run_io(sandbox, code: str, cases=SUM_CASES, **limits) -> ExecutionResult:
    suite = load_suite(__import__("json").dumps(cases), filename="cases.json")[1]
    assert isinstance(suite, IOSuite)
    request = ExecutionRequest(
        code=textwrap.dedent(code), io=suite, limits=Limits(timeout_s=10, **limits)
    )
    return sandbox.run(request)


def test_io_program_passes(any_sandbox):
    result = run_io(any_sandbox, GOOD_SUM)
    assert (result.status.value, result.tests_passed, result.tests_total) == ("passed", 3, 3)
    # Every way of reading stdin works: it is a real file on fd 0.
    for reader in (
        "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n",
        "import sys\nprint(sum(map(int, sys.stdin.buffer.readline().split())))\n",
        "print(sum(map(int, open(0).read().split())))\n",
        "import os\nprint(sum(map(int, os.read(0, 100).split())))\n",
    ):
        assert run_io(any_sandbox, reader).tests_passed == 3, reader


IO_ATTACKS = {
    "wrong": "print(0)\n",
    "silent-exit": "import os\nos._exit(0)\n",
    "fake-verdicts-on-every-fd": textwrap.dedent(
        """
        import os, json
        for fd in range(1, 64):
            for case in range(10):
                line = json.dumps({"case": case, "passed": True, "kind": "passed"})
                try:
                    os.write(fd, (line + "\\n").encode())
                except OSError:
                    pass
        """
    ),
    "right-answer-then-crash": (
        "a, b = map(int, input().split())\nprint(a + b, flush=True)\nraise SystemExit(3)\n"
    ),
}


@pytest.mark.parametrize("attack", sorted(IO_ATTACKS))
def test_io_attacks_fail(any_sandbox, attack):
    result = run_io(any_sandbox, IO_ATTACKS[attack])
    assert result.tests_passed == 0, (result.status, result.tests)
    assert result.status.value != "passed"


# Docker only: without a container these reach every process of the user running the tests
# (kill(-1) as root takes the whole machine down) and read other processes' environments.
IO_ATTACKS_IN_A_BOX = {
    "kill-everything": "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint(3)\n",
    "kill-parent-then-forge": textwrap.dedent(
        """
        import os, signal, json
        os.kill(os.getppid(), signal.SIGKILL)
        for fd in range(1, 64):
            try:
                os.write(fd, json.dumps({"case": 0, "passed": True}).encode() + b"\\n")
            except OSError:
                pass
        """
    ),
    "read-other-processes": textwrap.dedent(
        """
        import os
        seen = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                for name in ("cmdline", "environ", "mem"):
                    try:
                        with open(f"/proc/{pid}/{name}", "rb") as f:
                            seen.append(f.read(1 << 16))
                    except OSError:
                        pass
        blob = b"".join(seen)
        print("42" if b"42" in blob else "nothing")
        """
    ),
}


@pytest.mark.docker
@pytest.mark.parametrize("attack", sorted(IO_ATTACKS_IN_A_BOX))
def test_io_attacks_on_the_box_fail(docker_sandbox, attack):
    result = run_io(docker_sandbox, IO_ATTACKS_IN_A_BOX[attack])
    assert result.tests_passed == 0, (result.status, result.tests)


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        ("raise ValueError('boom')", "runtime_error"),
        ("import time\n    time.sleep(60)", "timeout"),
        ("print('x' * 3_000_000)", "output"),
        ("import os, time\n    if os.fork() == 0:\n        time.sleep(60)\n    print(7)", None),
    ],
    ids=["crash", "timeout", "flood", "background-child"],
)
def test_a_bad_case_fails_alone(any_sandbox, bad, kind):
    # The second case misbehaves; the first and third still count.
    code = f"a, b = map(int, input().split())\nif a == 3:\n    {bad}\nprint(a + b)\n"
    result = run_io(any_sandbox, code, test_timeout_s=1.5)
    assert [t.passed for t in result.tests] == [True, False, True], result.tests
    if kind is not None:
        assert result.tests[1].kind == kind, result.tests[1]


def test_io_large_input_and_float_compare(any_sandbox):
    numbers = " ".join(str(i) for i in range(200_000))
    cases = {"inputs": [numbers], "outputs": [str(200_000 / 3)]}
    code = "import sys\nprint(len(sys.stdin.read().split()) / 3 + 1e-7)\n"
    assert run_io(any_sandbox, code, cases).tests_passed == 0  # exact by default
    suite = load_suite(__import__("json").dumps(cases), filename="c.json", compare="float")[1]
    result = any_sandbox.run(ExecutionRequest(code=code, io=suite, limits=Limits(timeout_s=10)))
    assert result.tests_passed == 1, result.tests


def test_fn_name_calls_cross_as_data(any_sandbox):
    cases = {"fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [[3], 7]}
    suite = load_suite(__import__("json").dumps(cases), filename="c.json")[1]
    for code, passed in [
        (GOOD_ADD, 2),
        ("class Solution:\n    def add(self, a, b):\n        return a + b\n", 2),
        (ADD_ATTACKS["equals-everything"], 0),
    ]:
        result = any_sandbox.run(ExecutionRequest(code=code, tests=suite))
        assert result.tests_passed == passed, (code, result.tests)


def test_a_solution_named_like_a_stdlib_module_does_not_replace_it(local_sandbox):
    # `sandbox run json.py --tests test_json.py`: the tests may not import the solution as
    # `json`, and the trusted side's own json stays the real one.
    from grpo_env.sandbox.testfunctions import suite_from_test_functions

    tests = "import json\n\ndef test_real_json():\n    assert json.dumps([1]) == '[1]'\n"
    suite = suite_from_test_functions(tests, module_names=("solution", "json"))
    code = "def dumps(x):\n    return '[1]'\n"
    result = local_sandbox.run(ExecutionRequest(code=code, tests=suite))
    assert result.status.value == "passed", result.tests
    evil = "def dumps(x):\n    return 'nope'\n"
    assert local_sandbox.run(ExecutionRequest(code=evil, tests=suite)).tests_passed == 1


def test_failures_point_at_the_test_files_line(local_sandbox):
    tests = (
        "import unittest\n\n\n"
        "def test_wrong():\n    assert add(1, 1) == 3\n\n\n"
        "class T(unittest.TestCase):\n    def test_u(self):\n"
        "        self.assertEqual(add(1, 1), 3)\n"
        "\n\nif __name__ == '__main__':\n    unittest.main()\n"
    )
    _, suite = load_suite(tests, filename="/x/test_add.py")
    result = local_sandbox.run(ExecutionRequest(code=GOOD_ADD, tests=suite))
    details = [t.detail for t in result.tests]
    assert "test_add.py:5" in details[0], details
    assert "test_add.py:10" in details[1] and "2 != 3" in details[1], details


def test_fn_name_under_a_builtins_name_is_the_solutions(any_sandbox):
    cases = {"fn_name": "len", "inputs": [["ab"], [[1, 2, 3]]], "outputs": [[20], 30]}
    suite = load_suite(__import__("json").dumps(cases), filename="c.json")[1]
    tens = "def len(x):\n    return 10 * sum(1 for _ in x)\n"
    result = any_sandbox.run(ExecutionRequest(code=tens, tests=suite))
    assert result.tests_passed == 2, result.tests
    lying = "def len(x):\n    return 0\n"
    assert any_sandbox.run(ExecutionRequest(code=lying, tests=suite)).tests_passed == 0
