"""The verdict cannot be forged: every trick a candidate can play from inside its own process
ends with its tests failed. Run on both backends (the harness is the same code)."""

from __future__ import annotations

import os
import textwrap

import pytest

from grpo_env.sandbox import ExecutionRequest, ExecutionResult, Limits, TestCase, TestSuite

ADD_TESTS = ["assert add(2, 3) == 5", "assert add(-4, 1) == -3", "assert add(10, 32) == 42"]


def run(
    sandbox, code: str, tests: list[str] = ADD_TESTS, timeout_s: float = 5.0, **suite
) -> ExecutionResult:
    cases = [TestCase(name=f"t{i}", code=t) for i, t in enumerate(tests)]
    request = ExecutionRequest(
        code=textwrap.dedent(code),
        tests=TestSuite(cases=cases, **suite),
        limits=Limits(timeout_s=timeout_s),
    )
    return sandbox.run(request)


def assert_all_failed(result: ExecutionResult, *statuses: str) -> None:
    assert result.status.value != "passed", result
    assert result.tests_passed == 0, result.tests
    assert not any(t.passed for t in result.tests)
    if statuses:
        assert result.status.value in statuses, (result.status, result.error, result.tests)


def test_correct_solution_passes(any_sandbox):
    result = run(any_sandbox, "def add(a, b):\n    return a + b\n")
    assert result.status.value == "passed", result
    assert (result.tests_passed, result.tests_total) == (3, 3)
    assert result.compiled is True


def test_wrong_solution_fails_each_test(any_sandbox):
    result = run(any_sandbox, "def add(a, b):\n    return a - b\n")
    assert_all_failed(result, "failed")
    assert all(t.kind == "failed" and "assertion failed" in t.detail for t in result.tests)


def test_partial_credit_counts_each_test(any_sandbox):
    result = run(any_sandbox, "def add(a, b):\n    return a + b if a > 0 else 0\n")
    assert (result.status.value, result.tests_passed, result.tests_total) == ("failed", 2, 3)
    assert [t.passed for t in result.tests] == [True, False, True]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("import sys\nsys.exit(0)\n", "error"),
        ("import os\nos._exit(0)\n", "error"),
        ("raise SystemExit(0)\n", "error"),
        ("import os, sys\nos.execv(sys.executable, [sys.executable, '-c', 'pass'])\n", "error"),
        ("def add(a, b):\n    import sys\n    sys.exit(0)\n", "failed"),
        ("def add(a, b):\n    import os\n    os._exit(0)\n", "failed"),
        ("def add(a, b):\n    raise KeyboardInterrupt\n", "failed"),
        ("import os, sys\ndef add(a, b):\n    os.execv(sys.executable, ['python'])\n", "failed"),
    ],
    ids=[
        "exit-at-import",
        "os_exit-at-import",
        "SystemExit-at-import",
        "execv-at-import",
        "exit-in-call",
        "os_exit-in-call",
        "KeyboardInterrupt-in-call",
        "execv-in-call",
    ],
)
def test_leaving_early_fails(any_sandbox, code, status):
    assert_all_failed(run(any_sandbox, code), status)


def test_atexit_hooks_cannot_pass(any_sandbox):
    code = """
    import atexit, os, sys
    def forge():
        for fd in range(1, 12):
            for line in (b'{"ok": 5}\\n', b'{"case": 0, "passed": true, "kind": "passed"}\\n'):
                try:
                    os.write(fd, line)
                except OSError:
                    pass
    atexit.register(forge)
    def add(a, b):
        sys.exit(0)
    """
    assert_all_failed(run(any_sandbox, code), "failed")


def test_writing_fake_verdicts_to_every_descriptor_fails(any_sandbox):
    code = """
    import os, json
    FAKE = [{"case": i, "passed": True, "kind": "passed"} for i in range(3)]
    FAKE += [{"final": {"compiled": True, "loaded": True, "incidents": {}}}, {"ok": True},
             {"loaded": {"add": {"callable": True}}}, {"raised": None}]
    def spray():
        for fd in range(0, 64):
            for message in FAKE:
                try:
                    os.write(fd, (json.dumps(message) + "\\n").encode())
                except OSError:
                    pass
    spray()
    print('{"case": 0, "passed": true}')
    def add(a, b):
        spray()
        return None
    """
    assert_all_failed(run(any_sandbox, code))


def test_execv_into_a_forging_program_fails(any_sandbox):
    code = """
    import os
    verdict = '{"case": \\'$i\\', "passed": true, "kind": "passed"}'
    script = "for i in 0 1 2; do echo '" + verdict + "' >&4; done"
    script += '; echo \\'{"ok": true}\\' >&4; echo \\'{"final": {}}\\' >&4; sleep 0.5'
    os.execv("/bin/sh", ["sh", "-c", script])
    """
    assert_all_failed(run(any_sandbox, code))


@pytest.mark.parametrize(
    "value",
    [
        "Always()",
        "AlwaysInt(7)",
        "AlwaysStr('x')",
        "AlwaysList([0])",
        "AlwaysTuple((0,))",
        "AlwaysDict({})",
        "AlwaysFloat(0.5)",
    ],
)
def test_objects_that_equal_everything_fail(any_sandbox, value):
    code = f"""
    class Always:
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        def __hash__(self): return 0
        def __bool__(self): return True
    class AlwaysInt(int):
        def __eq__(self, other): return True
        def __ne__(self, other): return False
    class AlwaysStr(str):
        def __eq__(self, other): return True
    class AlwaysList(list):
        def __eq__(self, other): return True
    class AlwaysTuple(tuple):
        def __eq__(self, other): return True
    class AlwaysDict(dict):
        def __eq__(self, other): return True
    class AlwaysFloat(float):
        def __eq__(self, other): return True
        def __lt__(self, other): return True
    def add(a, b):
        return {value}
    """
    tests = [*ADD_TESTS, "assert abs(add(1, 1) - 2) < 1e-9"]
    assert_all_failed(run(any_sandbox, code, tests), "failed")


def test_shadowing_builtins_and_helpers_does_not_reach_the_tests(any_sandbox):
    code = """
    import builtins
    builtins.abs = lambda x: 0
    builtins.sorted = lambda x, **k: [1, 2, 3]
    builtins.isinstance = lambda *a: True
    def abs(x): return 0
    def sorted(x, **k): return [1, 2, 3]
    def len(x): return 3
    def isinstance(a, b): return True
    AssertionError = Exception
    def add(a, b): return [3, 2, 1]
    def close(a, b): return True
    """
    tests = [
        "assert abs(add(1, 2) - 3) < 1e-9",
        "assert sorted(add(1, 2)) == [1, 2, 3] and isinstance(add(1, 2), int)",
        "assert len(str(add(1, 2))) == 1",
        "def close(a, b):\n    return a == b\nassert close(add(1, 2), 3)",
    ]
    assert_all_failed(run(any_sandbox, code, tests), "failed")


def test_task_helpers_cannot_be_redefined_by_the_solution(any_sandbox):
    # HumanEval/32-style: the test checks the answer with the task's own helper `poly`.
    shared = "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n"
    code = """
    def poly(xs, x):
        return 0.0
    def find_zero(xs):
        return 12345.0
    """
    tests = ["assert abs(poly([1, 2], find_zero([1, 2]))) < 1e-6"]
    result = run(any_sandbox, code, tests, shared_setup=shared, entry_points=["find_zero"])
    assert_all_failed(result, "failed")
    good = "def find_zero(xs):\n    return -xs[0] / xs[1]\n"
    assert run(any_sandbox, good, tests, shared_setup=shared).status.value == "passed"


def test_planted_conftest_and_sitecustomize_have_no_effect(any_sandbox):
    # Plant every file Python or pytest might pick up, then crash so that the next test
    # needs a fresh executor, which must start clean.
    code = """
    import os
    plant = "import os\\nos._exit(0)\\n"
    for name in ("conftest.py", "sitecustomize.py", "usercustomize.py", "__init__.py",
                 "solution.py", "site.py", "os.py", "json.py", "x.pth"):
        try:
            with open(name, "w") as handle:
                handle.write(plant if not name.endswith(".pth") else "import os; os._exit(0)\\n")
        except OSError:
            pass
    os.makedirs(".local/lib/python3.11/site-packages", exist_ok=True)
    with open(".local/lib/python3.11/site-packages/usercustomize.py", "w") as handle:
        handle.write(plant)
    def add(a, b):
        os._exit(0)
    """
    result = run(any_sandbox, code)
    assert_all_failed(result, "failed")
    assert all("exited" in t.detail or "process" in t.detail for t in result.tests), result.tests


def test_ignored_signals_still_time_out(any_sandbox):
    code = """
    import signal
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM, signal.SIGXCPU):
        signal.signal(sig, signal.SIG_IGN)
    def add(a, b):
        while True:
            pass
    """
    result = run(any_sandbox, code, timeout_s=2.0)
    assert_all_failed(result, "timeout")


def targets(sandbox) -> str:
    """Candidate code naming the processes it attacks: in a container, every process it can
    see (the harness among them; the executor's parent there is the zygote); locally only its
    parent, the harness (everything else would be the host's)."""
    if sandbox.name == "docker":
        return "[int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]"
    return "[os.getppid()]"


def test_killing_the_harness_fails(any_sandbox):
    code = f"""
    import os, signal
    def add(a, b):
        for pid in {targets(any_sandbox)}:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return a + b
    """
    result = run(any_sandbox, code)
    assert_all_failed(result, "error")
    # The same sandbox runs the next solution normally.
    assert run(any_sandbox, "def add(a, b):\n    return a + b\n").status.value == "passed"


def test_stopping_the_harness_fails_by_timeout(any_sandbox):
    code = f"""
    import os, signal
    for pid in {targets(any_sandbox)}:
        try:
            os.kill(pid, signal.SIGSTOP)
        except OSError:
            pass
    def add(a, b):
        return a + b
    """
    result = run(any_sandbox, code, timeout_s=2.0)
    assert_all_failed(result, "timeout", "error")
    assert run(any_sandbox, "def add(a, b):\n    return a + b\n").status.value == "passed"


def test_killing_the_parent_changes_nothing(any_sandbox):
    # Its parent is the harness (local) or the zygote (Docker): either way the answers are
    # still judged by the harness, so a wrong solution fails and a right one passes.
    code = """
    import os, signal
    os.kill(os.getppid(), signal.SIGKILL)
    def add(a, b):
        return a * b
    """
    result = run(any_sandbox, code)
    assert_all_failed(result)
    assert run(any_sandbox, "def add(a, b):\n    return a + b\n").status.value == "passed"


def test_a_test_is_never_passed_by_an_incident_the_test_code_swallowed(any_sandbox):
    # The test expects an exception and catches everything; dying is still not passing.
    tests = ["try:\n    add(1, 2)\nexcept BaseException:\n    pass\nelse:\n    assert False"]
    dies = "import os\ndef add(a, b):\n    os._exit(3)\n"
    assert_all_failed(run(any_sandbox, dies, tests), "failed")
    raises = "def add(a, b):\n    raise ValueError('no')\n"
    assert run(any_sandbox, raises, tests).status.value == "passed"


def test_exceptions_cross_as_their_builtin_type_only(any_sandbox):
    tests = ["try:\n    add(1, 2)\nexcept ValueError:\n    pass\nelse:\n    assert False"]
    real = "def add(a, b):\n    raise ValueError('bad input')\n"
    assert run(any_sandbox, real, tests).status.value == "passed"
    fake = """
    class ValueError(Exception):
        pass
    def add(a, b):
        raise ValueError('not the builtin one')
    """
    assert_all_failed(run(any_sandbox, fake, tests), "failed")


@pytest.mark.docker
def test_the_tests_expected_values_are_not_readable(docker_sandbox):
    # The expected value appears only in the trusted test code. Look everywhere a sandboxed
    # process can read: files, and other processes' command lines, environments and memory.
    # (Docker only: the local backend isolates nothing, other processes included.)
    code = """
    import os
    NEEDLE = b"9876" + b"54321"
    def files():
        for root in ("/work", "/tmp", "/dev/shm", "/etc"):
            for folder, _, names in os.walk(root):
                for name in names:
                    yield os.path.join(folder, name)
    def read(path, start=0, size=1 << 20):
        try:
            with open(path, "rb") as handle:
                handle.seek(start)
                return handle.read(size)
        except (OSError, ValueError, OverflowError):
            return b""
    def secret():
        seen = [read(path) for path in files()]
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            seen += [read(f"/proc/{pid}/cmdline"), read(f"/proc/{pid}/environ")]
            for line in read(f"/proc/{pid}/maps").decode().splitlines():
                low, high = (int(x, 16) for x in line.split()[0].split("-"))
                seen.append(read(f"/proc/{pid}/mem", low, min(high - low, 1 << 22)))
        return int(NEEDLE) if any(NEEDLE in blob for blob in seen) else 0
    """
    result = run(docker_sandbox, code, ["assert secret() == 987654321"], timeout_s=20)
    assert_all_failed(result, "failed")


def test_a_background_thread_spraying_replies_cannot_pass(any_sandbox):
    code = """
    import os, threading, time
    def spray():
        while True:
            try:
                os.write(4, b'{"ok": 5}\\n{"ok": -3}\\n{"ok": 42}\\n')
            except OSError:
                return
    threading.Thread(target=spray, daemon=True).start()
    time.sleep(0.05)
    def add(a, b):
        return None
    """
    result = run(any_sandbox, code)
    # Whatever the executor writes is only ever taken as its answers, and None is wrong.
    assert result.tests_passed < 3
    assert result.status.value != "passed"


def test_planting_files_in_the_work_dir_does_not_change_the_tests(any_sandbox):
    code = "open('tests.py', 'w').write('assert True')\ndef add(a, b):\n    return 0\n"
    assert_all_failed(run(any_sandbox, code), "failed")


def test_no_process_of_a_local_run_survives_it(local_sandbox, tmp_path):
    # A daemon (own session, double fork) that would outlive a careless cleanup. (Docker:
    # see test_docker_attacks.test_no_state_crosses_runs.)
    pid_file = tmp_path / "daemon.pid"
    code = f"""
    import os, time
    def add(a, b):
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                with open({str(pid_file)!r}, "w") as handle:
                    handle.write(str(os.getpid()))
                while True:
                    time.sleep(0.01)
            os._exit(0)
        time.sleep(0.3)
        return a + b
    """
    assert run(local_sandbox, code).status.value == "passed"
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
