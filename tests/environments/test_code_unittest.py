from __future__ import annotations

import json
import textwrap

import pytest

import grpo_env
from grpo_env.checks import run_env_checks
from grpo_env.environments.code_tasks import (
    humaneval_split_of,
    humaneval_tasks,
    mbpp_tasks,
)
from grpo_env.environments.code_unittest import CodeUnittestEnv, extract_code
from grpo_env.sandbox import ExecutionResult, ExecutionStatus
from grpo_env.sandbox.testing import docker_sandbox_or_skip
from grpo_env.tasks import TaskFileError
from grpo_env.types import Status

MBPP_ROWS = [
    {
        "id": "rev",
        "prompt": "Write a function reverse(s) that reverses a string.",
        "tests": ["assert reverse('abc') == 'cba'", "assert reverse('') == ''"],
        "solution": "def reverse(s):\n    return s[::-1]\n",
    },
    {
        "text": "Write a function area(r) for the area of a circle.",
        "test_list": ["assert math.isclose(area(1), 3.14159, rel_tol=1e-3)"],
        "test_setup_code": "import math",
        "code": "import math\ndef area(r):\n    return math.pi * r * r\n",
        "task_id": 7,
    },
]


@pytest.fixture(scope="module")
def docker_sandbox():
    sandbox = docker_sandbox_or_skip(concurrency=2)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module")
def docker_env(docker_sandbox):
    env = CodeUnittestEnv(sandbox=docker_sandbox, split="all")
    yield env
    env.close()


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


# ----- code extraction ----------------------------------------------------------------------


def test_extract_takes_the_last_python_block():
    text = "Try:\n```python\nx = 1\n```\nBetter:\n```py\nx = 2\n```\n```bash\nls\n```\nDone."
    assert extract_code(text) == "x = 2\n"
    assert extract_code("```\ny = 3\n```") == "y = 3\n"
    assert extract_code("no code here") is None
    assert extract_code("no code here", "auto") == "no code here"
    assert extract_code("```python\nx = 1\n```", "whole") == "```python\nx = 1\n```"


def test_extract_takes_an_unclosed_final_block():
    assert extract_code("Here:\n```python\ndef f():\n    return 1") == "def f():\n    return 1"


# ----- tasks --------------------------------------------------------------------------------


def test_humaneval_split_is_fixed_and_disjoint():
    train, test = humaneval_tasks("train"), humaneval_tasks("test")
    assert (len(train), len(test), len(humaneval_tasks("all"))) == (131, 33, 164)
    assert {t.id for t in train}.isdisjoint({t.id for t in test})
    assert {t.id for t in test} == {f"HumanEval/{k}" for k in range(0, 164, 5)}
    assert (
        humaneval_split_of("HumanEval/10") == "test"
        and humaneval_split_of("HumanEval/11") == "train"
    )
    with pytest.raises(ValueError, match="split"):
        humaneval_tasks("validation")  # type: ignore[arg-type]


def test_humaneval_checks_become_separate_cases():
    tasks = {t.id: t for t in humaneval_tasks("all")}
    zero = tasks["HumanEval/0"].tests
    assert len(zero["cases"]) == 7 and zero["aliases"] == {"candidate": "has_close_elements"}
    assert len(tasks["HumanEval/32"].tests["cases"]) == 1  # a loop of asserts counts once
    every_case = [c["code"] for t in tasks.values() for c in t.tests["cases"]]
    assert not any(code.strip().startswith("assert True") for code in every_case)
    assert "def poly" in tasks["HumanEval/32"].tests["shared_setup"]


def test_mbpp_jsonl_rows_and_original_field_names(tmp_path):
    source = mbpp_tasks(write_jsonl(tmp_path / "t.jsonl", MBPP_ROWS))
    assert [t.id for t in source] == ["rev", "7"]
    assert len(source[0].tests["cases"]) == 2
    assert source[1].tests["shared_setup"] == "import math"
    assert "assert reverse('abc') == 'cba'" in source[0].prompt


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ({"tests": ["assert 1"]}, "prompt", "missing"),
        ({"prompt": "p"}, "tests", "missing"),
        ({"prompt": "p", "tests": []}, "tests", "non-empty"),
        ({"prompt": "p", "tests": ["assert ("]}, "tests", "item 1 is not valid Python"),
        ({"prompt": "p", "tests": ["assert 1", "x = 1"]}, "tests", "item 2 has no assert"),
        ({"prompt": "p", "tests": ["assert 1"], "setup": "def ("}, "setup", "not valid Python"),
        ({"prompt": "p", "tests": ["assert 1"], "entry_point": "a b"}, "entry_point", "identifier"),
    ],
)
def test_mbpp_errors_name_file_line_and_field(tmp_path, row, field, problem):
    path = write_jsonl(tmp_path / "bad.jsonl", [MBPP_ROWS[0], row])
    with pytest.raises(TaskFileError) as caught:
        mbpp_tasks(path)
    assert (caught.value.line, caught.value.field) == (2, field)
    assert problem in str(caught.value) and "bad.jsonl:2" in str(caught.value)


# ----- scoring without Docker -----------------------------------------------------------------


class StubSandbox:
    """Returns a fixed result, to check how results become rewards."""

    name = "stub"

    def __init__(self, result):
        self.result = result
        self.calls = 0

    def run(self, request):
        return self.run_many([request])[0]

    def run_many(self, requests):
        self.calls += len(requests)
        return [self.result for _ in requests]

    def check(self):
        pass

    def close(self):
        pass


def result(status, passed, total, compiled=True, error=""):
    return ExecutionResult(
        status=status, tests_passed=passed, tests_total=total, compiled=compiled, error=error
    )


def test_sandbox_error_becomes_infra_error_never_a_zero():
    env = CodeUnittestEnv(
        sandbox=StubSandbox(result(ExecutionStatus.SANDBOX_ERROR, 0, 0, None, "daemon down"))
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step("```python\npass\n```")
    assert info["verify"].status is Status.INFRA_ERROR and reward == 0.0
    assert "daemon down" in info["verify"].details["reason"]


def test_fraction_all_or_nothing_and_statuses():
    partial = StubSandbox(result(ExecutionStatus.FAILED, 3, 4))
    env = CodeUnittestEnv(sandbox=partial)
    task = env.tasks[0]
    verdict = env.verify(task, "```python\npass\n```")
    assert verdict.score == 0.75 and verdict.status is Status.OK
    assert verdict.components == {"tests_passed": 0.75, "compiled": 1.0}
    strict = CodeUnittestEnv(sandbox=partial, all_or_nothing=True)
    assert strict.verify(task, "```python\npass\n```").score == 0.0
    timeout = CodeUnittestEnv(sandbox=StubSandbox(result(ExecutionStatus.TIMEOUT, 1, 4)))
    assert timeout.verify(task, "```python\npass\n```").status is Status.TIMEOUT
    broken = CodeUnittestEnv(sandbox=StubSandbox(result(ExecutionStatus.ERROR, 0, 4, False)))
    verdict = broken.verify(task, "```python\nx = (\n```")
    assert verdict.status is Status.ERROR and verdict.components["compiled"] == 0.0


def test_no_code_block_is_invalid_format_without_running_anything():
    stub = StubSandbox(result(ExecutionStatus.PASSED, 1, 1))
    env = CodeUnittestEnv(sandbox=stub)
    verdicts = env.score_many(env.tasks[0], ["just prose", "", "```python\npass\n```"])
    assert [v.status for v in verdicts] == [Status.INVALID_FORMAT, Status.INVALID_FORMAT, Status.OK]
    assert stub.calls == 1


def test_registered_with_a_string_entry_point():
    spec = grpo_env.envs.resolve("code-unittest")
    assert spec.id == "code-unittest-v0" and spec.nondeterministic
    assert isinstance(spec.entry_point, str)


# ----- with the real sandbox ----------------------------------------------------------------


@pytest.mark.docker
def test_env_contract_checks_pass(docker_sandbox):
    outcomes = run_env_checks("code-unittest-v0")
    assert all(o.passed is not False for o in outcomes), outcomes
    # code tasks have tests, not a reference answer: only the probes are skipped
    assert [o.name for o in outcomes if o.passed is None] == ["adversarial probes score 0"]


@pytest.mark.docker
def test_a_group_is_scored_concurrently_and_in_order(docker_env):
    task = next(t for t in docker_env.tasks if t.id == "HumanEval/0")
    gold = docker_env.gold_completion(task)
    wrong = "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```"
    crash = "```python\nimport os\nos._exit(0)\n```"
    verdicts = docker_env.score_many(task, [gold, wrong, "no code", crash, gold])
    assert [v.score for v in verdicts][:1] == [1.0] and verdicts[4].score == 1.0
    assert 0.0 < verdicts[1].score < 1.0  # the 'False' cases pass, the others do not
    assert verdicts[2].status is Status.INVALID_FORMAT
    assert verdicts[3].score == 0.0 and verdicts[3].status is Status.ERROR


@pytest.mark.docker
def test_mbpp_file_end_to_end(tmp_path, docker_sandbox):
    env = CodeUnittestEnv(
        tasks_path=write_jsonl(tmp_path / "t.jsonl", MBPP_ROWS), sandbox=docker_sandbox
    )
    for task in env.tasks:
        verdict = env.verify(task, env.gold_completion(task))
        assert (verdict.score, verdict.status) == (1.0, Status.OK), verdict
    code = textwrap.dedent(
        """
        ```python
        def reverse(s):
            return s
        ```
        """
    )
    assert env.verify(env.tasks[0], code).score == 0.5
