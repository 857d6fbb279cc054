"""All 164 HumanEval canonical solutions pass in the Docker sandbox; broken ones do not."""

from __future__ import annotations

import pytest

from grpo_env.environments.code_tasks import humaneval_tasks
from grpo_env.sandbox import ExecutionRequest, TestSuite

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def requests(code_for):
    tasks = list(humaneval_tasks("all"))
    assert len(tasks) == 164
    return tasks, [
        ExecutionRequest(code=code_for(task), tests=TestSuite.model_validate(task.tests))
        for task in tasks
    ]


def test_every_canonical_solution_passes(docker_sandbox):
    tasks, batch = requests(lambda task: task.answer)
    results = docker_sandbox.run_many(batch)
    failures = {
        t.id: (r.status.value, r.error, r.tests[:2])
        for t, r in zip(tasks, results, strict=True)
        if r.status.value != "passed"
    }
    assert failures == {}
    assert all(r.tests_passed == r.tests_total >= 1 for r in results)


def test_no_stub_passes_any_problem(docker_sandbox):
    # The prompt alone defines the function with a docstring body: it returns None.
    _, batch = requests(lambda task: "")
    results = docker_sandbox.run_many(batch)
    assert all(r.status.value == "failed" for r in results)
    # Tests are counted separately, so a stub gets credit only where None is the answer.
    assert sum(r.tests_passed for r in results) < 0.05 * sum(r.tests_total for r in results)


def test_off_by_one_solutions_fail(docker_sandbox):
    # Perturb every canonical solution: its entry point now returns a different value.
    def perturbed(task):
        entry = task.metadata["entry_point"]
        return (
            f"{task.answer}\n\n_original = {entry}\n"
            f"def {entry}(*args, **kwargs):\n"
            f"    result = _original(*args, **kwargs)\n"
            f"    return [result] if not isinstance(result, list) else result + [0]\n"
        )

    tasks, batch = requests(perturbed)
    results = docker_sandbox.run_many(batch)
    assert [t.id for t, r in zip(tasks, results, strict=True) if r.status.value == "passed"] == []
